/**
 * `direction=long|short|both` on every built-in strategy, on LINKUSDT USD-M 1m (2023-02, first
 * week) as a perpetual at 1x without funding. Oracles: for the crossover strategies the long and
 * short runs act on the same signals (a short enters where a long exits and exits where it
 * enters), and `both` acts on every signal of either; for every strategy, `short` only ever
 * opens by selling and `both` alternates sides.
 */
import { type BacktestResult, type BarSeries, runBacktest, sliceSeries } from '@keel/core';
import { readBarsFile } from '@keel/data';
import { describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { getStrategy, STRATEGIES } from '../src/index.ts';

const FILE = 'binance-futures-um_LINKUSDT_1m_2023-02.csv.gz';
if (!HAS_SHARED_DATA) noteSkip('direction.test.ts', FILE);

let series: BarSeries | undefined;
function week(): BarSeries {
  series ??= sliceSeries(readBarsFile(dataFile(FILE)).series, 0, 7 * 1440);
  return series;
}

function run(name: string, direction: string): BacktestResult {
  return runBacktest({
    strategy: getStrategy(name),
    params: { direction },
    data: [{ symbol: 'LINK/USDT:USDT', timeframe: '1m', series: week() }],
    cash: 10_000,
    futures: () => ({ leverage: 1, marginMode: 'cross', funding: null }),
  });
}

/** Decision times of the filled orders. */
function decided(r: BacktestResult): number[] {
  return r.orders.filter((o) => o.status === 'filled').map((o) => o.createdAt);
}

describe.skipIf(!HAS_SHARED_DATA)('direction', () => {
  for (const name of Object.keys(STRATEGIES)) {
    it(`${name}: short opens only by selling, both trades long and short one at a time; long is the default`, () => {
      const long = run(name, 'long');
      const dflt = runBacktest({
        strategy: getStrategy(name),
        data: [{ symbol: 'LINK/USDT:USDT', timeframe: '1m', series: week() }],
        cash: 10_000,
        futures: () => ({ leverage: 1, marginMode: 'cross', funding: null }),
      });
      expect(decided(dflt)).toEqual(decided(long));
      const short = run(name, 'short');
      const filled = short.orders.filter((o) => o.status === 'filled');
      expect(filled.length).toBeGreaterThan(1);
      // Entries (even positions in the list) sell; exits buy back all of it.
      for (const [i, o] of filled.entries()) expect(o.request.side, `order ${i}`).toBe(i % 2 === 0 ? 'sell' : 'buy');
      expect(short.trades.length).toBeGreaterThan(0);
      for (const t of short.trades) expect(t.direction).toBe('short');
      // Both: long and short trades, and never more than one position at a time (a reversal
      // closes one trade and opens the next).
      const both = run(name, 'both');
      const dirs = new Set(both.trades.map((t) => t.direction));
      expect([...dirs].sort()).toEqual(['long', 'short']);
      for (let i = 1; i < both.trades.length; i++)
        expect(both.trades[i]!.entryTime).toBeGreaterThanOrEqual(both.trades[i - 1]!.exitTime);
    });
  }

  for (const name of ['sma-cross', 'ema-cross', 'macd']) {
    it(`${name}: the short run acts on the long run's signals, both on all of them`, () => {
      const l = decided(run(name, 'long'));
      const s = decided(run(name, 'short'));
      const both = run(name, 'both');
      const b = decided(both);
      const all = [...new Set([...l, ...s])].sort((x, y) => x - y);
      // A crossover alternates up and down: every signal but the first/last is in both runs.
      expect(s.filter((t) => !l.includes(t)).length).toBeLessThanOrEqual(1);
      expect(l.filter((t) => !s.includes(t)).length).toBeLessThanOrEqual(1);
      // Both reverses on every signal: one order per signal, sides alternating.
      expect(b).toEqual(all);
      const sides = both.orders.filter((o) => o.status === 'filled').map((o) => o.request.side);
      for (let i = 1; i < sides.length; i++) expect(sides[i], `order ${i}`).not.toBe(sides[i - 1]);
    });
  }
});
