import type { EndpointClass } from './errors.ts';
import type { Timer } from './timer.ts';
import { WeightWindow, type WindowFull, type WindowSpec } from './weight-window.ts';

export interface BucketSpec {
  /** Burst size, in weight units. */
  readonly capacity: number;
  /** Sustained rate, weight units per second. */
  readonly refillPerSec: number;
}

/**
 * A token bucket per endpoint class; the IP's request-weight window that every class passes too
 * (`ipWeight`); and the account's order-count windows that every new order passes (`orderCount`;
 * cancels do not count there, as on Binance). Absent windows: only the buckets.
 */
export type LimiterSpec = Readonly<Record<EndpointClass, BucketSpec>> & {
  readonly ipWeight?: WindowSpec;
  readonly orderCount?: readonly WindowSpec[];
  /**
   * New orders this gateway may have sent and not yet seen answered (with `orderCount`). Each
   * answer carries the account's count, others' orders included: a gateway that may not send more
   * before its answers come back cannot dump a backlog into a window another bot is filling at
   * the same instant (a new window, when both held orders back). Bounds what N gateways overshoot
   * the account's count by to about N x this, which the windows' margin covers.
   */
  readonly ordersInFlight?: number;
};

/** Default `ordersInFlight`: at 100 ms a round trip, 100 orders a second, ten times Binance spot's limit. */
const ORDERS_IN_FLIGHT = 10;

/** The IP's used weight per minute (Binance: `X-MBX-USED-WEIGHT-1M`, spot and USDⓈ-M alike). */
function ipWeightWindow(published: number, k: number): WindowSpec {
  return { limit: Math.floor(published * k), published, windowMs: 60_000, header: 'x-mbx-used-weight-1m' };
}

/** The account's new orders per window (Binance: `X-MBX-ORDER-COUNT-10S`, `-1M`, `-1D`). */
function orderCountWindow(published: number, windowMs: number, suffix: string, k: number): WindowSpec {
  return { limit: Math.floor(published * k), published, windowMs, header: `x-mbx-order-count-${suffix}` };
}

/**
 * Binance spot's published limits (exchangeInfo.rateLimits): REQUEST_WEIGHT 6000 per minute per
 * IP, ORDERS 100 per 10 s and 200,000 per day per account. Keel keeps `margin` (default 20%) below
 * them and splits the weight budget between queries and market data so a backfill can never starve
 * order queries. The windows hold the same margin under the IP's and the account's limits, counted
 * with what the exchange reports others on the IP or the account used.
 */
export function binanceSpotLimits(margin = 0.2): LimiterSpec {
  const k = 1 - margin;
  const weightPerSec = (6000 / 60) * k;
  return {
    ipWeight: ipWeightWindow(6000, k),
    orderCount: [orderCountWindow(100, 10_000, '10s', k), orderCountWindow(200_000, 86_400_000, '1d', k)],
    ordersInFlight: ORDERS_IN_FLIGHT,
    orders: { capacity: Math.floor(100 * k), refillPerSec: (100 / 10) * k },
    queries: { capacity: Math.floor(weightPerSec * 5), refillPerSec: weightPerSec / 2 },
    'market-data': { capacity: Math.floor(weightPerSec * 5), refillPerSec: weightPerSec / 2 },
  };
}

/**
 * Binance USDⓈ-M futures' published limits (fapi exchangeInfo.rateLimits): REQUEST_WEIGHT 2,400 per
 * minute per IP, ORDERS 300 per 10 s and 1,200 per minute per account. The same `margin` and split
 * as spot; the order bucket's burst of 150 x (1 - margin) refilling at 20 x (1 - margin) a second
 * stays within both order windows of one gateway alone (120 + 10 x 16 = 280 <= 300; 120 + 60 x 16 =
 * 1,080 <= 1,200); the windows hold what the account's other users send too.
 */
export function binanceUsdmLimits(margin = 0.2): LimiterSpec {
  const k = 1 - margin;
  const weightPerSec = (2400 / 60) * k;
  return {
    ipWeight: ipWeightWindow(2400, k),
    orderCount: [orderCountWindow(300, 10_000, '10s', k), orderCountWindow(1_200, 60_000, '1m', k)],
    ordersInFlight: ORDERS_IN_FLIGHT,
    orders: { capacity: Math.floor(150 * k), refillPerSec: (1200 / 60) * k },
    queries: { capacity: Math.floor(weightPerSec * 5), refillPerSec: weightPerSec / 2 },
    'market-data': { capacity: Math.floor(weightPerSec * 5), refillPerSec: weightPerSec / 2 },
  };
}

