import type { Bar } from '../model/bar.ts';
import { type Instrument, roundAmount, tradableAmount } from '../model/instrument.ts';
import {
  AT_FILL,
  type HedgeSide,
  isTerminal,
  type LimitOrder,
  type MarketOrder,
  type OrderRequest,
  type OrderState,
  remaining,
} from '../model/orders.ts';
import type { Account } from '../portfolio/account.ts';
import { objectArray, removeAt } from '../util/arrays.ts';
import { assertNever } from '../util/assert.ts';
import type { ClientOrderId } from '../util/brand.ts';
import { barPath, type FeeModel, feeInBase, noSlippage, percentFee, type SlippageModel } from './models.ts';
import { expiresAt, trailingStopHit } from './triggers.ts';
import type { ReportSink, Venue, VenueReport } from './venue.ts';

type AcceptedReport = Extract<VenueReport, { type: 'accepted' }>;
type FillReport = Extract<VenueReport, { type: 'fill' }>;
type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface SimulatedVenueOptions {
  fees?: FeeModel;
  slippage?: SlippageModel;
  /** Bars between decision and first possible fill. 1 = next bar's open (backtrader's default). */
  latencyBars?: number;
  /** Extra latency in ms: an order only reaches the book at decision time + latencyMs. */
  latencyMs?: number;
  /** backtrader's submission check: a buy must be affordable at the decision price. Default on. */
  submissionCheck?: boolean;
  /** Allow selling spot you do not hold (a margin account). Default off: such sells are rejected. */
  allowShortSpot?: boolean;
  /**
   * A perpetual order's margin check on arrival (FuturesBook.marginCheck: initial margin and fee
   * against the available balance, the leverage's notional cap); a reason rejects it.
   */
  marginCheck?: (
    symbol: string,
    side: 'buy' | 'sell',
    amount: number,
    price: number,
    fee: number,
    positionSide: HedgeSide | undefined,
  ) => string | null;
}

interface Working {
  readonly order: OrderState;
  readonly book: SymbolBook;
  /** Index of the first bar (per symbol) on which the order can execute. */
  readonly fromBar: number;
  /** Earliest bar open time (ms) the order can execute at. */
  readonly fromTime: number;
  accepted: boolean;
  /** Taken off the book (filled, cancelled, rejected or expired). */
  removed: boolean;
  /** Fills so far: the n-th fill's trade id is `<client order id>-t<n>`. */
  fills: number;
}

/** Where an order executes in a bar. Reused objects (see SimulatedVenue.hitPool). */
interface Hit {
  w: Working;
  pos: number;
  price: number;
  maker: boolean;
}

/** A stop's trigger point on the bar path. */
interface Trigger {
  pos: number;
  price: number;
}

interface SymbolBook {
  readonly instrument: Instrument;
  barsSeen: number;
  working: Working[];
  /** A perpetual's one-way position after the last match (liquidations move it between matches). */
  held: number;
}

/**
 * The simulated venue: fills orders against bars with pluggable fee, slippage and latency models.
 * Its defaults are backtrader's conventions (docs/conventions.md): market orders decided on bar t
 * fill at bar t+1's open; commission is rate x notional per side; a buy that the cash cannot
 * cover is rejected with a reason. Limit and stop orders follow the bar path of `barPath`.
 */
export class SimulatedVenue implements Venue {
  private sink: ReportSink = () => {
    throw new Error('SimulatedVenue used before connect()');
  };
  private readonly books = new Map<string, SymbolBook>();
  private readonly fees: FeeModel;
  private readonly slippage: SlippageModel;
  private readonly latencyBars: number;
  private readonly latencyMs: number;
  private readonly submissionCheck: boolean;
  private readonly allowShortSpot: boolean;
  private readonly marginCheck: SimulatedVenueOptions['marginCheck'];
  private readonly path = new Float64Array(4);
  // Per-bar scratch, reused so that matching allocates nothing per bar or per order.
  private readonly hitPool = objectArray<Hit>();
  private readonly snapshot = objectArray<Working | undefined>();
  private readonly trig: Trigger = { pos: 0, price: 0 };
  // The two reports of every order, reused (a sink reads a report during the call; see ReportSink).
  private readonly accepted: Mutable<AcceptedReport> = { type: 'accepted', id: '' as ClientOrderId, time: 0 };
  private readonly fill: Mutable<FillReport> = {
    type: 'fill',
    id: '' as ClientOrderId,
    time: 0,
    tradeId: '',
    price: 0,
    amount: 0,
    fee: 0,
    feeAsset: '',
    liquidity: 'taker',
  };
  /** The book of the last onBar: a backtest asks for the same market on every bar. */
  private lastBook: SymbolBook | undefined;

