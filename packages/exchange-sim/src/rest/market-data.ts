/**
 * Public market-data routes: server time, exchangeInfo, klines, depth, trades, tickers. Candles,
 * trades and tickers come from the replay; the book is the synthetic one.
 */
import { INTERVAL_MS } from '../bars.ts';
import { aggTradeJson, klineRow, publicTradeJson } from '../binance-json.ts';
import { binanceError, mandatoryParam } from '../errors.ts';
import type { MarketState } from '../exchange/model.ts';
import type { SpotExchange } from '../exchange/spot-exchange.ts';
import type { SimVenue } from '../exchange/venue.ts';
import { binanceDecimal } from '../num.ts';
import { eachMarket, intParam, limitParam, marketParam, type Params, timeParam } from './params.ts';
import { fixedWeight, publicRoute, type RouteTable, weightByLimit, weightBySymbol } from './routes.ts';

export function marketDataRoutes(exchange: SpotExchange, weightPerMinute: number): RouteTable {
  return {
    'GET /api/v3/ping': publicRoute(fixedWeight(1), () => ({})),
    'GET /api/v3/time': publicRoute(fixedWeight(1), () => ({ serverTime: exchange.now() })),
    'GET /api/v3/exchangeInfo': publicRoute(fixedWeight(20), () => exchangeInfo(exchange, weightPerMinute)),
    'GET /api/v3/klines': publicRoute(fixedWeight(2), (p) => klines(exchange, p)),
    'GET /api/v3/uiKlines': publicRoute(fixedWeight(2), (p) => klines(exchange, p)),
    'GET /api/v3/depth': publicRoute(
      weightByLimit(
        100,
        [
          [100, 5],
          [500, 25],
          [1000, 50],
        ],
        250,
      ),
      (p) => depth(exchange, p),
    ),
    'GET /api/v3/trades': publicRoute(fixedWeight(25), (p) => {
      const m = marketParam(exchange, p);
      return m.trades.slice(-limitParam(p.limit, 500, 1000)).map(publicTradeJson);
    }),
    'GET /api/v3/historicalTrades': publicRoute(fixedWeight(25), (p) => historicalTrades(exchange, p)),
    'GET /api/v3/aggTrades': publicRoute(fixedWeight(4), (p) => aggTrades(exchange, p)),
    'GET /api/v3/ticker/24hr': publicRoute(weightBySymbol(2, 80), (p) =>
      eachMarket(exchange, p, (m) => ticker24h(exchange, m)),
    ),
    'GET /api/v3/ticker/price': publicRoute(weightBySymbol(2, 4), (p) =>
      eachMarket(exchange, p, (m) => ({ symbol: m.id, price: binanceDecimal(m.price) })),
    ),
    'GET /api/v3/ticker/bookTicker': publicRoute(weightBySymbol(2, 4), (p) =>
      eachMarket(exchange, p, (m) => bookTicker(exchange, m)),
    ),
    'GET /api/v3/avgPrice': publicRoute(fixedWeight(2), (p) => ({
      mins: 5,
      price: binanceDecimal(marketParam(exchange, p).price),
      closeTime: exchange.now(),
    })),
    // What ccxt's loadMarkets calls with its default options (see ccxtConfigFor): served so a
    // client configured with the URLs alone still loads; the sim has no futures.
    'GET /fapi/v1/exchangeInfo': publicRoute(fixedWeight(1), () => noSymbolsExchangeInfo(exchange)),
    'GET /dapi/v1/exchangeInfo': publicRoute(fixedWeight(1), () => noSymbolsExchangeInfo(exchange)),
    'GET /sapi/v1/system/status': publicRoute(fixedWeight(1), () => ({ status: 0, msg: 'normal' })),
  };
}

