import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from '../../../test-support/shared.ts';

export const BIN = path.join(REPO_ROOT, 'apps/cli/bin/keel.js');

/** Runs the real `keel` bin in `cwd`, as a user does; its exit code, stdout and stderr. */
export function runKeel(cwd: string, args: readonly string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 256 << 20,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
