import type { Bar } from '../model/bar.ts';
import { ExactRollingSum } from '../util/exact-sum.ts';
import { BarIndicator, Ring, requirePeriod, type Source, sourceValue } from './base.ts';

/**
 * Volume-weighted moving average: Σ(price·volume) / Σvolume over `period` bars, with exact window
 * sums. A window with zero volume gives the plain mean of the prices. No TA-Lib counterpart.
 */
export class VWMA extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly px: Float64Array;
  private readonly vol: Float64Array;
  private head = 0;
  private readonly pv = new ExactRollingSum();
  private readonly v = new ExactRollingSum();
  private readonly p = new ExactRollingSum();

  constructor(
    readonly period = 20,
    readonly source: Source = 'close',
  ) {
    super();
    requirePeriod('VWMA', period);
    this.name = `VWMA(${period})`;
    this.lookback = period - 1;
    this.px = new Float64Array(period);
    this.vol = new Float64Array(period);
  }

  update(bar: Bar): number {
    const x = this.source === 'close' ? bar.close : sourceValue(bar, this.source);
    const vol = bar.volume;
    const h = this.head;
    if (this.count >= this.period) {
      const oldX = this.px[h] as number;
      const oldV = this.vol[h] as number;
      this.pv.replace(x * vol, oldX * oldV);
      this.v.replace(vol, oldV);
      this.p.replace(x, oldX);
    } else {
      this.pv.add(x * vol);
      this.v.add(vol);
      this.p.add(x);
    }
    this.px[h] = x;
    this.vol[h] = vol;
    this.head = h + 1 === this.period ? 0 : h + 1;
    if (this.count++ < this.lookback) return this.value;
    const v = this.v.value;
    this.value = v > 0 ? this.pv.value / v : this.p.value / this.period;
    return this.value;
  }

  protected onReset(): void {
    this.px.fill(0);
    this.vol.fill(0);
    this.head = 0;
    this.pv.reset();
    this.v.reset();
    this.p.reset();
  }
}

const DAY_MS = 86_400_000;

export type VWAPAnchor = 'day' | 'rolling';

/**
 * Volume-weighted average price of the typical price (h+l+c)/3 with exact sums.
 * - anchor 'day' (default): cumulative from the first bar of each UTC day (bar.time is the bar's
 *   open time in UTC ms), reset when a bar opens on a new day. Lookback 0.
 * - anchor 'rolling': over the last `period` bars. Lookback period − 1.
 * While the volume so far is zero the VWAP is the typical price. No TA-Lib counterpart.
 */
export class VWAP extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly pv = new ExactRollingSum();
  private readonly v = new ExactRollingSum();
  /** Rolling anchor: the window's price x volume and volume per bar; pvBuf[head] is the oldest once full. */
  private readonly pvBuf: Float64Array | null;
  private readonly volBuf: Float64Array | null;
  private head = 0;
  private day = Number.NaN;

  constructor(
    readonly anchor: VWAPAnchor = 'day',
    readonly period = 0,
  ) {
    super();
    if (anchor === 'rolling') {
      requirePeriod('VWAP rolling period', period);
      this.pvBuf = new Float64Array(period);
      this.volBuf = new Float64Array(period);
      this.lookback = period - 1;
      this.name = `VWAP(rolling,${period})`;
    } else {
      this.pvBuf = this.volBuf = null;
      this.lookback = 0;
      this.name = 'VWAP(day)';
    }
  }

  update(bar: Bar): number {
    const tp = (bar.high + bar.low + bar.close) / 3;
    const vol = bar.volume;
    const pvBuf = this.pvBuf;
    const volBuf = this.volBuf;
    if (pvBuf !== null && volBuf !== null) {
      const h = this.head;
      const pv = tp * vol;
      if (this.count >= this.period) {
        this.pv.replace(pv, pvBuf[h] as number);
        this.v.replace(vol, volBuf[h] as number);
      } else {
        this.pv.add(pv);
        this.v.add(vol);
      }
      pvBuf[h] = pv;
      volBuf[h] = vol;
      this.head = h + 1 === this.period ? 0 : h + 1;
    } else {
      const day = Math.floor(bar.time / DAY_MS);
      if (day !== this.day) {
        this.day = day;
        this.pv.reset();
        this.v.reset();
      }
      this.pv.add(tp * vol);
      this.v.add(vol);
    }
    if (this.count++ < this.lookback) return this.value;
    const v = this.v.value;
    this.value = v > 0 ? this.pv.value / v : tp;
    return this.value;
  }

  protected onReset(): void {
    this.pv.reset();
    this.v.reset();
    this.pvBuf?.fill(0);
    this.volBuf?.fill(0);
    this.head = 0;
    this.day = Number.NaN;
  }
}

/** On-balance volume, starting from the first bar's volume as TA-Lib does (TA-Lib OBV). Lookback 0. */
export class OBV extends BarIndicator {
  readonly name = 'OBV';
  readonly lookback = 0;
  private prevClose = Number.NaN;

  update(bar: Bar): number {
    if (this.count++ === 0) {
      this.value = bar.volume;
    } else if (bar.close > this.prevClose) {
      this.value += bar.volume;
    } else if (bar.close < this.prevClose) {
      this.value -= bar.volume;
    }
    this.prevClose = bar.close;
    return this.value;
  }

  protected onReset(): void {
    this.prevClose = Number.NaN;
  }
}

/** Chaikin accumulation/distribution line, Σ money-flow multiplier · volume (TA-Lib AD). Lookback 0. */
export class AD extends BarIndicator {
  readonly name = 'AD';
  readonly lookback = 0;
  private ad = 0;

