import {
  assertNever,
  checkFilters,
  formatToStep,
  type Instrument,
  type OrderRequest,
  type Rng,
  roundAmount,
  roundPrice,
  SeededRng,
  validateOrderRequest,
} from '@keel/core';
import type { Exchange, MarketInterface, OHLCV, Order, Trade } from 'ccxt';
import { signBinancePrivatePost } from './binance-sign.ts';
import { type BreakerOptions, CircuitBreaker, DEFAULT_BREAKER } from './breaker.ts';
import { ccxtUndeclared } from './client.ts';
import { CLIENT_ORDER_ID_RE } from './client-id.ts';
import { classifyError, ENDPOINT_CLASSES, type EndpointClass, KeelExchangeError, retryAfterMs } from './errors.ts';
import { toInstrument } from './instrument.ts';
import { exchangeLimits, type LimiterSpec, type Priority, RateLimiter } from './limiter.ts';
import { type ExchangeOrder, fromCcxtOrder } from './normalize.ts';
import { DEFAULT_RETRY, type RetryPolicy, retryDelayMs, withRetry } from './retry.ts';
import { balanceRows, type CacheAnswer, type CachedTicker, type StreamCache } from './stream-cache.ts';
import { systemTimer, type Timer } from './timer.ts';
import { type WindowFull, windowReading } from './weight-window.ts';

/** `retry: false`: one request, no retry (the caller owns the retries). */
const ONE_ATTEMPT: RetryPolicy = { maxAttempts: 1, baseMs: 0, maxMs: 0 };
/** A lookup inside `createOnce`, whose budget counts it. */
const ONCE: CallOptions = { retry: false };
/** Refusals made here, before anything was sent, that say when to come back: never retried inside a call. */
const FAIL_FAST = new Set(['CircuitOpen', 'IpBanned']);
/** Binance's -1015 TOO_MANY_ORDERS in an error's message (ccxt puts the response body there). */
const ORDER_COUNT_RE = /"code"\s*:\s*-1015\b/;
/** The shortest ban Binance gives (2 minutes), for a 418 that names no Retry-After. */
const DEFAULT_BAN_MS = 120_000;

/** The ccxt surface the gateway uses (a ccxt.pro exchange instance satisfies it). */
export type CcxtClient = Exchange;

/** Binance spot request weights of the calls the gateway makes (per the API docs). */
export const BINANCE_WEIGHTS: Readonly<Record<string, number>> = {
  loadMarkets: 20,
  createOrder: 1,
  cancelOrder: 1,
  fetchOrder: 4,
  fetchOpenOrders: 6,
  fetchOpenOrdersAll: 80,
  fetchClosedOrders: 20,
  fetchMyTrades: 20,
  fetchBalance: 20,
  fetchOHLCV: 2,
  fetchTicker: 2,
};

/**
 * Binance USDⓈ-M request weights of the same calls (its API docs): klines are 5 up to 1,000 rows
 * (the most the gateway asks for), open orders 1 for a symbol and 40 for all; a new order weighs
 * nothing on the IP budget and counts in the ORDERS windows (the `orders` bucket).
 */
export const BINANCE_USDM_WEIGHTS: Readonly<Record<string, number>> = {
  loadMarkets: 1,
  createOrder: 1,
  cancelOrder: 1,
  fetchOrder: 1,
  fetchOpenOrders: 1,
  fetchOpenOrdersAll: 40,
  fetchClosedOrders: 5,
  fetchMyTrades: 5,
  fetchBalance: 5,
  fetchOHLCV: 5,
  fetchTicker: 1,
};

/** The weights of the exchange a ccxt client speaks to (its id), as `exchangeLimits` picks its budget. */
export function exchangeWeights(exchangeId: string | undefined): Readonly<Record<string, number>> {
  return exchangeId === 'binanceusdm' ? BINANCE_USDM_WEIGHTS : BINANCE_WEIGHTS;
}

export interface GatewayOptions {
  readonly timer?: Timer;
  /** Source of backoff jitter; default a SeededRng(seed). */
  readonly rng?: Rng;
  readonly seed?: number;
  readonly limits?: LimiterSpec;
  /** Breaker thresholds for every class ... */
  readonly breaker?: Partial<BreakerOptions>;
  /** ... and per class, on top (e.g. a more patient `market-data`). */
  readonly breakers?: Partial<Record<EndpointClass, Partial<BreakerOptions>>>;
  readonly retry?: Partial<RetryPolicy>;
  /**
   * Wait before looking up a create whose outcome is unknown, so that an order still in flight
   * inside the exchange has landed before we conclude it does not exist. Default 1000 ms.
   */
  readonly lookupDelayMs?: number;
  readonly weights?: Readonly<Record<string, number>>;
  /** Observability hook: retries, breaker refusals, lookups and resends. */
  readonly onEvent?: (e: GatewayEvent) => void;
}

/**
 * The largest difference between this machine's clock and the exchange's that re-syncing after an
 * InvalidNonce adopts for signing: an hour is far beyond any clock drift; a replaying exchange's
 * server time is months or years away.
 */
export const MAX_CLOCK_SKEW_MS = 3_600_000;

export type GatewayEvent =
  | {
      readonly type: 'retry';
      readonly endpoint: EndpointClass;
      readonly method: string;
      readonly attempt: number;
      readonly delayMs: number;
      readonly error: KeelExchangeError;
    }
  | { readonly type: 'breaker-open'; readonly endpoint: EndpointClass; readonly method: string }
  | {
      /**
       * The exchange turned a request away for this IP's request weight: 429 (every request waits
       * until `until`), or 418, an IP ban (no request is sent until `until`; each fails at once with
       * code `IpBanned`). Reported once per ban or pause, not per request.
       */
      readonly type: 'ip-limited';
      readonly status: 429 | 418;
      readonly until: number;
      readonly method: string;
      /** The exchange's own words (Binance's `msg`). */
      readonly message: string;
    }
  | ({
      /**
       * The IP's request weight this window (the exchange's reading, which counts every process on
       * the IP) leaves no room: requests wait for the next window. Reported once per window.
       */
      readonly type: 'ip-weight-full';
    } & WindowFull)
  | ({
      /**
       * The account's new orders this window (the exchange's reading, which counts every bot,
       * script and person trading the account) leave no room: new orders wait for the next window
       * (cancels do not). Reported once per window, whichever window it is (`windowMs`).
       */
      readonly type: 'order-count-full';
    } & WindowFull)
  | {
      /**
       * The exchange refused a new order for the account's order count (Binance 429 / -1015): new
       * orders wait until `until` (its Retry-After, or the end of the window it names), cancels
       * do not. Reported once per pause.
       */
      readonly type: 'orders-limited';
      readonly until: number;
      readonly method: string;
      /** The exchange's own words (Binance's `msg`). */
      readonly message: string;
    }
  | { readonly type: 'create-in-doubt'; readonly clientOrderId: string; readonly error: KeelExchangeError }
  | { readonly type: 'lookup'; readonly clientOrderId: string; readonly found: boolean }
  | { readonly type: 'resend'; readonly clientOrderId: string; readonly send: number }
  | {
      /** REST failed and the answer came from the WebSocket cache (docs/exchange.md). */
      readonly type: 'served-from-cache';
      readonly what: CachedRead;
      readonly method: string;
      readonly ageMs: number;
      readonly restError: KeelExchangeError;
    }
  | {
      /**
       * After an InvalidNonce the exchange's clock was read to re-sync signing, and found further
       * from this machine's than any clock drift (`MAX_CLOCK_SKEW_MS`): a replaying exchange (keel
       * exchange-sim), whose server time is the replay's. Not adopted: signing keeps this
       * machine's clock, with the offset it had.
       */
      readonly type: 'clock-skew-ignored';
      readonly differenceMs: number;
    }
  | {
      /** REST failed and the WebSocket cache could not safely stand in: the caller gets an error. */
      readonly type: 'cache-refused';
      readonly what: CachedRead;
      readonly method: string;
      readonly reason: string;
      readonly restError: KeelExchangeError;
    };

