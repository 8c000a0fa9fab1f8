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
 * A token bucket per endpoint class, and the IP's request-weight window that every class passes
 * too (`ipWeight`; absent: no window, only the buckets).
 */
export type LimiterSpec = Readonly<Record<EndpointClass, BucketSpec>> & { readonly ipWeight?: WindowSpec };

/**
 * Binance spot's published limits (exchangeInfo.rateLimits): REQUEST_WEIGHT 6000 per minute per
 * IP, ORDERS 100 per 10 s per account. Keel keeps `margin` (default 20%) below them and splits the
 * weight budget between queries and market data so a backfill can never starve order queries. The
 * minute's window holds the same margin under the IP's limit, counted with what the exchange
 * reports others on the IP used.
 */
export function binanceSpotLimits(margin = 0.2): LimiterSpec {
  const k = 1 - margin;
  const weightPerSec = (6000 / 60) * k;
  return {
    ipWeight: { limit: Math.floor(6000 * k), published: 6000, windowMs: 60_000 },
    orders: { capacity: Math.floor(100 * k), refillPerSec: (100 / 10) * k },
    queries: { capacity: Math.floor(weightPerSec * 5), refillPerSec: weightPerSec / 2 },
    'market-data': { capacity: Math.floor(weightPerSec * 5), refillPerSec: weightPerSec / 2 },
  };
}

/**
 * Binance USDⓈ-M futures' published limits (fapi exchangeInfo.rateLimits): REQUEST_WEIGHT 2,400 per
 * minute per IP, ORDERS 300 per 10 s and 1,200 per minute per account. The same `margin` and split
 * as spot; the order bucket's burst of 150 x (1 - margin) refilling at 20 x (1 - margin) a second
 * stays within both order windows (120 + 10 x 16 = 280 <= 300; 120 + 60 x 16 = 1,080 <= 1,200).
 */
export function binanceUsdmLimits(margin = 0.2): LimiterSpec {
  const k = 1 - margin;
  const weightPerSec = (2400 / 60) * k;
  return {
    ipWeight: { limit: Math.floor(2400 * k), published: 2400, windowMs: 60_000 },
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
  readonly priority: Priority;
  readonly seq: number;
  readonly resolve: () => void;
}

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
 * One token bucket per endpoint class, and the IP's weight window every class shares. Waiters are
 * served by priority, then FIFO: cancels ask with `high` and overtake queued creates (freeing risk
 * beats adding it). Time and waiting come from the injected Timer.
 */
export class RateLimiter {
  private readonly buckets: Map<EndpointClass, Bucket>;
  /** The IP's request weight per window (undefined: the spec has none). */
  readonly window: WeightWindow | undefined;
  private seq = 0;

  constructor(
    spec: LimiterSpec,
    private readonly timer: Timer,
    onWindowFull?: (e: WindowFull) => void,
  ) {
    const { ipWeight, ...classes } = spec;
    this.buckets = new Map(
      Object.entries(classes).map(([k, v]) => [k as EndpointClass, new Bucket(v, timer.now(), k === 'orders')]),
    );
    this.window = ipWeight ? new WeightWindow(ipWeight, onWindowFull) : undefined;
  }

  /**
   * Resolves when `weight` tokens of class `cls` have been taken for the caller, and `ipWeight`
   * (default `weight`) fits in the IP's window.
   */
  acquire(cls: EndpointClass, weight = 1, priority: Priority = 'normal', ipWeight = weight): Promise<void> {
    const b = this.bucket(cls);
    if (weight > b.spec.capacity)
      throw new Error(`Request weight ${weight} exceeds the ${cls} bucket capacity ${b.spec.capacity}`);
    return new Promise<void>((resolve) => {
      b.queue.push({ weight, ipWeight, priority, seq: this.seq++, resolve });
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

  private pump(b: Bucket): void {
    const now = this.timer.now();
    if (now >= b.pausedUntil) {
      b.refill(now);
      for (
        let head = b.queue[0];
        head && head.weight <= b.tokens + 1e-9 && (this.window?.waitMs(head.ipWeight, now, b.reserve) ?? 0) === 0;
        head = b.queue[0]
      ) {
        b.tokens -= head.weight;
        this.window?.take(head.ipWeight, now);
        b.queue.shift();
        head.resolve();
      }
    }
    const head = b.queue[0];
    if (!head || b.scheduled) return;
    const waitMs = Math.max(
      now < b.pausedUntil ? b.pausedUntil - now : Math.ceil(((head.weight - b.tokens) * 1000) / b.spec.refillPerSec),
      this.window?.waitMs(head.ipWeight, now, b.reserve) ?? 0,
    );
    b.scheduled = true;
    void this.timer.sleep(Math.max(1, waitMs)).then(() => {
      b.scheduled = false;
      this.pump(b);
    });
  }
}
