import type {
  ExchangeClose,
  ExchangeFunding,
  ExchangeLiquidation,
  FundingRecord,
  FuturesBook,
} from '../futures/book.ts';
import type { Indicator } from '../indicators/base.ts';
import { type Bar, emptyBar, type FeedKey, feedId } from '../model/bar.ts';
import {
  checkFilters,
  FLAT_TOLERANCE,
  hasFilters,
  type Instrument,
  roundAmount,
  roundPrice,
  roundToStep,
  tradableAmount,
  tradableOnStep,
} from '../model/instrument.ts';
import {
  type Fill,
  type FillHook,
  type HedgeSide,
  isInFlight,
  isTerminal,
  newOrderState,
  type OrderEventKind,
  type OrderRequest,
  type OrderState,
  transition,
  validateOrderRequest,
  withoutOptions,
} from '../model/orders.ts';
import { type Timeframe, timeframeEnd, timeframeMs } from '../model/timeframe.ts';
import { type Account, isOutsideFee, type Position } from '../portfolio/account.ts';
import { isEmptyRiskConfig, type RiskConfig } from '../risk/config.ts';
import type { RiskDenial } from '../risk/events.ts';
import { RiskEngine } from '../risk/risk-engine.ts';
import type {
  AnyStrategy,
  FeedRequest,
  OrderInput,
  OrderOptions,
  PositionView,
  StrategyContext,
} from '../strategy/api.ts';
import { makeContext, type OrderLinks, type StrategyHost } from '../strategy/context.ts';
import { objectArray, removeAt } from '../util/arrays.ts';
import { assertNever } from '../util/assert.ts';
import { type ClientOrderId, ClientOrderId as toClientOrderId, VenueOrderId as toVenueOrderId } from '../util/brand.ts';
import { OrderIndex } from '../util/order-index.ts';
import { expiryReason } from '../venue/expiry.ts';
import type { Venue, VenueReport } from '../venue/venue.ts';
import { BarAggregator } from './aggregator.ts';
import type { EngineEvent } from './events.ts';
import { FillLog } from './fill-log.ts';
import { OrderLog } from './order-log.ts';

export interface EngineOptions {
  /** Backtests move a simulated clock from the data; live runs read the wall clock. */
  setTime?: (t: number) => void;
  instruments: readonly Instrument[];
  account: Account;
  venue: Venue;
  strategy: AnyStrategy;
  /** Already-validated parameters. */
  params: unknown;
  /** Data feeds the driver supplies (execution feeds); the first is the primary. */
  feeds: readonly FeedKey[];
  /** Deterministic client order ids: the same signal gets the same id (live idempotency). */
  idFactory?: (seq: number, time: number) => string;
  /** Risk limits, protections, sizing and exits around the strategy (docs/risk.md); none by default. */
  risk?: RiskConfig;
  onEvent?: (e: EngineEvent) => void;
  /** A direct hook for every fill, with no object built (the backtest's trade list uses it). */
  onFill?: FillHook;
  /**
   * Perpetuals simulated here (backtest): margin, funding and liquidation (docs/futures.md). A
   * live or paper venue's exchange does these itself.
   */
  futures?: FuturesBook;
  /**
   * Prices, in the account currency, of assets no feed of the engine prices: what a live bot's
   * exchange charges fees in besides its markets' own assets (Binance's BNB), read from the
   * exchange. NaN when unknown. A feed's last close comes first.
   */
  prices?: (asset: string) => number;
  /**
   * How many finished orders and fills stay in memory. Default: all of them (a backtest's report
   * reads every one). A bot that runs for months keeps the last `keepFinished` finished orders
   * (`order(id)` and `ctx.order(id)` find those, and every open one) and at most that many fills in
   * `fills`; everything older is in the bot's store, so memory does not grow with its orders.
   */
  keepFinished?: number;
}

const NO_LINKS: OrderLinks = Object.freeze({});

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * A symbol's position view (one reused object per symbol) and what it last computed from the held
 * size: rounding to the step builds a string, so it runs only when a fill has changed the size.
 */
interface ViewSlot {
  readonly view: Mutable<PositionView>;
  readonly instrument: Instrument;
  /** The side of a hedge-mode perpetual the view reads (undefined: the market's one position). */
  readonly side: HedgeSide | undefined;
  readonly filters: boolean;
  /** The held size `stepped` was computed for (NaN: never). */
  heldSeen: number;
  /** |held| rounded down to the step. */
  stepped: number;
}

interface FeedSlot {
  readonly key: FeedKey;
  readonly index: number;
  readonly instrument: Instrument;
  /** Supplied by the driver and matched by the venue, or derived by aggregation. */
  readonly execution: boolean;
  /**
   * The first execution feed of its market (the market's feed): its bars are matched in the first
   * phase of their close time (`matchBar`), and the risk engine's ATR and volatility read them.
   */
  readonly marketFeed: boolean;
  readonly indicators: Indicator[];
  readonly derived: { slot: FeedSlot; agg: BarAggregator }[];
  last: Bar;
  hasLast: boolean;
  /**
   * The close of the last bar delivered (NaN before one). Kept as a number because `last` is the
   * driver's object, which a backtest's cursor already moves to the next bar while the venue
   * matches it: orders placed then (exits attached to a fill) must see the close before it, as a
   * bot fed a new object per bar does.
   */
  lastClose: number;
  warm: boolean;
  /** Strategy asked for this feed (onBar is called for it). */
  subscribed: boolean;
  position: Position;
  /** Bar length in ms; 0 for calendar months (see timeframeEnd). */
  readonly ms: number;
}

/**
 * The event-driven kernel. One instance runs one strategy against one account and one venue, in
 * any mode: a backtest driver, the paper runtime and the live runtime all call `onBar` with closed
 * bars and route venue reports to it. Single-threaded and deterministic: the same bars and reports
 * in the same order give the same orders, fills and values.
 */
