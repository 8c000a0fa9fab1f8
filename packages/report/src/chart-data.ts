import type { BacktestResult, BarSeries, Timeframe } from '@keel/core';
import { TIMEFRAMES, timeframeMs, timeframeStart } from '@keel/core';

/**
 * What the report's charts draw, small enough for one HTML file whatever the length of the run:
 * consecutive bars are merged into at most `maxPoints` candles, and the equity and drawdown curves
 * and the fill markers are put on the same candle times (one shared time axis; lightweight-charts
 * spaces points by index, so curves on other times would pull the candles apart).
 *
 * Candles are merged on a coarser exchange timeframe when one fits (1m bars into 10m or 4h candles,
 * aligned as the exchange aligns them), so a candle reads as a real period; only when no timeframe
 * up to a month fits are bars merged in fixed-size groups.
 */

export interface Aggregation {
  /** The timeframe each candle spans, or null when bars were merged in fixed groups. */
  readonly timeframe: Timeframe | null;
  /** Bars per candle: exact for fixed groups and for no merging, nominal for timeframes. */
  readonly barsPerCandle: number;
  readonly candles: number;
  readonly bars: number;
}

/** Columnar candles; times in UTC seconds (the chart library's unit), at the candle's open. */
export interface CandleColumns {
  readonly time: number[];
  readonly open: number[];
  readonly high: number[];
  readonly low: number[];
  readonly close: number[];
  readonly volume: number[];
}

/** Fills merged per candle and side: [time s, side (1 buy, -1 sell), count, amount, average price]. */
export type MarkerRow = [number, 1 | -1, number, number, number];

/**
 * A risk event on the equity curve: [candle time s, kind, label]. Kind 2: an account-wide halt;
 * 1: a lock on one market; 0: the end of a halt; -1: the end of a lock.
 */
export type RiskMarkerRow = [number, 2 | 1 | 0 | -1, string];

export interface ChartData {
  readonly aggregation: Aggregation;
  readonly candles: CandleColumns;
  /** Equity at the close of each candle's last bar. */
  readonly equity: number[];
  /** Deepest drawdown inside each candle, in percent below the running peak (0 or negative). */
  readonly drawdown: number[];
  readonly markers: MarkerRow[];
  /** Halts and resumes of the risk engine, on the candle of the bar they happened at. */
  readonly riskMarkers: RiskMarkerRow[];
}

/** Rounds a float for display data: 10 significant digits is far below what a chart can show. */
export function displayRound(x: number): number {
  return Number.isFinite(x) ? Number(x.toPrecision(10)) : x;
}

function lowerBound(a: Float64Array, from: number, to: number, x: number): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The rows [p0, p1) of `bars` that the result replayed on its primary feed; throws when they do not match. */
export function primaryRange(result: BacktestResult, bars: BarSeries): [number, number] {
  const feed = result.feeds[0];
  if (!feed) throw new Error('The backtest result has no feed');
  const n = result.equity.times.length;
  if (feed.bars === 0 || n === 0) return [0, 0];
  const p0 = lowerBound(bars.time, 0, bars.length, feed.first);
  const p1 = p0 + feed.bars;
  if (bars.time[p0] !== feed.first || p1 > bars.length || bars.time[p1 - 1] !== feed.last || n !== feed.bars) {
    throw new Error(
      `The bars passed to the report are not the ones the backtest replayed on ${feed.symbol} ${feed.timeframe} ` +
        `(${feed.bars} bars from ${feed.first} to ${feed.last}; got ${bars.length} bars): pass the primary feed's series`,
    );
  }
  return [p0, p1];
}

/** Coarser timeframes that contain whole bars of `base`, finest first. */
function coarserTimeframes(base: Timeframe): Timeframe[] {
  const baseMs = timeframeMs(base);
  return TIMEFRAMES.filter((tf) => {
    if (base === '1M' || timeframeMs(tf) <= baseMs) return false;
    // Weeks start on Monday and months on the 1st: only bars of a day or less nest in them.
    if (tf === '1w' || tf === '1M') return baseMs <= 86_400_000;
    return timeframeMs(tf) % baseMs === 0;
  });
}

