/**
 * Binance's REST limits, counted as Binance counts them: REQUEST_WEIGHT per IP (every API key
 * behind one address shares it) in fixed 1-minute windows of the wall clock (429 / -1003 over it,
 * a 418 ban of the IP after `banAfter` more requests while limited), and the ORDERS counters per
 * account (API key) in fixed windows of the wall clock, reported in headers and enforced (429 /
 * -1015 over them).
 */
export interface RateLimitOptions {
  weightPerMinute: number;
  banAfter: number;
  banMs: number;
}

/** Either the headers to send with the answer, or the 429/418 answer instead of it. */
export type WeightOutcome =
  | { type: 'ok'; headers: Record<string, string> }
  | { type: 'limited'; status: 429 | 418; body: { code: number; msg: string }; headers: Record<string, string> };

/** The weight window of one IP. */
class IpWeight {
  windowStart = 0;
  used = 0;
  strikes = 0;
  bannedUntil = 0;
}

/** REQUEST_WEIGHT of every IP that has called: one window, one strike count, one ban each. */
export class RequestWeight {
  private readonly ips = new Map<string, IpWeight>();

  constructor(private readonly opts: RateLimitOptions) {}

  get weightPerMinute(): number {
    return this.opts.weightPerMinute;
  }

  /**
   * Charges a request's weight to its IP at wall time `now` (before it is checked, as on Binance).
   * `stormed` is asked only when the IP is not banned: it says a fault answers this one with 429.
   */
  charge(ip: string, now: number, weight: number, stormed: () => boolean): WeightOutcome {
    let w = this.ips.get(ip);
    if (w === undefined) this.ips.set(ip, (w = new IpWeight()));
    if (now < w.bannedUntil) return this.banned(w, now);
    if (stormed()) return this.tooMany(w, now);
    this.rollWindow(w, now);
    w.used += weight;
    if (w.used > this.opts.weightPerMinute) {
      w.strikes += 1;
      if (w.strikes > this.opts.banAfter) {
        w.bannedUntil = now + this.opts.banMs;
        return this.banned(w, now);
      }
      return this.tooMany(w, now);
    }
    return { type: 'ok', headers: { 'x-mbx-used-weight': String(w.used), 'x-mbx-used-weight-1m': String(w.used) } };
  }

  private tooMany(w: IpWeight, now: number): WeightOutcome {
    const retryAfter = Math.ceil((w.windowStart + 60_000 - now) / 1000);
    return {
      type: 'limited',
      status: 429,
      body: {
        code: -1003,
        msg: `Too much request weight used; current limit is ${this.opts.weightPerMinute} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.`,
      },
      headers: { 'retry-after': String(Math.max(1, retryAfter)), 'x-mbx-used-weight-1m': String(w.used) },
    };
  }

  private banned(w: IpWeight, now: number): WeightOutcome {
    const retryAfter = Math.ceil((w.bannedUntil - now) / 1000);
    return {
      type: 'limited',
      status: 418,
      body: {
        code: -1003,
        msg: `Way too much request weight used; IP banned until ${w.bannedUntil}. Please use WebSocket Streams for live updates to avoid bans.`,
      },
      headers: { 'retry-after': String(Math.max(1, retryAfter)) },
    };
  }

  private rollWindow(w: IpWeight, now: number): void {
    const minute = Math.floor(now / 60_000) * 60_000;
    if (minute !== w.windowStart) {
      w.windowStart = minute;
      w.used = 0;
      w.strikes = 0;
    }
  }
}

/** One ORDERS window: its header's suffix (`10s`, `1m`, `1d`), length, limit, and its name in -1015's message. */
interface OrderWindow {
  readonly name: string;
  readonly ms: number;
  readonly limit: number;
  /** As Binance words the interval in -1015's message: `10 SECOND`, `1 MINUTE`, `1 DAY`. */
  readonly interval: string;
}

/** Spot counts orders in 10 s and a day; USDⓈ-M in 10 s and a minute (their exchangeInfo ORDERS limits). */
export const SPOT_ORDER_WINDOWS: readonly OrderWindow[] = [
  { name: '10s', ms: 10_000, limit: 100, interval: '10 SECOND' },
  { name: '1d', ms: 86_400_000, limit: 200_000, interval: '1 DAY' },
];
export const FUTURES_ORDER_WINDOWS: readonly OrderWindow[] = [
  { name: '10s', ms: 10_000, limit: 300, interval: '10 SECOND' },
  { name: '1m', ms: 60_000, limit: 1_200, interval: '1 MINUTE' },
];

/** Either the `x-mbx-order-count-*` headers of an accepted order, or Binance's 429 -1015 instead of it. */
export type OrderCountOutcome =
  | { type: 'ok'; headers: Record<string, string> }
  | { type: 'limited'; status: 429; body: { code: number; msg: string } };

/**
 * The ORDERS counters of every account, in fixed windows of the wall clock. An order that would
 * pass a window's limit is refused with 429 / -1015 and not counted; Binance sends no Retry-After
 * with it (its docs: the unfilled-order-count 429 comes without one).
 */
export class OrderCounts {
  private readonly accounts = new Map<string, { start: number[]; count: number[] }>();

  constructor(private readonly windows: readonly OrderWindow[]) {}

  /** Counts `orders` new orders of `apiKey` at wall time `now` (an OCO list is 2), or refuses them. */
  count(apiKey: string, now: number, orders = 1): OrderCountOutcome {
    let a = this.accounts.get(apiKey);
    if (a === undefined) {
      a = { start: this.windows.map(() => 0), count: this.windows.map(() => 0) };
      this.accounts.set(apiKey, a);
    }
    for (const [i, w] of this.windows.entries()) {
      const start = Math.floor(now / w.ms) * w.ms;
      if (a.start[i] !== start) {
        a.start[i] = start;
        a.count[i] = 0;
      }
    }
    const over = this.windows.find((w, i) => (a.count[i] ?? 0) + orders > w.limit);
    if (over !== undefined)
      return {
        type: 'limited',
        status: 429,
        body: { code: -1015, msg: `Too many new orders; current limit is ${over.limit} orders per ${over.interval}.` },
      };
    const headers: Record<string, string> = {};
    for (const [i, w] of this.windows.entries()) {
      a.count[i] = (a.count[i] ?? 0) + orders;
      headers[`x-mbx-order-count-${w.name}`] = String(a.count[i]);
    }
    return { type: 'ok', headers };
  }
}
