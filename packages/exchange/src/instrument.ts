import { defineInstrument, type Instrument } from '@keel/core';
import type { MarketInterface } from 'ccxt';

/** ccxt precision modes (ccxt/js/src/base/functions/number.js). */
export const PRECISION_MODE = { DECIMAL_PLACES: 2, SIGNIFICANT_DIGITS: 3, TICK_SIZE: 4 } as const;

/**
 * Maps a ccxt market to core's Instrument. In TICK_SIZE mode (ccxt binance) precision.price and
 * precision.amount ARE the tick and the step; in DECIMAL_PLACES mode they are digit counts.
 * SIGNIFICANT_DIGITS has no fixed tick and is refused rather than guessed.
 */
export function toInstrument(market: MarketInterface, precisionMode: number = PRECISION_MODE.TICK_SIZE): Instrument {
  const inc = (p: number | undefined, what: string): number => {
    if (p === undefined || p === null) return 0;
    if (precisionMode === PRECISION_MODE.TICK_SIZE) return p;
    if (precisionMode === PRECISION_MODE.DECIMAL_PLACES) return Number((10 ** -p).toFixed(Math.max(0, p)));
    throw new Error(
      `Market ${market.symbol}: ${what} precision in SIGNIFICANT_DIGITS mode has no fixed increment; not supported`,
    );
  };
  if (market.option) throw new Error(`Market ${market.symbol}: options are not supported`);
  const kind = market.swap ? 'perpetual' : market.spot ? 'spot' : undefined;
  if (kind === undefined)
    throw new Error(`Market ${market.symbol}: type ${market.type} is not supported (spot and perpetual swaps are)`);
  return defineInstrument({
    symbol: market.symbol,
    kind,
    tickSize: inc(market.precision.price ?? undefined, 'price'),
    stepSize: inc(market.precision.amount ?? undefined, 'amount'),
    minAmount: market.limits.amount?.min ?? 0,
    minNotional: market.limits.cost?.min ?? 0,
    contractSize: market.contract ? (market.contractSize ?? 1) : 1,
  });
}
