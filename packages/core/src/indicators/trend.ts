import type { Bar } from '../model/bar.ts';
import { BarIndicator, Ring, requirePeriod } from './base.ts';
import { AtrCore, isZero, RollingRange, trueRange } from './cores.ts';

/**
 * Average directional index with +DI and −DI, Wilder-smoothed exactly as TA-Lib (ADX, PLUS_DI,
 * MINUS_DI). `plusDI`/`minusDI` are published from bar `period` (TA-Lib's DI lookback) and `adx`
 * (the primary value) from bar 2·period − 1 (TA-Lib's ADX lookback).
 */
export class ADX extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  adx = Number.NaN;
  plusDI = Number.NaN;
  minusDI = Number.NaN;
  private prevHigh = Number.NaN;
  private prevLow = Number.NaN;
  private prevClose = Number.NaN;
  private plusDM = 0;
  private minusDM = 0;
  private tr = 0;
  private sumDX = 0;

  constructor(readonly period = 14) {
    super();
    requirePeriod('ADX', period, 2);
    this.name = `ADX(${period})`;
    this.lookback = 2 * period - 1;
  }

  // `update` stays small enough to inline and `step` returns nothing: a double returned from a
  // call V8 does not inline is boxed, and ADX's body is too big to inline.
  update(bar: Bar): number {
    this.step(bar);
    return this.value;
  }

  private step(bar: Bar): void {
    const n = this.count++;
    const p = this.period;
    if (n === 0) {
      this.prevHigh = bar.high;
      this.prevLow = bar.low;
      this.prevClose = bar.close;
      return;
    }
    const diffP = bar.high - this.prevHigh;
    const diffM = this.prevLow - bar.low;
    this.prevHigh = bar.high;
    this.prevLow = bar.low;
    const tr = trueRange(bar.high, bar.low, this.prevClose);
    this.prevClose = bar.close;
    if (n < p) {
      if (diffM > 0 && diffP < diffM) this.minusDM += diffM;
      else if (diffP > 0 && diffP > diffM) this.plusDM += diffP;
      this.tr += tr;
      return;
    }
    this.minusDM -= this.minusDM / p;
    this.plusDM -= this.plusDM / p;
    if (diffM > 0 && diffP < diffM) this.minusDM += diffM;
    else if (diffP > 0 && diffP > diffM) this.plusDM += diffP;
    this.tr = this.tr - this.tr / p + tr;
    let dx = Number.NaN;
    if (!isZero(this.tr)) {
      const minusDI = 100.0 * (this.minusDM / this.tr);
      const plusDI = 100.0 * (this.plusDM / this.tr);
      this.minusDI = minusDI;
      this.plusDI = plusDI;
      const sum = minusDI + plusDI;
      if (!isZero(sum)) dx = 100.0 * (Math.abs(minusDI - plusDI) / sum);
    } else {
      this.minusDI = this.plusDI = 0.0;
    }
    if (n < 2 * p - 1) {
      if (!Number.isNaN(dx)) this.sumDX += dx;
      return;
    }
    if (n === 2 * p - 1) {
      if (!Number.isNaN(dx)) this.sumDX += dx;
      this.adx = this.sumDX / p;
    } else if (!Number.isNaN(dx)) {
      this.adx = (this.adx * (p - 1) + dx) / p;
    }
    this.value = this.adx;
  }

  protected onReset(): void {
    this.prevHigh = this.prevLow = this.prevClose = Number.NaN;
    this.plusDM = this.minusDM = this.tr = this.sumDX = 0;
    this.adx = this.plusDI = this.minusDI = Number.NaN;
  }
}

/**
 * Aroon over `period` bars (TA-Lib AROON / AROONOSC): the window is the last period + 1 bars, and
 * on ties the most recent extreme counts. `up`, `down` in [0, 100]; `value` is the oscillator
 * up − down. Lookback = period.
 */
export class Aroon extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  up = Number.NaN;
  down = Number.NaN;
  private readonly range: RollingRange;
  private readonly factor: number;

  constructor(readonly period = 14) {
    super();
    requirePeriod('Aroon', period, 2);
    this.name = `Aroon(${period})`;
    this.lookback = period;
    this.range = new RollingRange(period + 1);
    this.factor = 100.0 / period;
  }

  get oscillator(): number {
    return this.value;
  }

  update(bar: Bar): number {
    const n = this.count++;
    this.range.push(bar);
    if (n < this.period) return this.value;
    const hiAge = this.range.maxAge;
    const loAge = this.range.minAge;
    this.up = this.factor * (this.period - hiAge);
    this.down = this.factor * (this.period - loAge);
    // AROONOSC's own formula: factor · (highestIdx − lowestIdx).
    this.value = this.factor * (loAge - hiAge);
    return this.value;
  }

  protected onReset(): void {
    this.range.reset();
    this.up = this.down = Number.NaN;
  }
}

