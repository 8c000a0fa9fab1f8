import { runBacktest, SMA, syntheticBars } from '@keel/core';
import { describe, expect, it } from 'vitest';
import { STRATEGIES } from '../src/index.ts';

// Seeded synthetic 1m bars (labelled: not a market), enough for every built-in's warm-up.
const bars = syntheticBars(600, { seed: 5, start: Date.UTC(2024, 0, 1), intervalMs: 60_000 });
const run = (name: string) =>
  runBacktest({
    strategy: STRATEGIES[name] as (typeof STRATEGIES)[string],
    data: [{ symbol: 'SYN/USDT', timeframe: '1m', series: bars }],
    cash: 10_000,
    fee: 0.001,
  });

describe('every built-in strategy plots its indicators', () => {
  for (const name of Object.keys(STRATEGIES)) {
    it(`${name}: its lines have a value at every bar after the warm-up, and none throws`, () => {
      const r = run(name);
      expect(r.plots?.length, 'plot lines').toBeGreaterThan(0);
      expect(r.errors.filter((e) => e.hook.startsWith('plot'))).toEqual([]);
      for (const p of r.plots ?? []) {
        const tail = Array.from(p.values.subarray(100));
        expect(tail.every(Number.isFinite), `${p.name} is finite from bar 100 on`).toBe(true);
      }
    });
  }

  it("sma-cross's lines are the SMAs of the closes (the indicator's own values, bar by bar)", () => {
    const r = run('sma-cross');
    const fast = new SMA(10);
    const slow = new SMA(30);
    const expected = { fast: [] as number[], slow: [] as number[] };
    for (let i = 0; i < bars.length; i++) {
      const x = bars.close[i] as number;
      expected.fast.push(fast.push(x));
      expected.slow.push(slow.push(x));
    }
    const line = (n: string) => Array.from(r.plots?.find((p) => p.name === n)?.values ?? []);
    expect(line('fast SMA')).toEqual(expected.fast);
    expect(line('slow SMA')).toEqual(expected.slow);
    // And by hand at one bar: the mean of the last 10 closes.
    let sum = 0;
    for (let i = 200; i < 210; i++) sum += bars.close[i] as number;
    expect(line('fast SMA')[209]).toBeCloseTo(sum / 10, 9);
  });
});
