import { FuturesBook, type FuturesMarketSettings, type FuturesSummary } from '../futures/book.ts';
import { type Benchmark, buyAndHold, type HeldMarket } from '../metrics/benchmark.ts';
import { type PairStats, pairStats } from '../metrics/pairs.ts';
import { computeMetrics, type Metrics } from '../metrics/stats.ts';
import { type OpenTrade, type Trade, TradeTracker } from '../metrics/trades.ts';
import { type BarSeries, type FeedKey, SeriesCursor } from '../model/bar.ts';
import { defineInstrument, type Instrument, type InstrumentSpec } from '../model/instrument.ts';
import type { Fill, OrderState } from '../model/orders.ts';
import { type Timeframe, timeframeEnd, timeframeMs } from '../model/timeframe.ts';
import { Account, type PortfolioSummary } from '../portfolio/account.ts';
import type { RiskConfig } from '../risk/config.ts';
import { countRiskEvents, type RiskCounts, type RiskEvent } from '../risk/events.ts';
import { type AnyStrategy, parseParams } from '../strategy/api.ts';
import { perPair } from '../strategy/per-pair.ts';
import { type FeeAsset, type FeeModel, percentFee, type SlippageModel } from '../venue/models.ts';
import { SimulatedVenue } from '../venue/simulated.ts';
import { Engine } from './engine.ts';
import type { EngineEvent } from './events.ts';

export interface BacktestData {
  readonly symbol: string;
  readonly timeframe: Timeframe;
  readonly series: BarSeries;
  /** Exchange filters; omitted = research mode (no tick/step rounding, as backtrader). */
  readonly instrument?: Omit<InstrumentSpec, 'symbol'> | Instrument;
}

export interface BacktestConfig {
  readonly strategy: AnyStrategy;
  readonly params?: unknown;
  /** The first entry is the primary feed (equity is recorded on its bars). */
  readonly data: readonly BacktestData[];
  readonly cash?: number;
  /** Account currency; default: the primary market's quote. */
  readonly currency?: string;
  /** Taker fee rate per side (0.001 = 0.1 %). Default 0. */
  readonly fee?: number;
  /** Maker fee rate; default = fee. */
  readonly makerFee?: number;
  /** `received`: Binance spot's rule, the fee in the asset the fill gives (base on a buy). */
  readonly feeAsset?: FeeAsset;
  /** A fee model overrides fee/makerFee/feeAsset. */
  readonly feeModel?: FeeModel;
  readonly slippage?: SlippageModel;
  readonly latencyBars?: number;
  readonly latencyMs?: number;
  readonly submissionCheck?: boolean;
  readonly allowShortSpot?: boolean;
  /** Risk limits, protections, sizing and exits applied around the strategy (docs/risk.md). */
  readonly risk?: RiskConfig;
  /**
   * Runs one instance of the strategy per market of `data`, in one portfolio (see `perPair`):
   * `slots` equal shares of the equity (default: one per market).
   */
  readonly perPair?: { readonly slots?: number };
  /** Only bars with open time in [from, to) are replayed. */
  readonly from?: number;
  readonly to?: number;
  readonly onProgress?: (done: number, total: number) => void;
  readonly onEvent?: (e: EngineEvent) => void;
  /**
   * Record the strategy's `plot` lines into `result.plots` (a column per line, read after every
   * primary bar) for the report to draw. Off by default: reading them costs about a fifth of the
   * engine's time on a fast strategy, which a run nobody draws (an optimiser's thousands, a
   * server's checks) should not pay.
   */
  readonly plots?: boolean;
  /**
   * Perpetual markets (symbols like LINK/USDT:USDT) traded with margin, funding and liquidation
   * (docs/futures.md): each perpetual's settings by symbol. Without it a perpetual has no margin.
   */
  readonly futures?: (symbol: string) => FuturesMarketSettings;
}

