import {
  Account,
  type AdlRecord,
  type AnyStrategy,
  type BacktestResult,
  type Bar,
  type BarSeries,
  computeMetrics,
  countRiskEvents,
  defineInstrument,
  emptyBar,
  type Fill,
  type FundingRateSeries,
  type FundingRecord,
  FuturesBook,
  type FuturesMarketSettings,
  type FuturesSummary,
  feedId,
  type Instrument,
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
  TERMINAL_STATUSES,
  type Timeframe,
  type Trade,
  timeframeEnd,
  timeframeMs,
  USDM_DEFAULT_FEES,
} from '@keel/core';
import type { BotMode, Store } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { BotEngine } from './bot-engine.ts';
import { UnknownBotError } from './bots.ts';
import { type PnlTotals, pnlOf } from './pnl.ts';
import {
  type FillModelSetup,
  fundingSeriesOf,
  isSessionSetup,
  type SessionFutures,
  type SessionSetup,
} from './session.ts';

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

export const PARITY_KINDS = [
  'missing-order',
  'not-acted',
  'extra-order',
  'amount',
  'unfilled',
  'extra-fill',
  'filled-amount',
  'price',
  'time',
  'fee',
  'fills-not-recorded',
  'funding',
  'liquidation',
] as const;
/**
 * What differs for one order:
 * - `missing-order`: the backtest placed it; the bot has no order for that signal;
 * - `not-acted`: the bot has the order, but it was denied, rejected or dropped (the reason says why);
 * - `extra-order`: the bot placed an order the backtest did not (or the backtest denied);
 * - `amount`: both placed it, for different amounts;
 * - `unfilled`: the backtest's filled, the bot's did not (cancelled, expired, still open);
 * - `extra-fill`: the bot's filled, the backtest's did not;
 * - `filled-amount`: both filled, different amounts;
 * - `price`: both filled, at different prices (slippage against the model, signed against the bot);
 * - `time`: both filled, on different bars;
 * - `fee`: both filled, the fee (valued in the quote currency) or its asset differs from the model's;
 * - `fills-not-recorded`: the bot's order row says filled, but the store has none of its fills;
 * - `funding` (perpetuals): a funding payment differs, or only one side was charged at that time;
 * - `liquidation` (perpetuals): only one side was liquidated, or at another price.
 */
export type ParityKind = (typeof PARITY_KINDS)[number];

/** One order as it ended, on one side. */
export interface OrderOutcome {
  readonly type: string;
  readonly status: string;
  readonly amount: number;
  /** Limit or stop price; null for market orders. */
  readonly price: number | null;
  readonly filled: number;
  /** Volume-weighted fill price; null when unfilled. */
  readonly avgPrice: number | null;
  /** Fees in the quote currency (a base-asset fee valued at its fill's price). */
  readonly fee: number;
  readonly feeAssets: readonly string[];
  /** Open time of the bar during which it first filled; null when unfilled. */
  readonly fillBar: string | null;
  /** How many fills of it the store holds (the order row may say more filled than they add up to). */
  readonly fillCount: number;
  readonly reason: string | null;
  readonly tag: string | null;
}

