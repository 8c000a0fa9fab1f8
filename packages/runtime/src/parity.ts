import {
  Account,
  type AnyStrategy,
  type BacktestResult,
  type Bar,
  type BarSeries,
  computeMetrics,
  countRiskEvents,
  defineInstrument,
  type ExchangeCloseRecord,
  emptyBar,
  type Fill,
  type FundingRateSeries,
  type FundingRecord,
  type FuturesSummary,
  feedId,
  type Instrument,
  isOutsideFee,
  type LiquidationRecord,
  type OrderState,
  pairStats,
  parseRiskConfig,
  percentFee,
  type RiskConfig,
  type RiskEvent,
  type RiskInput,
  type RiskSnapshot,
  readBar,
  SimulatedVenue,
  type SimulatedVenueOptions,
  seriesFromRows,
  type Trade,
  timeframeEnd,
  timeframeMs,
  USDM_DEFAULT_FEES,
} from '@keel/core';
import type { BotMode, Store } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { BotEngine } from './bot-engine.ts';
import { UnknownBotError } from './bots.ts';
import { type Dated, iso, type ParityDifference, type ParityKind } from './parity-difference.ts';
import {
  type BotFuturesRecords,
  compareFutures,
  type FuturesTotals,
  parityFutures,
  sessionBook,
  sessionBookWarnings,
} from './parity-futures.ts';
import { compareOrders, groupFills, type ModelOrder, type SessionRange } from './parity-orders.ts';
import { bookedFees, type PnlTotals, pnlOf } from './pnl.ts';
import { type FillModelSetup, isSessionSetup, type SessionFutures, type SessionSetup } from './session.ts';

export {
  type OrderOutcome,
  PARITY_KINDS,
  type ParityDifference,
  type ParityKind,
} from './parity-difference.ts';
export type { FuturesTotals } from './parity-futures.ts';

export interface ParityOptions {
  /** Resolves a strategy by name; default: the built-in strategies. */
  readonly strategies?: (name: string) => AnyStrategy;
  /**
   * The model for sessions whose orders an exchange filled (live), or whose paper model was
   * given in code. Default: `percentFee(0.001)` in the quote currency, no slippage (a backtest's
   * defaults: fills at the next bar's open). Paper sessions run with `--fee` use their own rate.
   */
  readonly model?: SimulatedVenueOptions;
  /** Describes `model` in the result (e.g. "fee 0.1 % in BTC on buys"). */
  readonly modelLabel?: string;
  /** Relative difference below which prices, amounts and fees count as equal. Default 1e-9. */
  readonly tolerance?: number;
}

export interface ParitySession {
  readonly seq: number;
  /** Open times of the first and last bar the session handled. */
  readonly from: string | null;
  readonly to: string | null;
  readonly bars: number;
  readonly warmupBars: number;
  /** The fill model the backtest of this session used. */
  readonly model: string;
}

export interface ParityResult {
  readonly botId: string;
  readonly mode: BotMode;
  readonly strategy: string;
  readonly params: unknown;
  readonly sessions: readonly ParitySession[];
  /** Bars handled over the compared sessions. */
  readonly bars: number;
  readonly orders: { readonly bot: number; readonly backtest: number; readonly matched: number };
  readonly fills: { readonly bot: number; readonly backtest: number };
  /** Every difference, in signal order. Empty: the bot did exactly what the backtest did. */
  readonly differences: readonly ParityDifference[];
  readonly counts: Readonly<Partial<Record<ParityKind, number>>>;
  /** Sum of the `price` differences' cost. */
  readonly slippageCost: number;
  /** Sum of the `fee` differences' cost. */
  readonly feeDifference: number;
  /** What the compared orders' fills add up to, on each side. */
  readonly bot: PnlTotals;
  readonly backtest: PnlTotals;
  /** Perpetuals: funding and liquidations over the compared sessions, on each side (absent: spot only). */
  readonly futures?: { readonly bot: FuturesTotals; readonly backtest: FuturesTotals };
  /** What the comparison could not cover (sessions without a record, warm-up after a reconnect, ...). */
  readonly notes: readonly string[];
}

/** The result, and the backtest itself (for an HTML report): its result and the bars of its primary feed. */
export interface ParityRun {
  readonly result: ParityResult;
  readonly backtest: BacktestResult;
  readonly bars: BarSeries;
}

