/**
 * The Binance spot REST API (/api/v3) over node:http: routing, request weights and rate limits,
 * HMAC-SHA256 signatures with timestamp/recvWindow, and the JSON shapes ccxt parses.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { INTERVAL_MS } from './bars.ts';
import {
  type Candle,
  type Engine,
  isOpen,
  type MarketState,
  type MyTrade,
  type OrderList,
  type PublicTrade,
} from './engine.ts';
import { binanceError, SimError } from './errors.ts';
import type { SimFaults } from './faults.ts';
import { fmt, parseDecimal } from './num.ts';
import type { SimOrder } from './types.ts';

type Params = Record<string, string>;

type Security = 'none' | 'apiKey' | 'signed';

interface Route {
  security: Security;
  weight: (p: Params) => number;
  handler: (ctx: Ctx) => unknown;
  /** Counts toward the ORDERS limits (X-MBX-ORDER-COUNT-*). */
  order?: boolean;
}

interface Ctx {
  params: Params;
  apiKey: string;
}

export interface RestDeps {
  engine: Engine;
  faults: SimFaults;
  wall: () => number;
  weightPerMinute: number;
  banAfter: number;
  banMs: number;
  listenKeys: Map<string, string>;
  onListenKeyClosed(listenKey: string): void;
}

const MAX_RECV_WINDOW = 60_000;

function depthWeight(p: Params): number {
  const limit = Number(p.limit ?? 100);
  if (limit <= 100) return 5;
  if (limit <= 500) return 25;
  if (limit <= 1000) return 50;
  return 250;
}

const bySymbol = (withSymbol: number, without: number) => (p: Params) => (p.symbol ? withSymbol : without);

