import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BarSeries, defineInstrument, defineStrategy } from '@keel/core';
import type { Io } from '@keel/data';
import { openStore, type Store } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { onPostgres, type StoreTarget } from '../../../test-support/postgres.ts';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { runBotsCli } from '../src/bots-cli.ts';
import { Bot, type BotConfig, botStatus, connectExchange, listBots, replaySource, requestStop } from '../src/index.ts';
import { churn, noParams } from './fixtures/strategies.ts';
import {
  FEED,
  fastConnect,
  KEY,
  MIN,
  realCandles,
  simBars,
  startLiveBot,
  startSim,
  T0,
  until,
} from './live-harness.ts';

// keel bots' functions over the store: status of a live bot against the simulator (oracle: the
// simulator's own records), and a stop requested through the store from another connection, as
// from another terminal or another host sharing a PostgreSQL store.
if (!HAS_SHARED_DATA) noteSkip('keel bots over the store');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-bots-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const feed = { symbol: 'BTC/USDT', timeframe: '1m' as const };

describe.skipIf(!HAS_SHARED_DATA)('botStatus of a live bot (real ccxt, simulator on loopback)', () => {
  it('state, open orders, position with unrealised PnL, balances, fees, last error: equal to the simulator’s records', async () => {
    const bars = simBars(realCandles(12));
    // Buys 0.01 on its 2nd bar, rests a limit far below the market on its 3rd, throws on its 4th.
    const demo = defineStrategy({
      name: 'status-demo',
      params: noParams,
      warmup: 'none',
      onStart: () => ({ n: 0 }),
      onBar(ctx, s, bar) {
        s.n++;
        if (s.n === 2) ctx.buy(0.01);
        if (s.n === 3)
          ctx.submit({ type: 'limit', side: 'buy', amount: 0.01, price: bar.close - 300, timeInForce: 'GTC' });
        if (s.n === 4) throw new Error('boom on purpose');
      },
    });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'status.db')}` });
    const run = await startLiveBot({ strategy: demo, store, bars, botId: 'st' });
    try {
      for (let k = 0; k < 6; k++) await run.step();
      const st = await botStatus(store, 'st');
      expect(st).toMatchObject({
        id: 'st',
        state: 'running',
        mode: 'live',
        strategy: 'status-demo',
        exchange: 'binance',
      });
      expect(st.holder?.owner).toBe(run.bot.owner);
      expect(st.stopRequest).toBeNull();
      expect(st.session?.seq).toBe(1);
      const last = bars[5]!; // six bars closed and handled
      expect(st.lastBar).toEqual({ 'BTC/USDT@1m': new Date(last.time).toISOString() });

      const simOrders = run.sim.getOrders(KEY.apiKey);
      const resting = simOrders.filter((o) => o.status === 'NEW');
      expect(resting).toHaveLength(1);
      expect(st.openOrders.map((o) => [o.id, o.side, o.type, o.amount, o.filled, o.price])).toEqual(
        resting.map((o) => [o.clientOrderId, 'buy', 'limit', o.origQty, 0, o.price]),
      );
      const bought = simOrders.find((o) => o.type === 'MARKET')!;
      const fill = bought.fills[0]!;
      expect(fill.commissionAsset).toBe('BTC'); // Binance takes a spot buy's fee in the coin
      const bal = run.sim.getBalances(KEY.apiKey) as Record<string, { free: number; locked: number }>;
      const held = bal.BTC!.free + bal.BTC!.locked;
      expect(st.positions).toHaveLength(1);
      const p = st.positions[0]!;
      expect(p.size).toBeCloseTo(held, 12);
      expect(p.entry).toBe(fill.price);
      expect(p.lastPrice).toBe(last.close);
      expect(p.lastPriceAt).toBe(new Date(last.time).toISOString());
      expect(p.unrealizedPnl).toBeCloseTo(held * (last.close - fill.price), 9);
      const balances = Object.fromEntries(st.balances.map((b) => [b.asset, b.total]));
      expect(balances.USDT).toBeCloseTo(bal.USDT!.free + bal.USDT!.locked, 8);
      expect(balances.BTC).toBeCloseTo(held, 12);
      expect(st.fills).toBe(1);
      expect(st.trades).toBe(0);
      expect(st.fees).toBeCloseTo(fill.commission * fill.price, 9);
      expect(st.realizedPnlNet).toBeCloseTo(-fill.commission * fill.price, 9);
      expect(st.lastError?.message).toBe('strategy error in onBar: boom on purpose');

      expect(await listBots(store)).toEqual([
        expect.objectContaining({
          id: 'st',
          state: 'running',
          mode: 'live',
          lastBar: new Date(last.time).toISOString(),
        }),
      ]);
    } finally {
      await run.close();
    }
    const after = await botStatus(store, 'st');
    expect(after.state).toBe('stopped');
    expect(after.holder).toBeNull();
    expect(after.session?.reason).toBe('test');
    await expect(botStatus(store, 'nope')).rejects.toThrow(/no bot "nope" in this store \(bots: st\)/);
    await store.close();
  }, 120_000);
});

describe('keel bots status: a position smaller than the market’s step is flat', () => {
  it('-5.6e-17 BTC left by selling what was bought: no position, no entry, no PnL; numbers for people, the JSON keeps the value', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'dust.db')}` });
    await store.bots.create({
      id: 'dust',
      strategy: 'grid',
      params: {},
      mode: 'live',
      exchange: 'binance',
      symbols: ['BTC/USDT'],
    });
    const inst = defineInstrument({ symbol: 'BTC/USDT', tickSize: 0.01, stepSize: 0.00001 });
    await store.setups.save('dust', await store.sessions.start('dust'), { v: 1, instruments: [inst], feeds: [FEED] });
    // 0.36147 bought in two fills and sold whole leaves the sum's binary remainder (0.1 + 0.2 - 0.3 here).
    const residue = 0.1 + 0.2 - 0.3;
    await store.positions.save('dust', { symbol: 'BTC/USDT', size: -residue, avgPrice: 26064.77, realizedPnl: 0 });
    await store.positions.save('dust', {
      symbol: 'ETH/USDT',
      size: 0.30000000000000004,
      avgPrice: 1650,
      realizedPnl: 0,
    });
    const st = await botStatus(store, 'dust');
    expect(st.positions.find((p) => p.symbol === 'BTC/USDT')).toMatchObject({
      size: -residue,
      flat: true,
      entry: null,
      unrealizedPnl: null,
    });
    await store.close();
    let out = '';
    const write = (x: string) => {
      out += x;
      return true;
    };
    const io = { stdout: { write }, stderr: process.stderr } as unknown as Io;
    expect(await runBotsCli(['status', 'dust', '--store', `sqlite:${path.join(dir, 'dust.db')}`], io)).toBe(0);
    // (ETH/USDT is not among the bot's instruments: no step known, 10 significant digits.)
    expect(out).toMatch(/^ {2}BTC\/USDT +0 +- /m);
    expect(out).toMatch(/^ {2}ETH\/USDT +0\.3 +1650 /m);
    expect(out).not.toMatch(/e-17|0\.30000000000000004/);
  });
});

