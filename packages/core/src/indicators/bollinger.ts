import type { Bar } from '../model/bar.ts';
import { ExactRollingSum } from '../util/exact-sum.ts';
import { Ring, requirePeriod, ScalarIndicator, type Source, sourceValue } from './base.ts';

/**
 * Bollinger bands with the POPULATION standard deviation (divide by N), as TA-Lib and backtrader.
 * sd = sqrt(|E[x^2] - E[x]^2|) with both means from exact window sums (backtrader's formula).
 * `value` is the middle band.
 */
export class Bollinger extends ScalarIndicator {
  readonly name: string;
  readonly lookback: number;
  upper = Number.NaN;
  lower = Number.NaN;
  stddev = Number.NaN;
  private readonly ring: Ring;
  private readonly sum = new ExactRollingSum();
  private readonly sumSq = new ExactRollingSum();

  constructor(
    readonly period = 20,
    readonly k = 2,
    source: Source = 'close',
  ) {
    super(source);
    requirePeriod('Bollinger', period);
    if (!(k > 0)) throw new Error(`Bollinger: k (standard deviations) must be > 0, got ${k}`);
    this.name = `Bollinger(${period},${k})`;
    this.lookback = period - 1;
    this.ring = new Ring(period);
  }

  get middle(): number {
    return this.value;
  }

  override update(bar: Bar): number {
    this.step(this.source === 'close' ? bar.close : sourceValue(bar, this.source));
    return this.value;
  }

  protected step(x: number): void {
    const out = this.ring.push(x);
    if (this.count >= this.period) {
      this.sum.replace(x, out);
      this.sumSq.replace(x * x, out * out);
    } else {
      this.sum.add(x);
      this.sumSq.add(x * x);
    }
    this.count++;
    if (this.count < this.period) return;
    const mid = this.sum.value / this.period;
    const meansq = this.sumSq.value / this.period;
    const sd = Math.sqrt(Math.abs(meansq - mid * mid));
    this.value = mid;
    this.stddev = sd;
    this.upper = mid + this.k * sd;
    this.lower = mid - this.k * sd;
  }

  protected onReset(): void {
    this.ring.clear();
    this.sum.reset();
    this.sumSq.reset();
    this.upper = this.lower = this.stddev = Number.NaN;
  }
}