  constructor(
    instruments: readonly Instrument[],
    private readonly account: Account,
    opts: SimulatedVenueOptions = {},
  ) {
    for (const inst of instruments)
      this.books.set(inst.symbol, { instrument: inst, barsSeen: 0, working: objectArray<Working>(), held: 0 });
    this.fees = opts.fees ?? percentFee(0);
    this.slippage = opts.slippage ?? noSlippage;
    this.latencyBars = opts.latencyBars ?? 1;
    this.latencyMs = opts.latencyMs ?? 0;
    if (!(Number.isInteger(this.latencyBars) && this.latencyBars >= 1))
      throw new Error(`latencyBars must be an integer >= 1, got ${opts.latencyBars}`);
    if (!(this.latencyMs >= 0)) throw new Error(`latencyMs must be >= 0, got ${opts.latencyMs}`);
    this.submissionCheck = opts.submissionCheck ?? true;
    this.allowShortSpot = opts.allowShortSpot ?? false;
    this.marginCheck = opts.marginCheck;
  }

  connect(sink: ReportSink): void {
    this.sink = sink;
  }

  submit(order: OrderState, now: number): void {
    const book = this.books.get(order.request.symbol);
    if (!book) {
      this.sink({
        type: 'rejected',
        id: order.request.id,
        time: now,
        reason: `unknown market ${order.request.symbol}`,
      });
      return;
    }
    const w: Working = {
      order,
      book,
      fromBar: book.barsSeen + this.latencyBars - 1,
      fromTime: now + this.latencyMs,
      // An order carried over a restart (a paper bot's, BotEngine.carryOver) that had reached the
      // book rests there again: it is not accepted twice, nor filled as an arriving order.
      accepted: order.status !== 'submitted',
      removed: false,
      fills: 0,
    };
    book.working.push(w);
  }

  cancel(id: ClientOrderId, now: number, reason: string): void {
    const w = this.find(id);
    if (!w) return;
    this.remove(w.book, w);
    this.sink({ type: 'cancelled', id, time: now, reason });
  }

  /** Orders still working on the simulated book (for tests and the paper venue's status). */
  workingOrders(): OrderState[] {
    const out: OrderState[] = [];
    for (const b of this.books.values()) for (const w of b.working) out.push(w.order);
    return out;
  }

  onBar(symbol: string, bar: Bar, now: number): void {
    let book = this.lastBook;
    if (book === undefined || book.instrument.symbol !== symbol) {
      book = this.books.get(symbol);
      if (!book) return;
      this.lastBook = book;
    }
    const barIndex = book.barsSeen++;
    if (book.working.length === 0) return;
    this.match(book, bar, barIndex, now);
  }

  /**
   * The working entry of an order, by a scan of the books (newest first): a few orders work at a
   * time, and an id Map that grows and shrinks by one entry per order reallocates every time.
   */
  private find(id: string): Working | undefined {
    for (const b of this.books.values()) {
      const ws = b.working;
      for (let i = ws.length - 1; i >= 0; i--) if ((ws[i] as Working).order.request.id === id) return ws[i];
    }
    return undefined;
  }

  private remove(book: SymbolBook, w: Working): void {
    const i = book.working.indexOf(w);
    if (i >= 0) removeAt(book.working, i);
    w.removed = true;
  }

