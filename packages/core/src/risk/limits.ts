import type { OrderSide } from '../model/orders.ts';
import type { RiskRuleSpec } from './config.ts';
import type { RiskDenial } from './events.ts';
import { num, pct } from './text.ts';

/** One symbol's exposure as the limits see it. */
export interface SymbolExposure {
  readonly symbol: string;
  /**
   * Signed size after every working entry order of the symbol fills (orders that would only
   * reduce the position are left out: they cannot add exposure).
   */
  readonly size: number;
  /** The price the symbol is valued at: the order's reference price for its own symbol, else the last close. */
  readonly price: number;
  readonly contractSize: number;
}

/** The state an entry is checked against (built by the risk engine when an entry is placed). */
export interface LimitView {
  readonly equity: number;
  /** Cash in the account currency, minus what the working buy entries will spend. */
  readonly freeCash: number;
  readonly exposures: readonly SymbolExposure[];
  /** Orders working now (before this one). */
  readonly openOrders: number;
  /** Orders sent within the last `windowMs` (before this one). */
  sentWithin(windowMs: number): number;
}

/** An entry: an order that opens or adds to a position (its amount after sizing). */
export interface ProposedEntry {
  readonly symbol: string;
  readonly side: OrderSide;
  readonly amount: number;
  /** The reference price: the signal bar's close for market orders, the limit or stop price otherwise. */
  readonly price: number;
  readonly contractSize: number;
  /** True when the order spends the account currency (a spot buy). */
  readonly spendsCash: boolean;
}

/**
 * Checks an entry against the pre-trade limits and returns the first one it would break, with
 * the limit and the value the order would reach, or null. Pure: the property tests check that
 * an order it passes never leaves a limit broken. A value that cannot be computed (a market with
 * no price yet) breaks the limit: the comparisons are written so that NaN denies.
 */
