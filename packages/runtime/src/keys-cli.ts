import { parseArgs } from 'node:util';
import type { Io } from '@keel/data';
import {
  checkKdf,
  DEFAULT_KDF,
  DEFAULT_STORE_URL,
  type ExchangeKeyInfo,
  type KdfParams,
  KeyStoreError,
  openStore,
  redactStoreUrl,
} from '@keel/store';
import {
  MissingSecretError,
  NEW_PASSPHRASE_ENV,
  PASSPHRASE_ENV,
  PromptCancelled,
  readPassphrase,
  readSecret,
  type SecretIo,
} from './secrets.ts';

export const KEYS_HELP = `Usage: keel keys <add|list|remove|rotate-passphrase> [options]

The encrypted exchange-key store: api keys and secrets sealed with AES-256-GCM under a key derived
from your passphrase (scrypt), kept in the operational store. 'keel live --keys <name>' uses them.

  keel keys add <name> --exchange <id> [--replace]
      Stores a key. The api key and secret come from KEEL_API_KEY and KEEL_API_SECRET (and
      KEEL_API_PASSWORD / KEEL_API_UID for exchanges that need them), or are asked for without
      echo on a terminal; never from arguments. --replace swaps the credentials of an existing name.
  keel keys list [--json]
      Names, exchanges and the last 4 characters of each api key. Needs no passphrase, shows no secret.
  keel keys remove <name>
  keel keys rotate-passphrase [--scrypt-n <N>]
      Re-encrypts every key under a new passphrase (KEEL_KEYSTORE_NEW_PASSPHRASE, or asked twice),
      in one transaction. --scrypt-n raises the KDF cost (a power of two; default ${DEFAULT_KDF.N}).

Options:
  --store <url>            sqlite:<path> (default ${DEFAULT_STORE_URL}) or postgres://...
  -h, --help               this help

The passphrase comes from KEEL_KEYSTORE_PASSPHRASE, or is asked for without echo on a terminal;
the first 'keys add' sets it. It is never stored: a lost passphrase means adding the keys again.
See docs/keys.md.
`;

export interface KeysIo extends SecretIo, Io {}

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
/** `2024-01-02 03:04:05`, UTC. */
const timeText = (t: number) => new Date(t).toISOString().slice(0, 19).replace('T', ' ');

function formatList(keys: readonly ExchangeKeyInfo[]): string {
  const header = ['NAME', 'EXCHANGE', 'API KEY', 'EXTRA', 'ADDED', 'ROTATED'];
  const rows = [
    header,
    ...keys.map((k) => [
      k.name,
      k.exchange,
      k.fingerprint,
      [k.hasPassword ? 'password' : '', k.hasUid ? 'uid' : ''].filter(Boolean).join(',') || '-',
      timeText(k.createdAt),
      k.rotatedAt === null ? '-' : timeText(k.rotatedAt),
    ]),
  ];
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] as number))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

