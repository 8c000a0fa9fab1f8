import type { Bar } from '../model/bar.ts';
import { BarIndicator, Ring, requirePeriod, ScalarIndicator, type Source, sourceValue } from './base.ts';
import { EmaCore, isZero, RollingRange, rateOfChange, SmaCore, WilderGainLoss } from './cores.ts';

/**
 * MACD with TA-Lib's semantics: the fast EMA is seeded on the `fast` bars ending where the slow
 * EMA is seeded, so both start aligned at bar slow − 1; the signal is an EMA of the MACD line.
 * All three outputs are published from bar (slow − 1) + (signal − 1), TA-Lib's lookback
 * (33 for 12/26/9). `value` is the MACD line. Periods given in the wrong order are swapped, as TA-Lib.
 */
export class MACD extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  macd = Number.NaN;
  signal = Number.NaN;
  histogram = Number.NaN;
  readonly fast: number;
  readonly slow: number;
  private readonly fastEma: EmaCore;
  private readonly slowEma: EmaCore;
  private readonly signalEma: EmaCore;

  constructor(
    fast = 12,
    slow = 26,
    readonly signalPeriod = 9,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('MACD fast', fast, 2);
    requirePeriod('MACD slow', slow, 2);
    requirePeriod('MACD signal', signalPeriod);
    this.fast = Math.min(fast, slow);
    this.slow = Math.max(fast, slow);
    this.name = `MACD(${fast},${slow},${signalPeriod})`;
    this.lookback = this.slow - 1 + (signalPeriod - 1);
    this.fastEma = new EmaCore(this.fast);
    this.slowEma = new EmaCore(this.slow);
    this.signalEma = new EmaCore(signalPeriod);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    const n = this.count++;
    this.slowEma.push(x);
    const s = this.slowEma.value;
    if (n < this.slow - this.fast) return;
    this.fastEma.push(x);
    const f = this.fastEma.value;
    if (!this.slowEma.ready) return;
    const m = f - s;
    this.signalEma.push(m);
    const sig = this.signalEma.value;
    if (!this.signalEma.ready) return;
    this.macd = m;
    this.signal = sig;
    this.histogram = m - sig;
    this.value = m;
  }

  protected onReset(): void {
    this.fastEma.reset();
    this.slowEma.reset();
    this.signalEma.reset();
    this.macd = this.signal = this.histogram = Number.NaN;
  }
}

/**
 * Absolute price oscillator: SMA(fast) − SMA(slow) (TA-Lib APO with its default MA type, SMA).
 * With `percent` it is the percentage price oscillator (see PPO).
 */
export class APO extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly fastMa: SmaCore;
  private readonly slowMa: SmaCore;

  constructor(
    fast = 12,
    slow = 26,
    source: Source = 'close',
    private readonly percent = false,
  ) {
    super(source);
    requirePeriod(`${percent ? 'PPO' : 'APO'} fast`, fast, 2);
    requirePeriod(`${percent ? 'PPO' : 'APO'} slow`, slow, 2);
    this.name = `${percent ? 'PPO' : 'APO'}(${fast},${slow})`;
    this.fastMa = new SmaCore(Math.min(fast, slow));
    this.slowMa = new SmaCore(Math.max(fast, slow));
    this.lookback = Math.max(fast, slow) - 1;
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    this.count++;
    this.fastMa.push(x);
    this.slowMa.push(x);
    if (this.count <= this.lookback) return;
    const f = this.fastMa.value;
    const s = this.slowMa.value;
    if (!this.percent) this.value = f - s;
    else this.value = isZero(s) ? 0.0 : ((f - s) / s) * 100.0;
  }

  protected onReset(): void {
    this.fastMa.reset();
    this.slowMa.reset();
  }
}

/** Percentage price oscillator: (SMA(fast) − SMA(slow)) / SMA(slow) · 100 (TA-Lib PPO, MA type SMA). */
export class PPO extends APO {
  constructor(fast = 12, slow = 26, source: Source = 'close') {
    super(fast, slow, source, true);
  }
}