export class Engine {
  /** Every fill of the run, in columns (see FillLog); `fills` builds objects on demand. */
  readonly fillLog = new FillLog();
  /** Every order in submission order (live ones as objects, finished ones in columns). */
  private readonly orderLog = new OrderLog();
  /** With `keepFinished`: the last finished orders, in place of the order log (which then stays empty). */
  private readonly recent: OrderIndex<OrderState> | undefined;
  private readonly keepFinished: number;
  readonly errors: { time: number; hook: string; message: string }[] = [];
  /** Strategy errors caught so far (with `keepFinished`, `errors` holds only the last ones). */
  errorCount = 0;
  /**
   * Orders not yet in a terminal status, in submission order, and each one's index in the order
   * log. Found by id with a scan: a handful are open at a time, and a Map that grows and shrinks
   * by one entry per order reallocates its table every time.
   */
  private readonly open = objectArray<OrderState>();
  private readonly openIndex: number[] = [];
  private readonly slots: FeedSlot[] = [];
  private readonly slotById = new Map<string, FeedSlot>();
  private readonly instruments = new Map<string, Instrument>();
  private readonly ctx: StrategyContext;
  private state: unknown;
  private seq = 0;
  private started = false;
  private stopped = false;
  private now = 0;
  private readonly strategy: AnyStrategy;
  private readonly emitEvent: (e: EngineEvent) => void;
  private readonly idFactory: (seq: number, time: number) => string;
  /** Absent without a risk configuration: the order path then costs one comparison more. */
  private readonly riskEngine: RiskEngine | undefined;
  /** Set while the risk engine places its own orders (exits, flattens): they skip its check. */
  private riskBypass = false;
  private ocoSeq = 0;
  private readonly venue: Venue;
  private readonly setTime: ((t: number) => void) | undefined;
  private readonly hasChildren = new Set<string>();
  private readonly primarySymbol: string;
  private readonly primaryInstrument: Instrument;
  private primaryView: ViewSlot | undefined;
  private primaryPos: Position | undefined;
  /** While set, every order the strategy submits is denied with this reason (see holdOrders). */
  private orderHold: string | null = null;
  /** Set while a warm-up bar runs the strategy (see warmUp): what it asks for is not sent. */
  private warming = false;
  /** Orders the strategy asked for on warm-up bars, none sent (see warmUp). */
  warmupRequests = 0;
  /** Events are only built when someone listens (the backtest hot path has no listener). */
  private readonly listening: boolean;
  /** All fills as objects (built on demand from the log). */
  get fills(): readonly Fill[] {
    return this.fillLog.toArray();
  }
  /**
   * Every order in submission order, as objects (finished ones are built on demand). With
   * `keepFinished`: the finished orders kept, then the open ones.
   */
  get history(): readonly OrderState[] {
    if (this.recent !== undefined) return [...this.recent.finishedValues(), ...this.open];
    return this.orderLog.toArray();
  }
  private readonly fillHook: EngineOptions['onFill'];
  private readonly views = new Map<string, ViewSlot>();
  /** Views of hedge-mode sides, apart (no key is built per read). */
  private readonly longViews = new Map<string, ViewSlot>();
  private readonly shortViews = new Map<string, ViewSlot>();
  private readonly futures: FuturesBook | undefined;
  /** Some market is a hedge-mode perpetual: orders and position reads name their side there. */
  private readonly hedge: boolean;

  constructor(private readonly opts: EngineOptions) {
    this.venue = opts.venue;
    this.setTime = opts.setTime;
    this.strategy = opts.strategy;
    this.emitEvent = opts.onEvent ?? (() => {});
    this.listening = opts.onEvent !== undefined;
    this.fillHook = opts.onFill;
    this.futures = opts.futures;
    this.hedge = opts.futures?.anyHedge === true;
    this.idFactory = opts.idFactory ?? defaultOrderId;
    if (opts.keepFinished !== undefined) {
      if (!(Number.isInteger(opts.keepFinished) && opts.keepFinished > 0))
        throw new Error(`keepFinished must be a whole number > 0, got ${opts.keepFinished}`);
      this.recent = new OrderIndex(opts.keepFinished);
    }
    this.keepFinished = opts.keepFinished ?? Number.POSITIVE_INFINITY;
    for (const inst of opts.instruments) this.instruments.set(inst.symbol, inst);
    if (opts.feeds.length === 0) throw new Error('Engine needs at least one data feed');
    // Set before anything calls instrumentOf (which reads them).
    this.primarySymbol = (opts.feeds[0] as FeedKey).symbol;
    this.primaryInstrument = this.lookupInstrument(this.primarySymbol);
    for (const f of opts.feeds) this.addSlot(f, true);
    this.riskEngine =
      opts.risk === undefined || isEmptyRiskConfig(opts.risk) ? undefined : this.makeRiskEngine(opts.risk);
    // The risk engine sizes, limits and exits one position per market.
    if (this.riskEngine !== undefined && this.hedge)
      throw new Error('risk settings (limits, sizing, exits) are not supported in hedge position mode yet');
    opts.venue.connect((r) => this.handleReport(r));
    this.ctx = makeContext(this.strategyHost());
  }

  private makeRiskEngine(config: RiskConfig): RiskEngine {
    const engine = this;
    return new RiskEngine(
      config,
      {
        account: this.opts.account,
        now: () => engine.now,
        equity: () => engine.equity(),
        lastPrice: (symbol) => engine.lastClose(symbol),
        instrument: (symbol) => engine.instrumentOf(symbol),
        openOrders: () => engine.open,
        order: (id) => engine.order(id),
        submit(input, ocoGroup, replaces) {
          engine.riskBypass = true;
          try {
            const links =
              ocoGroup === undefined && replaces === undefined
                ? NO_LINKS
                : {
                    ...(ocoGroup !== undefined ? { ocoGroup } : {}),
                    ...(replaces !== undefined ? { replaces: toClientOrderId(replaces) } : {}),
                  };
            return engine.submitInput(input, links);
          } finally {
            engine.riskBypass = false;
          }
        },
        cancel: (id, reason) => engine.cancelWithReason(id, reason),
        emit(e) {
          if (engine.listening) engine.emitEvent(e);
        },
      },
      [...this.instruments.values()],
      this.opts.keepFinished,
    );
  }

  // ---- risk -----------------------------------------------------------------------------------

  /**
   * The risk engine (docs/risk.md), absent without settings: its log (`events`), `halts()`, and
   * its state as plain JSON (`snapshot()`, `restore()`: a halt must survive a restart).
   */
  get risk(): RiskEngine | undefined {
    return this.riskEngine;
  }

  /**
   * Ends every halt and lock: the explicit action a halted bot waits for (`keel bots resume`).
   * Every protection starts afresh from now. Returns the engine's time it took effect at (the
   * close of the last bar it saw), which a bot records so that a replay can resume there too.
   */
  resumeTrading(): number {
    this.riskEngine?.resume();
    return this.now;
  }

  /** What the strategy's onStart returned (undefined when it threw): read by a backtest's plots. */
  get strategyState(): unknown {
    return this.state;
  }

  /**
   * The feeds the strategy subscribed to whose indicators never all became defined, so onBar never
   * ran for them: the warm-up is longer than the bars they had. `needed`: the bars it takes
   * (the longest lookback + 1); the summary tells it, since a run with no onBar has no signal.
   */
  unwarmedFeeds(): { readonly key: FeedKey; readonly needed: number }[] {
    const out: { key: FeedKey; needed: number }[] = [];
    if (this.strategy.warmup === 'none') return out;
    for (const s of this.slots) {
      if (!s.subscribed || s.warm || s.indicators.length === 0) continue;
      let needed = 0;
      for (const i of s.indicators) needed = Math.max(needed, i.lookback + 1);
      out.push({ key: s.key, needed });
    }
    return out;
  }

  get primary(): FeedKey {
    return (this.slots[0] as FeedSlot).key;
  }

  /** Runs the strategy's onStart; subscriptions and indicators are fixed after this. */
  start(): void {
    if (this.started) return;
    this.started = true;
    (this.slots[0] as FeedSlot).subscribed = true;
    this.state = this.guard('onStart', () => this.strategy.onStart(this.ctx));
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    const h = this.strategy.onStop;
    if (h) this.guard('onStop', () => h(this.ctx, this.state));
  }

  /** Index of a supplied feed by its key (drivers address feeds by index). */
  feedIndex(key: FeedKey): number {
    const s = this.slotById.get(feedId(key));
    if (!s?.execution) throw new Error(`No data feed ${feedId(key)}`);
    return s.index;
  }

