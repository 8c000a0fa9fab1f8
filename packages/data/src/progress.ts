/** A progress bar on a stream (stderr); drawn only when enabled (TTY or --progress). */
export class Progress {
  private last = 0;
  private readonly start = performance.now();

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WritableStream,
    private readonly enabled: boolean,
  ) {}

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
    this.stream.write(
      `\r${this.label} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(frac * 100).toFixed(1)}% ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}${unit} ${rate >= 1000 ? `${(rate / 1000).toFixed(1)}k` : rate.toFixed(0)}/s\x1b[K`,
    );
    if (done >= total) this.stream.write('\n');
  }

  done(): void {
    if (this.enabled) this.stream.write('\n');
  }
}
