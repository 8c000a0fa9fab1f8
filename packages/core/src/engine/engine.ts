import type { Indicator } from '../indicators/base.ts';
import { type Bar, type FeedKey, emptyBar, feedId } from '../model/bar.ts';
import type { Clock } from '../model/clock.ts';
import { type Instrument, checkFilters, roundAmount, roundPrice } from '../model/instrument.ts';
import {
  type Fill,
  type OrderEventKind,
  type OrderRequest,
  type OrderState,
  isTerminal,
  newOrderState,
  transition,
  validateOrderRequest,
} from '../model/orders.ts';
import { type Timeframe, timeframeEnd, timeframeMs } from '../model/timeframe.ts';
import type { Account, Position } from '../portfolio/account.ts';
import type {
  AnyStrategy,
  BracketInput,
  FeedRequest,
  OrderInput,
  OrderOptions,
  PortfolioView,
  PositionView,
  StrategyContext,
} from '../strategy/api.ts';
import { assertNever } from '../util/assert.ts';
import { type ClientOrderId, ClientOrderId as toClientOrderId } from '../util/brand.ts';
import type { VenueReport, Venue } from '../venue/venue.ts';
import { BarAggregator } from './aggregator.ts';
import type { EngineEvent } from './events.ts';

/** A pre-trade risk rule: returns a reason to deny the order, or null. */
export type RiskRule = (order: OrderRequest, view: { account: Account; price: number; instrument: Instrument }) => string | null;

export interface EngineOptions {
  clock: Clock;
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
  risk?: readonly RiskRule[];
  onEvent?: (e: EngineEvent) => void;
}

interface FeedSlot {
  readonly key: FeedKey;
  readonly index: number;
  readonly instrument: Instrument;
  /** Supplied by the driver and matched by the venue, or derived by aggregation. */
  readonly execution: boolean;
  readonly indicators: Indicator[];
  readonly derived: { slot: FeedSlot; agg: BarAggregator }[];
  readonly last: Bar;
  hasLast: boolean;
  warm: boolean;
  /** Strategy asked for this feed (onBar is called for it). */
  subscribed: boolean;
  position: Position;
  endOf: (open: number) => number;
}

/**
 * The event-driven kernel. One instance runs one strategy against one account and one venue, in
 * any mode: a backtest driver, the paper runtime and the live runtime all call `onBar` with closed
 * bars and route venue reports to it. Single-threaded and deterministic: the same bars and reports
 * in the same order give the same orders, fills and values.
 */
export class Engine {
  readonly fills: Fill[] = [];
  readonly orders = new Map<string, OrderState>();
  readonly errors: { time: number; hook: string; message: string }[] = [];
  private readonly open: OrderState[] = [];
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
  private readonly risk: readonly RiskRule[];
  private ocoSeq = 0;

  constructor(private readonly opts: EngineOptions) {
    this.strategy = opts.strategy;
    this.emitEvent = opts.onEvent ?? (() => {});
    this.idFactory = opts.idFactory ?? ((s) => `o${s}`);
    this.risk = opts.risk ?? [];
    for (const inst of opts.instruments) this.instruments.set(inst.symbol, inst);
    if (opts.feeds.length === 0) throw new Error('Engine needs at least one data feed');
    for (const f of opts.feeds) this.addSlot(f, true);
    opts.venue.connect((r) => this.handleReport(r));
    this.ctx = this.makeContext();
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
    if (!s || !s.execution) throw new Error(`No data feed ${feedId(key)}`);
    return s.index;
  }

  /**
   * Handles one closed bar of a supplied feed: the venue matches working orders on it, positions
   * are marked at its close, then indicators update and the strategy's onBar runs; bars of derived
   * (higher) timeframes that this bar completes follow, in the same way.
   */
  onBar(feedIndex: number, bar: Bar): void {
    const slot = this.slots[feedIndex] as FeedSlot;
    const closeTime = slot.endOf(bar.time);
    if (this.opts.setTime) this.opts.setTime(closeTime);
    this.now = closeTime;
    this.opts.venue.onBar(slot.key.symbol, bar, closeTime);
    slot.position.lastPrice = bar.close;
    this.deliver(slot, bar);
    const d = slot.derived;
    for (let i = 0; i < d.length; i++) {
      const e = d[i] as { slot: FeedSlot; agg: BarAggregator };
      e.agg.push(bar, (hb) => this.deliver(e.slot, hb));
    }
  }

