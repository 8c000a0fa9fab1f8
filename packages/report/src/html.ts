import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { BacktestResult, BarSeries, Metrics, Timeframe } from '@keel/core';
import { ORDER_STATUSES, timeframeEnd, timeframeMs } from '@keel/core';
import { histogramSection, monthlySection } from './analysis-html.ts';
import { benchmarkLines } from './benchmark.ts';
import { buildChartData, buildDetailBars, type ChartData, type DetailBars, type PairChart } from './chart-data.ts';
import {
  escapeHtml,
  formatAmount,
  formatDuration,
  formatInteger,
  formatMoney,
  formatNumber,
  formatPercent,
  formatPrice,
  formatTime,
  formatTimeShort,
  paramPairs,
  priceDecimals,
  quoteOf,
  signClass,
} from './format.ts';
import { futuresSection } from './futures.ts';
import {
  errorToJson,
  feedsToJson,
  finiteOrNull,
  type Json,
  metricsToJson,
  openTradeToJson,
  toJsonValue,
} from './json.ts';
import { marketChanges, marketsSection, pairCharts } from './markets-html.ts';
import { formatMetric, METRIC_GROUPS, METRIC_SPECS } from './metrics-format.ts';
import { riskSection } from './risk-html.ts';

export interface HtmlReportOptions {
  /** Page title and heading; default "<strategy> on <symbol> <timeframe>". */
  readonly title?: string;
  /** Most candles (and curve points) drawn; longer runs merge consecutive bars. Default 5,000. */
  readonly maxPoints?: number;
  /**
   * Runs of up to this many bars whose candles are merged also embed the bars themselves, drawn
   * when the chart is zoomed in (about 20 bytes a bar). Default 200,000; 0 never embeds them.
   */
  readonly maxDetailBars?: number;
  /** Shown in the footer when given (UTC ms). Left out by default so equal input renders to equal bytes. */
  readonly generatedAt?: number;
  /** Lines shown under the heading, e.g. "Synthetic prices: not a real market". */
  readonly notes?: readonly string[];
  /** Tables shown right under the headline figures (e.g. what a live bot did differently). Text only: escaped. */
  readonly sections?: readonly ReportSection[];
  /**
   * The bars of every feed, in `result.feeds` order (the first is the primary's, as `bars`): a run
   * over several markets then gets a chart panel per market. Without it, the markets table only.
   */
  readonly feedSeries?: readonly (BarSeries | undefined)[];
}

/** A table of text a caller adds to the report. */
export interface ReportSection {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
  /** Shown instead of an empty table. */
  readonly empty?: string;
}

function sectionHtml(s: ReportSection): string {
  const body =
    s.rows.length === 0
      ? `<p class="muted">${e(s.empty ?? 'None.')}</p>`
      : `<table><thead><tr>${s.columns.map((c) => `<th>${e(c)}</th>`).join('')}</tr></thead><tbody>
${s.rows.map((r) => `<tr>${r.map((c) => `<td>${e(c)}</td>`).join('')}</tr>`).join('\n')}
</tbody></table>`;
  return `<section class="card"><h2>${e(s.title)}</h2>${body}</section>`;
}

export const DEFAULT_MAX_POINTS = 5_000;
export const DEFAULT_MAX_DETAIL_BARS = 200_000;
/** Errors listed in the page; all of them are in result.json. */
const MAX_ERRORS_SHOWN = 200;

const require = createRequire(import.meta.url);
let assets: { lib: string; libVersion: string; js: string; css: string } | undefined;

/** `</script` or `<!--` inside an inline script would end or confuse it; neither may appear. */
function checkInlineScript(name: string, js: string): string {
  if (/<\/script|<!--/i.test(js)) throw new Error(`${name} contains "</script" or "<!--" and cannot be inlined safely`);
  return js;
}

