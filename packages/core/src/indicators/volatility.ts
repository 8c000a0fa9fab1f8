import type { Bar } from '../model/bar.ts';
import { BarIndicator, Ring, requirePeriod, ScalarIndicator, type Source, sourceValue } from './base.ts';
import { AtrCore, EmaCore, isZero, RollingRange, TA_EPSILON, trueRange } from './cores.ts';

/** True range: max(high − low, |high − prev close|, |low − prev close|) (TA-Lib TRANGE). Lookback 1. */
export class TrueRange extends BarIndicator {
  readonly name = 'TrueRange';
  readonly lookback = 1;
  private prevClose = Number.NaN;

  update(bar: Bar): number {
    if (this.count++ > 0) this.value = trueRange(bar.high, bar.low, this.prevClose);
    this.prevClose = bar.close;
    return this.value;
  }

  protected onReset(): void {
    this.prevClose = Number.NaN;
  }
}

/** Average true range, Wilder-smoothed and seeded by the mean of the first `period` true ranges (TA-Lib ATR). Lookback = period. */
export class ATR extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly atr: AtrCore;

  constructor(readonly period = 14) {
    super();
    requirePeriod('ATR', period);
    this.name = `ATR(${period})`;
    this.lookback = period;
    this.atr = new AtrCore(period);
  }

  update(bar: Bar): number {
    this.count++;
    this.atr.push(bar.high, bar.low, bar.close);
    this.value = this.atr.value;
    return this.value;
  }

  protected onReset(): void {
    this.atr.reset();
  }
}

/** Normalised ATR: ATR / close · 100 (TA-Lib NATR). */
export class NATR extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly atr: AtrCore;

  constructor(readonly period = 14) {
    super();
    requirePeriod('NATR', period);
    this.name = `NATR(${period})`;
    this.lookback = period;
    this.atr = new AtrCore(period);
  }

  update(bar: Bar): number {
    this.count++;
    this.atr.push(bar.high, bar.low, bar.close);
    const atr = this.atr.value;
    if (Number.isNaN(atr)) return this.value;
    this.value = isZero(bar.close) ? 0.0 : (atr / bar.close) * 100.0;
    return this.value;
  }

  protected onReset(): void {
    this.atr.reset();
  }
}

/**
 * Population standard deviation times `nbDev` (TA-Lib STDDEV). It keeps TA-Lib's two running sums
 * (Σx, Σx²) with TA-Lib's order of operations, so it agrees with TA-Lib to the last bits; the
 * running sums carry TA-Lib's own rounding drift (~1e-8 relative on 1m BTC after thousands of
 * bars). Bollinger and ZScore use exact window sums instead.
 */
export class StdDev extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly ring: Ring;
  private s1 = 0;
  private s2 = 0;

  constructor(
    readonly period = 20,
    readonly nbDev = 1,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('StdDev', period);
    this.name = `StdDev(${period},${nbDev})`;
    this.lookback = period - 1;
    this.ring = new Ring(period);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    this.ring.push(x);
    this.s1 += x;
    this.s2 += x * x;
    if (this.count++ < this.lookback) return;
    const p = this.period;
    const m1 = this.s1 / p;
    const m2 = this.s2 / p;
    const old = this.ring.get(p - 1);
    this.s1 -= old;
    this.s2 -= old * old;
    const variance = m2 - m1 * m1;
    this.value = variance < TA_EPSILON ? 0.0 : Math.sqrt(variance) * this.nbDev;
  }

  protected onReset(): void {
    this.ring.clear();
    this.s1 = 0;
    this.s2 = 0;
  }
}

/**
 * Z-score of the latest value against the last `period` values: (x − mean) / σ with the
 * population σ; 0 when the window is flat. No TA-Lib counterpart.
 *
 * Why the shift: E[x²] − E[x]² on raw prices cancels ~9 digits on 1m BTC (σ ≈ 10 at a price of
 * 42,000). The window sums are kept on x − K, and every `period` bars K moves to the window mean
 * and the sums are rebuilt from the window (O(period), so O(1) amortised): the cancellation stays
 * small, and the running sums never carry more than one window's worth of rounding, so plain sums
 * are enough (exact ones cost more for digits a z-score cannot show).
 */
