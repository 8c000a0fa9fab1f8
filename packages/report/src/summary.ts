import type { BacktestResult } from '@keel/core';
import { refusalOf, timeframeEnd } from '@keel/core';
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

/**
 * What a refusal is counted under: the rule its reason names, with the amounts taken out, so that
 * 820 margin rejections of as many sizes are one kind. The reason up to its first colon
 * ("insufficient USDT at fill"), else the whole reason; numbers become "N"
 * ("position of N LINK at N exceeds the N USDT notional allowed at Nx"). A number that is part of
 * a name (1000SHIB) stays.
 */
export function reasonKind(reason: string | undefined): string {
  if (reason === undefined || reason === '') return 'no reason given';
  const colon = reason.indexOf(':');
  const rule = colon > 0 && colon <= 60 ? reason.slice(0, colon) : reason;
  const kind = rule.replace(/(?<![\w.])-?\d+(?:\.\d+)?(?:e[-+]?\d+)?(?![A-Za-wyz\d])/g, 'N');
  return kind.length <= 100 ? kind : `${kind.slice(0, 100)}...`;
}

/** At most this many kinds of refusal are listed, each with its first example. */
const REFUSAL_KINDS_SHOWN = 3;
const EXAMPLE_LENGTH = 200;

/**
 * Orders the run did not execute because something refused them: denied before the venue (a risk
 * rule, the order's own fields, the exchange filters), rejected by it on arrival, or cancelled by
 * it at the fill (not enough cash or coins at the fill price). Always shown when there are any: a
 * run that refused every order must not read like a run that had no signal. Counted by kind of
 * reason (`reasonKind`), the most frequent first, each with its first reason as an example.
 */
export function refusedOrderLines(result: BacktestResult): string[] {
  const kinds = new Map<string, { n: number; example: string }>();
  const by = { denied: 0, rejected: 0, 'cancelled-at-fill': 0 };
  for (const o of result.orders) {
    const r = refusalOf(o);
    if (r === null) continue;
    by[r]++;
    const k = reasonKind(o.reason);
    const seen = kinds.get(k);
    if (seen === undefined) kinds.set(k, { n: 1, example: o.reason ?? 'no reason given' });
    else seen.n++;
  }
  const total = by.denied + by.rejected + by['cancelled-at-fill'];
  if (total === 0) return [];
  const sorted = [...kinds].sort((a, b) => b[1].n - a[1].n || (a[0] < b[0] ? -1 : 1));
  const lines = [
    `refused orders: ${formatInteger(total)} (denied ${formatInteger(by.denied)}, rejected by the venue ${formatInteger(by.rejected)}, cancelled by the venue at the fill ${formatInteger(by['cancelled-at-fill'])})`,
  ];
  for (const [k, { n, example }] of sorted.slice(0, REFUSAL_KINDS_SHOWN)) {
    const e = example.length <= EXAMPLE_LENGTH ? example : `${example.slice(0, EXAMPLE_LENGTH)}...`;
    lines.push(`  ${formatInteger(n)} x ${k}`, `      first: ${e}`);
  }
  const more = sorted.slice(REFUSAL_KINDS_SHOWN);
  if (more.length > 0)
    lines.push(
      `  ${formatInteger(more.reduce((a, [, v]) => a + v.n, 0))} more, of ${formatInteger(more.length)} other kind${more.length > 1 ? 's' : ''} (every order is in the report and --json)`,
    );
  return lines;
}

/** A feed onBar never ran on: the strategy's warm-up is longer than the data (no signal could come). */
export function unwarmedLines(result: BacktestResult): string[] {
  return (result.unwarmed ?? []).map(
    (u) =>
      `note: onBar never ran on ${u.symbol} ${u.timeframe}: the strategy's warm-up needs ${formatInteger(u.needed)} bars (its indicators' longest lookback + 1), the data has ${Number.isFinite(u.bars) ? formatInteger(u.bars) : 'fewer (resampled)'}`,
  );
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
  tail.push(...refusedOrderLines(result), ...unwarmedLines(result));
  if (result.errors.length > 0)
    tail.push(`strategy errors: ${formatInteger(result.errors.length)} (see the report or result.json)`);
  if (tail.length > 0) lines.push('', ...tail);
  const risk = riskSummaryLines(result);
  if (risk.length > 0) lines.push('', ...risk);
  const futures = futuresSummaryLines(result);
  if (futures.length > 0) lines.push('', ...futures);
  return lines.join('\n');
}
