import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { onPostgres, type StoreTarget } from '../../../test-support/postgres.ts';
import { type NewBacktest, openStore } from '../src/index.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-backtests-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const run = (strategy: string, extra: Partial<NewBacktest> = {}): NewBacktest => ({
  strategy,
  params: { fast: 10, slow: 30 },
  symbols: ['BTC/USDT', 'ETH/USDT'],
  timeframe: '1h',
  firstBar: Date.UTC(2024, 0, 1),
  lastBar: Date.UTC(2024, 5, 30, 23),
  settings: { cash: 10_000, fee: 0.001, data: ['a.csv', 'b.csv'] },
  metrics: { totalReturn: 0.1 + 0.2, sharpe: null },
  pairs: [{ symbol: 'BTC/USDT' }, { symbol: 'ETH/USDT' }],
  summary: 'sma-cross on 2 pairs 1h\n  Final value  10,300.00 USDT',
  result: Uint8Array.from([0, 1, 2, 255, 128]),
  chart: new Uint8Array(Float64Array.from([1.5, Number.NaN, 1e300]).buffer),
  ...extra,
});

function contract(name: string, target: () => StoreTarget): void {
  describe(`backtests repository: ${name}`, () => {
    it('saves runs under 1, 2, 3, lists them newest first, and gives back what was saved, to the bit', async () => {
      const t = target();
      let now = 1_700_000_000_000;
      const s = await openStore({ url: t.url, clock: { now: () => now++ }, ...(t.schema ? { schema: t.schema } : {}) });
      try {
        const a = await s.backtests.save(run('sma-cross'));
        const b = await s.backtests.save(run('rsi-reversion', { firstBar: Number.NaN, lastBar: Number.NaN }));
        expect([a.id, b.id]).toEqual([1, 2]);
        expect((await s.backtests.list()).map((r) => r.id)).toEqual([2, 1]);
        expect((await s.backtests.list({ limit: 1 })).map((r) => r.id)).toEqual([2]);
        const got = await s.backtests.get(1);
        const { result, chart, ...rest } = run('sma-cross');
        expect(got).toEqual({ ...rest, id: 1, createdAt: 1_700_000_000_000 });
        expect((await s.backtests.get(2))?.firstBar).toBeNaN();
        const art = await s.backtests.artifacts(1);
        expect(art?.result).toEqual(result);
        expect(new Float64Array(art?.chart.slice().buffer as ArrayBuffer)).toEqual(new Float64Array(chart.buffer));
        expect(await s.backtests.get(3)).toBeUndefined();
        expect(await s.backtests.remove(1)).toBe(true);
        expect(await s.backtests.artifacts(1)).toBeUndefined();
        expect(await s.backtests.remove(1)).toBe(false);
        expect((await s.backtests.save(run('macd'))).id, 'ids are never reused while a later run exists').toBe(3);
      } finally {
        await s.close();
      }
    });

    // SQLite: better-sqlite3 waits for a lock synchronously, so two connections of one process
    // would block each other's event loop; they save in turn here (processes take turns by the lock).
    it('two saves at once (PostgreSQL) or in turn (SQLite) from two connections get two ids', async () => {
      const t = target();
      const s = await openStore({ url: t.url, ...(t.schema ? { schema: t.schema } : {}) });
      const s2 = await openStore({ url: t.url, ...(t.schema ? { schema: t.schema } : {}) });
      try {
        const before = (await s.backtests.list()).length;
        const ids =
          s.dialect === 'postgres'
            ? await Promise.all([s.backtests.save(run('x')), s2.backtests.save(run('y'))])
            : [await s.backtests.save(run('x')), await s2.backtests.save(run('y'))];
        expect(new Set(ids.map((r) => r.id)).size).toBe(2);
        expect((await s.backtests.list()).length).toBe(before + 2);
      } finally {
        await s.close();
        await s2.close();
      }
    });
  });
}

contract('sqlite (file)', () => ({ url: `sqlite:${path.join(dir, 'keel.db')}` }));
await onPostgres('backtests repository', contract, 'keel_backtests');