export class RestApi {
  private readonly routes: Record<string, Route>;
  private windowStart = 0;
  private used = 0;
  private orders10s = 0;
  private orders10sStart = 0;
  private ordersDay = 0;
  private strikes = 0;
  private bannedUntil = 0;
  private readonly held = new Set<ServerResponse>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly d: RestDeps) {
    const e = d.engine;
    this.routes = {
      'GET /api/v3/ping': { security: 'none', weight: () => 1, handler: () => ({}) },
      'GET /api/v3/time': { security: 'none', weight: () => 1, handler: () => ({ serverTime: e.now() }) },
      'GET /api/v3/exchangeInfo': { security: 'none', weight: () => 20, handler: () => this.exchangeInfo() },
      'GET /api/v3/klines': { security: 'none', weight: () => 2, handler: ({ params }) => this.klines(params) },
      'GET /api/v3/uiKlines': { security: 'none', weight: () => 2, handler: ({ params }) => this.klines(params) },
      'GET /api/v3/depth': { security: 'none', weight: depthWeight, handler: ({ params }) => this.depth(params) },
      'GET /api/v3/trades': { security: 'none', weight: () => 25, handler: ({ params }) => this.trades(params) },
      'GET /api/v3/aggTrades': { security: 'none', weight: () => 4, handler: ({ params }) => this.aggTrades(params) },
      'GET /api/v3/ticker/24hr': {
        security: 'none',
        weight: bySymbol(2, 80),
        handler: ({ params }) => this.each(params, (m) => this.ticker24h(m)),
      },
      'GET /api/v3/ticker/price': {
        security: 'none',
        weight: bySymbol(2, 4),
        handler: ({ params }) => this.each(params, (m) => ({ symbol: m.id, price: fmt(m.price) })),
      },
      'GET /api/v3/ticker/bookTicker': {
        security: 'none',
        weight: bySymbol(2, 4),
        handler: ({ params }) => this.each(params, (m) => this.bookTicker(m)),
      },
      'GET /api/v3/avgPrice': {
        security: 'none',
        weight: () => 2,
        handler: ({ params }) => ({ mins: 5, price: fmt(this.market(params).price), closeTime: e.now() }),
      },
      'GET /api/v3/account': {
        security: 'signed',
        weight: () => 20,
        handler: ({ apiKey, params }) => this.accountInfo(apiKey, params),
      },
      'POST /api/v3/order': {
        security: 'signed',
        weight: () => 1,
        order: true,
        handler: ({ apiKey, params }) => this.newOrder(apiKey, params),
      },
      'POST /api/v3/orderList/oco': {
        security: 'signed',
        weight: () => 1,
        order: true,
        handler: ({ apiKey, params }) => this.newOco(apiKey, params),
      },
      'GET /api/v3/orderList': {
        security: 'signed',
        weight: () => 4,
        handler: ({ apiKey, params }) => {
          if (params.orderListId === undefined && params.origClientOrderId === undefined)
            throw binanceError(
              -1102,
              "Param 'origClientOrderId' or 'orderListId' must be sent, but both were empty/null!",
            );
          return orderListJson(
            this.d.engine.orderList(apiKey, optInt(params.orderListId), params.origClientOrderId),
            false,
          );
        },
      },
      'DELETE /api/v3/orderList': {
        security: 'signed',
        weight: () => 1,
        handler: ({ apiKey, params }) => {
          const list = this.d.engine.orderList(apiKey, optInt(params.orderListId), params.listClientOrderId);
          const open = list.legs.find((l) => isOpen(l.order));
          if (!open) throw binanceError(-2011, 'Unknown order sent.');
          this.d.engine.cancelOrder(apiKey, list.symbol, open.order.orderId, undefined, params.newClientOrderId);
          return orderListJson(list, true);
        },
      },
      'POST /api/v3/order/test': { security: 'signed', weight: () => 1, handler: () => ({}) },
      'POST /api/v3/order/cancelReplace': {
        security: 'signed',
        weight: () => 1,
        order: true,
        handler: ({ apiKey, params }) => this.cancelReplace(apiKey, params),
      },
      'GET /api/v3/account/commission': {
        security: 'signed',
        weight: () => 20,
        handler: ({ params }) => this.commission(this.market(params).id),
      },
      'GET /sapi/v1/asset/tradeFee': {
        security: 'signed',
        weight: () => 1,
        handler: ({ params }) =>
          [...this.d.engine.markets.values()]
            .filter((m) => !params.symbol || m.id === params.symbol)
            .map((m) => ({
              symbol: m.id,
              makerCommission: String(this.d.engine.fees.maker),
              takerCommission: String(this.d.engine.fees.taker),
            })),
      },
      'GET /api/v3/order': {
        security: 'signed',
        weight: () => 4,
        handler: ({ apiKey, params }) => this.queryOrder(apiKey, params),
      },
      'DELETE /api/v3/order': {
        security: 'signed',
        weight: () => 1,
        handler: ({ apiKey, params }) => this.cancelOrder(apiKey, params),
      },
      'GET /api/v3/openOrders': {
        security: 'signed',
        weight: bySymbol(6, 80),
        handler: ({ apiKey, params }) =>
          e.openOrders(apiKey, params.symbol ? this.market(params).id : undefined).map(orderJson),
      },
      'DELETE /api/v3/openOrders': {
        security: 'signed',
        weight: () => 1,
        handler: ({ apiKey, params }) => this.cancelAll(apiKey, params),
      },
      'GET /api/v3/allOrders': {
        security: 'signed',
        weight: () => 20,
        handler: ({ apiKey, params }) => this.allOrders(apiKey, params),
      },
      'GET /api/v3/myTrades': {
        security: 'signed',
        weight: () => 20,
        handler: ({ apiKey, params }) => this.myTrades(apiKey, params),
      },
      'POST /api/v3/userDataStream': {
        security: 'apiKey',
        weight: () => 2,
        handler: ({ apiKey }) => this.newListenKey(apiKey),
      },
      'PUT /api/v3/userDataStream': {
        security: 'apiKey',
        weight: () => 2,
        handler: ({ params }) => this.checkListenKey(params),
      },
      'DELETE /api/v3/userDataStream': {
        security: 'apiKey',
        weight: () => 2,
        handler: ({ params }) => this.closeListenKey(params),
      },
      // What ccxt's loadMarkets calls with its default options (see ccxtConfigFor): served so a
      // client configured with the URLs alone still loads; the sim has no futures or margin.
      'GET /fapi/v1/exchangeInfo': { security: 'none', weight: () => 1, handler: () => this.emptyExchangeInfo() },
      'GET /dapi/v1/exchangeInfo': { security: 'none', weight: () => 1, handler: () => this.emptyExchangeInfo() },
      'GET /sapi/v1/capital/config/getall': {
        security: 'signed',
        weight: () => 10,
        handler: ({ apiKey }) => this.coins(apiKey),
      },
      'GET /sapi/v1/margin/allPairs': { security: 'apiKey', weight: () => 1, handler: () => [] },
      'GET /sapi/v1/margin/isolated/allPairs': { security: 'signed', weight: () => 10, handler: () => [] },
      'GET /sapi/v1/system/status': {
        security: 'none',
        weight: () => 1,
        handler: () => ({ status: 0, msg: 'normal' }),
      },
    };
  }

  /** Runs a route's handler directly (the WebSocket API reuses the REST semantics). */
  run(routeKey: string, params: Params, apiKey: string): unknown {
    const route = this.routes[routeKey];
    if (!route) throw new Error(`no route ${routeKey}`);
    return route.handler({ params, apiKey });
  }

  private emptyExchangeInfo(): unknown {
    return {
      timezone: 'UTC',
      serverTime: this.d.engine.now(),
      rateLimits: [],
      exchangeFilters: [],
      assets: [],
      symbols: [],
    };
  }

  private coins(apiKey: string): unknown {
    const balances = this.d.engine.balances(apiKey);
    const assets = new Set<string>(Object.keys(balances));
    for (const m of this.d.engine.markets.values()) {
      assets.add(m.base);
      assets.add(m.quote);
    }
    return [...assets].sort().map((coin) => ({
      coin,
      name: coin,
      depositAllEnable: false,
      withdrawAllEnable: false,
      free: fmt(balances[coin]?.free ?? 0),
      locked: fmt(balances[coin]?.locked ?? 0),
      freeze: '0',
      withdrawing: '0',
      ipoing: '0',
      ipoable: '0',
      storage: '0',
      isLegalMoney: false,
      trading: true,
      networkList: [
        {
          network: coin,
          coin,
          name: coin,
          isDefault: true,
          depositEnable: false,
          withdrawEnable: false,
          withdrawFee: '0',
          withdrawMin: '0',
          withdrawMax: '0',
          withdrawIntegerMultiple: '0.00000001',
          depositDust: '0.00000001',
        },
      ],
    }));
  }

  /** Ends held responses and timers (server shutdown). */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const res of this.held) res.destroy();
    this.held.clear();
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = (req.method ?? 'GET').toUpperCase();
    const path = url.pathname.replace(/\/+$/, '');
    const rawQuery = url.search.startsWith('?') ? url.search.slice(1) : url.search;
    const rawBody = await readBody(req);
    const f = this.d.faults;

    const hold = f.take(f.holds, method, path);
    if (!hold) {
      this.respond(res, method, path, rawQuery, rawBody, req);
      return;
    }
    this.held.add(res);
    res.on('close', () => this.held.delete(res));
    // execute: the request takes effect now and only its response is lost or late.
    const early = hold.execute ? this.compute(method, path, rawQuery, rawBody, req) : undefined;
    if (hold.ms === undefined) return; // never answered: the client times out
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.held.delete(res);
      if (res.destroyed) return;
      if (early) writeReply(res, early);
      else this.respond(res, method, path, rawQuery, rawBody, req);
    }, hold.ms);
    this.timers.add(t);
  }

  private respond(
    res: ServerResponse,
    method: string,
    path: string,
    rawQuery: string,
    rawBody: string,
    req: IncomingMessage,
  ): void {
    writeReply(res, this.compute(method, path, rawQuery, rawBody, req));
  }

  private compute(method: string, path: string, rawQuery: string, rawBody: string, req: IncomingMessage): Reply {
    const f = this.d.faults;
    const burst = f.take(f.errorBursts, method, path);
    if (burst) {
      const status = burst.status ?? 503;
      if (burst.body === 'json')
        return reply(status, { code: -1001, msg: 'Internal error; unable to process your request. Please try again.' });
      return {
        status,
        text: `<html><head><title>${status}</title></head><body><h1>${status} Service Temporarily Unavailable</h1></body></html>`,
        headers: { 'content-type': 'text/html' },
      };
    }
    const route = this.routes[`${method} ${path}`];
    const params: Params = {};
    for (const [k, v] of new URLSearchParams(rawQuery)) params[k] = v;
    for (const [k, v] of new URLSearchParams(rawBody)) params[k] = v;

    // Weight is charged before anything else, as on Binance (even for requests that then fail).
    const now = this.d.wall();
    if (now < this.bannedUntil) return this.ban();
    if (f.storm > 0) {
      f.storm -= 1;
      return this.tooMany(now);
    }
    const minute = Math.floor(now / 60_000) * 60_000;
    if (minute !== this.windowStart) {
      this.windowStart = minute;
      this.used = 0;
      this.strikes = 0;
    }
    const weight = route ? route.weight(params) : 1;
    this.used += weight;
    const headers: Record<string, string> = {
      'x-mbx-used-weight': String(this.used),
      'x-mbx-used-weight-1m': String(this.used),
    };
    if (this.used > this.d.weightPerMinute) {
      this.strikes += 1;
      if (this.strikes > this.d.banAfter) {
        this.bannedUntil = now + this.d.banMs;
        return this.ban();
      }
      return this.tooMany(now);
    }
    if (!route) return reply(404, { code: -1000, msg: `Unknown endpoint ${method} ${path}` }, headers);
    if (route.order) {
      if (now - this.orders10sStart >= 10_000) {
        this.orders10sStart = Math.floor(now / 10_000) * 10_000;
        this.orders10s = 0;
      }
      this.orders10s += 1;
      this.ordersDay += 1;
      headers['x-mbx-order-count-10s'] = String(this.orders10s);
      headers['x-mbx-order-count-1d'] = String(this.ordersDay);
    }
    try {
      const apiKey = route.security === 'none' ? '' : this.authenticate(req, route.security, rawQuery, rawBody, params);
      return reply(200, route.handler({ params, apiKey }), headers);
    } catch (e) {
      if (e instanceof SimError) return reply(e.http, e.body(), headers);
      return reply(
        500,
        { code: -1000, msg: `An unknown error occurred while processing the request. (${(e as Error).message})` },
        headers,
      );
    }
  }

  private tooMany(now: number): Reply {
    const retry = Math.ceil((this.windowStart + 60_000 - now) / 1000);
    return reply(
      429,
      {
        code: -1003,
        msg: `Too much request weight used; current limit is ${this.d.weightPerMinute} request weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.`,
      },
      { 'retry-after': String(Math.max(1, retry)), 'x-mbx-used-weight-1m': String(this.used) },
    );
  }

  private ban(): Reply {
    const retry = Math.ceil((this.bannedUntil - this.d.wall()) / 1000);
    return reply(
      418,
      {
        code: -1003,
        msg: `Way too much request weight used; IP banned until ${this.bannedUntil}. Please use WebSocket Streams for live updates to avoid bans.`,
      },
      { 'retry-after': String(Math.max(1, retry)) },
    );
  }

  /** API key (-2014 format, -2015 unknown), then signature (-1022) and timestamp (-1021). */
  private authenticate(
    req: IncomingMessage,
    security: Security,
    rawQuery: string,
    rawBody: string,
    params: Params,
  ): string {
    const header = req.headers['x-mbx-apikey'];
    const apiKey = Array.isArray(header) ? header[0] : header;
    if (!apiKey || !/^[A-Za-z0-9_-]{1,128}$/.test(apiKey)) throw binanceError(-2014, 'API-key format invalid.', 401);
    const secret = this.d.engine.secretOf(apiKey);
    if (secret === undefined) throw binanceError(-2015, 'Invalid API-key, IP, or permissions for action.', 401);
    if (security === 'apiKey') return apiKey;
    if (!params.signature) throw mandatoryParam('signature');
    if (!params.timestamp) throw mandatoryParam('timestamp');
    // Binance signs totalParams = query string concatenated with the body, signature excluded.
    const strip = (s: string): string =>
      s
        .split('&')
        .filter((kv) => kv !== '' && !kv.startsWith('signature='))
        .join('&');
    const payload = strip(rawQuery) + strip(rawBody);
    if (!signatureMatches(payload, secret, params.signature))
      throw binanceError(-1022, 'Signature for this request is not valid.');
    checkTimestamp(params.timestamp, params.recvWindow, this.d.wall() + this.d.faults.clockSkewMs);
    return apiKey;
  }

  // ---------------------------------------------------------------- market data

  private market(params: Params): MarketState {
    if (!params.symbol) throw mandatoryParam('symbol');
    const m = this.d.engine.market(params.symbol);
    if (!m) throw binanceError(-1121, 'Invalid symbol.');
    return m;
  }

  private each(params: Params, f: (m: MarketState) => unknown): unknown {
    if (params.symbol) return f(this.market(params));
    if (params.symbols) {
      const ids = JSON.parse(params.symbols) as string[];
      return ids.map((id) => f(this.market({ symbol: id })));
    }
    return [...this.d.engine.markets.values()].map(f);
  }

  exchangeInfo(): unknown {
    const e = this.d.engine;
    return {
      timezone: 'UTC',
      serverTime: e.now(),
      rateLimits: [
        { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: this.d.weightPerMinute },
        { rateLimitType: 'ORDERS', interval: 'SECOND', intervalNum: 10, limit: 100 },
        { rateLimitType: 'ORDERS', interval: 'DAY', intervalNum: 1, limit: 200_000 },
        { rateLimitType: 'RAW_REQUESTS', interval: 'MINUTE', intervalNum: 5, limit: 61_000 },
      ],
      exchangeFilters: [],
      symbols: [...e.markets.values()].map((m) => ({
        symbol: m.id,
        status: 'TRADING',
        baseAsset: m.base,
        baseAssetPrecision: 8,
        quoteAsset: m.quote,
        quotePrecision: 8,
        quoteAssetPrecision: 8,
        baseCommissionPrecision: 8,
        quoteCommissionPrecision: 8,
        orderTypes: [
          'LIMIT',
          'LIMIT_MAKER',
          'MARKET',
          'STOP_LOSS',
          'STOP_LOSS_LIMIT',
          'TAKE_PROFIT',
          'TAKE_PROFIT_LIMIT',
        ],
        icebergAllowed: false,
        ocoAllowed: false,
        otoAllowed: false,
        quoteOrderQtyMarketAllowed: true,
        allowTrailingStop: false,
        cancelReplaceAllowed: true,
        amendAllowed: false,
        isSpotTradingAllowed: true,
        isMarginTradingAllowed: false,
        filters: [
          {
            filterType: 'PRICE_FILTER',
            minPrice: fmt(m.tickSize),
            maxPrice: '1000000.00000000',
            tickSize: fmt(m.tickSize),
          },
          { filterType: 'LOT_SIZE', minQty: fmt(m.minQty), maxQty: '9000.00000000', stepSize: fmt(m.stepSize) },
          { filterType: 'MARKET_LOT_SIZE', minQty: '0.00000000', maxQty: '9000.00000000', stepSize: '0.00000000' },
          {
            filterType: 'NOTIONAL',
            minNotional: fmt(m.minNotional),
            applyMinToMarket: true,
            maxNotional: '9000000.00000000',
            applyMaxToMarket: false,
            avgPriceMins: 5,
          },
          { filterType: 'MAX_NUM_ORDERS', maxNumOrders: 200 },
        ],
        permissions: [],
        permissionSets: [['SPOT']],
        defaultSelfTradePreventionMode: 'EXPIRE_MAKER',
        allowedSelfTradePreventionModes: ['EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH', 'NONE'],
      })),
    };
  }

  private klines(params: Params): unknown {
    const m = this.market(params);
    if (!params.interval) throw mandatoryParam('interval');
    const ms = INTERVAL_MS[params.interval];
    if (ms === undefined || ms < m.intervalMs || ms % m.intervalMs !== 0)
      throw binanceError(-1120, 'Invalid interval.');
    const limit = clampLimit(params.limit, 500, 1000);
    const start = params.startTime === undefined ? undefined : Number(params.startTime);
    const end = params.endTime === undefined ? undefined : Number(params.endTime);
    const engine = this.d.engine;
    const list = engine.candles(m, ms, start, end, limit);
    return list.map((c) => klineRow(c, ms));
  }

  private depth(params: Params): unknown {
    const m = this.market(params);
    const limit = clampLimit(params.limit, 100, 5000);
    const engine = this.d.engine;
    const book = engine.book(m, limit);
    return {
      lastUpdateId: book.lastUpdateId,
      bids: book.bids.map(([p, q]) => [fmt(p), fmt(q)]),
      asks: book.asks.map(([p, q]) => [fmt(p), fmt(q)]),
    };
  }

  private trades(params: Params): unknown {
    const m = this.market(params);
    const limit = clampLimit(params.limit, 500, 1000);
    return m.trades.slice(-limit).map((t) => ({
      id: t.id,
      price: fmt(t.price),
      qty: fmt(t.qty),
      quoteQty: fmt(t.price * t.qty),
      time: t.time,
      isBuyerMaker: t.isBuyerMaker,
      isBestMatch: true,
    }));
  }

  private aggTrades(params: Params): unknown {
    const m = this.market(params);
    const limit = clampLimit(params.limit, 500, 1000);
    const start = params.startTime === undefined ? Number.NEGATIVE_INFINITY : Number(params.startTime);
    const end = params.endTime === undefined ? Number.POSITIVE_INFINITY : Number(params.endTime);
    const from = params.fromId === undefined ? Number.NEGATIVE_INFINITY : Number(params.fromId);
    return m.trades
      .filter((t) => t.time >= start && t.time <= end && t.id >= from)
      .slice(-limit)
      .map(aggTradeJson);
  }

  ticker24h(m: MarketState): unknown {
    const e = this.d.engine;
    const s = e.ticker24h(m);
    const last = m.trades[m.trades.length - 1];
    const book = e.book(m, 1);
    const change = s.close - s.open;
    return {
      symbol: m.id,
      priceChange: fmt(change),
      priceChangePercent: (s.open > 0 ? (change / s.open) * 100 : 0).toFixed(3),
      weightedAvgPrice: fmt(s.volume > 0 ? s.quoteVolume / s.volume : s.close),
      prevClosePrice: fmt(s.open),
      lastPrice: fmt(m.price),
      lastQty: fmt(last?.qty ?? 0),
      bidPrice: fmt(book.bids[0]?.[0] ?? 0),
      bidQty: fmt(book.bids[0]?.[1] ?? 0),
      askPrice: fmt(book.asks[0]?.[0] ?? 0),
      askQty: fmt(book.asks[0]?.[1] ?? 0),
      openPrice: fmt(s.open),
      highPrice: fmt(s.high),
      lowPrice: fmt(s.low),
      volume: fmt(s.volume),
      quoteVolume: fmt(s.quoteVolume),
      openTime: s.openTime,
      closeTime: e.now(),
      firstId: m.trades[0]?.id ?? -1,
      lastId: last?.id ?? -1,
      count: s.trades,
    };
  }

  private bookTicker(em: MarketState): unknown {
    const book = this.d.engine.book(em, 1);
    return {
      symbol: em.id,
      bidPrice: fmt(book.bids[0]?.[0] ?? 0),
      bidQty: fmt(book.bids[0]?.[1] ?? 0),
      askPrice: fmt(book.asks[0]?.[0] ?? 0),
      askQty: fmt(book.asks[0]?.[1] ?? 0),
    };
  }

  // ---------------------------------------------------------------- account & orders

  private accountInfo(apiKey: string, params: Params): unknown {
    const e = this.d.engine;
    const bps = (r: number): number => Math.round(r * 10_000);
    const omitZero = params.omitZeroBalances === 'true';
    return {
      makerCommission: bps(e.fees.maker),
      takerCommission: bps(e.fees.taker),
      buyerCommission: 0,
      sellerCommission: 0,
      commissionRates: { maker: fmt(e.fees.maker), taker: fmt(e.fees.taker), buyer: fmt(0), seller: fmt(0) },
      canTrade: true,
      canWithdraw: true,
      canDeposit: true,
      brokered: false,
      requireSelfTradePrevention: false,
      preventSor: false,
      updateTime: e.now(),
      accountType: 'SPOT',
      balances: Object.entries(e.balances(apiKey))
        .filter(([, b]) => !omitZero || b.free > 0 || b.locked > 0)
        .map(([asset, b]) => ({ asset, free: fmt(b.free), locked: fmt(b.locked) })),
      permissions: ['SPOT'],
      uid: 0,
    };
  }

  private newOrder(apiKey: string, p: Params): unknown {
    const symbol = this.market(p).id;
    const num = (name: string): number | undefined => decimalParam(p, name);
    const o = this.d.engine.placeOrder(apiKey, {
      symbol,
      side: p.side,
      type: p.type,
      timeInForce: p.timeInForce,
      quantity: num('quantity'),
      quoteOrderQty: num('quoteOrderQty'),
      price: num('price'),
      stopPrice: num('stopPrice'),
      newClientOrderId: p.newClientOrderId,
    });
    const respType = p.newOrderRespType ?? (o.type === 'MARKET' || o.type === 'LIMIT' ? 'FULL' : 'ACK');
    const ack = {
      symbol: o.symbol,
      orderId: o.orderId,
      orderListId: o.orderListId,
      clientOrderId: o.clientOrderId,
      transactTime: o.time,
    };
    if (respType === 'ACK') return ack;
    const result = {
      ...ack,
      price: fmt(o.price),
      origQty: fmt(o.origQty),
      executedQty: fmt(o.executedQty),
      origQuoteOrderQty: fmt(o.origQuoteOrderQty),
      cummulativeQuoteQty: fmt(o.cummulativeQuoteQty),
      status: o.status,
      timeInForce: o.timeInForce ?? 'GTC',
      type: o.type,
      side: o.side,
      ...(o.stopPrice > 0 ? { stopPrice: fmt(o.stopPrice) } : {}),
      workingTime: o.workingTime,
      selfTradePreventionMode: 'EXPIRE_MAKER',
    };
    if (respType === 'RESULT') return result;
    return {
      ...result,
      fills: o.fills.map((f) => ({
        price: fmt(f.price),
        qty: fmt(f.qty),
        commission: fmt(f.commission),
        commissionAsset: f.commissionAsset,
        tradeId: f.tradeId,
      })),
    };
  }

  private newOco(apiKey: string, p: Params): unknown {
    const symbol = this.market(p).id;
    const num = (name: string): number | undefined => decimalParam(p, name);
    const leg = (at: 'above' | 'below') => ({
      type: p[`${at}Type`],
      price: num(`${at}Price`),
      stopPrice: num(`${at}StopPrice`),
      timeInForce: p[`${at}TimeInForce`],
      clientOrderId: p[`${at}ClientOrderId`],
    });
    const { list } = this.d.engine.placeOco(apiKey, {
      symbol,
      side: p.side,
      quantity: num('quantity'),
      listClientOrderId: p.listClientOrderId,
      above: leg('above'),
      below: leg('below'),
    });
    return orderListJson(list, true);
  }

  private queryOrder(apiKey: string, p: Params): unknown {
    const symbol = this.market(p).id;
    if (p.orderId === undefined && p.origClientOrderId === undefined)
      throw binanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!");
    return orderJson(this.d.engine.queryOrder(apiKey, symbol, optInt(p.orderId), p.origClientOrderId));
  }

  private cancelOrder(apiKey: string, p: Params): unknown {
    const symbol = this.market(p).id;
    if (p.orderId === undefined && p.origClientOrderId === undefined)
      throw binanceError(-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!");
    const o = this.d.engine.cancelOrder(apiKey, symbol, optInt(p.orderId), p.origClientOrderId, p.newClientOrderId);
    return cancelJson(o, p.newClientOrderId ?? `sim-cancel-${o.orderId}`);
  }

  /**
   * Cancel, then place (Binance's order/cancelReplace). STOP_ON_FAILURE (ccxt's editOrder) places
   * nothing when the cancel fails (-2022); a failed placement after a good cancel is -2021, 409.
   */
  private cancelReplace(apiKey: string, p: Params): unknown {
    const symbol = this.market(p).id;
    const mode = p.cancelReplaceMode;
    if (mode !== 'STOP_ON_FAILURE' && mode !== 'ALLOW_FAILURE') throw mandatoryParam('cancelReplaceMode');
    if (p.cancelOrderId === undefined && p.cancelOrigClientOrderId === undefined)
      throw binanceError(
        -1102,
        "Param 'cancelOrigClientOrderId' or 'cancelOrderId' must be sent, but both were empty/null!",
      );
    let cancelResponse: unknown;
    let cancelled = true;
    try {
      const o = this.d.engine.cancelOrder(
        apiKey,
        symbol,
        optInt(p.cancelOrderId),
        p.cancelOrigClientOrderId,
        p.cancelNewClientOrderId,
      );
      cancelResponse = cancelJson(o, p.cancelNewClientOrderId ?? `sim-cancel-${o.orderId}`);
    } catch (e) {
      if (!(e instanceof SimError)) throw e;
      cancelled = false;
      cancelResponse = e.body();
    }
    if (!cancelled && mode === 'STOP_ON_FAILURE') {
      throw new SimError(400, -2022, 'Order cancel-replace failed.', {
        data: { cancelResult: 'FAILURE', newOrderResult: 'NOT_ATTEMPTED', cancelResponse, newOrderResponse: null },
      });
    }
    const newParams: Params = { ...p };
    for (const k of ['cancelReplaceMode', 'cancelOrderId', 'cancelOrigClientOrderId', 'cancelNewClientOrderId'])
      delete newParams[k];
    try {
      const newOrderResponse = this.newOrder(apiKey, newParams);
      if (!cancelled) {
        throw new SimError(409, -2021, 'Order cancel-replace partially failed.', {
          data: { cancelResult: 'FAILURE', newOrderResult: 'SUCCESS', cancelResponse, newOrderResponse },
        });
      }
      return { cancelResult: 'SUCCESS', newOrderResult: 'SUCCESS', cancelResponse, newOrderResponse };
    } catch (e) {
      if (!(e instanceof SimError) || e.code === -2021) throw e;
      throw new SimError(
        cancelled ? 409 : 400,
        cancelled ? -2021 : -2022,
        cancelled ? 'Order cancel-replace partially failed.' : 'Order cancel-replace failed.',
        {
          data: {
            cancelResult: cancelled ? 'SUCCESS' : 'FAILURE',
            newOrderResult: 'FAILURE',
            cancelResponse,
            newOrderResponse: e.body(),
          },
        },
      );
    }
  }

  private commission(symbol: string): unknown {
    const f = this.d.engine.fees;
    const rates = (maker: number, taker: number) => ({
      maker: fmt(maker),
      taker: fmt(taker),
      buyer: fmt(0),
      seller: fmt(0),
    });
    return {
      symbol,
      standardCommission: rates(f.maker, f.taker),
      specialCommission: rates(0, 0),
      taxCommission: rates(0, 0),
      discount: { enabledForAccount: false, enabledForSymbol: false, discountAsset: 'BNB', discount: '0.75000000' },
    };
  }

  private cancelAll(apiKey: string, p: Params): unknown {
    const symbol = this.market(p).id;
    const open = this.d.engine.openOrders(apiKey, symbol);
    if (open.length === 0) throw binanceError(-2011, 'Unknown order sent.');
    return open.map((o) =>
      cancelJson(this.d.engine.cancelOrder(apiKey, symbol, o.orderId, undefined, undefined), `sim-cancel-${o.orderId}`),
    );
  }

  private allOrders(apiKey: string, p: Params): unknown {
    const symbol = this.market(p).id;
    const limit = clampLimit(p.limit, 500, 1000);
    const fromId = optInt(p.orderId) ?? 0;
    const start = p.startTime === undefined ? Number.NEGATIVE_INFINITY : Number(p.startTime);
    const end = p.endTime === undefined ? Number.POSITIVE_INFINITY : Number(p.endTime);
    const list = this.d.engine
      .ordersOf(apiKey, symbol)
      .filter((o) => o.orderId >= fromId && o.time >= start && o.time <= end);
    return (p.startTime !== undefined || p.orderId !== undefined ? list.slice(0, limit) : list.slice(-limit)).map(
      orderJson,
    );
  }

  private myTrades(apiKey: string, p: Params): unknown {
    const symbol = this.market(p).id;
    const limit = clampLimit(p.limit, 500, 1000);
    const start = p.startTime === undefined ? Number.NEGATIVE_INFINITY : Number(p.startTime);
    const end = p.endTime === undefined ? Number.POSITIVE_INFINITY : Number(p.endTime);
    const fromId = optInt(p.fromId) ?? 0;
    const orderId = optInt(p.orderId);
    const list = this.d.engine
      .myTrades(apiKey, symbol)
      .filter(
        (t) => t.time >= start && t.time <= end && t.id >= fromId && (orderId === undefined || t.orderId === orderId),
      );
    return (p.startTime !== undefined || p.fromId !== undefined ? list.slice(0, limit) : list.slice(-limit)).map(
      myTradeJson,
    );
  }

  private newListenKey(apiKey: string): unknown {
    for (const [k, owner] of this.d.listenKeys) if (owner === apiKey) return { listenKey: k };
    const listenKey = randomBytes(30).toString('base64url').slice(0, 60);
    this.d.listenKeys.set(listenKey, apiKey);
    return { listenKey };
  }

  private checkListenKey(p: Params): unknown {
    if (!p.listenKey) throw mandatoryParam('listenKey');
    if (!this.d.listenKeys.has(p.listenKey)) throw binanceError(-1125, 'This listenKey does not exist.');
    return {};
  }

  private closeListenKey(p: Params): unknown {
    this.checkListenKey(p);
    this.d.listenKeys.delete(p.listenKey!);
    this.d.onListenKeyClosed(p.listenKey!);
    return {};
  }
}

