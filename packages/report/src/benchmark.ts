import type { Benchmark } from '@keel/core';
import { formatMoney, formatPercent, formatPrice } from './format.ts';

/**
 * The benchmark in words, shared by the terminal summary and the HTML report: the market's move
 * and buy-and-hold with its model stated, so a reader knows what the strategy is compared with.
 */
export function benchmarkLines(
  b: Benchmark,
  currency: string | undefined,
): { marketChange: string; buyAndHold: string; model: string } {
  const one = b.markets.length === 1 ? b.markets[0] : undefined;
  return {
    marketChange: one
      ? `${formatPercent(b.marketChange)} (${one.symbol} ${formatPrice(one.firstOpen)} -> ${formatPrice(one.lastClose)}, first open to last close)`
      : `${formatPercent(b.marketChange)} (the mean of ${b.markets.map((m) => `${m.symbol} ${formatPercent(m.marketChange)}`).join(', ')}; first open to last close)`,
    buyAndHold: `${formatPercent(b.totalReturn)} (${formatMoney(b.finalValue, currency)}, max drawdown ${formatPercent(b.maxDrawdown)})`,
    model: `all the cash in at the first open${one ? '' : `, split equally over the ${b.markets.length} markets`}, taker fee ${formatMoney(b.fee, currency)}, no slippage, no exit fee`,
  };
}