/**
 * Binance spot VIP 0 paying its fees with BNB: 75 % of 0.1 %, in BNB, worth as much of the quote
 * (valued at the BNB price the bot read): a backtest models it with the fee in the quote.
 */
const BNB_FEE_RATE = 0.001 * 0.75;
const BNB_MODEL_LABEL =
  'Binance spot paying fees with BNB: fee 0.075 % of the notional in the quote currency (the BNB fee’s value), no slippage, fills at the next bar’s open';
const DEFAULT_MODEL_LABEL =
  'fee 0.1 % of the notional in the quote currency, no slippage, fills at the next bar’s open';
const USDM_MODEL_LABEL = `Binance USD-M VIP 0: fee ${USDM_DEFAULT_FEES.taker * 100} % taker, ${USDM_DEFAULT_FEES.maker * 100} % maker, no slippage, fills at the next bar’s open`;

/**
 * The backtest of exactly the bars a bot saw, side by side with what it did. Each session is
 * replayed from the state it started in (as its setup recorded it), with the same strategy,
 * params and markets, the warm-up bars it saw and then the bars it handled, through the same
 * engine and client order ids (`signalOrderId`), so orders pair up by id. Each pair, and each
 * order only one side has, is compared; every difference is named.
 */
export async function botParity(store: Store, botId: string, opts: ParityOptions = {}): Promise<ParityRun> {
  const bot = await store.bots.get(botId);
  if (!bot)
    throw new UnknownBotError(
      botId,
      (await store.bots.list()).map((x) => x.id),
    );
  const resolve = opts.strategies ?? getStrategy;
  const tol = opts.tolerance ?? 1e-9;
  const notes: string[] = [];
  const setups = (await store.setups.list(botId)).filter((s): s is { seq: number; setup: SessionSetup } =>
    isSessionSetup(s.setup),
  );
  const allSessions = await store.sessions.list(botId);
  const unrecorded = allSessions.filter((s) => !setups.some((x) => x.seq === s.seq)).map((s) => s.seq);
  if (unrecorded.length > 0)
    notes.push(
      `session${unrecorded.length > 1 ? 's' : ''} ${unrecorded.join(', ')} kept no record of ${unrecorded.length > 1 ? 'their' : 'its'} bars and set-up (a Keel before bar recording, or a start that failed): not compared`,
    );

  const sessions: ParitySession[] = [];
  const modelOrders = new Map<string, ModelOrder>();
  const ranges: SessionRange[] = [];
  const handledBySymbol = new Map<string, number[]>();
  const allTrades: Trade[] = [];
  const allFills: Fill[] = [];
  const allOrders: OrderState[] = [];
  const eqTimes: number[] = [];
  const eqValues: number[] = [];
  const exposed: number[] = [];
  let chartBars: Bar[] = [];
  let startValue = Number.NaN;
  let feesPaid = 0;
  let turnover = 0;
  let finalCash = Number.NaN;
  let lastAccount: Account | undefined;
  /** Perpetuals: the last compared session's book (its markets' settings and state at the end) and every session's warnings. */
  let lastBook: FuturesSummary | undefined;
  const bookWarnings: string[] = [];
  let primary: SessionSetup | undefined;
  /** The backtest's orders still working when its session's bars ran out, with their fills so far. */
  let working = new Map<string, ModelOrder>();
  /** The backtest's orders still working after the last bar the bot handled: nothing to settle them on. */
  const unsettled = new Set<string>();
  // The risk engine runs on as one run would: its state carries from one session to the next,
  // and the bot's resumes (`keel bots resume`) are applied at the bar close they took effect at.
  let riskState: RiskSnapshot | undefined;
  let riskConfig: RiskConfig | undefined;
  const riskEvents: RiskEvent[] = [];
  const resumes = await resumeTimes(store, botId);
  // Perpetuals: what the backtest charged and liquidated, by session; live rates by symbol (read once).
  const modelFunding: FundingRecord[] = [];
  const modelLiquidations: LiquidationRecord[] = [];
  const exchangeRates = new Map<string, FundingRateSeries>();
  // What the bot journaled of its perpetuals: its payments' rates drive a live session's backtest.
  const perpetuals = setups.some((x) => x.setup.futures !== undefined);
  const botFutures: BotFuturesRecords = perpetuals
    ? {
        funding: await eventsOfType<FundingRecord>(store, botId, 'futures.funding'),
        liquidations: await eventsOfType<LiquidationRecord>(store, botId, 'futures.liquidation'),
        adlCloses: (await eventsOfType<ExchangeCloseRecord>(store, botId, 'futures.adl')).length,
        settlementCloses: (await eventsOfType<ExchangeCloseRecord>(store, botId, 'futures.settlement')).length,
      }
    : { funding: [], liquidations: [], adlCloses: 0, settlementCloses: 0 };
  const storedFills = await store.fills.since(botId, 0);
  // A spot account paying its fees with BNB (Binance): its fills' fees are outside their markets.
  const outsideFees = storedFills.filter(
    (f) => f.fee !== 0 && isOutsideFee(setupInstrument(setups, f.symbol), f.feeAsset),
  );

  for (const [k, { seq, setup }] of setups.entries()) {
    if (setup.futures === undefined && setup.instruments.some((i) => i.kind === 'perpetual')) {
      // Replayed as spot, a perpetual's orders would differ by its leverage: not compared at all.
      notes.push(
        `session ${seq} traded perpetuals but was recorded before Keel kept their settings (leverage, margin, funding): not compared`,
      );
      continue;
    }
    const next = setups[k + 1]?.setup;
    const bars = await sessionBars(store, botId, setup, next);
    if (bars.handled.length === 0) continue;
    primary ??= setup;
    for (const [feed, n] of Object.entries(setup.lateWarmup ?? {}))
      notes.push(
        `session ${seq}: ${n} bar(s) of ${feed} came again after trading began (a reconnect's backfill) and warmed the bot's indicators a second time; the backtest did not see them twice`,
      );
    for (const [feed, w] of Object.entries(setup.warmup)) {
      const got = bars.warmupCount.get(feed) ?? 0;
      if (got !== w.count)
        notes.push(
          `session ${seq}: the bot warmed ${feed} up on ${w.count} bars; ${got} of them are recorded (the rest were recorded with other values first, or lost): the backtest warms up on those`,
        );
    }
    const { simulated, label } = modelFor(setup.model, opts, seq, setup.futures !== undefined, outsideFees.length > 0);
    const strategy = resolve(setup.strategy);
    const instruments = setup.instruments;
    const account = startAccount(
      setup,
      instruments,
      outsideFees,
      bars.handled[0]?.bar.time ?? Number.POSITIVE_INFINITY,
      notes,
      seq,
    );
    const startEquity = openingValue(account, bars.handled[0]?.bar);
    if (Number.isNaN(startValue)) startValue = startEquity;
    const book =
      setup.futures === undefined
        ? undefined
        : sessionBook(
            {
              seq,
              futures: setup.futures,
              account,
              instruments,
              recorded: botFutures.funding,
              rates: exchangeRates,
              marks: await sessionMarks(store, botId, setup.futures, bars.handled),
            },
            notes,
          );
    const venue = new SimulatedVenue(
      instruments,
      account,
      book === undefined ? simulated : { ...simulated, marginCheck: book.marginCheck.bind(book) },
    );
    const risk = sessionRisk(setup, seq);
    riskConfig ??= risk;
    const botEngine = new BotEngine({
      botId,
      strategy,
      params: setup.params,
      feeds: setup.feeds,
      instruments,
      account,
      venue,
      ...(risk ? { risk } : {}),
      ...(setup.perPair ? { perPair: setup.perPair } : {}),
      ...(book !== undefined ? { futures: book } : {}),
    });
    const engine = botEngine.engine;
    // Orders the bot carried into this session (working on the exchange across the restart) go on
    // working in the backtest too, where its last session left them: they arrive at this venue
    // as they did at the last one (and are checked again on arrival).
    const carried = new Map<string, { fills: readonly Fill[]; session: number }>();
    for (const id of setup.start.openOrders) {
      const w = working.get(id);
      if (!w) continue;
      botEngine.carryOver({ ...w.order, status: 'submitted' });
      carried.set(id, { fills: w.fills, session: w.session });
    }
    if (riskState !== undefined) engine.risk?.restore(riskState);
    engine.start();
    for (const b of bars.warmup) engine.warmUp(b.feed, b.bar);
    // A resume applied before this session's first bar (asked while the bot was down).
    const firstClose = bars.handled[0]?.close ?? Number.POSITIVE_INFINITY;
    while (resumes.length > 0 && (resumes[0] as number) < firstClose && engine.risk !== undefined) {
      resumes.shift();
      engine.resumeTrading();
    }
    const primaryFeed = 0;
    const lastClose = new Map<number, number>();
    const addHandled = (symbol: string, time: number) => {
      let list = handledBySymbol.get(symbol);
      if (list === undefined) {
        list = [];
        handledBySymbol.set(symbol, list);
      }
      if (list.length === 0 || (list[list.length - 1] as number) < time) list.push(time);
    };
    // A close time's bars in the backtest's two phases (runBacktest): every market's fills first.
    const handled = bars.handled;
    for (let j = 0; j < handled.length; ) {
      const close = (handled[j] as TimedBar).close;
      let end = j;
      while (end < handled.length && (handled[end] as TimedBar).close === close) end++;
      for (let g = j; g < end; g++) engine.matchBar((handled[g] as TimedBar).feed, (handled[g] as TimedBar).bar);
      for (let g = j; g < end; g++) {
        const b = handled[g] as TimedBar;
        engine.closeBar(b.feed, b.bar);
        lastClose.set(b.feed, b.close);
        if (b.feed === primaryFeed && setup === primary) chartBars.push(b.bar);
        addHandled(setup.feeds[b.feed]?.symbol as string, b.bar.time);
      }
      while (resumes.length > 0 && resumes[0] === close) {
        resumes.shift();
        engine.resumeTrading();
      }
      if ((handled[j] as TimedBar).feed === primaryFeed) {
        eqTimes.push(close);
        eqValues.push(engine.equity());
        exposed.push(account.positions.some((p) => p.size !== 0) ? 1 : 0);
      }
      j = end;
    }
    // Orders still working when the session's bars ran out. Those the bot carried into its next
    // session go on working there. The others are settled on the bar that followed (recorded when
    // the next session handled it), as a continuous backtest would settle them; without that bar
    // they cannot be compared.
    const carriedNext = new Set<string>(next?.start.openOrders ?? []);
    const carry = engine
      .openOrders()
      .filter((o) => carriedNext.has(o.request.id))
      .map((o) => ({ ...o }));
    for (const o of carry) venue.cancel(o.request.id, o.updatedAt, 'carried into the next session');
    if (engine.openOrders().length > 0) {
      for (const [i, f] of setup.feeds.entries()) {
        const close = lastClose.get(i);
        if (close === undefined || !engine.openOrders().some((o) => o.request.symbol === f.symbol)) continue;
        const after = await store.barLog.range(botId, feedId(f), close, close);
        if (after.length === 0) continue;
        const bar = readBar(after, 0, emptyBar());
        venue.onBar(f.symbol, bar, timeframeEnd(f.timeframe, bar.time));
        addHandled(f.symbol, bar.time);
      }
    }
    for (const o of engine.openOrders()) unsettled.add(o.request.id);
    engine.stop();
    riskState = engine.risk?.snapshot();
    riskEvents.push(...(engine.risk?.events ?? []));
    const stamped = setup.model.kind !== 'exchange';
    const fillsByOrder = groupFills(engine.fills);
    for (const o of engine.history) {
      const before = carried.get(o.request.id);
      const fills = [...(before?.fills ?? []), ...(fillsByOrder.get(o.request.id) ?? [])];
      modelOrders.set(o.request.id, { order: o, fills, session: before?.session ?? seq });
    }
    working = new Map(
      carry.map((o) => {
        const m = modelOrders.get(o.request.id) as ModelOrder;
        return [o.request.id as string, { order: o, fills: m.fills, session: m.session }];
      }),
    );
    if (book !== undefined) {
      modelFunding.push(...book.funding);
      modelLiquidations.push(...book.liquidations);
      lastBook = book.summary();
      bookWarnings.push(...sessionBookWarnings(seq, setup.futures as SessionFutures, lastBook));
    }
    allTrades.push(...botEngine.closedTrades());
    allFills.push(...engine.fills);
    allOrders.push(...engine.history);
    feesPaid += account.feesPaid;
    turnover += account.turnover;
    finalCash = account.cash;
    lastAccount = account;
    const first = bars.handled[0] as { close: number; bar: Bar };
    const last = bars.handled[bars.handled.length - 1] as { close: number; bar: Bar };
    ranges.push({ seq, from: first.close, to: last.close, stamped });
    sessions.push({
      seq,
      from: iso(first.bar.time),
      to: iso(last.bar.time),
      bars: bars.handled.length,
      warmupBars: bars.warmup.length,
      model: label,
    });
  }
  if (primary === undefined) {
    throw new Error(
      `bot "${botId}" has no recorded bars to compare: it has not handled a bar since it began recording them${notes.length > 0 ? ` (${notes.join('; ')})` : ''}`,
    );
  }
  // One chart: the primary feed of the first compared session's set-up, over every session.
  if (setups.length > 1) chartBars = await primaryBars(store, botId, primary, ranges);

  const instrumentOf = (symbol: string): Instrument =>
    primary?.instruments.find((i) => i.symbol === symbol) ?? defineInstrument({ symbol });
  const orders = compareOrders({
    botOrders: await store.orders.list(botId),
    botFills: groupFills(storedFills),
    modelOrders,
    ranges,
    handledBySymbol,
    unsettled,
    instrumentOf,
    tol,
  });
  notes.push(...orders.notes);
  const rows: Dated[] = [...orders.differences];
  let futures: ParityResult['futures'];
  if (perpetuals) {
    const f = compareFutures({
      bot: botFutures,
      backtest: { funding: modelFunding, liquidations: modelLiquidations },
      ranges,
      barMs: timeframeMs(primary.feeds[0]?.timeframe ?? '1m'),
      quoteOf: (symbol) => instrumentOf(symbol).settle ?? instrumentOf(symbol).quote,
      tol,
    });
    notes.push(...f.notes);
    rows.push(...f.differences);
    futures = f.totals;
  }
  rows.sort((a, b) => a.at - b.at || (a.d.id < b.d.id ? -1 : a.d.id > b.d.id ? 1 : 0));
  const differences = rows.map((r) => r.d);
  const counts: Partial<Record<ParityKind, number>> = {};
  for (const d of differences) counts[d.kind] = (counts[d.kind] ?? 0) + 1;
  const sum = (kind: ParityKind) => differences.filter((d) => d.kind === kind).reduce((a, d) => a + (d.cost ?? 0), 0);
  const modelFills = [...modelOrders.values()].flatMap((x) => x.fills).sort((a, b) => a.time - b.time);
  const comparedBotFills = [...orders.botFills].sort((a, b) => a.time - b.time);
  const instruments = primary.instruments;

  const result: ParityResult = {
    botId,
    mode: bot.mode,
    strategy: primary.strategy,
    params: primary.params,
    sessions,
    bars: sessions.reduce((a, s) => a + s.bars, 0),
    orders: { bot: orders.botOrders, backtest: modelOrders.size, matched: orders.matched },
    fills: { bot: comparedBotFills.length, backtest: modelFills.length },
    differences,
    counts,
    slippageCost: sum('price'),
    feeDifference: sum('fee'),
    bot: pnlOf(comparedBotFills, instruments),
    backtest: pnlOf(modelFills, instruments),
    ...(futures !== undefined ? { futures } : {}),
    notes,
  };
  const tf = primary.feeds[0]?.timeframe ?? '1m';
  const times = Float64Array.from(eqTimes);
  const values = Float64Array.from(eqValues);
  const chart = seriesFromRows(chartBars);
  const feeds = [
    {
      ...(primary.feeds[0] ?? { symbol: instruments[0]?.symbol ?? '', timeframe: tf }),
      bars: chart.length,
      first: chart.length > 0 ? (chart.time[0] as number) : Number.NaN,
      last: chart.length > 0 ? (chart.time[chart.length - 1] as number) : Number.NaN,
    },
  ];
  const portfolio = lastAccount?.summary() ?? new Account(instruments[0]?.quote ?? 'USDT', 0).summary();
  const backtest: BacktestResult = {
    strategy: primary.strategy,
    params: primary.params,
    feeds,
    startValue,
    finalValue: values.length > 0 ? (values[values.length - 1] as number) : startValue,
    finalCash,
    risk: riskConfig ?? null,
    riskEvents,
    riskCounts: countRiskEvents(riskEvents),
    portfolio,
    pairs: pairStats({
      feeds,
      trades: allTrades,
      openTrades: [],
      orders: allOrders,
      positions: portfolio.positions,
      funding: modelFunding,
      startValue,
    }),
    metrics: computeMetrics({
      equity: values,
      times,
      exposed: Uint8Array.from(exposed),
      trades: allTrades,
      startValue,
      barMs: timeframeMs(tf),
      feesPaid,
      turnover,
    }),
    trades: allTrades,
    openTrades: [],
    fills: allFills,
    orders: allOrders,
    equity: { times, values },
    errors: [],
    ...(lastBook !== undefined
      ? { futures: parityFutures(lastBook, modelFunding, modelLiquidations, bookWarnings) }
      : {}),
  };
  return { result, backtest, bars: chart };
}

