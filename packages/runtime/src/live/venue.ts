import {
  assertNever,
  type Bar,
  barPath,
  type ClientOrderId,
  type ExpiryCause,
  expiresAt,
  FLAT_TOLERANCE,
  type Instrument,
  isTerminal,
  type MarketOrder,
  type OrderRequest,
  type OrderState,
  type ReportSink,
  remaining,
  type StopMarketOrder,
  ClientOrderId as toClientOrderId,
  tradableAmount,
  trailingLevel,
  trailingStopHit,
  type Venue,
  type VenueReport,
} from '@keel/core';
import { systemTimer, type Timer } from '@keel/exchange';
import { exitOrderId, keptOrderId, parkOrderId } from '../bot-engine.ts';
import { type FeeValue, feeValueField } from './fee-prices.ts';
import { type ExchangeOrder, type ExchangeTrade, type LiveExchange, orderKind, type PlaceOptions } from './port.ts';

/** The reason of an order the exchange cancelled on its own (not asked by this bot). */
export const CANCELLED_ON_EXCHANGE = 'cancelled on the exchange';

export interface LiveVenueOptions {
  /** Resolves once the order's write-ahead record is durable (it must be, before its request leaves). */
  beforeSend: (clientOrderId: string) => Promise<void>;
  log: (level: 'info' | 'warn' | 'error', msg: string, data?: Record<string, unknown>) => void;
  /** Wall time for reports. */
  now: () => number;
  /** Instrumentation hook: called right before an order request leaves (latency benchmark). */
  onSend?: (clientOrderId: string) => void;
  /**
   * Client ids this bot had used before this process started. After a crash the last bar may be
   * handled again and produce the same deterministic id: such an order is looked up, never resent
   * blindly (Binance only refuses duplicate ids among OPEN orders).
   */
  knownBefore?: (clientOrderId: string) => boolean;
  /** Time for GTD expiry (Keel cancels the order at `expireAt`). Default: the wall clock. */
  timer?: Timer;
  /** The position per symbol, in base units: the exit of a reduce-only emulated order is clipped to it. */
  positionOf?: (symbol: string) => number;
  /** Markets: the exit amount of an emulated order is rounded down to the step before it is sent. */
  instruments?: readonly Instrument[];
  /** Saves an order whose emulated state changed without an engine event (a trailing stop's level). */
  persist?: (order: OrderState) => void;
  /**
   * How long an order's signal stays valid: an order that has not left by then is dropped
   * (`cancelled`, with the reason), never sent late. Default one bar: valid until the bar after
   * the one it was decided on closes (see `SignalAge`).
   */
  maxSignalAge?: SignalAge;
  /**
   * The value in the quote of a fee paid outside the fill's market (BNB), at the prices the bot
   * reads (live/fee-prices.ts); NaN when it has none or the fee is the market's own.
   */
  feeValue?: FeeValue;
}

/**
 * How long a signal stays valid, counted from the moment the order was submitted (the close of
 * the bar it was decided on): `bars` bars (by the closed bars the venue sees, whatever the clock),
 * or `ms` milliseconds by the venue's timer.
 */
export type SignalAge = { readonly bars: number } | { readonly ms: number };

/** Why an order's signal went stale (the reason its `cancelled` report carries). */
export function staleReason(age: SignalAge, decidedAt: number): string {
  const limit = 'bars' in age ? `${age.bars} bar${age.bars === 1 ? '' : 's'}` : `${age.ms} ms`;
  return `signal expired: not placed within ${limit} of its decision at ${new Date(decidedAt).toISOString()} (--max-signal-age); dropped, never sent late`;
}

/**
 * Whether a bar's prices reached a resting order's price: a limit buy at or above the low, a
 * limit sell at or below the high, a stop's trigger between them (market orders are in flight,
 * not resting; trailing stops are held by Keel).
 */
function reachedOn(r: OrderRequest, bar: Bar): boolean {
  const buy = r.side === 'buy';
  switch (r.type) {
    case 'limit':
      return buy ? bar.low <= r.price : bar.high >= r.price;
    case 'stop-market':
      return buy ? bar.high >= r.stopPrice : bar.low <= r.stopPrice;
    case 'stop-limit':
      return (
        (buy ? bar.high >= r.stopPrice : bar.low <= r.stopPrice) || (buy ? bar.low <= r.price : bar.high >= r.price)
      );
    case 'market':
    case 'trailing-stop':
      return false;
    default:
      return assertNever(r, 'order type');
  }
}

/**
 * How many orders a bar reached are read from the exchange at once (`LiveVenue.beforeBars`): a
 * grid crossed in one bar waits a few round trips, and the IP's weight sees no burst.
 */
const READS_AT_ONCE = 5;

/** What the read of an order a bar reached gave. */
type ReachedRead =
  | { readonly kind: 'read'; readonly order: ExchangeOrder | null }
  | { readonly kind: 'failed'; readonly error: Error }
  /** Ended before its read was due to start: not read. */
  | { readonly kind: 'skipped' };

/**
 * `fn` of each item, at most `limit` running at once, started in the items' order: one promise
 * per item (settled as its `fn` settles), in the items' order, whatever order they settle in.
 */
function atMostAtOnce<T, R>(limit: number, items: readonly T[], fn: (item: T) => Promise<R>): Promise<R>[] {
  const settle: ((r: Promise<R>) => void)[] = [];
  const out = items.map(() => new Promise<R>((resolve) => settle.push(resolve)));
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      const p = fn(items[i] as T);
      (settle[i] as (r: Promise<R>) => void)(p);
      await p.catch(() => undefined);
    }
  };
  for (let k = 0; k < Math.min(limit, items.length); k++) void run();
  return out;
}

interface Tracked {
  readonly order: OrderState;
  accepted: boolean;
  venueOrderId?: string;
  /** Exchange's cumulative filled amount last seen (of the exit order, for an emulated order). */
  exchangeFilled: number;
  /** A terminal exchange status (and why it expired, if it did) waiting for its trades to arrive. */
  pendingTerminal?: Terminal;
  /**
   * The client id of the exchange order that executes this order: its own id, or for an emulated
   * order the id of its exit (see exitOrderId) once it has triggered.
   */
  exchangeId: string;
  /** Emulated and not triggered: held by Keel, evaluated on closed bars, nothing on the exchange. */
  held: boolean;
  /** Keel is cancelling it at its GTD expiry: the cancellation is reported as `expired`. */
  expiring: boolean;
  /** Aborts the wait for the GTD expiry. */
  expiry?: AbortController;
  /** Why an emulated order's exit was smaller than what was left (reduce-only clipping). */
  exitNote?: string;
  /**
   * While the create is under way: aborted when the order's signal goes stale, so that no
   * request for it leaves any more. `since` is when its signal was given (the venue's submit).
   */
  want?: { readonly ctl: AbortController; readonly since: number; placed: boolean; timer?: AbortController };
  /** Placed as a leg of a native OCO order list (see sendOco): cancelling either leg ends both. */
  listed?: boolean;
  /** A cancel of it was asked for. */
  cancelling?: boolean;
  /** Why it was cancelled, when this bot asked: the reason its CANCELED carries, by whichever path it arrives. */
  cancelReason?: string;
  /**
   * The other leg of its list is being cancelled (a ctx.modify or ctx.cancel of that leg): the
   * exchange cancels this one with it, and the venue places it again (see relist). Holds the
   * changed leg's id; while set, the exchange's CANCELED for this leg is expected, not reported.
   */
  relisting?: string;
  /** Client and venue ids of its earlier exchange orders (a kept leg placed again): only their fills count. */
  previous?: Set<string>;
  /** Ids of the trades applied to it (forgotten with it, see retire). */
  trades?: string[];
}

/**
 * A modification's replacement waiting for the cancel of the order it replaces, and, when that
 * order is a leg of a native OCO list, the list's other leg (`keep`), which the exchange cancels
 * along with it and the venue places again. An entry of a plain `ctx.cancel` of a listed leg has
 * only `keep`.
 */
interface Replacing {
  /** The replacement (absent for a cancel, or once the replacement itself was cancelled). */
  order?: OrderState | undefined;
  readonly now: number;
  /** What the replaced order had filled when it was changed. */
  readonly filled: number;
  keep?: Tracked | undefined;
  /** The replacement's signal went stale while it waited: it is dropped, the kept leg still goes. */
  stale?: string;
}

