/**
 * Binance's REST limits on one IP: REQUEST_WEIGHT in fixed 1-minute windows of the wall clock
 * (429 / -1003 over it, a 418 ban after `banAfter` more requests while limited), and the ORDERS
 * counters reported in headers (counted, not enforced).
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

export class RequestWeight {
  private windowStart = 0;
  private used = 0;
  private strikes = 0;
  private bannedUntil = 0;
  private orders10s = 0;
  private orders10sStart = 0;
  private ordersDay = 0;

  constructor(private readonly opts: RateLimitOptions) {}

  get weightPerMinute(): number {
    return this.opts.weightPerMinute;
  }

  /**
   * Charges a request's weight at wall time `now` (before it is checked, as on Binance).
   * `stormed` is asked only when the IP is not banned: it says a fault answers this one with 429.
   */
  charge(now: number, weight: number, isOrder: boolean, stormed: () => boolean): WeightOutcome {
    if (now < this.bannedUntil) return this.banned(now);
    if (stormed()) return this.tooMany(now);
    this.rollWindow(now);
    this.used += weight;
    if (this.used > this.opts.weightPerMinute) {
      this.strikes += 1;
      if (this.strikes > this.opts.banAfter) {
        this.bannedUntil = now + this.opts.banMs;
        return this.banned(now);
      }
      return this.tooMany(now);
    }
    const headers: Record<string, string> = {
      'x-mbx-used-weight': String(this.used),
      'x-mbx-used-weight-1m': String(this.used),
    };
    if (isOrder) {
      if (now - this.orders10sStart >= 10_000) {
        this.orders10sStart = Math.floor(now / 10_000) * 10_000;
        this.orders10s = 0;
      }
      this.orders10s += 1;
      this.ordersDay += 1;
      headers['x-mbx-order-count-10s'] = String(this.orders10s);
      headers['x-mbx-order-count-1d'] = String(this.ordersDay);
    }
    return { type: 'ok', headers };
  }

  private tooMany(now: number): WeightOutcome {
    const retryAfter = Math.ceil((this.windowStart + 60_000 - now) / 1000);
    return {
      type: 'limited',
      status: 429,
      body: {
        code: -1003,
        msg: `Too much request weight used; current limit is ${this.opts.weightPerMinute} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.`,
      },
      headers: { 'retry-after': String(Math.max(1, retryAfter)), 'x-mbx-used-weight-1m': String(this.used) },
    };
  }

  private banned(now: number): WeightOutcome {
    const retryAfter = Math.ceil((this.bannedUntil - now) / 1000);
    return {
      type: 'limited',
      status: 418,
      body: {
        code: -1003,
        msg: `Way too much request weight used; IP banned until ${this.bannedUntil}. Please use WebSocket Streams for live updates to avoid bans.`,
      },
      headers: { 'retry-after': String(Math.max(1, retryAfter)) },
    };
  }

  private rollWindow(now: number): void {
    const minute = Math.floor(now / 60_000) * 60_000;
    if (minute !== this.windowStart) {
      this.windowStart = minute;
      this.used = 0;
      this.strikes = 0;
    }
  }
}