  private match(book: SymbolBook, bar: Bar, barIndex: number, now: number): void {
    const inst = book.instrument;
    const perp = inst.kind === 'perpetual';
    // Closed since the last match (a liquidation): its reduce-only orders expire first.
    if (perp && this.positionOf(inst.symbol) !== book.held) this.expireReduceOnly(book, now);
    const path = barPath(bar, this.path);
    let nHits = 0;
    // Snapshot: orders activated by fills in this bar start on the next bar.
    const list = this.snapshot;
    const nList = book.working.length;
    for (let k = 0; k < nList; k++) list[k] = book.working[k] as Working;
    for (let k = 0; k < nList; k++) {
      const w = list[k] as Working;
      const o = w.order;
      if (!o.active || barIndex < w.fromBar || bar.time < w.fromTime || isTerminal(o.status)) continue;
      const r = o.request;
      if (expiresAt(r, bar.time)) {
        this.remove(book, w);
        this.sink({ type: 'expired', id: r.id, time: now, cause: 'gtd' });
        continue;
      }
      const arriving = !w.accepted;
      if (arriving) {
        const reason = this.checkOnArrival(inst, o);
        if (reason) {
          this.remove(book, w);
          this.sink({ type: 'rejected', id: r.id, time: now, reason });
          continue;
        }
        if (r.type === 'limit' && r.postOnly && (r.side === 'buy' ? bar.open <= r.price : bar.open >= r.price)) {
          this.remove(book, w);
          this.sink({
            type: 'rejected',
            id: r.id,
            time: now,
            reason: `post-only limit ${r.side} at ${r.price} would take liquidity (open ${bar.open})`,
          });
          continue;
        }
        if (
          perp &&
          r.timeInForce === 'FOK' &&
          (r.type === 'limit' || r.type === 'market') &&
          !fillsAtOpen(r, bar, this.slippage.capacity(bar))
        ) {
          // Binance USDⓈ-M refuses a FOK order it cannot fill at once in full (-5021). A stop's
          // FOK is judged when it triggers: that is when it reaches the book (it expires there).
          this.remove(book, w);
          this.sink({
            type: 'rejected',
            id: r.id,
            time: now,
            reason: 'FOK: refused, it could not fill at once in full',
          });
          continue;
        }
        w.accepted = true;
        const acc = this.accepted;
        acc.id = r.id;
        acc.time = now;
        this.sink(acc);
      }
      let hit = this.hitPool[nHits];
      if (hit === undefined) this.hitPool.push((hit = { w, pos: 0, price: 0, maker: false }));
      if (this.trigger(w, path, arriving, now, hit)) nHits++;
      else if (executesAtOnce(r) && (r.type === 'limit' || o.triggered)) {
        // Not marketable where it reached the book (a limit's arrival, a stop-limit's trigger): the
        // exchange expires it (Binance: EXPIRED), however the rest of the bar moves.
        this.remove(book, w);
        this.sink({ type: 'expired', id: r.id, time: now, cause: r.timeInForce === 'IOC' ? 'ioc' : 'fok' });
      }
    }
    for (let k = 0; k < nList; k++) list[k] = undefined; // no references kept past the bar
    if (nHits === 0) {
      if (perp) book.held = this.positionOf(inst.symbol);
      return;
    }
    // The hits in bar-path order (a stable sort: ties keep submission order).
    const hits = nHits === 1 ? this.hitPool : this.hitPool.slice(0, nHits).sort((a, b) => a.pos - b.pos || 0);
    let capacity = this.slippage.capacity(bar);
    for (let k = 0; k < nHits; k++) {
      const h = hits[k] as Hit;
      const o = h.w.order;
      const r = o.request;
      if (isTerminal(o.status) || h.w.removed) continue; // cancelled by an OCO sibling in this bar
      const rest = restOf(inst, o);
      let amount = rest;
      // Whether this fill takes all the order may trade: its rest, or for an order that reduces,
      // all the position holds (what is left of the order then has nothing to reduce).
      let closes = false;
      // A hedge-mode order on the side it closes (a sell of the long, a buy of the short) only
      // reduces that side, as a reduce-only order does.
      const hs = r.positionSide;
      const reduces = r.reduceOnly === true || (hs !== undefined && (hs === 'long') !== (r.side === 'buy'));
      if (reduces) {
        const pos = this.account.find(r.symbol, hs)?.size ?? 0;
        const held = r.side === 'sell' ? Math.max(pos, 0) : Math.max(-pos, 0);
        // What can be traded of it: a remainder below the step (dust) cannot be sold.
        const closable = held < amount ? tradableAmount(inst, held, h.price) : amount;
        if (closable <= 0) {
          this.remove(book, h.w);
          this.sink({
            type: 'cancelled',
            id: r.id,
            time: now,
            reason:
              held > 0
                ? `reduce-only order: what is held (${held} ${inst.base}) is dust, smaller than the market can trade`
                : hs !== undefined && r.reduceOnly !== true
                  ? `nothing held on the ${hs} side to reduce`
                  : 'reduce-only order would open a position: nothing to reduce',
          });
          continue;
        }
        if (closable < amount) {
          amount = closable;
          closes = true;
        }
      }
      if (amount > capacity) {
        if (r.timeInForce === 'FOK') {
          this.remove(book, h.w);
          this.sink({ type: 'expired', id: r.id, time: now, cause: 'fok' });
          continue;
        }
        // A fill is on the instrument's step: what the bar's volume allows, rounded down. The
        // rest keeps working, a reduce-only order's too (as on Binance: a partly filled
        // reduce-only order stays open until it fills or the position is closed).
        amount = roundAmount(inst, capacity);
        closes = false;
      }
      if (!(amount > 0)) {
        // Nothing of it fills at the moment it can: an IOC does not wait for the next bar.
        if (executesAtOnce(r)) {
          this.remove(book, h.w);
          this.sink({ type: 'expired', id: r.id, time: now, cause: 'ioc' });
        }
        continue;
      }
      const price = h.maker ? h.price : this.slippage.price(r.side, h.price, amount, bar);
      const liquidity = h.maker ? 'maker' : 'taker';
      const fee = this.fees.fee(r.side, price, amount, liquidity);
      const reason = this.checkAtFill(inst, r.side, price, amount, fee, r.reduceOnly === true);
      if (reason) {
        this.remove(book, h.w);
        this.sink({ type: 'cancelled', id: r.id, time: now, reason });
        continue;
      }
      capacity -= amount;
      const done = amount >= rest || closes;
      if (done) this.remove(book, h.w);
      const f = this.fill;
      f.id = r.id;
      f.time = now;
      // Derived from the client order id (unique per bot and signal): unique across restarts of a
      // paper bot, and the same in every run of a backtest.
      f.tradeId = `${r.id}-t${++h.w.fills}`;
      f.price = price;
      f.amount = amount;
      f.fee = fee;
      f.feeAsset = feeInBase(this.fees.asset, r.side) ? inst.base : inst.quote;
      f.liquidity = liquidity;
      this.sink(f);
      if (closes && remaining(o) > 0 && !isTerminal(o.status)) {
        // A perpetual's exchange expires the rest (Binance USDⓈ-M); spot has no reduce-only, the
        // clipped rest is Keel's to cancel.
        if (perp) this.sink({ type: 'expired', id: r.id, time: now, cause: 'reduce-only' });
        else
          this.sink({
            type: 'cancelled',
            id: r.id,
            time: now,
            reason: 'reduce-only remainder cancelled: position is closed',
          });
      } else if (!done && executesAtOnce(r) && !isTerminal(o.status)) {
        // What the bar's volume did not fill of an IOC order does not rest: it expires.
        this.remove(book, h.w);
        this.sink({ type: 'expired', id: r.id, time: now, cause: 'ioc' });
      }
    }
    if (perp) {
      if (this.positionOf(inst.symbol) !== book.held) this.expireReduceOnly(book, now);
      book.held = this.positionOf(inst.symbol);
    }
  }