export interface ParityDifference {
  readonly kind: ParityKind;
  /** The order's client id; for funding and liquidations, the exchange's id of the payment or close (or a made-up one). */
  readonly id: string;
  /** The session whose bars the signal came from; null if outside every compared session. */
  readonly session: number | null;
  readonly symbol: string;
  /** The order's side; for funding and liquidations, the position's (buy: long). */
  readonly side: 'buy' | 'sell';
  /** The close of the bar the order was decided on; for funding and liquidations, their time. */
  readonly signalAt: string;
  /** The difference in a sentence. */
  readonly detail: string;
  /** What it cost the bot against the backtest, in the quote currency (negative: the bot gained); null when not money. */
  readonly cost: number | null;
  readonly bot: OrderOutcome | null;
  readonly backtest: OrderOutcome | null;
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

/** Funding and liquidations of perpetuals, in the settlement currency. */
export interface FuturesTotals {
  /** Net funding: > 0 received. */
  readonly funding: number;
  readonly payments: number;
  readonly liquidations: number;
  readonly clearanceFees: number;
}

/** The result, and the backtest itself (for an HTML report): its result and the bars of its primary feed. */
export interface ParityRun {
  readonly result: ParityResult;
  readonly backtest: BacktestResult;
  readonly bars: BarSeries;
}

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
  const modelOrders = new Map<string, { order: OrderState; fills: Fill[]; session: number }>();
  const ranges: { seq: number; from: number; to: number; stamped: boolean }[] = [];
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
  let working = new Map<string, { order: OrderState; fills: Fill[]; session: number }>();
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
  // The bot's own funding payments: the rates of a live session's backtest, and what is compared.
  const perpetuals = setups.some((x) => x.setup.futures !== undefined);
  const botFundingAll = perpetuals ? await eventsOfType<FundingRecord>(store, botId, 'futures.funding') : [];

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
    const { simulated, label } = modelFor(setup.model, opts, seq, setup.futures !== undefined);
    const strategy = resolve(setup.strategy);
    const instruments = setup.instruments;
    const account = startAccount(setup, instruments);
    const startEquity = openingValue(account, bars.handled[0]?.bar);
    if (Number.isNaN(startValue)) startValue = startEquity;
    const book =
      setup.futures === undefined
        ? undefined
        : sessionBook(setup.futures, account, instruments, seq, notes, exchangeRates, botFundingAll);
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
    const carried = new Map<string, { fills: Fill[]; session: number }>();
    for (const id of setup.start.openOrders) {
      const w = working.get(id);
      if (!w) continue;
      const o: OrderState = { ...w.order, status: 'submitted' };
      engine.restoreOrder(o);
      venue.submit(o, o.createdAt);
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
    for (const b of bars.handled) {
      engine.onBar(b.feed, b.bar);
      while (resumes.length > 0 && resumes[0] === b.close) {
        resumes.shift();
        engine.resumeTrading();
      }
      lastClose.set(b.feed, b.close);
      if (b.feed === primaryFeed) {
        eqTimes.push(b.close);
        eqValues.push(engine.equity());
        exposed.push(account.positions.some((p) => p.size !== 0) ? 1 : 0);
        if (setup === primary) chartBars.push(b.bar);
      }
      addHandled(setup.feeds[b.feed]?.symbol as string, b.bar.time);
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
        venue.onBar(f.symbol, bar, barEnd(f.timeframe, bar.time));
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
        const m = modelOrders.get(o.request.id) as { fills: Fill[]; session: number };
        return [o.request.id as string, { order: o, fills: m.fills, session: m.session }];
      }),
    );
    if (book !== undefined) {
      modelFunding.push(...book.funding);
      modelLiquidations.push(...book.liquidations);
      lastBook = book.summary();
      // Live, the rates are only those of the bot's payments: the times between have none by design.
      const live = Object.values(setup.futures?.markets ?? {}).some((m) => m.funding === undefined);
      for (const w of lastBook.warnings)
        if (!live || !/: no funding data /.test(w)) bookWarnings.push(`session ${seq}: ${w}`);
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

  const botOrders = await store.orders.list(botId);
  const botFills = groupFills(await store.fills.since(botId, 0));
  const sessionOf = (t: number) => ranges.find((r) => t >= r.from && t <= r.to);
  const inScope = botOrders.filter((o) => modelOrders.has(o.request.id) || sessionOf(o.createdAt) !== undefined);
  const botById = new Map(inScope.map((o) => [o.request.id as string, o]));
  const barOf = (symbol: string, t: number): number | null => {
    const times = handledBySymbol.get(symbol);
    if (!times || times.length === 0) return null;
    let lo = 0;
    let hi = times.length - 1;
    if (t < (times[0] as number)) return null;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((times[mid] as number) <= t) lo = mid;
      else hi = mid - 1;
    }
    return times[lo] as number;
  };
  const instrumentOf = (symbol: string): Instrument =>
    primary?.instruments.find((i) => i.symbol === symbol) ?? defineInstrument({ symbol });

  const ids = new Set<string>([...modelOrders.keys(), ...botById.keys()]);
  const rows: { at: number; id: string; d: ParityDifference[] }[] = [];
  let matched = 0;
  const comparedBotFills: Fill[] = [];
  for (const id of ids) {
    const m = modelOrders.get(id);
    const b = botById.get(id);
    const order = (b ?? m?.order) as OrderState;
    const r = order.request;
    const inst = instrumentOf(r.symbol);
    const bFills = botFills.get(id) ?? [];
    comparedBotFills.push(...bFills);
    const botStamped = b ? (sessionOf(b.createdAt)?.stamped ?? true) : true;
    const bo = b ? outcome(b, bFills, inst, (t) => barOf(r.symbol, botStamped ? t - 1 : t)) : null;
    const mo = m ? outcome(m.order, m.fills, inst, (t) => barOf(r.symbol, t - 1)) : null;
    if (b && m) matched++;
    if (m && bo && mo && unsettled.has(id) && bo.filled > 0 && mo.filled === 0) {
      notes.push(
        `order ${id} (${r.side} ${r.amount} ${r.symbol}), decided on the last bar the bot handled, filled after it at ${bo.avgPrice}: the backtest has no later bar to fill it on; not compared`,
      );
      continue;
    }
    const session = m?.session ?? sessionOf(order.createdAt)?.seq ?? null;
    const ctx = {
      id,
      session,
      symbol: r.symbol,
      side: r.side,
      signalAt: iso(order.createdAt) as string,
      bot: bo,
      backtest: mo,
    };
    rows.push({ at: order.createdAt, id, d: compare(ctx, bo, mo, inst, tol) });
  }
  let futures: ParityResult['futures'];
  if (perpetuals) {
    const barMs = timeframeMs(primary.feeds[0]?.timeframe ?? '1m');
    // A payment or close belongs to a compared session when it falls in the bars it handled.
    const during = (t: number) => ranges.find((r) => t >= r.from - barMs && t < r.to);
    const botFunding = botFundingAll.filter((r) => Number.isFinite(r.time));
    const botLiquidations = await eventsOfType<LiquidationRecord>(store, botId, 'futures.liquidation');
    const outside = botFunding.filter((r) => during(r.time) === undefined).length;
    if (outside > 0)
      notes.push(
        `${outside} funding payment(s) of the bot fell outside the bars it handled (while it was down, applied at its next start): not compared`,
      );
    const adl = (await eventsOfType<AdlRecord>(store, botId, 'futures.adl')).length;
    if (adl > 0)
      notes.push(
        `${adl} ADL close(s) by the exchange (auto-deleveraging) reduced the bot's position: a backtest never deleverages, so its positions differ from then on`,
      );
    const fundingIn = botFunding.filter((r) => during(r.time) !== undefined);
    const liquidationsIn = botLiquidations.filter((r) => during(r.time) !== undefined);
    const quoteOf = (symbol: string) => instrumentOf(symbol).settle ?? instrumentOf(symbol).quote;
    for (const d of compareFunding(fundingIn, modelFunding, during, quoteOf, tol))
      rows.push({ at: d.at, id: d.d.id, d: [d.d] });
    for (const d of compareLiquidations(liquidationsIn, modelLiquidations, during, barMs, quoteOf, tol))
      rows.push({ at: d.at, id: d.d.id, d: [d.d] });
    futures = {
      bot: futuresTotals(fundingIn, liquidationsIn),
      backtest: futuresTotals(modelFunding, modelLiquidations),
    };
  }
  rows.sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const differences = rows.flatMap((r) => r.d);
  const counts: Partial<Record<ParityKind, number>> = {};
  for (const d of differences) counts[d.kind] = (counts[d.kind] ?? 0) + 1;
  const sum = (kind: ParityKind) => differences.filter((d) => d.kind === kind).reduce((a, d) => a + (d.cost ?? 0), 0);
  const modelFills = [...modelOrders.values()].flatMap((x) => x.fills).sort((a, b) => a.time - b.time);
  comparedBotFills.sort((a, b) => a.time - b.time);
  const instruments = primary.instruments;

  const result: ParityResult = {
    botId,
    mode: bot.mode,
    strategy: primary.strategy,
    params: primary.params,
    sessions,
    bars: sessions.reduce((a, s) => a + s.bars, 0),
    orders: { bot: botById.size, backtest: modelOrders.size, matched },
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
    pairs: pairStats({ feeds, trades: allTrades, orders: allOrders, positions: portfolio.positions, startValue }),
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

/**
 * The futures book a session's backtest runs with: the session's settings and starting book.
 * Funding: a paper session's own rates (as recorded at its start); live, the exchange charged,
 * and the rates are those of the payments the bot recorded (a funding time at which the bot held
 * nothing has no rate then: the backtest charges nothing there, which a note says).
 */
function sessionBook(
  f: SessionFutures,
  account: Account,
  instruments: readonly Instrument[],
  seq: number,
  notes: string[],
  exchangeRates: Map<string, FundingRateSeries>,
  recorded: readonly FundingRecord[],
): FuturesBook {
  const settings = new Map<string, FuturesMarketSettings>();
  for (const inst of instruments) {
    const m = f.markets[inst.symbol];
    if (inst.kind !== 'perpetual' || m === undefined) continue;
    let funding: FundingRateSeries | null;
    let fundingSource: string;
    if (m.funding === null) {
      funding = null;
      fundingSource = 'none given';
    } else if (m.funding !== undefined) {
      funding = fundingSeriesOf(inst.symbol, m.funding);
      fundingSource = m.funding.source;
    } else {
      let rates = exchangeRates.get(inst.symbol);
      if (rates === undefined) {
        rates = recordedRates(recorded, inst.symbol);
        exchangeRates.set(inst.symbol, rates);
        notes.push(
          `${inst.symbol}: the backtest charges funding at the rates of the bot's own payments (${rates.length} funding time(s)); at a funding time the bot held nothing, it has no rate and charges nothing`,
        );
      }
      funding = rates;
      fundingSource = "the rates of the bot's payments";
    }
    if (m.markSource !== undefined)
      notes.push(
        `session ${seq}: ${inst.symbol}'s paper session used mark bars (${m.markSource}); the backtest takes the traded price as the mark`,
      );
    settings.set(inst.symbol, {
      leverage: m.leverage,
      marginMode: m.marginMode,
      ...(m.positionMode !== undefined ? { positionMode: m.positionMode } : {}),
      ...(m.brackets !== undefined ? { brackets: m.brackets } : {}),
      ...(m.clearanceRate !== undefined ? { clearanceRate: m.clearanceRate } : {}),
      funding,
      fundingSource,
    });
  }
  const book = new FuturesBook(
    account,
    instruments.filter((i) => settings.has(i.symbol)),
    (i) => settings.get(i.symbol) as FuturesMarketSettings,
    'simulated',
  );
  book.restore(f.book);
  return book;
}

/** The rates of the funding payments a live bot recorded for `symbol`, one row per funding time. */
function recordedRates(recorded: readonly FundingRecord[], symbol: string): FundingRateSeries {
  const byTime = new Map<number, number>();
  for (const r of recorded)
    if (r.symbol === symbol && Number.isFinite(r.time) && Number.isFinite(r.rate)) byTime.set(r.time, r.rate);
  const times = [...byTime.keys()].sort((a, b) => a - b);
  return {
    symbol,
    length: times.length,
    time: Float64Array.from(times),
    rate: Float64Array.from(times, (t) => byTime.get(t) as number),
    intervalHours: new Float64Array(times.length).fill(8),
  };
}

/** The backtest's futures summary over every compared session (the report's Futures card). */
function parityFutures(
  last: FuturesSummary,
  payments: readonly FundingRecord[],
  liquidations: readonly LiquidationRecord[],
  warnings: readonly string[],
): FuturesSummary {
  let paid = 0;
  let received = 0;
  for (const p of payments) {
    if (p.payment < 0) paid -= p.payment;
    else received += p.payment;
  }
  return {
    markets: last.markets,
    funding: received - paid,
    fundingPaid: paid,
    fundingReceived: received,
    fundingEvents: payments.length,
    payments,
    liquidations,
    liquidationFees: liquidations.reduce((a, l) => a + l.clearanceFee, 0),
    warnings,
  };
}

function futuresTotals(funding: readonly FundingRecord[], liquidations: readonly LiquidationRecord[]): FuturesTotals {
  return {
    funding: funding.reduce((a, r) => a + r.payment, 0),
    payments: funding.length,
    liquidations: liquidations.length,
    clearanceFees: liquidations.reduce((a, r) => a + r.clearanceFee, 0),
  };
}

type Dated = { readonly at: number; readonly d: ParityDifference };
const SLACK_MS = 60_000;
const sideKey = (r: { symbol: string; positionSide?: string }) => `${r.symbol} ${r.positionSide ?? ''}`;

/**
 * Pairs each side's items of one market (and hedge side) in time order, two within `slack` of each
 * other; calls `pair` for each pair and `only` for each item one side has.
 */
function pairInTime<T extends { readonly symbol: string; readonly time: number; readonly positionSide?: string }>(
  bot: readonly T[],
  model: readonly T[],
  slack: number,
  pair: (b: T, m: T) => void,
  only: (x: T, side: 'bot' | 'backtest') => void,
): void {
  const keys = new Set([...bot.map(sideKey), ...model.map(sideKey)]);
  for (const k of keys) {
    const bs = bot.filter((x) => sideKey(x) === k).sort((a, b) => a.time - b.time);
    const ms = model.filter((x) => sideKey(x) === k).sort((a, b) => a.time - b.time);
    let i = 0;
    let j = 0;
    while (i < bs.length || j < ms.length) {
      const b = bs[i];
      const m = ms[j];
      if (b !== undefined && m !== undefined && Math.abs(b.time - m.time) <= slack) {
        pair(b, m);
        i++;
        j++;
      } else if (m === undefined || (b !== undefined && b.time < m.time)) {
        only(b as T, 'bot');
        i++;
      } else {
        only(m, 'backtest');
        j++;
      }
    }
  }
}

/** A funding or liquidation difference, dated by the record (its exchange id, or one made up). */
function futuresDifference(
  kind: 'funding' | 'liquidation',
  r: FundingRecord | LiquidationRecord,
  detail: string,
  cost: number | null,
  during: (t: number) => { seq: number } | undefined,
): Dated {
  return {
    at: r.time,
    d: {
      kind,
      id: r.id ?? `${kind} ${r.symbol}${r.positionSide ? ` ${r.positionSide}` : ''} ${iso(r.time)}`,
      session: during(r.time)?.seq ?? null,
      symbol: r.symbol,
      side: r.size < 0 || r.positionSide === 'short' ? 'sell' : 'buy',
      signalAt: iso(r.time) as string,
      detail,
      cost,
      bot: null,
      backtest: null,
    },
  };
}

function compareFunding(
  bot: readonly FundingRecord[],
  model: readonly FundingRecord[],
  during: (t: number) => { seq: number } | undefined,
  quoteOf: (symbol: string) => string,
  tol: number,
): Dated[] {
  const out: Dated[] = [];
  const how = (r: FundingRecord, q: string) =>
    `${r.payment < 0 ? 'paid' : 'received'} ${round(Math.abs(r.payment), 8)} ${q} on ${r.size} (rate ${r.rate}, mark ${r.markPrice})`;
  const add = (r: FundingRecord, detail: string, cost: number) =>
    out.push(futuresDifference('funding', r, detail, cost, during));
  pairInTime(
    bot,
    model,
    SLACK_MS,
    (b, m) => {
      if (!differs(b.payment, m.payment, tol)) return;
      const q = quoteOf(b.symbol);
      add(
        b,
        `funding at ${iso(b.time)}: the bot ${how(b, q)}, the backtest ${how(m, q)}`,
        round(m.payment - b.payment, 8),
      );
    },
    (x, side) => {
      const q = quoteOf(x.symbol);
      if (side === 'bot')
        add(
          x,
          `funding at ${iso(x.time)}: the bot ${how(x, q)}; the backtest was charged nothing then (no position, or no rate)`,
          round(-x.payment, 8),
        );
      else
        add(
          x,
          `funding at ${iso(x.time)}: the backtest ${how(x, q)}; the bot has no payment recorded then`,
          round(x.payment, 8),
        );
    },
  );
  return out;
}

function compareLiquidations(
  bot: readonly LiquidationRecord[],
  model: readonly LiquidationRecord[],
  during: (t: number) => { seq: number } | undefined,
  barMs: number,
  quoteOf: (symbol: string) => string,
  tol: number,
): Dated[] {
  const out: Dated[] = [];
  const how = (r: LiquidationRecord, q: string) =>
    `liquidated ${r.size} at ${r.price} (entry ${r.entryPrice}, PnL ${round(r.realizedPnl, 8)} ${q}, clearance fee ${round(r.clearanceFee, 8)} ${q})`;
  const net = (r: LiquidationRecord) => r.realizedPnl - r.clearanceFee;
  const add = (r: LiquidationRecord, detail: string, cost: number | null) =>
    out.push(futuresDifference('liquidation', r, detail, cost, during));
  pairInTime(
    bot,
    model,
    barMs,
    (b, m) => {
      if (!differs(b.price, m.price, tol) && !differs(b.clearanceFee, m.clearanceFee, tol)) return;
      const q = quoteOf(b.symbol);
      add(b, `the bot ${how(b, q)} at ${iso(b.time)}; the backtest ${how(m, q)}`, round(net(m) - net(b), 8));
    },
    (x, side) => {
      const q = quoteOf(x.symbol);
      add(
        x,
        side === 'bot'
          ? `the bot was ${how(x, q)} at ${iso(x.time)}; the backtest was not`
          : `the backtest was ${how(x, q)} at ${iso(x.time)}; the bot was not`,
        null,
      );
    },
  );
  return out;
}

/** The close time of a bar of `tf` that opens at `open`. */
export function barEnd(tf: Timeframe, open: number): number {
  return tf === '1M' ? timeframeEnd('1M', open) : open + timeframeMs(tf);
}

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
    const end = (t: number) => barEnd(f.timeframe, t);
    const w = setup.warmup[id];
    if (w) {
      const s = await store.barLog.range(botId, id, w.first, w.last);
      warmupCount.set(id, s.length);
      for (let k = 0; k < s.length; k++) {
        const bar = readBar(s, k, emptyBar());
        warmup.push({ feed: i, close: end(bar.time), bar });
      }
    }
    const after = setup.resumeAfter[id] ?? -1;
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
          : { simulated: { fees: percentFee(0.001) }, label: DEFAULT_MODEL_LABEL };
    default: {
      const never: never = m;
      throw new Error(`Invariant violated: unknown fill model ${JSON.stringify(never)}`);
    }
  }
}

