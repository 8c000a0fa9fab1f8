import type { BacktestResult } from '@keel/core';
import { monthlyReturns, returnHistogram } from './analysis.ts';
import { escapeHtml as e, formatInteger, formatNumber, formatPercent, signClass } from './format.ts';

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Returns by calendar month (UTC) and year, from the equity curve. */
export function monthlySection(result: BacktestResult): string {
  const years = monthlyReturns(result.equity, result.startValue);
  if (years.length === 0) return '';
  const cell = (x: number) => `<td class="num ${signClass(x)}">${e(formatPercent(x))}</td>`;
  const rows = years
    .map(
      (y) =>
        `<tr data-year="${y.year}"><th>${y.year}</th>${y.months.map((m) => (m ? cell(m.return) : '<td class="num muted">·</td>')).join('')}<td class="num total ${signClass(y.total)}">${e(formatPercent(y.total))}</td></tr>`,
    )
    .join('\n');
  return `<section class="card" id="monthly">
<h2>Monthly returns</h2>
<div class="scroll"><table class="monthly"><thead><tr><th>Year</th>${MONTHS.map((m) => `<th class="num">${m}</th>`).join('')}<th class="num">Year</th></tr></thead><tbody>
${rows}
</tbody></table></div>
<p class="muted">Equity at the close of each month's last bar against the month before (the first month against the start value), in UTC; a bar counts in the month it opened in. Open positions at market.</p>
</section>`;
}

/** Fixed-point text for SVG coordinates (deterministic, short). */
const px = (x: number) => String(Math.round(x * 10) / 10);

/** The distribution of closed trades' returns as an inline SVG bar chart (no script needed). */
export function histogramSection(result: BacktestResult): string {
  const h = returnHistogram(result.trades.map((t) => t.returnPct));
  if (h.bins.length === 0) {
    return '<section class="card" id="histogram"><h2>Trade returns</h2><p class="muted">No closed trades.</p></section>';
  }
  const W = 720;
  const H = 200;
  const top = 16;
  const bottom = 24;
  const plotH = H - top - bottom;
  const n = h.bins.length;
  const bw = W / n;
  const maxCount = Math.max(...h.bins.map((b) => b.count));
  const labelEvery = Math.ceil(n / 10);
  const bars = h.bins
    .map((b, k) => {
      const bh = maxCount > 0 ? (b.count / maxCount) * plotH : 0;
      const x = k * bw;
      const cls = b.lo >= 0 ? 'pos' : 'neg';
      const range = `${formatNumber(b.lo, 2)} % to ${formatNumber(b.hi, 2)} %`;
      return (
        `<g class="bin ${cls}" data-lo="${b.lo}" data-hi="${b.hi}" data-count="${b.count}"><title>${e(`${range}: ${formatInteger(b.count)} trade${b.count === 1 ? '' : 's'}`)}</title>` +
        `<rect x="${px(x + 1)}" y="${px(top + plotH - bh)}" width="${px(Math.max(bw - 2, 1))}" height="${px(bh)}"></rect>` +
        (b.count > 0 && n <= 40
          ? `<text x="${px(x + bw / 2)}" y="${px(top + plotH - bh - 3)}" class="count">${b.count}</text>`
          : '') +
        '</g>'
      );
    })
    .join('');
  const labels = h.bins
    .map((b, k) =>
      k % labelEvery === 0
        ? `<text x="${px(k * bw)}" y="${H - 6}" class="axis">${e(formatNumber(b.lo, h.width < 1 ? 1 : 0))}</text>`
        : '',
    )
    .join('');
  const wins = result.trades.filter((t) => t.pnlNet > 0).length;
  return `<section class="card" id="histogram">
<h2>Trade returns <span class="count">${e(formatInteger(h.count))}</span></h2>
<svg class="histogram" viewBox="0 0 ${W} ${H}" role="img" aria-label="Histogram of trade returns in bins of ${e(formatNumber(h.width, 2))} %">
<line x1="0" y1="${top + plotH}" x2="${W}" y2="${top + plotH}" class="base"></line>${bars}${labels}
</svg>
<p class="muted">Net return of each closed trade (after fees), in bins of ${e(formatNumber(h.width, h.width < 1 ? 2 : 1))} % (each bin holds its lower edge). ${e(formatInteger(wins))} winners, ${e(formatInteger(result.trades.length - wins))} losers.${h.skipped > 0 ? ` ${e(formatInteger(h.skipped))} trades with no finite return are not shown.` : ''}</p>
</section>`;
}