  /** A perpetual's one-way position (0 when flat or hedge). */
  private positionOf(symbol: string): number {
    return this.account.find(symbol)?.size ?? 0;
  }

  /**
   * Binance USD-M, one-way mode: a resting reduce-only order whose position is closed (nothing
   * left to reduce in its direction) is expired by the exchange at once ("expired due to current
   * position has been closed"); so here, after the fills that closed it (or a liquidation), not
   * later when the price reaches it. Orders not yet arrived, and hedge-mode orders, are left.
   */
  private expireReduceOnly(book: SymbolBook, now: number): void {
    const pos = this.positionOf(book.instrument.symbol);
    // A report may cancel other orders (an OCO sibling): scan again after each one.
    for (let i = book.working.length - 1; i >= 0; i = Math.min(i - 1, book.working.length - 1)) {
      const w = book.working[i] as Working;
      const o = w.order;
      const r = o.request;
      if (r.reduceOnly !== true || r.positionSide !== undefined || !w.accepted || !o.active || isTerminal(o.status))
        continue;
      if (r.side === 'sell' ? pos > 0 : pos < 0) continue;
      this.remove(book, w);
      this.sink({ type: 'expired', id: r.id, time: now, cause: 'reduce-only' });
    }
  }

  /** backtrader's submission check, at the decision price. Returns a reason or null. */
  private checkOnArrival(inst: Instrument, o: OrderState): string | null {
    const r = o.request;
    if (inst.kind === 'perpetual') {
      if (this.marginCheck === undefined || r.reduceOnly) return null;
      const p = r.type === 'limit' || r.type === 'stop-limit' ? r.price : o.decisionPrice;
      return this.marginCheck(
        r.symbol,
        r.side,
        r.amount,
        p,
        this.fees.fee(r.side, p, r.amount, 'taker'),
        r.positionSide,
      );
    }
    if (r.side === 'buy') {
      if (!this.submissionCheck) return null;
      const pos = this.account.find(r.symbol)?.size ?? 0;
      // Covering a short is paid from its proceeds; a buy beyond it (or beyond float dust) opens a
      // long and needs the cash.
      if (pos < 0 && r.amount <= -pos) return null;
      const p = r.type === 'limit' || r.type === 'stop-limit' ? r.price : o.decisionPrice;
      if (!(p > 0)) return null;
      const cash = this.account.balance(inst.quote);
      const need = r.amount * p + this.fees.fee('buy', p, r.amount, 'taker');
      if (cash - r.amount * p - this.fees.fee('buy', p, r.amount, 'taker') < 0) {
        return `insufficient ${inst.quote}: the order needs ${need} at ${p} (with fees), the account has ${cash}`;
      }
      return null;
    }
    if (inst.kind === 'spot' && !this.allowShortSpot && !r.reduceOnly) {
      const pos = this.account.find(r.symbol)?.size ?? 0;
      if (r.amount > pos * (1 + 1e-12))
        return `insufficient ${inst.base}: selling ${r.amount}, holding ${pos} (spot cannot go short)`;
    }
    return null;
  }