/** Rate of change in percent: (x / x[n bars ago] − 1) · 100; 0 when the old value is 0 (TA-Lib ROC). */
export class ROC extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly ring: Ring;

  constructor(
    readonly period = 10,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('ROC', period);
    this.name = `ROC(${period})`;
    this.lookback = period;
    this.ring = new Ring(period + 1);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    this.ring.push(x);
    if (this.count++ < this.period) return;
    this.value = rateOfChange(x, this.ring.get(this.period));
  }

  protected onReset(): void {
    this.ring.clear();
  }
}

/** Momentum: x − x[n bars ago] (TA-Lib MOM). */
export class Momentum extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly ring: Ring;

  constructor(
    readonly period = 10,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('Momentum', period);
    this.name = `Momentum(${period})`;
    this.lookback = period;
    this.ring = new Ring(period + 1);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    this.ring.push(x);
    if (this.count++ < this.period) return;
    this.value = x - this.ring.get(this.period);
  }

  protected onReset(): void {
    this.ring.clear();
  }
}

/**
 * Chande momentum oscillator, 100·(gain − loss)/(gain + loss) on Wilder-smoothed averages, as
 * TA-Lib computes CMO (not the plain-sum form of Chande's book).
 */
export class CMO extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly gl: WilderGainLoss;

  constructor(
    readonly period = 14,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('CMO', period);
    this.name = `CMO(${period})`;
    this.lookback = period;
    this.gl = new WilderGainLoss(period);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    this.count++;
    if (!this.gl.push(x)) return;
    const g = this.gl.gain;
    const l = this.gl.loss;
    const t = g + l;
    this.value = isZero(t) ? 0.0 : 100.0 * ((g - l) / t);
  }

  protected onReset(): void {
    this.gl.reset();
  }
}

/**
 * Stochastic oscillator, slow form (TA-Lib STOCH with SMA smoothing): raw %K over `kPeriod` bars,
 * %K = SMA(raw, kSmooth), %D = SMA(%K, dPeriod). Both outputs are published from TA-Lib's lookback
 * (kPeriod − 1) + (kSmooth − 1) + (dPeriod − 1). A flat window gives raw %K = 0, as TA-Lib.
 */
export class Stochastic extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  k = Number.NaN;
  d = Number.NaN;
  private readonly range: RollingRange;
  private readonly kMa: SmaCore;
  private readonly dMa: SmaCore;

  constructor(
    readonly kPeriod = 14,
    readonly kSmooth = 3,
    readonly dPeriod = 3,
  ) {
    super();
    requirePeriod('Stochastic kPeriod', kPeriod);
    requirePeriod('Stochastic kSmooth', kSmooth);
    requirePeriod('Stochastic dPeriod', dPeriod);
    this.name = `Stochastic(${kPeriod},${kSmooth},${dPeriod})`;
    this.lookback = kPeriod - 1 + (kSmooth - 1) + (dPeriod - 1);
    this.range = new RollingRange(kPeriod);
    this.kMa = new SmaCore(kSmooth);
    this.dMa = new SmaCore(dPeriod);
  }

  update(bar: Bar): number {
    const n = this.count++;
    this.range.push(bar);
    const hh = this.range.max;
    const ll = this.range.min;
    if (n < this.kPeriod - 1) return this.value;
    const diff = (hh - ll) / 100.0;
    const raw = diff !== 0.0 ? (bar.close - ll) / diff : 0.0;
    this.kMa.push(raw);
    const k = this.kMa.value;
    if (Number.isNaN(k)) return this.value;
    this.dMa.push(k);
    const d = this.dMa.value;
    if (Number.isNaN(d)) return this.value;
    this.k = k;
    this.d = d;
    this.value = k;
    return k;
  }

  protected onReset(): void {
    this.range.reset();
    this.kMa.reset();
    this.dMa.reset();
    this.k = this.d = Number.NaN;
  }
}

/**
 * Stochastic RSI (TA-Lib STOCHRSI): the fast stochastic (STOCHF) of RSI(period) over `kPeriod`
 * values, %D = SMA(%K, dPeriod). The RSI inside uses TA-Lib's own arithmetic. Both outputs are
 * published from period + (kPeriod − 1) + (dPeriod − 1).
 */