export type CachedRead = 'balance' | 'order' | 'open-orders' | 'ticker';

/**
 * A read that may have been answered from the WebSocket cache. `source: 'stream'` means REST
 * failed (`restError`) and the value is what the streams said, last confirmed at `asOf`.
 */
export interface Served<T> {
  readonly value: T;
  readonly source: 'rest' | 'stream';
  /** When the value was last known to be the exchange's (REST request time, or last stream message). */
  readonly asOf: number;
  readonly restError?: KeelExchangeError;
}

/** Binance's OCO endpoint, an implicit method of ccxt's binance class. */
interface OcoClient {
  privatePostOrderListOco(params: Record<string, unknown>): Promise<unknown>;
}

/** ccxt's raw call to Binance's POST /api/v3/order. */
interface BinanceOrderClient {
  privatePostOrder(params: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/** ccxt's HTTP layer under its implicit methods (what its fetch2 calls after sign). */
interface BinanceHttp {
  readonly id: string;
  nonce(): number;
  fetch(url: string, method: string, headers: Record<string, string>, body: string): Promise<unknown>;
  setLastRestRequestTimestamp?(): void;
  setLastRequest?(request: unknown): void;
}

/** What the gateway sends for an OrderRequest after rounding to tick and step. */
export interface PreparedOrder {
  readonly clientOrderId: string;
  readonly symbol: string;
  readonly ccxtType: 'market' | 'limit';
  readonly side: 'buy' | 'sell';
  readonly amount: number;
  readonly price: number | undefined;
  readonly params: Readonly<Record<string, unknown>>;
}

export type PrepareResult =
  | { readonly ok: true; readonly order: PreparedOrder }
  | { readonly ok: false; readonly rule: string; readonly reason: string };

/**
 * The outcome of an exactly-once create. Every kind is an expected outcome (a value, not a throw):
 * - placed: the exchange has the order (from its response, or found by client id after a doubt);
 * - rejected: the exchange (or our filter check, `rule` set) refused it; nothing is open;
 * - unavailable: nothing reached the exchange's books (circuit open, or every send turned away:
 *   transient, rate-limited, or in doubt and then not found); safe to send later with the same id;
 * - in-doubt: a send may have landed and no lookup could tell; reconcile by client id later,
 *   never resend blindly.
 */
export type PlaceOutcome =
  | {
      readonly kind: 'placed';
      readonly order: ExchangeOrder;
      /** `stream`: REST could not look it up, but the user stream has reported the order (it exists). */
      readonly via: 'response' | 'lookup' | 'stream';
      readonly sends: number;
    }
  | {
      readonly kind: 'rejected';
      readonly reason: string;
      readonly rule?: string;
      readonly error?: KeelExchangeError;
      readonly sends: number;
    }
  | { readonly kind: 'unavailable'; readonly reason: string; readonly error: KeelExchangeError; readonly sends: number }
  | { readonly kind: 'in-doubt'; readonly reason: string; readonly error: KeelExchangeError; readonly sends: number };

export interface CreateOptions {
  /** The decision price: stands in for a market order's price in the min-notional check. */
  readonly refPrice?: number;
  /**
   * This client id may already be on the exchange (it was sent before a restart): it is looked up
   * before the first send, and sent only if the exchange does not know it.
   */
  readonly mayExist?: boolean;
  /**
   * Aborted when the order is no longer wanted (its signal has gone stale): no request leaves
   * after that, neither the first send nor a resend after a doubt, and the create ends
   * `rejected` (code `NotSent`). A send already made is still resolved by lookup.
   */
  readonly signal?: AbortSignal;
}

export type CancelOutcome =
  | { readonly kind: 'cancelled'; readonly order: ExchangeOrder | undefined }
  | { readonly kind: 'not-found'; readonly order: ExchangeOrder | undefined };

/** A create whose order is no longer wanted: refused here, before any request leaves. */
function notWanted(signal: AbortSignal): KeelExchangeError {
  const why = signal.reason instanceof Error ? signal.reason.message : String(signal.reason ?? 'aborted');
  return new KeelExchangeError({ kind: 'rejected', endpoint: 'orders', code: 'NotSent', message: `not sent: ${why}` });
}

export interface CallOptions {
  readonly priority?: Priority;
  readonly weight?: number;
  /** Retry under the gateway's policy (default true); false: one request, the caller owns the retries. */
  readonly retry?: boolean;
}

/**
 * How often this gateway met the exchange's shared budgets (for a session report): windows in
 * which requests waited for the IP's weight or new orders for the account's order count, and the
 * exchange's refusals (429 for the IP, 418 bans, 429 -1015 for the account's orders).
 */
export interface BudgetCounts {
  readonly ipWeightFull: number;
  readonly ipLimited: number;
  readonly orderCountFull: number;
  readonly ordersLimited: number;
}

export interface BalanceRow {
  readonly asset: string;
  readonly free: number;
  readonly used: number;
  readonly total: number;
}

/**
 * One ccxt client per exchange account, behind rate limiting, retries, circuit breakers and error
 * mapping. Markets load once and are cached. Every order passes tick/step rounding and the
 * exchange's filters before it is sent.
 */
export class ExchangeGateway {
  readonly timer: Timer;
  readonly limiter: RateLimiter;
  readonly breakers: Readonly<Record<EndpointClass, CircuitBreaker>>;
  private readonly rng: Rng;
  private readonly retry: RetryPolicy;
  private readonly weights: Readonly<Record<string, number>>;
  private readonly lookupDelayMs: number;
  private readonly onEvent: (e: GatewayEvent) => void;
  private marketsP: Promise<void> | undefined;
  private readonly instruments = new Map<string, Instrument>();
  /** Sends per client order id (the last 10 000 ids), for tests and diagnostics. */
  readonly sends = new Map<string, number>();
  private cache: StreamCache | undefined;
  /** An IP ban (HTTP 418) in force until then: nothing is sent before it. */
  private bannedUntil = 0;
  /** Until when the last 429 for the IP's weight paused every request (reported once per pause). */
  private pausedUntil = 0;
  private banMessage = '';
  /** Until when the last 429 -1015 holds new orders (reported once per pause). */
  private ordersPausedUntil = 0;
  private readonly budget = { ipWeightFull: 0, ipLimited: 0, orderCountFull: 0, ordersLimited: 0 };

  constructor(
    readonly client: CcxtClient,
    opts: GatewayOptions = {},
  ) {
    this.timer = opts.timer ?? systemTimer;
    this.rng = opts.rng ?? new SeededRng(opts.seed ?? 1);
    this.retry = { ...DEFAULT_RETRY, ...opts.retry };
    this.weights = { ...exchangeWeights(client.id), ...opts.weights };
    this.lookupDelayMs = opts.lookupDelayMs ?? 1000;
    this.onEvent = opts.onEvent ?? (() => {});
    // The budget of the market the client trades: Binance spot's and USDⓈ-M's differ.
    this.limiter = new RateLimiter(opts.limits ?? exchangeLimits(client.id), this.timer, (which, e) => {
      if (which === 'ip-weight') this.budget.ipWeightFull++;
      else this.budget.orderCountFull++;
      this.onEvent({ type: which === 'ip-weight' ? 'ip-weight-full' : 'order-count-full', ...e });
    });
    this.breakers = Object.fromEntries(
      ENDPOINT_CLASSES.map((c) => [
        c,
        new CircuitBreaker({ ...DEFAULT_BREAKER, ...opts.breaker, ...opts.breakers?.[c] }, this.timer),
      ]),
    ) as Record<EndpointClass, CircuitBreaker>;
    // Retry-After is read from the last response's headers.
    (client as { enableLastResponseHeaders?: boolean }).enableLastResponseHeaders = true;
    this.watchResponses();
  }

  /** How often this gateway met the exchange's shared budgets so far (`BudgetCounts`). */
  budgetCounts(): BudgetCounts {
    return { ...this.budget };
  }

  /**
   * Reads every REST answer's headers as it arrives, through ccxt's per-response hook
   * (`onRestResponse`, called with that response's status and headers before its body is parsed
   * or its error thrown): `last_response_headers` is the last answer of any concurrent request,
   * this is each one's own. What it reads: the IP's used weight and the account's order counts
   * (each window takes its reading, never lowered), a 429 for the IP's weight (every class pauses
   * until Retry-After), a 429 -1015 for the account's orders (new orders pause) and a 418 (the IP
   * is banned).
   */
  private watchResponses(): void {
    type Hook = (
      status: number,
      statusText: string,
      url: string,
      method: string,
      headers: Record<string, unknown>,
      body: string,
      ...rest: unknown[]
    ) => string;
    const c = ccxtUndeclared<{ onRestResponse?: Hook }>(this.client);
    const own = c.onRestResponse;
    if (typeof own !== 'function') return;
    c.onRestResponse = (status, statusText, url, method, headers, body, ...rest) => {
      this.onResponse(status, headers, body, `${method} ${url.replace(/\?.*$/, '')}`);
      return own.call(c, status, statusText, url, method, headers, body, ...rest);
    };
  }

  private onResponse(status: number, headers: Record<string, unknown>, body: string, request: string): void {
    const now = this.timer.now();
    for (const w of [this.limiter.window, ...this.limiter.orderWindows]) {
      const reading = w && windowReading(headers, w.spec.header);
      if (reading) w?.observe(reading.used, reading.serverTime, now);
    }
    if (status !== 418 && status !== 429) return;
    const code = /"code"\s*:\s*(-?\d+)/.exec(body)?.[1];
    const message = /"msg"\s*:\s*"([^"]*)"/.exec(body)?.[1] ?? (body.slice(0, 200) || `HTTP ${status}`);
    const ra = retryAfterMs(headers, now);
    if (code === '-1015') {
      this.ordersLimited(now, ra, message, request);
      return;
    }
    if (status === 418) {
      const until = now + (ra ?? DEFAULT_BAN_MS);
      if (until <= this.bannedUntil) return;
      // A new ban, or one the exchange made longer: said again. Each request's own 418 is not.
      const report = now >= this.bannedUntil || until > this.bannedUntil + 60_000;
      this.bannedUntil = until;
      this.banMessage = message;
      this.limiter.window?.pause(until);
      if (report) {
        this.budget.ipLimited++;
        this.onEvent({ type: 'ip-limited', status, until, method: request, message });
      }
      return;
    }
    // 429 for the IP's weight: every class of this IP waits, not only the one that asked.
    const until = now + (ra ?? Math.max(1_000, 60_000 - (now % 60_000)));
    this.limiter.window?.pause(until);
    if (until <= this.pausedUntil) return;
    const fresh = now >= this.pausedUntil;
    this.pausedUntil = until;
    if (fresh) {
      this.budget.ipLimited++;
      this.onEvent({ type: 'ip-limited', status, until, method: request, message });
    }
  }