/**
 * The budget of the exchange a ccxt client speaks to (its id): Binance USDⓈ-M (`binanceusdm`) has
 * its own; every other exchange gets Binance spot's (Keel is tested against Binance only).
 */
export function exchangeLimits(exchangeId: string | undefined, margin = 0.2): LimiterSpec {
  return exchangeId === 'binanceusdm' ? binanceUsdmLimits(margin) : binanceSpotLimits(margin);
}

export type Priority = 'high' | 'normal';

interface Waiter {
  readonly weight: number;
  /** What it weighs on the IP's window. */
  readonly ipWeight: number;
  /** New orders it places (the account's order-count windows): 0 a read or a cancel, 2 an OCO list. */
  readonly orders: number;
  readonly priority: Priority;
  readonly seq: number;
  readonly resolve: () => void;
}

/** What a request weighs besides its class's tokens, and when it is no longer wanted. */
export interface AcquireOptions {
  /** Its weight on the IP's window; default the class weight. */
  readonly ipWeight?: number;
  /** New orders it places; default 0. */
  readonly orders?: number;
  /**
   * Aborted while it waits: it leaves the queue at once, having taken nothing, and `acquire`
   * rejects with the signal's reason.
   */
  readonly signal?: AbortSignal;
}

/** Which window made a request wait: the IP's weight, or the account's new orders. */
export type FullWindow = 'ip-weight' | 'order-count';

class Bucket {
  tokens: number;
  last: number;
  pausedUntil = 0;
  queue: Waiter[] = [];
  scheduled = false;

  constructor(
    readonly spec: BucketSpec,
    now: number,
    /** Orders and cancels may use the IP window's margin (`WeightWindow.waitMs`). */
    readonly reserve: boolean,
  ) {
    if (!(spec.capacity > 0) || !(spec.refillPerSec > 0)) {
      throw new Error(
        `Invalid rate limit: capacity and refillPerSec must be > 0, got ${spec.capacity} and ${spec.refillPerSec}`,
      );
    }
    this.tokens = spec.capacity;
    this.last = now;
  }

  refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.spec.capacity, this.tokens + ((now - this.last) * this.spec.refillPerSec) / 1000);
      this.last = now;
    }
  }
}

/**
 * One token bucket per endpoint class, the IP's weight window every class shares, and the
 * account's order-count windows every new order passes. Waiters are served by priority, then
 * FIFO: cancels ask with `high` and overtake queued creates (freeing risk beats adding it), and
 * count no order. Time and waiting come from the injected Timer.
 */
export class RateLimiter {
  private readonly buckets: Map<EndpointClass, Bucket>;
  /** The IP's request weight per window (undefined: the spec has none). */
  readonly window: WeightWindow | undefined;
  /** The account's new orders per window (empty: the spec has none). */
  readonly orderWindows: readonly WeightWindow[];
  private readonly maxOrdersInFlight: number;
  /** New orders let through whose answer has not come yet (`answered`). */
  private ordersInFlight = 0;
  private seq = 0;

  constructor(
    spec: LimiterSpec,
    private readonly timer: Timer,
    onWindowFull?: (which: FullWindow, e: WindowFull) => void,
  ) {
    const { ipWeight, orderCount, ordersInFlight, ...classes } = spec;
    this.maxOrdersInFlight = ordersInFlight ?? Number.POSITIVE_INFINITY;
    this.buckets = new Map(
      Object.entries(classes).map(([k, v]) => [k as EndpointClass, new Bucket(v, timer.now(), k === 'orders')]),
    );
    this.window = ipWeight ? new WeightWindow(ipWeight, (e) => onWindowFull?.('ip-weight', e)) : undefined;
    this.orderWindows = (orderCount ?? []).map((w) => new WeightWindow(w, (e) => onWindowFull?.('order-count', e)));
  }

