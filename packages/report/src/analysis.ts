import type { BacktestResult } from '@keel/core';

/** The return of one calendar month (UTC) of the equity curve. */
export interface MonthReturn {
  readonly year: number;
  /** 1 to 12. */
  readonly month: number;
  /** Equity at the close of the month's last bar / at the close of the previous month's (or the start value) - 1. */
  readonly return: number;
  /** Equity at the close of the month's last bar. */
  readonly endValue: number;
}

export interface YearReturns {
  readonly year: number;
  /** Indexed 0 (January) to 11; null for a month without bars in the run. */
  readonly months: readonly (MonthReturn | null)[];
  /** The months' returns compounded: end of the year's last month / end of the year before (or start) - 1. */
  readonly total: number;
}

/**
 * Monthly returns of the equity curve. A bar belongs to the month it opened in (an equity value
 * is stamped with its bar's close, so a daily bar closing at midnight on the 1st is the last day of
 * the month before): its time less 1 ms decides. The first month is measured from the start value,
 * so the months compound to the total return exactly.
 */
export function monthlyReturns(equity: BacktestResult['equity'], startValue: number): YearReturns[] {
  const { times, values } = equity;
  const months: MonthReturn[] = [];
  let base = startValue;
  let key = Number.NaN;
  let year = 0;
  let month = 0;
  let last = Number.NaN;
  const flush = () => {
    months.push({ year, month, return: last / base - 1, endValue: last });
    base = last;
  };
  for (let i = 0; i < times.length; i++) {
    const d = new Date((times[i] as number) - 1);
    const y = d.getUTCFullYear();
    const m = d.getUTCMonth() + 1;
    const k = y * 12 + m;
    if (k !== key) {
      if (!Number.isNaN(key)) flush();
      key = k;
      year = y;
      month = m;
    }
    last = values[i] as number;
  }
  if (!Number.isNaN(key)) flush();
  const years: YearReturns[] = [];
  for (const r of months) {
    let y = years[years.length - 1];
    if (y === undefined || y.year !== r.year) {
      y = { year: r.year, months: new Array<MonthReturn | null>(12).fill(null), total: 0 };
      years.push(y);
    }
    (y.months as (MonthReturn | null)[])[r.month - 1] = r;
  }
  let prevEnd = startValue;
  return years.map((y) => {
    const lastMonth = [...y.months].reverse().find((m) => m !== null) as MonthReturn;
    const total = lastMonth.endValue / prevEnd - 1;
    prevEnd = lastMonth.endValue;
    return { ...y, total };
  });
}

/** One bin of the trade-return histogram: returns in [lo, hi) percent. */
export interface ReturnBin {
  readonly lo: number;
  readonly hi: number;
  readonly count: number;
}

export interface ReturnHistogram {
  /** Bin width in percent: 1, 2, 2.5 or 5 times a power of ten. */
  readonly width: number;
  /** Consecutive bins from the lowest return's to the highest's (empty bins included). */
  readonly bins: readonly ReturnBin[];
  readonly count: number;
  /** Trades with a NaN or infinite return, left out of the bins (and counted here). */
  readonly skipped: number;
}

const NICE = [1, 2, 2.5, 5] as const;

/**
 * Closed trades' returns (percent, as Trade.returnPct) in bins of one "nice" width, the smallest
 * that needs at most `maxBins` bins. Bins are aligned on 0 (no bin holds both losers and winners)
 * and hold their lower edge: a trade of exactly 0 % is in [0, width).
 */
export function returnHistogram(returns: readonly number[], maxBins = 30): ReturnHistogram {
  const xs = returns.filter((x) => Number.isFinite(x));
  const skipped = returns.length - xs.length;
  if (xs.length === 0) return { width: 1, bins: [], count: 0, skipped };
  let min = xs[0] as number;
  let max = min;
  for (const x of xs) {
    if (x < min) min = x;
    if (x > max) max = x;
  }
  // A tiny tolerance: 0.6 / 0.2 is 2.9999999999999996 in floating point and belongs in bin 3.
  const index = (x: number, w: number) => Math.floor(x / w + 1e-9);
  let width = 0;
  for (let e = -3; e <= 6 && width === 0; e++) {
    for (const m of NICE) {
      const w = Number((m * 10 ** e).toPrecision(3));
      if (index(max, w) - index(min, w) + 1 <= maxBins) {
        width = w;
        break;
      }
    }
  }
  if (width === 0) width = Number((10 ** 7).toPrecision(3));
  const first = index(min, width);
  const counts = new Array<number>(index(max, width) - first + 1).fill(0);
  for (const x of xs) {
    const k = index(x, width) - first;
    counts[k] = (counts[k] as number) + 1;
  }
  const edge = (k: number) => Number(((first + k) * width).toPrecision(12));
  return {
    width,
    bins: counts.map((count, k) => ({ lo: edge(k), hi: edge(k + 1), count })),
    count: xs.length,
    skipped,
  };
}