  /**
   * The venue matches working orders on a bar of a supplied feed that the strategy never sees (no
   * indicators, no onBar, no risk rules, no marking): a paper bot stopping with --flatten settles
   * its closing orders on the bar after its last, where a backtest would fill them.
   */
  settleOn(feedIndex: number, bar: Bar): void {
    const slot = this.slots[feedIndex] as FeedSlot;
    const closeTime = closeOf(slot, bar);
    if (this.setTime !== undefined) this.setTime(closeTime);
    this.now = closeTime;
    this.venue.onBar(slot.key.symbol, bar, closeTime);
  }

  /**
   * Handles one closed bar of a supplied feed: the venue matches working orders on it, positions
   * are marked at its close, then indicators update and the strategy's onBar runs; bars of derived
   * (higher) timeframes that this bar completes follow, in the same way. A run of one feed calls
   * this; with several, the driver hands each close time's bars over in two phases (`matchBar`,
   * then `closeBar`). It is `match` then `close` written out: the single-feed backtest's loop calls
   * it for every bar, and keeps its hot path free of two more call levels.
   */
  onBar(feedIndex: number, bar: Bar): void {
    const slot = this.slots[feedIndex] as FeedSlot;
    const closeTime = closeOf(slot, bar);
    if (this.setTime !== undefined) this.setTime(closeTime);
    this.now = closeTime;
    if (this.futures !== undefined && slot.instrument.kind === 'perpetual') this.futuresOpen(slot, bar, closeTime);
    this.venue.onBar(slot.key.symbol, bar, closeTime);
    // Marked at the close once the venue has matched the bar (see FeedSlot.lastClose).
    slot.position.lastPrice = bar.close;
    slot.lastClose = bar.close;
    if (this.futures !== undefined && slot.instrument.kind === 'perpetual') this.futuresBar(slot, bar, closeTime);
    if (this.riskEngine !== undefined && slot.marketFeed) this.riskEngine.onBar(slot.key.symbol, bar, slot.ms);
    this.deliver(slot, bar);
    const d = slot.derived;
    for (let i = 0; i < d.length; i++) {
      const e = d[i] as { slot: FeedSlot; agg: BarAggregator };
      e.agg.push(bar, (hb) => this.deliver(e.slot, hb));
    }
  }

  /**
   * The first phase of a close time with several feeds: the venue matches a market's working
   * orders on its bar and the market is marked at the close. A driver calls it for every bar of
   * that close time, in feed order, before `closeBar` for any of them, so that every strategy
   * decides on the fills of every market's bar, as on an exchange where by a bar's close every
   * order decided at the previous close has filled (docs/conventions.md). Only a market's own feed
   * (`isMarketFeed`) is matched here; another supplied timeframe of the same market is matched in
   * `closeBar`, right before its own onBar, after the strategy has seen the market's bar.
   */
  matchBar(feedIndex: number, bar: Bar): void {
    const slot = this.slots[feedIndex] as FeedSlot;
    if (slot.marketFeed) this.match(slot, bar);
  }

  /** A supplied feed is its market's own (the first supplied for that market): its orders are matched on its bars. */
  isMarketFeed(feedIndex: number): boolean {
    return (this.slots[feedIndex] as FeedSlot | undefined)?.marketFeed === true;
  }

  /**
   * The second phase (see `matchBar`): the risk engine's rules at the close, indicators and the
   * strategy's onBar, and the derived timeframes the bar completes.
   */
  closeBar(feedIndex: number, bar: Bar): void {
    const slot = this.slots[feedIndex] as FeedSlot;
    if (!slot.marketFeed) this.match(slot, bar);
    this.close(slot, bar);
  }

  private match(slot: FeedSlot, bar: Bar): void {
    const closeTime = closeOf(slot, bar);
    if (this.setTime !== undefined) this.setTime(closeTime);
    this.now = closeTime;
    if (this.futures !== undefined && slot.instrument.kind === 'perpetual') this.futuresOpen(slot, bar, closeTime);
    this.venue.onBar(slot.key.symbol, bar, closeTime);
    // Marked at the close once the venue has matched the bar (see FeedSlot.lastClose).
    slot.position.lastPrice = bar.close;
    slot.lastClose = bar.close;
    if (this.futures !== undefined && slot.instrument.kind === 'perpetual') this.futuresBar(slot, bar, closeTime);
  }

  private close(slot: FeedSlot, bar: Bar): void {
    if (this.riskEngine !== undefined && slot.marketFeed) this.riskEngine.onBar(slot.key.symbol, bar, slot.ms);
    this.deliver(slot, bar);
    const d = slot.derived;
    for (let i = 0; i < d.length; i++) {
      const e = d[i] as { slot: FeedSlot; agg: BarAggregator };
      e.agg.push(bar, (hb) => this.deliver(e.slot, hb));
    }
  }

  /** Funding stamped at a perpetual's bar open, before the venue fills anything on it (FuturesBook.onOpen). */
  private futuresOpen(slot: FeedSlot, bar: Bar, closeTime: number): void {
    const book = this.futures as FuturesBook;
    const nf = book.funding.length;
    book.onOpen(slot.key.symbol, bar, closeTime);
    this.emitFunding(nf, closeTime);
  }

  /** `futures.funding` for each payment the book recorded from index `from` on. */
  private emitFunding(from: number, closeTime: number): void {
    if (!this.listening) return;
    const book = this.futures as FuturesBook;
    for (let k = from; k < book.funding.length; k++)
      this.emitEvent({ type: 'futures.funding', time: closeTime, funding: book.funding[k] as FundingRecord });
  }

  /**
   * Funding and the liquidation test of a perpetual's bar (FuturesBook.onBar). A liquidation
   * cancels the market's open orders (the exchange does), books the forced close as a fill for
   * the trade list and is an event.
   */
  private futuresBar(slot: FeedSlot, bar: Bar, closeTime: number): void {
    const book = this.futures as FuturesBook;
    const n = book.liquidations.length;
    const nf = book.funding.length;
    book.onBar(slot.key.symbol, bar, closeTime);
    this.emitFunding(nf, closeTime);
    if (book.liquidations.length === n) return;
    for (let k = n; k < book.liquidations.length; k++) {
      const l = book.liquidations[k] as FuturesBook['liquidations'][number];
      // The market's open orders (in hedge mode, those of the side liquidated) are cancelled.
      for (const o of this.open.slice())
        if (
          o.request.symbol === l.symbol &&
          (l.positionSide === undefined || o.request.positionSide === l.positionSide)
        )
          this.cancelWithReason(o.request.id, 'liquidation');
      this.forcedCloseFill(
        l.symbol,
        l.size,
        l.price,
        Math.abs(l.size),
        l.clearanceFee,
        closeTime,
        `liquidation-${k + 1}`,
        l.positionSide,
      );
      if (this.listening) this.emitEvent({ type: 'futures.liquidation', time: closeTime, liquidation: l });
    }
  }