/** How an order ended on the exchange, as its update said. */
interface Terminal {
  readonly status: ExchangeOrder['status'];
  readonly expiry: ExchangeOrder['expiry'];
}

/**
 * Why the exchange expired an order: what its answer says (the status EXPIRED_IN_MATCH, Binance's
 * expiry reason), else what follows from the order itself: a GTD order's expiry, a reduce-only
 * order's closed position, the rest of an IOC, FOK or market order, a post-only order that would
 * have taken; otherwise the exchange's own, unexplained.
 */
export function exchangeExpiry(
  r: OrderRequest,
  said: ExchangeOrder['expiry'],
): { readonly cause: ExpiryCause; readonly detail?: string } {
  if (said !== undefined) return said;
  if (r.timeInForce === 'GTD') return { cause: 'gtd' };
  if (r.reduceOnly) return { cause: 'reduce-only' };
  if (r.type === 'market') return { cause: 'market' };
  if (r.timeInForce === 'IOC') return { cause: 'ioc' };
  if (r.timeInForce === 'FOK') return { cause: 'fok' };
  if (r.postOnly) return { cause: 'post-only' };
  return { cause: 'exchange', detail: 'the exchange gave no reason' };
}

/**
 * What the orders that execute a held order on the exchange (its market exit when it triggers, its
 * parked stop) keep of its request: reduce-only (on a perpetual the exchange then never lets the
 * exit open the other side, should the position be closed meanwhile), the hedge side, the tag.
 */
function exitFields(r: OrderRequest): Pick<OrderRequest, 'reduceOnly' | 'positionSide' | 'tag'> {
  return {
    ...(r.reduceOnly !== undefined ? { reduceOnly: r.reduceOnly } : {}),
    ...(r.positionSide !== undefined ? { positionSide: r.positionSide } : {}),
    ...(r.tag !== undefined ? { tag: r.tag } : {}),
  };
}

/** True when selling `amount` fits in `free` coins (up to float noise). */
function fitsIn(amount: number, free: number): boolean {
  return amount <= free * (1 + 1e-9) + 1e-12;
}

/** Orders Binance spot does not have, which the live venue holds and executes itself. */
export function isEmulated(r: OrderRequest): boolean {
  return r.type === 'trailing-stop';
}

/**
 * The live execution venue: orders go to the exchange through an idempotent port; the exchange's
 * order updates and executions come back as venue reports. Executions are deduplicated by trade
 * id; a terminal status that arrives before its trades (reordered or dropped stream messages)
 * waits until REST has supplied the missing trades, so no fill is ever lost or counted twice.
 *
 * What the exchange lacks is emulated here, with the simulated venue's semantics (docs/live.md):
 * - trailing stops are held by Keel and moved along each closed bar's price path by the same code
 *   as the simulated venue (`trailingStopHit`); when one triggers, a market order with the id
 *   `exitOrderId(id)` executes it, under the same write-ahead and lookup-before-resend rules as
 *   any order;
 * - GTD orders are sent as GTC and cancelled by Keel at `expireAt` (reported as `expired`).
 */
export class LiveVenue implements Venue {
  private sink: ReportSink = () => {};
  private readonly tracked = new Map<string, Tracked>();
  private readonly byVenueId = new Map<string, string>();
  /** Exchange client id -> our order id, where they differ (an emulated order's exit). */
  private readonly aliases = new Map<string, string>();
  /** Emulated orders held by Keel, in submission order. */
  private readonly held = new Set<Tracked>();
  /** Orders whose create is under way (see Tracked.want). */
  private readonly wanted = new Set<Tracked>();
  private readonly seenTrades = new Set<string>();
  /** Each order's send, so a cancel waits for its own order to be on the exchange. */
  private readonly sending = new Map<string, Promise<void>>();
  private readonly inflight = new Set<Promise<unknown>>();
  /** OCO legs submitted in the current tick, by group, waiting to leave together. */
  private readonly ocoLegs = new Map<string, OrderState[]>();
  /** When each OCO group's legs were submitted (their signal's time). */
  private readonly ocoSince = new Map<string, number>();
  private readonly timer: Timer;
  private readonly instruments = new Map<string, Instrument>();
  private readonly path = new Float64Array(4);
  private closed = false;
  private readonly signalAge: SignalAge;
  /** Changes waiting for the cancel of the order they change, by that order's id (see Replacing). */
  private readonly replacing = new Map<string, Replacing>();
  /** Spot sells waiting for the exchange to confirm the cancels of the bot's sells that lock their coins (see submit). */
  private readonly awaitingCancels: { readonly order: OrderState; readonly now: number }[] = [];
  /** Orders dropped unsent because their signal went stale. */
  staleDropped = 0;
  /** Finished orders let go of (see retire). */
  private retired = 0;
  /** Exchange updates and trades that named no order the venue tracks (late ones of retired orders, others'). */
  private untracked = 0;

  constructor(
    private readonly ex: LiveExchange,
    private readonly opts: LiveVenueOptions,
  ) {
    this.timer = opts.timer ?? systemTimer;
    for (const i of opts.instruments ?? []) this.instruments.set(i.symbol, i);
    this.signalAge = opts.maxSignalAge ?? { bars: 1 };
    const n = 'bars' in this.signalAge ? this.signalAge.bars : this.signalAge.ms;
    if (!(n > 0 && Number.isFinite(n)))
      throw new Error(`maxSignalAge must be > 0, got ${JSON.stringify(this.signalAge)}`);
  }

  connect(sink: ReportSink): void {
    this.sink = sink;
  }

  /**
   * Moves the emulated orders along the bar (the exchange matches everything else). Same order of
   * checks as the simulated venue: GTD expiry, acceptance on the first bar, then the trigger.
   */
  onBar(symbol: string, bar: Bar, now: number): void {
    if (this.wanted.size > 0 && 'bars' in this.signalAge) {
      // A bar closed: orders whose signal's bars are over and that have not left are not sent.
      const tf = now - bar.time;
      for (const t of this.wanted) {
        const w = t.want;
        if (w && !w.placed && t.order.request.symbol === symbol && now >= w.since + this.signalAge.bars * tf)
          w.ctl.abort(new Error(staleReason(this.signalAge, w.since)));
      }
    }
    if (this.replacing.size > 0 && 'bars' in this.signalAge) {
      // A replacement still waiting for its cancel is an order that has not left either.
      const tf = now - bar.time;
      for (const [replacedId, w] of this.replacing) {
        const r = w.order;
        if (r === undefined || w.stale !== undefined) continue;
        if (r.request.symbol !== symbol || now < w.now + this.signalAge.bars * tf) continue;
        const reason = staleReason(this.signalAge, w.now);
        if (w.keep !== undefined) {
          // The kept leg of the list is no signal of this bar: it is placed again all the same.
          w.stale = reason;
          continue;
        }
        this.replacing.delete(replacedId);
        this.dropStale(r, reason);
      }
    }
    if (this.held.size === 0) return;
    const path = barPath(bar, this.path);
    const hits: { t: Tracked; pos: number }[] = [];
    for (const t of [...this.held]) {
      const o = t.order;
      const r = o.request;
      if (r.symbol !== symbol || isTerminal(o.status)) continue;
      if (expiresAt(r, bar.time)) {
        this.report({ type: 'expired', id: r.id, time: now, cause: 'gtd' });
        continue;
      }
      if (!t.accepted) {
        t.accepted = true;
        this.report({ type: 'accepted', id: r.id, time: now });
      }
      const level = o.stopLevel;
      const hit = trailingStopHit(o, path);
      if (hit) hits.push({ t, pos: hit.pos });
      else if (!Object.is(level, o.stopLevel)) this.opts.persist?.(o);
    }
    // Several on one bar: in the order the path reaches them, as in the simulated venue.
    hits.sort((a, b) => a.pos - b.pos);
    for (const h of hits) this.trigger(h.t, now);
  }

  /**
   * Trades already applied to the orders adopted (restored after a restart so nothing is applied
   * twice), by trade id: their order's id. Call it after `adopt`.
   */
  rememberTrades(trades: ReadonlyMap<string, string>): void {
    for (const [tradeId, orderId] of trades) {
      this.seenTrades.add(tradeId);
      const t = this.tracked.get(orderId);
      if (t !== undefined) (t.trades ??= []).push(tradeId);
    }
  }

