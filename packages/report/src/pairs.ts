import type { BacktestResult } from '@keel/core';
import { formatInteger, formatMoney, formatPercent, quoteOf } from './format.ts';

/**
 * The per-market table of the terminal summary (a multi-market run): each market's bars, round
 * trips, net PnL, fees, the position left open, its contribution to the total return and its
 * refused orders, then the total. Empty for a single-market run (the summary above is that market).
 */
export function pairTableLines(result: BacktestResult): string[] {
  const pairs = result.pairs;
  if (pairs.length < 2) return [];
  const cur = quoteOf(pairs[0]?.symbol ?? '');
  const head = ['pair', 'bars', 'trades', 'win rate', 'net PnL', 'fees', 'open', 'contribution', 'denied'];
  const rows = pairs.map((p) => [
    p.symbol,
    formatInteger(p.bars),
    formatInteger(p.tradeCount),
    formatPercent(p.winRate),
    formatMoney(p.pnlNet, cur),
    formatMoney(p.fees, cur),
    p.openSize !== 0 ? formatMoney(p.unrealizedPnl, cur) : '-',
    formatPercent(p.contribution),
    formatInteger(p.denied + p.rejected),
  ]);
  const sum = (f: (p: (typeof pairs)[number]) => number) => pairs.reduce((a, p) => a + f(p), 0);
  const open = pairs.filter((p) => p.openSize !== 0);
  rows.push([
    'total',
    formatInteger(sum((p) => p.bars)),
    formatInteger(result.metrics.tradeCount),
    formatPercent(result.metrics.winRate),
    formatMoney(
      sum((p) => p.pnlNet),
      cur,
    ),
    formatMoney(
      sum((p) => p.fees),
      cur,
    ),
    open.length > 0
      ? formatMoney(
          sum((p) => p.unrealizedPnl),
          cur,
        )
      : '-',
    formatPercent(result.metrics.totalReturn),
    formatInteger(sum((p) => p.denied + p.rejected)),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (r: readonly string[]) =>
    `  ${r.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ')}`.trimEnd();
  return [
    line(head),
    ...rows.slice(0, -1).map(line),
    line(widths.map((w) => '-'.repeat(w))),
    line(rows.at(-1) as string[]),
  ];
}
