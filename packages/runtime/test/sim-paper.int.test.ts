import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineInstrument, runBacktest, sliceSeries } from '@keel/core';
import { type ExchangeSim, startExchangeSim } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { Bot, connectExchange } from '../src/index.ts';
import { realCandles, simBars, until } from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('paper parity through the exchange simulator');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-simpaper-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!HAS_SHARED_DATA)(
  'paper mode over the simulator’s WebSocket candles = backtest of the same bars',
  () => {
    const N = 400;
    const series = realCandles(N);

    it('sma-cross(5,12): identical fills, bar for bar (oracle: runBacktest on the bars the bot saw)', async () => {
      const bars = simBars(series);
      const sim: ExchangeSim = await startExchangeSim({
        markets: [{ symbol: 'BTC/USDT', bars }],
        startTime: bars[0]!.time,
      });
      const store = await openStore({ url: `sqlite:${path.join(dir, 'p.db')}` });
      const feed = { symbol: 'BTC/USDT', timeframe: '1m' as const };
      const conn = await connectExchange({
        exchange: 'binance',
        url: sim.httpUrl,
        botId: 'simpaper',
        symbols: ['BTC/USDT'],
        log: () => {},
        warmupBars: 0,
        ccxtOptions: { options: { recvWindow: 59_000 } },
      });
      const params = { fast: 5, slow: 12 };
      const bot = new Bot({
        botId: 'simpaper',
        mode: 'paper',
        strategy: getStrategy('sma-cross'),
        params,
        feeds: [feed],
        instruments: [defineInstrument({ symbol: 'BTC/USDT' })],
        store,
        log: () => {},
        paperCash: 10_000,
        paperFee: 0.001,
      });
      await bot.start();
      const source = conn.candles(feed);
      const running = bot.run(source);
      try {
        await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
        // Step bar by bar; bar k is emitted (closed) once bar k+1 has opened.
        for (let k = 1; k < N; k++) {
          sim.step();
          await until(() => bot.barsHandled >= k, 10_000, `bar ${k - 1} to be handled`);
        }
      } finally {
        await source.close();
        await running;
        await bot.stop();
        await conn.close();
        await sim.close();
      }
      const handled = bot.barsHandled;
      expect(handled).toBe(N - 1);
      const bt = runBacktest({
        strategy: getStrategy('sma-cross'),
        params,
        data: [{ ...feed, series: sliceSeries(series, 0, handled) }],
        cash: 10_000,
        fee: 0.001,
      });
      const strip = (fs: readonly { side: string; time: number; price: number; amount: number }[]) =>
        fs.map((f) => `${f.side} ${f.time} ${f.price} ${f.amount}`);
      expect(bt.fills.length).toBeGreaterThan(4);
      expect(strip(bot.botEngine.engine.fills)).toEqual(strip(bt.fills));
      expect(bot.account.cash).toBe(bt.finalCash);
      await store.close();
    }, 120_000);
  },
);
