import type { MarketType } from './schema.ts';

/**
 * Exchange outages and maintenance windows that left bars missing from the exchange's own data.
 * QC labels a gap that lies inside one as `maintenance` (not `missing`) and leaves its bars out of
 * the coverage denominator: the market was shut, the data is not incomplete.
 *
 * Only windows with a primary source (the exchange's own announcement or news page) are listed,
 * each with that source; a window is the outage as announced, from the first minute trading
 * stopped to the minute it resumed, in UTC. Gaps elsewhere stay `missing`, which is the safe side.
 * Pass more windows with `new DataStore(dir, { maintenance })` or QcOptions.maintenance.
 */
export interface MaintenanceWindow {
  readonly exchange: string;
  /** Omitted: all market types of the exchange. */
  readonly marketType?: MarketType;
  /** [from, to) UTC ms. */
  readonly from: number;
  readonly to: number;
  readonly note: string;
  /** Where the window's times come from (an announcement URL). */
  readonly source: string;
}

export const KNOWN_MAINTENANCE: readonly MaintenanceWindow[] = [
  {
    exchange: 'binance',
    marketType: 'spot',
    // Binance: the matching engine stopped on a trailing-stop order at 11:27 UTC; spot trading was
    // suspended and resumed at 14:00 UTC after a cancel-only period. In Binance's own 1h candles the
    // 12:00 bar is flat with zero volume and the 13:00 bar is missing (shared data, quirk 2).
    from: Date.UTC(2023, 2, 24, 11, 27),
    to: Date.UTC(2023, 2, 24, 14, 0),
    note: 'Binance spot trading halt 2023-03-24 11:27-14:00 UTC (matching engine bug on a trailing stop order)',
    source: 'https://www.binance.com/en/news/flash/7520134',
  },
];

/** The windows that apply to one exchange and market type (all of them when no exchange is given). */
export function maintenanceFor(
  all: readonly MaintenanceWindow[],
  exchange?: string,
  marketType?: MarketType,
): MaintenanceWindow[] {
  return all.filter(
    (w) =>
      exchange === undefined ||
      (w.exchange === exchange &&
        (w.marketType === undefined || marketType === undefined || w.marketType === marketType)),
  );
}