/** The chart library's standalone build and the report's own script and style, read once. */
function loadAssets(): NonNullable<typeof assets> {
  if (assets) return assets;
  const pkgPath = require.resolve('lightweight-charts/package.json');
  const pkg = JSON.parse(readFileSync(pkgPath, 'utf8')) as { version: string };
  const lib = readFileSync(
    path.join(path.dirname(pkgPath), 'dist', 'lightweight-charts.standalone.production.js'),
    'utf8',
  );
  assets = {
    lib: checkInlineScript('lightweight-charts', lib),
    libVersion: pkg.version,
    js: checkInlineScript('report.js', readFileSync(new URL('./assets/report.js', import.meta.url), 'utf8')),
    css: readFileSync(new URL('./assets/report.css', import.meta.url), 'utf8'),
  };
  return assets;
}

/** JSON for a <script type="application/json">: `<`, `>` and `&` escaped so no text can close the element. */
export function jsonForScript(v: unknown): string {
  return JSON.stringify(v)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const e = escapeHtml;

/** Rounds to `digits` significant digits; NaN and infinities become null. */
function sig(x: number, digits: number): number | null {
  return Number.isFinite(x) ? Number(x.toPrecision(digits)) : null;
}

/**
 * The closed trades as columns, compact enough for tens of thousands of trades in one page: entry
 * times as differences to the previous entry and exits as the time held (in seconds when every
 * time is a whole second), numbers at the precision the table shows and sorts by. result.json and
 * trades.csv keep the exact values.
 */
export function tradeColumns(trades: BacktestResult['trades']): Json {
  const symbols = [...new Set(trades.map((t) => t.symbol))].sort();
  const symIdx = new Map(symbols.map((s, i) => [s, i]));
  const unit = trades.every((t) => t.entryTime % 1000 === 0 && t.exitTime % 1000 === 0) ? 1000 : 1;
  const entryDelta: number[] = [];
  let prev = 0;
  for (const t of trades) {
    entryDelta.push((t.entryTime - prev) / unit);
    prev = t.entryTime;
  }
  return {
    count: trades.length,
    symbols,
    symbol: symbols.length > 1 ? trades.map((t) => symIdx.get(t.symbol) ?? 0) : null,
    timeUnitMs: unit,
    entryDelta,
    held: trades.map((t) => (t.exitTime - t.entryTime) / unit),
    direction: trades.map((t) => (t.direction === 'long' ? 1 : -1)),
    entryPrice: trades.map((t) => sig(t.entryPrice, 10)),
    exitPrice: trades.map((t) => sig(t.exitPrice, 10)),
    size: trades.map((t) => sig(t.size, 8)),
    fees: trades.map((t) => sig(t.fees, 7)),
    pnlNet: trades.map((t) => sig(t.pnlNet, 7)),
    returnPct: trades.map((t) => sig(t.returnPct, 6)),
  };
}

/** The data the page's script reads: the result's summary (resultToJson's parts), chart data, trades as rows. */
export function reportData(
  result: BacktestResult,
  chart: ChartData,
  currency: string | undefined,
  detail: DetailBars | null = null,
  pairs: readonly PairChart[] = [],
): Json {
  const tf = result.feeds[0]?.timeframe;
  const candleMs = chart.aggregation.timeframe
    ? timeframeMs(chart.aggregation.timeframe)
    : tf
      ? chart.aggregation.barsPerCandle * timeframeMs(tf)
      : 60_000;
  const firstClose = chart.candles.close.find((x) => Number.isFinite(x));
  return {
    format: 'keel.report-data',
    version: 1,
    result: {
      strategy: result.strategy,
      params: toJsonValue(result.params),
      feeds: feedsToJson(result.feeds),
      startValue: finiteOrNull(result.startValue),
      finalValue: finiteOrNull(result.finalValue),
      finalCash: finiteOrNull(result.finalCash),
      metrics: metricsToJson(result.metrics),
      openTrades: result.openTrades.map(openTradeToJson),
      errors: result.errors.map(errorToJson),
    },
    chart: {
      aggregation: { ...chart.aggregation },
      candleSeconds: candleMs / 1000,
      currency: currency ?? null,
      priceDecimals: priceDecimals(firstClose ?? Number.NaN),
      candles: { ...chart.candles },
      equity: chart.equity.map(finiteOrNull),
      drawdown: chart.drawdown.map(finiteOrNull),
      markers: chart.markers.map((m) => m.map(finiteOrNull)),
      riskMarkers: chart.riskMarkers,
      benchmark: chart.benchmark ? chart.benchmark.map(finiteOrNull) : null,
      plots: chart.plots.map((p) => ({ name: p.name, panel: p.panel, values: p.values.map(finiteOrNull) })),
      // DetailBars and PairChart are interfaces (no index signature), so TypeScript will not see
      // them as Json, though every field is a number, a string, an array of them or null.
      detail: detail as unknown as Json,
      pairs: pairs.map((p) => ({
        symbol: p.symbol,
        aggregation: { ...p.aggregation },
        candles: { ...p.candles },
        markers: p.markers.map((m) => m.map(finiteOrNull)),
        plots: p.plots.map((l) => ({ name: l.name, panel: l.panel, values: l.values.map(finiteOrNull) })),
      })) as unknown as Json,
    },
    trades: tradeColumns(result.trades),
  };
}

function kpi(label: string, value: string, cls = '', hint = ''): string {
  return `<div class="kpi"><div class="label">${e(label)}</div><div class="value${cls ? ` ${cls}` : ''}">${e(value)}</div>${hint ? `<div class="hint">${e(hint)}</div>` : ''}</div>`;
}

function periodOf(result: BacktestResult): { from: number; to: number } {
  const f = result.feeds[0];
  if (!f || f.bars === 0) return { from: Number.NaN, to: Number.NaN };
  return { from: f.first, to: timeframeEnd(f.timeframe, f.last) };
}

function metricsTable(m: Metrics, currency: string | undefined): string {
  const rows: string[] = [];
  for (const g of METRIC_GROUPS) {
    rows.push(`<tr class="group"><td colspan="2">${e(g.title)}</td></tr>`);
    for (const k of g.keys) {
      const spec = METRIC_SPECS[k];
      const v = m[k];
      const colour =
        k === 'totalReturn' || k === 'cagr' || k === 'expectancy'
          ? signClass(v)
          : k === 'maxDrawdown' && v > 0
            ? 'neg'
            : '';
      rows.push(
        `<tr data-metric="${e(k)}" title="${e(spec.help)}"><td>${e(spec.label)}</td><td class="num${colour ? ` ${colour}` : ''}">${e(formatMetric(spec.kind, v, currency))}</td></tr>`,
      );
    }
  }
  return `<table class="metrics"><tbody>${rows.join('')}</tbody></table>`;
}

function ordersSection(result: BacktestResult): string {
  const byStatus = new Map<string, number>();
  const reasons = new Map<string, number>();
  for (const o of result.orders) {
    byStatus.set(o.status, (byStatus.get(o.status) ?? 0) + 1);
    if (o.reason) {
      const key = `${o.status}: ${o.reason}`;
      reasons.set(key, (reasons.get(key) ?? 0) + 1);
    }
  }
  const statusRows = ORDER_STATUSES.filter((s) => byStatus.has(s))
    .map((s) => `<tr><td>${e(s)}</td><td class="num">${e(formatInteger(byStatus.get(s) ?? 0))}</td></tr>`)
    .join('');
  const topReasons = [...reasons.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10);
  let html = `<h2>Orders <span class="count">${e(formatInteger(result.orders.length))}</span></h2>`;
  html +=
    result.orders.length === 0
      ? '<p class="muted">No orders.</p>'
      : `<table><thead><tr><th>Status</th><th class="num">Orders</th></tr></thead><tbody>${statusRows}</tbody></table>`;
  html += `<p class="muted">${e(formatInteger(result.fills.length))} fills.</p>`;
  if (topReasons.length > 0) {
    html += `<h3>Why orders did not fill</h3><table><tbody>${topReasons.map(([r, n]) => `<tr><td>${e(r)}</td><td class="num">${e(formatInteger(n))}</td></tr>`).join('')}</tbody></table>`;
  }
  html += '<h3>Open at the end</h3>';
  if (result.openTrades.length === 0) html += '<p class="muted">No open position: every trade was closed.</p>';
  else {
    html +=
      '<table><thead><tr><th>Market</th><th>Direction</th><th>Since (UTC)</th><th class="num">Entry</th><th class="num">Size</th></tr></thead><tbody>';
    for (const t of result.openTrades) {
      html += `<tr><td>${e(t.symbol)}</td><td><span class="dir ${t.direction}">${e(t.direction)}</span></td><td class="mono">${e(formatTime(t.entryTime))}</td><td class="num">${e(formatPrice(t.entryPrice))}</td><td class="num">${e(formatAmount(t.size))}</td></tr>`;
    }
    html +=
      '</tbody></table><p class="muted">Open positions are valued at the last close in the final value; they are not in the trade list or the trade statistics.</p>';
  }
  return html;
}

function errorsSection(result: BacktestResult): string {
  if (result.errors.length === 0) return '';
  const shown = result.errors.slice(0, MAX_ERRORS_SHOWN);
  const more = result.errors.length - shown.length;
  const rows = shown
    .map(
      (x) =>
        `<tr><td class="mono">${e(formatTime(x.time))}</td><td>${e(x.hook)}</td><td class="msg">${e(x.message)}</td></tr>`,
    )
    .join('');
  return (
    `<section class="card errors" id="errors"><h2>Strategy errors <span class="count">${e(formatInteger(result.errors.length))}</span></h2>` +
    '<p class="muted">The strategy threw in these hooks; the engine caught the error and carried on.</p>' +
    `<div class="scroll"><table><thead><tr><th>Time (UTC)</th><th>Hook</th><th>Message</th></tr></thead><tbody>${rows}</tbody></table></div>` +
    (more > 0 ? `<p class="muted">… and ${e(formatInteger(more))} more in result.json.</p>` : '') +
    '</section>'
  );
}

function tradesSection(result: BacktestResult): string {
  const multi = new Set(result.trades.map((t) => t.symbol)).size > 1;
  const th = (label: string, key: string, num = false) =>
    `<th data-key="${key}"${num ? ' class="num"' : ''}>${e(label)}</th>`;
  const head =
    th('#', 'n', true) +
    (multi ? '<th>Market</th>' : '') +
    th('Direction', 'direction') +
    th('Entry (UTC)', 'entryTime') +
    th('Exit (UTC)', 'exitTime') +
    th('Held', 'duration', true) +
    th('Entry price', 'entryPrice', true) +
    th('Exit price', 'exitPrice', true) +
    th('Size', 'size', true) +
    th('Fees', 'fees', true) +
    th('PnL net', 'pnlNet', true) +
    th('Return', 'returnPct', true);
  return `<section class="card" id="trades">
<h2>Trades <span class="count" id="trades-count">${e(formatInteger(result.trades.length))}</span></h2>
<div class="toolbar">
<label for="trades-filter">Show</label><select id="trades-filter"><option value="all">all</option><option value="long">long</option><option value="short">short</option><option value="win">winners</option><option value="loss">losers</option></select>
<label for="trades-size">per page</label><select id="trades-size"><option selected>50</option><option>100</option><option>250</option><option>1000</option></select>
<span class="muted" id="trades-info"></span>
<span class="pager"><button type="button" id="trades-first" title="First page">«</button><button type="button" id="trades-prev" title="Previous page">‹</button><button type="button" id="trades-next" title="Next page">›</button><button type="button" id="trades-last" title="Last page">»</button></span>
</div>
<div class="scroll"><table class="trades"><thead><tr>${head}</tr></thead><tbody id="trades-body"><tr><td colspan="12" class="empty">The trade list needs JavaScript; trades.csv has every trade.</td></tr></tbody></table></div>
<p class="muted">Times are fill times (the close of the bar the order filled in). Click a trade to show it on the chart; click a column to sort.</p>
</section>`;
}

/**
 * A self-contained HTML report of one backtest: no network access at all (the chart library,
 * style and data are inlined, and the page's Content-Security-Policy forbids fetching anything),
 * so it opens from disk. Deterministic: the same result and bars give the same bytes.
 */
export function renderHtmlReport(result: BacktestResult, bars: BarSeries, opts: HtmlReportOptions = {}): string {
  const { lib, libVersion, js, css } = loadAssets();
  const feed = result.feeds[0];
  const symbol = feed?.symbol ?? '';
  const timeframe: Timeframe | undefined = feed?.timeframe;
  const currency = quoteOf(symbol);
  const chart = buildChartData(result, bars, opts.maxPoints ?? DEFAULT_MAX_POINTS);
  const title = opts.title ?? `${result.strategy} on ${symbol} ${timeframe ?? ''}`.trim();
  const { from, to } = periodOf(result);
  const m = result.metrics;
  const params = paramPairs(result.params);
  const agg = chart.aggregation;
  const maxDetail = opts.maxDetailBars ?? DEFAULT_MAX_DETAIL_BARS;
  const detail = agg.barsPerCandle > 1 && agg.bars <= maxDetail ? buildDetailBars(result, bars) : null;
  const aggText =
    agg.bars === 0
      ? ''
      : agg.barsPerCandle === 1
        ? `${formatInteger(agg.candles)} candles, one per bar`
        : `${formatInteger(agg.candles)} candles of ${agg.timeframe ? agg.timeframe : `${formatInteger(agg.barsPerCandle)} bars`} (${formatInteger(agg.bars)} ${timeframe ?? ''} bars merged; ${detail ? `zoom in to see the ${timeframe ?? ''} bars` : `more than ${formatInteger(maxDetail)} bars: the page keeps the merged candles only`})`;
  const markets = result.feeds.map((f) => `${f.symbol} ${f.timeframe}`).join(', ');
  const retClass = signClass(m.totalReturn);
  const bench = result.benchmark && result.benchmark.values.length > 0 ? result.benchmark : undefined;
  const benchText = bench ? benchmarkLines(bench, currency) : undefined;

  const header = `<header>
<div class="eyebrow">Keel backtest report</div>
<h1>${e(title)}</h1>
<p class="sub"><b>${e(result.strategy)}</b> · <b>${e(symbol)}</b> · ${e(timeframe ?? '')} · ${e(formatTimeShort(from))} → ${e(formatTimeShort(to))} UTC (${e(formatDuration(to - from))}) · ${e(formatInteger(feed?.bars ?? 0))} bars</p>
${(opts.notes ?? []).map((n) => `<p class="note">${e(n)}</p>`).join('\n')}
</header>`;

  const kpis = `<section class="kpis">
${kpi('Final value', formatMoney(result.finalValue, currency), '', `from ${formatMoney(result.startValue, currency)}`)}
${kpi('Total return', formatPercent(m.totalReturn), retClass, `CAGR ${formatPercent(m.cagr)}`)}
${bench ? kpi('Buy and hold', formatPercent(bench.totalReturn), signClass(bench.totalReturn), `market change ${formatPercent(bench.marketChange)}`) : ''}
${kpi('Max drawdown', formatPercent(m.maxDrawdown), m.maxDrawdown > 0 ? 'neg' : '', `longest ${formatDuration(m.maxDrawdownDurationMs)}`)}
${kpi('Sharpe ratio', formatNumber(m.sharpe, 2), '', `Sortino ${formatNumber(m.sortino, 2)}`)}
${kpi('Trades', formatInteger(m.tradeCount), '', `win rate ${formatPercent(m.winRate, 1)}`)}
${kpi('Profit factor', formatNumber(m.profitFactor, 2), '', `fees ${formatMoney(m.feesPaid, currency)}`)}
</section>`;

  const run = `<section class="card" id="run">
<h2>Run</h2>
<dl class="facts">
<dt>Strategy</dt><dd>${e(result.strategy)}</dd>
<dt>Parameters</dt><dd>${params.length === 0 ? '<span class="muted">none</span>' : `<span class="chips">${params.map(([k, v]) => `<span class="chip">${e(k)}=${e(v)}</span>`).join('')}</span>`}</dd>
<dt>Market${result.feeds.length > 1 ? 's' : ''}</dt><dd>${e(markets)}${result.feeds.length > 1 ? ' <span class="muted">(the first is the primary feed: equity and the chart follow its bars)</span>' : ''}</dd>
<dt>Period (UTC)</dt><dd>${e(formatTime(from))} → ${e(formatTime(to))}</dd>
<dt>Bars</dt><dd>${e(formatInteger(feed?.bars ?? 0))}</dd>
<dt>Start value</dt><dd>${e(formatMoney(result.startValue, currency))}</dd>
<dt>Final value</dt><dd>${e(formatMoney(result.finalValue, currency))} <span class="${retClass}">(${e(formatPercent(m.totalReturn))})</span></dd>
<dt>Final cash</dt><dd>${e(formatMoney(result.finalCash, currency))}</dd>
${
  benchText
    ? `<dt>Market change</dt><dd data-benchmark="market-change">${e(benchText.marketChange)}</dd>
<dt>Buy and hold</dt><dd data-benchmark="buy-and-hold">${e(benchText.buyAndHold)}<br><span class="muted">${e(benchText.model)}</span></dd>`
    : ''
}
</dl>
</section>`;

  const chartSection = `<section class="card" id="charts">
<div class="chart-head"><h2>Price, equity and drawdown</h2><span class="muted">${e(aggText)}</span></div>
<div class="muted chart-hint" id="chart-hint"></div>
<div class="chart-wrap"><div class="legend" id="legend"></div><div id="chart"></div></div>
<noscript><p class="muted">The charts need JavaScript.</p></noscript>
</section>`;

  const lower = `<div class="grid2">
<section class="card" id="metrics"><h2>Metrics</h2>${metricsTable(m, currency)}</section>
<div>
${run}
<section class="card" id="orders">${ordersSection(result)}</section>
</div>
</div>`;

  const footer = `<footer>
Generated by Keel${opts.generatedAt !== undefined ? ` on ${e(formatTime(opts.generatedAt))}` : ''}. Money in ${e(currency ?? 'the account currency')}; all times UTC.
Charts: <a href="https://www.tradingview.com/" rel="noopener noreferrer">TradingView</a> Lightweight Charts™ ${e(libVersion)} (Apache-2.0), inlined.
</footer>`;

  const series = opts.feedSeries ?? [bars];
  const changes = marketChanges(result, [bars, ...series.slice(1)]);
  const charts = pairCharts(result, [bars, ...series.slice(1)], opts.maxPoints ?? DEFAULT_MAX_POINTS);
  const data = reportData(result, chart, currency, detail, charts);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="generator" content="Keel report">
<title>${e(title)}</title>
<style>
${css}</style>
</head>
<body>
<main>
${header}
${kpis}
${(opts.sections ?? []).map(sectionHtml).join('\n')}
${chartSection}
${marketsSection(result, changes, charts)}
<div class="grid2">
${monthlySection(result)}
${histogramSection(result)}
</div>
${lower}
${riskSection(result)}
${futuresSection(result)}
${tradesSection(result)}
${errorsSection(result)}
${footer}
</main>
<script type="application/json" id="keel-data">${jsonForScript(data)}</script>
<script>
${lib}
</script>
<script>
${js}</script>
</body>
</html>
`;
}
