/**
 * USDⓈ-M order routes: orders (`/fapi/v1/order`, LIMIT and MARKET), conditional orders (the Algo
 * Order API, `/fapi/v1/algoOrder`, where ccxt sends STOP_MARKET, TAKE_PROFIT_MARKET, STOP and
 * TAKE_PROFIT), open orders, cancels, order and trade history, and forced orders.
 */
import { algoOrderJson, forceOrderJson, futuresOrderJson, futuresTradeJson } from '../../binance-futures-json.ts';
import { binanceError } from '../../errors.ts';
import type { FuturesExchange } from '../../exchange/futures/futures-exchange.ts';
import type { FuturesMarket } from '../../exchange/futures/ledger.ts';
import type { SimAlgoOrder, SimFuturesOrder } from '../../exchange/futures/model.ts';
import { decimalParam, intParam, limitParam, marketParam, type Params, timeParam } from '../params.ts';
import { fixedWeight, type RouteTable, weightBySymbol } from '../routes.ts';

export function futuresOrderRoutes(exchange: FuturesExchange): RouteTable {
  const signed = (
    weight: number | ((p: Params) => number),
    handler: (apiKey: string, p: Params) => unknown,
    orders?: number,
  ) => ({
    security: 'signed' as const,
    weight: typeof weight === 'number' ? fixedWeight(weight) : weight,
    ...(orders === undefined ? {} : { orders }),
    handler: ({ apiKey, params }: { apiKey: string; params: Params }) => handler(apiKey, params),
  });
  const market = (id: string): FuturesMarket => exchange.market(id) as FuturesMarket;
  const order = (o: SimFuturesOrder): unknown => futuresOrderJson(market(o.symbol), o);
  const algo = (apiKey: string, a: SimAlgoOrder): unknown => {
    const actual = a.actualOrderId
      ? exchange.matching.ordersOf(apiKey, a.symbol).find((o) => String(o.orderId) === a.actualOrderId)
      : undefined;
    return algoOrderJson(market(a.symbol), a, actual);
  };
  const oneOf = (p: Params, a: string, b: string): void => {
    if (p[a] === undefined && p[b] === undefined)
      throw binanceError(-1102, `Param '${a}' or '${b}' must be sent, but both were empty/null!`);
  };
  const history = <T extends { time: number }>(rows: T[], p: Params, idOf: (r: T) => number, idParam: string): T[] => {
    const limit = limitParam(p.limit, 500, 1000);
    const start = timeParam(p.startTime, Number.NEGATIVE_INFINITY);
    const end = timeParam(p.endTime, Number.POSITIVE_INFINITY);
    const fromId = intParam(p[idParam]) ?? 0;
    const kept = rows.filter((r) => r.time >= start && r.time <= end && idOf(r) >= fromId);
    const fromStart = p.startTime !== undefined || p[idParam] !== undefined;
    return fromStart ? kept.slice(0, limit) : kept.slice(-limit);
  };
  return {
    'POST /fapi/v1/order': signed(
      0,
      (apiKey, p) => {
        const symbol = marketParam(exchange, p).id;
        return order(
          exchange.matching.placeOrder(apiKey, {
            symbol,
            side: p.side,
            positionSide: p.positionSide,
            type: p.type,
            timeInForce: p.timeInForce,
            quantity: decimalParam(p, 'quantity'),
            price: decimalParam(p, 'price'),
            reduceOnly: p.reduceOnly,
            closePosition: p.closePosition,
            newClientOrderId: p.newClientOrderId,
            goodTillDate: intParam(p.goodTillDate),
          }),
        );
      },
      1,
    ),
    'GET /fapi/v1/order': signed(1, (apiKey, p) => {
      const symbol = marketParam(exchange, p).id;
      oneOf(p, 'orderId', 'origClientOrderId');
      return order(exchange.matching.queryOrder(apiKey, symbol, intParam(p.orderId), p.origClientOrderId));
    }),
    'DELETE /fapi/v1/order': signed(1, (apiKey, p) => {
      const symbol = marketParam(exchange, p).id;
      oneOf(p, 'orderId', 'origClientOrderId');
      return order(exchange.matching.cancelOrder(apiKey, symbol, intParam(p.orderId), p.origClientOrderId));
    }),
    'GET /fapi/v1/openOrder': signed(1, (apiKey, p) => {
      const symbol = marketParam(exchange, p).id;
      oneOf(p, 'orderId', 'origClientOrderId');
      const o = exchange.matching.queryOrder(apiKey, symbol, intParam(p.orderId), p.origClientOrderId);
      if (o.status !== 'NEW' && o.status !== 'PARTIALLY_FILLED') throw binanceError(-2013, 'Order does not exist.');
      return order(o);
    }),
    'GET /fapi/v1/openOrders': signed(weightBySymbol(1, 40), (apiKey, p) =>
      exchange.matching.openOrders(apiKey, p.symbol ? marketParam(exchange, p).id : undefined).map(order),
    ),
    'DELETE /fapi/v1/allOpenOrders': signed(1, (apiKey, p) => {
      exchange.matching.cancelAll(apiKey, marketParam(exchange, p).id);
      return { code: 200, msg: 'The operation of cancel all open order is done.' };
    }),
    'GET /fapi/v1/allOrders': signed(5, (apiKey, p) => {
      const symbol = marketParam(exchange, p).id;
      return history(exchange.matching.ordersOf(apiKey, symbol), p, (o) => o.orderId, 'orderId').map(order);
    }),
    'GET /fapi/v1/userTrades': signed(5, (apiKey, p) => {
      const m = market(marketParam(exchange, p).id);
      const orderId = intParam(p.orderId);
      const trades = exchange.ledger.trades(apiKey, m.id).filter((t) => orderId === undefined || t.orderId === orderId);
      return history(trades, p, (t) => t.id, 'fromId').map((t) => futuresTradeJson(m, t));
    }),
    'POST /fapi/v1/algoOrder': signed(
      0,
      (apiKey, p) => {
        const symbol = marketParam(exchange, p).id;
        return algo(
          apiKey,
          exchange.algos.place(apiKey, {
            symbol,
            algoType: p.algoType,
            side: p.side,
            positionSide: p.positionSide,
            type: p.type,
            timeInForce: p.timeInForce,
            quantity: decimalParam(p, 'quantity'),
            price: decimalParam(p, 'price'),
            triggerPrice: decimalParam(p, 'triggerPrice'),
            reduceOnly: p.reduceOnly,
            closePosition: p.closePosition,
            clientAlgoId: p.clientAlgoId,
            workingType: p.workingType,
          }),
        );
      },
      1,
    ),
    'GET /fapi/v1/algoOrder': signed(1, (apiKey, p) => {
      oneOf(p, 'algoId', 'clientAlgoId');
      return algo(apiKey, exchange.algos.query(apiKey, intParam(p.algoId), p.clientAlgoId));
    }),
    'DELETE /fapi/v1/algoOrder': signed(1, (apiKey, p) => {
      oneOf(p, 'algoId', 'clientAlgoId');
      const symbol = p.symbol ? marketParam(exchange, p).id : undefined;
      const a = exchange.algos.cancel(apiKey, symbol, intParam(p.algoId), p.clientAlgoId);
      return { algoId: a.algoId, clientAlgoId: a.clientAlgoId, code: '200', msg: 'success' };
    }),
    'GET /fapi/v1/openAlgoOrders': signed(weightBySymbol(1, 40), (apiKey, p) =>
      exchange.algos.openAlgos(apiKey, p.symbol ? marketParam(exchange, p).id : undefined).map((a) => algo(apiKey, a)),
    ),
    'GET /fapi/v1/allAlgoOrders': signed(5, (apiKey, p) => {
      const symbol = marketParam(exchange, p).id;
      const rows = exchange.algos.algosOf(apiKey, symbol).map((a) => ({ ...a, time: a.createTime }));
      return history(rows, p, (a) => a.algoId, 'algoId').map((a) => algo(apiKey, a));
    }),
    'DELETE /fapi/v1/algoOpenOrders': signed(1, (apiKey, p) => {
      exchange.algos.cancelAll(apiKey, marketParam(exchange, p).id);
      return { code: 200, msg: 'The operation of cancel all open order is done.' };
    }),
    'GET /fapi/v1/forceOrders': signed(weightBySymbol(20, 50), (apiKey, p) => {
      const symbol = p.symbol ? marketParam(exchange, p).id : undefined;
      if (p.autoCloseType !== undefined && p.autoCloseType !== 'LIQUIDATION' && p.autoCloseType !== 'ADL')
        throw binanceError(-1100, "Illegal characters found in parameter 'autoCloseType'.");
      // Without autoCloseType Binance lists both kinds; a settlement close is not a forced order there.
      const rows = exchange.liquidation
        .liquidations(apiKey)
        .filter((l) => l.autoCloseType !== 'SETTLEMENT')
        .filter((l) => symbol === undefined || l.symbol === symbol)
        .filter((l) => p.autoCloseType === undefined || l.autoCloseType === p.autoCloseType)
        .map((l) => ({ ...l, time: l.order.time }));
      return history(rows, p, () => 0, 'none').map((l) => forceOrderJson(market(l.symbol), l));
    }),
  };
}
