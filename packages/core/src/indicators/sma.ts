import type { Bar } from '../model/bar.ts';
import { ExactRollingSum } from '../util/exact-sum.ts';
import { Ring, requirePeriod, ScalarIndicator, type Source, sourceValue } from './base.ts';

/**
 * Simple moving average. The window sum is exact (correctly rounded, as Python's math.fsum), so
 * SMA values are bit-identical to backtrader's and ties between two averages are real ties.
 */
export class SMA extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly ring: Ring;
  private readonly sum = new ExactRollingSum();

  constructor(
    readonly period: number,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('SMA', period);
    this.name = `SMA(${period})`;
    this.lookback = period - 1;
    this.ring = new Ring(period);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    const out = this.ring.push(x);
    this.sum.add(x);
    if (this.ring.full && this.count >= this.period) this.sum.add(-out);
    this.count++;
    this.value = this.count >= this.period ? this.sum.value / this.period : Number.NaN;
  }

  protected onReset(): void {
    this.ring.clear();
    this.sum.reset();
  }
}
