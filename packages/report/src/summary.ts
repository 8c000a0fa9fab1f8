import type { BacktestResult } from '@keel/core';
import { timeframeEnd } from '@keel/core';
import { benchmarkLines } from './benchmark.ts';
import {
  formatDuration,
  formatInteger,
  formatMoney,
  formatNumber,
  formatPercent,
  formatTimeShort,
  paramPairs,
  quoteOf,
} from './format.ts';
import { futuresSummaryLines } from './futures.ts';
import { pairTableLines } from './pairs.ts';
import { riskSummaryLines } from './risk.ts';

type Pair = readonly [string, string];

/** What a refusal is counted under: its reason up to the first colon (the rule, "insufficient USDT"). */
function reasonKind(reason: string | undefined): string {
  if (reason === undefined || reason === '') return 'no reason given';
  const colon = reason.indexOf(':');
  return colon > 0 && colon <= 40 ? reason.slice(0, colon) : reason.length <= 40 ? reason : `${reason.slice(0, 40)}...`;
}

/**
 * Orders that never traded because something refused them: denied before the venue (a risk rule,
 * the order's own fields, the exchange filters) or rejected by it (not enough cash). Always shown
 * when there are any: a run that refused every order must not read like a run that had no signal.
 */
export function refusedOrderLines(result: BacktestResult): string[] {
  const counts = new Map<string, number>();
  let denied = 0;
  let rejected = 0;
  let first: string | undefined;
  for (const o of result.orders) {
    if (o.status === 'denied') denied++;
    else if (o.status === 'rejected') rejected++;
    else continue;
    first ??= o.reason;
    const k = reasonKind(o.reason);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  if (denied + rejected === 0) return [];
  const byKind = [...counts]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([k, n]) => `${k} ${formatInteger(n)}`)
    .join(', ');
  return [
    `refused orders: ${formatInteger(denied + rejected)} (denied ${formatInteger(denied)}, rejected by the venue ${formatInteger(rejected)}): ${byKind}`,
    `  first: ${first ?? 'no reason given'}`,
  ];
}

/** Label/value pairs as aligned columns: labels left-aligned, values right-aligned, two pairs per line. */
function twoColumns(left: readonly Pair[], right: readonly Pair[], indent = '  ', gap = '     '): string[] {
  const width = (ps: readonly Pair[], i: 0 | 1) => ps.reduce((w, p) => Math.max(w, p[i].length), 0);
  const [lw0, lw1, rw0, rw1] = [width(left, 0), width(left, 1), width(right, 0), width(right, 1)];
  const lines: string[] = [];
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const l = left[i];
    const r = right[i];
    const a = l ? `${l[0].padEnd(lw0)}  ${l[1].padStart(lw1)}` : ''.padEnd(lw0 + 2 + lw1);
    const b = r ? `${r[0].padEnd(rw0)}  ${r[1].padStart(rw1)}` : '';
    lines.push(`${indent}${a}${b ? gap + b : ''}`.trimEnd());
  }
  return lines;
}

/**
 * A compact plain-text summary for the terminal (`keel backtest`): the run on one line, its
 * parameters, then the key metrics in two aligned columns. ASCII only, no colours, no trailing
 * newline; deterministic like the rest of the report.
 */
export function formatSummary(result: BacktestResult): string {
  const f = result.feeds[0];
  const m = result.metrics;
  const cur = quoteOf(f?.symbol ?? '');
  const money = (x: number) => formatMoney(x, cur);
  const lines: string[] = [];
  const markets = result.pairs.length > 1 ? `${result.pairs.length} pairs` : f?.symbol;
  if (f && f.bars > 0) {
    const to = timeframeEnd(f.timeframe, f.last);
    lines.push(
      `${result.strategy} on ${markets} ${f.timeframe}   ${formatTimeShort(f.first)} -> ${formatTimeShort(to)} UTC (${formatDuration(to - f.first)}, ${formatInteger(f.bars)} bars)`,
    );
  } else lines.push(`${result.strategy} on ${f ? `${f.symbol} ${f.timeframe}` : 'no data'}   (no bars in range)`);
  const params = paramPairs(result.params);
  lines.push(`params: ${params.length > 0 ? params.map(([k, v]) => `${k}=${v}`).join(' ') : '(none)'}`);
  if (result.feeds.length > 1)
    lines.push(`feeds:  ${result.feeds.map((x) => `${x.symbol} ${x.timeframe}`).join(', ')}`);
  lines.push('');
  const left: Pair[] = [
    ['Start value', money(result.startValue)],
    ['Final value', money(result.finalValue)],
    ['Total return', formatPercent(m.totalReturn)],
    ['CAGR', formatPercent(m.cagr)],
    ['Max drawdown', formatPercent(m.maxDrawdown)],
    ['Longest drawdown', formatDuration(m.maxDrawdownDurationMs)],
    ['Sharpe', formatNumber(m.sharpe, 2)],
    ['Sortino', formatNumber(m.sortino, 2)],
  ];
  const right: Pair[] = [
    ['Trades', formatInteger(m.tradeCount)],
    ['Win rate', formatPercent(m.winRate)],
    ['Profit factor', formatNumber(m.profitFactor, 2)],
    ['Expectancy', money(m.expectancy)],
    ['Avg win / loss', `${formatNumber(m.averageWin, 2)} / ${formatNumber(m.averageLoss, 2)}`],
    ['Exposure', formatPercent(m.exposure)],
    ['Fees paid', money(m.feesPaid)],
    ['Turnover', `${formatNumber(m.turnover, 2)}x`],
  ];
  lines.push(...twoColumns(left, right));
  const pairs = pairTableLines(result);
  if (pairs.length > 0) lines.push('', ...pairs);
  const b = result.benchmark;
  if (b && b.values.length > 0) {
    const t = benchmarkLines(b, cur);
    lines.push('', `market change: ${t.marketChange}`, `buy and hold:  ${t.buyAndHold}: ${t.model}`);
  }
  const tail: string[] = [];
  if (result.openTrades.length > 0) {
    tail.push(
      `open at end: ${result.openTrades.map((t) => `${t.direction} ${t.symbol} since ${formatTimeShort(t.entryTime)}`).join(', ')} (valued at the last close, not counted as trades)`,
    );
  }
  tail.push(...refusedOrderLines(result));
  if (result.errors.length > 0)
    tail.push(`strategy errors: ${formatInteger(result.errors.length)} (see the report or result.json)`);
  if (tail.length > 0) lines.push('', ...tail);
  const risk = riskSummaryLines(result);
  if (risk.length > 0) lines.push('', ...risk);
  const futures = futuresSummaryLines(result);
  if (futures.length > 0) lines.push('', ...futures);
  return lines.join('\n');
}
