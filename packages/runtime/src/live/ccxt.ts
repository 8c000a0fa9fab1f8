import { Agent } from 'node:http';
import {
  assertNever,
  copyBar,
  type FeedKey,
  type Instrument,
  isTerminal,
  OrderIndex,
  type OrderRequest,
  type OrderStatus,
  timeframeMs,
} from '@keel/core';
import {
  barFromOhlcv,
  binanceMarketOptions,
  createCcxtClient,
  ExchangeGateway,
  type ExchangeGateway as Gateway,
  type GatewayEvent,
  type ExchangeOrder as GwOrder,
  KeelExchangeError,
  OrderTracker,
  type PlaceOutcome,
  StreamCache,
  type StreamCacheOptions,
  watchCandles,
} from '@keel/exchange';
import type { Logger } from '../bot.ts';
import type { BarEvent, BarSource } from '../sources.ts';
import { binanceUsdmFutures } from './ccxt-futures.ts';
import { type ExchangeClock, type ExchangeClockOptions, exchangeClock } from './exchange-clock.ts';
import {
  ExchangeFailure,
  type ExchangeOrder,
  type ExchangeTrade,
  type LiveExchange,
  type PlaceResult,
} from './port.ts';

export interface ConnectOptions {
  readonly exchange: string;
  /** Point a Binance client at another base URL (http://host:port), e.g. `keel exchange-sim`. */
  readonly url?: string;
  readonly apiKey?: string;
  readonly secret?: string;
  /** For exchanges that need a passphrase (ccxt's `password`) or a uid besides key and secret. */
  readonly password?: string;
  readonly uid?: string;
  readonly botId: string;
  /** Markets whose orders and fills are followed. */
  readonly symbols: readonly string[];
  readonly log: Logger;
  /** Bars of history the strategy warms up on at start, and up to the last handled bar at a restart. Default 500. */
  readonly warmupBars?: number;
  /** Extra ccxt constructor options (tests). */
  readonly ccxtOptions?: Record<string, unknown>;
  /** Gateway options (tests: faster lookups and retries). */
  readonly gateway?: ConstructorParameters<typeof ExchangeGateway>[1];
  readonly pollMs?: number;
  /** No candle message for this long = a silent socket: reconnect and fill the gap from REST. */
  readonly staleAfterMs?: number;
  /** Longest wait between candle-stream reconnects (backoff cap). Default 30 s. */
  readonly reconnectMaxMs?: number;
  /**
   * The WebSocket cache that answers balance and order reads while REST fails (docs/exchange.md).
   * Default on for accounts with keys; `false` turns it off.
   */
  readonly streamCache?: false | Omit<StreamCacheOptions, 'symbols'>;
}

export interface ExchangeConnection {
  readonly gateway: Gateway;
  /** The WebSocket cache behind the reads while REST fails; undefined without keys or when turned off. */
  readonly streamCache: StreamCache | undefined;
  readonly live: LiveExchange;
  instrument(symbol: string): Promise<Instrument>;
  /** History (flagged warm-up) then live closed bars, each once; resumes after `after`. */
  candles(feed: FeedKey, after?: number): BarSource;
  /** The exchange's clock (its server time, read through the gateway): `keel live --clock exchange`. */
  clock(opts?: ExchangeClockOptions): ExchangeClock;
  close(): Promise<void>;
}

/**
 * Binance REST and WebSocket endpoints under one base URL (what `keel exchange-sim` serves).
 * Only the base changes; paths are Binance's own. `futures`: ccxt's binanceusdm (the fapi
 * endpoints). Which markets the client loads is binanceMarketOptions's business, URL or not.
 */
