import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type BacktestResult, type BarSeries, parseRiskConfig, type RiskConfig, runBacktest } from '@keel/core';
import { readBarsFile } from '@keel/data';
import { describe, expect, it } from 'vitest';
import { BACKTRADER_DIR, dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { getStrategy } from '../src/index.ts';

// The built-in strategies under run-level risk settings, unchanged. Oracles: backtrader's own
// result for the run without settings (shared/reference/backtrader), and the hand-computed
// consequence of each setting on that run.

function config(input: Parameters<typeof parseRiskConfig>[0]): RiskConfig {
  const p = parseRiskConfig(input);
  if (!p.ok) throw new Error(p.error.message);
  return p.config;
}

if (!HAS_SHARED_DATA) noteSkip('built-in strategies under risk settings');

describe.skipIf(!HAS_SHARED_DATA)('sma-cross on BTC/USDT 1m 2024-01 under risk settings', () => {
  const series: BarSeries = HAS_SHARED_DATA
    ? readBarsFile(dataFile('binance_BTCUSDT_1m_2024-01.csv.gz')).series
    : (undefined as unknown as BarSeries);
  const run = (risk?: RiskConfig): BacktestResult =>
    runBacktest({
      strategy: getStrategy('sma-cross'),
      params: { fast: 10, slow: 30 },
      data: [{ symbol: 'BTC/USDT', timeframe: '1m', series }],
      cash: 10_000,
      fee: 0.001,
      ...(risk ? { risk } : {}),
    });

  it('without settings: backtrader to the bit (the risk engine is absent)', () => {
    const ref = JSON.parse(
      readFileSync(path.join(BACKTRADER_DIR, 'binance_BTCUSDT_1m_2024-01', 'summary.json'), 'utf8'),
    ) as { sma_cross: { final_value: number } };
    const r = run();
    expect(r.finalValue).toBe(ref.sma_cross.final_value); // 1,647.67: an 83.5 % loss
    expect(r.riskEvents).toEqual([]);
    expect(r.risk).toBeNull();
  });

  /** The halt by hand from the run without the rule (identical up to the halt). */
  function haltByHand(free: BacktestResult, limit: number) {
    const v = free.equity.values;
    let peak = 10_000; // the peak so far, from the start value
    let k = -1;
    for (let i = 0; i < v.length && k < 0; i++) {
      peak = Math.max(peak, v[i] as number);
      if (1 - (v[i] as number) / peak >= limit) k = i;
    }
    const time = free.equity.times[k] as number;
    // What is held at the halt bar's close: the fills up to then.
    let held = 0;
    for (const f of free.fills) if (f.time <= time) held += f.side === 'buy' ? f.amount : -f.amount;
    return { k, time, peak, equity: v[k] as number, held };
  }

  function expectHalt(r: BacktestResult, h: ReturnType<typeof haltByHand>, limit: number): void {
    const halts = r.riskEvents.filter((e) => e.type === 'halt');
    expect(halts).toHaveLength(1);
    expect(halts[0]).toMatchObject({ time: h.time, rule: 'max-drawdown', action: 'flatten', until: null, limit });
    expect((halts[0] as { actual: number }).actual).toBe(1 - h.equity / h.peak);
    // Nothing is entered after the halt: every later signal is a denial naming the rule.
    expect(r.fills.filter((f) => f.time > h.time && f.side === 'buy')).toEqual([]);
    const denied = r.riskEvents.filter((e) => e.type === 'denied');
    expect(denied.length).toBeGreaterThan(0);
    expect(denied.every((e) => e.rule === 'max-drawdown' && e.time > h.time)).toBe(true);
    expect(r.riskCounts).toEqual({
      denied: { 'max-drawdown': denied.length },
      halts: { 'max-drawdown': 1 },
      deniedTotal: denied.length,
      haltsTotal: 1,
    });
    // After the halt (and the flatten) the equity no longer moves.
    const last = r.equity.values[r.equity.values.length - 1] as number;
    for (let i = h.k + 2; i < r.equity.values.length; i++) expect(r.equity.values[i]).toBe(last);
  }

  it('max-drawdown=0.2 halts once and the run ends near 80 % of the start, where the halt left it', () => {
    const free = run();
    const r = run(config({ risk: ['max-drawdown=0.2'] }));
    const h = haltByHand(free, 0.2);
    // The halt bar is 2024-01-05 01:17 UTC: the losing exit of a round trip filled at its open,
    // so the strategy is flat at the close that crosses the limit: there is nothing to flatten,
    // and the run ends at that close's equity, to the bit.
    expect(new Date(h.time).toISOString()).toBe('2024-01-05T01:17:00.000Z');
    expect(h.held).toBe(0);
    const exit = free.trades.find((t) => t.exitTime === h.time);
    expect(exit?.pnlNet).toBeLessThan(0);
    for (let i = 0; i <= h.k; i++) expect(r.equity.values[i]).toBe(free.equity.values[i]);
    expectHalt(r, h, 0.2);
    expect(r.fills.filter((f) => f.time > h.time)).toEqual([]);
    expect(r.finalValue).toBe(h.equity);
    // The equity is the start plus the net PnL of the round trips closed by then.
    const net = free.trades.filter((t) => t.exitTime <= h.time).reduce((a, t) => a + t.pnlNet, 0);
    expect(r.finalValue).toBeCloseTo(10_000 + net, 8);
    // Near 80 % of the start: the peak was barely above the start (10,029.65), and only the halt
    // bar's move (that exit's loss) lies beyond the limit.
    expect(h.peak).toBeCloseTo(10_029.65, 2);
    expect(r.finalValue / h.peak).toBeLessThanOrEqual(0.8);
    expect(r.finalValue / h.peak).toBeGreaterThan(0.799);
    expect(r.finalValue / 10_000).toBeCloseTo(0.8022, 4);
    // The loss the rule saved: backtrader's run loses 83.5 %.
    expect(r.finalValue).toBeGreaterThan(4 * free.finalValue);
  });

  it('max-drawdown=0.1 halts while long: the flatten sells it all at the next open, with the fee', () => {
    const free = run();
    const r = run(config({ risk: ['max-drawdown=0.1'] }));
    const h = haltByHand(free, 0.1);
    expect(h.held).toBeGreaterThan(0);
    for (let i = 0; i <= h.k; i++) expect(r.equity.values[i]).toBe(free.equity.values[i]);
    expectHalt(r, h, 0.1);
    // By hand: the cash at the halt's close is its equity less the position at that close; the
    // flatten sells the whole position at the next bar's open and pays 0.1 % of that notional.
    const open = series.open[h.k + 1] as number;
    const flatten = r.fills.filter((f) => f.time > h.time);
    expect(flatten).toHaveLength(1);
    expect(flatten[0]).toMatchObject({ side: 'sell', amount: h.held, price: open, tag: 'risk-flatten' });
    const cash = h.equity - h.held * (series.close[h.k] as number);
    expect(r.finalValue).toBeCloseTo(cash + h.held * open - h.held * 0.001 * open, 8);
    // Deterministic: the same input gives the same risk log, fills and curve, to the byte.
    const again = run(config({ risk: ['max-drawdown=0.1'] }));
    expect(JSON.stringify(again.riskEvents)).toBe(JSON.stringify(r.riskEvents));
    expect(JSON.stringify(again.fills)).toBe(JSON.stringify(r.fills));
    expect(Buffer.from(again.equity.values.buffer).equals(Buffer.from(r.equity.values.buffer))).toBe(true);
  });

  it('sizing percent=0.5 replaces the amount of every entry of the unchanged strategy', () => {
    const r = run(config({ sizing: ['percent=0.5'] }));
    const entries = r.orders.filter((o) => o.request.side === 'buy' && o.status === 'filled');
    expect(entries.length).toBeGreaterThan(100);
    for (const o of entries) {
      // 50 % of the equity at the signal bar's close, over that close (the decision price).
      const i = r.equity.times.indexOf(o.createdAt);
      expect(o.request.amount).toBeCloseTo((0.5 * (r.equity.values[i] as number)) / o.decisionPrice, 9);
    }
  });

  it('a stop-loss and a take-profit are attached to every entry of the unchanged strategy', () => {
    const r = run(config({ exits: { 'stop-loss': '0.5%', 'take-profit': '1%' } }));
    const entries = r.fills.filter((f) => f.side === 'buy');
    const byTag = (t: string) => r.fills.filter((f) => f.tag === t);
    expect(byTag('stop-loss').length + byTag('take-profit').length).toBeGreaterThan(0);
    for (const f of byTag('stop-loss')) {
      const entry = [...entries].reverse().find((e) => e.time < f.time) as (typeof entries)[number];
      // Filled at the stop (0.5 % under the entry) or, gapped through, at a worse open.
      expect(f.price).toBeLessThanOrEqual(entry.price * 0.995 + 1e-9);
    }
    for (const f of byTag('take-profit')) {
      const entry = [...entries].reverse().find((e) => e.time < f.time) as (typeof entries)[number];
      expect(f.price).toBeGreaterThanOrEqual(entry.price * 1.01 - 1e-9);
    }
    // Every round trip ends flat: no exit is left working once the position is gone.
    expect(r.orders.filter((o) => o.status === 'accepted' || o.status === 'submitted').length).toBeLessThanOrEqual(3);
  });
});