  private deliver(slot: FeedSlot, bar: Bar): void {
    const last = slot.last;
    last.time = bar.time;
    last.open = bar.open;
    last.high = bar.high;
    last.low = bar.low;
    last.close = bar.close;
    last.volume = bar.volume;
    last.quoteVolume = bar.quoteVolume;
    last.trades = bar.trades;
    last.takerBuyVolume = bar.takerBuyVolume;
    slot.hasLast = true;
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
    const o = this.orders.get(r.id);
    if (!o) throw new Error(`Venue reported ${r.type} for unknown order ${r.id}`);
    switch (r.type) {
      case 'accepted':
        this.apply(o, 'accept', r.time);
        this.emitEvent({ type: 'order.accepted', time: r.time, order: o });
        this.notifyOrder(o);
        return;
      case 'rejected':
        this.apply(o, 'reject', r.time);
        o.reason = r.reason;
        this.emitEvent({ type: 'order.rejected', time: r.time, order: o, reason: r.reason });
        this.finish(o);
        return;
      case 'triggered':
        o.triggered = true;
        this.apply(o, 'trigger', r.time);
        this.emitEvent({ type: 'order.triggered', time: r.time, order: o });
        return;
      case 'fill':
        this.applyFill(o, r);
        return;
      case 'cancelled':
        this.apply(o, 'cancel', r.time);
        o.reason = r.reason;
        this.emitEvent({ type: 'order.cancelled', time: r.time, order: o, reason: r.reason });
        this.finish(o);
        return;
      case 'expired':
        this.apply(o, 'expire', r.time);
        o.reason = 'expired (GTD)';
        this.emitEvent({ type: 'order.expired', time: r.time, order: o });
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
    const complete = filled >= req.amount * (1 - 1e-12);
    this.apply(o, complete ? 'fill' : 'fill-partial', r.time);
    o.avgPrice = prevFilled === 0 ? r.price : (o.avgPrice * prevFilled + r.price * r.amount) / filled;
    o.filled = complete ? req.amount : filled;
    o.fee += r.fee;
    this.opts.account.applyFill(inst, req.side, r.price, r.amount, r.fee, r.feeAsset);
    const fill: Fill = {
      orderId: req.id,
      tradeId: r.tradeId,
      symbol: req.symbol,
      side: req.side,
      price: r.price,
      amount: r.amount,
      fee: r.fee,
      feeAsset: r.feeAsset,
      liquidity: r.liquidity,
      time: r.time,
      ...(req.tag !== undefined ? { tag: req.tag } : {}),
    };
    this.fills.push(fill);
    this.emitEvent({ type: 'order.filled', time: r.time, order: o, fill });
    // One-cancels-other: the first fill of one order cancels its siblings.
    if (req.ocoGroup !== undefined) {
      for (const other of this.open.slice()) {
        if (other !== o && other.request.ocoGroup === req.ocoGroup && other.active) this.opts.venue.cancel(other.request.id, r.time, `OCO: ${req.id} filled`);
      }
    }
    if (complete) {
      this.activateChildren(o, o.filled, r.time);
      this.finish(o);
    } else this.notifyOrder(o);
    const h = this.strategy.onFill;
    if (h) this.guard('onFill', () => h(this.ctx, this.state, fill));
  }

  private activateChildren(parent: OrderState, amount: number, time: number): void {
    for (const c of this.open.slice()) {
      if (c.request.parentId !== parent.request.id || c.active) continue;
      if (amount <= 0) {
        this.opts.venue.cancel(c.request.id, time, `parent ${parent.request.id} ended unfilled`);
        continue;
      }
      if (amount < c.request.amount) (c as { request: OrderRequest }).request = { ...c.request, amount };
      c.active = true;
    }
  }

  private apply(o: OrderState, ev: OrderEventKind, time: number): void {
    o.status = transition(o.status, ev, o.filled, o.request.id);
    o.updatedAt = time;
  }

  private finish(o: OrderState): void {
    const i = this.open.indexOf(o);
    if (i >= 0) this.open.splice(i, 1);
    if (o.status !== 'filled' && o.request.parentId === undefined) this.activateChildren(o, o.filled, o.updatedAt);
    this.notifyOrder(o);
  }

  private notifyOrder(o: OrderState): void {
    const h = this.strategy.onOrder;
    if (h) this.guard('onOrder', () => h(this.ctx, this.state, o));
  }

  // ---- orders from the strategy ---------------------------------------------------------------

  private instrumentOf(symbol: string): Instrument {
    const i = this.instruments.get(symbol);
    if (!i) throw new Error(`Unknown market "${symbol}": the strategy has no data feed for it`);
    return i;
  }

  private lastClose(symbol: string): number {
    for (const s of this.slots) if (s.key.symbol === symbol && s.hasLast && s.execution) return s.last.close;
    return Number.NaN;
  }

  submitInput(input: OrderInput, extra: { ocoGroup?: string; parentId?: ClientOrderId } = {}): ClientOrderId {
    const symbol = input.symbol ?? this.primary.symbol;
    const inst = this.instrumentOf(symbol);
    const id = toClientOrderId(this.idFactory(++this.seq, this.now));
    const common = {
      id,
      symbol,
      side: input.side,
      amount: roundAmount(inst, input.amount),
      timeInForce: input.timeInForce ?? (input.type === 'market' ? 'IOC' : 'GTC'),
      ...(input.expireAt !== undefined ? { expireAt: input.expireAt } : {}),
      ...(input.postOnly !== undefined ? { postOnly: input.postOnly } : {}),
      ...(input.reduceOnly !== undefined ? { reduceOnly: input.reduceOnly } : {}),
      ...(input.tag !== undefined ? { tag: input.tag } : {}),
      ...(extra.ocoGroup !== undefined ? { ocoGroup: extra.ocoGroup } : {}),
      ...(extra.parentId !== undefined ? { parentId: extra.parentId } : {}),
    };
    let req: OrderRequest;
    switch (input.type) {
      case 'market':
        req = { ...common, type: 'market' };
        break;
      case 'limit':
        req = { ...common, type: 'limit', price: roundPrice(inst, input.price) };
        break;
      case 'stop-market':
        req = { ...common, type: 'stop-market', stopPrice: roundPrice(inst, input.stopPrice) };
        break;
      case 'stop-limit':
        req = { ...common, type: 'stop-limit', stopPrice: roundPrice(inst, input.stopPrice), price: roundPrice(inst, input.price) };
        break;
      case 'trailing-stop':
        req = { ...common, type: 'trailing-stop', trail: input.trail };
        break;
      default:
        return assertNever(input, 'order input');
    }
    const decision = this.lastClose(symbol);
    const o = newOrderState(req, this.now, decision);
    this.orders.set(id, o);
    const refPrice = req.type === 'limit' || req.type === 'stop-limit' ? req.price : req.type === 'stop-market' ? req.stopPrice : decision;
    const reason =
      validateOrderRequest(req) ??
      (Number.isFinite(refPrice) && (inst.minAmount > 0 || inst.minNotional > 0 || inst.stepSize > 0) ? checkFilters(inst, req.amount, refPrice)?.message ?? null : null) ??
      this.checkRisk(req, inst, refPrice);
    if (reason !== null) {
      this.apply(o, 'deny', this.now);
      o.reason = reason;
      this.emitEvent({ type: 'order.denied', time: this.now, order: o, reason });
      this.notifyOrder(o);
      return id;
    }
    this.apply(o, 'submit', this.now);
    this.open.push(o);
    this.emitEvent({ type: 'order.submitted', time: this.now, order: o });
    this.opts.venue.submit(o, this.now);
    return id;
  }

  private checkRisk(req: OrderRequest, inst: Instrument, price: number): string | null {
    for (const rule of this.risk) {
      const r = rule(req, { account: this.opts.account, price, instrument: inst });
      if (r !== null) return r;
    }
    return null;
  }

  cancel(id: ClientOrderId): void {
    const o = this.orders.get(id);
    if (!o || isTerminal(o.status)) return;
    this.opts.venue.cancel(id, this.now, 'cancelled by strategy');
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
      indicators: [],
      derived: [],
      last: emptyBar(),
      hasLast: false,
      warm: false,
      subscribed: false,
      position: this.opts.account.position(instrument),
      endOf: tf === '1M' ? (t) => timeframeEnd('1M', t) : ((ms) => (t: number) => t + ms)(timeframeMs(tf)),
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
      if (s.execution && s.key.symbol === key.symbol && (!base || timeframeMs(s.key.timeframe) < timeframeMs(base.key.timeframe))) base = s;
    }
    if (!base) throw new Error(`No data for ${key.symbol}: supply a ${key.symbol} feed to subscribe to ${feedId(key)}`);
    const baseMs = timeframeMs(base.key.timeframe);
    const ms = timeframeMs(key.timeframe);
    if (key.timeframe !== '1M' && (ms <= baseMs || ms % baseMs !== 0)) {
      throw new Error(`Cannot build ${feedId(key)} from ${feedId(base.key)}: the timeframe must be a multiple of ${base.key.timeframe}`);
    }
    const slot = this.addSlot(key, false);
    base.derived.push({ slot, agg: new BarAggregator(key.timeframe, baseMs) });
    return slot;
  }

