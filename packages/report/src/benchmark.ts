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
  return {
    marketChange: `${formatPercent(b.marketChange)} (${b.symbol} ${formatPrice(b.firstOpen)} -> ${formatPrice(b.lastClose)}, first open to last close)`,
    buyAndHold: `${formatPercent(b.totalReturn)} (${formatMoney(b.finalValue, currency)}, max drawdown ${formatPercent(b.maxDrawdown)})`,
    model: `all the cash in at the first open, taker fee ${formatMoney(b.fee, currency)}, no slippage, no exit fee`,
  };
}
