import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onPostgres, type StoreTarget } from '../../../test-support/postgres.ts';
import { openStore, type Store } from '../src/index.ts';
import { ManualClock } from './store-contract.ts';

// What running bots are operated with (stop requests, the bars they saw, their set-up), on every
// backend with the same code: a SQLite file and a fresh PostgreSQL schema.
const dir = mkdtempSync(path.join(tmpdir(), 'keel-botops-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function botOpsContract(name: string, target: () => StoreTarget): void {
  describe(`bot operations: ${name}`, () => {
    const clock = new ManualClock(1_700_000_000_000);
    let store: Store;
    beforeAll(async () => {
      const t = target();
      store = await openStore({ url: t.url, clock, ...(t.schema !== undefined ? { schema: t.schema } : {}) });
      for (const id of ['a', 'b'])
        await store.bots.create({
          id,
          strategy: 'sma-cross',
          params: { fast: 10, slow: 30 },
          mode: 'paper',
          exchange: 'simulated',
          symbols: ['BTC/USDT'],
        });
    });
    afterAll(async () => {
      await store?.close();
    });

    it('a stop request reaches only the instance it was addressed to; a stale one is dropped at start', async () => {
      await store.stopRequests.request('a', 'host:1:old', 'me@here');
      expect(await store.stopRequests.pending('a', 'host:2:new')).toBeUndefined();
      expect(await store.stopRequests.pending('a', 'host:1:old')).toEqual({
        owner: 'host:1:old',
        by: 'me@here',
        at: clock.t,
      });
      // A later instance starts: the request for the one that is gone is not its own.
      await store.stopRequests.dropStale('a', 'host:2:new');
      expect(await store.stopRequests.get('a')).toBeUndefined();
      clock.t += 10;
      await store.stopRequests.request('a', 'host:2:new', 'ops@there');
      await store.stopRequests.dropStale('a', 'host:2:new'); // its own request stays
      expect((await store.stopRequests.get('a'))?.by).toBe('ops@there');
      // A second request replaces the first (one per bot).
      await store.stopRequests.request('a', 'host:2:new', 'again@there');
      expect(await store.stopRequests.get('a')).toEqual({ owner: 'host:2:new', by: 'again@there', at: clock.t });
      await store.stopRequests.done('a', 'host:1:old'); // not the addressee: nothing removed
      expect(await store.stopRequests.get('a')).toBeDefined();
      await store.stopRequests.done('a', 'host:2:new');
      expect(await store.stopRequests.get('a')).toBeUndefined();
      expect(await store.stopRequests.get('b')).toBeUndefined();
    });

    it('the bar log keeps each bar once, as first seen, and gives back the exact doubles in order', async () => {
      const bar = (t: number, x: number) => ({
        time: t,
        open: x,
        high: x + 0.1,
        low: x - 0.2,
        close: 0.1 + 0.2,
        volume: 1 / 3,
      });
      await store.barLog.record('a', 'BTC/USDT@1m', [bar(120_000, 3), bar(0, 1), bar(60_000, 2)]);
      await store.barLog.record('a', 'BTC/USDT@1m', [bar(60_000, 99), bar(180_000, 4)]); // 60_000 again: kept as it was
      await store.barLog.record('b', 'BTC/USDT@1m', [bar(60_000, 7)]); // another bot's bars are its own
      const s = await store.barLog.range('a', 'BTC/USDT@1m', 60_000, 180_000);
      expect([...s.time]).toEqual([60_000, 120_000, 180_000]);
      expect([...s.open]).toEqual([2, 3, 4]);
      expect([...s.close]).toEqual([0.1 + 0.2, 0.1 + 0.2, 0.1 + 0.2]);
      expect([...s.volume]).toEqual([1 / 3, 1 / 3, 1 / 3]);
      expect((await store.barLog.range('a', 'BTC/USDT@5m', 0, 1e15)).length).toBe(0);
      expect(await store.barLog.last('a', 'BTC/USDT@1m')).toEqual(bar(180_000, 4));
      expect((await store.barLog.last('b', 'BTC/USDT@1m'))?.open).toBe(7);
      // Thousands at once (a first start's warm-up): chunked under the engines' parameter limits.
      const many = Array.from({ length: 2_345 }, (_, i) => bar(1_000_000_000 + i * 60_000, i));
      await store.barLog.record('a', 'ETH/USDT@1m', many);
      const back = await store.barLog.range('a', 'ETH/USDT@1m', 0, Number.MAX_SAFE_INTEGER);
      expect(back.length).toBe(2_345);
      expect(back.open[2_344]).toBe(2_344);
    });

    it('session setups are saved per session, replaced in place, and listed in order', async () => {
      const s1 = await store.sessions.start('a');
      const s2 = await store.sessions.start('a');
      await store.setups.save('a', s2, { v: 1, n: 'second' });
      await store.setups.save('a', s1, { v: 1, n: 'first' });
      await store.setups.save('a', s1, { v: 1, n: 'first, with its warm-up', warmup: { x: 0.1 + 0.2 } });
      expect(await store.setups.list('a')).toEqual([
        { seq: s1, setup: { v: 1, n: 'first, with its warm-up', warmup: { x: 0.1 + 0.2 } } },
        { seq: s2, setup: { v: 1, n: 'second' } },
      ]);
      expect(await store.setups.list('b')).toEqual([]);
    });

    it('reconfigure replaces a bot’s strategy, params and markets, and nothing else', async () => {
      clock.t += 1_000;
      await store.bots.reconfigure('b', { strategy: 'rsi-reversion', params: { period: 7 }, symbols: ['ETH/USDT'] });
      expect(await store.bots.get('b')).toMatchObject({
        id: 'b',
        strategy: 'rsi-reversion',
        params: { period: 7 },
        symbols: ['ETH/USDT'],
        mode: 'paper',
        updatedAt: clock.t,
      });
      await expect(store.bots.reconfigure('nope', { strategy: 's', params: {}, symbols: [] })).rejects.toThrow(
        /Unknown bot "nope"/,
      );
    });

    it('risk: settings kept with the bot; the state saved and loaded as written; a resume request survives saves until the save that applied it', async () => {
      const risk = { risk: ['max-drawdown=0.2:flatten:resume'], sizing: [], exits: {} };
      await store.bots.reconfigure('b', { strategy: 'sma-cross', params: {}, symbols: ['BTC/USDT'], risk });
      expect((await store.bots.get('b'))?.risk).toEqual(risk);
      expect((await store.bots.get('a'))?.risk).toBeNull();
      expect(await store.risk.load('a')).toBeUndefined();
      const state = { format: 'keel.risk-state', peak: 0.1 + 0.2, halts: [{ rule: 'max-drawdown', until: null }] };
      clock.t += 10;
      await store.risk.save('a', { state, halts: state.halts, denied: { 'max-drawdown': 3 } });
      expect(await store.risk.load('a')).toEqual({
        state,
        halts: state.halts,
        denied: { 'max-drawdown': 3 },
        updatedAt: clock.t,
      });
      clock.t += 10;
      const req = await store.risk.requestResume('a', 'me@here');
      expect(req).toEqual({ by: 'me@here', at: clock.t });
      // A save of the bar that does not apply it keeps the request.
      await store.risk.save('a', { state, halts: state.halts, denied: { 'max-drawdown': 4 } });
      expect((await store.risk.load('a'))?.resume).toEqual(req);
      // A save that applied an older request keeps the newer one.
      await store.risk.save('a', { state, halts: [], denied: { 'max-drawdown': 4 }, resumed: req.at - 1 });
      expect((await store.risk.load('a'))?.resume).toEqual(req);
      await store.risk.save('a', { state, halts: [], denied: { 'max-drawdown': 4 }, resumed: req.at });
      expect(await store.risk.load('a')).toMatchObject({ halts: [], denied: { 'max-drawdown': 4 } });
      expect((await store.risk.load('a'))?.resume).toBeUndefined();
      // A resume asked of a bot that never saved any risk state waits in a row of its own.
      await store.risk.requestResume('b', 'ops@there');
      expect(await store.risk.load('b')).toMatchObject({
        state: null,
        halts: [],
        denied: {},
        resume: { by: 'ops@there' },
      });
    });
  });
}

botOpsContract('sqlite (file)', () => ({ url: `sqlite:${path.join(dir, 'ops.db')}` }));
await onPostgres('bot operations', botOpsContract);
