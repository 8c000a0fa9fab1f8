import { describe, expect, it } from 'vitest';
import {
  type BacktestConfig,
  type BacktestResult,
  CrossOver,
  defineStrategy,
  type Fill,
  runBacktest,
  SMA,
  syntheticBars,
  type Trade,
} from '../src/index.ts';

const anyParams = { safeParse: (x: unknown) => ({ success: true as const, data: x as { allocation: number } }) };

/** A single-market SMA cross that also records which market each hook saw (routing check). */
function smaCross(seen: string[]) {
  return defineStrategy({
    name: 'sma-probe',
    params: anyParams,
    onStart(ctx) {
      return { fast: ctx.indicator(new SMA(10)), slow: ctx.indicator(new SMA(30)), cross: new CrossOver() };
    },
    onBar(ctx, s, _bar, feed) {
      if (feed.symbol !== ctx.symbol) seen.push(`onBar ${feed.symbol} in ${ctx.symbol}`);
      const c = s.cross.update(s.fast.value, s.slow.value);
      if (ctx.position().size === 0) {
        if (c > 0) ctx.orderTargetPercent(ctx.params.allocation);
      } else if (c < 0) ctx.close();
    },
    onFill(ctx, _s, f: Fill) {
      if (f.symbol !== ctx.symbol) seen.push(`onFill ${f.symbol} in ${ctx.symbol}`);
    },
  });
}

const A = syntheticBars(4_000, { seed: 3, start: Date.UTC(2024, 0, 1), intervalMs: 60_000 });
const B = syntheticBars(4_000, { seed: 5, start: Date.UTC(2024, 0, 1), intervalMs: 60_000 });

const AB: BacktestConfig['data'] = [
  { symbol: 'AAA/USDT', timeframe: '1m', series: A },
  { symbol: 'BBB/USDT', timeframe: '1m', series: B },
];

/** A time both markets' SMA crosses hold a position at (found by running them). */
const OPEN_AT_END = Date.UTC(2024, 0, 1) + 2_300 * 60_000;

const times = (r: BacktestResult, symbol: string) =>
  r.trades.filter((t) => t.symbol === symbol).map((t) => [t.entryTime, t.exitTime]);

describe('perPair: one strategy per market in one portfolio', () => {
  it('over one market it is the plain run, to the bit', () => {
    const plain = runBacktest({
      strategy: smaCross([]),
      params: { allocation: 0.9 },
      data: [{ symbol: 'AAA/USDT', timeframe: '1m', series: A }],
      cash: 10_000,
      fee: 0.001,
    });
    const wrapped = runBacktest({
      strategy: smaCross([]),
      params: { allocation: 0.9 },
      data: [{ symbol: 'AAA/USDT', timeframe: '1m', series: A }],
      perPair: {},
      cash: 10_000,
      fee: 0.001,
    });
    expect(plain.trades.length).toBeGreaterThan(20);
    expect(wrapped.finalValue).toBe(plain.finalValue);
    expect(wrapped.trades).toEqual(plain.trades);
  });

  it('each market trades when its own run alone trades (entry and exit times equal the single-market backtests)', () => {
    const seen: string[] = [];
    const both = runBacktest({
      strategy: smaCross(seen),
      params: { allocation: 0.9 },
      data: AB,
      perPair: {},
      cash: 10_000,
      fee: 0.001,
    });
    expect(seen, 'every hook ran in the context of its own market').toEqual([]);
    for (const [symbol, series] of [
      ['AAA/USDT', A],
      ['BBB/USDT', B],
    ] as const) {
      const alone = runBacktest({
        strategy: smaCross([]),
        params: { allocation: 0.9 },
        data: [{ symbol, timeframe: '1m', series }],
        cash: 10_000,
        fee: 0.001,
      });
      expect(times(both, symbol), symbol).toEqual(times(alone, symbol));
    }
    // Two slots: an entry targets 0.9 / 2 of the equity, so both fit the cash at once.
    const entry = both.fills[0] as Fill;
    expect((entry.price * entry.amount) / 10_000).toBeCloseTo(0.45, 2);
    expect(both.orders.filter((o) => o.status === 'denied' || o.status === 'rejected')).toEqual([]);
    // The per-market split adds up to the run's trades.
    const pairs = both.pairs;
    expect(pairs.map((p) => p.symbol)).toEqual(['AAA/USDT', 'BBB/USDT']);
    expect(pairs.reduce((a, p) => a + p.tradeCount, 0)).toBe(both.trades.length);
    const net = (ts: readonly Trade[]) => ts.reduce((a, t) => a + t.pnlNet, 0);
    for (const p of pairs) expect(p.pnlNet).toBeCloseTo(net(both.trades.filter((t) => t.symbol === p.symbol)), 9);
  });

  it('the markets add up to the headline: fees to the fees paid, contributions to the total return, with a position open at the end', () => {
    // Oracle: the run's own headline, from the account's fees and the equity curve (final value /
    // start - 1), which the per-market split is computed apart from. The bars end with each market
    // held (2,300 bars: both SMA crosses are long then), so its entry fee is in no closed trade.
    const r = runBacktest({
      strategy: smaCross([]),
      params: { allocation: 0.9 },
      data: AB,
      perPair: {},
      cash: 10_000,
      fee: 0.001,
      to: OPEN_AT_END,
    });
    expect(r.openTrades.length, 'both markets are held at the end').toBe(2);
    const sum = (f: (p: (typeof r.pairs)[number]) => number) => r.pairs.reduce((a, p) => a + f(p), 0);
    expect(sum((p) => p.fees)).toBeCloseTo(r.metrics.feesPaid, 9);
    expect(sum((p) => p.openFees)).toBeCloseTo(
      r.openTrades.reduce((a, t) => a + t.fees, 0),
      9,
    );
    expect(sum((p) => p.contribution)).toBeCloseTo(r.metrics.totalReturn, 12);
    expect(sum((p) => p.pnlNet + p.unrealizedPnl - p.openFees + p.funding)).toBeCloseTo(r.finalValue - r.startValue, 8);
  });

  it('max-open-trades=1: never two markets held at once; the entries it refuses are denied and counted', () => {
    const r = runBacktest({
      strategy: smaCross([]),
      params: { allocation: 0.9 },
      data: AB,
      perPair: { slots: 1 },
      risk: { rules: [{ rule: 'max-open-trades', limit: 1 }] },
      cash: 10_000,
      fee: 0.001,
    });
    const spans = r.trades.map((t) => [t.entryTime, t.exitTime] as const).sort((x, y) => x[0] - y[0]);
    for (let i = 1; i < spans.length; i++)
      expect(spans[i]![0], 'an entry only after the previous trade exited').toBeGreaterThanOrEqual(spans[i - 1]![1]);
    expect(r.riskCounts.denied['max-open-trades'] ?? 0).toBeGreaterThan(0);
    expect(r.pairs.reduce((a, p) => a + p.denied, 0)).toBe(r.riskCounts.denied['max-open-trades']);
    expect(new Set(r.trades.map((t) => t.symbol)).size).toBe(2);
  });
});