  private positionView(symbol: string): PositionView {
    const p = this.opts.account.find(symbol);
    if (!p || p.size === 0) return { symbol, size: 0, avgPrice: Number.NaN, unrealizedPnl: 0, realizedPnl: p?.realizedPnl ?? 0 };
    return { symbol, size: p.size, avgPrice: p.avgPrice, unrealizedPnl: p.size * (p.lastPrice - p.avgPrice) * p.instrument.contractSize, realizedPnl: p.realizedPnl };
  }

  private rate = (asset: string): number => this.lastClose(`${asset}/${this.opts.account.currency}`);

  equity(): number {
    const a = this.opts.account;
    return a.balances.size === 0 && a.positions.length <= 1 ? a.equity() : a.equity(this.rate);
  }

  private makeContext(): StrategyContext {
    const engine = this;
    const account = this.opts.account;
    const portfolio: PortfolioView = {
      get currency() {
        return account.currency;
      },
      get cash() {
        return account.cash;
      },
      get equity() {
        return engine.equity();
      },
      balance: (asset) => account.balance(asset),
    };
    const side = (s: OrderOptions | undefined) => s?.symbol ?? engine.primary.symbol;
    return {
      get time() {
        return engine.now;
      },
      get params() {
        return engine.opts.params;
      },
      get symbol() {
        return engine.primary.symbol;
      },
      get instrument() {
        return engine.instrumentOf(engine.primary.symbol);
      },
      portfolio,
      indicator(ind, feed) {
        engine.resolveFeed(feed).indicators.push(ind);
        return ind;
      },
      subscribe(feed) {
        const s = engine.resolveFeed(feed);
        s.subscribed = true;
        return s.key;
      },
      position: (symbol) => engine.positionView(symbol ?? engine.primary.symbol),
      openOrders: (symbol) => engine.open.filter((o) => symbol === undefined || o.request.symbol === symbol),
      order: (id) => engine.orders.get(id),
      submit: (input) => engine.submitInput(input),
      buy: (amount, o) => engine.submitInput({ ...o, type: 'market', side: 'buy', amount }),
      sell: (amount, o) => engine.submitInput({ ...o, type: 'market', side: 'sell', amount }),
      orderTargetPercent(fraction, o) {
        const symbol = side(o);
        const price = engine.lastClose(symbol);
        if (!(price > 0)) throw new Error(`orderTargetPercent: no price yet for ${symbol}`);
        const inst = engine.instrumentOf(symbol);
        const pos = account.find(symbol);
        // backtrader: target = V * fraction; size = (target - position value) / close
        const target = engine.equity() * fraction;
        const posValue = pos && pos.size !== 0 ? account.positionValue(pos) : 0.0;
        if (target === posValue) return null;
        const size = 1.0 * (Math.abs(target - posValue) / (price * inst.contractSize));
        return engine.submitInput({ ...o, type: 'market', side: target > posValue ? 'buy' : 'sell', amount: size });
      },
      close(o) {
        const symbol = side(o);
        const pos = account.find(symbol);
        if (!pos || pos.size === 0) return null;
        return engine.submitInput({ ...o, type: 'market', side: pos.size > 0 ? 'sell' : 'buy', amount: Math.abs(pos.size) });
      },
      cancel: (id) => engine.cancel(id),
      cancelAll(symbol) {
        for (const o of engine.open.slice()) if (symbol === undefined || o.request.symbol === symbol) engine.cancel(o.request.id);
      },
      modify(id, changes) {
        const o = engine.orders.get(id);
        if (!o || isTerminal(o.status)) return null;
        engine.cancel(id);
        const r = o.request;
        const amount = changes.amount ?? r.amount - o.filled;
        const base = { symbol: r.symbol, side: r.side, amount, timeInForce: r.timeInForce, ...(r.tag !== undefined ? { tag: r.tag } : {}) };
        switch (r.type) {
          case 'market':
            return engine.submitInput({ ...base, type: 'market' });
          case 'limit':
            return engine.submitInput({ ...base, type: 'limit', price: changes.price ?? r.price });
          case 'stop-market':
            return engine.submitInput({ ...base, type: 'stop-market', stopPrice: changes.stopPrice ?? r.stopPrice });
          case 'stop-limit':
            return engine.submitInput({ ...base, type: 'stop-limit', stopPrice: changes.stopPrice ?? r.stopPrice, price: changes.price ?? r.price });
          case 'trailing-stop':
            return engine.submitInput({ ...base, type: 'trailing-stop', trail: r.trail });
          default:
            return assertNever(r, 'order');
        }
      },
      bracket(b: BracketInput) {
        const group = `oco${++engine.ocoSeq}`;
        const symbol = b.symbol ?? engine.primary.symbol;
        const entry =
          b.entryPrice === undefined
            ? engine.submitInput({ type: 'market', side: b.side, amount: b.amount, symbol, tag: b.tag ?? 'entry' })
            : engine.submitInput({ type: 'limit', side: b.side, amount: b.amount, price: b.entryPrice, symbol, tag: b.tag ?? 'entry' });
        const exit = b.side === 'buy' ? 'sell' : 'buy';
        const takeProfit = engine.submitInput(
          { type: 'limit', side: exit, amount: b.amount, price: b.takeProfit, symbol, reduceOnly: true, tag: 'take-profit' },
          { ocoGroup: group, parentId: entry },
        );
        const stopLoss = engine.submitInput(
          { type: 'stop-market', side: exit, amount: b.amount, stopPrice: b.stopLoss, symbol, reduceOnly: true, tag: 'stop-loss' },
          { ocoGroup: group, parentId: entry },
        );
        return { entry, takeProfit, stopLoss };
      },
      oco(a, b) {
        const group = `oco${++engine.ocoSeq}`;
        return [engine.submitInput(a, { ocoGroup: group }), engine.submitInput(b, { ocoGroup: group })];
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
    this.emitEvent({ type: 'strategy.error', time: this.now, hook, message, ...(e instanceof Error && e.stack ? { stack: e.stack } : {}) });
    if (hook === 'onStart') throw e;
  }
}
