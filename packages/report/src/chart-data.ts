import type { BacktestResult, BarSeries, PlotColumn, Timeframe } from '@keel/core';
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
  /** Buy-and-hold value at the close of each candle's last bar; null when the result has no benchmark. */
  readonly benchmark: number[] | null;
  /** The strategy's plot lines, each at the close of each candle's last bar (NaN: no value). */
  readonly plots: { readonly name: string; readonly panel: string; readonly values: number[] }[];
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
  const n = result.equity.times.length;
  if (n === 0) return [0, 0];
  const [p0, p1] = feedRange(result, 0, bars);
  if (p1 > p0 && n !== p1 - p0) {
    const feed = result.feeds[0] as BacktestResult['feeds'][number];
    throw new Error(
      `The bars passed to the report are not the ones the backtest replayed on ${feed.symbol} ${feed.timeframe} ` +
        `(${feed.bars} bars from ${feed.first} to ${feed.last}; got ${bars.length} bars): pass the primary feed's series`,
    );
  }
  return [p0, p1];
}

/** The rows [p0, p1) of `bars` that the result replayed on feed `index`; throws when they do not match. */
export function feedRange(result: BacktestResult, index: number, bars: BarSeries): [number, number] {
  const feed = result.feeds[index];
  if (!feed) throw new Error(`The backtest result has no feed ${index}`);
  if (feed.bars === 0) return [0, 0];
  const p0 = lowerBound(bars.time, 0, bars.length, feed.first);
  const p1 = p0 + feed.bars;
  if (bars.time[p0] !== feed.first || p1 > bars.length || bars.time[p1 - 1] !== feed.last) {
    throw new Error(
      `The bars passed to the report are not the ones the backtest replayed on ${feed.symbol} ${feed.timeframe} ` +
        `(${feed.bars} bars from ${feed.first} to ${feed.last}; got ${bars.length} bars): pass ${index === 0 ? "the primary feed's" : "that feed's"} series`,
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

/** Rows [p0, p1) of `bars` merged into the candles `bucketOf` assigns them to. */
function mergeCandles(
  bars: BarSeries,
  p0: number,
  p1: number,
  bucketOf: Int32Array,
  aggregation: Aggregation,
): CandleColumns {
  const m = aggregation.candles;
  const candles: CandleColumns = {
    time: new Array(m),
    open: new Array(m),
    high: new Array(m),
    low: new Array(m),
    close: new Array(m),
    volume: new Array(m),
  };
  let cur = -1;
  let hi = 0;
  let lo = 0;
  let vol = 0;
  const flush = () => {
    candles.high[cur] = hi;
    candles.low[cur] = lo;
    candles.volume[cur] = displayRound(vol);
  };
  for (let r = p0; r < p1; r++) {
    const b = bucketOf[r - p0] as number;
    const h = bars.high[r] as number;
    const l = bars.low[r] as number;
    if (b !== cur) {
      if (cur >= 0) flush();
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
    }
    if (h > hi) hi = h;
    if (l < lo) lo = l;
    vol += bars.volume[r] as number;
    candles.close[b] = bars.close[r] as number;
  }
  if (cur >= 0) flush();
  return candles;
}

function checkMaxPoints(maxPoints: number): void {
  if (!(maxPoints >= 2) || !Number.isInteger(maxPoints))
    throw new Error(`maxPoints must be an integer >= 2, got ${maxPoints}`);
}

export function buildChartData(result: BacktestResult, bars: BarSeries, maxPoints: number): ChartData {
  checkMaxPoints(maxPoints);
  const feed = result.feeds[0];
  const [p0, p1] = primaryRange(result, bars);
  const n = p1 - p0;
  const base = (feed?.timeframe ?? '1m') as Timeframe;
  const { bucketOf, aggregation } = chooseBuckets(bars.time, p0, p1, base, maxPoints);
  const m = aggregation.candles;
  const candles = mergeCandles(bars, p0, p1, bucketOf, aggregation);
  const equity = new Array<number>(m);
  const drawdown = new Array<number>(m);
  const values = result.equity.values;
  const bench = result.benchmark && result.benchmark.values.length === n ? result.benchmark.values : null;
  const benchmark = bench ? new Array<number>(m) : null;
  const symbol = feed?.symbol;
  const plotCols = (result.plots ?? []).filter((p) => p.values.length === n && p.symbol === symbol);
  const plots = plotCols.map((p) => ({ name: p.name, panel: p.panel, values: new Array<number>(m) }));
  let peak = result.startValue;
  let cur = -1;
  let dd = 0;
  for (let i = 0; i < n; i++) {
    const b = bucketOf[i] as number;
    const v = values[i] as number;
    if (v > peak) peak = v;
    const d = peak > 0 ? (v / peak - 1) * 100 : 0;
    if (b !== cur) {
      if (cur >= 0) drawdown[cur] = displayRound(dd);
      cur = b;
      dd = d;
    }
    if (d < dd) dd = d;
    equity[b] = displayRound(v);
    if (benchmark) benchmark[b] = displayRound(bench?.[i] as number);
    for (let j = 0; j < plots.length; j++)
      (plots[j] as { values: number[] }).values[b] = displayRound((plotCols[j] as PlotColumn).values[i] as number);
  }
  if (cur >= 0) drawdown[cur] = displayRound(dd);
  return {
    aggregation,
    candles,
    equity,
    drawdown,
    markers: n > 0 ? buildMarkers(result, symbol, bars, p0, p1, bucketOf, candles.time) : [],
    riskMarkers: n > 0 ? buildRiskMarkers(result, bars, p0, p1, bucketOf, candles.time) : [],
    benchmark,
    plots,
  };
}

/** A chart of one more market of a run over several: its candles, its fills and its plot lines. */
export interface PairChart {
  readonly symbol: string;
  readonly timeframe: Timeframe;
  readonly aggregation: Aggregation;
  readonly candles: CandleColumns;
  readonly markers: MarkerRow[];
  /** The lines the strategy plots for this market, each at the close of each candle's last bar. */
  readonly plots: { readonly name: string; readonly panel: string; readonly values: number[] }[];
}

/**
 * The chart of the market of `result.feeds[feed]` from its bars. The plot lines were read at the
 * primary bars' closes: each value goes to the candle of the market's bar that closed by then.
 */
export function buildPairChart(result: BacktestResult, feed: number, bars: BarSeries, maxPoints: number): PairChart {
  checkMaxPoints(maxPoints);
  const f = result.feeds[feed];
  if (!f) throw new Error(`The backtest result has no feed ${feed}`);
  const [p0, p1] = feedRange(result, feed, bars);
  const { bucketOf, aggregation } = chooseBuckets(bars.time, p0, p1, f.timeframe, maxPoints);
  const candles = mergeCandles(bars, p0, p1, bucketOf, aggregation);
  const m = aggregation.candles;
  const times = result.equity.times;
  const cols = (result.plots ?? []).filter((p) => p.symbol === f.symbol && p.values.length === times.length);
  const plots = cols.map((p) => ({ name: p.name, panel: p.panel, values: new Array<number>(m).fill(Number.NaN) }));
  if (p1 > p0) {
    for (let i = 0; i < times.length; i++) {
      const row = lowerBound(bars.time, p0, p1, times[i] as number) - 1;
      if (row < p0) continue;
      const b = bucketOf[row - p0] as number;
      for (let j = 0; j < plots.length; j++)
        (plots[j] as { values: number[] }).values[b] = displayRound((cols[j] as PlotColumn).values[i] as number);
    }
  }
  return {
    symbol: f.symbol,
    timeframe: f.timeframe,
    aggregation,
    candles,
    markers: p1 > p0 ? buildMarkers(result, f.symbol, bars, p0, p1, bucketOf, candles.time) : [],
    plots,
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
 * Fills of one market, one marker per candle and side. A fill's time is the close of the
 * bar it filled in, so it belongs to the last bar that opened strictly before it.
 */
function buildMarkers(
  result: BacktestResult,
  symbol: string | undefined,
  bars: BarSeries,
  p0: number,
  p1: number,
  bucketOf: Int32Array,
  candleTimes: number[],
): MarkerRow[] {
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

/**
 * The replayed bars themselves, for drawing them when the chart is zoomed in far enough that the
 * merged candles would hide them. Compact enough for a month of minutes in the page: times as the
 * first, the step and the exceptions; prices as integers of 10^-decimals, each candle as its open
 * against the previous close, its body and its two wicks (small numbers for any market); volume at
 * 4 significant digits.
 */
export interface DetailBars {
  readonly timeframe: Timeframe;
  /** Open time of the first bar, and the usual step between bars, in UTC seconds. */
  readonly start: number;
  readonly step: number;
  /** Pairs [index, seconds since the previous bar] for each bar that does not follow its predecessor by `step`. */
  readonly gaps: number[];
  /** Prices are integers of 10^-decimals: exact when the bars have at most 8 decimals. */
  readonly decimals: number;
  /** open - previous close (the first bar: open), close - open, high - max(open, close), min(open, close) - low. */
  readonly open: number[];
  readonly body: number[];
  readonly upper: number[];
  readonly lower: number[];
  readonly volume: number[];
  /** Fills per bar and side, as ChartData.markers but on the bars' own times. */
  readonly markers: MarkerRow[];
}

/** The fewest decimals (at most 8) at which every price decodes to itself (round(p * 10^d) / 10^d === p), or null. */
function exactDecimals(bars: BarSeries, p0: number, p1: number): number | null {
  const cols = [bars.open, bars.high, bars.low, bars.close];
  for (let d = 0; d <= 8; d++) {
    const scale = 10 ** d;
    let ok = true;
    for (let c = 0; c < 4 && ok; c++) {
      const col = cols[c] as Float64Array;
      for (let i = p0; i < p1 && ok; i++) {
        const x = col[i] as number;
        ok = Math.round(x * scale) / scale === x;
      }
    }
    if (ok) return d;
  }
  return null;
}

export function buildDetailBars(result: BacktestResult, bars: BarSeries): DetailBars {
  const feed = result.feeds[0];
  const [p0, p1] = primaryRange(result, bars);
  const n = p1 - p0;
  const base = (feed?.timeframe ?? '1m') as Timeframe;
  const first = n > 0 ? (bars.close[p0] as number) : Number.NaN;
  // Prices no grid of 8 decimals holds exactly are drawn at 10 significant digits, like the candles.
  const decimals =
    exactDecimals(bars, p0, p1) ??
    Math.min(12, Math.max(0, 9 - Math.floor(Math.log10(Math.abs(first) > 0 ? Math.abs(first) : 1))));
  const scale = 10 ** decimals;
  const q = (x: number) => Math.round(x * scale);
  const step = base === '1M' ? 0 : timeframeMs(base) / 1000;
  const out = {
    timeframe: base,
    start: n > 0 ? Math.floor((bars.time[p0] as number) / 1000) : 0,
    step,
    gaps: [] as number[],
    decimals,
    open: new Array<number>(n),
    body: new Array<number>(n),
    upper: new Array<number>(n),
    lower: new Array<number>(n),
    volume: new Array<number>(n),
    markers: [] as MarkerRow[],
  };
  let prevClose = 0;
  let prevTime = out.start - step;
  const identity = new Int32Array(n);
  const times = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const r = p0 + i;
    const t = Math.floor((bars.time[r] as number) / 1000);
    if (i > 0 && t - prevTime !== step) out.gaps.push(i, t - prevTime);
    prevTime = t;
    times[i] = t;
    identity[i] = i;
    const o = q(bars.open[r] as number);
    const c = q(bars.close[r] as number);
    out.open[i] = o - prevClose;
    out.body[i] = c - o;
    out.upper[i] = q(bars.high[r] as number) - Math.max(o, c);
    out.lower[i] = Math.min(o, c) - q(bars.low[r] as number);
    out.volume[i] = Number((bars.volume[r] as number).toPrecision(4));
    prevClose = c;
  }
  if (n > 0) out.markers = buildMarkers(result, feed?.symbol, bars, p0, p1, identity, times);
  return out;
}
