import type { Bar } from '../model/bar.ts';
import { requirePeriod, ScalarIndicator, type Source, sourceValue } from './base.ts';
import { SmaCore } from './cores.ts';

/**
 * Simple moving average. The window sum is exact (correctly rounded, as Python's math.fsum), so
 * SMA values are bit-identical to backtrader's and ties between two averages are real ties.
 */
export class SMA extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  private readonly sma: SmaCore;

  constructor(
    readonly period: number,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('SMA', period);
    this.name = `SMA(${period})`;
    this.lookback = period - 1;
    this.sma = new SmaCore(period);
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    this.count++;
    this.sma.push(x);
    this.value = this.sma.value;
  }

  protected onReset(): void {
    this.sma.reset();
  }
}
