import { ExactRollingSum } from '../util/exact-sum.ts';

/**
 * Allocation-free building blocks shared by the indicators. Each one mirrors the arithmetic of the
 * TA-Lib routine it is named after (same operations in the same order), so indicators built from
 * them agree with TA-Lib bit for bit, not only to a tolerance. Their `push` returns nothing and
 * publishes results in fields, because V8 boxes a double returned from a call it does not inline.
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

/** TA-Lib's ROC: percent change from `old` to `x`, 0 when `old` is 0 (ROC and its columnar form). */
export function rateOfChange(x: number, old: number): number {
  return old !== 0.0 ? (x / old - 1.0) * 100.0 : 0.0;
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
 * Simple moving average over an exact window sum (correctly rounded, as Python's math.fsum): the
 * kernel of the SMA indicator (bit-identical to backtrader), of the SMA-smoothed oscillators and of
 * the columnar window sums and means. `sum` is the exact window sum, `value` the mean; both NaN
 * until `period` values have been pushed.
 */
export class SmaCore {
  value = Number.NaN;
  sum = Number.NaN;
  private readonly buf: Float64Array;
  private head = 0;
  private readonly exact = new ExactRollingSum();
  private n = 0;

  constructor(readonly period: number) {
    this.buf = new Float64Array(period);
  }

  push(x: number): void {
    const p = this.period;
    const out = this.buf[this.head] as number;
    this.buf[this.head] = x;
    this.head = this.head + 1 === p ? 0 : this.head + 1;
    if (this.n >= p) this.exact.replace(x, out);
    else this.exact.add(x);
    this.n++;
    if (this.n >= p) {
      this.sum = this.exact.value;
      this.value = this.sum / p;
    }
  }

  get ready(): boolean {
    return this.n >= this.period;
  }

  reset(): void {
    this.value = Number.NaN;
    this.sum = Number.NaN;
    this.buf.fill(0);
    this.head = 0;
    this.exact.reset();
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

/** The part of a bar a RollingRange reads (a Bar, or a reused scratch object). */
export interface HighLow {
  readonly high: number;
  readonly low: number;
}

/**
 * Highest high and lowest low of the last `period` bars: two monotonic deques fed from the bar
 * itself, so the call carries no double to box. On ties the NEWEST bar wins (TA-Lib AROON's rule; the extremes are the same either way).
 */
export class RollingRange {
  /** Highest high in the window (NaN before the first push). */
  max = Number.NaN;
  /** Lowest low in the window (NaN before the first push). */
  min = Number.NaN;
  private readonly hv: Float64Array;
  private readonly hi: Float64Array;
  private readonly lv: Float64Array;
  private readonly li: Float64Array;
  private hHead = 0;
  private hSize = 0;
  private lHead = 0;
  private lSize = 0;
  private n = 0;

  constructor(readonly period: number) {
    this.hv = new Float64Array(period);
    this.hi = new Float64Array(period);
    this.lv = new Float64Array(period);
    this.li = new Float64Array(period);
  }

  push(bar: HighLow): void {
    const cap = this.period;
    const oldest = this.n - cap;
    const h = bar.high;
    const l = bar.low;
    // highs: values strictly decreasing from head to tail
    while (this.hSize > 0 && (this.hi[this.hHead] as number) <= oldest) {
      this.hHead = this.hHead + 1 === cap ? 0 : this.hHead + 1;
      this.hSize--;
    }
    while (this.hSize > 0) {
      let b = this.hHead + this.hSize - 1;
      if (b >= cap) b -= cap;
      if ((this.hv[b] as number) <= h) this.hSize--;
      else break;
    }
    let t = this.hHead + this.hSize;
    if (t >= cap) t -= cap;
    this.hv[t] = h;
    this.hi[t] = this.n;
    this.hSize++;
    // lows: values strictly increasing from head to tail
    while (this.lSize > 0 && (this.li[this.lHead] as number) <= oldest) {
      this.lHead = this.lHead + 1 === cap ? 0 : this.lHead + 1;
      this.lSize--;
    }
    while (this.lSize > 0) {
      let b = this.lHead + this.lSize - 1;
      if (b >= cap) b -= cap;
      if ((this.lv[b] as number) >= l) this.lSize--;
      else break;
    }
    t = this.lHead + this.lSize;
    if (t >= cap) t -= cap;
    this.lv[t] = l;
    this.li[t] = this.n;
    this.lSize++;
    this.n++;
    this.max = this.hv[this.hHead] as number;
    this.min = this.lv[this.lHead] as number;
  }

  /** Bars since the highest high: 0 when it is the newest bar. */
  get maxAge(): number {
    return this.n - 1 - (this.hi[this.hHead] as number);
  }

  /** Bars since the lowest low: 0 when it is the newest bar. */
  get minAge(): number {
    return this.n - 1 - (this.li[this.lHead] as number);
  }

  /** Number of bars pushed so far. */
  get pushed(): number {
    return this.n;
  }

  reset(): void {
    this.hHead = this.hSize = this.lHead = this.lSize = this.n = 0;
    this.max = this.min = Number.NaN;
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
