import path from 'node:path';
import type { Io } from '@keel/runtime';

export type { Io };

/** What every command gets: its output streams and how the user started keel. */
export interface Cli extends Io {
  /** The command as the user typed it (`keel`, `npx keel`, ...), for hints such as "Run 'npx keel backtest --help'". */
  readonly prog: string;
}

/**
 * How the user started keel. Under npm (`npx keel`, `npm start`: npm sets npm_command) the bin is
 * not on the shell's PATH, so hints say `npx keel`; through the installed `keel` link, `keel`;
 * run as a file (`node apps/cli/bin/keel.js`), that command.
 */
export function progName(env: NodeJS.ProcessEnv, script: string | undefined, cwd: string): string {
  if (env.npm_command) return 'npx keel';
  if (!script || path.basename(script) === 'keel') return 'keel';
  const rel = path.relative(cwd, script);
  return `node ${rel.startsWith('..') || path.isAbsolute(rel) ? script : rel}`;
}
