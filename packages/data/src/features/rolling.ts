import type { BarSeries, Timeframe } from '@keel/core';
import { rollingExtremeColumn, smaColumn, timeframeMs, windowSumColumn } from '@keel/core';

/**
 * Column building blocks for features, each O(1) per row. Window means, sums and extremes are
 * core's (smaColumn, windowSumColumn, rollingExtremeColumn: the SMA's exact window sum and the
 * range indicators' monotonic deque), re-exported here under the names features use. Only the
 * sample covariance (and the SD derived from it), which no indicator defines, is written here.
 */

/** Exact trailing sum over w rows; NaN while the window is short or holds a NaN (core windowSumColumn). */
export const rollingSum = windowSumColumn;

/** Trailing mean over w rows; NaN while the window is short or holds a NaN (core smaColumn). */
export const rollingMean = smaColumn;

/** Trailing max (sign 1) or min (sign -1) over w rows (core rollingExtremeColumn). */
export function rollingExtreme(x: Float64Array, w: number, sign: 1 | -1, out?: Float64Array): Float64Array {
  return rollingExtremeColumn(x, w, sign === 1 ? 'max' : 'min', out);
}

/** Rows between re-summations of the covariance's running sums from the window (they drift by rounding otherwise). */
const RESUM_EVERY_ROWS = 4096;

/**
 * Trailing sample covariance (n - 1) of x and y over w rows; NaN while the window is short or
 * holds a NaN in either column. No indicator defines it, so it lives here: plain running sums,
 * re-summed from the window every RESUM_EVERY_ROWS rows so that rounding cannot accumulate.
 */
export function rollingCov(
  x: Float64Array,
  y: Float64Array,
  w: number,
  out: Float64Array = new Float64Array(x.length),
): Float64Array {
  let sx = 0;
  let sy = 0;
  let sxy = 0;
  let run = 0;
  for (let i = 0; i < x.length; i++) {
    const a = x[i] as number;
    const b = y[i] as number;
    if (!Number.isNaN(a) && !Number.isNaN(b)) {
      sx += a;
      sy += b;
      sxy += a * b;
      run++;
    } else run = 0;
    if (i >= w) {
      const c = x[i - w] as number;
      const d = y[i - w] as number;
      if (!Number.isNaN(c) && !Number.isNaN(d)) {
        sx -= c;
        sy -= d;
        sxy -= c * d;
      }
    }
    if (run < w) {
      out[i] = Number.NaN;
      continue;
    }
    if (i % RESUM_EVERY_ROWS === 0) {
      sx = 0;
      sy = 0;
      sxy = 0;
      for (let j = i - w + 1; j <= i; j++) {
        const p = x[j] as number;
        const q = y[j] as number;
        sx += p;
        sy += q;
        sxy += p * q;
      }
    }
    out[i] = (sxy - (sx * sy) / w) / (w - 1);
  }
  return out;
}

/** Trailing sample standard deviation over w rows: the square root of the covariance of x with itself. */
export function rollingStd(x: Float64Array, w: number, out: Float64Array = new Float64Array(x.length)): Float64Array {
  rollingCov(x, x, w, out);
  // A variance rounded below zero is a flat window.
  for (let i = 0; i < out.length; i++) out[i] = Math.sqrt(Math.max(0, out[i] as number));
  return out;
}

/** Bars per year for a timeframe (crypto trades 24/7: 365.25 days). */
export function periodsPerYear(tf: Timeframe): number {
  if (tf === '1M') return 12;
  return (365.25 * 86_400_000) / timeframeMs(tf);
}

/** Reference closes aligned to `time` (NaN where the reference has no bar at that open time). */
export function alignReference(time: Float64Array, ref: BarSeries): Float64Array {
  const out = new Float64Array(time.length);
  let j = 0;
  for (let i = 0; i < time.length; i++) {
    const t = time[i] as number;
    while (j < ref.length && (ref.time[j] as number) < t) j++;
    out[i] = j < ref.length && ref.time[j] === t ? (ref.close[j] as number) : Number.NaN;
  }
  return out;
}

export function scale(a: Float64Array, k: number): Float64Array {
  for (let i = 0; i < a.length; i++) a[i] = (a[i] as number) * k;
  return a;
}

/** out = a / b - 1, row by row. */
export function ratioMinusOne(a: Float64Array, b: Float64Array, out: Float64Array): void {
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) / (b[i] as number) - 1;
}
