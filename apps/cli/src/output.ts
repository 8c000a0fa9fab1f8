import type { Io } from './context.ts';

const guarded = new WeakSet<object>();

/**
 * A reader that goes away (`keel ... | head`) is not an error: the process ends quietly with exit
 * code 0 instead of an EPIPE stack trace. A command that stops in order on SIGTERM (a paper or
 * live bot) gets that signal instead, so it cancels or parks its orders and saves its state. Any
 * other write error (a full disk) ends the process with exit code 1 and one line saying so.
 */
export function guardPipes(io: Io): void {
  for (const stream of [io.stdout, io.stderr]) {
    if (guarded.has(stream)) continue;
    guarded.add(stream);
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') {
        if (process.listenerCount('SIGTERM') > 0) process.kill(process.pid, 'SIGTERM');
        else process.exit(0);
        return;
      }
      if (stream !== io.stderr) io.stderr.write(`keel: cannot write the output: ${e.message}\n`);
      process.exit(1);
    });
  }
}

/**
 * Writes the chunks in order, each one finished before the next is asked for: a chunk may be a
 * view of a buffer its producer reuses, and a slow reader slows the producer instead of the output
 * piling up in memory. Stops at a write error, which the stream's error handler reports.
 */
export async function writeChunks(
  out: NodeJS.WritableStream,
  chunks: Iterable<Uint8Array>,
  copy?: { push(chunk: Uint8Array): Promise<void> },
): Promise<void> {
  let open = true;
  for (const chunk of chunks) {
    // The copy (the store's compressor) takes the chunk while stdout writes it: both before the
    // producer reuses the buffer for the next one. A closed output (`| head`) stops the writing,
    // not the copy: the run kept in the store is whole.
    const written = open ? new Promise<boolean>((resolve) => out.write(chunk, (e) => resolve(!e))) : false;
    const [ok] = await Promise.all([written, copy?.push(chunk)]);
    if (!ok) {
      if (copy === undefined) return;
      open = false;
    }
  }
}