export class StochRSI extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  k = Number.NaN;
  d = Number.NaN;
  private readonly gl: WilderGainLoss;
  private readonly range: RollingRange;
  // RSI values go into the range through one reused object: no double crosses a call.
  private readonly scratch = { high: 0, low: 0 };
  private readonly dMa: SmaCore;

  constructor(
    readonly period = 14,
    readonly kPeriod = 5,
    readonly dPeriod = 3,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('StochRSI period', period);
    requirePeriod('StochRSI kPeriod', kPeriod);
    requirePeriod('StochRSI dPeriod', dPeriod);
    this.name = `StochRSI(${period},${kPeriod},${dPeriod})`;
    this.lookback = period + (kPeriod - 1) + (dPeriod - 1);
    this.gl = new WilderGainLoss(period);
    this.range = new RollingRange(kPeriod);
    this.dMa = new SmaCore(dPeriod);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    this.count++;
    if (!this.gl.push(x)) return;
    const r = this.gl.rsi;
    this.scratch.high = r;
    this.scratch.low = r;
    this.range.push(this.scratch);
    const hh = this.range.max;
    const ll = this.range.min;
    if (this.range.pushed < this.kPeriod) return;
    const diff = (hh - ll) / 100.0;
    const k = diff !== 0.0 ? (r - ll) / diff : 0.0;
    this.dMa.push(k);
    const d = this.dMa.value;
    if (Number.isNaN(d)) return;
    this.k = k;
    this.d = d;
    this.value = k;
  }

  protected onReset(): void {
    this.gl.reset();
    this.range.reset();
    this.dMa.reset();
    this.k = this.d = Number.NaN;
  }
}

/** Williams %R over `period` bars, in [−100, 0]; a flat window gives 0 (TA-Lib WILLR). */
export class WilliamsR extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly range: RollingRange;

  constructor(readonly period = 14) {
    super();
    requirePeriod('WilliamsR', period);
    this.name = `WilliamsR(${period})`;
    this.lookback = period - 1;
    this.range = new RollingRange(period);
  }

  update(bar: Bar): number {
    const n = this.count++;
    this.range.push(bar);
    const hh = this.range.max;
    const ll = this.range.min;
    if (n < this.lookback) return this.value;
    const diff = (hh - ll) / -100.0;
    this.value = diff !== 0.0 ? (hh - bar.close) / diff : 0.0;
    return this.value;
  }

  protected onReset(): void {
    this.range.reset();
  }
}

/**
 * Commodity channel index on the typical price (h+l+c)/3 with TA-Lib's arithmetic (TA-Lib CCI).
 * The mean absolute deviation has no O(1) update, so each bar costs O(period) (no allocation).
 */
export class CCI extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly buf: Float64Array;
  private idx = 0;

  constructor(readonly period = 20) {
    super();
    requirePeriod('CCI', period);
    this.name = `CCI(${period})`;
    this.lookback = period - 1;
    this.buf = new Float64Array(period);
  }

  update(bar: Bar): number {
    const n = this.count++;
    const p = this.period;
    const tp = (bar.high + bar.low + bar.close) / 3;
    const buf = this.buf;
    buf[this.idx] = tp;
    this.idx = this.idx + 1 === p ? 0 : this.idx + 1;
    if (n < p - 1) return this.value;
    // TA-Lib sums its circular buffer in storage order, not in time order; so do we.
    let avg = 0;
    for (let j = 0; j < p; j++) avg += buf[j] as number;
    avg /= p;
    let dev = 0;
    for (let j = 0; j < p; j++) dev += Math.abs((buf[j] as number) - avg);
    const num = tp - avg;
    this.value = num !== 0.0 && dev !== 0.0 ? num / (0.015 * (dev / p)) : 0.0;
    return this.value;
  }

  protected onReset(): void {
    this.buf.fill(0);
    this.idx = 0;
  }
}

/**
 * Ultimate oscillator (TA-Lib ULTOSC): buying pressure over true range summed on three windows,
 * weighted 4:2:1. The periods are sorted ascending as TA-Lib does. Lookback = longest period.
 */
