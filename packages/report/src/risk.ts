import type { BacktestResult, RiskEvent } from '@keel/core';
import { riskConfigText } from '@keel/core';
import { formatInteger, formatTimeShort } from './format.ts';

type Halt = Extract<RiskEvent, { type: 'halt' }>;

/** "max-drawdown 1, cooldown 12": counts by rule, largest first (then by name). */
export function countsText(counts: Readonly<Record<string, number>>): string {
  return Object.entries(counts)
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .map(([k, n]) => `${k} ${formatInteger(n)}`)
    .join(', ');
}

/** How a halt ends, for people: "until resumed", "until 2024-01-02 00:00". */
export function haltSpan(h: Halt): string {
  return h.until === null ? 'until resumed' : `until ${formatTimeShort(h.until)}`;
}

/** One line per halt: when, what, on what, how, and why (the rule's own message). */
export function haltLine(h: Halt): string {
  const scope = h.scope === 'account' ? '' : ` on ${h.scope}`;
  return `${formatTimeShort(h.time)} ${h.rule}${scope} (${h.action}, ${haltSpan(h)}): ${h.message}`;
}

/** Halts shown by name in the terminal and the page; every one is in result.json. */
export const HALTS_SHOWN = 5;

/**
 * The risk block of the terminal summary: the settings; the account-wide halts, each spelled out
 * (and whether one still holds at the end); the locks on one market, counted by rule with the
 * first; the denials counted by rule; notices. Empty without settings and events.
 */
export function riskSummaryLines(result: BacktestResult): string[] {
  const lines: string[] = [];
  const on = result.risk !== null;
  if (result.risk !== null) lines.push(`risk:   ${riskConfigText(result.risk).join(' ')}`);
  const all = result.riskEvents.filter((e): e is Halt => e.type === 'halt');
  const halts = all.filter((h) => h.scope === 'account');
  const locks = all.filter((h) => h.scope !== 'account');
  const byRule = (hs: readonly Halt[]) => {
    const n: Record<string, number> = {};
    for (const h of hs) n[h.rule] = (n[h.rule] ?? 0) + 1;
    return countsText(n);
  };
  if (halts.length > 0) {
    lines.push(`halts:  ${formatInteger(halts.length)} (${byRule(halts)})`);
    for (const h of halts.slice(0, HALTS_SHOWN)) lines.push(`  ${haltLine(h)}`);
    if (halts.length > HALTS_SHOWN)
      lines.push(`  ... and ${formatInteger(halts.length - HALTS_SHOWN)} more (the report, result.json)`);
    const open = halts.filter(
      (h) =>
        h.until === null &&
        !result.riskEvents.some((e) => e.type === 'resume' && e.rule === h.rule && e.time >= h.time),
    );
    if (open.length > 0)
      lines.push(`  halted at the end: ${open.map((h) => h.rule).join(', ')} (resumeTrading() / keel bots resume)`);
  } else if (on) lines.push('halts:  none');
  if (locks.length > 0) {
    lines.push(`locks:  ${formatInteger(locks.length)} (${byRule(locks)})`);
    lines.push(`  first: ${haltLine(locks[0] as Halt)}`);
  }
  const c = result.riskCounts;
  if (c.deniedTotal > 0) lines.push(`denied: ${formatInteger(c.deniedTotal)} orders (${countsText(c.denied)})`);
  else if (on) lines.push('denied: none');
  const notices = result.riskEvents.filter((e) => e.type === 'notice');
  if (notices.length > 0) lines.push(`notices: ${formatInteger(notices.length)} (first: ${notices[0]?.message ?? ''})`);
  return lines;
}
