/**
 * Cross detector between two series (backtrader's CrossOver): +1 when `a` crosses above `b`,
 * -1 when it crosses below, else 0. Equality does not reset the side: the last non-zero
 * difference is remembered, so touching and bouncing back is not a cross.
 */
export class CrossOver {
  value = 0;
  private lastNonZero = Number.NaN;

  update(a: number, b: number): number {
    if (Number.isNaN(a) || Number.isNaN(b)) {
      this.value = 0;
      return 0;
    }
    const d = a - b;
    const prev = this.lastNonZero;
    this.value = prev < 0 && a > b ? 1 : prev > 0 && a < b ? -1 : 0;
    if (d !== 0 || Number.isNaN(prev)) this.lastNonZero = d;
    return this.value;
  }

  reset(): void {
    this.value = 0;
    this.lastNonZero = Number.NaN;
  }
}