export function binanceUrlsAt(httpUrl: string, futures = false): Record<string, unknown> {
  const base = httpUrl.replace(/\/+$/, '');
  const ws = base.replace(/^http/, 'ws');
  const rest = `${base}/api/v3`;
  if (futures) {
    const fapi = (v: number): string => `${base}/fapi/v${v}`;
    return {
      urls: {
        api: {
          public: rest,
          private: rest,
          v3: rest,
          v1: `${base}/api/v1`,
          sapi: `${base}/sapi/v1`,
          fapiPublic: fapi(1),
          fapiPublicV2: fapi(2),
          fapiPublicV3: fapi(3),
          fapiPrivate: fapi(1),
          fapiPrivateV2: fapi(2),
          fapiPrivateV3: fapi(3),
          fapiData: `${base}/futures/data`,
          // ccxt derives /market/ws, /public/ws and /private/ws?listenKey= from this.
          ws: { future: `${ws}/ws`, 'ws-api': { future: `${ws}/ws-fapi/v1` } },
        },
      },
    };
  }
  return {
    urls: {
      api: {
        public: rest,
        private: rest,
        v3: rest,
        v1: `${base}/api/v1`,
        sapi: `${base}/sapi/v1`,
        ws: { spot: `${ws}/ws`, margin: `${ws}/ws`, 'ws-api': { spot: `${ws}/ws-api/v3` } },
      },
    },
  };
}

function toPortStatus(s: OrderStatus): ExchangeOrder['status'] {
  switch (s) {
    case 'filled':
      return 'closed';
    case 'cancelled':
      return 'canceled';
    case 'expired':
      return 'expired';
    case 'rejected':
    case 'denied':
      return 'rejected';
    default:
      return 'open';
  }
}

function toPortOrder(o: GwOrder): ExchangeOrder {
  return {
    clientOrderId: o.clientOrderId ?? '',
    venueOrderId: o.venueOrderId,
    symbol: o.symbol,
    status: toPortStatus(o.status),
    side: o.side,
    type: o.type,
    price: o.price,
    triggerPrice: o.triggerPrice,
    timeInForce: o.timeInForce,
    postOnly: o.postOnly,
    reduceOnly: o.reduceOnly,
    positionSide: o.positionSide,
    expireAt: o.expireAt,
    expiry: o.expiry,
    amount: o.amount,
    filled: o.filled,
    timestamp: o.timestamp,
  };
}

interface CcxtTradeLike {
  id?: string;
  order?: string;
  symbol?: string;
  side?: string;
  price?: number;
  amount?: number;
  fee?: { cost?: number; currency?: string };
  takerOrMaker?: string;
  timestamp?: number;
  clientOrderId?: string;
}

function toPortTrade(t: CcxtTradeLike): ExchangeTrade | undefined {
  if (!t.id || !t.order) return undefined;
  return {
    tradeId: t.id,
    ...(t.clientOrderId ? { clientOrderId: t.clientOrderId } : {}),
    venueOrderId: t.order,
    symbol: t.symbol ?? '',
    side: t.side === 'sell' ? 'sell' : 'buy',
    price: t.price ?? Number.NaN,
    amount: t.amount ?? 0,
    fee: t.fee?.cost ?? 0,
    feeAsset: t.fee?.currency ?? '',
    liquidity: t.takerOrMaker === 'maker' ? 'maker' : 'taker',
    time: t.timestamp ?? 0,
  };
}

type WsClientLike = { future(hash: string): Promise<unknown>; keelHandled?: true };

/**
 * ccxt creates some WebSocket futures ahead of the request that settles them (Binance's user
 * stream subscription) and rejects them when that request fails or the socket closes, whether
 * anyone awaits them or not. Such a rejection would end the process with ccxt's stack trace
 * (wrong keys; a connection closed while it opens). Every future gets a handler here; whoever
 * awaits one still receives its rejection.
 */
function handleUnawaitedFutures(exchange: object): void {
  const ex = exchange as { client?: (url: string) => WsClientLike };
  const make = ex.client;
  if (typeof make !== 'function') return;
  ex.client = (url) => {
    const ws = make.call(exchange, url);
    if (ws.keelHandled) return ws;
    const future = ws.future.bind(ws);
    ws.future = (hash) => {
      const f = future(hash);
      f.catch(() => {});
      return f;
    };
    ws.keelHandled = true;
    return ws;
  };
}

/** The gateway's failures as the port's: the same kind, message and cause. */
function port<T>(p: Promise<T>): Promise<T> {
  return p.catch((e: unknown) => {
    throw e instanceof KeelExchangeError ? new ExchangeFailure(e.kind, e.message, e) : e;
  });
}