// ---------------------------------------------------------------- shapes

/** An aggregate trade (one sim trade each) as REST `aggTrades` and the `@aggTrade` stream show it. */
export function aggTradeJson(t: PublicTrade): {
  a: number;
  p: string;
  q: string;
  f: number;
  l: number;
  T: number;
  m: boolean;
  M: true;
} {
  return { a: t.id, p: fmt(t.price), q: fmt(t.qty), f: t.id, l: t.id, T: t.time, m: t.isBuyerMaker, M: true };
}

function decimalParam(p: Params, name: string): number | undefined {
  const v = p[name];
  if (v === undefined || v === '') return undefined;
  const n = parseDecimal(v);
  if (Number.isNaN(n))
    throw binanceError(
      -1100,
      `Illegal characters found in parameter '${name}'; legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.`,
    );
  return n;
}

/** An OCO list as Binance returns it (with the legs' full reports when just placed). */
function orderListJson(list: OrderList, withReports: boolean): unknown {
  const done = list.legs.every((l) => !isOpen(l.order));
  return {
    orderListId: list.orderListId,
    contingencyType: 'OCO',
    listStatusType: done ? 'ALL_DONE' : 'EXEC_STARTED',
    listOrderStatus: done ? 'ALL_DONE' : 'EXECUTING',
    listClientOrderId: list.listClientOrderId,
    transactionTime: list.transactionTime,
    symbol: list.symbol,
    orders: list.legs.map((l) => ({
      symbol: l.order.symbol,
      orderId: l.order.orderId,
      clientOrderId: l.order.clientOrderId,
    })),
    ...(withReports ? { orderReports: list.legs.map((l) => orderJson(l.order)) } : {}),
  };
}

