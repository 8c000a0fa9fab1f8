/**
 * A budget the exchange counts in fixed windows of its clock, shared with others the gateway does
 * not see: the request weight of the IP this process sends from (Binance: per wall-clock minute,
 * shared by every bot and program on the machine), or the new orders of the account (Binance:
 * per 10 s and per day on spot, per 10 s and per minute on USDⓈ-M, shared by every bot, script and
 * person trading it). Each gateway counts what it sends itself, and raises its count to the
 * exchange's own reading (a header of every REST answer: `X-MBX-USED-WEIGHT-1M`, or
 * `X-MBX-ORDER-COUNT-10S` on an order's answer), which includes what everyone else sent; it never
 * lowers it.
 */
export interface WindowSpec {
  /** What one window allows (Keel's share: a margin under the exchange's limit). */
  readonly limit: number;
  /** The exchange's limit itself, for messages (Binance spot 6,000 weight or 100 orders per 10 s). */
  readonly published: number;
  readonly windowMs: number;
  /** The response header that carries the exchange's count of the current window (any case). */
  readonly header: string;
}

/** A window that made a request wait for the next one: reported once per window. */
export interface WindowFull {
  /** The count of the window: this gateway's, or the exchange's reading if higher. */
  readonly used: number;
  readonly limit: number;
  readonly published: number;
  readonly windowMs: number;
  /** When requests go again (the next window's start, or the end of a pause). */
  readonly resumeAt: number;
}

export class WeightWindow {
  private start = Number.NaN;
  private used = 0;
  private pausedUntil = 0;
  private reportedFull = Number.NaN;

  constructor(
    readonly spec: WindowSpec,
    private readonly onFull: (e: WindowFull) => void = () => {},
  ) {
    if (!(spec.limit > 0) || !(spec.windowMs > 0))
      throw new Error(`Invalid weight window: limit and windowMs must be > 0, got ${spec.limit} and ${spec.windowMs}`);
  }

  /** The count of the window that holds `now`: this process's, or the exchange's reading if higher. */
  usedAt(now: number): number {
    this.roll(now);
    return this.used;
  }

  /**
   * How long a request of `weight` must wait at `now` (0: it may go). `reserve`: it may use the
   * margin under the exchange's limit too (orders and cancels: reads stop at `limit`, which keeps
   * that margin for them). A request heavier than a whole window goes when the window is empty,
   * rather than never.
   */
  waitMs(weight: number, now: number, reserve = false): number {
    if (now < this.pausedUntil) return this.pausedUntil - now;
    this.roll(now);
    const limit = reserve ? this.spec.published : this.spec.limit;
    if (this.used + weight <= limit || this.used === 0) return 0;
    const resumeAt = this.start + this.spec.windowMs;
    if (this.reportedFull !== this.start) {
      this.reportedFull = this.start;
      const { limit, published, windowMs } = this.spec;
      this.onFull({ used: this.used, limit, published, windowMs, resumeAt });
    }
    return resumeAt - now;
  }

  take(weight: number, now: number): void {
    this.roll(now);
    this.used += weight;
  }

  /**
   * The exchange's reading of the window's count, taken at `serverTime` (its Date header; the
   * local `now` when it sent none). A reading of another window than the current one (a response
   * that crossed the boundary, or a clock a second apart) is ignored; within the window the count
   * becomes the larger of the two. Concurrent answers arrive in any order: a lower reading is an
   * older one, never a reason to send more.
   */
  observe(used: number, serverTime: number | undefined, now: number): void {
    this.roll(now);
    const at = serverTime ?? now;
    if (Math.floor(at / this.spec.windowMs) * this.spec.windowMs !== this.start) return;
    if (used > this.used) this.used = used;
  }

  /**
   * No request that passes this window goes before `untilMs`: a 429 for the IP's weight (every
   * class), or for the account's orders (-1015: new orders only).
   */
  pause(untilMs: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, untilMs);
  }

  private roll(now: number): void {
    const start = Math.floor(now / this.spec.windowMs) * this.spec.windowMs;
    if (start !== this.start) {
      this.start = start;
      this.used = 0;
    }
  }
}

/** A header's value by name, whatever its case (ccxt capitalises names: `X-Mbx-Used-Weight-1m`). */
export function headerValue(headers: Readonly<Record<string, unknown>> | undefined, name: string): string | undefined {
  if (!headers) return undefined;
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== want || v === undefined || v === null) continue;
    return Array.isArray(v) ? String(v[0]) : String(v);
  }
  return undefined;
}

/** What one REST answer says of a window: the exchange's count in `header` and its server time. */
export function windowReading(
  headers: Readonly<Record<string, unknown>> | undefined,
  header: string,
): { readonly used: number; readonly serverTime: number | undefined } | undefined {
  const used = Number(headerValue(headers, header) ?? Number.NaN);
  if (!Number.isFinite(used) || used < 0) return undefined;
  const date = Date.parse(headerValue(headers, 'date') ?? '');
  return { used, serverTime: Number.isFinite(date) ? date : undefined };
}
