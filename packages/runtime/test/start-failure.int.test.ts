import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { Bot, connectExchange } from '../src/index.ts';
import { churn } from './fixtures/strategies.ts';
import { FEED, fastConnect, KEY, keelProcess, MIN, startSim, T0, until } from './live-harness.ts';

// A live start that fails after the bot took its lock (here: the exchange answers 503 to every
// open-orders request during reconciliation) releases the lock, so the next start need not wait
// out its TTL. Real ccxt client against the simulator on loopback.
const dir = mkdtempSync(path.join(tmpdir(), 'keel-start-fail-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a live start that fails after taking the lock (real ccxt, loopback)', () => {
  it('releases the lock and says why; the next start goes ahead at once', async () => {
    const bars = Array.from({ length: 10 }, (_, i) => {
      const o = 40_000 + i;
      return { time: T0 + i * MIN, open: o, high: o + 5, low: o - 5, close: o + 1, volume: 10 };
    });
    const sim = await startSim({ bars, balances: { USDT: 1_000 } });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'fail.db')}` });
    const logs: string[] = [];
    const log = (level: string, msg: string) => void logs.push(`${level} ${msg}`);
    const conn = await connectExchange(fastConnect(sim.httpUrl, KEY, 'sf', () => {}));
    const instrument = await conn.instrument(FEED.symbol);
    const bot = () =>
      new Bot({
        botId: 'sf',
        mode: 'live',
        strategy: churn,
        params: {},
        feeds: [FEED],
        instruments: [instrument],
        store,
        log,
        exchange: conn.live,
        exchangeName: 'binance',
        lockTtlMs: 60_000, // a held lock would block the second start for a minute
      });
    try {
      sim.faults.httpErrorBurst({ path: '/api/v3/openOrders', count: 1_000 });
      await expect(bot().start()).rejects.toThrow();
      expect(await store.locks.holder('sf')).toBeUndefined();
      expect(logs.some((l) => /^error bot sf could not start: .*; its lock is released$/.test(l))).toBe(true);
      expect((await store.bots.get('sf'))?.status).toBe('stopped');

      sim.faults.reset();
      const again = bot();
      await again.start(); // not BotAlreadyRunningError
      expect((await store.locks.holder('sf'))?.owner).toBeDefined();
      await again.stop('test');
    } finally {
      await conn.close();
      await store.close();
      await sim.close();
    }
  }, 60_000);

  it('the real bin: SIGTERM while it starts (connecting) stops it before its start completes, saying so, exit 0', async () => {
    const bars = Array.from({ length: 5 }, (_, i) => {
      const o = 40_000 + i;
      return { time: T0 + i * MIN, open: o, high: o + 5, low: o - 5, close: o + 1, volume: 10 };
    });
    const sim = await startSim({ bars, balances: { USDT: 1_000 } });
    // The first request (the markets, as it connects) is held: the SIGTERM comes while it waits.
    sim.faults.holdHttpResponses({ count: 1, ms: 1_500 });
    const bot = keelProcess(
      ['paper', '--strategy', 'sma-cross', '--symbol', 'BTC/USDT', '--exchange-url', sim.httpUrl],
      dir,
      { KEEL_STORE: `sqlite:${path.join(dir, 'early.db')}` },
    );
    try {
      await until(() => Object.keys(sim.requestCounts()).length > 0, 30_000, 'the first request');
      bot.proc.kill('SIGTERM');
      expect(await bot.exited, bot.err()).toBe(0);
      expect(bot.err()).toMatch(/SIGTERM received while the bot was starting: stopped before start completed/);
      expect(bot.err()).not.toMatch(/bot started/);
    } finally {
      bot.proc.kill('SIGKILL');
      await sim.close();
    }
  }, 60_000);
});