/**
 * Parabolic SAR with TA-Lib's semantics (TA-Lib SAR): the first direction comes from the −DM of
 * the first two bars, the first SAR is the extreme of bar 0, and the reported value at bar t is
 * the stop in force for bar t. Lookback 1. `long` tells the side of the stop.
 */
export class SAR extends BarIndicator {
  readonly name: string;
  readonly lookback = 1;
  long = true;
  private af = 0;
  private ep = 0;
  private sar = 0;
  private newHigh = 0;
  private newLow = 0;
  private readonly accel: number;

  constructor(
    acceleration = 0.02,
    readonly maximum = 0.2,
  ) {
    super();
    if (!(acceleration >= 0) || !(maximum >= 0))
      throw new Error(`SAR: acceleration and maximum must be >= 0, got ${acceleration}, ${maximum}`);
    this.accel = Math.min(acceleration, maximum);
    this.name = `SAR(${acceleration},${maximum})`;
  }

  get acceleration(): number {
    return this.accel;
  }

  update(bar: Bar): number {
    const n = this.count++;
    if (n === 0) {
      this.newHigh = bar.high;
      this.newLow = bar.low;
      return this.value;
    }
    if (n === 1) {
      const diffP = bar.high - this.newHigh;
      const diffM = this.newLow - bar.low;
      const minusDM = diffM > 0 && diffP < diffM ? diffM : 0;
      this.long = !(minusDM > 0);
      if (this.long) {
        this.ep = bar.high;
        this.sar = this.newLow;
      } else {
        this.ep = bar.low;
        this.sar = this.newHigh;
      }
      this.af = this.accel;
      // TA-Lib's loop starts with "previous" = this same bar.
      this.newLow = bar.low;
      this.newHigh = bar.high;
    }
    const prevLow = this.newLow;
    const prevHigh = this.newHigh;
    const newLow = bar.low;
    const newHigh = bar.high;
    this.newLow = newLow;
    this.newHigh = newHigh;
    const accel = this.accel;
    const max = this.maximum;
    let sar = this.sar;
    let out: number;
    if (this.long) {
      if (newLow <= sar) {
        this.long = false;
        sar = this.ep;
        if (sar < prevHigh) sar = prevHigh;
        if (sar < newHigh) sar = newHigh;
        out = sar;
        this.af = accel;
        this.ep = newLow;
        sar = sar + this.af * (this.ep - sar);
        if (sar < prevHigh) sar = prevHigh;
        if (sar < newHigh) sar = newHigh;
      } else {
        out = sar;
        if (newHigh > this.ep) {
          this.ep = newHigh;
          this.af += accel;
          if (this.af > max) this.af = max;
        }
        sar = sar + this.af * (this.ep - sar);
        if (sar > prevLow) sar = prevLow;
        if (sar > newLow) sar = newLow;
      }
    } else if (newHigh >= sar) {
      this.long = true;
      sar = this.ep;
      if (sar > prevLow) sar = prevLow;
      if (sar > newLow) sar = newLow;
      out = sar;
      this.af = accel;
      this.ep = newHigh;
      sar = sar + this.af * (this.ep - sar);
      if (sar > prevLow) sar = prevLow;
      if (sar > newLow) sar = newLow;
    } else {
      out = sar;
      if (newLow < this.ep) {
        this.ep = newLow;
        this.af += accel;
        if (this.af > max) this.af = max;
      }
      sar = sar + this.af * (this.ep - sar);
      if (sar < prevHigh) sar = prevHigh;
      if (sar < newHigh) sar = newHigh;
    }
    this.sar = sar;
    this.value = out;
    return out;
  }

  protected onReset(): void {
    this.long = true;
    this.af = this.ep = this.sar = this.newHigh = this.newLow = 0;
  }
}

/**
 * SuperTrend on hl2 ± multiplier·ATR (TA-Lib's Wilder ATR), with the usual band ratchet: a band
 * only tightens while price stays on its side. `direction` is +1 (uptrend, line = lower band) or
 * −1 (downtrend, line = upper band); the first defined bar starts in a downtrend, as TradingView.
 * No TA-Lib counterpart. Lookback = ATR lookback = period.
 */