export interface BacktestResult {
  readonly strategy: string;
  readonly params: unknown;
  readonly feeds: readonly (FeedKey & { bars: number; first: number; last: number })[];
  readonly startValue: number;
  readonly finalValue: number;
  readonly finalCash: number;
  readonly metrics: Metrics;
  readonly trades: readonly Trade[];
  readonly openTrades: readonly OpenTrade[];
  readonly fills: readonly Fill[];
  readonly orders: readonly OrderState[];
  readonly equity: { readonly times: Float64Array; readonly values: Float64Array };
  readonly errors: readonly { time: number; hook: string; message: string }[];
  /** The risk configuration the run used (null: none). */
  readonly risk: RiskConfig | null;
  /** Every denial, halt, resume and notice of the risk engine, in order (empty without one). */
  readonly riskEvents: readonly RiskEvent[];
  /** Denials and halts counted by rule. */
  readonly riskCounts: RiskCounts;
  /** The account's books at the end: realised and unrealised PnL, fees by asset, positions. */
  readonly portfolio: PortfolioSummary;
  /** Each market's share of the run, in feed order (one entry for a single-market run). */
  readonly pairs: readonly PairStats[];
  /** Perpetuals only: leverage, funding, liquidations and warnings (absent in a spot run). */
  readonly futures?: FuturesSummary;
  /**
   * Feeds on which onBar never ran because the strategy's warm-up (`needed` bars: its indicators'
   * longest lookback + 1) is longer than the feed's `bars` (NaN for a feed the engine derives by
   * resampling). Empty when every feed warmed up; absent from results not made by runBacktest.
   */
  readonly unwarmed?: readonly Unwarmed[];
  /**
   * Buy-and-hold over the same bars (absent from results not made by runBacktest): of the primary
   * market, or of every market with `perPair`.
   */
  readonly benchmark?: Benchmark;
  /** The strategy's `plot` lines, one value per primary bar (aligned with `equity`); empty without `plot`. */
  readonly plots?: readonly PlotColumn[];
}

/** A feed the strategy never saw a bar of (BacktestResult.unwarmed). */
export interface Unwarmed extends FeedKey {
  readonly needed: number;
  readonly bars: number;
}

/** One line of a strategy's `plot`, recorded at the close of each primary bar. */
export interface PlotColumn {
  readonly name: string;
  readonly panel: string;
  /** The market whose chart it is drawn on. */
  readonly symbol: string;
  readonly values: Float64Array;
}

function toInstrument(d: BacktestData): Instrument {
  const i = d.instrument;
  if (i && 'base' in i) return i;
  return defineInstrument({ ...(i ?? {}), symbol: d.symbol });
}

function rangeOf(s: BarSeries, from?: number, to?: number): [number, number] {
  let a = 0;
  let b = s.length;
  if (from !== undefined) while (a < b && (s.time[a] as number) < from) a++;
  if (to !== undefined) while (b > a && (s.time[b - 1] as number) >= to) b--;
  return [a, b];
}

