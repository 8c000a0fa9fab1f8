import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { type BacktestResult, type BarSeries, runBacktest, syntheticBars } from '@keel/core';
import { resultJsonChunks } from '@keel/report';
import { openStore, type Store } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BacktestRun, backtestResultJson, loadBacktest, saveBacktest } from '../src/backtests.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-runtime-backtests-'));
let store: Store;
beforeAll(async () => {
  store = await openStore({ url: `sqlite:${path.join(dir, 'keel.db')}` });
});
afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const bars = syntheticBars(3_000, { seed: 11 });
const result = runBacktest({
  strategy: getStrategy('sma-cross'),
  params: { fast: 10, slow: 30 },
  data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: bars }],
  cash: 10_000,
  fee: 0.001,
  plots: true,
});
const run: BacktestRun = {
  result,
  bars,
  settings: { cash: 10_000, fee: 0.001, data: [{ symbol: 'BTC/USDT', source: 'synthetic' }] },
  summary: 'the summary',
};

const json = (r: BacktestResult) => Buffer.concat([...resultJsonChunks(r)]);
const columns = (s: BarSeries) => [s.time, s.open, s.high, s.low, s.close, s.volume].map((c) => [...c]);

/** What the run draws, to compare bit for bit (NaN too: toEqual treats NaN as equal to NaN). */
function drawn(r: BacktestResult, s: BarSeries) {
  return {
    bars: columns(s),
    benchmark: r.benchmark === undefined ? undefined : [...r.benchmark.values],
    plots: (r.plots ?? []).map((p) => ({ name: p.name, panel: p.panel, symbol: p.symbol, values: [...p.values] })),
  };
}

/**
 * The chart as builds before the binary format saved it (the oracle for old rows): one JSON
 * document, each column's float64 bytes as base64, gzipped (as the result JSON was).
 */
function chartV1(r: BacktestResult, s: BarSeries): Uint8Array {
  const b64 = (a: Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
  const n = s.length;
  return gzipSync(
    JSON.stringify({
      bars: Object.fromEntries(
        (['time', 'open', 'high', 'low', 'close', 'volume'] as const).map((c) => [c, b64(s[c].subarray(0, n))]),
      ),
      benchmark: r.benchmark !== undefined ? b64(r.benchmark.values) : null,
      plots: (r.plots ?? []).map((p) => ({ name: p.name, panel: p.panel, symbol: p.symbol, values: b64(p.values) })),
    }),
  );
}

describe('backtest runs in the store', () => {
  it('a saved run reads back whole: the result JSON byte for byte, the bars, benchmark and plots bit for bit', async () => {
    expect(result.plots?.length, 'the run records its plot lines').toBeGreaterThan(0);
    const { id } = await saveBacktest(store, run);
    expect(Buffer.from(await backtestResultJson(store, id)).equals(json(result))).toBe(true);
    const back = await loadBacktest(store, id);
    expect(drawn(back.result, back.bars)).toEqual(drawn(result, bars));
    expect(json(back.result).equals(json(result)), 'the result read back prints the same JSON').toBe(true);
  });

  it('a run saved by an earlier build (gzip, the chart as base64 JSON) still reads back the same', async () => {
    const now = await saveBacktest(store, run);
    const { id } = await store.backtests.save({
      ...(await store.backtests.get(now.id))!,
      result: gzipSync(json(result), { level: 1 }),
      chart: chartV1(result, bars),
    });
    expect(Buffer.from(await backtestResultJson(store, id)).equals(json(result))).toBe(true);
    const old = await loadBacktest(store, id);
    expect(drawn(old.result, old.bars)).toEqual(drawn(result, bars));
    expect(json(old.result).equals(json(result))).toBe(true);
  });
});
