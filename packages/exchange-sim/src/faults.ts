/**
 * Fault injection, scripted per test through `sim.faults`. Every fault is a one-shot or counted
 * state the REST and WS layers consult; `reset()` clears them all.
 */

export type WsKind = 'market' | 'user' | 'api';

export interface WsFilter {
  /** Which connections: market streams (/ws, /stream), user-data (listenKey or ws-api). Default all. */
  kind?: WsKind | 'all';
}

export interface HttpFaultOptions {
  /** Only requests whose path starts with this (e.g. `/api/v3/order`); default every path. */
  path?: string;
  /** Only this method (GET, POST, DELETE, PUT); default every method. */
  method?: string;
  /** How many requests are affected. */
  count: number;
}

/** What the WS layer implements for the faults that act on live connections. */
export interface WsControl {
  drop(filter: WsFilter, apiKey?: string): number;
}

export interface OrderRejection {
  code: number;
  msg: string;
  count: number;
}

/** What the faults do to the exchange itself (orders), as opposed to its transports. */
export interface FaultExchangeHooks {
  /** The next `rejection.count` order placements fail with this error; undefined clears. */
  rejectOrders(rejection: OrderRejection | undefined): void;
  /** Fills every open order of the account at its own price; returns how many. */
  forceFill(apiKey: string): number;
  /** Expires one open order as self-trade prevention does; false when there is no such open order. */
  expireInMatch(apiKey: string, clientOrderId: string): boolean;
  /**
   * USDⓈ-M only (absent on spot): the exchange's own closes, on command. Each returns the forced
   * orders it made (`sim.autoDeleverage`, `sim.delist`, `sim.settle`); a command it cannot run
   * throws an Error saying why.
   */
  futures?: {
    autoDeleverage(apiKey: string, symbol: string, qty?: number, price?: number): ForcedOrderSummary[];
    delist(symbol: string, opts: { price?: number; settle: boolean }): ForcedOrderSummary[];
    settle(symbol: string, price?: number): ForcedOrderSummary[];
  };
  /**
   * Spot only (absent on USDⓈ-M): a pair's trading halted as Binance delists it (status BREAK, new
   * orders refused, open orders cancelled; returns how many) and resumed (TRADING again, a
   * re-listing) (`sim.delist`, `sim.relist`); a command it cannot run throws an Error saying why.
   */
  spot?: {
    delist(symbol: string): number;
    relist(symbol: string): void;
  };
}

/** A forced order as the admin endpoint reports it. */
export interface ForcedOrderSummary {
  apiKey: string;
  clientOrderId: string;
  orderId: number;
  side: string;
  qty: number;
  price: number;
}

interface HttpRule extends HttpFaultOptions {
  status?: number;
  body?: 'html' | 'json';
  ms?: number;
  execute?: boolean;
}

export class SimFaults {
  /** @internal */ errorBursts: HttpRule[] = [];
  /** @internal */ holds: HttpRule[] = [];
  /** @internal */ storms: HttpRule[] = [];
  /** @internal */ stalled: { kind: WsKind | 'all'; until: number } | undefined;
  /** @internal */ delay: { ms: number; count: number } | undefined;
  /** @internal */ duplicate = 0;
  /** @internal */ reorder = 0;
  /** @internal */ clockSkewMs = 0;

  constructor(
    private readonly ws: WsControl,
    private readonly wall: () => number,
    private readonly exchange: FaultExchangeHooks,
  ) {}

  // ---------------------------------------------------------------- WebSocket

  /** Closes WebSocket connections abruptly (no close frame, as a network drop). Returns how many. */
  dropWebSockets(filter: WsFilter = {}): number {
    return this.ws.drop(filter);
  }

  /**
   * Stops sending on matching connections without closing them; messages meanwhile are lost and
   * pings go unanswered (a client's ping/pong keep-alive notices). Lasts `ms` wall milliseconds,
   * or until `resumeWebSockets()`.
   */
  stallWebSockets(opts: WsFilter & { ms?: number } = {}): void {
    this.stalled = {
      kind: opts.kind ?? 'all',
      until: opts.ms === undefined ? Number.POSITIVE_INFINITY : this.wall() + opts.ms,
    };
  }

  resumeWebSockets(): void {
    this.stalled = undefined;
  }

  /** Delays the next `count` outgoing WS messages (default all until reset) by `ms`. */
  delayWsMessages(ms: number, opts: { count?: number } = {}): void {
    this.delay = { ms, count: opts.count ?? Number.POSITIVE_INFINITY };
  }

  /** Sends each of the next `count` outgoing WS messages twice. */
  duplicateWsMessages(count = 1): void {
    this.duplicate = count;
  }

  /** Swaps the next `count` pairs of outgoing WS messages on a connection (the later one first). */
  reorderWsMessages(count = 1): void {
    this.reorder = count;
  }