  /**
   * Resolves when `weight` tokens of class `cls` have been taken for the caller, its `ipWeight`
   * fits in the IP's window and its `orders` in every order-count window.
   */
  acquire(cls: EndpointClass, weight = 1, priority: Priority = 'normal', opts: AcquireOptions = {}): Promise<void> {
    const b = this.bucket(cls);
    if (weight > b.spec.capacity)
      throw new Error(`Request weight ${weight} exceeds the ${cls} bucket capacity ${b.spec.capacity}`);
    const { ipWeight = weight, orders = 0, signal } = opts;
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        const i = b.queue.indexOf(w);
        if (i < 0) return;
        b.queue.splice(i, 1);
        reject(signal?.reason);
        // The head may have changed: whoever is first now goes when it can.
        this.pump(b);
      };
      const w: Waiter = {
        weight,
        ipWeight,
        orders,
        priority,
        seq: this.seq++,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      b.queue.push(w);
      b.queue.sort((x, y) => (x.priority === y.priority ? x.seq - y.seq : x.priority === 'high' ? -1 : 1));
      this.pump(b);
    });
  }

  /** Available tokens now (for tests and metrics). */
  available(cls: EndpointClass): number {
    const b = this.bucket(cls);
    b.refill(this.timer.now());
    return b.tokens;
  }

  /** Stops serving class `cls` until `untilMs` (the exchange's Retry-After), and empties its bucket. */
  pause(cls: EndpointClass, untilMs: number): void {
    const b = this.bucket(cls);
    b.pausedUntil = Math.max(b.pausedUntil, untilMs);
    b.tokens = 0;
    b.last = Math.max(b.last, untilMs);
  }

  private bucket(cls: EndpointClass): Bucket {
    const b = this.buckets.get(cls);
    if (!b) throw new Error(`No rate limit configured for endpoint class ${cls}`);
    return b;
  }

  /**
   * The answer to a request that placed `orders` new orders came (or it failed, or was never
   * sent): its orders are no longer in flight. Every request acquired with `orders` > 0 calls it
   * once.
   */
  answered(orders: number): void {
    if (orders <= 0) return;
    this.ordersInFlight = Math.max(0, this.ordersInFlight - orders);
    const b = this.buckets.get('orders');
    if (b) this.pump(b);
  }

  /** New orders may go: as many in flight as allowed (or none in flight, whatever their number). */
  private inFlightRoom(orders: number): boolean {
    return orders === 0 || this.ordersInFlight === 0 || this.ordersInFlight + orders <= this.maxOrdersInFlight;
  }

  /** How long the account's order-count windows hold `orders` new orders at `now` (0: they may go). */
  private ordersWaitMs(orders: number, now: number): number {
    if (orders === 0) return 0;
    let wait = 0;
    for (const w of this.orderWindows) wait = Math.max(wait, w.waitMs(orders, now));
    return wait;
  }

  private pump(b: Bucket): void {
    const now = this.timer.now();
    if (now >= b.pausedUntil) {
      b.refill(now);
      for (
        let head = b.queue[0];
        head &&
        head.weight <= b.tokens + 1e-9 &&
        (this.window?.waitMs(head.ipWeight, now, b.reserve) ?? 0) === 0 &&
        this.ordersWaitMs(head.orders, now) === 0 &&
        this.inFlightRoom(head.orders);
        head = b.queue[0]
      ) {
        b.tokens -= head.weight;
        this.window?.take(head.ipWeight, now);
        if (head.orders > 0) {
          for (const w of this.orderWindows) w.take(head.orders, now);
          this.ordersInFlight += head.orders;
        }
        b.queue.shift();
        head.resolve();
      }
    }
    const head = b.queue[0];
    if (!head || b.scheduled) return;
    const waitMs = Math.max(
      now < b.pausedUntil ? b.pausedUntil - now : Math.ceil(((head.weight - b.tokens) * 1000) / b.spec.refillPerSec),
      this.window?.waitMs(head.ipWeight, now, b.reserve) ?? 0,
      this.ordersWaitMs(head.orders, now),
    );
    // Held only by its orders in flight: their answers (`answered`) pump again.
    if (waitMs <= 0 && !this.inFlightRoom(head.orders)) return;
    b.scheduled = true;
    void this.timer.sleep(Math.max(1, waitMs)).then(() => {
      b.scheduled = false;
      this.pump(b);
    });
  }
}
