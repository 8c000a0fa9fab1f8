import { PassThrough } from 'node:stream';
import { main } from '../src/main.ts';

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