export function orderJson(o: SimOrder): unknown {
  return {
    symbol: o.symbol,
    orderId: o.orderId,
    orderListId: o.orderListId,
    clientOrderId: o.clientOrderId,
    price: fmt(o.price),
    origQty: fmt(o.origQty),
    executedQty: fmt(o.executedQty),
    cummulativeQuoteQty: fmt(o.cummulativeQuoteQty),
    status: o.status,
    timeInForce: o.timeInForce ?? 'GTC',
    type: o.type,
    side: o.side,
    stopPrice: fmt(o.stopPrice),
    icebergQty: fmt(0),
    time: o.time,
    updateTime: o.updateTime,
    isWorking: o.isWorking,
    workingTime: o.workingTime,
    origQuoteOrderQty: fmt(o.origQuoteOrderQty),
    selfTradePreventionMode: 'EXPIRE_MAKER',
  };
}

function cancelJson(o: SimOrder, newClientOrderId: string): unknown {
  return {
    symbol: o.symbol,
    origClientOrderId: o.clientOrderId,
    orderId: o.orderId,
    orderListId: o.orderListId,
    clientOrderId: newClientOrderId,
    transactTime: o.updateTime,
    price: fmt(o.price),
    origQty: fmt(o.origQty),
    executedQty: fmt(o.executedQty),
    cummulativeQuoteQty: fmt(o.cummulativeQuoteQty),
    status: o.status,
    timeInForce: o.timeInForce ?? 'GTC',
    type: o.type,
    side: o.side,
    ...(o.stopPrice > 0 ? { stopPrice: fmt(o.stopPrice) } : {}),
    selfTradePreventionMode: 'EXPIRE_MAKER',
  };
}

