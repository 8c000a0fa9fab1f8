import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-open-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const HERE = path.dirname(fileURLToPath(import.meta.url));

function openAt(url: string, at: number): Promise<{ code: number | null; out: string; err: string }> {
  const p = spawn(process.execPath, ['--import', 'tsx', path.join(HERE, 'fixtures', 'open-at.ts'), url, String(at)]);
  let out = '';
  let err = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((r) => p.on('exit', (code) => r({ code, out, err: err.slice(-500) })));
}

describe('a new SQLite store opened by several processes at once', () => {
  // A bot starting while `keel bots list` runs in another terminal: both migrate the new file.
  // Without the migrations in one transaction, one of three processes failed with
  // "table bots already exists" nearly every time.
  it('every process opens it; the migrations run once', async () => {
    for (let round = 0; round < 2; round++) {
      const url = `sqlite:${path.join(dir, `new-${round}.db`)}`;
      const at = Date.now() + 2_500; // after the processes have loaded their imports
      const runs = await Promise.all([openAt(url, at), openAt(url, at), openAt(url, at)]);
      expect(runs).toEqual(runs.map(() => ({ code: 0, out: 'OPENED\n', err: '' })));
    }
  }, 60_000);
});
