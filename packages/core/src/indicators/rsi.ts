import type { Bar } from '../model/bar.ts';
import { ExactRollingSum } from '../util/exact-sum.ts';
import { requirePeriod, ScalarIndicator, type Source, sourceValue } from './base.ts';

/**
 * RSI with Wilder's smoothing, seeded by the simple mean of the first `period` changes
 * (TA-Lib's and backtrader's RSI). First defined at bar `period`.
 */
export class RSI extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private prev = Number.NaN;
  private avgUp = 0;
  private avgDn = 0;
  private readonly seedUp = new ExactRollingSum();
  private readonly seedDn = new ExactRollingSum();
  private readonly alpha: number;
  private readonly alpha1: number;

  constructor(
    readonly period = 14,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('RSI', period);
    this.name = `RSI(${period})`;
    this.lookback = period;
    this.alpha = 1.0 / period;
    this.alpha1 = 1.0 - this.alpha;
  }

  /** Average gain and loss, exposed for strategies that need them. */
  get averageGain(): number {
    return this.count > this.period ? this.avgUp : Number.NaN;
  }
  get averageLoss(): number {
    return this.count > this.period ? this.avgDn : Number.NaN;
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    const n = this.count++;
    if (n === 0) {
      this.prev = x;
      return;
    }
    const up = Math.max(x - this.prev, 0.0);
    const dn = Math.max(this.prev - x, 0.0);
    this.prev = x;
    if (n < this.period) {
      this.seedUp.add(up);
      this.seedDn.add(dn);
      return;
    }
    if (n === this.period) {
      this.seedUp.add(up);
      this.seedDn.add(dn);
      this.avgUp = this.seedUp.value / this.period;
      this.avgDn = this.seedDn.value / this.period;
    } else {
      this.avgUp = this.avgUp * this.alpha1 + up * this.alpha;
      this.avgDn = this.avgDn * this.alpha1 + dn * this.alpha;
    }
    // avgDn = 0 (no losses in the window) is RSI 100, as TA-Lib; backtrader would divide by zero.
    this.value = this.avgDn === 0 ? (this.avgUp === 0 ? 50 : 100) : 100.0 - 100.0 / (1.0 + this.avgUp / this.avgDn);
  }

  protected onReset(): void {
    this.prev = Number.NaN;
    this.avgUp = 0;
    this.avgDn = 0;
    this.seedUp.reset();
    this.seedDn.reset();
  }
}
