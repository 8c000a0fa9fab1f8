/**
 * Builds the USDⓈ-M side of a simulator from its options: contracts with their brackets,
 * clearance rate and funding (a series, a file read with @keel/candles' funding reader, or a
 * constant rate), the FuturesExchange, its fapi routes and its user-data formatter. Funding that
 * does not cover the replay is reported as a warning, never filled in.
 */

import { readFundingRateFile } from '@keel/candles';
import {
  constantFundingSeries,
  DEFAULT_LIQUIDATION_FEE,
  DEFAULT_USDM_BRACKETS,
  defineBrackets,
  type FundingRateSeries,
  fundingGaps,
  isoUtc,
} from '@keel/core';
import type { FuturesMarketSpec } from './exchange/futures/model.ts';
import type { MarketSpec } from './exchange/model.ts';
import type { SimMarketOptions } from './types.ts';

export { DEFAULT_LIQUIDATION_FEE };

/** Binance's baseline funding rate (0.01 % per 8 h), the default when no funding is given. */
export const DEFAULT_FUNDING_RATE = 0.0001;
/** Binance USDⓈ-M VIP 0 fees. */
export const DEFAULT_FUTURES_FEES = { maker: 0.0002, taker: 0.0005 };

/** A contract spec from a market's options, and what its funding does not cover. */
export function futuresMarketSpec(
  spec: MarketSpec,
  opts: SimMarketOptions,
  startTime: number,
): { spec: FuturesMarketSpec; warnings: string[] } {
  const brackets = opts.brackets
    ? defineBrackets(opts.brackets, `market ${opts.symbol} brackets`)
    : DEFAULT_USDM_BRACKETS;
  const first = spec.bars[0]?.time ?? startTime;
  // The replay ends when the last bar closes: a funding time on that instant never happens.
  const last = (spec.bars[spec.bars.length - 1]?.time ?? startTime) + spec.intervalMs - 1;
  const symbol = `${spec.base}/${spec.quote}:${spec.quote}`;
  let funding: FundingRateSeries;
  let source: string;
  if (opts.funding === undefined || typeof opts.funding === 'number') {
    const rate = opts.funding ?? DEFAULT_FUNDING_RATE;
    funding = constantFundingSeries(rate, first, last, 8, symbol);
    source = `a constant ${rate} every 8 h`;
  } else if (typeof opts.funding === 'string') {
    funding = readFundingRateFile(opts.funding, { symbol }).series;
    source = opts.funding;
  } else {
    funding = opts.funding;
    source = 'the funding series given';
  }
  const warnings = fundingGaps(funding, Math.max(first, startTime), last).map(
    (g) =>
      `market ${opts.symbol}: no funding data for ${g.missing} funding time(s) between ${isoUtc(g.after)} and ${isoUtc(g.before)} (from ${source}); none is charged there`,
  );
  const clearanceRate = opts.liquidationFee ?? DEFAULT_LIQUIDATION_FEE;
  if (!(clearanceRate >= 0 && clearanceRate < 1))
    throw new Error(`market ${opts.symbol}: liquidationFee ${clearanceRate} must be in [0, 1)`);
  return { spec: { ...spec, brackets, clearanceRate, funding, contractSize: 1 }, warnings };
}