/**
 * Bucket index of every row in [p0, p1) (`bucketOf[i - p0]`), and how they were chosen.
 * Deterministic: depends only on the bar times, the base timeframe and maxPoints.
 */
export function chooseBuckets(
  times: Float64Array,
  p0: number,
  p1: number,
  base: Timeframe,
  maxPoints: number,
): { bucketOf: Int32Array; aggregation: Aggregation } {
  const n = p1 - p0;
  const bucketOf = new Int32Array(n);
  if (n <= maxPoints) {
    for (let i = 0; i < n; i++) bucketOf[i] = i;
    return { bucketOf, aggregation: { timeframe: n > 0 ? base : null, barsPerCandle: 1, candles: n, bars: n } };
  }
  for (const tf of coarserTimeframes(base)) {
    let count = 0;
    let prev = Number.NaN;
    for (let i = 0; i < n && count <= maxPoints; i++) {
      const b = timeframeStart(tf, times[p0 + i] as number);
      if (b !== prev) {
        count++;
        prev = b;
      }
      bucketOf[i] = count - 1;
    }
    if (count <= maxPoints) {
      return {
        bucketOf,
        aggregation: {
          timeframe: tf,
          barsPerCandle: Math.round(timeframeMs(tf) / timeframeMs(base)),
          candles: count,
          bars: n,
        },
      };
    }
  }
  const k = Math.ceil(n / maxPoints);
  for (let i = 0; i < n; i++) bucketOf[i] = Math.floor(i / k);
  return { bucketOf, aggregation: { timeframe: null, barsPerCandle: k, candles: Math.ceil(n / k), bars: n } };
}

export function buildChartData(result: BacktestResult, bars: BarSeries, maxPoints: number): ChartData {
  if (!(maxPoints >= 2) || !Number.isInteger(maxPoints))
    throw new Error(`maxPoints must be an integer >= 2, got ${maxPoints}`);
  const feed = result.feeds[0];
  const [p0, p1] = primaryRange(result, bars);
  const n = p1 - p0;
  const base = (feed?.timeframe ?? '1m') as Timeframe;
  const { bucketOf, aggregation } = chooseBuckets(bars.time, p0, p1, base, maxPoints);
  const m = aggregation.candles;
  const candles: CandleColumns = {
    time: new Array(m),
    open: new Array(m),
    high: new Array(m),
    low: new Array(m),
    close: new Array(m),
    volume: new Array(m),
  };
  const equity = new Array<number>(m);
  const drawdown = new Array<number>(m);
  const values = result.equity.values;
  let peak = result.startValue;
  let cur = -1;
  let hi = 0;
  let lo = 0;
  let vol = 0;
  let dd = 0;
  for (let i = 0; i < n; i++) {
    const b = bucketOf[i] as number;
    const r = p0 + i;
    const h = bars.high[r] as number;
    const l = bars.low[r] as number;
    const v = values[i] as number;
    if (v > peak) peak = v;
    const d = peak > 0 ? (v / peak - 1) * 100 : 0;
    if (b !== cur) {
      if (cur >= 0) {
        candles.high[cur] = hi;
        candles.low[cur] = lo;
        candles.volume[cur] = displayRound(vol);
        drawdown[cur] = displayRound(dd);
      }
      cur = b;
      const t = bars.time[r] as number;
      // A timeframe candle is stamped at its period's open, as the exchange would stamp it.
      candles.time[b] = Math.floor(
        (aggregation.timeframe && aggregation.barsPerCandle > 1 ? timeframeStart(aggregation.timeframe, t) : t) / 1000,
      );
      candles.open[b] = bars.open[r] as number;
      hi = h;
      lo = l;
      vol = 0;
      dd = d;
    }
    if (h > hi) hi = h;
    if (l < lo) lo = l;
    vol += bars.volume[r] as number;
    if (d < dd) dd = d;
    candles.close[b] = bars.close[r] as number;
    equity[b] = displayRound(v);
  }
  if (cur >= 0) {
    candles.high[cur] = hi;
    candles.low[cur] = lo;
    candles.volume[cur] = displayRound(vol);
    drawdown[cur] = displayRound(dd);
  }
  return {
    aggregation,
    candles,
    equity,
    drawdown,
    markers: n > 0 ? buildMarkers(result, bars, p0, p1, bucketOf, candles.time) : [],
    riskMarkers: n > 0 ? buildRiskMarkers(result, bars, p0, p1, bucketOf, candles.time) : [],
  };
}

