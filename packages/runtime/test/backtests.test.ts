import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { type BacktestResult, type BarSeries, runBacktest, syntheticBars } from '@keel/core';
import { resultJsonChunks } from '@keel/report';
import { openStore, type Store } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BacktestNotFoundError,
  type BacktestRun,
  backtestResultJson,
  deleteBacktests,
  loadBacktest,
  PendingBacktest,
  pruneBacktests,
  saveBacktest,
} from '../src/backtests.ts';

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

/**
 * The chart as builds before the bars were stored apart saved it (the oracle for those rows): a
 * header line, then the bars' six columns, the benchmark and the plots as float64 bytes; Brotli
 * behind a 'B' byte.
 */
function chartV2(r: BacktestResult, s: BarSeries): Uint8Array {
  const n = s.length;
  const plots = r.plots ?? [];
  let head = `${JSON.stringify({
    format: 'keel.chart',
    version: 2,
    endian: 'LE',
    bars: n,
    benchmark: r.benchmark !== undefined ? r.benchmark.values.length : null,
    plots: plots.map((p) => ({ name: p.name, panel: p.panel, symbol: p.symbol, length: p.values.length })),
  })}\n`;
  head = head.padEnd(Math.ceil(head.length / 8) * 8, ' ');
  const cols = [
    ...(['time', 'open', 'high', 'low', 'close', 'volume'] as const).map((c) => s[c].subarray(0, n)),
    ...(r.benchmark !== undefined ? [r.benchmark.values] : []),
    ...plots.map((p) => p.values),
  ];
  const bytes = Buffer.concat([
    Buffer.from(head, 'latin1'),
    ...cols.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)),
  ]);
  return Buffer.concat([Buffer.of(0x42), brotliCompressSync(bytes)]);
}

const barRows = async () => (await store.db.selectFrom('backtest_bars').select(['hash', 'bars']).execute()).length;

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

  it('a run saved with its bars inside the chart (binary chart, version 2) still reads back the same', async () => {
    const now = await saveBacktest(store, run);
    const { id } = await store.backtests.save({
      ...(await store.backtests.get(now.id))!,
      result: (await store.backtests.artifacts(now.id))!.result,
      chart: chartV2(result, bars),
    });
    expect((await store.backtests.artifacts(id))?.bars, 'no bars apart').toBeUndefined();
    const old = await loadBacktest(store, id);
    expect(drawn(old.result, old.bars)).toEqual(drawn(result, bars));
    expect(json(old.result).equals(json(result))).toBe(true);
  });

  it('runs on the same bars store them once; they stay while a run uses them and go with the last', async () => {
    await pruneBacktests(store, { keep: 0 });
    expect(await barRows()).toBe(0);
    const a = await saveBacktest(store, run);
    const b = await saveBacktest(store, { ...run, summary: 'again' });
    const other = syntheticBars(500, { seed: 12 });
    const c = await saveBacktest(store, {
      ...run,
      bars: other,
      result: runBacktest({
        strategy: getStrategy('sma-cross'),
        params: { fast: 5, slow: 20 },
        data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: other }],
        cash: 10_000,
        fee: 0.001,
      }),
    });
    expect(await barRows(), 'two runs on the same bars, one on others: two sets').toBe(2);
    const first = await deleteBacktests(store, [a.id]);
    expect(first).toMatchObject({ ids: [a.id], barSets: 0, dryRun: false });
    const back = await loadBacktest(store, b.id);
    expect(drawn(back.result, back.bars), 'the run left reads back whole').toEqual(drawn(result, bars));
    const second = await deleteBacktests(store, [b.id]);
    expect(second).toMatchObject({ ids: [b.id], barSets: 1 });
    expect(second.bytes, 'the bars are in the bytes freed').toBeGreaterThan(first.bytes);
    expect(await barRows()).toBe(1);
    await deleteBacktests(store, [c.id]);
    expect(await barRows()).toBe(0);
  });

  it('a delete naming ids not in the store names them all and deletes nothing', async () => {
    const a = await saveBacktest(store, run);
    const e = await deleteBacktests(store, [a.id, 9_998, 9_999]).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BacktestNotFoundError);
    expect((e as Error).message).toMatch(/no backtests 9998, 9999 in the store/);
    expect(await store.backtests.get(a.id)).toBeDefined();
  });

  it('a save that found its bars stored, deleted before it wrote, stores them after all', async () => {
    await pruneBacktests(store, { keep: 0 });
    // The look says stored (as it did, a moment before another process deleted them).
    const racing = { ...store, backtests: { ...store.backtests, hasBars: async () => true } };
    const { id } = await new PendingBacktest(run).save(racing);
    expect(await barRows()).toBe(1);
    const back = await loadBacktest(store, id);
    expect(drawn(back.result, back.bars)).toEqual(drawn(result, bars));
  });
});