export function checkLimits(rules: readonly RiskRuleSpec[], o: ProposedEntry, v: LimitView): RiskDenial | null {
  const dir = o.side === 'buy' ? 1 : -1;
  let own: SymbolExposure | undefined;
  for (const x of v.exposures) if (x.symbol === o.symbol) own = x;
  const sizeAfter = (own?.size ?? 0) + dir * o.amount;
  const notionalAfter = Math.abs(sizeAfter) * o.price * o.contractSize;
  for (const r of rules) {
    switch (r.rule) {
      case 'max-position': {
        const actual = v.equity > 0 ? notionalAfter / v.equity : Number.POSITIVE_INFINITY;
        if (!(actual <= r.limit))
          return deny(
            r.rule,
            r.limit,
            actual,
            `${o.symbol} position after the order would be ${pct(actual)} of equity (${num(notionalAfter)} of ${num(v.equity)}), above the ${pct(r.limit)} limit`,
          );
        break;
      }
      case 'max-position-size':
        if (!(Math.abs(sizeAfter) <= r.limit))
          return deny(
            r.rule,
            r.limit,
            Math.abs(sizeAfter),
            `${o.symbol} position after the order would be ${num(Math.abs(sizeAfter))}, above the ${num(r.limit)} limit`,
          );
        break;
      case 'max-notional':
        if (!(notionalAfter <= r.limit))
          return deny(
            r.rule,
            r.limit,
            notionalAfter,
            `${o.symbol} notional after the order would be ${num(notionalAfter)}, above the ${num(r.limit)} limit`,
          );
        break;
      case 'max-gross':
      case 'max-net':
      case 'max-leverage': {
        let gross = 0;
        let net = 0;
        let seen = false;
        for (const x of v.exposures) {
          const size = x.symbol === o.symbol ? sizeAfter : x.size;
          if (x.symbol === o.symbol) seen = true;
          if (size === 0) continue;
          const n = size * x.price * x.contractSize;
          gross += Math.abs(n);
          net += n;
        }
        if (!seen) {
          gross += notionalAfter;
          net += sizeAfter * o.price * o.contractSize;
        }
        if (r.rule === 'max-gross' && !(gross <= r.limit))
          return deny(
            r.rule,
            r.limit,
            gross,
            `gross exposure after the order would be ${num(gross)}, above ${num(r.limit)}`,
          );
        if (r.rule === 'max-net' && !(Math.abs(net) <= r.limit))
          return deny(
            r.rule,
            r.limit,
            Math.abs(net),
            `net exposure after the order would be ${num(Math.abs(net))}, above ${num(r.limit)}`,
          );
        if (r.rule === 'max-leverage') {
          const lev = v.equity > 0 ? gross / v.equity : Number.POSITIVE_INFINITY;
          if (!(lev <= r.limit))
            return deny(
              r.rule,
              r.limit,
              lev,
              `leverage after the order would be ${num(lev)}x (gross ${num(gross)} on equity ${num(v.equity)}), above ${num(r.limit)}x`,
            );
        }
        break;
      }
      case 'max-open-orders':
        if (v.openOrders + 1 > r.limit)
          return deny(
            r.rule,
            r.limit,
            v.openOrders + 1,
            `${v.openOrders} orders are working; one more would exceed the limit of ${r.limit}`,
          );
        break;
      case 'max-open-trades': {
        if ((own?.size ?? 0) !== 0) break;
        let open = 0;
        for (const x of v.exposures) if (x.size !== 0 && x.symbol !== o.symbol) open++;
        if (open + 1 > r.limit)
          return deny(
            r.rule,
            r.limit,
            open + 1,
            `${open} markets are open (positions or working entries); opening ${o.symbol} would exceed the limit of ${r.limit}`,
          );
        break;
      }
      case 'order-rate': {
        const n = v.sentWithin(r.windowMs) + 1;
        if (n > r.limit)
          return deny(
            r.rule,
            r.limit,
            n,
            `${n - 1} orders were sent in the last ${r.windowMs / 1000} s; one more would exceed ${r.limit}`,
          );
        break;
      }
      case 'cash-reserve':
      case 'min-cash': {
        if (!o.spendsCash) break;
        const left = v.freeCash - o.amount * o.price * o.contractSize;
        if (r.rule === 'min-cash' && !(left >= r.limit))
          return deny(
            r.rule,
            r.limit,
            left,
            `cash after the buy would be ${num(left)}, below the ${num(r.limit)} minimum`,
          );
        if (r.rule === 'cash-reserve') {
          const share = v.equity > 0 ? left / v.equity : Number.NEGATIVE_INFINITY;
          if (!(share >= r.limit))
            return deny(
              r.rule,
              r.limit,
              share,
              `cash after the buy would be ${pct(share)} of equity (${num(left)}), below the ${pct(r.limit)} reserve`,
            );
        }
        break;
      }
      case 'symbols':
        if (!r.allowed.includes(o.symbol))
          return deny(
            r.rule,
            r.allowed.length,
            0,
            `${o.symbol} is not among the allowed markets (${r.allowed.join(', ')})`,
          );
        break;
      case 'sides':
        if ((r.allowed === 'long' && sizeAfter < 0) || (r.allowed === 'short' && sizeAfter > 0))
          return deny(
            r.rule,
            0,
            sizeAfter,
            `${r.allowed}-only: the order would leave a ${sizeAfter < 0 ? 'short' : 'long'} ${o.symbol} position of ${num(Math.abs(sizeAfter))}`,
          );
        break;
      // Protections deny through their halts and locks, not here.
      case 'daily-loss':
      case 'max-drawdown':
      case 'stoploss-guard':
      case 'cooldown':
      case 'low-profit':
      case 'max-losses':
        break;
      default: {
        const never: never = r;
        throw new Error(`Unhandled risk rule ${(never as { rule: string }).rule}`);
      }
    }
  }
  return null;
}

function deny(rule: RiskDenial['rule'], limit: number, actual: number, message: string): RiskDenial {
  return { rule, limit, actual, message: `${rule}: ${message}` };
}