  /**
   * Tracks an order restored after a restart or adopted from the exchange. `exchangeId` is the
   * client id of the exchange order executing it (an emulated order's exit); an emulated order
   * without one is still held by Keel and resumes from its stored stop level.
   */
  adopt(order: OrderState, exchangeFilled: number, exchangeId: string = order.request.id): void {
    const t = this.add(order, order.status !== 'submitted', exchangeId);
    t.exchangeFilled = exchangeFilled;
    // Its list may be whole on the exchange: a change of its other leg keeps it (keptLeg, relist).
    if (order.request.ocoGroup !== undefined && !isEmulated(order.request) && this.ex.placeOco) t.listed = true;
    if (order.venueOrderId) {
      t.venueOrderId = order.venueOrderId;
      this.byVenueId.set(order.venueOrderId, order.request.id);
    }
    this.scheduleExpiry(t);
  }

  submit(order: OrderState, now: number): void {
    const r = order.request;
    const replaced = r.replaces === undefined ? undefined : this.tracked.get(r.replaces);
    if (replaced !== undefined && !isTerminal(replaced.order.status)) {
      // A modification (ctx.modify) is a cancel and a replacement: the replacement leaves only once
      // the exchange has confirmed the cancel. Sent at once, both could fill (the original while
      // its cancel travels), and a spot sell would count the coins the original still holds.
      // A leg of a native list: its cancel (just asked for) keeps the list's other leg (see cancel).
      const w = this.replacing.get(replaced.order.request.id);
      if (w !== undefined && w.order === undefined) w.order = order;
      else this.replacing.set(replaced.order.request.id, { order, now, filled: replaced.order.filled });
      return;
    }
    const freeing = this.cancelsLocking(order);
    if (freeing.length > 0) {
      // A sell that needs coins the bot's own sells being cancelled still lock (the strategy's
      // close while the run's exits step aside, an exit re-sized after one more fill of its
      // entry): it leaves once the exchange has confirmed those cancels, as the simulated venue's
      // cancel is done before the next order. Sent at once, it would be refused (here, or by the
      // exchange: insufficient balance) for coins about to be free.
      this.awaitingCancels.push({ order, now });
      this.opts.log('info', `order ${r.id} waits for the exchange to confirm the cancel of ${freeing.join(', ')}`, {
        id: r.id,
      });
      return;
    }
    const refusal = this.notOwnCoins(order);
    if (refusal !== null) {
      this.add(order, false, r.id);
      queueMicrotask(() => this.report({ type: 'rejected', id: r.id, time: this.opts.now(), reason: refusal }));
      return;
    }
    if (isEmulated(r)) {
      this.add(order, false, r.id); // held: evaluated on closed bars (onBar)
      return;
    }
    if (r.timeInForce === 'GTD' && r.expireAt !== undefined && r.expireAt <= this.timer.now()) {
      // Expired before it could rest: never sent (the simulated venue would not trade it either).
      this.add(order, false, r.id);
      queueMicrotask(() => this.report({ type: 'expired', id: r.id, time: this.opts.now(), cause: 'gtd' }));
      return;
    }
    const group = r.ocoGroup;
    if (group !== undefined && this.ex.placeOco) {
      // Legs of one OCO group are submitted together (bracket exits when the entry fills, or
      // ctx.oco): collected until the current tick ends, then sent as one native order list.
      const legs = this.ocoLegs.get(group);
      if (legs) legs.push(order);
      else {
        this.ocoLegs.set(group, [order]);
        this.ocoSince.set(group, now);
        queueMicrotask(() => this.flushOco(group));
      }
      return;
    }
    this.sendAlone(this.add(order, false, r.id), now);
  }

  private flushOco(group: string): void {
    const legs = this.ocoLegs.get(group) ?? [];
    const since = this.ocoSince.get(group) ?? Number.NaN;
    this.ocoLegs.delete(group);
    this.ocoSince.delete(group);
    const [a, b] = legs;
    if (legs.length !== 2 || !a || !b) {
      for (const o of legs) this.sendAlone(this.add(o, false, o.request.id), since);
      return;
    }
    const ta = this.add(a, false, a.request.id);
    const tb = this.add(b, false, b.request.id);
    this.want(ta, since);
    tb.want = ta.want; // one list, one create: both legs leave together or not at all
    this.startOco(ta, tb);
  }

  private add(order: OrderState, accepted: boolean, exchangeId: string): Tracked {
    const id = order.request.id;
    const held = isEmulated(order.request) && exchangeId === id;
    const t: Tracked = { order, accepted, exchangeFilled: 0, exchangeId, held, expiring: false };
    this.tracked.set(id, t);
    if (held) this.held.add(t);
    if (exchangeId !== id) this.aliases.set(exchangeId, id);
    return t;
  }

  cancel(id: ClientOrderId, now: number, reason: string): void {
    // A sell still waiting for the cancels that free its coins never leaves.
    const waiting = this.awaitingCancels.findIndex((w) => w.order.request.id === id);
    if (waiting >= 0) {
      this.awaitingCancels.splice(waiting, 1);
      this.report({ type: 'cancelled', id, time: this.opts.now(), reason });
      return;
    }
    // A replacement still waiting for its cancel never leaves.
    for (const [replacedId, w] of this.replacing) {
      if (w.order?.request.id !== id) continue;
      if (w.keep === undefined) this.replacing.delete(replacedId);
      else w.order = undefined; // the kept leg of its list is still placed again
      this.report({ type: 'cancelled', id, time: this.opts.now(), reason });
      return;
    }
    // A leg of an OCO group still waiting for its tick to end never leaves.
    for (const [group, legs] of this.ocoLegs) {
      const i = legs.findIndex((o) => o.request.id === id);
      if (i < 0) continue;
      legs.splice(i, 1);
      if (legs.length === 0) {
        this.ocoLegs.delete(group);
        this.ocoSince.delete(group);
      }
      this.report({ type: 'cancelled', id, time: this.opts.now(), reason });
      return;
    }
    const t = this.tracked.get(id);
    if (!t || isTerminal(t.order.status)) return;
    if (t.held) {
      this.report({ type: 'cancelled', id, time: this.opts.now(), reason });
      return;
    }
    if (t.relisting !== undefined) {
      // The kept leg of a list being changed is cancelled too: it is not placed again.
      for (const [changedId, w] of this.replacing) {
        if (w.keep !== t) continue;
        w.keep = undefined;
        if (w.order === undefined) this.replacing.delete(changedId);
      }
      t.relisting = undefined;
    }
    t.cancelling = true;
    t.cancelReason = reason;
    const keep = this.keptLeg(t);
    if (keep !== undefined && !this.replacing.has(id)) {
      // Binance cancels a whole order list when one of its orders is cancelled; the simulated
      // venue (the backtest) cancels only this one and the other leg goes on working. So the
      // other leg is placed again once the list's end is confirmed (relist), and its exchange
      // CANCELED is not the strategy's.
      keep.relisting = id;
      this.replacing.set(id, { now, filled: t.order.filled, keep });
    }
    this.track(
      this.afterSend(t, async () => {
        try {
          const eo = await this.ex.cancelOrder(t.exchangeId, t.order.request.symbol, orderKind(t.order.request));
          if (eo) await this.onOrder(eo, reason);
        } catch (e) {
          this.opts.log('warn', `cancel of ${id} failed: ${(e as Error).message}`, { id });
          // Still working: a replacement waiting for this cancel is not sent (the original stays).
          if (!isTerminal(t.order.status)) {
            t.cancelling = false;
            t.cancelReason = undefined;
            this.releaseReplacement(id, `the cancel of ${id} failed`);
            this.releaseAwaiting();
          }
        }
      }),
    );
  }

  /** The send `p` of `t` has ended: a finished order can be let go now (see retire). */
  private sent(t: Tracked, p: Promise<void>): void {
    const id = t.order.request.id;
    if (this.sending.get(id) !== p) return;
    this.sending.delete(id);
    if (isTerminal(t.order.status)) this.retire(t);
  }

  /** Runs `fn` once the order's own send has finished (a cancel never overtakes its create). */
  private afterSend(t: Tracked, fn: () => Promise<void>): Promise<void> {
    return (this.sending.get(t.order.request.id) ?? Promise.resolve()).then(fn);
  }

