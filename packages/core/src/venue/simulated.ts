import type { Bar } from '../model/bar.ts';
import type { Instrument } from '../model/instrument.ts';
import { isTerminal, type OrderState, remaining } from '../model/orders.ts';
import type { Account } from '../portfolio/account.ts';
import { assertNever } from '../util/assert.ts';
import type { ClientOrderId } from '../util/brand.ts';
import { barPath, type FeeModel, noSlippage, percentFee, type SlippageModel } from './models.ts';
import { expiresAt, trailingStopHit } from './triggers.ts';
import type { ReportSink, Venue } from './venue.ts';

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
}

interface Working {
  readonly order: OrderState;
  /** Index of the first bar (per symbol) on which the order can execute. */
  readonly fromBar: number;
  /** Earliest bar open time (ms) the order can execute at. */
  readonly fromTime: number;
  accepted: boolean;
}

interface Hit {
  w: Working;
  pos: number;
  price: number;
  maker: boolean;
}

interface SymbolBook {
  readonly instrument: Instrument;
  barsSeen: number;
  working: Working[];
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
  private readonly byId = new Map<string, { book: SymbolBook; w: Working }>();
  private readonly fees: FeeModel;
  private readonly slippage: SlippageModel;
  private readonly latencyBars: number;
  private readonly latencyMs: number;
  private readonly submissionCheck: boolean;
  private readonly allowShortSpot: boolean;
  private readonly path = new Float64Array(4);
  private readonly hits: Hit[] = [];
  private tradeSeq = 0;

  constructor(
    instruments: readonly Instrument[],
    private readonly account: Account,
    opts: SimulatedVenueOptions = {},
  ) {
    for (const inst of instruments) this.books.set(inst.symbol, { instrument: inst, barsSeen: 0, working: [] });
    this.fees = opts.fees ?? percentFee(0);
    this.slippage = opts.slippage ?? noSlippage;
    this.latencyBars = opts.latencyBars ?? 1;
    this.latencyMs = opts.latencyMs ?? 0;
    if (!(Number.isInteger(this.latencyBars) && this.latencyBars >= 1))
      throw new Error(`latencyBars must be an integer >= 1, got ${opts.latencyBars}`);
    if (!(this.latencyMs >= 0)) throw new Error(`latencyMs must be >= 0, got ${opts.latencyMs}`);
    this.submissionCheck = opts.submissionCheck ?? true;
    this.allowShortSpot = opts.allowShortSpot ?? false;
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
      fromBar: book.barsSeen + this.latencyBars - 1,
      fromTime: now + this.latencyMs,
      accepted: false,
    };
    book.working.push(w);
    this.byId.set(order.request.id, { book, w });
  }

  cancel(id: ClientOrderId, now: number, reason: string): void {
    const e = this.byId.get(id);
    if (!e) return;
    this.remove(e.book, e.w);
    this.sink({ type: 'cancelled', id, time: now, reason });
  }

  /** Orders still working on the simulated book (for tests and the paper venue's status). */
  workingOrders(): OrderState[] {
    const out: OrderState[] = [];
    for (const b of this.books.values()) for (const w of b.working) out.push(w.order);
    return out;
  }

  onBar(symbol: string, bar: Bar, now: number): void {
    const book = this.books.get(symbol);
    if (!book) return;
    const barIndex = book.barsSeen++;
    if (book.working.length === 0) return;
    this.match(book, bar, barIndex, now);
  }

  private remove(book: SymbolBook, w: Working): void {
    const i = book.working.indexOf(w);
    if (i >= 0) book.working.splice(i, 1);
    this.byId.delete(w.order.request.id);
  }

  private match(book: SymbolBook, bar: Bar, barIndex: number, now: number): void {
    const inst = book.instrument;
    const path = barPath(bar, this.path);
    const hits = this.hits;
    hits.length = 0;
    // Snapshot: orders activated by fills in this bar start on the next bar.
    const list = book.working.slice();
    for (const w of list) {
      const o = w.order;
      if (!o.active || barIndex < w.fromBar || bar.time < w.fromTime || isTerminal(o.status)) continue;
      const r = o.request;
      if (expiresAt(r, bar.time)) {
        this.remove(book, w);
        this.sink({ type: 'expired', id: r.id, time: now });
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
        w.accepted = true;
        this.sink({ type: 'accepted', id: r.id, time: now });
      }
      const hit = this.trigger(w, path, arriving, now);
      if (hit) hits.push(hit);
      else if (arriving && (r.timeInForce === 'IOC' || r.timeInForce === 'FOK')) {
        this.remove(book, w);
        this.sink({
          type: 'cancelled',
          id: r.id,
          time: now,
          reason: `${r.timeInForce} order not marketable at the open`,
        });
      }
    }
    if (hits.length === 0) return;
    if (hits.length > 1) hits.sort((a, b) => a.pos - b.pos || 0);
    let capacity = this.slippage.capacity(bar);
    for (const h of hits) {
      const o = h.w.order;
      const r = o.request;
      if (isTerminal(o.status) || !this.byId.has(r.id)) continue; // cancelled by an OCO sibling in this bar
      let amount = remaining(o);
      if (r.reduceOnly) {
        const pos = this.account.find(r.symbol)?.size ?? 0;
        const closable = r.side === 'sell' ? Math.max(pos, 0) : Math.max(-pos, 0);
        if (closable <= 0) {
          this.remove(book, h.w);
          this.sink({
            type: 'cancelled',
            id: r.id,
            time: now,
            reason: 'reduce-only order would open a position: nothing to reduce',
          });
          continue;
        }
        amount = Math.min(amount, closable);
      }
      if (amount > capacity) {
        if (r.timeInForce === 'FOK') {
          this.remove(book, h.w);
          this.sink({
            type: 'cancelled',
            id: r.id,
            time: now,
            reason: `FOK: only ${capacity} of ${amount} available in this bar's volume`,
          });
          continue;
        }
        amount = capacity;
      }
      if (!(amount > 0)) continue;
      const price = h.maker ? h.price : this.slippage.price(r.side, h.price, amount, bar);
      const liquidity = h.maker ? 'maker' : 'taker';
      const fee = this.fees.fee(r.side, price, amount, liquidity);
      const reason = this.checkAtFill(inst, r.side, price, amount, fee);
      if (reason) {
        this.remove(book, h.w);
        this.sink({ type: 'cancelled', id: r.id, time: now, reason });
        continue;
      }
      capacity -= amount;
      const done = amount >= remaining(o) || r.reduceOnly === true;
      if (done) this.remove(book, h.w);
      this.sink({
        type: 'fill',
        id: r.id,
        time: now,
        tradeId: `T${++this.tradeSeq}`,
        price,
        amount,
        fee,
        feeAsset: this.fees.asset === 'base' ? inst.base : inst.quote,
        liquidity,
      });
      if (done && r.reduceOnly && remaining(o) > 0 && !isTerminal(o.status)) {
        this.sink({
          type: 'cancelled',
          id: r.id,
          time: now,
          reason: 'reduce-only remainder cancelled: position is closed',
        });
      }
    }
  }

  /** backtrader's submission check, at the decision price. Returns a reason or null. */
  private checkOnArrival(inst: Instrument, o: OrderState): string | null {
    const r = o.request;
    if (r.side === 'buy') {
      if (!this.submissionCheck || inst.kind === 'perpetual') return null;
      const pos = this.account.find(r.symbol)?.size ?? 0;
      if (pos < 0) return null; // covering a short
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
  ): string | null {
    if (side !== 'buy' || inst.kind === 'perpetual') return null;
    const pos = this.account.find(inst.symbol)?.size ?? 0;
    if (pos < 0) return null;
    const cash = this.account.balance(inst.quote);
    const feeQuote = this.fees.asset === 'quote' ? fee : 0;
    if (cash - amount * price - feeQuote < 0) {
      return `insufficient ${inst.quote} at fill: ${amount} at ${price} costs ${amount * price + feeQuote}, the account has ${cash}`;
    }
    return null;
  }

  /** Where along the bar path the order executes, or null. pos 0 = the open. */
  private trigger(w: Working, path: Float64Array, arriving: boolean, now: number): Hit | null {
    const r = w.order.request;
    const buy = r.side === 'buy';
    switch (r.type) {
      case 'market':
        return { w, pos: 0, price: path[0] as number, maker: false };
      case 'limit':
        return limitHit(w, path, 0, path[0] as number, buy, r.price, arriving);
      case 'stop-market': {
        const t = stopTrigger(path, buy, r.stopPrice);
        if (!t) return null;
        if (!w.order.triggered) this.sink({ type: 'triggered', id: r.id, time: now });
        return { w, pos: t.pos, price: t.price, maker: false };
      }
      case 'stop-limit': {
        const t = w.order.triggered
          ? { pos: 0, price: path[0] as number, seg: 0 }
          : stopTrigger(path, buy, r.stopPrice);
        if (!t) return null;
        if (!w.order.triggered) this.sink({ type: 'triggered', id: r.id, time: now });
        // After the trigger it is a limit order for the rest of the path.
        return limitHit(w, path, t.pos, t.price, buy, r.price, true);
      }
      case 'trailing-stop': {
        const t = trailingStopHit(w.order, path);
        return t ? { w, pos: t.pos, price: t.price, maker: false } : null;
      }
      default:
        return assertNever(r, 'order type');
    }
  }
}