  update(bar: Bar): number {
    this.count++;
    // TA-Lib's money-flow multiplier ((c − l) − (h − c)) / (h − l), skipped on a zero range; inline
    // (not a helper) so that no double crosses a call.
    const r = bar.high - bar.low;
    if (r > 0.0) this.ad += ((bar.close - bar.low - (bar.high - bar.close)) / r) * bar.volume;
    this.value = this.ad;
    return this.value;
  }

  protected onReset(): void {
    this.ad = 0;
  }
}

/**
 * Chaikin A/D oscillator: EMA(fast) − EMA(slow) of the A/D line, both EMAs seeded with the first
 * A/D value (not an SMA) as TA-Lib ADOSC. Lookback = max(fast, slow) − 1.
 */
export class ADOSC extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  private ad = 0;
  private fastEma = 0;
  private slowEma = 0;
  private readonly fk: number;
  private readonly sk: number;

  constructor(
    readonly fast = 3,
    readonly slow = 10,
  ) {
    super();
    requirePeriod('ADOSC fast', fast, 2);
    requirePeriod('ADOSC slow', slow, 2);
    this.name = `ADOSC(${fast},${slow})`;
    this.lookback = Math.max(fast, slow) - 1;
    this.fk = 2.0 / (fast + 1);
    this.sk = 2.0 / (slow + 1);
  }

  update(bar: Bar): number {
    const r = bar.high - bar.low;
    if (r > 0.0) this.ad += ((bar.close - bar.low - (bar.high - bar.close)) / r) * bar.volume;
    if (this.count++ === 0) {
      this.fastEma = this.ad;
      this.slowEma = this.ad;
    } else {
      this.fastEma = this.fk * this.ad + (1.0 - this.fk) * this.fastEma;
      this.slowEma = this.sk * this.ad + (1.0 - this.sk) * this.slowEma;
    }
    if (this.count > this.lookback) this.value = this.fastEma - this.slowEma;
    return this.value;
  }

  protected onReset(): void {
    this.ad = this.fastEma = this.slowEma = 0;
  }
}

/**
 * Chaikin money flow: Σ(money-flow multiplier · volume) / Σvolume over `period` bars, exact sums;
 * 0 when the window has no volume. No TA-Lib counterpart.
 */
export class CMF extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly mfv: Ring;
  private readonly vol: Ring;
  private readonly sMfv = new ExactRollingSum();
  private readonly sVol = new ExactRollingSum();

  constructor(readonly period = 20) {
    super();
    requirePeriod('CMF', period);
    this.name = `CMF(${period})`;
    this.lookback = period - 1;
    this.mfv = new Ring(period);
    this.vol = new Ring(period);
  }

  update(bar: Bar): number {
    const r = bar.high - bar.low;
    const mv = r > 0.0 ? ((bar.close - bar.low - (bar.high - bar.close)) / r) * bar.volume : 0.0;
    const full = this.mfv.full;
    const oldM = this.mfv.push(mv);
    const oldV = this.vol.push(bar.volume);
    if (full) {
      this.sMfv.replace(mv, oldM);
      this.sVol.replace(bar.volume, oldV);
    } else {
      this.sMfv.add(mv);
      this.sVol.add(bar.volume);
    }
    if (this.count++ < this.lookback) return this.value;
    const v = this.sVol.value;
    this.value = v > 0 ? this.sMfv.value / v : 0;
    return this.value;
  }

  protected onReset(): void {
    this.mfv.clear();
    this.vol.clear();
    this.sMfv.reset();
    this.sVol.reset();
  }
}

/**
 * Money flow index over `period` bars with TA-Lib's arithmetic and quirk: when the total money
 * flow in the window is below 1.0 the index is 0 (TA-Lib MFI). Lookback = period.
 */
export class MFI extends BarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly pos: Float64Array;
  private readonly neg: Float64Array;
  private idx = 0;
  private posSum = 0;
  private negSum = 0;
  private prevTp = Number.NaN;

  constructor(readonly period = 14) {
    super();
    requirePeriod('MFI', period);
    this.name = `MFI(${period})`;
    this.lookback = period;
    this.pos = new Float64Array(period);
    this.neg = new Float64Array(period);
  }

  update(bar: Bar): number {
    const n = this.count++;
    const tp = (bar.high + bar.low + bar.close) / 3.0;
    if (n === 0) {
      this.prevTp = tp;
      return this.value;
    }
    const i = this.idx;
    if (n > this.period) {
      this.posSum -= this.pos[i] as number;
      this.negSum -= this.neg[i] as number;
    }
    const d = tp - this.prevTp;
    this.prevTp = tp;
    const mf = tp * bar.volume;
    if (d < 0) {
      this.neg[i] = mf;
      this.negSum += mf;
      this.pos[i] = 0.0;
    } else if (d > 0) {
      this.pos[i] = mf;
      this.posSum += mf;
      this.neg[i] = 0.0;
    } else {
      this.pos[i] = 0.0;
      this.neg[i] = 0.0;
    }
    this.idx = i + 1 === this.period ? 0 : i + 1;
    if (n < this.period) return this.value;
    const total = this.posSum + this.negSum;
    this.value = total < 1.0 ? 0.0 : 100.0 * (this.posSum / total);
    return this.value;
  }

  protected onReset(): void {
    this.pos.fill(0);
    this.neg.fill(0);
    this.idx = 0;
    this.posSum = this.negSum = 0;
    this.prevTp = Number.NaN;
  }
}
