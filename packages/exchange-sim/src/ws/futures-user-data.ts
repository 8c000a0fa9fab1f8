/**
 * USDⓈ-M user data: ORDER_TRADE_UPDATE for orders (a liquidation is a LIQUIDATION order with an
 * `autoclose-` client id), ALGO_UPDATE for conditional orders, ACCOUNT_UPDATE with the reason
 * (ORDER, FUNDING_FEE, ADJUSTMENT...), the wallet and the positions, ACCOUNT_CONFIG_UPDATE for a
 * leverage change. As on Binance, a cross position's funding reports the balance only, an
 * isolated one its position too.
 */
import { accountUpdate, algoUpdate, orderTradeUpdate } from '../binance-futures-json.ts';
import type { FuturesExchange } from '../exchange/futures/futures-exchange.ts';
import type { FuturesMarket } from '../exchange/futures/ledger.ts';
import type { UserEventFormatter } from './user-data.ts';

export function futuresUserEvents(exchange: FuturesExchange): UserEventFormatter {
  const market = (id: string): FuturesMarket => exchange.market(id) as FuturesMarket;
  return (e) => {
    const now = exchange.now();
    switch (e.type) {
      case 'futuresOrder':
        return orderTradeUpdate(market(e.order.symbol), e.order, e.execType, e.fill, now);
      case 'algoOrder': {
        const actual = e.algo.actualOrderId
          ? exchange.matching.ordersOf(e.apiKey, e.algo.symbol).find((o) => String(o.orderId) === e.algo.actualOrderId)
          : undefined;
        return algoUpdate(market(e.algo.symbol), e.algo, actual, now);
      }
      case 'accountUpdate': {
        const view = exchange.ledger.view(e.apiKey, exchange.matching.openOrders(e.apiKey));
        const quotes = new Set([...Object.keys(e.balanceChanges), ...e.positions.map((p) => market(p.symbol).quote)]);
        return accountUpdate(
          e.reason,
          view.assets.filter((a) => quotes.has(a.asset)),
          e.balanceChanges,
          e.positions.map((p) => ({
            position: p,
            view: view.positions.find(
              (pv) => pv.position.symbol === p.symbol && pv.position.positionSide === p.positionSide,
            ),
            market: market(p.symbol),
          })),
          now,
        );
      }
      case 'accountConfig':
        return { e: 'ACCOUNT_CONFIG_UPDATE', E: now, T: now, ac: { s: e.symbol, l: e.leverage } };
      default:
        // A futures exchange emits no spot account events.
        return undefined;
    }
  };
}