function stopTrigger(path: Float64Array, buy: boolean, stop: number): { pos: number; price: number } | null {
  const o = path[0] as number;
  if (buy ? o >= stop : o <= stop) return { pos: 0, price: o };
  for (let k = 0; k < 3; k++) {
    const a = path[k] as number;
    const b = path[k + 1] as number;
    if (buy ? a < stop && b >= stop : a > stop && b <= stop) return { pos: k + (stop - a) / (b - a), price: stop };
  }
  return null;
}

/**
 * A limit order on the path from position `fromPos` (price `fromPrice`) on. Marketable on arrival
 * = taker at that price; otherwise it rests and fills at its limit as maker when price reaches it
 * (or at the open if a later bar gaps through it, as backtrader).
 */
function limitHit(
  w: Working,
  path: Float64Array,
  fromPos: number,
  fromPrice: number,
  buy: boolean,
  limit: number,
  arriving: boolean,
): Hit | null {
  if (buy ? fromPrice <= limit : fromPrice >= limit)
    return { w, pos: fromPos, price: fromPrice, maker: !arriving && fromPos === 0 };
  const startSeg = Math.floor(fromPos);
  let prev = fromPrice;
  for (let k = startSeg; k < 3; k++) {
    const b = path[k + 1] as number;
    if (buy ? b <= limit && prev > limit : b >= limit && prev < limit) {
      const frac = (limit - prev) / (b - prev);
      return {
        w,
        pos: k + (k === startSeg ? fromPos - startSeg + (1 - (fromPos - startSeg)) * frac : frac),
        price: limit,
        maker: true,
      };
    }
    prev = b;
  }
  return null;
}