/**
 * A create's outcome in the port's shapes. The gateway throws a create's `auth` and `fatal`
 * failures; here they are outcomes too, so that the venue handles every end of a create in one
 * place: refused keys placed nothing (`rejected`); a failure that is no answer of the exchange
 * leaves the create's fate unknown (`in-doubt`).
 */
async function placeResult(
  create: Promise<PlaceOutcome & { readonly orders?: readonly GwOrder[] }>,
  remember: (x: GwOrder) => ExchangeOrder,
): Promise<PlaceResult> {
  let out: PlaceOutcome & { readonly orders?: readonly GwOrder[] };
  try {
    out = await create;
  } catch (e) {
    if (!(e instanceof KeelExchangeError)) throw e;
    return e.kind === 'auth'
      ? { kind: 'rejected', reason: e.message }
      : { kind: 'in-doubt', reason: `${e.kind}: ${e.message}` };
  }
  switch (out.kind) {
    case 'placed':
      return { kind: 'placed', orders: (out.orders ?? [out.order]).map(remember), via: out.via };
    case 'rejected':
      return { kind: 'rejected', reason: out.reason };
    case 'unavailable':
      return { kind: 'unavailable', reason: out.reason, failure: out.error.kind };
    case 'in-doubt':
      return { kind: 'in-doubt', reason: out.reason };
    default:
      return assertNever(out);
  }
}

/**
 * The line a person reads when the exchange turns this IP away for its request weight: what
 * happened, until when, what the bot does meanwhile and what to change.
 */
function ipLimitedLine(exchange: string, e: Extract<GatewayEvent, { type: 'ip-limited' }>, now: number): string {
  const until = new Date(e.until)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
  const inS = Math.max(0, Math.ceil((e.until - now) / 1000));
  const wait = inS >= 3600 ? `${(inS / 3600).toFixed(1)} h` : inS >= 60 ? `${Math.round(inS / 60)} min` : `${inS} s`;
  if (e.status === 418)
    return `IP BANNED: ${exchange} has banned this machine's IP address (HTTP 418, too much request weight) until ${until} (about ${wait}). This bot sends nothing to ${exchange} until then: a new order ends "not sent", cancels and reads fail at once (reads are tried again after each bar). Every bot and program on this IP shares the exchange's weight budget; run fewer of them or poll less. Exchange: "${e.message}" (on ${e.method})`;
  return `request weight: ${exchange} answered 429 (too much request weight for this IP) on ${e.method}; every request of this bot waits until ${until} (about ${wait}). Exchange: "${e.message}"`;
}

/** `10 s`, `1 min`, `1 day`: a window's length as a person says it. */
function windowName(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000} day`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  return `${ms / 1000} s`;
}

/**
 * The lines a person reads when new orders wait for the account's order budget (once a window):
 * what is full, whose orders fill it, how long the bot's orders wait and what still goes.
 */
function orderBudgetLine(
  exchange: string,
  e: Extract<GatewayEvent, { type: 'order-count-full' | 'orders-limited' }>,
  now: number,
): string {
  if (e.type === 'orders-limited')
    return `order budget: ${exchange} refused a new order (429 -1015, too many new orders on this account) on ${e.method}; this bot's new orders wait ${Math.ceil((e.until - now) / 1000)} s, cancels still go. Every bot, script and person trading this account shares its order limit. Exchange: "${e.message}"`;
  const w = windowName(e.windowMs);
  return `order budget: this account has placed ${e.used} new orders this ${w} window on ${exchange} (the exchange's count: every bot, script and person trading the account shares its limit of ${e.published}); this bot keeps under ${e.limit} and its new orders wait ${Math.ceil((e.resumeAt - now) / 1000)} s for the next window (cancels are not held; an order whose signal goes stale meanwhile is dropped, never sent late)`;
}