export async function runKeysCli(argv: string[], io: KeysIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      store: { type: 'string' },
      exchange: { type: 'string' },
      replace: { type: 'boolean' },
      json: { type: 'boolean' },
      'scrypt-n': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [sub, name, ...extra] = positionals;
  if (values.help || sub === undefined || sub === 'help') {
    io.stdout.write(KEYS_HELP);
    return values.help || sub === 'help' ? 0 : 2;
  }
  const usage = (msg: string): number => {
    io.stderr.write(`keel keys ${sub}: ${msg}\nRun '${io.prog ?? 'keel'} keys --help' for usage.\n`);
    return 2;
  };
  if (!['add', 'list', 'remove', 'rotate-passphrase'].includes(sub))
    return usage(`unknown subcommand "${sub}": expected add, list, remove or rotate-passphrase`);
  // add and remove read `name` as a string from here on.
  const needsName = sub === 'add' || sub === 'remove';
  if (needsName && name === undefined) return usage(`the key name is missing: keel keys ${sub} <name>`);
  if (extra.length > 0 || (!needsName && name !== undefined))
    return usage(
      `unexpected argument "${needsName ? extra[0] : name}" (keys and secrets are never taken from arguments: use the environment or the prompt)`,
    );
  if (sub !== 'add' && (values.exchange !== undefined || values.replace))
    return usage('--exchange and --replace go with add');
  if (sub !== 'list' && values.json) return usage('--json goes with list');
  if (sub !== 'rotate-passphrase' && values['scrypt-n'] !== undefined)
    return usage('--scrypt-n goes with rotate-passphrase');
  let kdf: KdfParams | undefined;
  if (values['scrypt-n'] !== undefined) {
    try {
      kdf = checkKdf({ ...DEFAULT_KDF, N: Number(values['scrypt-n']) }, '--scrypt-n');
    } catch (e) {
      return usage((e as Error).message);
    }
  }

  const url = values.store ?? DEFAULT_STORE_URL;
  const where = redactStoreUrl(url);
  const store = await openStore({ url });
  try {
    switch (sub) {
      case 'list': {
        const keys = await store.keys.list();
        if (values.json) {
          io.stdout.write(
            `${JSON.stringify(
              keys.map((k) => ({ ...k, createdAt: iso(k.createdAt), rotatedAt: iso(k.rotatedAt) })),
              null,
              2,
            )}\n`,
          );
        } else if (keys.length === 0) {
          io.stdout.write(`No keys in the key store (${where}). Add one: keel keys add <name> --exchange binance\n`);
        } else {
          io.stdout.write(`${formatList(keys)}\n`);
        }
        return 0;
      }
      case 'remove': {
        if (!(await store.keys.remove(name as string))) {
          io.stderr.write(`keel keys remove: no key named "${name}" in ${where} ('keel keys list' shows the names)\n`);
          return 1;
        }
        io.stdout.write(`Removed key "${name}" from ${where}.\n`);
        return 0;
      }
      case 'add': {
        const exchange = values.exchange;
        if (exchange === undefined) return usage('--exchange is required, e.g. --exchange binance');
        let needs: { password: boolean; uid: boolean };
        try {
          // ccxt is large: loaded only for `add`, so list/remove stay quick.
          const { credentialNeeds } = await import('@keel/exchange');
          needs = credentialNeeds(exchange);
        } catch {
          return usage(
            `--exchange "${exchange}" is not an exchange ccxt knows (ids are lower case, e.g. binance, okx)`,
          );
        }
        const creating = !(await store.keys.initialized());
        const passphrase = await readPassphrase(io, { confirm: creating });
        // Unlock before asking for the key: a wrong passphrase is reported before anything is typed.
        const ks = await store.keys.unlock(passphrase, { create: true });
        const env = io.env ?? process.env;
        const optional = async (need: boolean, envVar: string, label: string) =>
          need || (env[envVar] ?? '') !== '' ? readSecret(io, { envVar, label }) : undefined;
        const apiKey = await readSecret(io, { envVar: 'KEEL_API_KEY', label: `${exchange} api key` });
        const secret = await readSecret(io, { envVar: 'KEEL_API_SECRET', label: `${exchange} api secret` });
        const password = await optional(needs.password, 'KEEL_API_PASSWORD', `${exchange} api passphrase (password)`);
        const uid = await optional(needs.uid, 'KEEL_API_UID', `${exchange} uid`);
        const info = await ks.add(
          {
            name: name as string,
            exchange,
            apiKey: apiKey.trim(),
            secret: secret.trim(),
            ...(password !== undefined ? { password } : {}),
            ...(uid !== undefined ? { uid } : {}),
          },
          { replace: values.replace === true },
        );
        io.stdout.write(
          `${info.rotatedAt === null ? 'Added' : 'Replaced'} key "${info.name}" (${info.exchange}, api key ${info.fingerprint}) in ${where}${creating ? ', under the passphrase just set' : ''}.\nUse it with: keel live --keys ${info.name} ...\n`,
        );
        return 0;
      }
      case 'rotate-passphrase': {
        const oldPassphrase = await readPassphrase(io);
        const current = await store.keys.info();
        if (current === undefined) {
          await store.keys.unlock(oldPassphrase); // throws the not-initialized error with its advice
        }
        const next = await readSecret(io, {
          envVar: NEW_PASSPHRASE_ENV,
          label: 'new key store passphrase',
          confirm: true,
        });
        const n = await store.keys.rotatePassphrase(oldPassphrase, next, kdf ? { kdf } : {});
        const info = await store.keys.info();
        // rotatePassphrase has just written the store's parameters.
        const p = (info as NonNullable<typeof info>).params;
        io.stdout.write(
          `Re-encrypted ${n} key${n === 1 ? '' : 's'} under the new passphrase (scrypt N=${p.N}, r=${p.r}, p=${p.p}) in ${where}.\nSet ${PASSPHRASE_ENV} to the new passphrase where it was the old one.\n`,
        );
        return 0;
      }
    }
    return usage(`unknown subcommand "${sub}"`);
  } catch (e) {
    if (e instanceof MissingSecretError) return usage(e.message);
    if (e instanceof KeyStoreError || e instanceof PromptCancelled) {
      io.stderr.write(`keel keys ${sub}: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    await store.close();
  }
}
