/**
 * Binance spot's "use BNB to pay fees" (the account's spotBNBBurn setting): the standard commission
 * of a fill, computed on the asset received as always, is charged at `BNB_FEE_MULTIPLIER` of its
 * value and in BNB, converted at the market price, when the account's free BNB covers it; else it
 * is charged in full in the asset received. Binance converts through BTC (X/BTC over BNB/BTC); the
 * simulator values the fill at its own price and BNB at the last price of `BNB/<quote>`, and keeps
 * 8 decimals as Binance keeps commissions (round half up; Binance does not say how it rounds).
 */
import { roundAssetAmount } from '../num.ts';
import type { MarketSpec } from './model.ts';

export const BNB = 'BNB';
/** What a standard commission paid in BNB costs: 75 % (Binance's 25 % discount, reported as `discount` 0.75). */
export const BNB_FEE_MULTIPLIER = 0.75;

/** The Binance id of the market that prices BNB in `quote` (`BNBUSDT`); undefined for BNB itself. */
export function bnbMarketId(quote: string): string | undefined {
  return quote === BNB ? undefined : `${BNB}${quote}`;
}

/**
 * The commission in BNB of a fill worth `quoteQty` of the quote at `rate` when BNB is worth
 * `bnbPrice` of the quote (1 when the quote is BNB).
 */
export function bnbCommission(quoteQty: number, rate: number, bnbPrice: number): number {
  return roundAssetAmount((quoteQty * rate * BNB_FEE_MULTIPLIER) / bnbPrice);
}

/**
 * Throws, naming the account and the market to add, when an account paying its fees in BNB has a
 * market whose quote no BNB market prices.
 */
export function checkBnbMarkets(apiKey: string, markets: Iterable<Pick<MarketSpec, 'id' | 'symbol' | 'quote'>>): void {
  const list = [...markets];
  const ids = new Set(list.map((m) => m.id));
  for (const m of list) {
    const id = bnbMarketId(m.quote);
    if (id === undefined || ids.has(id)) continue;
    throw new Error(
      `account ${apiKey} pays its fees in BNB (payFeesWithBnb), which prices each commission at the last price of ${BNB}/${m.quote}: the simulator has no ${BNB}/${m.quote} market (needed by ${m.symbol}); add one to markets, or turn payFeesWithBnb off`,
    );
  }
}
