import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BarSeries, defineInstrument, runBacktest, sliceSeries } from '@keel/core';
import { readBarsFile } from '@keel/data';
import { openStore } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { Bot, BotAlreadyRunningError, orderIdPrefix, replaySource } from '../src/index.ts';

if (!HAS_SHARED_DATA) noteSkip('paper bot with a store');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-bot-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const quiet = () => {};

describe.skipIf(!HAS_SHARED_DATA)('paper bot: persistence, lock, restart', () => {
  const series: BarSeries = HAS_SHARED_DATA
    ? sliceSeries(readBarsFile(dataFile('binance_BTCUSDT_1m_2024-01.csv.gz')).series, 0, 6_000)
    : (undefined as never);
  const feed = { symbol: 'BTC/USDT', timeframe: '1m' as const };
  const inst = defineInstrument({ symbol: 'BTC/USDT' });
  const cfg = (store: Awaited<ReturnType<typeof openStore>>, botId: string) => ({
    botId,
    mode: 'paper' as const,
    strategy: getStrategy('sma-cross'),
    params: {},
    feeds: [feed],
    instruments: [inst],
    store,
    log: quiet,
    paperCash: 10_000,
    paperFee: 0.001,
    lockTtlMs: 200,
  });

  it('stores every fill and the final balances; a session report is written', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'a.db')}` });
    const bot = new Bot(cfg(store, 'paper-a'));
    await bot.start();
    await bot.run(replaySource(feed, series));
    const report = await bot.stop();
    const bt = runBacktest({
      strategy: getStrategy('sma-cross'),
      data: [{ ...feed, series }],
      cash: 10_000,
      fee: 0.001,
    });
    expect(report.fills).toBe(bt.fills.length);
    const stored = await store.fills.since('paper-a', 0);
    expect(stored.map((f) => [f.tradeId, f.price, f.amount])).toEqual(
      bot.botEngine.engine.fills.map((f) => [f.tradeId, f.price, f.amount]),
    );
    const bal = await store.balances.load('paper-a');
    expect(bal.find((b) => b.asset === 'USDT')!.total).toBe(bot.account.cash);
    const sessions = await store.sessions.list('paper-a');
    expect(sessions).toHaveLength(1);
    expect(sessions[0]!.endedAt).not.toBeNull();
    await store.close();
  });

  it('one running instance per bot: a second start is refused while the first holds the lock', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'b.db')}` });
    const first = new Bot({ ...cfg(store, 'paper-b'), lockTtlMs: 60_000 });
    await first.start();
    await expect(new Bot(cfg(store, 'paper-b')).start()).rejects.toBeInstanceOf(BotAlreadyRunningError);
    await first.stop();
    await store.close();
  });

  it('a bot whose order id prefix another bot of the store has is refused, before any row is written', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'twins.db')}` });
    // Long ids that begin alike (the CLI's defaults for paper and live) get different prefixes.
    const [paper, live] = ['sma-cross-BTCUSDT-paper', 'sma-cross-BTCUSDT-live'];
    expect(orderIdPrefix(paper)).not.toBe(orderIdPrefix(live));
    for (const id of [paper, live]) {
      const b = new Bot(cfg(store, id));
      await b.start();
      await b.stop();
    }
    // Two ids whose first 6 characters and 6 hash characters agree (found by a search over
    // `twin-bot-<n>`): the second is refused.
    const [a, b] = ['twin-bot-414622', 'twin-bot-537464'];
    expect(orderIdPrefix(a)).toBe(orderIdPrefix(b));
    const first = new Bot(cfg(store, a));
    await first.start();
    await first.stop();
    await expect(new Bot(cfg(store, b)).start()).rejects.toThrow(
      /bot id "twin-bot-537464" cannot be used in this store: bot "twin-bot-414622" already gives its orders client ids starting with "ktwin-bH2ZV3x-"/,
    );
    expect((await store.bots.list()).map((x) => x.id).sort()).toEqual([a, live, paper].sort());
    await store.close();
  });

  it('a crashed bot restarts where it stopped: no bar is handled twice, cash and positions carry over', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'c.db')}` });
    const a = new Bot(cfg(store, 'paper-c'));
    await a.start();
    await a.run(replaySource(feed, sliceSeries(series, 0, 3_000)));
    await a.journal.flush(); // what a crash leaves: everything journaled so far, no shutdown
    a.abandon();
    const cashAtCrash = a.account.cash;
    const sizeAtCrash = a.account.positions[0]?.size ?? 0;
    await new Promise((r) => setTimeout(r, 250)); // the crashed instance's lock expires
    const b = new Bot(cfg(store, 'paper-c'));
    await b.start();
    expect(b.account.cash).toBe(cashAtCrash);
    expect(b.account.positions[0]?.size ?? 0).toBe(sizeAtCrash);
    // The replay restarts from the beginning: bars up to the crash only warm the indicators up.
    await b.run(replaySource(feed, series));
    expect(b.barsHandled).toBe(3_000);
    const times = (await store.fills.since('paper-c', 0)).map((f) => f.time);
    expect(new Set(times).size).toBe(times.length);
    await b.stop();
    await store.close();
  });
});
