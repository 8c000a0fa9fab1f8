/**
 * Public USDⓈ-M market data (`/fapi/v1`, `/fapi/v2`): time, exchangeInfo, klines (mark and index
 * klines are the same candles: the mark price is the last price), depth, trades, tickers, and the
 * funding side: premiumIndex (mark price and the coming funding), fundingRate (past fundings),
 * fundingInfo.
 */
import { amt, futuresExchangeInfo } from '../../binance-futures-json.ts';
import { aggTradeJson, publicTradeJson } from '../../binance-json.ts';
import type { FuturesExchange } from '../../exchange/futures/futures-exchange.ts';
import type { FuturesMarket } from '../../exchange/futures/ledger.ts';
import type { MarketState } from '../../exchange/model.ts';
import { binanceDecimal } from '../../num.ts';
import { klines, ticker24h } from '../market-data.ts';
import { eachMarket, intParam, limitParam, marketParam, type Params, timeParam } from '../params.ts';
import { fixedWeight, publicRoute, type RouteTable, weightByLimit, weightBySymbol } from '../routes.ts';

/** fapi weights by `limit` (Binance's USDⓈ-M tables). */
const klineWeight = weightByLimit(
  500,
  [
    [99, 1],
    [499, 2],
    [1000, 5],
  ],
  10,
);
const depthWeight = weightByLimit(
  500,
  [
    [50, 2],
    [100, 5],
    [500, 10],
  ],
  20,
);

export function futuresMarketDataRoutes(exchange: FuturesExchange, weightPerMinute: number): RouteTable {
  const futures = (m: MarketState): FuturesMarket => m as FuturesMarket;
  const fapiKlines = (p: Params): unknown => klines(exchange, p, 1500);
  const premiumIndex = (m: MarketState): unknown => {
    const info = exchange.markPriceInfo(m.id);
    return {
      symbol: m.id,
      markPrice: binanceDecimal(m.price),
      indexPrice: binanceDecimal(m.price),
      estimatedSettlePrice: binanceDecimal(m.price),
      lastFundingRate: binanceDecimal(info?.fundingRate ?? 0),
      interestRate: '0.00010000',
      nextFundingTime: info?.nextFundingTime ?? 0,
      time: exchange.now(),
    };
  };
  const price = (m: MarketState) => ({ symbol: m.id, price: binanceDecimal(m.price), time: exchange.now() });
  return {
    'GET /fapi/v1/ping': publicRoute(fixedWeight(1), () => ({})),
    'GET /fapi/v1/time': publicRoute(fixedWeight(1), () => ({ serverTime: exchange.now() })),
    'GET /fapi/v1/exchangeInfo': publicRoute(fixedWeight(1), () =>
      futuresExchangeInfo([...exchange.markets.values()].map(futures), exchange.now(), weightPerMinute, (id) =>
        exchange.matching.status(id),
      ),
    ),
    'GET /fapi/v1/klines': publicRoute(klineWeight, fapiKlines),
    'GET /fapi/v1/markPriceKlines': publicRoute(klineWeight, fapiKlines),
    'GET /fapi/v1/indexPriceKlines': publicRoute(klineWeight, (p) =>
      fapiKlines({ ...p, symbol: p.pair ?? p.symbol ?? '' }),
    ),
    'GET /fapi/v1/depth': publicRoute(depthWeight, (p) => {
      const book = exchange.book.snapshot(marketParam(exchange, p), limitParam(p.limit, 500, 1000));
      return {
        lastUpdateId: book.lastUpdateId,
        E: exchange.now(),
        T: exchange.now(),
        bids: book.bids.map(([pr, q]) => [binanceDecimal(pr), binanceDecimal(q)]),
        asks: book.asks.map(([pr, q]) => [binanceDecimal(pr), binanceDecimal(q)]),
      };
    }),
    'GET /fapi/v1/trades': publicRoute(fixedWeight(5), (p) => {
      const m = marketParam(exchange, p);
      return m.trades.slice(-limitParam(p.limit, 500, 1000)).map(publicTradeJson);
    }),
    'GET /fapi/v1/aggTrades': publicRoute(fixedWeight(20), (p) => {
      const m = marketParam(exchange, p);
      const start = timeParam(p.startTime, Number.NEGATIVE_INFINITY);
      const end = timeParam(p.endTime, Number.POSITIVE_INFINITY);
      const from = intParam(p.fromId) ?? Number.NEGATIVE_INFINITY;
      return m.trades
        .filter((t) => t.time >= start && t.time <= end && t.id >= from)
        .slice(-limitParam(p.limit, 500, 1000))
        .map(aggTradeJson);
    }),
    'GET /fapi/v1/ticker/24hr': publicRoute(weightBySymbol(1, 40), (p) =>
      eachMarket(exchange, p, (m) => {
        // Spot's ticker without what a futures ticker does not carry (previous close, the book).
        const { prevClosePrice, bidPrice, bidQty, askPrice, askQty, ...ticker } = ticker24h(exchange, m);
        return ticker;
      }),
    ),
    'GET /fapi/v1/ticker/price': publicRoute(weightBySymbol(1, 2), (p) => eachMarket(exchange, p, price)),
    'GET /fapi/v2/ticker/price': publicRoute(weightBySymbol(1, 2), (p) => eachMarket(exchange, p, price)),
    'GET /fapi/v1/ticker/bookTicker': publicRoute(weightBySymbol(2, 5), (p) =>
      eachMarket(exchange, p, (m) => {
        const book = exchange.book.snapshot(m, 1);
        return {
          symbol: m.id,
          bidPrice: binanceDecimal(book.bids[0]?.[0] ?? 0),
          bidQty: binanceDecimal(book.bids[0]?.[1] ?? 0),
          askPrice: binanceDecimal(book.asks[0]?.[0] ?? 0),
          askQty: binanceDecimal(book.asks[0]?.[1] ?? 0),
          time: exchange.now(),
        };
      }),
    ),
    'GET /fapi/v1/premiumIndex': publicRoute(fixedWeight(1), (p) => eachMarket(exchange, p, premiumIndex)),
    'GET /fapi/v1/fundingRate': publicRoute(fixedWeight(1), (p) => {
      const limit = limitParam(p.limit, 100, 1000);
      const symbols = p.symbol ? [marketParam(exchange, p).id] : [...exchange.markets.keys()];
      const start = timeParam(p.startTime, Number.NEGATIVE_INFINITY);
      const end = timeParam(p.endTime, Number.POSITIVE_INFINITY);
      const rows = symbols.flatMap((s) => exchange.fundingHistory(s, start, end)).sort((a, b) => a.time - b.time);
      // Binance: from startTime the first `limit`; otherwise the latest `limit`.
      const picked = p.startTime !== undefined ? rows.slice(0, limit) : rows.slice(-limit);
      return picked.map((f) => {
        const mark = exchange.priceAt(f.symbol, f.time);
        return {
          symbol: f.symbol,
          fundingRate: binanceDecimal(f.rate),
          fundingTime: f.time,
          markPrice: Number.isFinite(mark) ? amt(mark) : '',
        };
      });
    }),
    'GET /fapi/v1/fundingInfo': publicRoute(fixedWeight(1), () =>
      [...exchange.markets.keys()].map((symbol) => ({
        symbol,
        adjustedFundingRateCap: '0.03000000',
        adjustedFundingRateFloor: '-0.03000000',
        fundingIntervalHours: exchange.markPriceInfo(symbol)?.fundingIntervalHours ?? 8,
        disclaimer: false,
      })),
    ),
  };
}