export class SuperTrend extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  direction = 0;
  upper = Number.NaN;
  lower = Number.NaN;
  private readonly atr: AtrCore;
  private prevClose = Number.NaN;

  constructor(
    readonly period = 10,
    readonly multiplier = 3,
  ) {
    super();
    requirePeriod('SuperTrend', period);
    if (!(multiplier > 0)) throw new Error(`SuperTrend: multiplier must be > 0, got ${multiplier}`);
    this.name = `SuperTrend(${period},${multiplier})`;
    this.lookback = period;
    this.atr = new AtrCore(period);
  }

  update(bar: Bar): number {
    this.count++;
    this.atr.push(bar.high, bar.low, bar.close);
    const atr = this.atr.value;
    const prevClose = this.prevClose;
    this.prevClose = bar.close;
    if (Number.isNaN(atr)) return this.value;
    const mid = (bar.high + bar.low) / 2;
    let up = mid + this.multiplier * atr;
    let lo = mid - this.multiplier * atr;
    if (this.direction === 0) {
      this.direction = -1;
    } else {
      const prevUp = this.upper;
      const prevLo = this.lower;
      if (!(up < prevUp || prevClose > prevUp)) up = prevUp;
      if (!(lo > prevLo || prevClose < prevLo)) lo = prevLo;
      if (this.direction === -1) this.direction = bar.close > up ? 1 : -1;
      else this.direction = bar.close < lo ? -1 : 1;
    }
    this.upper = up;
    this.lower = lo;
    this.value = this.direction === 1 ? lo : up;
    return this.value;
  }

  protected onReset(): void {
    this.atr.reset();
    this.prevClose = Number.NaN;
    this.direction = 0;
    this.upper = this.lower = Number.NaN;
  }
}

/**
 * Ichimoku kinko hyo, computed without lookahead. At each bar:
 * - `tenkan` = midpoint of the last `tenkanPeriod` highs/lows, `kijun` the same over `kijunPeriod`;
 * - `senkouA` = (tenkan + kijun)/2 and `senkouB` = midpoint over `senkouPeriod`, as computed NOW:
 *   a chart plots them `displacement` bars ahead;
 * - `cloudA`/`cloudB` = the senkou values computed `displacement` bars ago, i.e. the cloud a chart
 *   draws under the current bar (what a strategy compares price with);
 * - `chikou` = the current close, which a chart plots `displacement` bars back. (The chikou line
 *   "at" the current bar would be a future close, so it is not offered.)
 * `value` is the kijun (base line). No TA-Lib counterpart.
 */
export class Ichimoku extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  tenkan = Number.NaN;
  kijun = Number.NaN;
  senkouA = Number.NaN;
  senkouB = Number.NaN;
  cloudA = Number.NaN;
  cloudB = Number.NaN;
  chikou = Number.NaN;
  private readonly tRange: RollingRange;
  private readonly kRange: RollingRange;
  private readonly sRange: RollingRange;
  private readonly pastA: Ring;
  private readonly pastB: Ring;

  constructor(
    readonly tenkanPeriod = 9,
    readonly kijunPeriod = 26,
    readonly senkouPeriod = 52,
    readonly displacement = 26,
  ) {
    super();
    requirePeriod('Ichimoku tenkan', tenkanPeriod);
    requirePeriod('Ichimoku kijun', kijunPeriod);
    requirePeriod('Ichimoku senkou', senkouPeriod);
    requirePeriod('Ichimoku displacement', displacement);
    this.name = `Ichimoku(${tenkanPeriod},${kijunPeriod},${senkouPeriod},${displacement})`;
    this.lookback = kijunPeriod - 1;
    this.tRange = new RollingRange(tenkanPeriod);
    this.kRange = new RollingRange(kijunPeriod);
    this.sRange = new RollingRange(senkouPeriod);
    this.pastA = new Ring(displacement + 1);
    this.pastB = new Ring(displacement + 1);
  }

  update(bar: Bar): number {
    const n = this.count++;
    this.tRange.push(bar);
    this.kRange.push(bar);
    this.sRange.push(bar);
    const th = this.tRange.max;
    const tl = this.tRange.min;
    const kh = this.kRange.max;
    const kl = this.kRange.min;
    const sh = this.sRange.max;
    const sl = this.sRange.min;
    this.chikou = bar.close;
    this.tenkan = n >= this.tenkanPeriod - 1 ? (th + tl) / 2 : Number.NaN;
    this.kijun = n >= this.kijunPeriod - 1 ? (kh + kl) / 2 : Number.NaN;
    this.senkouA = (this.tenkan + this.kijun) / 2;
    this.senkouB = n >= this.senkouPeriod - 1 ? (sh + sl) / 2 : Number.NaN;
    this.pastA.push(this.senkouA);
    this.pastB.push(this.senkouB);
    if (this.pastA.full) {
      this.cloudA = this.pastA.get(this.displacement);
      this.cloudB = this.pastB.get(this.displacement);
    }
    this.value = this.kijun;
    return this.value;
  }

  protected onReset(): void {
    this.tRange.reset();
    this.kRange.reset();
    this.sRange.reset();
    this.pastA.clear();
    this.pastB.clear();
    this.tenkan = this.kijun = this.senkouA = this.senkouB = Number.NaN;
    this.cloudA = this.cloudB = this.chikou = Number.NaN;
  }
}