  // ---------------------------------------------------------------- HTTP

  /**
   * The next `count` matching requests fail with `status` (default 503) without being executed.
   * `body: 'html'` (default) answers with a gateway error page, so clients map the HTTP status
   * (ccxt: ExchangeNotAvailable, RequestTimeout for 504); `body: 'json'` answers like Binance's
   * own backend, `{"code":-1001,"msg":"Internal error; unable to process your request..."}`.
   */
  httpErrorBurst(opts: HttpFaultOptions & { status?: number; body?: 'html' | 'json' }): void {
    this.errorBursts.push({ ...opts, status: opts.status ?? 503, body: opts.body ?? 'html' });
  }

  /**
   * The next `count` matching requests (default: any path) get 429 / -1003 with a Retry-After,
   * whatever their weight, without being executed.
   */
  rateLimitStorm(opts: HttpFaultOptions): void {
    this.storms.push({ ...opts });
  }

  /**
   * Holds the next `count` matching requests: the response comes after `ms` wall milliseconds, or
   * never (the client times out) when `ms` is omitted. By default the request itself runs only
   * when released; with `execute: true` it runs at once and only the response is held, the case
   * where an order was placed but the client never heard so.
   */
  holdHttpResponses(opts: HttpFaultOptions & { ms?: number; execute?: boolean }): void {
    this.holds.push({ ...opts });
  }

  /** Shifts the server's clock for the timestamp/recvWindow check (provokes -1021). */
  skewServerClock(ms: number): void {
    this.clockSkewMs = ms;
  }

  // ---------------------------------------------------------------- orders

  /**
   * The next order placement (or the next `count`) fails with this Binance error (default -2010
   * "New order rejected."), after the filters are checked and before anything is booked.
   */
  rejectNextOrder(opts: { code?: number; msg?: string; count?: number } = {}): void {
    this.exchange.rejectOrders({
      code: opts.code ?? -2010,
      msg: opts.msg ?? 'New order rejected.',
      count: opts.count ?? 1,
    });
  }

  /**
   * Drops the account's user-data connections, then fills all its open orders at their own price
   * while it is away: the client sees the fills only by reconciling over REST (or after it
   * resubscribes, through balances). Returns the number of orders filled.
   */
  fillOpenOrdersWhileDisconnected(apiKey: string): number {
    this.ws.drop({ kind: 'user' }, apiKey);
    return this.exchange.forceFill(apiKey);
  }

  /**
   * Expires the account's open order `clientOrderId` as Binance's self-trade prevention does when
   * an order would trade against another of the same account (status EXPIRED_IN_MATCH; spot
   * execution type TRADE_PREVENTION, futures `er` 1). The simulator's accounts never meet on its
   * book, so this is the only way to get one. Returns false when there is no such open order.
   */
  expireInMatch(apiKey: string, clientOrderId: string): boolean {
    return this.exchange.expireInMatch(apiKey, clientOrderId);
  }

  /**
   * USDⓈ-M: the exchange's own closes on command (the admin endpoint's `adl`, `delist` and
   * `settle`). A spot simulator has none: an Error says so.
   */
  exchangeCloses(): NonNullable<FaultExchangeHooks['futures']> {
    const f = this.exchange.futures;
    if (f === undefined) throw new Error('this simulator speaks spot: ADL, delisting and settlement are USD-M only');
    return f;
  }

  /** Spot: a pair's halt and resumption on command (the admin endpoint's `delist` and `relist`). */
  spotHalts(): NonNullable<FaultExchangeHooks['spot']> | undefined {
    return this.exchange.spot;
  }

  /** Clears every pending fault. */
  reset(): void {
    this.errorBursts = [];
    this.holds = [];
    this.storms = [];
    this.stalled = undefined;
    this.delay = undefined;
    this.duplicate = 0;
    this.reorder = 0;
    this.clockSkewMs = 0;
    this.exchange.rejectOrders(undefined);
  }

  /** @internal consumes one matching HTTP rule from a list. */
  take(list: HttpRule[], method: string, path: string): HttpRule | undefined {
    const i = list.findIndex(
      (r) => r.count > 0 && (!r.path || path.startsWith(r.path)) && (!r.method || r.method === method),
    );
    if (i < 0) return undefined;
    const rule = list[i] as HttpRule;
    rule.count -= 1;
    if (rule.count <= 0) list.splice(i, 1);
    return rule;
  }

  /** @internal */
  isStalled(kind: WsKind): boolean {
    if (!this.stalled) return false;
    if (this.wall() >= this.stalled.until) {
      this.stalled = undefined;
      return false;
    }
    return (
      this.stalled.kind === 'all' || this.stalled.kind === kind || (this.stalled.kind === 'user' && kind === 'api')
    );
  }
}