export function exchangeInfo(exchange: SpotExchange, weightPerMinute: number): unknown {
  return {
    timezone: 'UTC',
    serverTime: exchange.now(),
    rateLimits: [
      { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: weightPerMinute },
      { rateLimitType: 'ORDERS', interval: 'SECOND', intervalNum: 10, limit: 100 },
      { rateLimitType: 'ORDERS', interval: 'DAY', intervalNum: 1, limit: 200_000 },
      { rateLimitType: 'RAW_REQUESTS', interval: 'MINUTE', intervalNum: 5, limit: 61_000 },
    ],
    exchangeFilters: [],
    symbols: [...exchange.markets.values()].map((m) => ({
      symbol: m.id,
      status: exchange.matching.status(m.id),
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
          minPrice: binanceDecimal(m.tickSize),
          maxPrice: '1000000.00000000',
          tickSize: binanceDecimal(m.tickSize),
        },
        {
          filterType: 'LOT_SIZE',
          minQty: binanceDecimal(m.minQty),
          maxQty: '9000.00000000',
          stepSize: binanceDecimal(m.stepSize),
        },
        { filterType: 'MARKET_LOT_SIZE', minQty: '0.00000000', maxQty: '9000.00000000', stepSize: '0.00000000' },
        {
          filterType: 'NOTIONAL',
          minNotional: binanceDecimal(m.minNotional),
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

function noSymbolsExchangeInfo(exchange: SpotExchange): unknown {
  return { timezone: 'UTC', serverTime: exchange.now(), rateLimits: [], exchangeFilters: [], assets: [], symbols: [] };
}

/**
 * Klines of any interval that is a multiple of the data's. As on Binance, `startTime` and
 * `endTime` select by open time (the candle holding startTime is not returned when it opened
 * before it); with neither, the latest candles.
 */
export function klines(exchange: SimVenue, p: Params, maxLimit = 1000): unknown {
  const m = marketParam(exchange, p);
  if (!p.interval) throw mandatoryParam('interval');
  const ms = INTERVAL_MS[p.interval];
  if (ms === undefined || ms < m.intervalMs || ms % m.intervalMs !== 0) throw binanceError(-1120, 'Invalid interval.');
  const limit = limitParam(p.limit, 500, maxLimit);
  return exchange.replay.candles(m, ms, intParam(p.startTime), intParam(p.endTime), limit).map((c) => klineRow(c, ms));
}

function depth(exchange: SpotExchange, p: Params): unknown {
  const book = exchange.book.snapshot(marketParam(exchange, p), limitParam(p.limit, 100, 5000));
  return {
    lastUpdateId: book.lastUpdateId,
    bids: book.bids.map(([price, qty]) => [binanceDecimal(price), binanceDecimal(qty)]),
    asks: book.asks.map(([price, qty]) => [binanceDecimal(price), binanceDecimal(qty)]),
  };
}

/** Older trades by id (`fromId`), else the latest; only the tape the sim keeps (1000 per market). */
function historicalTrades(exchange: SpotExchange, p: Params): unknown {
  const m = marketParam(exchange, p);
  const limit = limitParam(p.limit, 500, 1000);
  const fromId = intParam(p.fromId);
  const trades = fromId === undefined ? m.trades.slice(-limit) : m.trades.filter((t) => t.id >= fromId).slice(0, limit);
  return trades.map(publicTradeJson);
}

function aggTrades(exchange: SpotExchange, p: Params): unknown {
  const m = marketParam(exchange, p);
  const limit = limitParam(p.limit, 500, 1000);
  const start = timeParam(p.startTime, Number.NEGATIVE_INFINITY);
  const end = timeParam(p.endTime, Number.POSITIVE_INFINITY);
  const from = intParam(p.fromId) ?? Number.NEGATIVE_INFINITY;
  return m.trades
    .filter((t) => t.time >= start && t.time <= end && t.id >= from)
    .slice(-limit)
    .map(aggTradeJson);
}

export function ticker24h(exchange: SimVenue, m: MarketState): Record<string, unknown> {
  const s = exchange.replay.dayStats(m);
  const last = m.trades[m.trades.length - 1];
  const book = exchange.book.snapshot(m, 1);
  const change = s.close - s.open;
  return {
    symbol: m.id,
    priceChange: binanceDecimal(change),
    priceChangePercent: (s.open > 0 ? (change / s.open) * 100 : 0).toFixed(3),
    weightedAvgPrice: binanceDecimal(s.volume > 0 ? s.quoteVolume / s.volume : s.close),
    prevClosePrice: binanceDecimal(s.open),
    lastPrice: binanceDecimal(m.price),
    lastQty: binanceDecimal(last?.qty ?? 0),
    bidPrice: binanceDecimal(book.bids[0]?.[0] ?? 0),
    bidQty: binanceDecimal(book.bids[0]?.[1] ?? 0),
    askPrice: binanceDecimal(book.asks[0]?.[0] ?? 0),
    askQty: binanceDecimal(book.asks[0]?.[1] ?? 0),
    openPrice: binanceDecimal(s.open),
    highPrice: binanceDecimal(s.high),
    lowPrice: binanceDecimal(s.low),
    volume: binanceDecimal(s.volume),
    quoteVolume: binanceDecimal(s.quoteVolume),
    openTime: s.openTime,
    closeTime: exchange.now(),
    firstId: m.trades[0]?.id ?? -1,
    lastId: last?.id ?? -1,
    count: s.trades,
  };
}

function bookTicker(exchange: SpotExchange, m: MarketState): unknown {
  const book = exchange.book.snapshot(m, 1);
  return {
    symbol: m.id,
    bidPrice: binanceDecimal(book.bids[0]?.[0] ?? 0),
    bidQty: binanceDecimal(book.bids[0]?.[1] ?? 0),
    askPrice: binanceDecimal(book.asks[0]?.[0] ?? 0),
    askQty: binanceDecimal(book.asks[0]?.[1] ?? 0),
  };
}