export class ULTOSC extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly p1: number;
  private readonly p2: number;
  private readonly p3: number;
  private readonly bp: Ring;
  private readonly tr: Ring;
  private a1 = 0;
  private a2 = 0;
  private a3 = 0;
  private b1 = 0;
  private b2 = 0;
  private b3 = 0;
  private prevClose = Number.NaN;

  constructor(period1 = 7, period2 = 14, period3 = 28) {
    super();
    requirePeriod('ULTOSC period1', period1);
    requirePeriod('ULTOSC period2', period2);
    requirePeriod('ULTOSC period3', period3);
    const s = [period1, period2, period3].sort((a, b) => a - b) as [number, number, number];
    [this.p1, this.p2, this.p3] = s;
    this.name = `ULTOSC(${period1},${period2},${period3})`;
    this.lookback = this.p3;
    this.bp = new Ring(this.p3);
    this.tr = new Ring(this.p3);
  }

  update(bar: Bar): number {
    const n = this.count++;
    if (n === 0) {
      this.prevClose = bar.close;
      return this.value;
    }
    const pc = this.prevClose;
    this.prevClose = bar.close;
    const trueLow = Math.min(bar.low, pc);
    const a = bar.close - trueLow;
    let tr = bar.high - bar.low;
    const t1 = Math.abs(pc - bar.high);
    if (t1 > tr) tr = t1;
    const t2 = Math.abs(pc - bar.low);
    if (t2 > tr) tr = t2;
    this.bp.push(a);
    this.tr.push(tr);
    const L = this.lookback;
    // Each window's totals start accumulating where TA-Lib primes them: from bar L − period + 1.
    if (n >= L - this.p1 + 1) {
      this.a1 += a;
      this.b1 += tr;
    }
    if (n >= L - this.p2 + 1) {
      this.a2 += a;
      this.b2 += tr;
    }
    if (n >= L - this.p3 + 1) {
      this.a3 += a;
      this.b3 += tr;
    }
    if (n < L) return this.value;
    let out = 0.0;
    if (!isZero(this.b1)) out += 4.0 * (this.a1 / this.b1);
    if (!isZero(this.b2)) out += 2.0 * (this.a2 / this.b2);
    if (!isZero(this.b3)) out += this.a3 / this.b3;
    this.a1 -= this.bp.get(this.p1 - 1);
    this.b1 -= this.tr.get(this.p1 - 1);
    this.a2 -= this.bp.get(this.p2 - 1);
    this.b2 -= this.tr.get(this.p2 - 1);
    this.a3 -= this.bp.get(this.p3 - 1);
    this.b3 -= this.tr.get(this.p3 - 1);
    this.value = 100.0 * (out / 7.0);
    return this.value;
  }

  protected onReset(): void {
    this.bp.clear();
    this.tr.clear();
    this.a1 = this.a2 = this.a3 = this.b1 = this.b2 = this.b3 = 0;
    this.prevClose = Number.NaN;
  }
}

/** Balance of power: (close − open) / (high − low), 0 on a zero range (TA-Lib BOP). */
export class BOP extends BarIndicator {
  readonly name = 'BOP';
  readonly lookback = 0;

  update(bar: Bar): number {
    this.count++;
    const r = bar.high - bar.low;
    this.value = r < 1e-14 ? 0.0 : (bar.close - bar.open) / r;
    return this.value;
  }

  protected onReset(): void {}
}

/**
 * Slope of the least-squares line through the last `period` values (TA-Lib LINEARREG_SLOPE, same
 * arithmetic). O(period) per bar: a running form would lose the bits TA-Lib keeps.
 */
export class LinRegSlope extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly ring: Ring;
  private readonly sumX: number;
  private readonly divisor: number;

  constructor(
    readonly period = 14,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('LinRegSlope', period, 2);
    this.name = `LinRegSlope(${period})`;
    this.lookback = period - 1;
    this.ring = new Ring(period);
    const p = period;
    this.sumX = p * (p - 1) * 0.5;
    const sumXSqr = (p * (p - 1) * (2 * p - 1)) / 6;
    this.divisor = this.sumX * this.sumX - p * sumXSqr;
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    this.ring.push(x);
    if (this.count++ < this.lookback) return;
    let sumXY = 0;
    let sumY = 0;
    for (let i = this.period; i-- !== 0; ) {
      const y = this.ring.get(i);
      sumY += y;
      sumXY += i * y;
    }
    this.value = (this.period * sumXY - this.sumX * sumY) / this.divisor;
  }

  protected onReset(): void {
    this.ring.clear();
  }
}