  /**
   * Live: a funding payment, a forced close, an ADL close or a settlement close that the exchange
   * reported, applied to the futures book and the account and emitted as the backtest emits its
   * own (`futures.funding`, `futures.liquidation`, `futures.adl`, `futures.settlement`; a close is
   * also booked as a fill for the trade list). The exchange has already cancelled the market's
   * orders; their cancels arrive as venue reports.
   */
  applyExchangeFutures(
    e:
      | { readonly type: 'funding'; readonly symbol: string; readonly funding: ExchangeFunding }
      | { readonly type: 'liquidation'; readonly symbol: string; readonly liquidation: ExchangeLiquidation }
      | { readonly type: 'adl' | 'settlement'; readonly symbol: string; readonly close: ExchangeClose },
  ): void {
    const book = this.futures;
    if (book === undefined || book.venue !== 'exchange')
      throw new Error('Invariant violated: exchange futures events need a futures book of the exchange');
    switch (e.type) {
      case 'funding': {
        const f = book.exchangeFunding(e.symbol, e.funding);
        if (this.listening) this.emitEvent({ type: 'futures.funding', time: f.time, funding: f });
        return;
      }
      case 'liquidation': {
        const l = book.exchangeLiquidation(e.symbol, e.liquidation);
        this.forcedCloseFill(l.symbol, l.size, l.price, Math.abs(l.size), l.clearanceFee, l.time, e.liquidation.id);
        if (this.listening) this.emitEvent({ type: 'futures.liquidation', time: l.time, liquidation: l });
        return;
      }
      case 'adl':
      case 'settlement': {
        const c = book.exchangeClose(e.type, e.symbol, e.close);
        this.forcedCloseFill(c.symbol, c.size, c.price, c.closed, c.fee, c.time, e.close.id);
        if (this.listening)
          this.emitEvent(
            e.type === 'adl'
              ? { type: 'futures.adl', time: c.time, adl: c }
              : { type: 'futures.settlement', time: c.time, settlement: c },
          );
        return;
      }
      default:
        assertNever(e, 'exchange futures event');
    }
  }

  /**
   * A forced close (a liquidation, simulated or the exchange's, an ADL or a settlement) booked as a fill for the
   * trade list: `amount` of a position of signed size `size`, its fee in the settle asset.
   */
  private forcedCloseFill(
    symbol: string,
    size: number,
    price: number,
    amount: number,
    fee: number,
    time: number,
    id: string,
    positionSide?: HedgeSide,
  ): void {
    if (this.fillHook === undefined || amount <= 0) return;
    this.fillHook(
      symbol,
      size > 0 ? 'sell' : 'buy',
      price,
      amount,
      fee,
      this.instrumentOf(symbol).settle,
      time,
      id,
      positionSide,
    );
  }

  private deliver(slot: FeedSlot, bar: Bar): void {
    // No copy: the driver guarantees a bar object stays unchanged until that feed's next bar.
    slot.last = bar;
    slot.hasLast = true;
    slot.lastClose = bar.close;
    const last = bar;
    const inds = slot.indicators;
    for (let i = 0; i < inds.length; i++) (inds[i] as Indicator).update(last);
    if (!slot.subscribed || this.stopped) return;
    if (!slot.warm) {
      if (this.strategy.warmup !== 'none') {
        for (let i = 0; i < inds.length; i++) if (!(inds[i] as Indicator).ready) return;
      }
      slot.warm = true;
    }
    try {
      this.strategy.onBar(this.ctx, this.state, last, slot.key);
    } catch (e) {
      this.recordError('onBar', e);
    }
  }

  // ---- venue reports -------------------------------------------------------------------------

  /** Applies a venue report to the order and the account, then tells the strategy. */
  handleReport(r: VenueReport): void {
    const o = this.liveOrder(r.id);
    if (o === undefined) throw new Error(`Venue reported ${r.type} for unknown or finished order ${r.id}`);
    switch (r.type) {
      case 'accepted':
        this.apply(o, 'accept', r.time);
        if (r.venueOrderId !== undefined) o.venueOrderId = toVenueOrderId(r.venueOrderId);
        if (this.listening) this.emitEvent({ type: 'order.accepted', time: r.time, order: o });
        this.notifyOrder(o);
        return;
      case 'rejected':
        this.apply(o, 'reject', r.time);
        o.reason = r.reason;
        if (this.listening) this.emitEvent({ type: 'order.rejected', time: r.time, order: o, reason: r.reason });
        this.finish(o);
        return;
      case 'triggered':
        o.triggered = true;
        this.apply(o, 'trigger', r.time);
        if (this.listening) this.emitEvent({ type: 'order.triggered', time: r.time, order: o });
        return;
      case 'fill':
        this.applyFill(o, r);
        return;
      case 'cancelled':
        this.apply(o, 'cancel', r.time);
        o.reason = r.reason;
        if (this.listening) this.emitEvent({ type: 'order.cancelled', time: r.time, order: o, reason: r.reason });
        this.finish(o);
        return;
      case 'expired':
        this.apply(o, 'expire', r.time);
        o.reason = expiryReason(r.cause, o, r.detail);
        if (this.listening) this.emitEvent({ type: 'order.expired', time: r.time, order: o, reason: o.reason });
        this.finish(o);
        return;
      default:
        assertNever(r, 'venue report');
    }
  }

  private applyFill(o: OrderState, r: Extract<VenueReport, { type: 'fill' }>): void {
    const req = o.request;
    const inst = this.instrumentOf(req.symbol);
    const prevFilled = o.filled;
    const filled = prevFilled + r.amount;
    // Tolerate binary noise: a fill within 1e-12 relative of the rest completes the order.
    const complete = filled >= req.amount * (1 - FLAT_TOLERANCE);
    this.apply(o, complete ? 'fill' : 'fill-partial', r.time);
    o.avgPrice = prevFilled === 0 ? r.price : (o.avgPrice * prevFilled + r.price * r.amount) / filled;
    o.filled = complete ? req.amount : filled;
    o.fee += r.fee;
    if (this.futures !== undefined)
      this.futures.beforeFill(req.symbol, req.side === 'buy' ? r.amount : -r.amount, r.price, req.positionSide);
    const account = this.opts.account;
    // A fee paid outside the market (BNB): at the venue's value if it gave one; the value it was
    // booked at is kept with the fill (pnl, parity, restarts).
    const given = r.feeValue;
    const rate =
      given === undefined || r.fee === 0 ? this.rate : (a: string) => (a === r.feeAsset ? given / r.fee : this.rate(a));
    account.applyFill(inst, req.side, r.price, r.amount, r.fee, r.feeAsset, rate, req.positionSide);
    const feeValue =
      r.fee !== 0 && isOutsideFee(inst, r.feeAsset)
        ? (given ?? account.feeValue(inst, r.price, r.fee, r.feeAsset, this.rate))
        : Number.NaN;
    this.fillLog.push(
      req.id,
      r.tradeId,
      req.symbol,
      req.side,
      r.price,
      r.amount,
      r.fee,
      r.feeAsset,
      r.liquidity,
      r.time,
      req.tag,
      req.positionSide,
      feeValue,
    );
    if (this.fillHook !== undefined)
      this.fillHook(req.symbol, req.side, r.price, r.amount, r.fee, r.feeAsset, r.time, req.id, req.positionSide);
    const fillHandler = this.strategy.onFill;
    // The Fill object is only built for whoever reads it (events, the strategy's onFill).
    const fill = this.listening || fillHandler !== undefined ? this.fillLog.get(this.fillLog.length - 1) : undefined;
    // Bounded (a bot): the fills are in its store; the log keeps at most `keepFinished` of them.
    if (this.recent !== undefined && this.fillLog.length >= this.keepFinished) this.fillLog.clear();
    if (this.listening) this.emitEvent({ type: 'order.filled', time: r.time, order: o, fill: fill as Fill });
    // One-cancels-other: the first fill of one order cancels its siblings.
    if (req.ocoGroup !== undefined) {
      // (rare path: allocation is fine here)
      for (const other of this.open.slice()) {
        if (other !== o && other.request.ocoGroup === req.ocoGroup && other.active)
          this.opts.venue.cancel(other.request.id, r.time, `OCO: ${req.id} filled`);
      }
    }
    if (complete) {
      this.activateChildren(o, o.filled, r.time);
      this.finish(o);
    } else this.notifyOrder(o);
    if (this.riskEngine !== undefined) this.riskEngine.onFill(o, r.price, r.amount, r.fee, r.feeAsset, r.time);
    if (fillHandler !== undefined) this.guard('onFill', () => fillHandler(this.ctx, this.state, fill as Fill));
  }

