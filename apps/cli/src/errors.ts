/**
 * The exit codes of every keel command, listed in `keel --help`: 0 success; 1 failure (bad or
 * missing data, a failed run: the message says what, and --help would not help); 2 usage (the
 * command line is wrong: unknown command or option, a missing or malformed value).
 */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** A mistake in how the command was called: printed with a pointer to --help, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command = '',
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A usage error, ours or node:util parseArgs's (unknown option, missing value). */
export function isUsageError(e: unknown): e is Error {
  return (
    e instanceof UsageError ||
    (e instanceof Error && 'code' in e && String((e as { code: unknown }).code).startsWith('ERR_PARSE_ARGS'))
  );
}
