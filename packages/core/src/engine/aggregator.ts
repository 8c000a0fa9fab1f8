import { type Bar, copyBarInto, emptyBar } from '../model/bar.ts';
import { type Timeframe, timeframeEnd, timeframeStart } from '../model/timeframe.ts';

/**
 * Streams lower-timeframe bars into a higher timeframe. A higher bar is emitted only when it is
 * closed: when the base bar that ends its bucket arrives, or when a bar of a later bucket arrives
 * (a gap). It never looks ahead. Emitted bars are flagged partial when base bars were missing.
 */
export class BarAggregator {
  readonly bar: Bar = emptyBar();
  private bucketStart = Number.NaN;
  private bucketEnd = Number.NaN;
  private open = false;
  private count = 0;
  /** True when the last emitted bar had fewer base bars than its span holds. */
  partial = false;

  constructor(
    readonly timeframe: Timeframe,
    private readonly baseMs: number,
  ) {}

  /**
   * Adds a base bar. Calls `emit` with the completed higher bar (0, 1 or 2 times: a gap can
   * complete the previous bucket before this bar completes its own).
   */
  push(b: Bar, emit: (bar: Bar) => void): void {
    if (this.open && b.time >= this.bucketEnd) this.flush(emit);
    if (!this.open) {
      this.bucketStart = timeframeStart(this.timeframe, b.time);
      this.bucketEnd = timeframeEnd(this.timeframe, this.bucketStart);
      copyBarInto(b, this.bar).time = this.bucketStart;
      this.open = true;
      this.count = 1;
    } else {
      const o = this.bar;
      if (b.high > o.high) o.high = b.high;
      if (b.low < o.low) o.low = b.low;
      o.close = b.close;
      o.volume += b.volume;
      o.quoteVolume += b.quoteVolume;
      o.trades += b.trades;
      o.takerBuyVolume += b.takerBuyVolume;
      this.count++;
    }
    if (b.time + this.baseMs >= this.bucketEnd) this.flush(emit);
  }

  private flush(emit: (bar: Bar) => void): void {
    this.partial = this.count * this.baseMs < this.bucketEnd - this.bucketStart;
    this.open = false;
    emit(this.bar);
  }

  /** The bucket still being built, if any (for a report of the partial last bar). */
  get pending(): boolean {
    return this.open;
  }
}
