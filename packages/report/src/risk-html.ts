import type { BacktestResult, RiskEvent } from '@keel/core';
import { riskConfigText } from '@keel/core';
import { escapeHtml as e, formatInteger, formatTimeShort } from './format.ts';
import { countsText, haltSpan } from './risk.ts';

type Halt = Extract<RiskEvent, { type: 'halt' }>;

/** Halts listed in the page; all of them are in result.json. */
const MAX_HALTS_SHOWN = 200;

/**
 * The risk card of the HTML report: the settings, every halt with its numbers (also marked on the
 * equity curve), and the denials counted by rule. Nothing when the run had neither settings nor
 * events.
 */
export function riskSection(result: BacktestResult): string {
  if (result.risk === null && result.riskEvents.length === 0) return '';
  const c = result.riskCounts;
  const halts = result.riskEvents.filter((x): x is Halt => x.type === 'halt');
  const resumes = result.riskEvents.filter((x) => x.type === 'resume');
  let html = `<section class="card" id="risk"><h2>Risk <span class="count">${e(formatInteger(c.haltsTotal))} halts · ${e(formatInteger(c.deniedTotal))} denied</span></h2>`;
  if (result.risk !== null)
    html += `<p><span class="chips">${riskConfigText(result.risk)
      .map((t) => `<span class="chip">${e(t)}</span>`)
      .join('')}</span></p>`;
  if (halts.length === 0) html += '<p class="muted">No halt.</p>';
  else {
    const rows = halts
      .slice(0, MAX_HALTS_SHOWN)
      .map(
        (h) =>
          `<tr><td class="mono">${e(formatTimeShort(h.time))}</td><td>${e(h.rule)}</td><td>${e(h.scope)}</td><td>${e(h.action)}</td><td>${e(haltSpan(h))}</td><td class="msg">${e(h.message)}</td></tr>`,
      )
      .join('');
    html += `<h3>Halts and locks <span class="count">${e(countsText(c.halts))}</span></h3><div class="scroll"><table><thead><tr><th>Time (UTC)</th><th>Rule</th><th>Scope</th><th>Action</th><th>Lasts</th><th>Why</th></tr></thead><tbody>${rows}</tbody></table></div>`;
    if (halts.length > MAX_HALTS_SHOWN)
      html += `<p class="muted">… and ${e(formatInteger(halts.length - MAX_HALTS_SHOWN))} more in result.json.</p>`;
    html += `<p class="muted">On the equity curve: ■ a halt, ● its resume, small dots the locks on one market. ${e(formatInteger(resumes.length))} ended (resumed or ran out).</p>`;
  }
  if (c.deniedTotal > 0) {
    const rows = Object.entries(c.denied)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .map(([rule, n]) => {
        const first = result.riskEvents.find((x) => x.type === 'denied' && x.rule === rule);
        return `<tr><td>${e(rule)}</td><td class="num">${e(formatInteger(n))}</td><td class="msg">${e(first?.message ?? '')}</td></tr>`;
      })
      .join('');
    html += `<h3>Denied orders</h3><table><thead><tr><th>Rule</th><th class="num">Orders</th><th>First</th></tr></thead><tbody>${rows}</tbody></table>`;
  }
  return `${html}</section>`;
}