/** Replays bars through the same Engine the paper and live runtimes use. Deterministic. */
export function runBacktest(cfg: BacktestConfig): BacktestResult {
  if (cfg.data.length === 0) throw new Error('Backtest needs at least one data feed');
  const params = parseParams(cfg.strategy, cfg.params);
  const instruments = cfg.data.map(toInstrument);
  const uniq = new Map<string, Instrument>();
  for (const i of instruments) if (!uniq.has(i.symbol)) uniq.set(i.symbol, i);
  const strategy =
    cfg.perPair === undefined
      ? cfg.strategy
      : perPair(cfg.strategy, {
          instruments: [...uniq.values()],
          ...(cfg.perPair.slots !== undefined ? { slots: cfg.perPair.slots } : {}),
        });
  const primaryInst = instruments[0] as Instrument;
  const startValue = cfg.cash ?? 10_000;
  const account = new Account(cfg.currency ?? primaryInst.quote, startValue);
  const fees =
    cfg.feeModel ??
    percentFee(cfg.fee ?? 0, {
      ...(cfg.makerFee !== undefined ? { makerRate: cfg.makerFee } : {}),
      ...(cfg.feeAsset ? { asset: cfg.feeAsset } : {}),
    });
  const futuresCfg = cfg.futures;
  const book =
    futuresCfg === undefined ? undefined : new FuturesBook(account, [...uniq.values()], (i) => futuresCfg(i.symbol));
  const venue = new SimulatedVenue([...uniq.values()], account, {
    ...(book !== undefined ? { marginCheck: book.marginCheck.bind(book) } : {}),
    fees,
    ...(cfg.slippage ? { slippage: cfg.slippage } : {}),
    ...(cfg.latencyBars !== undefined ? { latencyBars: cfg.latencyBars } : {}),
    ...(cfg.latencyMs !== undefined ? { latencyMs: cfg.latencyMs } : {}),
    ...(cfg.submissionCheck !== undefined ? { submissionCheck: cfg.submissionCheck } : {}),
    ...(cfg.allowShortSpot !== undefined ? { allowShortSpot: cfg.allowShortSpot } : {}),
  });
  const tracker = new TradeTracker([...uniq.values()]);
  const userEvents = cfg.onEvent;
  const engine = new Engine({
    instruments: [...uniq.values()],
    account,
    venue,
    strategy,
    params,
    feeds: cfg.data.map((d) => ({ symbol: d.symbol, timeframe: d.timeframe })),
    ...(cfg.risk ? { risk: cfg.risk } : {}),
    onFill: tracker.fill,
    ...(book !== undefined ? { futures: book } : {}),
    ...(userEvents ? { onEvent: userEvents } : {}),
  });
  engine.start();

  const ranges = cfg.data.map((d) => rangeOf(d.series, cfg.from, cfg.to));
  const [p0, p1] = ranges[0] as [number, number];
  const primaryLen = p1 - p0;
  const times = new Float64Array(primaryLen);
  const values = new Float64Array(primaryLen);
  const exposed = new Uint8Array(primaryLen);
  const total = ranges.reduce((a, [x, y]) => a + (y - x), 0);
  const progress = cfg.onProgress;
  const plotSpecs = cfg.plots === true ? Object.entries(strategy.plot ?? {}) : [];
  const plots: PlotColumn[] = plotSpecs.map(([name, p]) => ({
    name,
    panel: p.panel,
    symbol: p.symbol ?? primaryInst.symbol,
    values: new Float64Array(primaryLen).fill(Number.NaN),
  }));
  const plotSources = plotSpecs.map(([, p]) => p as { value(s: unknown): number });
  const plotFailed = new Uint8Array(plots.length);
  // Reads every plot line into its column at primary bar k: a call per line, nothing allocated.
  const recordPlots = (k: number): void => {
    const state = engine.strategyState;
    if (state === undefined) return;
    for (let j = 0; j < plots.length; j++) {
      if (plotFailed[j] === 1) continue;
      const col = plots[j] as PlotColumn;
      try {
        col.values[k] = (plotSources[j] as { value(s: unknown): number }).value(state);
      } catch (e) {
        // One error per line, not one per bar: the line stays blank from here on.
        plotFailed[j] = 1;
        engine.errors.push({
          time: times[k] as number,
          hook: `plot ${col.name}`,
          message: e instanceof Error ? e.message : String(e),
        });
      }
    }
  };

  if (cfg.data.length === 1) {
    // Hot loop: the engine reads the bar in place through a cursor; nothing is copied or allocated.
    const s = (cfg.data[0] as BacktestData).series;
    const cursor = new SeriesCursor(s);
    const tcol = s.time;
    // A hedge-mode market holds two positions (its long and its short): exposed when either is open.
    const hedged = book?.isHedge(primaryInst.symbol) === true;
    const pos = hedged ? account.position(primaryInst, 'long') : account.position(primaryInst);
    const other = hedged ? account.position(primaryInst, 'short') : pos;
    const tf = (cfg.data[0] as BacktestData).timeframe;
    const monthly = tf === '1M';
    const ms = timeframeMs(tf);
    for (let i = p0, k = 0; i < p1; i++, k++) {
      const t = tcol[i] as number;
      const closeTime = monthly ? timeframeEnd('1M', t) : t + ms;
      cursor.i = i;
      engine.onBar(0, cursor);
      times[k] = closeTime;
      if (plots.length > 0) recordPlots(k);
      values[k] = engine.equity();
      exposed[k] = pos.size !== 0 || other.size !== 0 ? 1 : 0;
      if (progress !== undefined && (k & 0xffff) === 0xffff) progress(k + 1, total);
    }
  } else {
    // k-way merge by close time, a close time's bars in two phases (Engine.matchBar, closeBar), in
    // feed order: every market's fills of that close before any strategy decides on it.
    const nFeeds = cfg.data.length;
    const cursors = ranges.map(([a]) => a);
    const feedCursors = cfg.data.map((d) => new SeriesCursor(d.series));
    const ends = cfg.data.map((d) =>
      d.timeframe === '1M'
        ? (t: number) => timeframeEnd('1M', t)
        : (
            (m) => (t: number) =>
              t + m
          )(timeframeMs(d.timeframe)),
    );
    /** The feeds with a bar at the close time being handled, in feed order (reused). */
    const group = new Int32Array(nFeeds);
    let k = 0;
    let done = 0;
    const closeAt = (f: number): number => {
      const c = cursors[f] as number;
      if (c >= (ranges[f] as [number, number])[1]) return Number.POSITIVE_INFINITY;
      return (ends[f] as (t: number) => number)((cfg.data[f] as BacktestData).series.time[c] as number);
    };
    /** Each feed's next bar's close time (+Infinity once it has ended), kept as its cursor moves. */
    const next = Float64Array.from(cfg.data, (_, f) => closeAt(f));
    for (;;) {
      let t = Number.POSITIVE_INFINITY;
      for (let f = 0; f < nFeeds; f++) t = Math.min(t, next[f] as number);
      if (t === Number.POSITIVE_INFINITY) break;
      let n = 0;
      for (let f = 0; f < nFeeds; f++) {
        if (next[f] !== t) continue;
        group[n++] = f;
        const cur = feedCursors[f] as SeriesCursor;
        cur.i = cursors[f] as number;
      }
      for (let g = 0; g < n; g++) {
        const f = group[g] as number;
        engine.matchBar(f, feedCursors[f] as SeriesCursor);
      }
      for (let g = 0; g < n; g++) {
        const f = group[g] as number;
        engine.closeBar(f, feedCursors[f] as SeriesCursor);
        cursors[f] = (cursors[f] as number) + 1;
        next[f] = closeAt(f);
      }
      done += n;
      if (group[0] === 0) {
        times[k] = t;
        k++;
      }
      // Equity after every feed closing at this instant; a close time without a primary bar
      // updates the last primary bar's value (what it is worth until the next one).
      if (k > 0) {
        values[k - 1] = engine.equity();
        // Read with the equity: after every feed closing at this instant, as the equity is.
        if (plots.length > 0) recordPlots(k - 1);
        let any = 0;
        for (const p of account.positions) if (p.size !== 0) any = 1;
        exposed[k - 1] = any;
      }
      if (progress && (done & 0xffff) < n) progress(done, total);
    }
  }
  const unwarmed = engine.unwarmedFeeds().map(({ key, needed }) => ({
    ...key,
    needed,
    bars: cfg.data.reduce((n, d, i) => {
      if (d.symbol !== key.symbol || d.timeframe !== key.timeframe) return n;
      const [a, b] = ranges[i] as [number, number];
      return b - a;
    }, Number.NaN),
  }));
  engine.stop();
  if (progress) progress(total, total);

  const metrics = computeMetrics({
    equity: values,
    times,
    exposed,
    trades: tracker.summary(),
    startValue,
    barMs: timeframeMs((cfg.data[0] as BacktestData).timeframe),
    feesPaid: account.feesPaid,
    turnover: account.turnover,
  });
  const feeds = cfg.data.map((d, i) => {
    const [a, b] = ranges[i] as [number, number];
    return {
      symbol: d.symbol,
      timeframe: d.timeframe,
      bars: b - a,
      first: b > a ? (d.series.time[a] as number) : Number.NaN,
      last: b > a ? (d.series.time[b - 1] as number) : Number.NaN,
    };
  });
  const portfolio = account.summary(engine.rate);
  // Buy and hold holds what the strategy trades: every market when each has its own instance,
  // else the primary (the other feeds are signals).
  const held: HeldMarket[] = [];
  cfg.data.forEach((d, i) => {
    if (i > 0 && (cfg.perPair === undefined || held.some((h) => h.instrument.symbol === d.symbol))) return;
    const [a, b] = ranges[i] as [number, number];
    held.push({ series: d.series, timeframe: d.timeframe, p0: a, p1: b, instrument: instruments[i] as Instrument });
  });
  const openTrades = tracker.openTrades();
  let pairs: PairStats[] | undefined;
  let benchmark: Benchmark | undefined;
  return {
    strategy: cfg.strategy.name,
    params,
    feeds,
    startValue,
    finalValue: primaryLen > 0 ? (values[primaryLen - 1] as number) : startValue,
    finalCash: account.cash,
    metrics,
    // Trade, Fill and OrderState objects are built when first read, not in the run.
    get trades() {
      return tracker.closed;
    },
    openTrades,
    get fills() {
      return engine.fills;
    },
    get orders() {
      return engine.history;
    },
    equity: { times, values },
    errors: engine.errors,
    risk: cfg.risk ?? null,
    riskEvents: engine.risk?.events ?? [],
    riskCounts: countRiskEvents(engine.risk?.events ?? []),
    portfolio,
    // Built when first read: it reads the trade and order objects.
    get pairs() {
      pairs ??= pairStats({
        feeds,
        trades: tracker.closed,
        openTrades,
        orders: engine.history,
        positions: portfolio.positions,
        funding: book?.funding ?? [],
        startValue,
      });
      return pairs;
    },
    ...(book !== undefined ? { futures: book.summary() } : {}),
    unwarmed,
    // Built when first read, like the trades: a run nobody reports on (an optimiser's) skips it.
    get benchmark() {
      benchmark ??= buyAndHold(held, times, startValue, fees);
      return benchmark;
    },
    plots,
  };
}
