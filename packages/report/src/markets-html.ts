import type { BacktestResult, BarSeries } from '@keel/core';
import { buildPairChart, feedRange, type PairChart } from './chart-data.ts';
import {
  escapeHtml as e,
  formatAmount,
  formatInteger,
  formatMoney,
  formatPercent,
  quoteOf,
  signClass,
} from './format.ts';

/** The distinct markets of the run's feeds, in feed order, with the first feed of each. */
export function marketFeeds(result: BacktestResult): { symbol: string; feed: number }[] {
  const seen = new Set<string>();
  const out: { symbol: string; feed: number }[] = [];
  result.feeds.forEach((f, i) => {
    if (seen.has(f.symbol)) return;
    seen.add(f.symbol);
    out.push({ symbol: f.symbol, feed: i });
  });
  return out;
}

/**
 * Each market's own move over the run, last close / first open - 1: from its bars when given,
 * else from the benchmark when it held that market; NaN when neither has it.
 */
export function marketChanges(result: BacktestResult, series: readonly (BarSeries | undefined)[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const { symbol, feed } of marketFeeds(result)) {
    const s = series[feed];
    const f = result.feeds[feed] as BacktestResult['feeds'][number];
    let change = result.benchmark?.markets.find((m) => m.symbol === symbol)?.marketChange ?? Number.NaN;
    if (s && f.bars > 0) {
      const [p0, p1] = feedRange(result, feed, s);
      change = (s.close[p1 - 1] as number) / (s.open[p0] as number) - 1;
    }
    out.set(symbol, change);
  }
  return out;
}

/** Charts of every market but the primary (whose chart is the main one), for those whose bars were given. */
export function pairCharts(
  result: BacktestResult,
  series: readonly (BarSeries | undefined)[],
  maxPoints: number,
): PairChart[] {
  const out: PairChart[] = [];
  for (const { feed } of marketFeeds(result).slice(1)) {
    const s = series[feed];
    if (s) out.push(buildPairChart(result, feed, s, maxPoints));
  }
  return out;
}

/**
 * The markets card of a run over several markets: a row per market (its share of the run,
 * `result.pairs`, and its own move) and a chart panel per market but the primary.
 */
export function marketsSection(
  result: BacktestResult,
  changes: ReadonlyMap<string, number>,
  charts: readonly PairChart[],
): string {
  const pairs = result.pairs;
  if (pairs.length < 2) return '';
  const cur = quoteOf(pairs[0]?.symbol ?? '');
  const body = pairs
    .map((p, i) => {
      const change = changes.get(p.symbol) ?? Number.NaN;
      const open =
        p.openSize === 0
          ? 'flat'
          : `${p.openSize > 0 ? 'long' : 'short'} ${formatAmount(Math.abs(p.openSize))} (${formatMoney(p.unrealizedPnl, cur)})`;
      return (
        `<tr data-market="${e(p.symbol)}"><td>${e(p.symbol)} <span class="muted">${e(p.timeframe)}</span>${i === 0 ? ' <span class="muted">(primary: the chart above)</span>' : ''}</td>` +
        `<td class="num">${e(formatInteger(p.bars))}</td><td class="num">${e(formatInteger(p.tradeCount))}</td>` +
        `<td class="num">${e(formatPercent(p.winRate, 1))}</td><td class="num ${signClass(p.pnlNet)}">${e(formatMoney(p.pnlNet, cur))}</td>` +
        `<td class="num">${e(formatMoney(p.fees, cur))}</td><td class="num">${e(open)}</td>` +
        `<td class="num ${signClass(p.contribution)}">${e(formatPercent(p.contribution))}</td>` +
        `<td class="num">${e(formatInteger(p.denied + p.rejected + p.cancelledAtFill))}</td>` +
        `<td class="num ${signClass(change)}">${e(formatPercent(change))}</td></tr>`
      );
    })
    .join('\n');
  const missing = pairs.length - 1 - charts.length;
  const panels = charts
    .map(
      (c, k) =>
        `<div class="pair" data-pair="${k}"><h3>${e(c.symbol)} <span class="muted">${e(c.timeframe)}${c.aggregation.barsPerCandle > 1 ? ` as ${e(c.aggregation.timeframe ?? `${c.aggregation.barsPerCandle}-bar`)} candles` : ''}</span></h3>` +
        `<div class="chart-wrap"><div class="legend" id="pair-legend-${k}"></div><div class="pair-chart" id="pair-chart-${k}"></div></div></div>`,
    )
    .join('\n');
  return `<section class="card" id="markets">
<h2>Markets <span class="count">${e(formatInteger(pairs.length))}</span></h2>
<div class="scroll"><table><thead><tr><th>Market</th><th class="num">Bars</th><th class="num">Trades</th><th class="num">Win rate</th><th class="num">Net PnL</th><th class="num">Fees</th><th class="num">At the end</th><th class="num">Contribution</th><th class="num">Refused</th><th class="num">Market change</th></tr></thead><tbody>
${body}
</tbody></table></div>
<p class="muted">Each market's closed trades after their fees, the position left at the end (its unrealised PnL), what it added to the total return, its orders refused, and its own move (last close / first open - 1); the account's equity and drawdown are in the chart above.${missing > 0 ? ` ${e(formatInteger(missing))} market${missing === 1 ? "'s" : "s'"} bars were not given to the report: no chart for ${missing === 1 ? 'it' : 'them'}.` : ''}</p>
${panels}
</section>`;
}
