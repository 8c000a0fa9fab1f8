/**
 * The one terminal progress bar of the CLI (backtests, data work): on a stream (stderr), drawn
 * only when enabled — callers pass `--progress` or whether the stream is a TTY, so CI logs and
 * piped JSON stay clean. Redrawn at most every 100 ms, with rate and time left.
 */
export class Progress {
  private last = 0;
  private readonly start = performance.now();

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WritableStream,
    private readonly enabled: boolean,
  ) {}

  /** For a stream: enabled when `force` or when the stream is a terminal. */
  static on(label: string, stream: NodeJS.WritableStream, force = false): Progress {
    return new Progress(label, stream, force || Boolean((stream as NodeJS.WriteStream).isTTY));
  }

  update(done: number, total: number, unit = ''): void {
    if (!this.enabled) return;
    const now = performance.now();
    if (done < total && now - this.last < 100) return;
    this.last = now;
    const frac = total > 0 ? Math.min(1, done / total) : 1;
    const width = 30;
    const filled = Math.round(frac * width);
    const secs = (now - this.start) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const eta = rate > 0 ? (total - done) / rate : 0;
    this.stream.write(
      `\r${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(frac * 100).toFixed(1)}% ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}${unit} ${fmtRate(rate)} eta ${eta.toFixed(1)}s\x1b[K`,
    );
    if (done >= total) this.stream.write('\n');
  }

  done(): void {
    if (this.enabled) this.stream.write('\n');
  }
}

function fmtRate(r: number): string {
  if (r >= 1e6) return `${(r / 1e6).toFixed(1)}M/s`;
  if (r >= 1e3) return `${(r / 1e3).toFixed(1)}k/s`;
  return `${r.toFixed(0)}/s`;
}