function myTradeJson(t: MyTrade): unknown {
  return {
    symbol: t.symbol,
    id: t.id,
    orderId: t.orderId,
    orderListId: -1,
    price: fmt(t.price),
    qty: fmt(t.qty),
    quoteQty: fmt(t.quoteQty),
    commission: fmt(t.commission),
    commissionAsset: t.commissionAsset,
    time: t.time,
    isBuyer: t.isBuyer,
    isMaker: t.isMaker,
    isBestMatch: true,
  };
}

export function klineRow(c: Candle, intervalMs: number): unknown[] {
  return [
    c.time,
    fmt(c.open),
    fmt(c.high),
    fmt(c.low),
    fmt(c.close),
    fmt(c.volume),
    c.time + intervalMs - 1,
    fmt(c.quoteVolume),
    c.trades,
    fmt(c.volume / 2),
    fmt(c.quoteVolume / 2),
    '0',
  ];
}

// ---------------------------------------------------------------- helpers

export function signatureMatches(payload: string, secret: string, signature: string): boolean {
  const expected = createHmac('sha256', secret).update(payload).digest();
  if (!/^[0-9a-fA-F]{64}$/.test(signature)) return false;
  return timingSafeEqual(expected, Buffer.from(signature, 'hex'));
}

/** Binance: reject when timestamp >= serverTime + 1000 or serverTime - timestamp > recvWindow. */
export function checkTimestamp(timestampRaw: string, recvWindowRaw: string | undefined, serverTime: number): void {
  const timestamp = Number(timestampRaw);
  if (!Number.isInteger(timestamp))
    throw binanceError(-1100, "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'.");
  const recvWindow = recvWindowRaw === undefined ? 5000 : Number(recvWindowRaw);
  if (!(recvWindow > 0) || recvWindow > MAX_RECV_WINDOW)
    throw binanceError(-1131, 'recvWindow must be less than 60000');
  if (timestamp >= serverTime + 1000)
    throw binanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.");
  if (serverTime - timestamp > recvWindow)
    throw binanceError(-1021, 'Timestamp for this request is outside of the recvWindow.');
}

function mandatoryParam(name: string): SimError {
  return binanceError(-1102, `Mandatory parameter '${name}' was not sent, was empty/null, or malformed.`);
}

function optInt(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw binanceError(-1100, 'Illegal characters found in a parameter.');
  return n;
}

function clampLimit(v: string | undefined, def: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw binanceError(-1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.");
  return Math.min(n, max);
}

interface Reply {
  status: number;
  text: string;
  headers: Record<string, string>;
}

function reply(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, text: JSON.stringify(body), headers };
}

function writeReply(res: ServerResponse, r: Reply): void {
  res.writeHead(r.status, {
    'content-type': 'application/json;charset=UTF-8',
    ...r.headers,
    'content-length': Buffer.byteLength(r.text),
  });
  res.end(r.text);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
