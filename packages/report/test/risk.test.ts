import { describe, expect, it } from 'vitest';
import { buildChartData, formatSummary, renderHtmlReport, resultToJson } from '../src/index.ts';
import { riskRun } from './helpers.ts';

// Oracle: the run's own risk log (BacktestResult.riskEvents); each output must show all of it,
// counted by rule, where the user looks.

describe('risk in the reports', () => {
  const { result, bars } = riskRun();
  const halts = result.riskEvents.filter((e) => e.type === 'halt');
  const denied = result.riskEvents.filter((e) => e.type === 'denied');

  it('the run has halts, locks and denials to show', () => {
    expect(halts.some((h) => h.rule === 'max-drawdown')).toBe(true);
    expect(halts.some((h) => h.rule === 'cooldown')).toBe(true);
    expect(denied.length).toBeGreaterThan(0);
  });

  it('the terminal summary names the settings, counts halts and denials by rule, and spells out the first halts', () => {
    const text = formatSummary(result);
    expect(text).toContain('risk:   --risk max-drawdown=0.05:flatten:resume --risk cooldown=2h --stop-loss 0.01');
    const c = result.riskCounts;
    const locks = halts.filter((h) => h.scope !== 'account');
    expect(text).toContain(`halts:  1 (max-drawdown 1)`);
    expect(text).toContain(`locks:  ${locks.length} (cooldown ${locks.length})`);
    const dd = halts.find((h) => h.rule === 'max-drawdown');
    expect(text).toContain(`max-drawdown (flatten, until resumed): ${dd?.message}`);
    expect(text).toContain(`denied: ${c.deniedTotal.toLocaleString('en-US')} orders (`);
    for (const [rule, n] of Object.entries(c.denied)) expect(text).toContain(`${rule} ${n.toLocaleString('en-US')}`);
    expect(text).toContain('halted at the end: max-drawdown');
    // Plain ASCII lines, like the rest of the summary.
    expect(text).toMatch(/^[\x20-\x7e\n]*$/);
  });

  it('--json carries every risk event with ISO times, the counts and the settings', () => {
    const json = resultToJson(result);
    expect(json.riskEvents).toHaveLength(result.riskEvents.length);
    const h = json.riskEvents.find((e) => e.type === 'halt' && e.rule === 'max-drawdown');
    expect(h).toMatchObject({ action: 'flatten', scope: 'account', until: null, limit: 0.05 });
    expect(h?.timeIso).toMatch(/^2024-01-\d\dT\d\d:\d\d:00Z$/);
    const lock = json.riskEvents.find((e) => e.type === 'halt' && e.rule === 'cooldown');
    expect(lock?.untilIso).toMatch(/^2024-01-/);
    expect(json.riskCounts).toEqual(result.riskCounts);
    expect(json.risk).toEqual({
      risk: ['max-drawdown=0.05:flatten:resume', 'cooldown=2h'],
      sizing: [],
      exits: { 'stop-loss': '0.01', 'atr-period': '14' },
    });
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
  });

  it('the HTML report marks every halt and resume on the equity curve and lists them', () => {
    const chart = buildChartData(result, bars, 5000);
    const resumes = result.riskEvents.filter((e) => e.type === 'resume');
    expect(chart.riskMarkers).toHaveLength(halts.length + resumes.length);
    // Each marker sits on the candle that holds the bar the event happened at.
    const dd = halts.find((h) => h.rule === 'max-drawdown');
    const m = chart.riskMarkers.find((x) => x[2] === 'halt: max-drawdown (flatten)' && x[1] === 2);
    expect(chart.riskMarkers.filter((x) => x[1] === 1).length).toBe(halts.length - 1);
    expect(m).toBeDefined();
    const t = (m as [number, number, string])[0] * 1000;
    const i = chart.candles.time.indexOf(t / 1000);
    const next = chart.candles.time[i + 1];
    expect(t).toBeLessThan(dd?.time as number);
    if (next !== undefined) expect(next * 1000).toBeGreaterThanOrEqual((dd?.time as number) - 60_000 + 1);
    const html = renderHtmlReport(result, bars);
    expect(html).toContain('<section class="card" id="risk">');
    expect(html).toContain('max-drawdown=0.05:flatten:resume');
    expect(html).toContain(`${halts.length} halts · ${denied.length.toLocaleString('en-US')} denied`);
    expect(html).toContain('"riskMarkers":[[');
  });
});