/** A session's risk settings, as its setup recorded them (absent: none). */
function sessionRisk(setup: SessionSetup, seq: number): RiskConfig | undefined {
  if (setup.risk === undefined) return undefined;
  const p = parseRiskConfig(setup.risk as RiskInput);
  if (!p.ok) throw new Error(`session ${seq}: its recorded risk settings no longer parse: ${p.error.message}`);
  return p.config;
}

/** When the bot's resumes took effect (engine times: bar closes), in order. */
async function resumeTimes(store: Store, botId: string): Promise<number[]> {
  return (await eventsOfType<{ time: number }>(store, botId, 'risk.resume')).map((r) => r.time);
}

/** The payloads of the bot's journal events of one type, in journal order. */
async function eventsOfType<T>(store: Store, botId: string, type: string): Promise<T[]> {
  const rows = await store.db
    .selectFrom('events')
    .select(['payload'])
    .where('bot_id', '=', botId)
    .where('type', '=', type)
    .orderBy('seq')
    .execute();
  return rows.map((r) => JSON.parse(r.payload) as T);
}

/** The close time of a bar of `tf` that opens at `open`. */
interface TimedBar {
  readonly feed: number;
  readonly close: number;
  readonly bar: Bar;
}

/** The warm-up and handled bars of one session, each list in the engine's order (close time, feed). */
async function sessionBars(store: Store, botId: string, setup: SessionSetup, next: SessionSetup | undefined) {
  const warmup: TimedBar[] = [];
  const handled: TimedBar[] = [];
  const warmupCount = new Map<string, number>();
  for (const [i, f] of setup.feeds.entries()) {
    const id = feedId(f);
    const end = (t: number) => timeframeEnd(f.timeframe, t);
    const w = setup.warmup[id];
    if (w) {
      const s = await store.barLog.range(botId, id, w.first, w.last);
      warmupCount.set(id, s.length);
      for (let k = 0; k < s.length; k++) {
        const bar = readBar(s, k, emptyBar());
        warmup.push({ feed: i, close: end(bar.time), bar });
      }
    }
    // Handled: after the last bar the session resumed from, and after its warm-up (a first start's
    // history is recorded too, and is not handled).
    const after = Math.max(setup.resumeAfter[id] ?? -1, w?.last ?? -1);
    const upTo = next?.resumeAfter[id] ?? Number.MAX_SAFE_INTEGER;
    const s = await store.barLog.range(botId, id, after + 1, upTo);
    for (let k = 0; k < s.length; k++) {
      const bar = readBar(s, k, emptyBar());
      handled.push({ feed: i, close: end(bar.time), bar });
    }
  }
  const order = (a: TimedBar, b: TimedBar) => a.close - b.close || a.feed - b.feed;
  warmup.sort(order);
  handled.sort(order);
  return { warmup, handled, warmupCount };
}

