import { ExactRollingSum } from '../util/exact-sum.ts';

/**
 * Allocation-free building blocks shared by the indicators. Their `push` returns nothing and
 * publishes results in fields: V8 boxes a double returned from a call it does not inline.
 * Each one mirrors the arithmetic of the
 * TA-Lib routine it is named after (same operations in the same order), so indicators built from
 * them agree with TA-Lib to the last few bits, not only to a tolerance.
 */

/** TA-Lib's true range of a bar given the previous close (TRANGE, and the macro in ta_ADX.c). */
export function trueRange(high: number, low: number, prevClose: number): number {
  let out = high - low;
  const a = Math.abs(high - prevClose);
  if (a > out) out = a;
  const b = Math.abs(low - prevClose);
  if (b > out) out = b;
  return out;
}

/** TA_IS_ZERO: TA-Lib treats |v| < 1e-14 as zero before dividing. */
export const TA_EPSILON = 1e-14;
export function isZero(v: number): boolean {
  return -TA_EPSILON < v && v < TA_EPSILON;
}

/**
 * TA-Lib's EMA (TA_INT_EMA, default compatibility): seeded with the plain mean of the first
 * `period` inputs, then prev = (x - prev) * k + prev. `push` returns NaN until seeded.
 */
export class EmaCore {
  value = Number.NaN;
  private n = 0;
  private sum = 0;
  readonly k: number;

  constructor(readonly period: number) {
    this.k = 2.0 / (period + 1);
  }

  push(x: number): void {
    if (this.n < this.period) {
      this.sum += x;
      this.n++;
      if (this.n === this.period) this.value = this.sum / this.period;
      return;
    }
    this.value = (x - this.value) * this.k + this.value;
  }

  get ready(): boolean {
    return this.n === this.period;
  }

  reset(): void {
    this.value = Number.NaN;
    this.n = 0;
    this.sum = 0;
  }
}

/**
 * Simple moving average with an exact window sum: the same arithmetic as the SMA indicator
 * (bit-identical to backtrader), for use inside other indicators.
 */
export class SmaCore {
  value = Number.NaN;
  private readonly buf: Float64Array;
  private head = 0;
  private readonly sum = new ExactRollingSum();
  private n = 0;

  constructor(readonly period: number) {
    this.buf = new Float64Array(period);
  }

  push(x: number): void {
    const p = this.period;
    const out = this.buf[this.head] as number;
    this.buf[this.head] = x;
    this.head = this.head + 1 === p ? 0 : this.head + 1;
    this.sum.add(x);
    if (this.n >= p) this.sum.add(-out);
    this.n++;
    if (this.n >= p) this.value = this.sum.value / p;
  }

  reset(): void {
    this.value = Number.NaN;
    this.buf.fill(0);
    this.head = 0;
    this.sum.reset();
    this.n = 0;
  }
}

/**
 * TA-Lib's WMA (weights 1..period, newest heaviest) with its two running sums: `periodSum` holds
 * the weighted sum and `periodSub` the plain window sum subtracted at each step.
 */
export class WmaCore {
  value = Number.NaN;
  private n = 0;
  private periodSum = 0;
  private periodSub = 0;
  private trailing = 0;
  private readonly divider: number;
  private readonly buf: Float64Array;
  private head = 0;

  constructor(readonly period: number) {
    this.divider = (period * (period + 1)) / 2;
    this.buf = new Float64Array(period);
  }

  push(x: number): void {
    const p = this.period;
    // buf holds the last `period` inputs; buf[head] is the oldest once full.
    this.buf[this.head] = x;
    this.head = this.head + 1 === p ? 0 : this.head + 1;
    if (this.n < p - 1) {
      this.n++;
      this.periodSub += x;
      this.periodSum += x * this.n;
      return;
    }
    this.n = p;
    this.periodSub += x;
    this.periodSub -= this.trailing;
    this.periodSum += x * p;
    this.trailing = this.buf[this.head] as number;
    this.value = this.periodSum / this.divider;
    this.periodSum -= this.periodSub;
  }

  reset(): void {
    this.value = Number.NaN;
    this.n = 0;
    this.periodSum = 0;
    this.periodSub = 0;
    this.trailing = 0;
    this.head = 0;
    this.buf.fill(0);
  }
}

/**
 * Rolling maximum or minimum of the last `period` values: a monotonic deque over preallocated
 * typed arrays, amortised O(1). On ties the NEWEST index wins (TA-Lib AROON's rule; the value is
 * the same either way). `index` is the 0-based input number of the extreme.
 */