  private activateChildren(parent: OrderState, amount: number, time: number): void {
    if (this.hasChildren.size === 0 || !this.hasChildren.delete(parent.request.id)) return;
    for (const c of this.open.slice()) {
      if (c.request.parentId !== parent.request.id || c.active) continue;
      if (amount <= 0) {
        this.cancelLocally(c, time, `parent ${parent.request.id} ended unfilled`);
        continue;
      }
      // A reduce-only exit never exceeds what is held: on spot, a fee taken in the base asset
      // (Binance without BNB) leaves less than was bought, and the exchange would refuse the rest.
      let size = Math.min(amount, c.request.amount);
      if (c.request.reduceOnly) {
        const pos = this.opts.account.find(c.request.symbol, c.request.positionSide);
        const held = pos ? Math.abs(pos.size) : 0;
        if (held < size)
          size = tradableAmount(this.instrumentOf(c.request.symbol), held, this.lastClose(c.request.symbol));
        if (size <= 0) {
          this.cancelLocally(c, time, `nothing held to exit after ${parent.request.id}`);
          continue;
        }
      }
      if (size < c.request.amount) (c as { request: OrderRequest }).request = { ...c.request, amount: size };
      c.active = true;
      // Exits reach the venue only now: a live exchange never holds an exit for an entry that
      // has not filled (client-side bracket emulation, same semantics as the simulated venue).
      this.opts.venue.submit(c, time);
    }
  }

  /** An order the venue never received (an inactive bracket exit) is cancelled here. */
  private cancelLocally(o: OrderState, time: number, reason: string): void {
    this.apply(o, 'cancel', time);
    o.reason = reason;
    if (this.listening) this.emitEvent({ type: 'order.cancelled', time, order: o, reason });
    this.finish(o);
  }

  private apply(o: OrderState, ev: OrderEventKind, time: number): void {
    o.status = transition(o.status, ev, o.filled, o.request.id);
    o.updatedAt = time;
  }

  private finish(o: OrderState): void {
    const i = this.open.indexOf(o);
    const li = i >= 0 ? (this.openIndex[i] as number) : -1;
    if (i >= 0) {
      removeAt(this.open, i);
      removeAt(this.openIndex, i);
    }
    if (o.status !== 'filled' && o.request.parentId === undefined) this.activateChildren(o, o.filled, o.updatedAt);
    if (i >= 0) this.finished(li, o);
    if (this.riskEngine !== undefined) this.riskEngine.onOrderDone(o);
    this.notifyOrder(o);
  }

  /** Order `o` (at `li` in the order log) has ended: into the log's columns, or the recent window. */
  private finished(li: number, o: OrderState): void {
    if (this.recent !== undefined) this.recent.set(o.request.id, o, true);
    else if (li >= 0) this.orderLog.finish(li, o);
  }

  private notifyOrder(o: OrderState): void {
    const h = this.strategy.onOrder;
    if (h) this.guard('onOrder', () => h(this.ctx, this.state, o));
  }

  // ---- orders from the strategy ---------------------------------------------------------------

  private instrumentOf(symbol: string): Instrument {
    return symbol === this.primarySymbol ? this.primaryInstrument : this.lookupInstrument(symbol);
  }

  private lookupInstrument(symbol: string): Instrument {
    const i = this.instruments.get(symbol);
    if (!i) throw new Error(`Unknown market "${symbol}": the strategy has no data feed for it`);
    return i;
  }

  private lastClose(symbol: string): number {
    const p = this.slots[0] as FeedSlot; // the primary (an execution feed): the common case, no loop
    if (p.hasLast && p.key.symbol === symbol) return p.lastClose;
    for (const s of this.slots) if (s.key.symbol === symbol && s.hasLast && s.execution) return s.lastClose;
    return Number.NaN;
  }

  /**
   * A market order with no options on the primary market (what orderTargetPercent, close, buy and
   * sell send most): the request is built directly, with the same fields submitInput gives it.
   */
  private submitMarket(side: 'buy' | 'sell', amount: number, o: OrderOptions | undefined): ClientOrderId {
    if (o !== undefined) return this.submitInput(marketInput(side, amount, o));
    const symbol = this.primarySymbol;
    const inst = this.primaryInstrument;
    const id = toClientOrderId(this.idFactory(++this.seq, this.now));
    const req: OrderRequest = {
      type: 'market',
      id,
      symbol,
      side,
      amount: roundAmount(inst, amount),
      timeInForce: 'IOC',
    };
    return this.place(req, inst, NO_LINKS);
  }

  submitInput(input: OrderInput, extra: OrderLinks = NO_LINKS): ClientOrderId {
    const symbol = input.symbol ?? this.primary.symbol;
    const inst = this.instrumentOf(symbol);
    const id = toClientOrderId(this.idFactory(++this.seq, this.now));
    // Explicit literals with every key present (no object spread: V8's spread of a wide object
    // is a slow runtime call), so all requests of a type share one hidden class.
    const amount = roundAmount(inst, input.amount);
    const tif = input.timeInForce ?? (input.type === 'market' ? 'IOC' : 'GTC');
    const side = input.side;
    // What the order a replacement replaces had filled when it was replaced (see OrderCommon).
    const replacesFilled = extra.replaces === undefined ? undefined : this.order(extra.replaces)?.filled;
    let req: OrderRequest;
    switch (input.type) {
      case 'market':
        // The common case (no options) gets a small object (and the order log keeps it in columns).
        if (withoutOptions(input, extra)) {
          req = { type: 'market', id, symbol, side, amount, timeInForce: tif };
          break;
        }
        req = {
          type: 'market',
          id,
          symbol,
          side,
          amount,
          timeInForce: tif,
          expireAt: input.expireAt,
          postOnly: input.postOnly,
          reduceOnly: input.reduceOnly,
          positionSide: input.positionSide,
          tag: input.tag,
          ocoGroup: extra.ocoGroup,
          parentId: extra.parentId,
          replaces: extra.replaces,
          replacesFilled,
        };
        break;
      case 'limit':
        req = {
          type: 'limit',
          id,
          symbol,
          side,
          amount,
          timeInForce: tif,
          expireAt: input.expireAt,
          postOnly: input.postOnly,
          reduceOnly: input.reduceOnly,
          positionSide: input.positionSide,
          tag: input.tag,
          ocoGroup: extra.ocoGroup,
          parentId: extra.parentId,
          replaces: extra.replaces,
          replacesFilled,
          price: roundPrice(inst, input.price),
        };
        break;
      case 'stop-market':
        req = {
          type: 'stop-market',
          id,
          symbol,
          side,
          amount,
          timeInForce: tif,
          expireAt: input.expireAt,
          postOnly: input.postOnly,
          reduceOnly: input.reduceOnly,
          positionSide: input.positionSide,
          tag: input.tag,
          ocoGroup: extra.ocoGroup,
          parentId: extra.parentId,
          replaces: extra.replaces,
          replacesFilled,
          stopPrice: roundPrice(inst, input.stopPrice),
        };
        break;
      case 'stop-limit':
        req = {
          type: 'stop-limit',
          id,
          symbol,
          side,
          amount,
          timeInForce: tif,
          expireAt: input.expireAt,
          postOnly: input.postOnly,
          reduceOnly: input.reduceOnly,
          positionSide: input.positionSide,
          tag: input.tag,
          ocoGroup: extra.ocoGroup,
          parentId: extra.parentId,
          replaces: extra.replaces,
          replacesFilled,
          stopPrice: roundPrice(inst, input.stopPrice),
          price: roundPrice(inst, input.price),
        };
        break;
      case 'trailing-stop':
        req = {
          type: 'trailing-stop',
          id,
          symbol,
          side,
          amount,
          timeInForce: tif,
          expireAt: input.expireAt,
          postOnly: input.postOnly,
          reduceOnly: input.reduceOnly,
          positionSide: input.positionSide,
          tag: input.tag,
          ocoGroup: extra.ocoGroup,
          parentId: extra.parentId,
          replaces: extra.replaces,
          replacesFilled,
          trail: input.trail,
        };
        break;
      default:
        return assertNever(input, 'order input');
    }
    return this.place(req, inst, extra);
  }

