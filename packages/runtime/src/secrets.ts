import type { ReadStream } from 'node:tty';

/** Where a CLI reads secrets from: the environment first, then a prompt without echo on a terminal. */
export interface SecretIo {
  readonly stderr: NodeJS.WritableStream;
  /** Default process.stdin; prompts need it to be a TTY. */
  readonly stdin?: NodeJS.ReadableStream;
  /** Default process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

/** Input the command needs and cannot get: printed with what to set, exit code 2. */
export class MissingSecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MissingSecretError';
  }
}

/** Ctrl-C or Ctrl-D at a prompt. */
export class PromptCancelled extends Error {
  constructor() {
    super('cancelled at the prompt');
    this.name = 'PromptCancelled';
  }
}

function ttyIn(io: SecretIo): ReadStream | undefined {
  const input = (io.stdin ?? process.stdin) as ReadStream;
  return input.isTTY === true && typeof input.setRawMode === 'function' ? input : undefined;
}

export function canPrompt(io: SecretIo): boolean {
  return ttyIn(io) !== undefined;
}

/**
 * Asks for a secret on the terminal without echoing it (raw mode: nothing typed reaches the
 * screen or the scrollback). Backspace edits; Ctrl-C and Ctrl-D cancel.
 */
export function promptHidden(question: string, io: SecretIo): Promise<string> {
  const tty = ttyIn(io);
  if (!tty) return Promise.reject(new MissingSecretError(`cannot ask "${question.trim()}": stdin is not a terminal`));
  io.stderr.write(question);
  return new Promise((resolve, reject) => {
    let buf = '';
    const finish = () => {
      tty.off('data', onData);
      tty.setRawMode(false);
      tty.pause();
      io.stderr.write('\n');
    };
    const onData = (chunk: Buffer | string) => {
      for (const ch of chunk.toString()) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(buf);
          return;
        }
        if (ch === '\u0003' || (ch === '\u0004' && buf === '')) {
          finish();
          reject(new PromptCancelled());
          return;
        }
        if (ch === '\u007f' || ch === '\b') buf = Array.from(buf).slice(0, -1).join('');
        else if (ch >= ' ') buf += ch;
      }
    };
    tty.setRawMode(true);
    tty.resume();
    tty.on('data', onData);
  });
}

/**
 * A secret from `envVar`, else from a hidden prompt (asked twice when `confirm`, e.g. a new
 * passphrase), else a MissingSecretError that says what to set. Never from command-line arguments:
 * those show in `ps` and shell history.
 */
export async function readSecret(
  io: SecretIo,
  what: { readonly envVar: string; readonly label: string; readonly confirm?: boolean },
): Promise<string> {
  const fromEnv = (io.env ?? process.env)[what.envVar];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  if (!canPrompt(io)) {
    throw new MissingSecretError(
      `${what.label} is needed: set ${what.envVar}, or run in a terminal to be asked for it (secrets are never taken from arguments)`,
    );
  }
  const first = await promptHidden(`${what.label}: `, io);
  if (what.confirm) {
    const second = await promptHidden(`${what.label} (again): `, io);
    if (first !== second) throw new MissingSecretError(`the two ${what.label} entries differ: nothing was changed`);
  }
  return first;
}

export const PASSPHRASE_ENV = 'KEEL_KEYSTORE_PASSPHRASE';
export const NEW_PASSPHRASE_ENV = 'KEEL_KEYSTORE_NEW_PASSPHRASE';

export function readPassphrase(io: SecretIo, opts: { readonly confirm?: boolean } = {}): Promise<string> {
  return readSecret(io, { envVar: PASSPHRASE_ENV, label: 'key store passphrase', ...opts });
}