/**
 * The candle of something stamped with a bar's close (a fill, a risk event): the candle holding
 * the last bar that opened strictly before that time.
 */
function candleOf(bars: BarSeries, p0: number, p1: number, bucketOf: Int32Array, time: number): number {
  const row = Math.min(Math.max(lowerBound(bars.time, p0, p1, time) - 1, p0), p1 - 1);
  return bucketOf[row - p0] as number;
}

/** Halts and resumes, each on the candle holding the bar whose close it happened at (as fills). */
function buildRiskMarkers(
  result: BacktestResult,
  bars: BarSeries,
  p0: number,
  p1: number,
  bucketOf: Int32Array,
  candleTimes: number[],
): RiskMarkerRow[] {
  const out: RiskMarkerRow[] = [];
  for (const e of result.riskEvents) {
    if (e.type !== 'halt' && e.type !== 'resume') continue;
    const b = candleOf(bars, p0, p1, bucketOf, e.time);
    const where = e.scope === 'account' ? '' : ` ${e.scope}`;
    const account = e.scope === 'account';
    out.push(
      e.type === 'halt'
        ? [candleTimes[b] as number, account ? 2 : 1, `${account ? 'halt' : 'lock'}: ${e.rule}${where} (${e.action})`]
        : [candleTimes[b] as number, account ? 0 : -1, `${account ? 'resume' : 'unlock'}: ${e.rule}${where} (${e.by})`],
    );
  }
  // Liquidations are marked as account-wide events: the position is gone.
  for (const l of result.futures?.liquidations ?? []) {
    const b = candleOf(bars, p0, p1, bucketOf, l.time);
    out.push([candleTimes[b] as number, 2, `liquidation: ${l.symbol} at ${l.price}`]);
  }
  if (result.futures !== undefined && result.futures.liquidations.length > 0) out.sort((x, y) => x[0] - y[0]);
  return out;
}

/**
 * Fills of the primary market, one marker per candle and side. A fill's time is the close of the
 * bar it filled in, so it belongs to the last bar that opened strictly before it.
 */
function buildMarkers(
  result: BacktestResult,
  bars: BarSeries,
  p0: number,
  p1: number,
  bucketOf: Int32Array,
  candleTimes: number[],
): MarkerRow[] {
  const symbol = result.feeds[0]?.symbol;
  const acc = new Map<number, { count: number; amount: number; value: number }>();
  for (const f of result.fills) {
    if (f.symbol !== symbol) continue;
    const b = candleOf(bars, p0, p1, bucketOf, f.time);
    const side = f.side === 'buy' ? 1 : -1;
    // Key orders markers by candle, buys first; Map keeps insertion order, so sort the keys below.
    const key = b * 2 + (side === 1 ? 0 : 1);
    const a = acc.get(key);
    if (a) {
      a.count++;
      a.amount += f.amount;
      a.value += f.amount * f.price;
    } else acc.set(key, { count: 1, amount: f.amount, value: f.amount * f.price });
  }
  return [...acc.keys()]
    .sort((x, y) => x - y)
    .map((key) => {
      const a = acc.get(key) as { count: number; amount: number; value: number };
      const b = key >> 1;
      return [
        candleTimes[b] as number,
        key % 2 === 0 ? 1 : -1,
        a.count,
        displayRound(a.amount),
        displayRound(a.amount > 0 ? a.value / a.amount : Number.NaN),
      ];
    });
}