  /**
   * A 429 -1015: the account's order count is over one of its windows (another user of the
   * account sent orders this gateway has not seen yet). New orders wait, cancels and reads do not:
   * until the Retry-After, or, as Binance sends none with it, the end of the window its message
   * names (`… orders per 10 SECOND`), or else of the shortest window.
   */
  private ordersLimited(now: number, ra: number | undefined, message: string, request: string): void {
    const windows = this.limiter.orderWindows;
    if (windows.length === 0) return;
    const named = /per\s+(\d+)\s+(SECOND|MINUTE|HOUR|DAY)/i.exec(message);
    const unit: Record<string, number> = { SECOND: 1_000, MINUTE: 60_000, HOUR: 3_600_000, DAY: 86_400_000 };
    const namedMs = named ? Number(named[1]) * (unit[(named[2] as string).toUpperCase()] ?? 0) : undefined;
    const ms =
      windows.find((w) => w.spec.windowMs === namedMs)?.spec.windowMs ??
      Math.min(...windows.map((w) => w.spec.windowMs));
    const until = now + (ra ?? Math.max(1_000, ms - (now % ms)));
    for (const w of windows) w.pause(until);
    if (until <= this.ordersPausedUntil) return;
    const fresh = now >= this.ordersPausedUntil;
    this.ordersPausedUntil = until;
    if (fresh) {
      this.budget.ordersLimited++;
      this.onEvent({ type: 'orders-limited', until, method: request, message });
    }
  }

  /** The refusal of a request made while the IP is banned: nothing is sent. */
  private banned(endpoint: EndpointClass, method: string): KeelExchangeError {
    const now = this.timer.now();
    return new KeelExchangeError({
      kind: 'rate-limited',
      endpoint,
      code: 'IpBanned',
      message: `${endpoint}: ${method} not sent: ${this.client.id} has banned this IP (HTTP 418) until ${new Date(this.bannedUntil).toISOString()} (${Math.ceil((this.bannedUntil - now) / 1000)} s from now): ${this.banMessage}`,
      retryAfterMs: this.bannedUntil - now,
    });
  }

  /** Called by a StreamCache built on this gateway: REST answers feed it, `read*` fall back to it. */
  useStreamCache(cache: StreamCache): void {
    this.cache = cache;
  }

