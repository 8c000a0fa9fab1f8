import type { Bar } from '../model/bar.ts';
import { Ring, requirePeriod, ScalarIndicator, type Source, sourceValue } from './base.ts';
import { EmaCore, isZero, WmaCore } from './cores.ts';

/** Exponential moving average, k = 2 / (period + 1), seeded by the SMA of the first `period` values (TA-Lib EMA). */
export class EMA extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly ema: EmaCore;

  constructor(
    readonly period = 20,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('EMA', period);
    this.name = `EMA(${period})`;
    this.lookback = period - 1;
    this.ema = new EmaCore(period);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    this.count++;
    this.ema.push(x);
    this.value = this.ema.value;
  }

  protected onReset(): void {
    this.ema.reset();
  }
}

/** Linearly weighted moving average, weights 1..period with the newest heaviest (TA-Lib WMA). */
export class WMA extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly wma: WmaCore;

  constructor(
    readonly period = 20,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('WMA', period);
    this.name = `WMA(${period})`;
    this.lookback = period - 1;
    this.wma = new WmaCore(period);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    this.count++;
    this.wma.push(x);
    this.value = this.wma.value;
  }

  protected onReset(): void {
    this.wma.reset();
  }
}

/** Double EMA: 2·EMA − EMA(EMA), each EMA seeded as TA-Lib's (TA-Lib DEMA). Lookback 2·(period − 1). */
export class DEMA extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly e1: EmaCore;
  private readonly e2: EmaCore;

  constructor(
    readonly period = 20,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('DEMA', period);
    this.name = `DEMA(${period})`;
    this.lookback = 2 * (period - 1);
    this.e1 = new EmaCore(period);
    this.e2 = new EmaCore(period);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    this.count++;
    this.e1.push(x);
    const a = this.e1.value;
    if (!this.e1.ready) return;
    this.e2.push(a);
    const b = this.e2.value;
    if (this.e2.ready) this.value = 2.0 * a - b;
  }

  protected onReset(): void {
    this.e1.reset();
    this.e2.reset();
  }
}

/** Triple EMA: 3·EMA − 3·EMA² + EMA³ (TA-Lib TEMA). Lookback 3·(period − 1). */
export class TEMA extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly e1: EmaCore;
  private readonly e2: EmaCore;
  private readonly e3: EmaCore;

  constructor(
    readonly period = 20,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('TEMA', period);
    this.name = `TEMA(${period})`;
    this.lookback = 3 * (period - 1);
    this.e1 = new EmaCore(period);
    this.e2 = new EmaCore(period);
    this.e3 = new EmaCore(period);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    this.count++;
    this.e1.push(x);
    const a = this.e1.value;
    if (!this.e1.ready) return;
    this.e2.push(a);
    const b = this.e2.value;
    if (!this.e2.ready) return;
    this.e3.push(b);
    const c = this.e3.value;
    // TA-Lib's order of operations: ema3 + ((3·ema1) − (3·ema2)).
    if (this.e3.ready) this.value = c + (3.0 * a - 3.0 * b);
  }

  protected onReset(): void {
    this.e1.reset();
    this.e2.reset();
    this.e3.reset();
  }
}

/**
 * TRIX: one-bar rate of change (percent) of a triple-smoothed EMA (TA-Lib TRIX).
 * Lookback 3·(period − 1) + 1.
 */
export class TRIX extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly e1: EmaCore;
  private readonly e2: EmaCore;
  private readonly e3: EmaCore;
  private prev = Number.NaN;

  constructor(
    readonly period = 30,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('TRIX', period);
    this.name = `TRIX(${period})`;
    this.lookback = 3 * (period - 1) + 1;
    this.e1 = new EmaCore(period);
    this.e2 = new EmaCore(period);
    this.e3 = new EmaCore(period);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    this.count++;
    this.e1.push(x);
    const a = this.e1.value;
    if (!this.e1.ready) return;
    this.e2.push(a);
    const b = this.e2.value;
    if (!this.e2.ready) return;
    this.e3.push(b);
    const c = this.e3.value;
    if (!this.e3.ready) return;
    const prev = this.prev;
    this.prev = c;
    if (Number.isNaN(prev)) return;
    this.value = prev !== 0.0 ? (c / prev - 1.0) * 100.0 : 0.0;
  }

  protected onReset(): void {
    this.e1.reset();
    this.e2.reset();
    this.e3.reset();
    this.prev = Number.NaN;
  }
}

/**
 * Hull moving average: WMA(2·WMA(n/2) − WMA(n), √n) with n/2 and √n floored (Alan Hull's
 * definition, as TradingView). No TA-Lib counterpart. Lookback (n − 1) + (⌊√n⌋ − 1).
 */
export class HMA extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly half: WmaCore;
  private readonly full: WmaCore;
  private readonly smooth: WmaCore;

  constructor(
    readonly period = 20,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('HMA', period, 2);
    this.name = `HMA(${period})`;
    const sq = Math.floor(Math.sqrt(period));
    this.lookback = period - 1 + (sq - 1);
    this.half = new WmaCore(Math.floor(period / 2));
    this.full = new WmaCore(period);
    this.smooth = new WmaCore(sq);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    const n = this.count++;
    this.half.push(x);
    const h = this.half.value;
    this.full.push(x);
    const f = this.full.value;
    if (n < this.period - 1) return;
    this.smooth.push(2 * h - f);
    this.value = this.smooth.value;
  }

  protected onReset(): void {
    this.half.reset();
    this.full.reset();
    this.smooth.reset();
  }
}

const KAMA_SLOWEST = 2.0 / (30.0 + 1.0);
const KAMA_DIFF = 2.0 / (2.0 + 1.0) - KAMA_SLOWEST;

/**
 * Kaufman adaptive moving average with TA-Lib's fixed fast/slow constants (2 and 30) and its
 * seeding: the first output, at bar `period`, starts from the previous close (TA-Lib KAMA).
 */
export class KAMA extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly ring: Ring;
  private sumROC1 = 0;
  private trailing = 0;

  constructor(
    readonly period = 30,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('KAMA', period, 2);
    this.name = `KAMA(${period})`;
    this.lookback = period;
    this.ring = new Ring(period + 1);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    const n = this.count++;
    const p = this.period;
    this.ring.push(x);
    if (n === 0) return;
    const prevX = this.ring.get(1);
    if (n < p) {
      this.sumROC1 += Math.abs(prevX - x);
      return;
    }
    const oldest = this.ring.get(p);
    const periodROC = x - oldest;
    let prevKama: number;
    if (n === p) {
      this.sumROC1 += Math.abs(prevX - x);
      prevKama = prevX;
    } else {
      this.sumROC1 -= Math.abs(this.trailing - oldest);
      this.sumROC1 += Math.abs(x - prevX);
      prevKama = this.value;
    }
    this.trailing = oldest;
    const s = this.sumROC1;
    let er = s <= periodROC || isZero(s) ? 1.0 : Math.abs(periodROC / s);
    er = er * KAMA_DIFF + KAMA_SLOWEST;
    er *= er;
    this.value = (x - prevKama) * er + prevKama;
  }

  protected onReset(): void {
    this.ring.clear();
    this.sumROC1 = 0;
    this.trailing = 0;
  }
}