/**
 * By perpetual: the mark bars a session's futures book read, as it recorded them with the bars it
 * handled (`SessionPerpetual.marks`), over the open times of those bars.
 */
async function sessionMarks(
  store: Store,
  botId: string,
  f: SessionFutures,
  handled: readonly TimedBar[],
): Promise<Map<string, BarSeries>> {
  const out = new Map<string, BarSeries>();
  let from = Number.POSITIVE_INFINITY;
  let to = Number.NEGATIVE_INFINITY;
  for (const b of handled) {
    from = Math.min(from, b.bar.time);
    to = Math.max(to, b.bar.time);
  }
  for (const [symbol, m] of Object.entries(f.markets))
    if (m.marks !== undefined) out.set(symbol, await store.barLog.range(botId, m.marks, from, to));
  return out;
}

/** The primary feed's handled bars over every compared session (the report's chart). */
async function primaryBars(
  store: Store,
  botId: string,
  primary: SessionSetup,
  ranges: readonly { from: number; to: number }[],
): Promise<Bar[]> {
  const f = primary.feeds[0];
  if (!f || ranges.length === 0) return [];
  const ms = timeframeMs(f.timeframe);
  const s = await store.barLog.range(
    botId,
    feedId(f),
    (ranges[0] as { from: number }).from - ms,
    (ranges[ranges.length - 1] as { to: number }).to,
  );
  const out: Bar[] = [];
  for (let k = 0; k < s.length; k++) {
    const bar = readBar(s, k, emptyBar());
    const close = bar.time + ms;
    if (ranges.some((r) => close >= r.from && close <= r.to)) out.push(bar);
  }
  return out;
}

