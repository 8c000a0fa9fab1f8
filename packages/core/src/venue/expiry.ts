import type { OrderState } from '../model/orders.ts';
import { assertNever } from '../util/assert.ts';

/**
 * Why an order expired, as decided where the expiry happens: the simulated venue (backtest,
 * paper), Keel itself (a GTD order live, which Binance spot lacks), or the exchange (its order
 * status and expiry reason). Every venue reports the cause; the engine names it (`expiryReason`),
 * so the same case reads the same in a backtest and live.
 * - `gtd`: its good-till-date expiry passed;
 * - `ioc`: an immediate-or-cancel order's rest that could not fill at once;
 * - `fok`: a fill-or-kill order that could not fill at once in full;
 * - `market`: a market order's rest that the book had no liquidity for;
 * - `post-only`: a post-only order that would have taken liquidity (where the exchange expires it
 *   rather than refusing it);
 * - `reduce-only`: a reduce-only order whose position was closed (Binance USDⓈ-M);
 * - `self-trade`: the exchange's self-trade prevention (Binance's EXPIRED_IN_MATCH);
 * - `liquidation`: the exchange expired it while liquidating the account;
 * - `exchange`: any other expiry by the exchange; `detail` says what the exchange said.
 */
export type ExpiryCause =
  | 'gtd'
  | 'ioc'
  | 'fok'
  | 'market'
  | 'post-only'
  | 'reduce-only'
  | 'self-trade'
  | 'liquidation'
  | 'exchange';

/** The reason an expired order carries, for humans: the cause, then what had filled. */
export function expiryReason(cause: ExpiryCause, o: OrderState, detail?: string): string {
  const r = o.request;
  const filled = `${o.filled} of ${r.amount} filled`;
  switch (cause) {
    case 'gtd':
      return r.expireAt === undefined
        ? `GTD: expired with ${filled}`
        : `GTD: expired at ${new Date(r.expireAt).toISOString()} with ${filled}`;
    case 'ioc':
      return `IOC: expired with ${filled} (the rest could not fill at once)`;
    case 'fok':
      return `FOK: expired with ${filled} (the whole amount could not fill at once)`;
    case 'market':
      return `market order: expired with ${filled} (no more liquidity for the rest)`;
    case 'post-only':
      return `post-only: expired with ${filled} (it would have taken liquidity)`;
    case 'reduce-only':
      return `reduce-only: expired with ${filled} (the position it reduces was closed)`;
    case 'self-trade':
      return `self-trade prevention: expired by the exchange with ${filled} (it would have traded against an order of the same account)`;
    case 'liquidation':
      return `liquidation: expired by the exchange with ${filled} (the account was liquidated)`;
    case 'exchange':
      return `expired by the exchange with ${filled}${detail ? ` (${detail})` : ''}`;
    default:
      return assertNever(cause, 'expiry cause');
  }
}
