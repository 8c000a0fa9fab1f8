/**
 * Exact summation primitives.
 *
 * Why: backtrader (our reference engine) computes window sums with Python's math.fsum, which is
 * correctly rounded. A plain running sum differs in the last bits and, on real data, breaks exact
 * ties between two moving averages (ETHUSDT 1m 2024-01 has four such bars). A double-double
 * running sum holds the exact window sum for any realistic price data (the exact sum of doubles
 * whose magnitudes span less than ~2^50 fits in 106 bits), so rounding it once gives fsum's result
 * in O(1) per update.
 */

/** Correctly rounded sum of xs[from..to) (Neumaier/Shewchuk style two-term expansion). */
export function exactSum(xs: ArrayLike<number>, from = 0, to = xs.length): number {
  let hi = 0;
  let lo = 0;
  for (let i = from; i < to; i++) {
    const x = xs[i] as number;
    const s = hi + x;
    const bp = s - hi;
    const err = hi - (s - bp) + (x - bp);
    hi = s;
    lo += err;
    // renormalise so that hi = fl(hi + lo) and lo is the exact remainder
    const t = hi + lo;
    lo = lo - (t - hi);
    hi = t;
  }
  return hi;
}

/** A running sum kept as an unevaluated pair (hi, lo) with hi = fl(hi + lo). Allocation-free. */
export class ExactRollingSum {
  private hi = 0;
  private lo = 0;

  reset(): void {
    this.hi = 0;
    this.lo = 0;
  }

  add(x: number): void {
    const hi = this.hi;
    const s = hi + x;
    const bp = s - hi;
    const err = hi - (s - bp) + (x - bp);
    const lo = this.lo + err;
    const t = s + lo;
    this.lo = lo - (t - s);
    this.hi = t;
  }

  /**
   * Adds `add - remove` (a value entering a window and one leaving it) in one accumulation: the
   * difference is split exactly into a double and its rounding error first, so the running sum's
   * dependency chain is walked once per window step instead of twice (about twice as fast as two
   * adds). Exact under the same condition as add: the rounding errors share the data's grid.
   */
  replace(add: number, remove: number): void {
    const d = add - remove;
    const db = d - add;
    const dErr = add - (d - db) + (-remove - db);
    const hi = this.hi;
    const s = hi + d;
    const bp = s - hi;
    const err = hi - (s - bp) + (d - bp);
    const lo = this.lo + err + dErr;
    const t = s + lo;
    this.lo = lo - (t - s);
    this.hi = t;
  }

  /** The correctly rounded value of the exact running sum. */
  get value(): number {
    return this.hi;
  }
}