/** The model a session's backtest fills by; `perpetual`: the session traded perpetuals (their default fees). */
function modelFor(
  m: FillModelSetup,
  opts: ParityOptions,
  seq: number,
  perpetual: boolean,
  bnbFees: boolean,
): { simulated: SimulatedVenueOptions; label: string } {
  switch (m.kind) {
    case 'percent':
      return {
        simulated: { fees: percentFee(m.rate) },
        label: `the paper bot's own: fee ${m.rate * 100} % in the quote currency, fills at the next bar's open`,
      };
    case 'custom':
      if (!opts.model)
        throw new Error(
          `session ${seq} of this paper bot ran with a fill model given in code (BotConfig.simulated): pass the same model to compare it`,
        );
      return { simulated: opts.model, label: opts.modelLabel ?? 'the model given' };
    case 'exchange':
      return opts.model
        ? { simulated: opts.model, label: opts.modelLabel ?? 'the model given' }
        : perpetual
          ? {
              simulated: { fees: percentFee(USDM_DEFAULT_FEES.taker, { makerRate: USDM_DEFAULT_FEES.maker }) },
              label: USDM_MODEL_LABEL,
            }
          : bnbFees
            ? { simulated: { fees: percentFee(BNB_FEE_RATE) }, label: BNB_MODEL_LABEL }
            : { simulated: { fees: percentFee(0.001) }, label: DEFAULT_MODEL_LABEL };
    default: {
      const never: never = m;
      throw new Error(`Invariant violated: unknown fill model ${JSON.stringify(never)}`);
    }
  }
}

