import type { BacktestResult } from '@keel/core';
import { formatInteger, formatMoney, formatPercent, quoteOf } from './format.ts';

/**
 * The per-market table of the terminal summary (a multi-market run): each market's bars, round
 * trips, net PnL of its closed trades, all its fees, the position left open (its marked PnL less
 * the fees paid on it, and funding), its contribution to the total return and its refused orders,
 * then the total. Each column adds up to the total: net PnL + open = the market's change of value,
 * the fees to the run's fees paid, the contributions to the total return; a part of the run's
 * change in no market (it happens only with balances in other assets or fees in none of the
 * markets' assets) is a row of its own. Empty for a single-market run (the summary above is that
 * market).
 */
export function pairTableLines(result: BacktestResult): string[] {
  const pairs = result.pairs;
  if (pairs.length < 2) return [];
  const cur = quoteOf(pairs[0]?.symbol ?? '');
  const head = ['pair', 'bars', 'trades', 'win rate', 'net PnL', 'fees', 'open', 'contribution', 'refused'];
  const refused = (p: (typeof pairs)[number]) => p.denied + p.rejected + p.cancelledAtFill;
  const open = (p: (typeof pairs)[number]) => p.unrealizedPnl - p.openFees + p.funding;
  const rows = pairs.map((p) => [
    p.symbol,
    formatInteger(p.bars),
    formatInteger(p.tradeCount),
    formatPercent(p.winRate),
    formatMoney(p.pnlNet, cur),
    formatMoney(p.fees, cur),
    p.openSize !== 0 || p.funding !== 0 ? formatMoney(open(p), cur) : '-',
    formatPercent(p.contribution),
    formatInteger(refused(p)),
  ]);
  const sum = (f: (p: (typeof pairs)[number]) => number) => pairs.reduce((a, p) => a + f(p), 0);
  const m = result.metrics;
  const rest = m.totalReturn - sum((p) => p.contribution);
  // Shown when it is not rounding: the change of value no market accounts for.
  if (Math.abs(rest) >= 0.00005)
    rows.push([
      'not in a market',
      '',
      '',
      '',
      '',
      '',
      formatMoney(rest * result.startValue, cur),
      formatPercent(rest),
      '',
    ]);
  rows.push([
    'total',
    formatInteger(sum((p) => p.bars)),
    formatInteger(m.tradeCount),
    formatPercent(m.winRate),
    formatMoney(
      sum((p) => p.pnlNet),
      cur,
    ),
    formatMoney(m.feesPaid, cur),
    rows.some((r) => r[6] !== '-')
      ? formatMoney(result.finalValue - result.startValue - sum((p) => p.pnlNet), cur)
      : '-',
    formatPercent(m.totalReturn),
    formatInteger(sum(refused)),
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