  private track(p: Promise<unknown>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** Waits for every request under way (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /** Stops the GTD expiry timers (shutdown, or an abandoned instance): nothing more is sent. */
  close(): void {
    this.closed = true;
    for (const t of this.tracked.values()) {
      t.expiry?.abort();
      t.want?.timer?.abort();
    }
  }

  // ---- whose coins, and how fresh the signal -----------------------------------------------------

  /**
   * Why a spot sell may not be sent, or null: it would sell more than the bot's own fills hold
   * less what its other sell orders on the exchange already sell (their coins are locked there; an
   * OCO list counts once). The account may hold more (coins the user had before the bot started,
   * another bot's): a bot never sells coins that are not its own. Reduce-only orders are clipped
   * to the position instead (see exitAmount).
   */
  private notOwnCoins(order: OrderState): string | null {
    const r = order.request;
    const inst = this.instruments.get(r.symbol);
    if (r.side !== 'sell' || r.reduceOnly || inst?.kind !== 'spot' || this.opts.positionOf === undefined) return null;
    const held = this.opts.positionOf(r.symbol);
    const selling = this.sellingElsewhere(r.symbol, order);
    if (fitsIn(r.amount, held - selling)) return null;
    return `would sell coins this bot does not own: selling ${r.amount} ${inst.base}, its own fills hold ${held}${selling > 0 ? ` of which ${selling} are in its other sell orders` : ''}; coins already in the account belong to the user and are never sold`;
  }

  /**
   * The bot's spot sells of the order's market whose cancels are under way, when the order (a
   * spot sell) needs the coins they lock: it sells more than the bot's own fills hold less what
   * its other sells sell. Empty when it fits, or when none is being cancelled.
   */
  private cancelsLocking(order: OrderState): string[] {
    const r = order.request;
    if (r.side !== 'sell' || this.instruments.get(r.symbol)?.kind !== 'spot') return [];
    const ids: string[] = [];
    for (const t of this.tracked.values()) {
      const q = t.order.request;
      if (t.cancelling && !t.held && q.side === 'sell' && q.symbol === r.symbol && !isTerminal(t.order.status))
        ids.push(q.id);
    }
    if (ids.length === 0 || this.opts.positionOf === undefined) return ids;
    return fitsIn(r.amount, this.opts.positionOf(r.symbol) - this.sellingElsewhere(r.symbol, order)) ? [] : ids;
  }

  /** Sells waiting for cancels (see cancelsLocking) are submitted again once none they need is under way. */
  private releaseAwaiting(): void {
    if (this.awaitingCancels.length === 0) return;
    queueMicrotask(() => {
      for (const w of this.awaitingCancels.splice(0)) {
        if (isTerminal(w.order.status)) continue;
        if (this.cancelsLocking(w.order).length > 0) this.awaitingCancels.push(w);
        else this.submit(w.order, w.now);
      }
    });
  }

  /** What the bot's working sells of a symbol on the exchange still sell (an OCO list once). */
  private sellingElsewhere(symbol: string, except?: OrderState): number {
    let selling = 0;
    const lists = new Set<string>();
    for (const t of this.tracked.values()) {
      const o = t.order;
      const q = o.request;
      if (o === except || t.held || q.side !== 'sell' || q.symbol !== symbol || isTerminal(o.status)) continue;
      if (q.ocoGroup !== undefined) {
        if (lists.has(q.ocoGroup)) continue;
        lists.add(q.ocoGroup);
      }
      selling += remaining(o);
    }
    return selling;
  }

  /**
   * Gives the order's create a validity: the signal it carries goes stale `maxSignalAge` after
   * the order was submitted (checked on each closed bar, or by the timer for a duration), and from
   * then on no request for it leaves (`Tracked.want`).
   */
  private want(t: Tracked, since: number): void {
    const ctl = new AbortController();
    const w: NonNullable<Tracked['want']> = { ctl, since, placed: false };
    t.want = w;
    this.wanted.add(t);
    const age = this.signalAge;
    if ('ms' in age) {
      const timer = new AbortController();
      w.timer = timer;
      void this.timer.sleep(Math.max(0, since + age.ms - this.timer.now()), timer.signal).then(() => {
        if (!timer.signal.aborted && !w.placed) ctl.abort(new Error(staleReason(age, since)));
      });
    }
  }

  /** The create `w` has ended (placed, refused or dropped): its signal no longer matters. */
  private settle(t: Tracked, w: Tracked['want']): void {
    if (!w) return;
    w.placed = true;
    w.timer?.abort();
    if (t.want === w) this.wanted.delete(t);
  }

  /** True (and the order dropped, `cancelled` with the reason) when its signal has gone stale. */
  private dropIfStale(t: Tracked): boolean {
    const signal = t.want?.ctl.signal;
    if (!signal?.aborted || isTerminal(t.order.status)) return false;
    const reason = signal.reason instanceof Error ? signal.reason.message : String(signal.reason);
    this.staleDropped++;
    this.settle(t, t.want);
    this.opts.log('warn', `order ${t.order.request.id} ${reason}`, { id: t.order.request.id });
    this.report({ type: 'cancelled', id: t.order.request.id, time: this.opts.now(), reason });
    return true;
  }

  // ---- emulation -------------------------------------------------------------------------------

  /**
   * A held trailing stop triggered on the bar just closed: it becomes a market order on the
   * exchange. `triggered` is reported first, so the journal has it (write-ahead) before the exit
   * leaves; the exit's id is derived from the order's, so it is sent once whatever happens.
   */
  private trigger(t: Tracked, now: number): void {
    const r = t.order.request;
    const id = r.id;
    this.report({ type: 'triggered', id, time: now });
    if (isTerminal(t.order.status)) return;
    const { amount, note } = this.exitAmount(t);
    if (!(amount > 0)) {
      this.report({
        type: 'cancelled',
        id,
        time: now,
        reason: r.reduceOnly
          ? 'reduce-only order would open a position: nothing to reduce'
          : `nothing left to execute after rounding to the step (${remaining(t.order)})`,
      });
      return;
    }
    const exitId = exitOrderId(id);
    this.held.delete(t);
    t.held = false;
    t.exchangeId = exitId;
    t.exchangeFilled = 0;
    if (note !== undefined) t.exitNote = note;
    this.aliases.set(exitId, id);
    const exit: MarketOrder = {
      type: 'market',
      id: toClientOrderId(exitId),
      symbol: r.symbol,
      side: r.side,
      amount,
      timeInForce: 'IOC',
      ...exitFields(r),
    };
    this.opts.log(
      'info',
      `trailing stop ${id} triggered at ${t.order.stopLevel}: market ${r.side} ${amount} as ${exitId}`,
      {
        id,
      },
    );
    this.startSend(t, exit);
  }

  /**
   * What the exit of a held order sells: its remaining amount, clipped to the position when it is
   * reduce-only (Binance spot has no reduce-only: clipped here, as the simulated venue clips it)
   * and rounded down to the step; `note` says what was cut and why.
   */
  private exitAmount(t: Tracked): { amount: number; note: string | undefined } {
    const r = t.order.request;
    let amount = remaining(t.order);
    let note: string | undefined;
    const inst = this.instruments.get(r.symbol);
    if (r.reduceOnly) {
      const pos = this.opts.positionOf?.(r.symbol) ?? Number.POSITIVE_INFINITY;
      const closable = r.side === 'sell' ? Math.max(pos, 0) : Math.max(-pos, 0);
      if (closable < amount) {
        amount = closable;
        note = `reduce-only remainder cancelled: the position was ${pos}`;
      }
    } else if (r.side === 'sell' && inst?.kind === 'spot' && this.opts.positionOf) {
      // Never more than the bot's own coins not already on sale elsewhere.
      const own = Math.max(0, this.opts.positionOf(r.symbol) - this.sellingElsewhere(r.symbol, t.order));
      if (own < amount) {
        amount = own;
        note = `remainder cancelled: the bot's own coins not on sale elsewhere were ${own}`;
      }
    }
    if (inst) {
      // What can be traded of it (the step, the minimums): the rest is dust, left in the account.
      const tradable = tradableAmount(inst, amount, t.order.stopLevel);
      if (tradable < amount)
        note ??= `remainder that ${inst.symbol} cannot trade (below its step ${inst.stepSize} or minimums) cancelled`;
      amount = tradable;
    }
    return { amount, note };
  }

  /**
   * Stopping with `--on-shutdown keep`: nothing trails a held trailing stop while the bot is down,
   * so each one is parked on the exchange as a stop-market order at its current stop level, under
   * `parkOrderId(id)` (`<id>-p`), for what its exit would sell (`exitAmount`). Recovery at the next start cancels it and trails again from the stored level, or,
   * if it triggered meanwhile, takes its fills as the trailing stop's. Returns the parked ids; one
   * that cannot be placed is logged (the position is then unprotected until the next start).
   * Nothing is parked in a market `closed` says the exchange no longer trades (it would refuse it).
   */
  async parkHeld(closed: (symbol: string) => boolean = () => false): Promise<string[]> {
    const parked: string[] = [];
    for (const t of [...this.held]) {
      const r = t.order.request;
      if (isTerminal(t.order.status) || closed(r.symbol)) continue;
      let level = t.order.stopLevel;
      // Placed less than a bar ago, not trailed yet: parked where its first bar would anchor it, at
      // its decision price (trailingStopHit), so a stop placed just before the shutdown protects too.
      if (!Number.isFinite(level) && r.type === 'trailing-stop' && Number.isFinite(t.order.decisionPrice))
        level = trailingLevel(r, t.order.decisionPrice);
      if (!Number.isFinite(level)) {
        this.opts.log(
          'warn',
          `trailing stop ${r.id} has no stop level yet (no bar since it was placed, no decision price): not parked; nothing protects the position until the bot runs again`,
          { id: r.id },
        );
        continue;
      }
      const { amount } = this.exitAmount(t);
      if (!(amount > 0)) continue;
      const pid = parkOrderId(r.id);
      const stop: StopMarketOrder = {
        type: 'stop-market',
        id: toClientOrderId(pid),
        symbol: r.symbol,
        side: r.side,
        amount,
        stopPrice: level,
        timeInForce: 'GTC',
        ...exitFields(r),
      };
      const out = await this.ex.placeOrder(stop);
      if (out.kind === 'placed') {
        parked.push(pid);
        this.opts.log(
          'info',
          `trailing stop ${r.id} parked on the exchange while the bot is stopped: stop-market ${r.side} ${amount} at ${level} as ${pid}; the next start cancels it and trails again`,
          { id: r.id },
        );
      } else
        this.opts.log(
          'warn',
          `trailing stop ${r.id} could not be parked on the exchange (${out.kind}: ${out.reason}): nothing protects the position until the bot runs again`,
          { id: r.id },
        );
    }
    return parked;
  }

  /** GTD orders resting on the exchange: Keel cancels them at expireAt (held ones expire on bars). */
  private scheduleExpiry(t: Tracked): void {
    const r = t.order.request;
    if (t.held || r.timeInForce !== 'GTD' || r.expireAt === undefined || isTerminal(t.order.status)) return;
    const at = r.expireAt;
    const ctl = new AbortController();
    t.expiry = ctl;
    void this.timer.sleep(Math.max(0, at - this.timer.now()), ctl.signal).then(() => {
      if (!ctl.signal.aborted && !this.closed) this.expire(t, at);
    });
  }

  private expire(t: Tracked, at: number): void {
    const id = t.order.request.id;
    if (isTerminal(t.order.status)) return;
    t.expiring = true;
    this.opts.log('info', `GTD order ${id} reached its expiry (${new Date(at).toISOString()}): cancelling it`, { id });
    // One cancel: the gateway retries it within its budget (a cancel by client id is idempotent).
    this.track(
      this.afterSend(t, async () => {
        if (isTerminal(t.order.status) || this.closed) return;
        try {
          const eo = await this.ex.cancelOrder(t.exchangeId, t.order.request.symbol, orderKind(t.order.request));
          if (eo) await this.onOrder(eo);
        } catch (e) {
          this.opts.log(
            'error',
            `GTD order ${id} could not be cancelled at its expiry (${(e as Error).message}): it is still working on the exchange; cancel it there, or restart the bot (recovery cancels expired GTD orders)`,
            { id },
          );
        }
      }),
    );
  }

  // ---- sending ---------------------------------------------------------------------------------

  /**
   * Sends an OCO pair as one native order list: the exchange locks the quantity once (two
   * separate spot exits would need it twice) and expires one leg the moment the other triggers or
   * fills. Falls back to two separate orders when the exchange cannot list the pair natively.
   */
  private async sendOco(ta: Tracked, tb: Tracked): Promise<void> {
    const w = ta.want;
    try {
      await this.sendOcoOnce(ta, tb);
    } catch (e) {
      this.unresolved(`${ta.order.request.id} + ${tb.order.request.id}`, ta.order.request.id, (e as Error).message);
    } finally {
      this.settle(ta, w);
      this.settle(tb, w);
    }
  }

  private async sendOcoOnce(ta: Tracked, tb: Tracked): Promise<void> {
    const a = ta.order;
    const b = tb.order;
    const ids = [a.request.id, b.request.id];
    for (const id of ids) await this.opts.beforeSend(id);
    if (isTerminal(a.status) || isTerminal(b.status)) {
      // One leg was cancelled before anything left: the other goes alone (with its own validity).
      for (const t of [ta, tb]) if (!isTerminal(t.order.status)) this.sendOne(t, ta.want?.since ?? Number.NaN);
      return;
    }
    // The legs share one validity (one list, one create): both are dropped, or neither.
    const stale = () => this.dropIfStale(ta) && this.dropIfStale(tb);
    if (stale()) return;
    const mayExist = ids.some((id) => this.opts.knownBefore?.(id) === true);
    const opts: PlaceOptions = {
      ...(ta.want ? { signal: ta.want.ctl.signal } : {}),
      ...(mayExist ? { mayExist } : {}),
    };
    const separately = (why: string) => {
      this.opts.log('warn', `OCO ${ids.join(' + ')} sent as two orders: ${why}`, { ids });
      for (const t of [ta, tb]) this.sendOne(t, ta.want?.since ?? Number.NaN);
    };
    for (const id of ids) this.opts.onSend?.(id);
    // Legs are grouped into one send only for an exchange that has placeOco (see submit).
    const ex = this.ex as LiveExchange & Required<Pick<LiveExchange, 'placeOco'>>;
    const out = await ex.placeOco(this.exchangeRequest(ta), this.exchangeRequest(tb), opts);
    if (out === null) return separately('the exchange has no native order list for this pair');
    switch (out.kind) {
      case 'placed':
        ta.listed = true;
        tb.listed = true;
        for (const x of out.orders) await this.onOrder(x);
        return;
      case 'rejected':
        if (stale()) return;
        return separately(`the exchange refused the list (${out.reason})`);
      case 'unavailable':
        if (stale()) return;
        for (const t of [ta, tb]) this.notSent(t, t.exchangeId, out.reason);
        return;
      case 'in-doubt':
        this.unresolved(ids.join(' + '), a.request.id, out.reason);
        return;
      default:
        return assertNever(out);
    }
  }

  /**
   * Sends one order on its own (GTD as GTC: Binance spot has none; Keel cancels it at expireAt),
   * with the validity of the signal given at `since` (its submission).
   */
  private sendAlone(t: Tracked, since: number): void {
    this.want(t, Number.isFinite(since) ? since : t.order.createdAt);
    this.startSend(t, this.exchangeRequest(t));
    this.scheduleExpiry(t);
  }

  /** Sends one order of a pair alone: a kept leg placed again without a validity (see relist). */
  private sendOne(t: Tracked, since: number): void {
    if (t.exchangeId === t.order.request.id) this.sendAlone(t, since);
    else this.startSend(t, this.exchangeRequest(t));
  }

  /** Starts sending the two legs of an OCO pair as one list (sendOco): each leg's send is that list's. */
  private startOco(ta: Tracked, tb: Tracked): void {
    const p = this.sendOco(ta, tb);
    for (const t of [ta, tb]) {
      this.sending.set(t.order.request.id, p);
      void p.finally(() => this.sent(t, p));
    }
    this.track(p);
  }

  /**
   * Starts sending `req` for `t`: the order itself (with its validity, `want`), or an emulated
   * order's exit (without: it protects a position, and a late exit is better than none).
   */
  private startSend(t: Tracked, req: OrderRequest): void {
    const id = t.order.request.id;
    // Each order leaves as soon as the journal has it; one order whose outcome is being resolved
    // (a timeout, a 5xx) does not hold the others back.
    const p = this.send(t, req);
    this.sending.set(id, p);
    this.track(p);
    void p.finally(() => this.sent(t, p));
  }

  /**
   * Sends `req` (the order itself, or an emulated order's exit) for the tracked order `t`. An
   * exit needs no write-ahead row of its own: its id is derived from the emulated order's, whose
   * row exists since it was submitted, and recovery always looks that id up.
   */
  private async send(t: Tracked, req: OrderRequest): Promise<void> {
    const w = t.want;
    try {
      await this.sendOnce(t, req);
    } catch (e) {
      // Not an outcome of the create (the port returns those): a write-ahead or a bug.
      this.unresolved(req.id, t.order.request.id, (e as Error).message);
    } finally {
      this.settle(t, w);
    }
  }

  /**
   * One create through the port, which owns exactly-once sending and its one retry budget; each
   * of its outcomes is final here. After a restart the id may already be on the exchange
   * (`knownBefore`): the create then looks it up before sending.
   */
  private async sendOnce(t: Tracked, req: OrderRequest): Promise<void> {
    const id = t.order.request.id;
    const xid = req.id;
    await this.opts.beforeSend(id);
    if (isTerminal(t.order.status) || this.dropIfStale(t)) return;
    const mayExist = this.opts.knownBefore?.(id) === true;
    const opts: PlaceOptions = {
      ...(t.want && xid === id ? { signal: t.want.ctl.signal } : {}),
      ...(mayExist ? { mayExist } : {}),
    };
    this.opts.onSend?.(xid);
    const out = await this.ex.placeOrder(req, opts);
    switch (out.kind) {
      case 'placed':
        if (mayExist && out.via !== 'response')
          this.opts.log('warn', `order ${xid} was already placed before the restart: tracking it, not resending`, {
            id,
          });
        for (const x of out.orders) await this.onOrder(x);
        if (mayExist && out.via !== 'response') await this.fetchMissingTrades(t);
        return;
      case 'rejected':
        // Refused before it left because its signal went stale: dropped, not rejected.
        if (!this.dropIfStale(t)) this.refused(t, xid, `exchange rejected the order: ${out.reason}`);
        return;
      case 'unavailable':
        if (!this.dropIfStale(t)) this.notSent(t, xid, out.reason);
        return;
      case 'in-doubt':
        this.unresolved(xid, id, out.reason);
        return;
      default:
        return assertNever(out);
    }
  }

  /** Nothing reached the exchange within the retry budget: the order ends, saying so. */
  private notSent(t: Tracked, xid: string, reason: string): void {
    this.refused(t, xid, `not sent, the exchange was unavailable: ${reason}`);
  }

  /**
   * A create whose outcome no lookup could tell: never resent blindly. The tracker's polling, or
   * reconciliation on the next start, finds the order by its client id.
   */
  private unresolved(what: string, id: string, reason: string): void {
    this.opts.log('error', `order ${what} outcome unknown: ${reason}; left for reconciliation`, { id });
  }

  /** The order (or an emulated order's exit) was refused or could not be sent: `why` says which. */
  private refused(t: Tracked, xid: string, why: string): void {
    const id = t.order.request.id;
    if (xid === id) {
      this.report({ type: 'rejected', id, time: this.opts.now(), reason: why });
      return;
    }
    // The order was accepted long ago (an emulated order, or the kept leg of a changed list); the
    // exchange order that was to execute it failing ends it, loudly.
    const reason = isEmulated(t.order.request)
      ? `triggered, but its exit order ${xid} was not placed: ${why}`
      : `its OCO list was cancelled to change the other leg, and placing it again as ${xid} failed: ${why}`;
    this.opts.log('error', `order ${id} ${reason}; the position it was to close is still open`, { id });
    this.report({ type: 'cancelled', id, time: this.opts.now(), reason });
  }

  // ---- what comes back from the exchange -------------------------------------------------------

  private resolve(clientOrderId: string | undefined, venueOrderId: string): Tracked | undefined {
    const byClient = clientOrderId ? this.tracked.get(this.aliases.get(clientOrderId) ?? clientOrderId) : undefined;
    if (byClient) return byClient;
    const id = this.byVenueId.get(venueOrderId);
    return id === undefined ? undefined : this.tracked.get(id);
  }

  /**
   * Before the strategies see the closed bars of one close time (one per market): an order of this
   * bot's working on the exchange whose price its market's bar reached may have filled with its
   * report still on the way (the user-data stream and the candle stream are two connections; a
   * stalled stream delivers nothing, and the bar's close can arrive first). Each such order is
   * read from the exchange and what it says applied (fills by trade id, once), so no strategy
   * decides on a position that is no longer true: a strategy that sees itself flat would buy again
   * what it already bought. Costs a request only for an order a bar reached; returns how many
   * orders were read.
   *
   * The reads go out together, `READS_AT_ONCE` at a time (through the gateway, whose rate limits
   * pace them as any request), every market's at once: a fast move through a grid waits a few
   * round trips, not one per order. Their answers are applied one after the other in a fixed
   * order (market by market, each in the venue's order), whatever order they come back in, each
   * once: the outcome is that of reading the orders in turn, whatever the network does.
   */
  async beforeBars(closes: readonly { readonly symbol: string; readonly bar: Bar }[]): Promise<number> {
    const due: Tracked[] = [];
    for (const { symbol, bar } of closes)
      for (const t of this.tracked.values()) {
        const o = t.order;
        if (o.request.symbol !== symbol || t.held || !t.accepted || isTerminal(o.status)) continue;
        if (o.filled >= o.request.amount - 1e-12 || t.relisting !== undefined) continue;
        if (reachedOn(o.request, bar)) due.push(t);
      }
    if (due.length === 0) return 0;
    const answers = atMostAtOnce(READS_AT_ONCE, due, (t) => this.readReached(t));
    let read = 0;
    for (let i = 0; i < due.length; i++) {
      const t = due[i] as Tracked;
      const a = await (answers[i] as Promise<ReachedRead>);
      if (a.kind === 'read') read++;
      // An order ended by what was applied before it is left alone, read or not, as reads one
      // after the other left it unread.
      if (a.kind === 'skipped' || isTerminal(t.order.status) || this.closed) continue;
      if (a.kind === 'failed') {
        this.unread(t, a.error);
        continue;
      }
      const eo = a.order;
      if (eo === null) continue;
      try {
        const before = t.order.filled;
        // A partly filled order still open: its trades are fetched here (onOrder does for a terminal one).
        if (eo.status === 'open' && t.order.filled + 1e-12 < eo.filled) {
          t.exchangeFilled = Math.max(t.exchangeFilled, eo.filled);
          await this.fetchMissingTrades(t);
        }
        await this.onOrder(eo);
        if (t.order.filled > before)
          this.opts.log(
            'info',
            `order ${t.order.request.id}: ${t.order.filled - before} filled, read from the exchange as the bar closed (the stream had not reported it yet)`,
            { id: t.order.request.id },
          );
      } catch (e) {
        this.unread(t, e as Error);
      }
    }
    return read;
  }

  /** One order a bar reached, read from the exchange (beforeBars); never throws. */
  private async readReached(t: Tracked): Promise<ReachedRead> {
    // Ended meanwhile by an answer applied before it: no request for it.
    if (isTerminal(t.order.status) || this.closed) return { kind: 'skipped' };
    try {
      return {
        kind: 'read',
        order: await this.ex.fetchOrder(t.exchangeId, t.order.request.symbol, orderKind(t.order.request)),
      };
    } catch (e) {
      return { kind: 'failed', error: e as Error };
    }
  }

  /** A reached order whose state could not be read or applied: the strategy runs on what the stream said. */
  private unread(t: Tracked, e: Error): void {
    this.opts.log(
      'warn',
      `order ${t.order.request.id}: the bar reached its price and its state could not be read (${e.message}); the strategy runs on what the stream last said`,
      { id: t.order.request.id },
    );
  }

  /** An order update from the exchange (stream, REST response or reconciliation). */
  async onOrder(eo: ExchangeOrder, reason?: string): Promise<void> {
    const t = this.resolve(eo.clientOrderId, eo.venueOrderId);
    if (!t) {
      this.untracked++; // not ours (reconciliation flags those), or finished and retired
      return;
    }
    // A cancel this bot asked for says why, whether the stream or the cancel's reply tells it first.
    const cancelReason = reason ?? t.cancelReason ?? CANCELLED_ON_EXCHANGE;
    if (t.previous?.has(eo.clientOrderId) || t.previous?.has(eo.venueOrderId)) return; // replaced on the exchange: its fills still count (onTrade)
    if (t.relisting !== undefined && eo.status === 'canceled') return; // its list's cancel: placed again (relist)
    if (eo.venueOrderId && !t.venueOrderId) {
      t.venueOrderId = eo.venueOrderId;
      this.byVenueId.set(eo.venueOrderId, t.order.request.id);
    }
    t.exchangeFilled = Math.max(t.exchangeFilled, eo.filled);
    if (
      !t.accepted &&
      (eo.status === 'open' || eo.status === 'closed' || eo.status === 'canceled' || eo.status === 'expired')
    ) {
      t.accepted = true;
      this.report({ type: 'accepted', id: t.order.request.id, time: this.opts.now(), venueOrderId: eo.venueOrderId });
    }
    if (eo.status === 'rejected' && !t.accepted) {
      this.report({
        type: 'rejected',
        id: t.order.request.id,
        time: this.opts.now(),
        reason: 'rejected by the exchange',
      });
      return;
    }
    if (eo.status === 'open') return;
    // Terminal on the exchange: make sure every execution is applied first.
    const end: Terminal = { status: eo.status, expiry: eo.expiry };
    if (t.order.filled + 1e-12 < eo.filled) {
      t.pendingTerminal = end;
      await this.fetchMissingTrades(t);
    }
    this.applyTerminal(t, end, cancelReason);
  }

  private applyTerminal(t: Tracked, end: Terminal, reason: string): void {
    if (isTerminal(t.order.status)) return;
    if (t.order.filled + 1e-12 < t.exchangeFilled) {
      t.pendingTerminal = end;
      return; // trades still missing: applied when they arrive
    }
    const status = end.status;
    t.pendingTerminal = undefined;
    const id = t.order.request.id;
    if (t.exchangeId !== id && isEmulated(t.order.request)) {
      // An emulated order's exit has ended; what it did not fill will not be filled.
      const filled = `${t.order.filled} of ${t.order.request.amount} filled`;
      this.report({
        type: 'cancelled',
        id,
        time: this.opts.now(),
        reason: t.exitNote ?? `exit order ${t.exchangeId} ${status} on the exchange with ${filled}`,
      });
    } else if (status === 'canceled' && t.expiring)
      this.report({ type: 'expired', id, time: this.opts.now(), cause: 'gtd' });
    else if (status === 'canceled') this.report({ type: 'cancelled', id, time: this.opts.now(), reason });
    else if (status === 'expired' && t.order.request.ocoGroup !== undefined)
      // The exchange expires the other leg of a native OCO list when one fills: the engine's
      // one-cancels-other, reported as the simulated venue reports it.
      this.report({ type: 'cancelled', id, time: this.opts.now(), reason: `OCO: ${this.ocoSibling(t)} filled` });
    else if (status === 'expired')
      // Expired by the exchange (an IOC or market order's rest, a reduce-only order whose position
      // closed, self-trade prevention, ...): the cause its answer gives, or the order's own.
      this.report({ type: 'expired', id, time: this.opts.now(), ...exchangeExpiry(t.order.request, end.expiry) });
    else if (status === 'rejected' && t.accepted)
      // Accepted, then refused: a stop the exchange refused to place when it triggered (Binance
      // USDⓈ-M's algo status REJECTED, e.g. a reduce-only stop with no position left to reduce).
      this.report({
        type: 'expired',
        id,
        time: this.opts.now(),
        cause: 'exchange',
        detail: 'refused by the exchange when it triggered',
      });
    else if (status === 'rejected')
      this.report({ type: 'rejected', id, time: this.opts.now(), reason: 'rejected by the exchange' });
    else if (t.order.filled < t.order.request.amount * (1 - FLAT_TOLERANCE))
      // Closed with its fills applied and less filled than asked: the exchange is done with it (a
      // market or IOC order closed short); it never fills more, so it does not stay open.
      this.report({
        type: 'expired',
        id,
        time: this.opts.now(),
        cause: 'exchange',
        detail: `closed by the exchange with ${t.order.filled} of ${t.order.request.amount} filled`,
      });
    // Otherwise 'closed' completed through its last fill.
  }

  /** The id of the other order of `t`'s OCO group (the one that filled, when the exchange expired `t`). */
  private ocoSibling(t: Tracked): string {
    const group = t.order.request.ocoGroup;
    let other: string | undefined;
    for (const o of this.tracked.values()) {
      if (o === t || o.order.request.ocoGroup !== group) continue;
      if (o.order.filled > 0) return o.order.request.id;
      other ??= o.order.request.id;
    }
    return other ?? 'the other leg';
  }

  private async fetchMissingTrades(t: Tracked): Promise<void> {
    try {
      const trades = await this.ex.fetchTrades(t.order.request.symbol, t.order.createdAt - 60_000);
      for (const tr of trades) this.onTrade(tr);
    } catch (e) {
      this.opts.log('warn', `could not fetch trades for ${t.order.request.id}: ${(e as Error).message}`);
    }
  }

  /** One execution from the exchange; applied once, whatever path it came by. */
  onTrade(tr: ExchangeTrade): void {
    if (this.seenTrades.has(tr.tradeId)) return;
    const t = this.resolve(tr.clientOrderId, tr.venueOrderId);
    if (!t) {
      this.untracked++;
      return;
    }
    if (isTerminal(t.order.status)) return;
    this.seenTrades.add(tr.tradeId);
    (t.trades ??= []).push(tr.tradeId);
    if (!t.accepted) {
      t.accepted = true;
      this.report({ type: 'accepted', id: t.order.request.id, time: this.opts.now(), venueOrderId: tr.venueOrderId });
    }
    t.exchangeFilled = Math.max(t.exchangeFilled, t.order.filled + tr.amount);
    this.report({
      type: 'fill',
      id: t.order.request.id,
      time: tr.time,
      tradeId: tr.tradeId,
      price: tr.price,
      amount: tr.amount,
      fee: tr.fee,
      feeAsset: tr.feeAsset,
      ...feeValueField(this.opts.feeValue, t.order.request.symbol, tr.fee, tr.feeAsset),
      liquidity: tr.liquidity,
    });
    if (t.pendingTerminal) this.applyTerminal(t, t.pendingTerminal, t.cancelReason ?? CANCELLED_ON_EXCHANGE);
  }

  private report(r: VenueReport): void {
    try {
      this.sink(r);
    } catch (e) {
      // An exchange message that does not fit the order's lifecycle is logged, never fatal.
      this.opts.log('error', `ignored exchange report ${r.type} for ${r.id}: ${(e as Error).message}`);
    }
    const t = this.tracked.get(r.id);
    if (t && isTerminal(t.order.status)) {
      // Finished: no expiry to wait for, nothing held.
      t.expiry?.abort();
      this.held.delete(t);
      if (this.replacing.size > 0) this.releaseReplacement(r.id, undefined);
      this.releaseAwaiting();
      this.retire(t);
    }
  }

  /**
   * Lets a finished order go, once nothing more can change it: its create is no longer under way,
   * no modification waits on it, and, for a leg of an OCO group, every leg has ended (the last
   * one's reason names the leg that filled). Each bar's work and the venue's memory then follow
   * the orders that are working, not every order the bot ever placed. A late exchange message
   * for it (a replayed stream update or trade, a REST answer) finds no order and changes nothing,
   * as it changed nothing for a finished order before: its fills were applied, once, when it
   * ended (a terminal status waits for its missing trades: pendingTerminal), and the store has it.
   */
  private retire(t: Tracked): void {
    const group = t.order.request.ocoGroup;
    const legs =
      group === undefined ? [t] : [...this.tracked.values()].filter((o) => o.order.request.ocoGroup === group);
    for (const o of legs) {
      const id = o.order.request.id;
      if (!isTerminal(o.order.status) || this.sending.has(id) || this.replacing.has(id) || o.relisting !== undefined)
        return;
    }
    for (const o of legs) {
      const id = o.order.request.id;
      if (this.tracked.get(id) !== o) continue;
      this.tracked.delete(id);
      this.held.delete(o);
      this.wanted.delete(o);
      o.want?.timer?.abort();
      for (const x of [o.exchangeId, ...(o.previous ?? [])]) if (this.aliases.get(x) === id) this.aliases.delete(x);
      for (const v of [o.venueOrderId, ...(o.previous ?? [])])
        if (v !== undefined && this.byVenueId.get(v) === id) this.byVenueId.delete(v);
      for (const tr of o.trades ?? []) this.seenTrades.delete(tr);
      this.retired++;
    }
  }

  /** What the venue holds in memory (tests, the soak benchmark): it follows the working orders. */
  stats(): {
    readonly tracked: number;
    readonly venueIds: number;
    readonly aliases: number;
    readonly trades: number;
    readonly retired: number;
    readonly untracked: number;
  } {
    return {
      tracked: this.tracked.size,
      venueIds: this.byVenueId.size,
      aliases: this.aliases.size,
      trades: this.seenTrades.size,
      retired: this.retired,
      untracked: this.untracked,
    };
  }

  /**
   * The order `id` a replacement waits for has ended (or its cancel failed: `refusal`). The
   * replacement is sent when the original ended with nothing more filled than when it was modified;
   * otherwise it is not sent (`cancelled`, saying why): it was sized on what was left then, and the
   * strategy decides again from what the fills left. A leg of a native list: see relist.
   */
  private releaseReplacement(id: string, refusal: string | undefined): void {
    const w = this.replacing.get(id);
    if (w === undefined) return;
    this.replacing.delete(id);
    const more = (this.tracked.get(id)?.order.filled ?? w.filled) - w.filled;
    const reason =
      refusal ??
      (more > 0
        ? `not sent: the order it replaces (${id}) filled ${more} more before its cancel was confirmed`
        : undefined);
    if (w.keep !== undefined) {
      this.relist(id, w, reason);
      return;
    }
    const r = w.order;
    if (r === undefined || isTerminal(r.status)) return;
    queueMicrotask(() => {
      if (isTerminal(r.status)) return;
      if (reason === undefined) this.submit(r, w.now);
      else this.report({ type: 'cancelled', id: r.request.id, time: this.opts.now(), reason });
    });
  }

  /** A replacement dropped unsent: its signal went stale while it waited. */
  private dropStale(r: OrderState, reason: string): void {
    this.staleDropped++;
    this.opts.log('warn', `order ${r.request.id} ${reason}`, { id: r.request.id });
    this.report({ type: 'cancelled', id: r.request.id, time: this.opts.now(), reason });
  }

  /**
   * The other leg of `t`'s native OCO list, which the exchange cancels along with `t`, when it is
   * to go on working: placed, unfilled, not cancelled itself, not already being placed again.
   */
  private keptLeg(t: Tracked): Tracked | undefined {
    const group = t.order.request.ocoGroup;
    if (group === undefined || !t.listed || t.order.filled > 0) return undefined;
    for (const o of this.tracked.values()) {
      if (o === t || o.order.request.ocoGroup !== group || !o.listed) continue;
      if (isTerminal(o.order.status) || o.held || o.cancelling || o.relisting !== undefined || o.order.filled > 0)
        continue;
      return o;
    }
    return undefined;
  }

  /**
   * The changed leg `id` of a native OCO list has ended: the exchange has cancelled the whole list,
   * the kept leg with it. In the backtest the kept leg never stopped working, and the strategy
   * still holds its id: so it keeps its id and state in the engine, and is placed again on the
   * exchange under `keptOrderId(<changed id>)` (its alias), as one new list with the replacement
   * (or alone after a plain cancel). Before that, the kept leg's own end is confirmed by a cancel
   * of it (a no-op on Binance, where the list is gone already; it also covers an exchange that
   * cancels only the one order): if it filled meanwhile, nothing is placed again and the
   * replacement is not sent (the strategy decides again from the fills, as for one order). The
   * kept leg is placed with no signal validity: it restores an exit the strategy believes is
   * working, and a late exit is better than none.
   */
  private relist(id: string, w: Replacing, refusal: string | undefined): void {
    const keep = w.keep as Tracked;
    const r = w.order !== undefined && !isTerminal(w.order.status) ? w.order : undefined;
    const kid = keep.order.request.id;
    const dropReplacement = (reason: string) => {
      if (r !== undefined && !isTerminal(r.status))
        this.report({ type: 'cancelled', id: r.request.id, time: this.opts.now(), reason });
    };
    if (refusal !== undefined && this.tracked.get(id)?.order.status !== 'cancelled') {
      // The changed leg did not end by its cancel (it filled, or the cancel failed): the list's
      // own rules apply to the kept leg (expired by the fill, or still working).
      keep.relisting = undefined;
      dropReplacement(refusal);
      return;
    }
    this.track(
      this.afterSend(keep, async () => {
        let eo: ExchangeOrder | null;
        try {
          eo = await this.ex.cancelOrder(keep.exchangeId, keep.order.request.symbol, orderKind(keep.order.request));
        } catch (e) {
          keep.relisting = undefined;
          const why = `the end of its OCO list could not be confirmed (${(e as Error).message})`;
          this.opts.log(
            'error',
            `order ${kid}: ${why}; not placed again: check the exchange, or restart the bot (recovery looks it up)`,
            { id: kid },
          );
          dropReplacement(`not sent: ${why}`);
          return;
        }
        if (eo !== null && eo.filled > keep.order.filled) await this.fetchMissingTrades(keep);
        keep.relisting = undefined;
        if (isTerminal(keep.order.status)) {
          dropReplacement(`not sent: ${kid}, the other leg of its OCO list, ended first`);
          this.retire(keep); // it ended while it was being placed again (see retire)
          return;
        }
        if (refusal !== undefined || (eo !== null && (eo.filled > 0 || eo.status !== 'canceled'))) {
          // Something filled before the list's cancel was confirmed: as for one order, nothing is
          // sent again; the strategy decides from what the fills left.
          const why =
            refusal ?? `not sent: ${kid}, the other leg of its OCO list, ${eo?.status} with ${eo?.filled} filled`;
          dropReplacement(why);
          if (eo !== null) await this.onOrder(eo, `cancelled with its OCO list: ${why}`);
          return;
        }
        if (keep.cancelling) {
          // The strategy cancelled the kept leg meanwhile (its cancel reports it): only the
          // replacement goes, alone, as after a cancel of both legs in the backtest.
          if (r !== undefined) queueMicrotask(() => !isTerminal(r.status) && this.submit(r, w.now));
          return;
        }
        this.placeAgain(keep, keptOrderId(r === undefined ? id : r.request.id), r, w.stale);
      }),
    );
  }

  /**
   * A kept leg whose list the bot cancelled before a restart, and that it had not placed again
   * (recover.ts, `placeAgain`): placed now, alone, under `xid`; a create that landed before the
   * restart is found by lookup (the id is known from before), never sent twice.
   */
  placeAgainAfterRestart(id: string, xid: string): void {
    const t = this.tracked.get(id);
    if (t === undefined || isTerminal(t.order.status)) return;
    this.placeAgain(t, xid, undefined, undefined);
  }

  /** Places the kept leg again under `xid`, in one list with the replacement `r` if any. */
  private placeAgain(keep: Tracked, xid: string, r: OrderState | undefined, stale: string | undefined): void {
    const previous = (keep.previous ??= new Set());
    previous.add(keep.exchangeId);
    if (keep.venueOrderId !== undefined) previous.add(keep.venueOrderId);
    keep.exchangeId = xid;
    keep.venueOrderId = undefined;
    keep.exchangeFilled = 0;
    keep.listed = false;
    keep.cancelling = false;
    this.aliases.set(xid, keep.order.request.id);
    this.opts.log('info', `OCO: ${keep.order.request.id} placed again as ${xid}${r ? ` with ${r.request.id}` : ''}`, {
      id: keep.order.request.id,
    });
    if (r !== undefined && stale !== undefined) this.dropStale(r, stale);
    if (r === undefined || isTerminal(r.status)) {
      this.startSend(keep, this.exchangeRequest(keep));
      return;
    }
    this.startOco(this.add(r, false, r.request.id), keep);
  }

  /** The request the exchange gets for `t`: its own, under the exchange id (a kept leg placed again). */
  private exchangeRequest(t: Tracked): OrderRequest {
    const r = t.order.request;
    const req = t.exchangeId === r.id ? r : { ...r, id: toClientOrderId(t.exchangeId) };
    return req.timeInForce === 'GTD' ? { ...req, timeInForce: 'GTC' } : req;
  }
}
