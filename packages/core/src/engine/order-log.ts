import { ORDER_STATUSES, type OrderRequest, type OrderState, type OrderStatus } from '../model/orders.ts';
import { objectArray } from '../util/arrays.ts';
import type { VenueOrderId } from '../util/brand.ts';

// Numbers of one finished order, in one strided Float64Array.
const STATUS = 0;
const FILLED = 1;
const AVG_PRICE = 2;
const FEE = 3;
const CREATED = 4;
const UPDATED = 5;
const STOP_LEVEL = 6;
const DECISION = 7;
const FLAGS = 8; // bit 0: triggered, bit 1: active
const STRIDE = 9;

const STATUS_CODE: Readonly<Record<OrderStatus, number>> = Object.fromEntries(
  ORDER_STATUSES.map((s, i) => [s, i]),
) as Record<OrderStatus, number>;

/**
 * Every order of a run, in submission order. While an order is live it is an OrderState object
 * (the strategy, the venue and the events hold it); when it ends, its final state goes into
 * columns and the object is let go, so an order-heavy backtest keeps no per-order state object
 * alive (the GC has less to copy and memory stays flat). Reading an order or the history builds
 * the objects of finished orders again, with the same fields and values. Requests are immutable
 * and kept as they are.
 */
export class OrderLog {
  private readonly objs = objectArray<OrderState | undefined>();
  private readonly requests = objectArray<OrderRequest>();
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
    this.requests.push(o.request);
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
    // A bracket exit's request can be replaced (its amount cut to the entry's fill).
    this.requests[i] = o.request;
    this.objs[i] = undefined;
    this.cache = undefined;
  }

  /** The order at index i: the live object, or a new object for a finished order. */
  get(i: number): OrderState {
    const live = this.objs[i];
    if (live !== undefined) return live;
    const b = i * STRIDE;
    const a = this.nums;
    const flags = a[b + FLAGS] as number;
    // Same keys in the same order as newOrderState; venueOrderId and reason only when they were set.
    const o: OrderState = {
      request: this.requests[i] as OrderRequest,
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
    for (let i = this.requests.length - 1; i >= 0; i--) if ((this.requests[i] as OrderRequest).id === id) return i;
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
