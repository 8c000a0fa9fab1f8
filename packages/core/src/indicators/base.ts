import type { Bar } from '../model/bar.ts';

/**
 * A streaming indicator: O(1) work per update, no allocation per bar.
 *
 * Conventions (shared by every indicator and checked by the shared contract test):
 * - `update(bar)` consumes one closed bar and returns the primary output.
 * - Outputs are NaN until defined. `lookback` is the 0-based index of the first bar whose output
 *   is defined, exactly TA-Lib's lookback (SMA(10): 9; RSI(14): 14).
 * - `ready` is true once the primary output is defined. `reset()` returns to the initial state.
 * - Multi-output indicators expose extra fields (e.g. `upper`, `lower`); `value` is the primary.
 */
export interface Indicator {
  readonly name: string;
  readonly lookback: number;
  readonly value: number;
  readonly ready: boolean;
  update(bar: Bar): number;
  reset(): void;
}

export type Source = 'open' | 'high' | 'low' | 'close' | 'volume' | 'hl2' | 'hlc3' | 'ohlc4';

export function sourceValue(bar: Bar, source: Source): number {
  switch (source) {
    case 'close':
      return bar.close;
    case 'open':
      return bar.open;
    case 'high':
      return bar.high;
    case 'low':
      return bar.low;
    case 'volume':
      return bar.volume;
    case 'hl2':
      return (bar.high + bar.low) / 2;
    case 'hlc3':
      return (bar.high + bar.low + bar.close) / 3;
    case 'ohlc4':
      return (bar.open + bar.high + bar.low + bar.close) / 4;
  }
}

/** An indicator of one number series (close by default). `push(x)` is the scalar entry point. */
export abstract class ScalarIndicator implements Indicator {
  abstract readonly name: string;
  abstract readonly lookback: number;
  value = Number.NaN;
  protected count = 0;
  constructor(readonly source: Source = 'close') {}

  get ready(): boolean {
    return this.count > this.lookback;
  }

  update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  /** Consume one value; returns the output (NaN until defined). */
  push(x: number): number {
    this.step(x);
    return this.value;
  }

  /**
   * Consumes one value and sets `value` (and any other outputs). It returns nothing on purpose:
   * V8 boxes a double passed to or returned from a call it does not inline. Concrete classes
   * repeat `update` (one line) so that its call to `step` sees one class and is inlined; this
   * shared `update` would see them all.
   */
  protected abstract step(x: number): void;

  reset(): void {
    this.value = Number.NaN;
    this.count = 0;
    this.onReset();
  }

  protected abstract onReset(): void;
}

/**
 * An indicator of whole bars (high, low, close, volume...). Subclasses implement `update` and
 * count bars in `count`; `ready` follows from `lookback`.
 */
export abstract class BarIndicator implements Indicator {
  abstract readonly name: string;
  abstract readonly lookback: number;
  value = Number.NaN;
  protected count = 0;

  get ready(): boolean {
    return this.count > this.lookback;
  }

  abstract update(bar: Bar): number;

  reset(): void {
    this.value = Number.NaN;
    this.count = 0;
    this.onReset();
  }

  protected abstract onReset(): void;
}

/** Fixed-capacity ring buffer over a Float64Array. */
export class Ring {
  readonly buf: Float64Array;
  private head = 0;
  size = 0;
  constructor(readonly capacity: number) {
    if (!(capacity >= 1 && Number.isInteger(capacity)))
      throw new Error(`Ring capacity must be a positive integer, got ${capacity}`);
    this.buf = new Float64Array(capacity);
  }
  /** Pushes x; returns the value that fell out of the window (NaN while filling). */
  push(x: number): number {
    const out = this.size === this.capacity ? (this.buf[this.head] as number) : Number.NaN;
    this.buf[this.head] = x;
    this.head = this.head + 1 === this.capacity ? 0 : this.head + 1;
    if (this.size < this.capacity) this.size++;
    return out;
  }
  /** k = 0 is the newest value, k = size-1 the oldest. */
  get(k: number): number {
    let i = this.head - 1 - k;
    if (i < 0) i += this.capacity;
    return this.buf[i] as number;
  }
  get full(): boolean {
    return this.size === this.capacity;
  }
  clear(): void {
    this.head = 0;
    this.size = 0;
  }
}

export function requirePeriod(name: string, period: number, min = 1): number {
  if (!Number.isInteger(period) || period < min) {
    throw new Error(`${name}: period must be an integer >= ${min}, got ${period}`);
  }
  return period;
}
