/** Order routes: place, test, query, cancel, cancel-replace, open orders, order and trade history. */
import { accountTradeJson, cancelJson, newOrderJson, orderJson } from '../binance-json.ts';
import { binanceError, mandatoryParam, SimError } from '../errors.ts';
import { defaultCancelClientOrderId } from '../exchange/matching.ts';
import type { SpotExchange } from '../exchange/spot-exchange.ts';
import { decimalParam, intParam, limitParam, marketParam, type Params, timeParam } from './params.ts';
import { fixedWeight, type RouteTable, weightBySymbol } from './routes.ts';

export function orderRoutes(exchange: SpotExchange): RouteTable {
  return {
    'POST /api/v3/order': {
      security: 'signed',
      weight: fixedWeight(1),
      orders: 1,
      handler: ({ apiKey, params }) => newOrder(exchange, apiKey, params),
    },
    'POST /api/v3/order/test': { security: 'signed', weight: fixedWeight(1), handler: () => ({}) },
    'POST /api/v3/order/cancelReplace': {
      security: 'signed',
      weight: fixedWeight(1),
      orders: 1,
      handler: ({ apiKey, params }) => cancelReplace(exchange, apiKey, params),
    },
    'GET /api/v3/order': {
      security: 'signed',
      weight: fixedWeight(4),
      handler: ({ apiKey, params }) => {
        const symbol = marketParam(exchange, params).id;
        requireOneOf(params, 'origClientOrderId', 'orderId');
        return orderJson(exchange.queryOrder(apiKey, symbol, intParam(params.orderId), params.origClientOrderId));
      },
    },
    'DELETE /api/v3/order': {
      security: 'signed',
      weight: fixedWeight(1),
      handler: ({ apiKey, params }) => {
        const symbol = marketParam(exchange, params).id;
        requireOneOf(params, 'origClientOrderId', 'orderId');
        const o = exchange.cancelOrder(
          apiKey,
          symbol,
          intParam(params.orderId),
          params.origClientOrderId,
          params.newClientOrderId,
        );
        return cancelJson(o, params.newClientOrderId ?? defaultCancelClientOrderId(o.orderId));
      },
    },
    'GET /api/v3/openOrders': {
      security: 'signed',
      weight: weightBySymbol(6, 80),
      handler: ({ apiKey, params }) =>
        exchange.openOrders(apiKey, params.symbol ? marketParam(exchange, params).id : undefined).map(orderJson),
    },
    'DELETE /api/v3/openOrders': {
      security: 'signed',
      weight: fixedWeight(1),
      handler: ({ apiKey, params }) => {
        const symbol = marketParam(exchange, params).id;
        const open = exchange.openOrders(apiKey, symbol);
        if (open.length === 0) throw binanceError(-2011, 'Unknown order sent.');
        return open.map((o) =>
          cancelJson(
            exchange.cancelOrder(apiKey, symbol, o.orderId, undefined, undefined),
            defaultCancelClientOrderId(o.orderId),
          ),
        );
      },
    },
    'GET /api/v3/allOrders': {
      security: 'signed',
      weight: fixedWeight(20),
      handler: ({ apiKey, params }) => {
        const symbol = marketParam(exchange, params).id;
        const limit = limitParam(params.limit, 500, 1000);
        const fromId = intParam(params.orderId) ?? 0;
        const start = timeParam(params.startTime, Number.NEGATIVE_INFINITY);
        const end = timeParam(params.endTime, Number.POSITIVE_INFINITY);
        const orders = exchange
          .ordersOf(apiKey, symbol)
          .filter((o) => o.orderId >= fromId && o.time >= start && o.time <= end);
        const fromStart = params.startTime !== undefined || params.orderId !== undefined;
        return (fromStart ? orders.slice(0, limit) : orders.slice(-limit)).map(orderJson);
      },
    },
    'GET /api/v3/myTrades': {
      security: 'signed',
      weight: fixedWeight(20),
      handler: ({ apiKey, params }) => {
        const symbol = marketParam(exchange, params).id;
        const limit = limitParam(params.limit, 500, 1000);
        const start = timeParam(params.startTime, Number.NEGATIVE_INFINITY);
        const end = timeParam(params.endTime, Number.POSITIVE_INFINITY);
        const fromId = intParam(params.fromId) ?? 0;
        const orderId = intParam(params.orderId);
        const trades = exchange
          .myTrades(apiKey, symbol)
          .filter(
            (t) =>
              t.time >= start && t.time <= end && t.id >= fromId && (orderId === undefined || t.orderId === orderId),
          );
        const fromStart = params.startTime !== undefined || params.fromId !== undefined;
        return (fromStart ? trades.slice(0, limit) : trades.slice(-limit)).map(accountTradeJson);
      },
    },
  };
}

function requireOneOf(p: Params, a: string, b: string): void {
  if (p[a] === undefined && p[b] === undefined)
    throw binanceError(-1102, `Param '${a}' or '${b}' must be sent, but both were empty/null!`);
}

function newOrder(exchange: SpotExchange, apiKey: string, p: Params): unknown {
  const symbol = marketParam(exchange, p).id;
  const o = exchange.placeOrder(apiKey, {
    symbol,
    side: p.side,
    type: p.type,
    timeInForce: p.timeInForce,
    quantity: decimalParam(p, 'quantity'),
    quoteOrderQty: decimalParam(p, 'quoteOrderQty'),
    price: decimalParam(p, 'price'),
    stopPrice: decimalParam(p, 'stopPrice'),
    newClientOrderId: p.newClientOrderId,
  });
  // Binance's default answer is FULL for MARKET and LIMIT orders, ACK for the others.
  const respType = p.newOrderRespType ?? (o.type === 'MARKET' || o.type === 'LIMIT' ? 'FULL' : 'ACK');
  return newOrderJson(o, respType);
}

/**
 * Cancel, then place (Binance's order/cancelReplace). STOP_ON_FAILURE (ccxt's editOrder) places
 * nothing when the cancel fails (-2022); a failed placement after a good cancel is -2021, 409.
 */
function cancelReplace(exchange: SpotExchange, apiKey: string, p: Params): unknown {
  const symbol = marketParam(exchange, p).id;
  const mode = p.cancelReplaceMode;
  if (mode !== 'STOP_ON_FAILURE' && mode !== 'ALLOW_FAILURE') throw mandatoryParam('cancelReplaceMode');
  requireOneOf(p, 'cancelOrigClientOrderId', 'cancelOrderId');
  let cancelResponse: unknown;
  let cancelled = true;
  try {
    const o = exchange.cancelOrder(
      apiKey,
      symbol,
      intParam(p.cancelOrderId),
      p.cancelOrigClientOrderId,
      p.cancelNewClientOrderId,
    );
    cancelResponse = cancelJson(o, p.cancelNewClientOrderId ?? defaultCancelClientOrderId(o.orderId));
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
    const newOrderResponse = newOrder(exchange, apiKey, newParams);
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