  /**
   * Runs one ccxt call through the limiter and the breaker of its class, under the retry policy
   * (`withRetry`): failures become KeelExchangeErrors; transient, rate-limited and in-doubt ones
   * are retried with backoff (calls through here are idempotent: reads, cancels by client id;
   * creates go through `createOnce`). A stale timestamp (InvalidNonce) re-syncs the clock and is
   * sent once more. An open breaker fails fast.
   */
  call<T>(endpoint: EndpointClass, method: string, fn: () => Promise<T>, opts: CallOptions = {}): Promise<T> {
    return withRetry(() => this.once(endpoint, method, fn, opts), opts.retry === false ? ONE_ATTEMPT : this.retry, {
      rng: this.rng,
      sleep: (ms) => this.timer.sleep(ms),
      classify: (e) => (e instanceof KeelExchangeError ? e : classifyError(e, endpoint)),
      // An open breaker, a ban: not retried here; each says when requests may go again.
      retryable: (e) => e.retryable && !FAIL_FAST.has(e.code),
      cure: (e) => this.cureClock(e),
      onRetry: (attempt, delayMs, error) => {
        if (error.kind === 'rate-limited' && error.retryAfterMs !== undefined) {
          this.limiter.pause(endpoint, this.timer.now() + error.retryAfterMs);
        }
        this.onEvent({ type: 'retry', endpoint, method, attempt, delayMs, error });
      },
    });
  }

