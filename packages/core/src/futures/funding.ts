/**
 * Funding of a perpetual: the series of funding times and rates, and the payment one position
 * makes or receives at each. Binance: funding fee = position notional at the mark price at
 * funding time x funding rate; with a positive rate longs pay and shorts receive, with a negative
 * rate the other way round.
 */

/** Funding events of one contract, columnar (times strictly increasing). */
export interface FundingRateSeries {
  readonly symbol: string | undefined;
  readonly length: number;
  /** Funding time, UTC ms, as the exchange stamps it (Binance adds a few ms after the hour). */
  readonly time: Float64Array;
  /** The rate applied at that time (0.0001 = 0.01 %). */
  readonly rate: Float64Array;
  /** Hours between fundings on the exchange's schedule at that time (8 on most Binance contracts). */
  readonly intervalHours: Float64Array;
}

export class FundingSeriesError extends Error {
  override name = 'FundingSeriesError';
}

const HOUR_MS = 3_600_000;

/** Builds and checks a series: finite values, times strictly increasing, intervals > 0. */
export function fundingRateSeries(cols: {
  symbol?: string | undefined;
  time: ArrayLike<number>;
  rate: ArrayLike<number>;
  intervalHours: ArrayLike<number> | number;
}): FundingRateSeries {
  const n = cols.time.length;
  if (cols.rate.length !== n) throw new FundingSeriesError(`time has ${n} rows but rate has ${cols.rate.length}`);
  const time = Float64Array.from(cols.time);
  const rate = Float64Array.from(cols.rate);
  const intervalHours =
    typeof cols.intervalHours === 'number'
      ? new Float64Array(n).fill(cols.intervalHours)
      : Float64Array.from(cols.intervalHours);
  if (intervalHours.length !== n)
    throw new FundingSeriesError(`time has ${n} rows but intervalHours has ${intervalHours.length}`);
  for (let i = 0; i < n; i++) {
    const t = time[i] as number;
    const r = rate[i] as number;
    const h = intervalHours[i] as number;
    if (!Number.isFinite(t)) throw new FundingSeriesError(`row ${i}: funding time ${t} is not a finite number`);
    if (!Number.isFinite(r)) throw new FundingSeriesError(`row ${i}: funding rate ${r} is not a finite number`);
    if (!(h > 0 && Number.isFinite(h))) throw new FundingSeriesError(`row ${i}: interval ${h} h must be > 0`);
    if (i > 0 && !(t > (time[i - 1] as number)))
      throw new FundingSeriesError(`row ${i}: funding time ${t} is not after the previous one (${time[i - 1]})`);
  }
  return { symbol: cols.symbol, length: n, time, rate, intervalHours };
}

/**
 * A constant rate on Binance's default schedule (every `intervalHours` from 00:00 UTC) for the
 * funding times in [from, to]: for quick runs without a series.
 */
export function constantFundingSeries(
  rate: number,
  from: number,
  to: number,
  intervalHours = 8,
  symbol?: string,
): FundingRateSeries {
  if (!Number.isFinite(rate)) throw new FundingSeriesError(`constant funding rate ${rate} is not a finite number`);
  const step = intervalHours * HOUR_MS;
  const times: number[] = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) times.push(t);
  return fundingRateSeries({ symbol, time: times, rate: times.map(() => rate), intervalHours });
}

/**
 * The funding payment of one position, as a signed cash flow to the account (> 0 received,
 * < 0 paid): -size x markPrice x rate x contractSize. A long (size > 0) pays a positive rate.
 */
export function fundingPayment(size: number, markPrice: number, rate: number, contractSize = 1): number {
  const p = -size * markPrice * rate * contractSize;
  return p === 0 ? 0 : p; // no -0 in a ledger
}

/** Index of the first funding event strictly after `t` (series.length when none): a cursor's start. */
export function fundingIndexAfter(series: FundingRateSeries, t: number): number {
  let lo = 0;
  let hi = series.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((series.time[mid] as number) <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A stretch of the schedule with no funding event where one was due. */
export interface FundingGap {
  /** The last funding time before the gap (or the range start). */
  readonly after: number;
  /** The next funding time after the gap (or the range end). */
  readonly before: number;
  /** Funding events missing in between, by the series' own interval. */
  readonly missing: number;
}

/**
 * Where the series does not cover [from, to]: schedule slots (multiples of the interval from
 * 00:00 UTC) with no event: before the first, between two further apart than their interval,
 * after the last (a minute of slack absorbs the exchange's few milliseconds of jitter). A backtest that
 * charges funding shows these as a warning: missing funding data is never a silent zero.
 */
export function fundingGaps(series: FundingRateSeries, from: number, to: number): FundingGap[] {
  const gaps: FundingGap[] = [];
  const slack = 60_000;
  if (!(to > from)) return gaps;
  if (series.length === 0) {
    const missing = gridPoints(from, to, 8 * HOUR_MS);
    if (missing > 0) gaps.push({ after: from, before: to, missing });
    return gaps;
  }
  let prev = Number.NaN;
  let prevInterval = (series.intervalHours[0] as number) * HOUR_MS;
  for (let i = 0; i < series.length; i++) {
    const t = series.time[i] as number;
    const interval = (series.intervalHours[i] as number) * HOUR_MS;
    if (t < from) {
      prev = t;
      prevInterval = interval;
      continue;
    }
    if (t > to) break;
    const missing = Number.isNaN(prev)
      ? gridPoints(from, t - slack, interval)
      : gridPoints(Math.max(from, prev + slack), t - slack, prevInterval);
    if (missing > 0) gaps.push({ after: Number.isNaN(prev) ? from : prev, before: t, missing });
    prev = t;
    prevInterval = interval;
  }
  const tail = gridPoints(Number.isNaN(prev) ? from : Math.max(from, prev + slack), to, prevInterval);
  if (tail > 0) gaps.push({ after: Number.isNaN(prev) ? from : prev, before: to, missing: tail });
  return gaps;
}

/** How many multiples of `step` lie in [a, b]. */
function gridPoints(a: number, b: number, step: number): number {
  return b < a ? 0 : Math.max(0, Math.floor(b / step) - Math.ceil(a / step) + 1);
}