export class ZScore extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  /** The last `period` inputs; buf[head] is the oldest once full. */
  private readonly buf: Float64Array;
  private head = 0;
  /** Σ(x − shift) and Σ(x − shift)² over the window. */
  private s1 = 0;
  private s2 = 0;
  private shift = 0;
  private sinceRebase = 0;

  constructor(
    readonly period = 20,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('ZScore', period, 2);
    this.name = `ZScore(${period})`;
    this.lookback = period - 1;
    this.buf = new Float64Array(period);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    const p = this.period;
    const buf = this.buf;
    const h = this.head;
    if (this.count === 0) this.shift = x;
    const K = this.shift;
    const y = x - K;
    if (this.count >= p) {
      const o = (buf[h] as number) - K;
      this.s1 += y - o;
      this.s2 += y * y - o * o;
    } else {
      this.s1 += y;
      this.s2 += y * y;
    }
    buf[h] = x;
    this.head = h + 1 === p ? 0 : h + 1;
    if (++this.count < p) return;
    let m1 = this.s1 / p;
    if (++this.sinceRebase >= p) {
      this.sinceRebase = 0;
      this.rebase(K + m1);
      m1 = this.s1 / p;
    }
    const variance = this.s2 / p - m1 * m1;
    const mean = this.shift + m1;
    const sd = Math.sqrt(Math.max(variance, 0));
    // A flat window leaves only rounding noise in the variance.
    this.value = sd <= 1e-12 * Math.max(1, Math.abs(mean)) ? 0 : (x - this.shift - m1) / sd;
  }

  /** Moves the shift to k and rebuilds the (full) window's sums from its values. */
  private rebase(k: number): void {
    this.shift = k;
    const buf = this.buf;
    let s1 = 0;
    let s2 = 0;
    for (let i = 0; i < buf.length; i++) {
      const y = (buf[i] as number) - k;
      s1 += y;
      s2 += y * y;
    }
    this.s1 = s1;
    this.s2 = s2;
  }

  protected onReset(): void {
    this.buf.fill(0);
    this.head = 0;
    this.s1 = 0;
    this.s2 = 0;
    this.shift = 0;
    this.sinceRebase = 0;
  }
}

/**
 * Keltner channel: middle = EMA(period) of close (TA-Lib seeding), bands = middle ± multiplier ·
 * ATR(atrPeriod) (TA-Lib ATR), the modern (Raschke) definition. `value` is the middle. Lookback =
 * max(period − 1, atrPeriod). No TA-Lib counterpart.
 */
export class Keltner extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  upper = Number.NaN;
  lower = Number.NaN;
  private readonly ema: EmaCore;
  private readonly atr: AtrCore;

  constructor(
    readonly period = 20,
    readonly multiplier = 2,
    readonly atrPeriod = 10,
  ) {
    super();
    requirePeriod('Keltner', period);
    requirePeriod('Keltner atrPeriod', atrPeriod);
    if (!(multiplier > 0)) throw new Error(`Keltner: multiplier must be > 0, got ${multiplier}`);
    this.name = `Keltner(${period},${multiplier},${atrPeriod})`;
    this.lookback = Math.max(period - 1, atrPeriod);
    this.ema = new EmaCore(period);
    this.atr = new AtrCore(atrPeriod);
  }

  get middle(): number {
    return this.value;
  }

  update(bar: Bar): number {
    this.count++;
    this.ema.push(bar.close);
    const mid = this.ema.value;
    this.atr.push(bar.high, bar.low, bar.close);
    const atr = this.atr.value;
    if (Number.isNaN(mid) || Number.isNaN(atr)) return this.value;
    this.value = mid;
    this.upper = mid + this.multiplier * atr;
    this.lower = mid - this.multiplier * atr;
    return mid;
  }

  protected onReset(): void {
    this.ema.reset();
    this.atr.reset();
    this.upper = this.lower = Number.NaN;
  }
}

/**
 * Donchian channel: upper = highest high, lower = lowest low of the last `period` bars (current
 * bar included), middle = their mean; `value` is the middle. No TA-Lib counterpart.
 */
export class Donchian extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  upper = Number.NaN;
  lower = Number.NaN;
  private readonly range: RollingRange;

  constructor(readonly period = 20) {
    super();
    requirePeriod('Donchian', period);
    this.name = `Donchian(${period})`;
    this.lookback = period - 1;
    this.range = new RollingRange(period);
  }

  get middle(): number {
    return this.value;
  }

  update(bar: Bar): number {
    const n = this.count++;
    this.range.push(bar);
    const hh = this.range.max;
    const ll = this.range.min;
    if (n < this.lookback) return this.value;
    this.upper = hh;
    this.lower = ll;
    this.value = (hh + ll) / 2;
    return this.value;
  }

  protected onReset(): void {
    this.range.reset();
    this.upper = this.lower = Number.NaN;
  }
}
