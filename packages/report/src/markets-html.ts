import type { BacktestResult, BarSeries } from '@keel/core';
import { buildPairChart, feedRange, type PairChart } from './chart-data.ts';
import { escapeHtml as e, formatAmount, formatInteger, formatMoney, formatPercent, quoteOf } from './format.ts';

/** One market of a run over several, as its panel shows it. */
export interface MarketRow {
  readonly symbol: string;
  readonly timeframe: string;
  readonly bars: number;
  readonly trades: number;
  readonly winRate: number;
  readonly pnlNet: number;
  readonly fees: number;
  /** Size held at the end (0: flat). */
  readonly openSize: number;
  /** Last close / first open - 1 of its bars; NaN without them. */
  readonly marketChange: number;
}

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

/** Each market's closed trades, its open position and its move over the run (`series[feed]`, when given). */
export function marketRows(result: BacktestResult, series: readonly (BarSeries | undefined)[]): MarketRow[] {
  return marketFeeds(result).map(({ symbol, feed }) => {
    const f = result.feeds[feed] as BacktestResult['feeds'][number];
    const trades = result.trades.filter((t) => t.symbol === symbol);
    let pnl = 0;
    let fees = 0;
    let wins = 0;
    for (const t of trades) {
      pnl += t.pnlNet;
      fees += t.fees;
      if (t.pnlNet > 0) wins++;
    }
    const open = result.openTrades.filter((t) => t.symbol === symbol).reduce((a, t) => a + t.size, 0);
    const s = series[feed];
    let change = Number.NaN;
    if (s && f.bars > 0) {
      const [p0, p1] = feedRange(result, feed, s);
      change = (s.close[p1 - 1] as number) / (s.open[p0] as number) - 1;
    }
    return {
      symbol,
      timeframe: f.timeframe,
      bars: f.bars,
      trades: trades.length,
      winRate: trades.length > 0 ? wins / trades.length : Number.NaN,
      pnlNet: pnl,
      fees,
      openSize: open,
      marketChange: change,
    };
  });
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

const sign = (x: number) => (x > 0 ? 'pos' : x < 0 ? 'neg' : '');

/** The markets card of a run over several markets: a row per market, and a chart panel per other market. */
export function marketsSection(rows: readonly MarketRow[], charts: readonly PairChart[]): string {
  if (rows.length < 2) return '';
  const cur = quoteOf(rows[0]?.symbol ?? '');
  const body = rows
    .map(
      (r, i) =>
        `<tr data-market="${e(r.symbol)}"><td>${e(r.symbol)} <span class="muted">${e(r.timeframe)}</span>${i === 0 ? ' <span class="muted">(primary: the chart above)</span>' : ''}</td>` +
        `<td class="num">${e(formatInteger(r.bars))}</td><td class="num">${e(formatInteger(r.trades))}</td>` +
        `<td class="num">${e(formatPercent(r.winRate, 1))}</td><td class="num ${sign(r.pnlNet)}">${e(formatMoney(r.pnlNet, cur))}</td>` +
        `<td class="num">${e(formatMoney(r.fees, cur))}</td><td class="num">${r.openSize === 0 ? 'flat' : e(`${r.openSize > 0 ? 'long' : 'short'} ${formatAmount(Math.abs(r.openSize))}`)}</td>` +
        `<td class="num ${sign(r.marketChange)}">${e(formatPercent(r.marketChange))}</td></tr>`,
    )
    .join('\n');
  const missing = rows.length - 1 - charts.length;
  const panels = charts
    .map(
      (c, k) =>
        `<div class="pair" data-pair="${k}"><h3>${e(c.symbol)} <span class="muted">${e(c.timeframe)}${c.aggregation.barsPerCandle > 1 ? ` as ${e(c.aggregation.timeframe ?? `${c.aggregation.barsPerCandle}-bar`)} candles` : ''}</span></h3>` +
        `<div class="chart-wrap"><div class="legend" id="pair-legend-${k}"></div><div class="pair-chart" id="pair-chart-${k}"></div></div></div>`,
    )
    .join('\n');
  return `<section class="card" id="markets">
<h2>Markets <span class="count">${e(formatInteger(rows.length))}</span></h2>
<div class="scroll"><table><thead><tr><th>Market</th><th class="num">Bars</th><th class="num">Trades</th><th class="num">Win rate</th><th class="num">Net PnL</th><th class="num">Fees</th><th class="num">At the end</th><th class="num">Market change</th></tr></thead><tbody>
${body}
</tbody></table></div>
<p class="muted">Closed trades of each market, after their fees; the account's equity and drawdown are in the chart above.${missing > 0 ? ` ${e(formatInteger(missing))} market${missing === 1 ? "'s" : "s'"} bars were not given to the report: no chart for ${missing === 1 ? 'it' : 'them'}.` : ''}</p>
${panels}
</section>`;
}