/** The instrument a bot's setups name for `symbol` (the newest), or one made from the symbol. */
function setupInstrument(setups: readonly { setup: SessionSetup }[], symbol: string): Instrument {
  for (let k = setups.length - 1; k >= 0; k--) {
    const i = setups[k]?.setup.instruments.find((x) => x.symbol === symbol);
    if (i !== undefined) return i;
  }
  return defineInstrument({ symbol });
}

/**
 * The account a session's backtest starts from: the bot's at the start. What the bot's fees took
 * from an asset outside its markets (a debt in BNB) comes out of the cash at what those fees were
 * worth when booked (the model charges fees in the quote), so that the two equities agree.
 */
function startAccount(
  setup: SessionSetup,
  instruments: readonly Instrument[],
  outsideFees: readonly Fill[],
  from: number,
  notes: string[],
  seq: number,
): Account {
  const s = setup.start;
  const account = new Account(s.currency, 0);
  account.cash = s.cash;
  for (const [asset, v] of Object.entries(s.balances)) {
    const before = outsideFees.filter((f) => f.feeAsset === asset && f.time < from);
    if (before.length === 0 || !instruments.every((i) => isOutsideFee(i, asset))) {
      account.balances.set(asset, v);
      continue;
    }
    const { amount, value } = bookedFees(before, asset);
    if (amount > 0) account.cash += (v * value) / amount;
    else
      notes.push(
        `session ${seq} started with ${v} ${asset} of fees that had no value (no ${asset} price when they were paid): left out of the backtest's starting equity`,
      );
  }
  for (const p of s.positions) {
    const inst = instruments.find((i) => i.symbol === p.symbol) ?? defineInstrument({ symbol: p.symbol });
    const pos = account.position(inst, p.positionSide);
    pos.size = p.size;
    pos.avgPrice = p.avgPrice ?? Number.NaN;
    pos.realizedPnl = p.realizedPnl;
  }
  return account;
}

/** The account's value at a bar's open (the start of a session's equity curve). */
function openingValue(account: Account, bar: Bar | undefined): number {
  let v = account.cash;
  for (const p of account.positions) {
    if (p.size === 0 || !bar) continue;
    // A perpetual's value is its unrealised PnL (its margin is in the wallet); a coin's, all of it.
    const price = p.instrument.kind === 'perpetual' ? bar.open - p.avgPrice : bar.open;
    v += p.size * price * p.instrument.contractSize;
  }
  return v;
}