  /**
   * One request: the breaker, the limiter, the call; any failure classified and counted by the
   * breaker. A create says how many new orders it places (`orders`, the account's order-count
   * windows) and when it is no longer wanted (`signal`: it leaves the limiter's queue at once and
   * fails `NotSent`).
   */
  private async once<T>(
    endpoint: EndpointClass,
    method: string,
    fn: () => Promise<T>,
    opts: CallOptions & { readonly orders?: number; readonly signal?: AbortSignal | undefined },
  ): Promise<T> {
    if (this.timer.now() < this.bannedUntil) throw this.banned(endpoint, method);
    const breaker = this.breakers[endpoint];
    if (!breaker.tryPass()) {
      this.onEvent({ type: 'breaker-open', endpoint, method });
      throw new KeelExchangeError({
        kind: 'transient',
        endpoint,
        code: 'CircuitOpen',
        message: `${endpoint}: circuit open after repeated failures; ${method} not sent (next probe at ${new Date(breaker.retryAt).toISOString()})`,
      });
    }
    const orders = opts.orders ?? 0;
    try {
      await this.limiter.acquire(endpoint, opts.weight ?? this.weights[method] ?? 1, opts.priority ?? 'normal', {
        orders,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
    } catch (e) {
      breaker.release();
      if (opts.signal?.aborted) throw notWanted(opts.signal);
      throw e;
    }
    // A ban that came while this one waited in the limiter.
    if (this.timer.now() < this.bannedUntil) {
      breaker.release();
      this.limiter.answered(orders);
      throw this.banned(endpoint, method);
    }
    try {
      const r = await fn();
      breaker.success();
      return r;
    } catch (e) {
      const err = classifyError(e, endpoint, {
        headers: (this.client as { last_response_headers?: Record<string, unknown> }).last_response_headers,
        now: this.timer.now(),
      });
      if (err.retryable) breaker.failure();
      else breaker.success(); // the exchange answered: the service is up
      // The answer was the ban itself (418), or a 429 that came with it: never retried into it.
      if (err.kind === 'rate-limited' && this.timer.now() < this.bannedUntil) throw this.banned(endpoint, method);
      throw err;
    } finally {
      this.limiter.answered(orders);
    }
  }

  /**
   * Binance refuses a request whose timestamp is outside recvWindow (-1021, ccxt's InvalidNonce)
   * before executing it: after re-syncing the clock it may be sent once more. True when it may.
   */
  private async cureClock(err: KeelExchangeError): Promise<boolean> {
    if (err.code !== 'InvalidNonce') return false;
    await this.resyncClock();
    return true;
  }

  private async resyncClock(): Promise<void> {
    const c = this.client as { loadTimeDifference?: () => Promise<unknown>; options?: { timeDifference?: number } };
    const before = c.options?.timeDifference;
    try {
      await c.loadTimeDifference?.();
    } catch {
      // The resend will be refused again and reported; a failed resync adds nothing.
      return;
    }
    const after = c.options?.timeDifference;
    if (c.options && typeof after === 'number' && Math.abs(after) > MAX_CLOCK_SKEW_MS) {
      c.options.timeDifference = before ?? 0;
      this.onEvent({ type: 'clock-skew-ignored', differenceMs: after });
    }
  }

  // ------------------------------------------------------------------ markets

  /** Loads markets once (concurrent callers share the request); `reload` forces a refresh. */
  loadMarkets(reload = false): Promise<void> {
    if (reload || this.marketsP === undefined) {
      this.instruments.clear();
      const p = this.call('market-data', 'loadMarkets', () => this.client.loadMarkets(reload)).then(() => undefined);
      this.marketsP = p;
      p.catch(() => {
        if (this.marketsP === p) this.marketsP = undefined; // a failed load is retried by the next caller
      });
    }
    return this.marketsP;
  }

  /** The Instrument for a unified symbol (markets must be loaded). */
  instrument(symbol: string): Instrument {
    let inst = this.instruments.get(symbol);
    if (!inst) {
      const m = (this.client.markets as Record<string, MarketInterface> | undefined)?.[symbol];
      if (!m)
        throw new Error(
          `Unknown market ${symbol} on ${this.client.id}${this.client.markets ? '' : ' (markets not loaded)'}`,
        );
      inst = toInstrument(m, this.client.precisionMode);
      this.instruments.set(symbol, inst);
    }
    return inst;
  }

  // ------------------------------------------------------------------ orders

  /**
   * Rounds an order to the instrument's tick and step and checks the exchange filters. `refPrice`
   * (the decision price) stands in for the price of market orders in the min-notional check.
   */
  prepareOrder(req: OrderRequest, refPrice?: number): PrepareResult {
    const invalid = validateOrderRequest(req);
    if (invalid !== null) return { ok: false, rule: 'invalid-request', reason: invalid };
    if (!CLIENT_ORDER_ID_RE.test(req.id)) {
      return {
        ok: false,
        rule: 'invalid-client-id',
        reason: `client order id "${req.id}" does not match ${CLIENT_ORDER_ID_RE}`,
      };
    }
    let inst: Instrument;
    try {
      inst = this.instrument(req.symbol);
    } catch (e) {
      return { ok: false, rule: 'unknown-symbol', reason: (e as Error).message };
    }
    if (req.timeInForce === 'GTD')
      return {
        ok: false,
        rule: 'unsupported',
        reason: `timeInForce GTD is not supported on ${this.client.id} spot; the live venue sends GTD orders as GTC and cancels them at expireAt`,
      };
    const amount = roundAmount(inst, req.amount);
    const params: Record<string, unknown> = { clientOrderId: req.id };
    // Spot has no reduce-only flag (Binance spot would refuse an unknown parameter): there the
    // engine enforces it, clipping the order to the position before it is sent.
    if (req.reduceOnly && inst.kind !== 'spot') params['reduceOnly'] = true;
    let ccxtType: 'market' | 'limit';
    let price: number | undefined;
    let checkPrice = refPrice !== undefined && Number.isFinite(refPrice) ? refPrice : Number.POSITIVE_INFINITY;
    switch (req.type) {
      case 'market':
        ccxtType = 'market';
        break;
      case 'limit':
        ccxtType = 'limit';
        price = roundPrice(inst, req.price);
        break;
      case 'stop-market':
        ccxtType = 'market';
        params['triggerPrice'] = roundPrice(inst, req.stopPrice);
        checkPrice = params['triggerPrice'] as number;
        break;
      case 'stop-limit':
        ccxtType = 'limit';
        price = roundPrice(inst, req.price);
        params['triggerPrice'] = roundPrice(inst, req.stopPrice);
        break;
      case 'trailing-stop':
        return {
          ok: false,
          rule: 'unsupported',
          reason: `trailing-stop orders are not sent to ${this.client.id}; the live venue holds them and sends a market order when they trigger`,
        };
    }
    if (price !== undefined) checkPrice = price;
    if (ccxtType === 'limit') {
      // A post-only order rests on the book or is refused (IOC/FOK with it are denied by
      // validateOrderRequest): the exchange's own maker-only type (Binance LIMIT_MAKER), which
      // takes no timeInForce (Binance answers -1106 to one).
      if (req.postOnly) params['postOnly'] = true;
      else params['timeInForce'] = req.timeInForce;
    }
    const violation = checkFilters(inst, amount, checkPrice);
    if (violation) return { ok: false, rule: violation.rule, reason: violation.message };
    if (price !== undefined && !(price > 0))
      return { ok: false, rule: 'non-positive', reason: `price ${price} rounds to zero at tick ${inst.tickSize}` };
    return {
      ok: true,
      order: { clientOrderId: req.id, symbol: req.symbol, ccxtType, side: req.side, amount, price, params },
    };
  }

  /**
   * Places an order exactly once (`createOnce`): a create whose answer is lost is looked up by
   * client id (fetchOrder by origClientOrderId, then open orders) BEFORE any resend, and resent
   * with the SAME client id only when the exchange says it does not know it; one turned away
   * before execution is resent as it is; a refusal is final.
   */
  async createOrder(req: OrderRequest, opts: CreateOptions = {}): Promise<PlaceOutcome> {
    await this.loadMarkets();
    const prep = this.prepareOrder(req, opts.refPrice);
    if (!prep.ok) return { kind: 'rejected', rule: prep.rule, reason: prep.reason, sends: 0 };
    const o = prep.order;
    const direct = this.binanceSpotRequest(o);
    const send = direct
      ? async () => this.client.parseOrder(await this.postBinanceOrder(direct.request), direct.market)
      : () => this.client.createOrder(o.symbol, o.ccxtType, o.side, o.amount, o.price, { ...o.params });
    const out = await this.createOnce(
      [o.clientOrderId],
      'createOrder',
      async () => [fromCcxtOrder(await send())],
      async () => {
        const found = await this.lookupOrder(o.clientOrderId, o.symbol, {
          ...ONCE,
          trigger: o.params['triggerPrice'] !== undefined,
        });
        return found ? [found] : null;
      },
      opts.mayExist === true,
      opts.signal,
    );
    return out.kind === 'placed' ? { ...out, order: out.orders[0] as ExchangeOrder } : out;
  }

  /**
   * A Binance spot market or limit order as Binance's own request, for ccxt's raw
   * `privatePostOrder`; undefined for anything else (other exchanges, triggers, post-only), which goes
   * through ccxt's createOrder. Amount and price are already on step and tick, so the request is
   * a handful of fields; ccxt's generic createOrder spends more time than all of Keel's decision
   * on the live latency path (docs/live.md). The response is parsed by ccxt's own parseOrder,
   * as createOrder does, and a test holds the request equal to the one createOrder builds.
   */
  binanceSpotRequest(o: PreparedOrder): { request: Record<string, string>; market: MarketInterface } | undefined {
    if (this.client.id !== 'binance' || o.params['triggerPrice'] !== undefined || o.params['postOnly'] === true)
      return undefined;
    if (typeof (this.client as Partial<BinanceOrderClient>).privatePostOrder !== 'function') return undefined;
    const market = this.client.market(o.symbol);
    if (market.spot !== true) return undefined;
    const inst = this.instrument(o.symbol);
    const type = o.ccxtType === 'market' ? 'MARKET' : 'LIMIT';
    const respTypes = (this.client.options as { newOrderRespType?: Record<string, string> } | undefined)
      ?.newOrderRespType;
    const request: Record<string, string> = {
      symbol: market.id as string,
      side: o.side === 'buy' ? 'BUY' : 'SELL',
      newClientOrderId: o.clientOrderId,
      newOrderRespType: respTypes?.[o.ccxtType] ?? 'FULL',
      type,
      quantity: formatToStep(o.amount, inst.stepSize),
    };
    if (o.price !== undefined) request['price'] = formatToStep(o.price, inst.tickSize);
    if (type === 'LIMIT') request['timeInForce'] = String(o.params['timeInForce'] ?? 'GTC');
    return { request, market };
  }

  /**
   * Sends Binance's POST /api/v3/order: signed by Keel (`signBinancePrivatePost`, byte-equal to
   * ccxt's sign) and handed to ccxt's HTTP layer (`fetch`: its headers, proxies, response parsing
   * and error mapping stay ccxt's); through ccxt's raw `privatePostOrder` when ccxt must sign.
   */
  private async postBinanceOrder(request: Record<string, string>): Promise<Record<string, unknown>> {
    const c = ccxtUndeclared<BinanceOrderClient & BinanceHttp>(this.client);
    const signed = signBinancePrivatePost(c, 'order', request);
    if (signed === undefined) return c.privatePostOrder(request);
    // As ccxt's fetch2 does before its fetch (ccxt reads both for its last-request accessors).
    c.setLastRestRequestTimestamp?.();
    c.setLastRequest?.(signed);
    return (await c.fetch(signed.url, signed.method, signed.headers, signed.body)) as Record<string, unknown>;
  }

  /** True when the exchange takes a one-cancels-other pair as one native order list. */
  get nativeOco(): boolean {
    return (
      this.client.id === 'binance' && typeof (this.client as Partial<OcoClient>).privatePostOrderListOco === 'function'
    );
  }

  /**
   * Places two exits as one native OCO order list (Binance spot: a limit-maker take-profit and a
   * stop-loss for one quantity, locked once; the exchange expires one leg when the other triggers
   * or fills, and cancels both when either is cancelled). Same exactly-once rules as `createOrder`:
   * a create in doubt is resolved by looking the legs up by client id, never by sending again
   * blindly. `rejected` with rule `oco-shape` means the pair is not one the exchange lists natively
   * (the caller emulates it).
   */
  async createOco(
    a: OrderRequest,
    b: OrderRequest,
    opts: CreateOptions = {},
  ): Promise<PlaceOutcome & { readonly orders?: readonly ExchangeOrder[] }> {
    await this.loadMarkets();
    const shape = this.ocoShape(a, b);
    if (!shape.ok) return { kind: 'rejected', rule: shape.rule, reason: shape.reason, sends: 0 };
    const [limitReq, stopReq] = shape.legs;
    const limit = this.prepareOrder(limitReq, opts.refPrice);
    if (!limit.ok) return { kind: 'rejected', rule: limit.rule, reason: limit.reason, sends: 0 };
    const stop = this.prepareOrder(stopReq, opts.refPrice);
    if (!stop.ok) return { kind: 'rejected', rule: stop.rule, reason: stop.reason, sends: 0 };
    const L = limit.order;
    const S = stop.order;
    const market = this.client.market(L.symbol);
    const fmtPrice = (x: number) => this.client.priceToPrecision(L.symbol, x);
    const limitAt = L.side === 'sell' ? 'above' : 'below';
    const stopAt = L.side === 'sell' ? 'below' : 'above';
    const request: Record<string, unknown> = {
      symbol: market.id,
      side: L.side.toUpperCase(),
      quantity: this.client.amountToPrecision(L.symbol, L.amount),
      listClientOrderId: `${L.clientOrderId.slice(0, 31)}-list`,
      [`${limitAt}Type`]: 'LIMIT_MAKER',
      [`${limitAt}Price`]: fmtPrice(L.price as number),
      [`${limitAt}ClientOrderId`]: L.clientOrderId,
      [`${stopAt}Type`]: S.price === undefined ? 'STOP_LOSS' : 'STOP_LOSS_LIMIT',
      [`${stopAt}StopPrice`]: fmtPrice(S.params['triggerPrice'] as number),
      [`${stopAt}ClientOrderId`]: S.clientOrderId,
      ...(S.price === undefined ? {} : { [`${stopAt}Price`]: fmtPrice(S.price), [`${stopAt}TimeInForce`]: 'GTC' }),
    };
    const client = ccxtUndeclared<OcoClient>(this.client);
    const out = await this.createOnce(
      [L.clientOrderId, S.clientOrderId],
      'createOco',
      async () => {
        const r = (await client.privatePostOrderListOco(request)) as { orderReports?: unknown[] };
        return (r.orderReports ?? []).map((x) =>
          fromCcxtOrder(this.client.parseOrder(x as Record<string, unknown>, market)),
        );
      },
      async () => {
        const l = await this.lookupOrder(L.clientOrderId, L.symbol, ONCE);
        if (!l) return null;
        const st = await this.lookupOrder(S.clientOrderId, S.symbol, ONCE);
        if (!st)
          throw new KeelExchangeError({
            kind: 'in-doubt',
            endpoint: 'queries',
            message: `OCO leg ${S.clientOrderId} not found although ${L.clientOrderId} is`,
          });
        return [l, st];
      },
      opts.mayExist === true,
      opts.signal,
    );
    if (out.kind !== 'placed') return out;
    // The legs in the caller's order (a, b), whatever order the exchange reports them in.
    const byId = new Map(out.orders.map((x) => [x.clientOrderId, x]));
    const orders = [byId.get(a.id), byId.get(b.id)].filter((x): x is ExchangeOrder => x !== undefined);
    return { kind: 'placed', order: orders[0] as ExchangeOrder, orders, via: out.via, sends: out.sends };
  }

  /** A pair the exchange lists natively: same symbol, side and amount; one limit, one stop. */
  private ocoShape(
    a: OrderRequest,
    b: OrderRequest,
  ):
    | { readonly ok: true; readonly legs: readonly [OrderRequest, OrderRequest] }
    | { readonly ok: false; readonly rule: string; readonly reason: string } {
    const no = (reason: string) => ({ ok: false as const, rule: 'oco-shape', reason });
    if (!this.nativeOco) return no(`${this.client.id} has no native OCO order lists`);
    if (a.symbol !== b.symbol || a.side !== b.side || a.amount !== b.amount)
      return no('OCO legs differ in symbol, side or amount');
    const isStop = (r: OrderRequest) => r.type === 'stop-market' || r.type === 'stop-limit';
    const limit = a.type === 'limit' ? a : b.type === 'limit' ? b : undefined;
    const stop = isStop(a) ? a : isStop(b) ? b : undefined;
    if (!limit || !stop) return no('an OCO list is one limit and one stop order');
    if (limit.timeInForce !== 'GTC' || stop.timeInForce !== 'GTC') return no('OCO legs must be GTC');
    return { ok: true, legs: [limit, stop] };
  }

  /**
   * The exactly-once loop shared by every create, and the whole retry budget of a create: at most
   * `retry.maxAttempts` failed requests, sends and lookups together, each followed by a backoff
   * (`retryDelayMs`). What follows a failed send depends on its kind alone:
   * - transient or rate-limited: turned away before it was executed; sent again with the same
   *   ids, without a lookup (not before Retry-After);
   * - in doubt (a lost response), or refused as a duplicate id: looked up by client id before
   *   anything else (after `lookupDelayMs`, so a request still inside the exchange can land).
   *   Found: placed. The exchange does not know it: sent again with the same ids. A duplicate
   *   the lookup cannot find is never resent;
   * - rejected or not-found: the exchange's answer, final. A stale timestamp (InvalidNonce) first
   *   re-syncs the clock and is sent once more (`cureClock`); a second refusal is final;
   * - auth or fatal: thrown.
   * A lookup here is one request with no retries of its own: no retry loop runs inside this one.
   * `mayExist` (an id from before a restart) starts with the lookup, as after a lost answer.
   * Out of budget: `in-doubt` if a send is still unresolved, else `unavailable` (nothing landed).
   */
  private async createOnce(
    ids: readonly string[],
    method: string,
    send: () => Promise<ExchangeOrder[]>,
    lookup: () => Promise<ExchangeOrder[] | null>,
    mayExist: boolean,
    signal?: AbortSignal,
  ): Promise<
    | {
        readonly kind: 'placed';
        readonly orders: readonly ExchangeOrder[];
        readonly via: 'response' | 'lookup' | 'stream';
        readonly sends: number;
      }
    | Exclude<PlaceOutcome, { kind: 'placed' }>
  > {
    const id = ids[0] as string;
    let sends = 0;
    let failures = 0;
    let cured = false;
    /** The send that may have landed and that no lookup has resolved yet (one before a restart, too). */
    let doubt: KeelExchangeError | undefined = mayExist
      ? new KeelExchangeError({
          kind: 'in-doubt',
          endpoint: 'orders',
          code: 'SentBefore',
          message: `orders: ${id} may have been sent before a restart`,
        })
      : undefined;
    const spent = () => failures >= this.retry.maxAttempts;
    const backoff = (err: KeelExchangeError, atLeastMs = 0): Promise<void> => {
      // A -1015 (the account's order count) has paused new orders alone (`ordersLimited`): cancels go on.
      if (err.kind === 'rate-limited' && err.retryAfterMs !== undefined && !ORDER_COUNT_RE.test(err.message)) {
        this.limiter.pause('orders', this.timer.now() + err.retryAfterMs);
      }
      return this.timer.sleep(Math.max(atLeastMs, retryDelayMs(failures - 1, this.retry, this.rng, err)));
    };
    for (;;) {
      if (doubt) {
        let found: ExchangeOrder[] | null;
        try {
          found = await lookup();
        } catch (le) {
          const lerr = le instanceof KeelExchangeError ? le : classifyError(le, 'queries');
          failures++;
          if (lerr.retryable && !FAIL_FAST.has(lerr.code) && !spent()) {
            await backoff(lerr);
            continue;
          }
          return (
            this.seenOnStream(ids, sends) ?? {
              kind: 'in-doubt',
              reason: `create ${id} in doubt (${doubt.message}) and the lookup failed: ${lerr.message}`,
              error: lerr,
              sends,
            }
          );
        }
        this.onEvent({ type: 'lookup', clientOrderId: id, found: found !== null });
        if (found) return { kind: 'placed', orders: found, via: 'lookup', sends };
        if (doubt.duplicate) {
          // The exchange says it has this id but cannot show it: never resend, reconcile later.
          return {
            kind: 'in-doubt',
            reason: `exchange reports ${id} as a duplicate but the lookup does not find it`,
            error: doubt,
            sends,
          };
        }
        const notLanded = doubt;
        doubt = undefined;
        if (spent()) {
          return {
            kind: 'unavailable',
            reason: `gave up after ${sends} sends; the exchange does not know ${id}: ${notLanded.message}`,
            error: notLanded,
            sends,
          };
        }
      }
      const sentAt = this.timer.now();
      let err: KeelExchangeError;
      try {
        if (sends > 0) this.onEvent({ type: 'resend', clientOrderId: id, send: sends + 1 });
        const placed = await this.once(
          'orders',
          method,
          () => {
            // Checked at the moment of sending, after any wait in the rate limiter.
            if (signal?.aborted) throw notWanted(signal);
            sends++;
            for (const x of ids) this.sends.set(x, (this.sends.get(x) ?? 0) + 1);
            while (this.sends.size > 10_000) this.sends.delete(this.sends.keys().next().value as string);
            return send();
          },
          { orders: ids.length, signal },
        );
        for (const x of placed) this.cache?.restOrder(x, sentAt);
        return { kind: 'placed', orders: placed, via: 'response', sends };
      } catch (e) {
        err = e instanceof KeelExchangeError ? e : classifyError(e, 'orders');
      }
      if (FAIL_FAST.has(err.code)) return { kind: 'unavailable', reason: err.message, error: err, sends };
      if (!cured && (await this.cureClock(err))) {
        cured = true;
        this.onEvent({ type: 'retry', endpoint: 'orders', method, attempt: failures, delayMs: 0, error: err });
        continue;
      }
      switch (err.kind) {
        case 'rejected':
          if (err.duplicate) break;
          return {
            kind: 'rejected',
            reason: cured && err.code === 'InvalidNonce' ? `${err.message} (after re-syncing the clock)` : err.message,
            error: err,
            sends,
          };
        case 'not-found':
          return { kind: 'rejected', reason: err.message, error: err, sends };
        case 'auth':
        case 'fatal':
          throw err;
        case 'transient':
        case 'rate-limited':
          failures++;
          if (spent())
            return { kind: 'unavailable', reason: `not sent after ${sends} sends: ${err.message}`, error: err, sends };
          await backoff(err);
          continue;
        case 'in-doubt':
          break;
        default:
          return assertNever(err.kind);
      }
      // In doubt, or the exchange already has this id: did it land?
      doubt = err;
      this.onEvent({ type: 'create-in-doubt', clientOrderId: id, error: err });
      if (err.duplicate) continue; // an answer, not a failure: look it up at once
      failures++;
      await backoff(err, this.lookupDelayMs); // looked up even when the budget is spent
    }
  }

  /**
   * When REST cannot look an in-doubt create up, the user stream can still prove that the order
   * EXISTS (it reported it). It can never prove the opposite: absence from the cache leaves the
   * outcome unknown, and nothing is resent on its word.
   */
  private seenOnStream(
    ids: readonly string[],
    sends: number,
  ):
    | { readonly kind: 'placed'; readonly orders: ExchangeOrder[]; readonly via: 'stream'; readonly sends: number }
    | undefined {
    const seen = ids.map((x) => this.cache?.seen(x));
    if (!seen.every((x): x is ExchangeOrder => x !== undefined)) return undefined;
    return { kind: 'placed', orders: seen, via: 'stream', sends };
  }

  /**
   * True when `symbol`'s stop and take-profit orders (those with a trigger price) live apart from
   * its order book: Binance USDⓈ-M keeps them in its Algo Order service (`/fapi/v1/algoOrder`,
   * where ccxt's createOrder sends them), and they are cancelled, looked up and listed there, by
   * their `clientAlgoId`, not through the order endpoints, which do not know them.
   */
  algoOrders(symbol: string): boolean {
    if (this.client.id !== 'binance' && this.client.id !== 'binanceusdm') return false;
    const m = (this.client.markets as Record<string, MarketInterface> | undefined)?.[symbol];
    return m?.linear === true && m.swap === true;
  }

  /** ccxt's parameters for an order by client id: a conditional order's go to the Algo Order API. */
  private byClientId(clientOrderId: string, algo: boolean): Record<string, unknown> {
    return algo ? { trigger: true, clientAlgoId: clientOrderId } : { clientOrderId, origClientOrderId: clientOrderId };
  }

  /**
   * The exchange's view of one of our orders by client id, or null when the exchange says it does
   * not know it (fetchOrder says not found AND it is not among the open orders). `trigger`: a stop
   * or take-profit order; where those live apart (`algoOrders`) it is looked up there, and once it
   * has triggered, the order it placed in the book is read too: that order's status, fills and
   * exchange id are the answer, under the stop's client id, type and trigger price.
   */
  async lookupOrder(
    clientOrderId: string,
    symbol: string,
    opts: CallOptions & { readonly trigger?: boolean } = {},
  ): Promise<ExchangeOrder | null> {
    const requestedAt = this.timer.now();
    const algo = opts.trigger === true && this.algoOrders(symbol);
    try {
      const o = await this.call(
        'queries',
        'fetchOrder',
        () => this.client.fetchOrder(clientOrderId, symbol, this.byClientId(clientOrderId, algo)),
        opts,
      );
      const order = algo ? await this.withTriggeredOrder(o, symbol, opts) : fromCcxtOrder(o);
      this.cache?.restOrder(order, requestedAt);
      return order;
    } catch (e) {
      if (!(e instanceof KeelExchangeError) || e.kind !== 'not-found') throw e;
    }
    const open = await this.fetchOpenOrders(symbol, opts);
    return open.find((x) => x.clientOrderId === clientOrderId) ?? null;
  }

  /**
   * A conditional order as the Algo Order API reports it, joined with the order it placed in the
   * book when it triggered (Binance's `actualOrderId`): the algo order alone says TRIGGERED or
   * FINISHED with nothing filled; the book's order has the fills and how it ended.
   */
  private async withTriggeredOrder(o: Order, symbol: string, opts: CallOptions): Promise<ExchangeOrder> {
    const algo = fromCcxtOrder(o);
    const actualId = String((o.info as Record<string, unknown> | undefined)?.['actualOrderId'] ?? '');
    if (actualId === '' || actualId === '0') return algo;
    const placed = fromCcxtOrder(
      await this.call('queries', 'fetchOrder', () => this.client.fetchOrder(actualId, symbol), opts),
    );
    return { ...placed, clientOrderId: algo.clientOrderId, type: algo.type, triggerPrice: algo.triggerPrice };
  }

  /**
   * Cancels by client id with priority over queued creates. `trigger`: a stop or take-profit
   * order, cancelled where it lives (`algoOrders`); Binance answers that cancel without the
   * order's state, which is then read.
   */
  async cancelOrder(
    clientOrderId: string,
    symbol: string,
    opts: { readonly trigger?: boolean } = {},
  ): Promise<CancelOutcome> {
    const requestedAt = this.timer.now();
    const algo = opts.trigger === true && this.algoOrders(symbol);
    try {
      const o = await this.call(
        'orders',
        'cancelOrder',
        () => this.client.cancelOrder(clientOrderId, symbol, this.byClientId(clientOrderId, algo)),
        { priority: 'high' },
      );
      if (algo)
        return {
          kind: 'cancelled',
          order: (await this.lookupOrder(clientOrderId, symbol, opts).catch(() => null)) ?? undefined,
        };
      const order = o?.id ? fromCcxtOrder(o as Order) : undefined;
      if (order) this.cache?.restOrder(order, requestedAt);
      return { kind: 'cancelled', order };
    } catch (e) {
      if (!(e instanceof KeelExchangeError) || e.kind !== 'not-found') throw e;
      // Gone already (filled, cancelled, or never placed): report its final state if it exists.
      const found = await this.lookupOrder(clientOrderId, symbol, opts).catch(() => null);
      return { kind: 'not-found', order: found ?? undefined };
    }
  }

  /**
   * The open orders of `symbol` (of every market without one), the conditional orders waiting in
   * the Algo Order API included where they live apart (`algoOrders`).
   */
  async fetchOpenOrders(symbol?: string, opts: CallOptions = {}): Promise<ExchangeOrder[]> {
    const requestedAt = this.timer.now();
    const weight =
      symbol === undefined ? (this.weights['fetchOpenOrdersAll'] ?? 80) : (this.weights['fetchOpenOrders'] ?? 6);
    const raw = await this.call('queries', 'fetchOpenOrders', () => this.client.fetchOpenOrders(symbol), {
      ...opts,
      weight,
    });
    if (symbol !== undefined && this.algoOrders(symbol))
      raw.push(
        ...(await this.call(
          'queries',
          'fetchOpenOrders',
          () => this.client.fetchOpenOrders(symbol, undefined, undefined, { trigger: true }),
          { ...opts, weight },
        )),
      );
    const list = raw.map(fromCcxtOrder);
    if (symbol !== undefined) this.cache?.restOpenOrders(symbol, list, requestedAt);
    return list;
  }

  async fetchClosedOrders(symbol: string, since?: number, limit?: number): Promise<ExchangeOrder[]> {
    const list = await this.call('queries', 'fetchClosedOrders', () =>
      this.client.fetchClosedOrders(symbol, since, limit),
    );
    return list.map(fromCcxtOrder);
  }

  fetchMyTrades(symbol: string, since?: number, limit?: number): Promise<Trade[]> {
    return this.call('queries', 'fetchMyTrades', () => this.client.fetchMyTrades(symbol, since, limit));
  }

  async fetchBalance(): Promise<BalanceRow[]> {
    const requestedAt = this.timer.now();
    const b = await this.call('queries', 'fetchBalance', () => this.client.fetchBalance());
    const rows = [...balanceRows(b).values()]
      .filter((r) => r.total !== 0 || r.free !== 0 || r.used !== 0)
      .sort((x, y) => (x.asset < y.asset ? -1 : x.asset > y.asset ? 1 : 0));
    this.cache?.restBalance(rows, requestedAt);
    return rows;
  }

  async fetchTicker(symbol: string): Promise<CachedTicker> {
    const t = await this.call('market-data', 'fetchTicker', () => this.client.fetchTicker(symbol));
    return {
      symbol,
      last: t.last ?? Number.NaN,
      bid: t.bid ?? Number.NaN,
      ask: t.ask ?? Number.NaN,
      timestamp: t.timestamp ?? 0,
    };
  }

  // ------------------------------------------------------------------ reads with a stream fallback

  /** The balance from REST, or, when REST fails without an answer or its breaker is open, from the user stream. */
  readBalance(): Promise<Served<BalanceRow[]>> {
    return this.withFallback(
      'balance',
      'fetchBalance',
      () => this.fetchBalance(),
      () => this.cache?.balance(),
    );
  }

  /**
   * One of our orders: REST lookup (null only when REST says the exchange does not know it), or the
   * user stream's state of it. The cache never answers "does not exist".
   */
  readOrder(
    clientOrderId: string,
    symbol: string,
    opts: { readonly trigger?: boolean } = {},
  ): Promise<Served<ExchangeOrder | null>> {
    return this.withFallback(
      'order',
      'fetchOrder',
      () => this.lookupOrder(clientOrderId, symbol, opts),
      () => this.cache?.order(clientOrderId, symbol),
    );
  }

  readOpenOrders(symbol: string): Promise<Served<ExchangeOrder[]>> {
    return this.withFallback(
      'open-orders',
      'fetchOpenOrders',
      () => this.fetchOpenOrders(symbol),
      () => this.cache?.openOrders(symbol),
    );
  }

  readTicker(symbol: string): Promise<Served<CachedTicker>> {
    return this.withFallback(
      'ticker',
      'fetchTicker',
      () => this.fetchTicker(symbol),
      () => this.cache?.ticker(symbol),
    );
  }

  /**
   * REST first. Only a transient, rate-limited or in-doubt failure (the breaker's CircuitOpen
   * included) may be answered from the cache: an auth error, a rejection or a not-found is the
   * exchange's answer and is never masked.
   */
  private async withFallback<T, C extends T>(
    what: CachedRead,
    method: string,
    rest: () => Promise<T>,
    cached: () => CacheAnswer<C> | undefined,
  ): Promise<Served<T>> {
    const requestedAt = this.timer.now();
    let restError: KeelExchangeError;
    try {
      return { value: await rest(), source: 'rest', asOf: requestedAt };
    } catch (e) {
      restError = e instanceof KeelExchangeError ? e : classifyError(e, 'queries');
      if (!restError.retryable) throw restError;
    }
    const ans = cached() ?? { ok: false as const, reason: 'no stream cache is attached to this gateway' };
    if (ans.ok) {
      const ageMs = this.timer.now() - ans.asOf;
      this.onEvent({ type: 'served-from-cache', what, method, ageMs, restError });
      return { value: ans.value, source: 'stream', asOf: ans.asOf, restError };
    }
    this.onEvent({ type: 'cache-refused', what, method, reason: ans.reason, restError });
    throw new KeelExchangeError({
      kind: restError.kind,
      endpoint: restError.endpoint,
      code: restError.code,
      message: `${method} failed (${restError.message}) and the WebSocket cache cannot stand in: ${ans.reason}`,
      cause: restError,
      ...(restError.retryAfterMs !== undefined ? { retryAfterMs: restError.retryAfterMs } : {}),
    });
  }

  fetchOHLCV(
    symbol: string,
    timeframe: string,
    since?: number,
    limit?: number,
    opts: CallOptions = {},
  ): Promise<OHLCV[]> {
    return this.call('market-data', 'fetchOHLCV', () => this.client.fetchOHLCV(symbol, timeframe, since, limit), opts);
  }

  /** Closes the client's WebSocket connections. */
  async close(): Promise<void> {
    await (this.client as { close?: () => Promise<unknown> }).close?.();
  }
}
