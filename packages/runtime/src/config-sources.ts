import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * Where settings come from besides the command line (docs/config.md), found without loading the
 * rules that check them (`config.ts`, a zod schema per setting): a command given neither a file
 * nor a `KEEL_*` variable runs with its command line as typed.
 */

export const CONFIG_FILE_NAME = 'keel.yaml';

/**
 * The configuration file to read: `explicit` (`--config`, else `KEEL_CONFIG`) or `keel.yaml` in
 * `cwd` when there is one. An explicit file that does not exist is an error.
 */
export function findConfigFile(cwd: string, explicit: string | undefined): string | undefined {
  if (explicit !== undefined) {
    const abs = path.resolve(cwd, explicit);
    if (!existsSync(abs)) throw new Error(`--config: no such file: ${explicit}`);
    return abs;
  }
  const here = path.join(cwd, CONFIG_FILE_NAME);
  return existsSync(here) ? here : undefined;
}

/**
 * Whether anything but the command line may give a setting: a file (`explicit`, `KEEL_CONFIG` or
 * ./keel.yaml) or a non-empty `KEEL_*` variable (any: the rules say which name a setting).
 */
export function hasConfigSources(cwd: string, explicit: string | undefined, env: NodeJS.ProcessEnv): boolean {
  if (explicit !== undefined) return true;
  for (const k of Object.keys(env)) if (k.startsWith('KEEL_') && env[k] !== undefined && env[k] !== '') return true;
  return findConfigFile(cwd, undefined) !== undefined;
}
