import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BarSeries, runBacktest } from '@keel/core';
import { openStore } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { Bot, exitOrderId, orderOwner, replaySource, signalOrderId } from '../src/index.ts';
import { FEED, paperBotConfig, realCandles } from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('paper parity (replay)');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-paper-parity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Through what users run: a paper Bot (its one run loop, its store, its journal) on replayed bars,
// as `keel paper --replay` runs it.
describe.skipIf(!HAS_SHARED_DATA)('paper mode equals the backtest of the same bars', () => {
  const series: BarSeries = HAS_SHARED_DATA ? realCandles(20_000) : (undefined as never);
  for (const name of ['sma-cross', 'rsi-reversion', 'bollinger-reversion']) {
    it(`${name}: same fills, same trades, same final cash (oracle: runBacktest on the same bars)`, async () => {
      const feed = FEED;
      const bt = runBacktest({ strategy: getStrategy(name), data: [{ ...feed, series }], cash: 10_000, fee: 0.001 });
      const store = await openStore({ url: `sqlite:${path.join(dir, `${name}.db`)}`, synchronous: 'NORMAL' });
      const bot = new Bot(paperBotConfig(store, 'parity', getStrategy(name)));
      try {
        await bot.start();
        await bot.run(replaySource(feed, series));
        // Before stop(): stopping cancels what is still open, as the backtest's end does not.
        const strip = (fs: readonly { price: number; amount: number; side: string; time: number; fee: number }[]) =>
          fs.map((f) => [f.side, f.time, f.price, f.amount, f.fee]);
        expect(bot.botEngine.engine.fills.length).toBeGreaterThan(10);
        expect(strip(bot.botEngine.engine.fills)).toEqual(strip(bt.fills));
        expect(bot.botEngine.closedTrades().map((t) => t.pnlNet)).toEqual(bt.trades.map((t) => t.pnlNet));
        expect(bot.account.cash).toBe(bt.finalCash);
      } finally {
        await bot.stop();
        await store.close();
      }
    }, 60_000);
  }

  it('client order ids are deterministic per bot, bar and signal, and fit Binance’s 36 characters', () => {
    const id = signalOrderId('my bot #1 with a long name', Date.UTC(2024, 0, 1), 3);
    expect(id).toBe(signalOrderId('my bot #1 with a long name', Date.UTC(2024, 0, 1), 3));
    expect(id).not.toBe(signalOrderId('my bot #1 with a long name', Date.UTC(2024, 0, 1), 4));
    expect(id.length).toBeLessThanOrEqual(36);
    expect(id).toMatch(/^[.A-Z:/a-z0-9_-]+$/);
  });

  it('whose order is it: this bot’s ids and exits, another Keel bot’s, or foreign (oracle: the documented id shape)', () => {
    const t = Date.UTC(2024, 0, 1);
    const mine = signalOrderId('a', t, 2);
    expect(orderOwner('a', mine)).toBe('this-bot');
    expect(orderOwner('a', exitOrderId(mine))).toBe('this-bot');
    // Bot "a-b" shares the characters "ka-" with bot "a": the whole shape tells them apart.
    expect(orderOwner('a', signalOrderId('a-b', t, 1))).toBe('other-keel-bot');
    expect(orderOwner('a-b', mine)).toBe('other-keel-bot');
    for (const id of ['web_8f2c1', 'x-R4BD3S82abc', 'manual-1', 'ka-', `${mine}-y`])
      expect(orderOwner('a', id)).toBe('foreign');
    expect(exitOrderId(signalOrderId('a bot with a very long name', t, 999)).length).toBeLessThanOrEqual(36);
  });
});