  /**
   * Checks a built request and sends it to the venue (or denies it): its own fields, then the risk
   * engine (which may resize an entry), then the exchange filters on the amount that is sent.
   */
  private place(request: OrderRequest, inst: Instrument, extra: OrderLinks): ClientOrderId {
    let req = request;
    const id = req.id;
    const symbol = req.symbol;
    if (extra.parentId !== undefined) this.hasChildren.add(extra.parentId);
    const decision = this.lastClose(symbol);
    const refPrice =
      req.type === 'limit' || req.type === 'stop-limit'
        ? req.price
        : req.type === 'stop-market'
          ? req.stopPrice
          : decision;
    // A hold (catching up on missed bars) denies a strategy's order before anything else looks
    // at it; never the risk engine's own (an exit protects what is held, it is not a signal).
    let reason = (this.riskBypass ? null : this.orderHold) ?? validateOrderRequest(req);
    if (reason === null && (this.hedge || req.positionSide !== undefined)) reason = this.positionSideError(req);
    let denial: RiskDenial | undefined;
    const risk = this.riskEngine;
    if (risk !== undefined && reason === null && !this.riskBypass) {
      const out = risk.preTrade(req, inst, refPrice);
      if ('rule' in out) {
        denial = out;
        reason = out.message;
      } else req = out;
    }
    const o = newOrderState(req, this.now, decision);
    const li = this.recent === undefined ? this.orderLog.append(o) : -1;
    if (
      reason === null &&
      Number.isFinite(refPrice) &&
      (inst.minAmount > 0 || inst.minNotional > 0 || inst.stepSize > 0)
    )
      reason = checkFilters(inst, req.amount, refPrice)?.message ?? null;
    if (reason !== null) {
      this.apply(o, 'deny', this.now);
      o.reason = reason;
      this.finished(li, o);
      if (denial !== undefined) (risk as RiskEngine).recordDenial(o, denial);
      if (this.listening)
        this.emitEvent(
          denial === undefined
            ? { type: 'order.denied', time: this.now, order: o, reason }
            : { type: 'order.denied', time: this.now, order: o, reason, denial },
        );
      this.notifyOrder(o);
      return id;
    }
    this.apply(o, 'submit', this.now);
    this.open.push(o);
    this.openIndex.push(li);
    if (risk !== undefined) risk.onSubmitted(o);
    if (this.listening) this.emitEvent({ type: 'order.submitted', time: this.now, order: o });
    if (o.active) this.opts.venue.submit(o, this.now);
    return id;
  }

  /**
   * Puts back an order that was working before a restart (loaded from the store, confirmed with
   * the exchange). It is tracked like any open order; nothing is sent.
   */
  restoreOrder(o: OrderState): void {
    if (isTerminal(o.status)) return;
    this.openIndex.push(this.recent === undefined ? this.orderLog.append(o) : -1);
    this.open.push(o);
    // A bracket exit still waiting for its entry: the entry's fill activates it, as before the restart.
    if (!o.active && o.request.parentId !== undefined) this.hasChildren.add(o.request.parentId);
  }

  /**
   * The exits (restored with `restoreOrder`) of an entry that ended while the bot was down: sent now
   * for what it filled, as its fill would have sent them, or cancelled when it filled nothing.
   */
  resumeChildren(entry: OrderState, time: number): void {
    this.activateChildren(entry, entry.filled, time);
  }

  /**
   * Feeds a past bar (a bot's history before its first handled bar, or the bars up to where it
   * stopped): the indicators update and the strategy's onBar runs, as on any bar, so that what it
   * keeps itself (a CrossOver's last side, a previous value, a counter) is what it would be had it
   * run through those bars; but nothing it asks for is sent. An order it submits on a past bar
   * is not placed: it gets an id that names no order (`ctx.order` finds none; `close()` and
   * `orderTargetPercent` return such an id too), cancels and modifications change nothing, and
   * each request is counted (`warmupRequests`). `ctx.warmingUp` tells the strategy (a one-shot
   * entry checks it, as QuantConnect's IsWarmingUp). Not marked, matched or risk-checked: the past
   * is never traded.
   */
  warmUp(feedIndex: number, bar: Bar): void {
    const slot = this.slots[feedIndex] as FeedSlot;
    // The engine's time is the close of the last bar it saw: what a resume before the first
    // traded bar is dated with.
    this.now = closeOf(slot, bar);
    slot.position.lastPrice = bar.close;
    if (this.riskEngine !== undefined && slot.marketFeed) this.riskEngine.warmBar(slot.key.symbol, bar, slot.ms);
    this.warming = true;
    try {
      this.deliver(slot, bar);
      for (const d of slot.derived) d.agg.push(bar, (hb) => this.deliver(d.slot, hb));
    } finally {
      this.warming = false;
    }
  }

  /** What an order asked for on a warm-up bar gets: an id of no order (see warmUp). */
  private warmupOrder(): ClientOrderId {
    return toClientOrderId(`warmup-${++this.warmupRequests}`);
  }

  /** The live order with this client id, if any. */
  private liveOrder(id: string): OrderState | undefined {
    const open = this.open;
    // Newest first: with a (misused) repeated id, the latest order wins.
    for (let i = open.length - 1; i >= 0; i--) {
      const o = open[i] as OrderState;
      if (o.request.id === id) return o;
    }
    return undefined;
  }

  /** An order by client id: open ones by lookup, finished ones from the history. */
  order(id: string): OrderState | undefined {
    const o = this.liveOrder(id);
    if (o !== undefined) return o;
    if (this.recent !== undefined) return this.recent.get(id);
    const i = this.orderLog.lastIndexOf(id);
    return i < 0 ? undefined : this.orderLog.get(i);
  }

