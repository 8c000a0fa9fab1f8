/** OCO order-list routes: place (orderList/oco), query and cancel a list. */
import { orderListJson } from '../binance-json.ts';
import { binanceError } from '../errors.ts';
import { isOpen } from '../exchange/model.ts';
import type { OcoLegRequest } from '../exchange/order-lists.ts';
import type { SpotExchange } from '../exchange/spot-exchange.ts';
import { decimalParam, intParam, marketParam, type Params } from './params.ts';
import { fixedWeight, type RouteTable } from './routes.ts';

export function orderListRoutes(exchange: SpotExchange): RouteTable {
  return {
    'POST /api/v3/orderList/oco': {
      security: 'signed',
      weight: fixedWeight(1),
      // Binance: an OCO list adds 2 to the unfilled order count.
      orders: 2,
      handler: ({ apiKey, params }) => {
        const symbol = marketParam(exchange, params).id;
        const { list } = exchange.placeOco(apiKey, {
          symbol,
          side: params.side,
          quantity: decimalParam(params, 'quantity'),
          listClientOrderId: params.listClientOrderId,
          above: ocoLeg(params, 'above'),
          below: ocoLeg(params, 'below'),
        });
        return orderListJson(list, true);
      },
    },
    'GET /api/v3/orderList': {
      security: 'signed',
      weight: fixedWeight(4),
      handler: ({ apiKey, params }) => {
        if (params.orderListId === undefined && params.origClientOrderId === undefined)
          throw binanceError(
            -1102,
            "Param 'origClientOrderId' or 'orderListId' must be sent, but both were empty/null!",
          );
        return orderListJson(exchange.orderList(apiKey, intParam(params.orderListId), params.origClientOrderId), false);
      },
    },
    'DELETE /api/v3/orderList': {
      security: 'signed',
      weight: fixedWeight(1),
      handler: ({ apiKey, params }) => {
        const list = exchange.orderList(apiKey, intParam(params.orderListId), params.listClientOrderId);
        const open = list.legs.find((l) => isOpen(l.order));
        if (!open) throw binanceError(-2011, 'Unknown order sent.');
        exchange.cancelOrder(apiKey, list.symbol, open.order.orderId, undefined, params.newClientOrderId);
        return orderListJson(list, true);
      },
    },
  };
}

function ocoLeg(p: Params, at: 'above' | 'below'): OcoLegRequest {
  return {
    type: p[`${at}Type`],
    price: decimalParam(p, `${at}Price`),
    stopPrice: decimalParam(p, `${at}StopPrice`),
    timeInForce: p[`${at}TimeInForce`],
    clientOrderId: p[`${at}ClientOrderId`],
  };
}
