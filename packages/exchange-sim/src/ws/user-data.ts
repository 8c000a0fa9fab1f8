/**
 * User data: how an account's exchange events become Binance's user-data payloads. Spot sends
 * `executionReport`, `listStatus` and `outboundAccountPosition`; USDⓈ-M futures (futures-user-data.ts)
 * ORDER_TRADE_UPDATE, ALGO_UPDATE, ACCOUNT_UPDATE and ACCOUNT_CONFIG_UPDATE.
 */
import { executionReport, listStatusEvent } from '../binance-json.ts';
import type { ExchangeEvent } from '../exchange/model.ts';
import type { SpotExchange } from '../exchange/spot-exchange.ts';
import { binanceDecimal } from '../num.ts';

/** The exchange events that belong to one account. */
export type AccountEvent = Extract<ExchangeEvent, { apiKey: string }>;

/** The payload to send on the account's user-data connections, or undefined for none. */
export type UserEventFormatter = (e: AccountEvent) => unknown;

export function spotUserEvents(exchange: SpotExchange): UserEventFormatter {
  return (e) => {
    const now = exchange.now();
    switch (e.type) {
      case 'execution':
        return executionReport(e.order, e.execType, now, e.fill, e.cancelClientOrderId);
      case 'listStatus':
        return listStatusEvent(e.list, now);
      case 'balance': {
        const balances = exchange.balances(e.apiKey);
        return {
          e: 'outboundAccountPosition',
          E: now,
          u: now,
          B: e.assets.map((a) => ({
            a,
            f: binanceDecimal(balances[a]?.free ?? 0),
            l: binanceDecimal(balances[a]?.locked ?? 0),
          })),
        };
      }
      default:
        // A spot exchange emits no futures account events.
        return undefined;
    }
  };
}