  /** What the engine holds in memory: open orders, finished orders kept, fills kept (see keepFinished). */
  retained(): { readonly open: number; readonly finished: number; readonly fills: number } {
    const finished = this.recent?.size ?? this.orderLog.length - this.open.length;
    return { open: this.open.length, finished, fills: this.fillLog.length };
  }

  /** Orders that are not finished (submitted, accepted, partially filled, pending cancel). */
  openOrders(): OrderState[] {
    return this.open.slice();
  }

  /** Cancels an order; `reason` says who and why (the strategy, unless the caller says otherwise). */
  cancel(id: ClientOrderId, reason = 'cancelled by strategy'): void {
    this.cancelWithReason(id, reason);
  }

  private cancelWithReason(id: string, reason: string): void {
    const o = this.liveOrder(id);
    if (!o || isTerminal(o.status)) return;
    if (!o.active) this.cancelLocally(o, this.now, reason);
    else this.opts.venue.cancel(o.request.id, this.now, reason);
  }

  /**
   * What `close()` sends (signed: > 0 sells a long): the held position less what orders in flight
   * are already closing, then rounded down to the step; 0 when that cannot be traded (dust). Never
   * more than the position the bot's own fills hold, whatever else the account has.
   */
  private closable(symbol: string, side: HedgeSide | undefined): number {
    const pos = this.opts.account.find(symbol, side);
    const held = pos === undefined ? 0 : pos.size;
    if (held === 0) return 0;
    const long = held > 0;
    const closing = this.open.length === 0 ? 0 : this.inFlight(symbol, long ? 'sell' : 'buy', side);
    const left = Math.abs(held) - closing;
    const amount = tradableAmount(this.instrumentOf(symbol), left, this.lastClose(symbol));
    return long ? amount : -amount;
  }

  /**
   * A hedge-mode perpetual's orders name the side they trade (`positionSide`); nothing else may:
   * the reason an order is denied, or null.
   */
  private positionSideError(req: Pick<OrderRequest, 'symbol' | 'positionSide'>): string | null {
    if (this.futures !== undefined) return this.futures.positionSideError(req.symbol, req.positionSide);
    return req.positionSide === undefined
      ? null
      : `positionSide '${req.positionSide}' is for a hedge-mode perpetual; ${req.symbol} is not one`;
  }

  /** A position read names a hedge-mode market's side, and only there: else a strategy bug, thrown. */
  private checkViewSide(symbol: string, side: HedgeSide | undefined): void {
    const call = `position(${JSON.stringify(symbol)}${side === undefined ? '' : `, '${side}'`})`;
    if (side === undefined) {
      if (this.futures?.isHedge(symbol) === true)
        throw new Error(`${call}: ${symbol} is in hedge mode: name the side, position(symbol, 'long' | 'short')`);
      return;
    }
    const reason = this.positionSideError({ symbol, positionSide: side });
    if (reason !== null) throw new Error(`${call}: ${reason}`);
  }

  /**
   * While `reason` is set, every order the strategy submits is denied with it (`order.denied`),
   * and nothing it asks for reaches the venue: a bot catching up on bars it missed while it was
   * down runs its strategy on them without trading them. The risk engine's exits and closes are
   * not held (they protect a position; they are not signals). `null` lifts it.
   */
  holdOrders(reason: string | null): void {
    this.orderHold = reason;
  }

  // ---- strategy context -----------------------------------------------------------------------

  private addSlot(key: FeedKey, execution: boolean): FeedSlot {
    const id = feedId(key);
    const existing = this.slotById.get(id);
    if (existing) return existing;
    const instrument = this.instrumentOf(key.symbol);
    const tf: Timeframe = key.timeframe;
    const slot: FeedSlot = {
      key: { symbol: key.symbol, timeframe: key.timeframe },
      index: this.slots.length,
      instrument,
      execution,
      marketFeed: execution && !this.slots.some((s) => s.execution && s.key.symbol === key.symbol),
      indicators: [],
      derived: [],
      last: emptyBar(),
      hasLast: false,
      lastClose: Number.NaN,
      warm: false,
      subscribed: false,
      // A hedge-mode market's long side is marked at the close like a one-way position (the
      // futures book marks both sides at the mark).
      position:
        this.futures?.isHedge(key.symbol) === true
          ? this.opts.account.position(instrument, 'long')
          : this.opts.account.position(instrument),
      ms: tf === '1M' ? 0 : timeframeMs(tf),
    };
    this.slots.push(slot);
    this.slotById.set(id, slot);
    return slot;
  }

  private resolveFeed(req: FeedRequest | undefined): FeedSlot {
    const p = this.primary;
    const key: FeedKey = { symbol: req?.symbol ?? p.symbol, timeframe: req?.timeframe ?? p.timeframe };
    const have = this.slotById.get(feedId(key));
    if (have) return have;
    if (this.started && this.state !== undefined) throw new Error(`Feed ${feedId(key)} must be subscribed in onStart`);
    // Derive from the lowest supplied timeframe of that symbol.
    let base: FeedSlot | undefined;
    for (const s of this.slots) {
      if (
        s.execution &&
        s.key.symbol === key.symbol &&
        (!base || timeframeMs(s.key.timeframe) < timeframeMs(base.key.timeframe))
      )
        base = s;
    }
    if (!base) throw new Error(`No data for ${key.symbol}: supply a ${key.symbol} feed to subscribe to ${feedId(key)}`);
    const baseMs = timeframeMs(base.key.timeframe);
    const ms = timeframeMs(key.timeframe);
    if (key.timeframe !== '1M' && (ms <= baseMs || ms % baseMs !== 0)) {
      throw new Error(
        `Cannot build ${feedId(key)} from ${feedId(base.key)}: the timeframe must be a multiple of ${base.key.timeframe}`,
      );
    }
    const slot = this.addSlot(key, false);
    base.derived.push({ slot, agg: new BarAggregator(key.timeframe, baseMs) });
    return slot;
  }

  /**
   * One reused view object per symbol: reading a position allocates nothing on the hot path. The
   * view counts orders in flight (`isInFlight`) and reports dust (`isDust`) as flat; see
   * PositionView for what each field means.
   */
  private positionView(symbol: string, side: HedgeSide | undefined): PositionView {
    if (this.hedge || side !== undefined) {
      this.checkViewSide(symbol, side);
      if (side !== undefined) return this.sideView(symbol, side);
    }
    // Fast path: the primary market (what onBar asks on every bar) needs no map lookups.
    if (symbol === this.primarySymbol && this.primaryView !== undefined && this.primaryPos !== undefined)
      return this.fillView(this.primaryView, this.primaryPos);
    let slot = this.views.get(symbol);
    if (slot === undefined) {
      slot = this.viewSlot(symbol, undefined);
      this.views.set(symbol, slot);
    }
    const p = this.opts.account.find(symbol);
    if (symbol === this.primarySymbol && p !== undefined) {
      this.primaryView = slot;
      this.primaryPos = p;
    }
    return this.fillView(slot, p);
  }

  /** A hedge-mode side's view (its own reused object). */
  private sideView(symbol: string, side: HedgeSide): PositionView {
    const views = side === 'long' ? this.longViews : this.shortViews;
    let slot = views.get(symbol);
    if (slot === undefined) {
      slot = this.viewSlot(symbol, side);
      views.set(symbol, slot);
    }
    return this.fillView(slot, this.opts.account.find(symbol, side));
  }