/** One exchange account behind the gateway, shaped as the runtime's LiveExchange port. */
export async function connectExchange(o: ConnectOptions): Promise<ExchangeConnection> {
  const urls = o.url ? binanceUrlsAt(o.url, o.exchange === 'binanceusdm') : {};
  const client = createCcxtClient(o.exchange, {
    ...urls,
    // ccxt needs an explicit agent for plain ws:// (a local simulator); no keep-alive so that
    // closing the client leaves no socket behind.
    ...(o.url?.startsWith('http://') ? { httpAgent: new Agent({ keepAlive: false }) } : {}),
    ...(o.apiKey ? { apiKey: o.apiKey, secret: o.secret } : {}),
    ...(o.password ? { password: o.password } : {}),
    ...(o.uid ? { uid: o.uid } : {}),
    ...o.ccxtOptions,
    options: {
      ...binanceMarketOptions(o.exchange, o.exchange === 'binanceusdm' ? 'linear' : 'spot'),
      ...((o.ccxtOptions?.options as object | undefined) ?? {}),
    },
  });
  handleUnawaitedFutures(client);
  const gw = new ExchangeGateway(client, {
    ...o.gateway,
    onEvent: (e) => {
      if (e.type === 'retry')
        o.log(
          'warn',
          `${e.method} failed (${e.error.kind}: ${e.error.message}); retry ${e.attempt + 1} in ${e.delayMs} ms`,
        );
      else if (e.type === 'breaker-open') o.log('warn', `${e.endpoint} circuit open: ${e.method} not sent`);
      else if (e.type === 'create-in-doubt')
        o.log('warn', `order ${e.clientOrderId} create in doubt (${e.error.message}): looking it up by client id`);
      else if (e.type === 'served-from-cache')
        o.log(
          'warn',
          `${e.method} answered from the WebSocket cache (confirmed ${e.ageMs} ms ago) because REST failed: ${e.restError.message}`,
        );
      else if (e.type === 'clock-skew-ignored')
        o.log(
          'warn',
          `the exchange's clock is ${(e.differenceMs / 3_600_000).toFixed(1)} h away from this machine's (a replaying exchange?): requests stay signed with this machine's clock`,
        );
      else if (e.type === 'cache-refused')
        o.log('error', `${e.method} failed and the WebSocket cache cannot stand in: ${e.reason}`);
      else if (e.type === 'ip-limited')
        o.log(e.status === 418 ? 'error' : 'warn', ipLimitedLine(o.exchange, e, gw.timer.now()));
      else if (e.type === 'order-count-full' || e.type === 'orders-limited')
        o.log(e.type === 'orders-limited' ? 'warn' : 'info', orderBudgetLine(o.exchange, e, gw.timer.now()));
      else if (e.type === 'ip-weight-full')
        o.log(
          'info',
          `request weight: this IP has used ${e.used} of ${e.published} this minute on ${o.exchange} (the exchange's count: every bot and program on this machine's IP shares it); this bot keeps under ${e.limit} and waits ${Math.ceil((e.resumeAt - gw.timer.now()) / 1000)} s for the next minute`,
        );
      o.gateway?.onEvent?.(e);
    },
  });
  await gw.loadMarkets();
  const cache =
    o.apiKey && o.streamCache !== false
      ? new StreamCache(gw, {
          symbols: o.symbols,
          ...o.streamCache,
          onError: (stream, e) =>
            o.log('warn', `${stream}: ${e instanceof Error ? e.message : String(e)}; reconnecting`),
        })
      : undefined;
  cache?.start();
  // REST trades carry only the exchange's order id: ours, of the working and the recent orders.
  const venueToClient = new OrderIndex<string>();
  const remember = (x: GwOrder) => {
    if (x.clientOrderId) venueToClient.set(x.venueOrderId, x.clientOrderId, isTerminal(x.status));
    return toPortOrder(x);
  };
  const trackers: OrderTracker[] = [];
  const abort = new AbortController();

  const binanceStatus =
    o.exchange === 'binance' || o.exchange === 'binanceusdm'
      ? async (symbol: string): Promise<string> => {
          // Binance's exchangeInfo: spot's takes the symbol (weight 20; a symbol it no longer lists is
          // -1121 Invalid symbol, ccxt's BadSymbol), USDⓈ-M's lists every contract (weight 1).
          const usdm = o.exchange === 'binanceusdm';
          const method = usdm ? 'fapiPublicGetExchangeInfo' : 'publicGetExchangeInfo';
          const id = gw.client.marketId(symbol);
          const fn = (gw.client as unknown as Record<string, (p: object) => Promise<{ symbols?: unknown[] }>>)[method];
          if (typeof fn !== 'function') throw new Error(`Invariant violated: ccxt has no ${method}`);
          try {
            const info = await port(
              gw.call('market-data', method, () => fn.call(gw.client, usdm ? {} : { symbol: id }), {
                weight: usdm ? 1 : 20,
              }),
            );
            const row = (info.symbols ?? []).find((x) => (x as { symbol?: unknown }).symbol === id) as
              | { status?: unknown }
              | undefined;
            return row === undefined ? 'NOT LISTED' : String(row.status);
          } catch (e) {
            if (e instanceof ExchangeFailure && e.kind === 'not-found') return 'NOT LISTED';
            throw e;
          }
        }
      : undefined;

  const live: LiveExchange = {
    placeOrder(req: OrderRequest, opts = {}) {
      return placeResult(gw.createOrder(req, opts), remember);
    },
    async placeOco(a: OrderRequest, b: OrderRequest, opts = {}) {
      const create = gw.createOco(a, b, opts);
      // A pair the exchange does not list natively: nothing was sent, the venue sends two orders.
      const unlisted = await create.then(
        (x) => x.kind === 'rejected' && x.rule === 'oco-shape',
        () => false,
      );
      return unlisted ? null : placeResult(create, remember);
    },
    async cancelOrder(id, symbol, kind = {}) {
      const out = await port(gw.cancelOrder(id, symbol, kind));
      return out.order ? remember(out.order) : null;
    },
    async fetchOrder(id, symbol, kind = {}) {
      // REST, or the user stream's state of it while REST fails; null only ever comes from REST.
      const x = (await port(gw.readOrder(id, symbol, kind))).value;
      return x ? remember(x) : null;
    },
    async fetchOpenOrders(symbols) {
      const out: ExchangeOrder[] = [];
      for (const s of symbols) for (const x of (await port(gw.readOpenOrders(s))).value) out.push(remember(x));
      return out;
    },
    async fetchTrades(symbol, since) {
      const trades: CcxtTradeLike[] = await port(gw.fetchMyTrades(symbol, since));
      return trades
        .map((t) =>
          toPortTrade({
            ...t,
            ...(t.order && venueToClient.has(t.order) ? { clientOrderId: venueToClient.get(t.order) } : {}),
          }),
        )
        .filter((t): t is ExchangeTrade => t !== undefined);
    },
    async fetchBalances() {
      const rows = (await port(gw.readBalance())).value;
      return Object.fromEntries(rows.map((r) => [r.asset, { free: r.free, used: r.used, total: r.total }]));
    },
    async lastPrice(symbol) {
      return (await port(gw.fetchTicker(symbol))).last;
    },
    ...(binanceStatus ? { marketStatus: binanceStatus } : {}),
    ...(o.exchange === 'binance'
      ? {
          async feeDiscountAsset(symbol: string) {
            // Binance's commission rates for the account on the symbol (weight 20).
            const r = (await port(
              gw.call(
                'queries',
                'privateGetAccountCommission',
                () => gw.client.privateGetAccountCommission({ symbol: gw.client.marketId(symbol) }),
                { weight: 20 },
              ),
            )) as { discount?: { enabledForAccount?: boolean; enabledForSymbol?: boolean; discountAsset?: string } };
            const d = r.discount;
            return d?.enabledForAccount === true && d.enabledForSymbol === true && d.discountAsset
              ? d.discountAsset
              : undefined;
          },
        }
      : {}),
    ...(o.exchange === 'binanceusdm' ? { futures: binanceUsdmFutures(gw) } : {}),
    budgetCounts: () => gw.budgetCounts(),
    watchExecutions(h) {
      const tracker = new OrderTracker(gw, {
        symbols: o.symbols,
        clientIdOf: (v) => venueToClient.get(v) as never,
        onOrder: (x) => h.onOrder(remember(x)),
        onFill: (f) =>
          h.onTrade({
            tradeId: f.tradeId,
            clientOrderId: f.orderId,
            venueOrderId: '',
            symbol: f.symbol,
            side: f.side,
            price: f.price,
            amount: f.amount,
            fee: f.fee,
            feeAsset: f.feeAsset,
            liquidity: f.liquidity,
            time: f.time,
          }),
        ...(o.pollMs ? { pollMs: o.pollMs } : {}),
        onError: (e) => h.onError(e instanceof Error ? e : new Error(String(e))),
      });
      trackers.push(tracker);
      tracker.start();
      return () => tracker.stop();
    },
  };

  return {
    gateway: gw,
    streamCache: cache,
    live,
    async instrument(symbol) {
      return gw.instrument(symbol);
    },
    clock(opts) {
      return exchangeClock(
        () => gw.call('market-data', 'fetchTime', async () => Number(await gw.client.fetchTime())),
        opts,
      );
    },
    candles(feed, after) {
      let closed = false;
      const ctl = new AbortController();
      abort.signal.addEventListener('abort', () => ctl.abort());
      return {
        async close() {
          closed = true;
          ctl.abort();
        },
        async nextBar(f, after) {
          const rows = await gw.fetchOHLCV(f.symbol, f.timeframe, after + timeframeMs(f.timeframe), 1);
          const r = rows.find((x) => typeof x[0] === 'number' && x[0] > after);
          return r === undefined ? undefined : barFromOhlcv(r);
        },
        async *[Symbol.asyncIterator](): AsyncGenerator<BarEvent> {
          // Warm-up history first (REST), flagged so the strategy never acts on it.
          const warm = o.warmupBars ?? 500;
          let resumeAfter = after;
          // Resuming: bars that closed before now were missed while the bot was down. The
          // forming bar's open time (the exchange's latest candle) tells them from live ones.
          const tfMs = timeframeMs(feed.timeframe);
          const liveFrom =
            after === undefined
              ? Number.NEGATIVE_INFINITY
              : ((await gw.fetchOHLCV(feed.symbol, feed.timeframe, undefined, 1))[0]?.[0] ?? Number.NEGATIVE_INFINITY);
          if (warm > 0 && after === undefined) {
            const rows = await gw.fetchOHLCV(feed.symbol, feed.timeframe, undefined, warm + 1);
            const hist = rows.slice(0, -1); // the last row is still forming
            for (const r of hist) {
              if (closed) return;
              yield { feed, warmup: true, bar: barFromOhlcv(r) };
            }
            const lastHist = hist[hist.length - 1];
            if (lastHist) resumeAfter = lastHist[0] as number;
          } else if (warm > 0 && after !== undefined) {
            // Resuming: the same history, up to the last bar the bot handled, warms the strategy
            // up again (a restart's indicators and state start empty); the stream goes on after it.
            const rows = await gw.fetchOHLCV(feed.symbol, feed.timeframe, after - (warm - 1) * tfMs, warm);
            for (const r of rows) {
              if (closed) return;
              if ((r[0] as number) <= after) yield { feed, warmup: true, bar: barFromOhlcv(r) };
            }
          }
          for await (const b of watchCandles(gw, {
            symbol: feed.symbol,
            timeframe: feed.timeframe,
            ...(resumeAfter !== undefined ? { after: resumeAfter, backfill: 1000 } : {}),
            signal: ctl.signal,
            ...(o.staleAfterMs !== undefined ? { staleAfterMs: o.staleAfterMs } : {}),
            ...(o.reconnectMaxMs !== undefined ? { reconnect: { maxMs: o.reconnectMaxMs } } : {}),
            onReconnect: (reason, attempt) =>
              o.log(
                'warn',
                `candle stream ${feed.symbol} ${feed.timeframe} reconnecting (${reason}), attempt ${attempt}`,
              ),
          })) {
            if (closed) return;
            const missed = b.time < liveFrom ? (b.time + tfMs >= liveFrom ? 'last-missed' : 'missed') : undefined;
            yield {
              feed,
              bar: copyBar(b),
              receivedAt: performance.now(),
              ...(missed ? { catchUp: missed } : b.behind !== undefined ? { behind: b.behind } : {}),
            };
          }
        },
      };
    },
    async close() {
      abort.abort();
      await Promise.allSettled([...trackers.map((t) => t.stop()), cache?.stop()]);
      await gw.close();
    },
  };
}
