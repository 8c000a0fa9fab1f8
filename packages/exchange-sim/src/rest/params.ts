/** Request parameters as Binance reads them, and its errors for the malformed ones. */
import { binanceError, mandatoryParam } from '../errors.ts';
import type { MarketState } from '../exchange/model.ts';
import type { SimVenue } from '../exchange/venue.ts';
import { parseDecimal } from '../num.ts';

/** Query string and form body merged, as Binance reads them. */
export type Params = Record<string, string>;

/** A decimal parameter (`quantity`, `price`...): absent is undefined, malformed is -1100. */
export function decimalParam(p: Params, name: string): number | undefined {
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

export function intParam(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw binanceError(-1100, 'Illegal characters found in a parameter.');
  return n;
}

/** A time bound (`startTime`, `endTime`); absent is the given default. */
export function timeParam(v: string | undefined, absent: number): number {
  return intParam(v) ?? absent;
}

/** `limit`, defaulted and capped at the endpoint's maximum as Binance does. */
export function limitParam(v: string | undefined, def: number, max: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0)
    throw binanceError(-1100, "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.");
  return Math.min(n, max);
}

/** The market named by `symbol` (-1102 when missing, -1121 when unknown). */
export function marketParam(exchange: SimVenue, p: Params): MarketState {
  if (!p.symbol) throw mandatoryParam('symbol');
  const m = exchange.market(p.symbol);
  if (!m) throw binanceError(-1121, 'Invalid symbol.');
  return m;
}

/** One market with `symbol`, the listed ones with `symbols` (a JSON array), else every market. */
export function eachMarket<T>(exchange: SimVenue, p: Params, f: (m: MarketState) => T): T | T[] {
  if (p.symbol) return f(marketParam(exchange, p));
  if (p.symbols) {
    let ids: unknown;
    try {
      ids = JSON.parse(p.symbols);
    } catch {
      ids = undefined;
    }
    if (!Array.isArray(ids) || !ids.every((id): id is string => typeof id === 'string'))
      throw binanceError(-1100, "Illegal characters found in parameter 'symbols'.");
    return ids.map((id) => f(marketParam(exchange, { symbol: id })));
  }
  return [...exchange.markets.values()].map(f);
}
