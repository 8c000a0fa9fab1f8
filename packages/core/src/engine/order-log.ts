import {
  ORDER_STATUSES,
  type OrderRequest,
  type OrderState,
  type OrderStatus,
  type TimeInForce,
  withoutOptions,
} from '../model/orders.ts';
import { objectArray } from '../util/arrays.ts';
import type { ClientOrderId, VenueOrderId } from '../util/brand.ts';

// Numbers of one finished order, in one strided Float64Array.
const STATUS = 0;
const FILLED = 1;
const AVG_PRICE = 2;
const FEE = 3;
const CREATED = 4;
const UPDATED = 5;
const STOP_LEVEL = 6;
const DECISION = 7;
const FLAGS = 8; // bit 0: triggered, bit 1: active, bit 2: sell, bits 3-4: time in force
const AMOUNT = 9; // of a plain market request (see finish)
const SYMBOL = 10; // code into `symbols`, of a plain market request
const STRIDE = 11;

const TIFS: readonly TimeInForce[] = ['GTC', 'IOC', 'FOK', 'GTD'];

const STATUS_CODE: Readonly<Record<OrderStatus, number>> = Object.fromEntries(
  ORDER_STATUSES.map((s, i) => [s, i]),
) as Record<OrderStatus, number>;

/**
 * Every order of a run, in submission order. While an order is live it is an OrderState object
 * (the strategy, the venue and the events hold it); when it ends, its final state goes into
 * columns and the object is let go, so an order-heavy backtest keeps no per-order state object
 * alive (the GC has less to copy and memory stays flat). Reading an order or the history builds
 * the objects of finished orders again, with the same fields and values.
 */
export class OrderLog {
  private readonly objs = objectArray<OrderState | undefined>();
  private readonly ids = objectArray<ClientOrderId>();
  /** Requests of finished orders, except plain market ones (those are in the columns). */
  private readonly requests = objectArray<OrderRequest | undefined>();
  private readonly symbols = objectArray<string>();
  private nums = new Float64Array(256 * STRIDE);
  /** Rare text fields of finished orders, by index. */
  private readonly reasons = new Map<number, string>();
  private readonly venueIds = new Map<number, VenueOrderId>();
  private cache: OrderState[] | undefined;

  get length(): number {
    return this.objs.length;
  }

  /** Adds a live order; returns its index. */
  append(o: OrderState): number {
    const i = this.objs.length;
    if ((i + 1) * STRIDE > this.nums.length) {
      const n = new Float64Array(this.nums.length * 2);
      n.set(this.nums);
      this.nums = n;
    }
    this.objs.push(o);
    this.ids.push(o.request.id);
    this.requests.push(undefined);
    this.cache = undefined;
    return i;
  }

  /** Order `o` at index i ended (its status is terminal): moves its final state into the columns. */
  finish(i: number, o: OrderState): void {
    if (this.objs[i] !== o) return;
    const b = i * STRIDE;
    const a = this.nums;
    a[b + STATUS] = STATUS_CODE[o.status];
    a[b + FILLED] = o.filled;
    a[b + AVG_PRICE] = o.avgPrice;
    a[b + FEE] = o.fee;
    a[b + CREATED] = o.createdAt;
    a[b + UPDATED] = o.updatedAt;
    a[b + STOP_LEVEL] = o.stopLevel;
    a[b + DECISION] = o.decisionPrice;
    a[b + FLAGS] = (o.triggered ? 1 : 0) | (o.active ? 2 : 0);
    if (o.reason !== undefined) this.reasons.set(i, o.reason);
    if (o.venueOrderId !== undefined) this.venueIds.set(i, o.venueOrderId);
    // The request as it is now (a bracket exit's can be replaced, its amount cut to the entry's
    // fill). A plain market request (no options: what orderTargetPercent and close send, most
    // orders of a backtest) goes into the columns too, so such an order keeps no object at all.
    const r = o.request;
    if (r.type === 'market' && withoutOptions(r, r)) {
      a[b + FLAGS] = (a[b + FLAGS] as number) | (r.side === 'sell' ? 4 : 0) | (TIFS.indexOf(r.timeInForce) << 3);
      a[b + AMOUNT] = r.amount;
      a[b + SYMBOL] = this.symbolCode(r.symbol);
    } else this.requests[i] = r;
    this.objs[i] = undefined;
    this.cache = undefined;
  }

  private symbolCode(symbol: string): number {
    const k = this.symbols.indexOf(symbol); // a handful of markets
    if (k >= 0) return k;
    this.symbols.push(symbol);
    return this.symbols.length - 1;
  }

  /** The order at index i: the live object, or a new object for a finished order. */
  get(i: number): OrderState {
    const live = this.objs[i];
    if (live !== undefined) return live;
    const b = i * STRIDE;
    const a = this.nums;
    const flags = a[b + FLAGS] as number;
    // The same keys in the same order as the engine's plain market request.
    const request: OrderRequest = this.requests[i] ?? {
      type: 'market',
      id: this.ids[i] as ClientOrderId,
      symbol: this.symbols[a[b + SYMBOL] as number] as string,
      side: flags & 4 ? 'sell' : 'buy',
      amount: a[b + AMOUNT] as number,
      timeInForce: TIFS[(flags >> 3) & 3] as TimeInForce,
    };
    // Same keys in the same order as newOrderState; venueOrderId and reason only when they were set.
    const o: OrderState = {
      request,
      status: ORDER_STATUSES[a[b + STATUS] as number] as OrderStatus,
      filled: a[b + FILLED] as number,
      avgPrice: a[b + AVG_PRICE] as number,
      fee: a[b + FEE] as number,
      createdAt: a[b + CREATED] as number,
      updatedAt: a[b + UPDATED] as number,
      triggered: (flags & 1) !== 0,
      stopLevel: a[b + STOP_LEVEL] as number,
      decisionPrice: a[b + DECISION] as number,
      active: (flags & 2) !== 0,
    };
    const vid = this.venueIds.get(i);
    if (vid !== undefined) o.venueOrderId = vid;
    const reason = this.reasons.get(i);
    if (reason !== undefined) o.reason = reason;
    return o;
  }

  /** Index of the newest order with this client id, or -1. */
  lastIndexOf(id: string): number {
    for (let i = this.ids.length - 1; i >= 0; i--) if (this.ids[i] === id) return i;
    return -1;
  }

  /** Every order as an object, in submission order (built once, cached until the log changes). */
  toArray(): readonly OrderState[] {
    if (this.cache === undefined) {
      const out: OrderState[] = new Array(this.objs.length);
      for (let i = 0; i < out.length; i++) out[i] = this.get(i);
      this.cache = out;
    }
    return this.cache;
  }
}
