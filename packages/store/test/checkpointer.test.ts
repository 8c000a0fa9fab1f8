import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-ckpt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const HERE = path.dirname(fileURLToPath(import.meta.url));

describe('WAL checkpointer at close', () => {
  it('a process whose last work is closing the store lives until the last checkpoint is done (exit 0, not 13)', () => {
    // Five runs: the race it guards against (the worker's exit against an empty event loop) is
    // lost by one run in a few when the worker does not keep the process alive.
    for (let i = 0; i < 5; i++) {
      const r = spawnSync(
        process.execPath,
        ['--import', 'tsx', path.join(HERE, 'fixtures', 'close-and-exit.ts'), path.join(dir, `c${i}.db`)],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect({ code: r.status, out: r.stdout, err: r.stderr.slice(-500) }).toEqual({
        code: 0,
        out: 'CLOSED\n',
        err: '',
      });
    }
  }, 120_000);
});