describe('botStatus after a start that failed', () => {
  it('the bot’s own error is its last error: why it could not start (real ccxt, simulator on loopback)', async () => {
    const bars = Array.from({ length: 5 }, (_, i) => {
      const o = 40_000 + i;
      return { time: T0 + i * MIN, open: o, high: o + 5, low: o - 5, close: o + 1, volume: 10 };
    });
    const sim = await startSim({ bars, balances: { USDT: 1_000 } });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'failed.db')}` });
    const conn = await connectExchange(fastConnect(sim.httpUrl, KEY, 'sf', () => {}));
    try {
      sim.faults.httpErrorBurst({ path: '/api/v3/openOrders', count: 1_000 });
      const bot = new Bot({
        botId: 'sf',
        mode: 'live',
        strategy: churn,
        params: {},
        feeds: [FEED],
        instruments: [await conn.instrument(FEED.symbol)],
        store,
        log: () => {},
        exchange: conn.live,
        exchangeName: 'binance',
      });
      await expect(bot.start()).rejects.toThrow();
      const st = await botStatus(store, 'sf');
      expect(st.state).toBe('stopped');
      expect(st.lastError?.message).toMatch(/^bot sf could not start: .*; its lock is released$/);
    } finally {
      await conn.close();
      await store.close();
      await sim.close();
    }
  }, 60_000);
});

function stopSuite(name: string, target: () => StoreTarget): void {
  describe.skipIf(!HAS_SHARED_DATA)(`stop through the store: ${name}`, () => {
    const series: BarSeries = HAS_SHARED_DATA ? realCandles(600) : (undefined as never);
    const open = (t: StoreTarget) => openStore({ url: t.url, ...(t.schema !== undefined ? { schema: t.schema } : {}) });
    const cfg = (store: Store, logs: { at: number; msg: string }[]): BotConfig => ({
      botId: 'stoppable',
      mode: 'paper',
      strategy: getStrategy('sma-cross'),
      params: { fast: 3, slow: 8 },
      feeds: [feed],
      instruments: [defineInstrument({ symbol: 'BTC/USDT' })],
      store,
      log: (_l, msg) => void logs.push({ at: Date.now(), msg }),
      lockTtlMs: 1_500,
    });
    /** Runs a bot on the replay as the CLI does: until its input ends or it is asked to stop. */
    const launch = (bot: Bot, delayMs: number) =>
      (async () => {
        await bot.start();
        await bot.run(replaySource(feed, series, { delayMs }));
        return bot.stop(bot.stopRequested ?? 'input ended');
      })();

    it('a running bot notices the request within a second or two, stops gracefully and its report comes back; a stopped or crashed bot is said to be not running', async () => {
      const t = target();
      const botStore = await open(t);
      const other = await open(t); // another terminal: its own connection
      const logs: { at: number; msg: string }[] = [];
      const bot = new Bot(cfg(botStore, logs));
      const running = launch(bot, 30);
      await until(async () => (await other.fills.since('stoppable', 0)).length >= 2, 60_000, 'two fills');

      const asked = await requestStop(other, 'stoppable', { by: 'tester@desk', wait: false });
      expect(asked).toEqual({ kind: 'requested', owner: bot.owner });
      const t0 = Date.now();
      const during = await botStatus(other, 'stoppable');
      expect(during.state).toBe('stopping');
      expect(during.stopRequest?.by).toBe('tester@desk');
      const done = await requestStop(other, 'stoppable', { by: 'tester@desk', timeoutMs: 30_000 });
      const report = await running;
      expect(done).toEqual({ kind: 'stopped', owner: bot.owner, report });
      expect(report.reason).toBe('stop requested by tester@desk');
      expect(report.bars).toBeLessThan(series.length);
      const noticed = logs.find((l) => l.msg.startsWith('stop requested by tester@desk'));
      expect(noticed).toBeDefined();
      // Polled every second (BotConfig.stopPollMs); the bound leaves room for a loaded machine.
      expect(noticed!.at - t0).toBeLessThan(3_000);
      expect(await other.stopRequests.get('stoppable')).toBeUndefined();

      const again = await requestStop(other, 'stoppable');
      expect(again).toEqual({ kind: 'not-running', state: 'stopped', report });
      expect((await listBots(other)).map((b) => [b.id, b.state])).toEqual([['stoppable', 'stopped']]);

      // A request left for an instance that is gone never stops the next one.
      await other.stopRequests.request('stoppable', 'ghost:1:abcdef', 'someone@else');
      const next = new Bot(cfg(botStore, logs));
      const finished = await launch(next, 0);
      expect(finished.reason).toBe('input ended');
      expect(await other.stopRequests.get('stoppable')).toBeUndefined();

      // A crash (no shutdown, no more heartbeats): once its lock expires it is `crashed`.
      const crashing = new Bot(cfg(botStore, logs));
      await crashing.start();
      crashing.abandon();
      await until(async () => (await botStatus(other, 'stoppable')).state === 'crashed', 10_000, 'the lock to expire');
      expect(await requestStop(other, 'stoppable')).toMatchObject({ kind: 'not-running', state: 'crashed' });
      await other.close();
      await botStore.close();
    }, 180_000);
  });
}

stopSuite('sqlite (file)', () => ({ url: `sqlite:${path.join(dir, 'stop.db')}` }));
await onPostgres('stop through the store', stopSuite, 'keel_bots');