function startAccount(setup: SessionSetup, instruments: readonly Instrument[]): Account {
  const s = setup.start;
  const account = new Account(s.currency, 0);
  account.cash = s.cash;
  for (const [asset, v] of Object.entries(s.balances)) account.balances.set(asset, v);
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

function groupFills(fills: readonly Fill[]): Map<string, Fill[]> {
  const m = new Map<string, Fill[]>();
  for (const f of fills) {
    let l = m.get(f.orderId);
    if (l === undefined) {
      l = [];
      m.set(f.orderId, l);
    }
    l.push(f);
  }
  return m;
}

/**
 * How far an outcome's fee (valued in the quote currency) can be from the exact one because the
 * exchange rounds each commission to 8 decimals of its asset: half a unit per fill.
 */
const FEE_ROUNDING = new WeakMap<OrderOutcome, number>();

function outcome(
  o: OrderState,
  fills: readonly Fill[],
  inst: Instrument,
  barAt: (t: number) => number | null,
): OrderOutcome {
  const r = o.request;
  let filled = 0;
  let value = 0;
  let fee = 0;
  const assets = new Set<string>();
  const valuer = new Account(inst.quote, 0);
  for (const f of fills) {
    filled += f.amount;
    value += f.amount * f.price;
    if (f.fee !== 0) {
      assets.add(f.feeAsset);
      // The account's valuation: a fee in the coin at its fill's price; one in a third asset has none.
      const v = valuer.feeValue(inst, f.price, f.fee, f.feeAsset);
      if (Number.isFinite(v)) fee += v;
    }
  }
  if (fills.length === 0 && o.filled > 0) {
    // Fills not in the store (recorded before their trade ids were): the order row has the totals.
    filled = o.filled;
    value = o.filled * o.avgPrice;
  }
  const first = fills[0];
  const bar = first ? barAt(first.time) : null;
  let rounding = 0;
  for (const f of fills) if (f.fee !== 0) rounding += 0.5e-8 * (f.feeAsset === inst.quote ? 1 : f.price);
  const out: OrderOutcome = {
    type: r.type,
    status: o.status,
    amount: r.amount,
    price: r.type === 'limit' || r.type === 'stop-limit' ? r.price : r.type === 'stop-market' ? r.stopPrice : null,
    filled,
    avgPrice: filled > 0 ? value / filled : null,
    fee,
    feeAssets: [...assets].sort(),
    fillBar: bar === null ? null : iso(bar),
    fillCount: fills.length,
    reason: o.reason ?? null,
    tag: r.tag ?? null,
  };
  FEE_ROUNDING.set(out, rounding);
  return out;
}

const NOT_ACTED = new Set(['denied', 'rejected']);
const TERMINAL = new Set<string>(TERMINAL_STATUSES);

function compare(
  ctx: Omit<ParityDifference, 'kind' | 'detail' | 'cost'>,
  b: OrderOutcome | null,
  m: OrderOutcome | null,
  inst: Instrument,
  tol: number,
): ParityDifference[] {
  const out: ParityDifference[] = [];
  const add = (kind: ParityKind, detail: string, cost: number | null = null) =>
    out.push({ ...ctx, kind, detail, cost });
  const what = (x: OrderOutcome) =>
    `${ctx.side} ${x.amount} ${ctx.symbol} ${x.type}${x.price !== null ? ` ${x.price}` : ''}${x.tag ? ` (${x.tag})` : ''}`;
  const ended = (x: OrderOutcome) => `${x.status}${x.reason ? ` (${x.reason})` : ''}`;
  const q = inst.quote;
  if (m === null && b === null) return out;
  if (b === null) {
    const mm = m as OrderOutcome;
    if (!NOT_ACTED.has(mm.status))
      add('missing-order', `the backtest placed ${what(mm)}; the bot has no order for this signal`);
    return out;
  }
  if (m === null) {
    const why =
      b.tag === 'flatten'
        ? ' (it closed the position at shutdown: --flatten)'
        : b.tag === 'adopted'
          ? ' (adopted from the exchange: not the strategy’s)'
          : '';
    add('extra-order', `the bot placed ${what(b)}${why}; the backtest did not`);
    return out;
  }
  const bActed = !NOT_ACTED.has(b.status);
  const mActed = !NOT_ACTED.has(m.status);
  if (!bActed && !mActed) return out;
  if (!bActed) {
    add(
      'not-acted',
      `signal not acted on: the bot's ${what(b)} was ${ended(b)}; the backtest's ${m.filled > 0 ? `filled ${m.filled} at ${m.avgPrice}` : `was ${m.status}`}`,
    );
    return out;
  }
  if (!mActed) {
    add('extra-order', `the bot placed ${what(b)}; the backtest's was ${ended(m)}`);
    return out;
  }
  if (differs(b.amount, m.amount, tol))
    add('amount', `the bot asked for ${b.amount}, the backtest for ${m.amount} (${ctx.side} ${ctx.symbol} ${b.type})`);
  if (m.filled > 0 && b.filled === 0) {
    add('unfilled', `the backtest filled ${m.filled} at ${m.avgPrice}; the bot's order ended ${ended(b)} unfilled`);
    return out;
  }
  if (b.filled > 0 && m.filled === 0) {
    add(
      'extra-fill',
      TERMINAL.has(m.status)
        ? `the bot filled ${b.filled} at ${b.avgPrice}; the backtest's order ended ${ended(m)} unfilled`
        : `the bot filled ${b.filled} at ${b.avgPrice}; the backtest's order was still working when the bars of its session ran out (the bot filled it while it was down, or after a restart that did not carry it)`,
    );
    return out;
  }
  if (b.filled === 0 && m.filled === 0) return out;
  if (b.fillCount === 0) {
    add(
      'fills-not-recorded',
      `the bot's order is ${b.status} with ${b.filled} filled, but the store has none of its fills (the backtest filled ${m.filled} at ${m.avgPrice}): fees, fill times and PnL from the store miss them`,
    );
    return out;
  }
  if (differs(b.filled, m.filled, tol)) add('filled-amount', `the bot filled ${b.filled}, the backtest ${m.filled}`);
  const bp = b.avgPrice as number;
  const mp = m.avgPrice as number;
  if (differs(bp, mp, tol)) {
    const against = ctx.side === 'buy' ? bp - mp : mp - bp;
    const bps = (against / mp) * 10_000;
    const cost = against * Math.min(b.filled, m.filled);
    add(
      'price',
      `filled at ${bp} against the backtest's ${mp}: slippage ${round(bps, 2)} bps ${bps >= 0 ? 'against' : 'in favour of'} the bot (${round(cost, 6)} ${q})`,
      cost,
    );
  }
  if (b.fillBar !== m.fillBar)
    add(
      'time',
      `filled on the bar opening ${b.fillBar ?? '(outside the bars seen)'}, the backtest on the bar opening ${m.fillBar}`,
    );
  const sameAssets = b.feeAssets.join() === m.feeAssets.join();
  // Binance books each fill's commission to 8 decimals of its asset: within that it is the model's fee.
  const rounding = (FEE_ROUNDING.get(b) ?? 0) + (FEE_ROUNDING.get(m) ?? 0);
  if (!sameAssets || (differs(b.fee, m.fee, tol) && Math.abs(b.fee - m.fee) > rounding)) {
    const cost = b.fee - m.fee;
    add(
      'fee',
      `fee ${round(b.fee, 8)} ${q}${b.feeAssets.length > 0 ? ` (charged in ${b.feeAssets.join(', ')})` : ''} against the model's ${round(m.fee, 8)} ${q}${m.feeAssets.length > 0 ? ` (in ${m.feeAssets.join(', ')})` : ''}`,
      cost,
    );
  }
  return out;
}

function differs(a: number, b: number, tol: number): boolean {
  return Math.abs(a - b) > tol * Math.max(Math.abs(a), Math.abs(b), Number.MIN_VALUE);
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

function iso(t: number): string | null {
  return Number.isFinite(t) ? new Date(t).toISOString() : null;
}