  private viewSlot(symbol: string, side: HedgeSide | undefined): ViewSlot {
    const instrument = this.instrumentOf(symbol);
    return {
      view: { symbol, size: 0, avgPrice: Number.NaN, unrealizedPnl: 0, realizedPnl: 0, dust: 0, inFlight: 0 },
      instrument,
      side,
      filters: hasFilters(instrument),
      heldSeen: Number.NaN,
      stepped: 0,
    };
  }

  private fillView(slot: ViewSlot, p: Position | undefined): PositionView {
    const v = slot.view;
    if (p !== undefined && !slot.filters && this.open.length === 0) {
      // A backtest's every bar: no filters (no dust), nothing in flight.
      const size = p.size;
      v.size = size;
      v.dust = 0;
      v.inFlight = 0;
      if (size === 0) {
        v.avgPrice = Number.NaN;
        v.unrealizedPnl = 0;
      } else {
        v.avgPrice = p.avgPrice;
        v.unrealizedPnl = size * (p.lastPrice - p.avgPrice) * p.instrument.contractSize;
      }
      v.realizedPnl = p.realizedPnl;
      return v;
    }
    const held = p === undefined ? 0 : p.size;
    const inFlight =
      this.open.length === 0
        ? 0
        : this.inFlight(v.symbol, 'buy', slot.side) - this.inFlight(v.symbol, 'sell', slot.side);
    // What of the held size can be traded (all of it on a market without filters).
    let tradable = held;
    if (slot.filters && held !== 0) {
      if (held !== slot.heldSeen) {
        slot.heldSeen = held;
        slot.stepped = roundToStep(Math.abs(held), slot.instrument.stepSize, 'down');
      }
      tradable = tradableOnStep(slot.instrument, slot.stepped, p === undefined ? Number.NaN : p.lastPrice);
      if (held < 0) tradable = -tradable;
    }
    v.dust = held - tradable;
    v.inFlight = inFlight;
    if (inFlight === 0) v.size = tradable === 0 ? 0 : held;
    else {
      const expected = held + inFlight;
      const price = p === undefined ? Number.NaN : p.lastPrice;
      v.size = slot.filters && tradableAmount(slot.instrument, Math.abs(expected), price) === 0 ? 0 : expected;
    }
    if (tradable === 0 || p === undefined) {
      v.avgPrice = Number.NaN;
      v.unrealizedPnl = 0;
    } else {
      v.avgPrice = p.avgPrice;
      v.unrealizedPnl = held * (p.lastPrice - p.avgPrice) * p.instrument.contractSize;
    }
    v.realizedPnl = p === undefined ? 0 : p.realizedPnl;
    return v;
  }

  /** The remaining amount of one side of a symbol's orders in flight (see isInFlight). */
  private inFlight(symbol: string, side: 'buy' | 'sell', positionSide: HedgeSide | undefined): number {
    const open = this.open;
    let sum = 0;
    for (let i = 0; i < open.length; i++) {
      const o = open[i] as OrderState;
      const r = o.request;
      if (r.side === side && r.symbol === symbol && r.positionSide === positionSide && isInFlight(o))
        sum += r.amount - o.filled;
    }
    return sum;
  }

  /** One unit of an asset in the account currency, from the last close of its market (NaN without one). */
  readonly rate = (asset: string): number => {
    const close = this.lastClose(`${asset}/${this.opts.account.currency}`);
    return close > 0 || this.opts.prices === undefined ? close : this.opts.prices(asset);
  };

  equity(): number {
    const a = this.opts.account;
    return a.balances.size === 0 && a.positions.length <= 1 ? a.equity() : a.equity(this.rate);
  }

  /** The engine as the strategy context sees it (strategy/context.ts builds the context on it). */
  private strategyHost(): StrategyHost {
    const engine = this;
    return {
      get now() {
        return engine.now;
      },
      params: this.opts.params,
      primarySymbol: this.primarySymbol,
      account: this.opts.account,
      instrument: (symbol) => engine.instrumentOf(symbol),
      equity: () => engine.equity(),
      leverage: (symbol) => (engine.futures === undefined ? 1 : engine.futures.leverage(symbol)),
      lastClose: (symbol) => engine.lastClose(symbol),
      inFlight: (symbol, side, positionSide) => engine.inFlight(symbol, side, positionSide),
      closable: (symbol, side) => engine.closable(symbol, side),
      position: (symbol, side) => engine.positionView(symbol, side),
      openOrders: () => engine.open,
      liveOrder: (id) => engine.liveOrder(id),
      order: (id) => engine.order(id),
      get warmingUp() {
        return engine.warming;
      },
      submit: (input, links) => (engine.warming ? engine.warmupOrder() : engine.submitInput(input, links)),
      submitMarket: (side, amount, o) => (engine.warming ? engine.warmupOrder() : engine.submitMarket(side, amount, o)),
      cancel: (id) => {
        if (!engine.warming) engine.cancel(id);
      },
      nextOcoGroup: () => `oco${++engine.ocoSeq}`,
      addIndicator(ind, feed) {
        engine.resolveFeed(feed).indicators.push(ind);
      },
      subscribe(feed) {
        const s = engine.resolveFeed(feed);
        s.subscribed = true;
        return s.key;
      },
      lastBar(feed) {
        const s = engine.resolveFeed(feed);
        return s.hasLast ? s.last : undefined;
      },
      log(message) {
        engine.emitEvent({ type: 'strategy.log', time: engine.now, message });
      },
    };
  }

  private guard<T>(hook: string, fn: () => T): T | undefined {
    try {
      return fn();
    } catch (e) {
      this.recordError(hook, e);
      return undefined;
    }
  }

  private recordError(hook: string, e: unknown): void {
    const message = e instanceof Error ? e.message : String(e);
    this.errors.push({ time: this.now, hook, message });
    this.errorCount++;
    // Bounded (a bot): the errors are in its event journal; the last `keepFinished` stay here.
    if (this.recent !== undefined && this.errors.length > this.keepFinished) this.errors.shift();
    this.emitEvent({
      type: 'strategy.error',
      time: this.now,
      hook,
      message,
      ...(e instanceof Error && e.stack ? { stack: e.stack } : {}),
    });
    if (hook === 'onStart') throw e;
  }
}

/** Client order ids o1, o2, ... (one function for every engine: its call sites stay monomorphic). */
function defaultOrderId(seq: number): string {
  return `o${seq}`;
}

/** When a bar of a feed closes (its open plus the bar's length; a calendar month's end). */
function closeOf(slot: FeedSlot, bar: Bar): number {
  return slot.ms > 0 ? bar.time + slot.ms : timeframeEnd('1M', bar.time);
}

function marketInput(side: 'buy' | 'sell', amount: number, o: OrderOptions | undefined): OrderInput {
  if (o === undefined) return { type: 'market', side, amount };
  return {
    type: 'market',
    side,
    amount,
    symbol: o.symbol,
    timeInForce: o.timeInForce,
    expireAt: o.expireAt,
    postOnly: o.postOnly,
    reduceOnly: o.reduceOnly,
    positionSide: o.positionSide,
    tag: o.tag,
  } as OrderInput;
}
