import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { main } from '../src/main.ts';

// Commands write beside the working folder (`keel backtest` keeps its runs in ./.keel/keel.db):
// a test file's own empty folder, never the repository. Test files run in processes of their own.
process.chdir(mkdtempSync(path.join(tmpdir(), 'keel-cwd-')));

/**
 * Runs a keel command in this process (no child process: the sources as they are), with stdout and
 * stderr captured; its exit code and both texts. `prog` is what hints name.
 */
export async function keelIn(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  // Copied: --json hands out views of one buffer that it reuses.
  stdout.on('data', (c: Buffer) => out.push(Buffer.from(c)));
  stderr.on('data', (c: Buffer) => err.push(c));
  const code = await main([...args], { stdout, stderr, prog: 'keel' });
  return { code, out: Buffer.concat(out).toString('utf8'), err: Buffer.concat(err).toString('utf8') };
}