export class RollingExtreme {
  private readonly vals: Float64Array;
  private readonly idx: Float64Array;
  private head = 0;
  private size = 0;
  private n = 0;
  private readonly isMax: boolean;
  /** The current extreme (NaN before the first push). */
  value = Number.NaN;

  constructor(
    readonly period: number,
    kind: 'max' | 'min',
  ) {
    this.vals = new Float64Array(period);
    this.idx = new Float64Array(period);
    this.isMax = kind === 'max';
  }

  push(x: number): void {
    const cap = this.period;
    const oldest = this.n - cap;
    while (this.size > 0 && (this.idx[this.head] as number) <= oldest) {
      this.head = this.head + 1 === cap ? 0 : this.head + 1;
      this.size--;
    }
    while (this.size > 0) {
      let b = this.head + this.size - 1;
      if (b >= cap) b -= cap;
      const v = this.vals[b] as number;
      if (this.isMax ? v <= x : v >= x) this.size--;
      else break;
    }
    let t = this.head + this.size;
    if (t >= cap) t -= cap;
    this.vals[t] = x;
    this.idx[t] = this.n;
    this.size++;
    this.n++;
    this.value = this.vals[this.head] as number;
  }

  /** Bars since the extreme: 0 when the newest value is the extreme. */
  get age(): number {
    return this.size === 0 ? Number.NaN : this.n - 1 - (this.idx[this.head] as number);
  }

  /** Number of values pushed so far. */
  get pushed(): number {
    return this.n;
  }

  reset(): void {
    this.head = 0;
    this.size = 0;
    this.n = 0;
    this.value = Number.NaN;
  }
}

/**
 * Wilder-smoothed average gain and loss exactly as TA-Lib's RSI and CMO compute them: seeded by
 * the mean of the first `period` changes, then avg = (avg * (period - 1) + x) / period.
 * `push` returns true once the averages are defined (from input number `period`).
 */
export class WilderGainLoss {
  gain = 0;
  loss = 0;
  /** TA-Lib's RSI from the current averages (0 when both are zero, as TA-Lib); NaN until defined. */
  rsi = Number.NaN;
  private n = 0;
  private prev = Number.NaN;

  constructor(readonly period: number) {}

  push(x: number): boolean {
    const p = this.period;
    const n = this.n++;
    if (n === 0) {
      this.prev = x;
      return false;
    }
    const d = x - this.prev;
    this.prev = x;
    if (n <= p) {
      if (d < 0) this.loss -= d;
      else this.gain += d;
      if (n < p) return false;
      this.loss /= p;
      this.gain /= p;
      this.rsi = this.computeRsi();
      return true;
    }
    this.loss *= p - 1;
    this.gain *= p - 1;
    if (d < 0) this.loss -= d;
    else this.gain += d;
    this.loss /= p;
    this.gain /= p;
    this.rsi = this.computeRsi();
    return true;
  }

  private computeRsi(): number {
    const t = this.gain + this.loss;
    return isZero(t) ? 0.0 : 100.0 * (this.gain / t);
  }

  reset(): void {
    this.rsi = Number.NaN;
    this.gain = 0;
    this.loss = 0;
    this.n = 0;
    this.prev = Number.NaN;
  }
}

/**
 * TA-Lib's ATR: true ranges from the second bar on, seeded by their plain mean over `period`,
 * then atr = (atr * (period - 1) + tr) / period. Defined from bar index `period`.
 */
export class AtrCore {
  value = Number.NaN;
  tr = Number.NaN;
  private n = 0;
  private prevClose = Number.NaN;
  private sum = 0;

  constructor(readonly period: number) {}

  push(high: number, low: number, close: number): void {
    const n = this.n++;
    if (n === 0) {
      this.prevClose = close;
      return;
    }
    const tr = trueRange(high, low, this.prevClose);
    this.tr = tr;
    this.prevClose = close;
    const p = this.period;
    if (n < p) {
      this.sum += tr;
    } else if (n === p) {
      this.sum += tr;
      this.value = this.sum / p;
    } else {
      let atr = this.value;
      atr *= p - 1;
      atr += tr;
      atr /= p;
      this.value = atr;
    }
  }

  reset(): void {
    this.value = Number.NaN;
    this.tr = Number.NaN;
    this.n = 0;
    this.prevClose = Number.NaN;
    this.sum = 0;
  }
}