  private checkAtFill(
    inst: Instrument,
    side: 'buy' | 'sell',
    price: number,
    amount: number,
    fee: number,
    reduceOnly: boolean,
  ): string | null {
    if (inst.kind === 'perpetual') return null;
    const pos = this.account.find(inst.symbol)?.size ?? 0;
    if (side === 'sell') {
      // Two sells that each passed on arrival (a close sent while another is working) would sell
      // the coins twice: the second fill is refused, as the exchange refuses it. A reduce-only
      // sell was already clipped to what is held.
      if (this.allowShortSpot || reduceOnly || amount <= pos * (1 + 1e-12)) return null;
      return `insufficient ${inst.base}${AT_FILL}selling ${amount}, holding ${pos} (spot cannot go short)`;
    }
    if (pos < 0 && amount <= -pos) return null;
    const cash = this.account.balance(inst.quote);
    const feeQuote = feeInBase(this.fees.asset, side) ? 0 : fee;
    if (cash - amount * price - feeQuote < 0) {
      return `insufficient ${inst.quote}${AT_FILL}${amount} at ${price} costs ${amount * price + feeQuote}, the account has ${cash}`;
    }
    return null;
  }

  /** Where along the bar path the order executes (written into `out`), or false. pos 0 = the open. */
  private trigger(w: Working, path: Float64Array, arriving: boolean, now: number, out: Hit): boolean {
    const r = w.order.request;
    const buy = r.side === 'buy';
    switch (r.type) {
      case 'market':
        return setHit(out, w, 0, path[0] as number, false);
      case 'limit':
        return limitHit(out, w, path, 0, path[0] as number, buy, r.price, arriving, executesAtOnce(r));
      case 'stop-market': {
        const t = this.trig;
        if (!stopTrigger(t, path, buy, r.stopPrice)) return false;
        if (!w.order.triggered) this.sink({ type: 'triggered', id: r.id, time: now });
        return setHit(out, w, t.pos, t.price, false);
      }
      case 'stop-limit': {
        const t = this.trig;
        if (w.order.triggered) {
          t.pos = 0;
          t.price = path[0] as number;
        } else if (!stopTrigger(t, path, buy, r.stopPrice)) return false;
        if (!w.order.triggered) this.sink({ type: 'triggered', id: r.id, time: now });
        // After the trigger it is a limit order for the rest of the path (IOC/FOK: at the trigger only).
        return limitHit(out, w, path, t.pos, t.price, buy, r.price, true, executesAtOnce(r));
      }
      case 'trailing-stop': {
        const t = trailingStopHit(w.order, path);
        return t !== null && setHit(out, w, t.pos, t.price, false);
      }
      default:
        return assertNever(r, 'order type');
    }
  }
}

/** Whether an order arriving at the bar's open fills there in full: marketable, and within `capacity`. */
function fillsAtOpen(r: MarketOrder | LimitOrder, bar: Bar, capacity: number): boolean {
  if (r.amount > capacity) return false;
  if (r.type === 'market') return true;
  return r.side === 'buy' ? bar.open <= r.price : bar.open >= r.price;
}

/**
 * An IOC or FOK limit or stop-limit order: it executes against the book at the one moment it
 * reaches it (a limit: its arrival, the bar's open; a stop-limit: its trigger) and what does not
 * execute then expires; it never rests, so later in the same bar is not its. Market orders (IOC
 * inside the engine), stop-markets and trailing stops take what the bar offers as market orders.
 */
function executesAtOnce(r: OrderRequest): boolean {
  return (r.timeInForce === 'IOC' || r.timeInForce === 'FOK') && (r.type === 'limit' || r.type === 'stop-limit');
}

function setHit(out: Hit, w: Working, pos: number, price: number, maker: boolean): true {
  out.w = w;
  out.pos = pos;
  out.price = price;
  out.maker = maker;
  return true;
}

/** Where a stop triggers on the bar path (written into `out`), or false. */
function stopTrigger(out: Trigger, path: Float64Array, buy: boolean, stop: number): boolean {
  const o = path[0] as number;
  if (buy ? o >= stop : o <= stop) {
    out.pos = 0;
    out.price = o;
    return true;
  }
  for (let k = 0; k < 3; k++) {
    const a = path[k] as number;
    const b = path[k + 1] as number;
    if (buy ? a < stop && b >= stop : a > stop && b <= stop) {
      out.pos = k + (stop - a) / (b - a);
      out.price = stop;
      return true;
    }
  }
  return false;
}

/**
 * A limit order on the path from position `fromPos` (price `fromPrice`) on. Marketable on arrival
 * = taker at that price; otherwise it rests and fills at its limit as maker when price reaches it
 * (or at the open if a later bar gaps through it, as backtrader). `atOnce` (IOC, FOK): only
 * `fromPos` counts, it does not rest.
 */
function limitHit(
  out: Hit,
  w: Working,
  path: Float64Array,
  fromPos: number,
  fromPrice: number,
  buy: boolean,
  limit: number,
  arriving: boolean,
  atOnce: boolean,
): boolean {
  if (buy ? fromPrice <= limit : fromPrice >= limit)
    return setHit(out, w, fromPos, fromPrice, !arriving && fromPos === 0);
  if (atOnce) return false;
  const startSeg = Math.floor(fromPos);
  let prev = fromPrice;
  for (let k = startSeg; k < 3; k++) {
    const b = path[k + 1] as number;
    if (buy ? b <= limit && prev > limit : b >= limit && prev < limit) {
      const frac = (limit - prev) / (b - prev);
      const pos = k + (k === startSeg ? fromPos - startSeg + (1 - (fromPos - startSeg)) * frac : frac);
      return setHit(out, w, pos, limit, true);
    }
    prev = b;
  }
  return false;
}

/**
 * What is left of an order: after a partial fill, the amount less what filled is on the step up to
 * binary noise (0.025 - 0.02 = 0.005000000000000001), and the rest the exchange would fill is the
 * step's value. An amount that was never on the step is left as it is.
 */
function restOf(inst: Instrument, o: OrderState): number {
  const left = remaining(o);
  if (o.filled === 0) return left;
  const onStep = roundAmount(inst, left);
  return Math.abs(onStep - left) <= 1e-9 * o.request.amount ? onStep : left;
}
