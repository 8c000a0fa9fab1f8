// A fill the stream has not reported when the bar closes (the user-data stream stalled, or slower
// than the candle stream): the strategy must not decide on the position it had before. The live
// venue reads the bot's orders whose price the bar reached before the strategy sees the bar.
// Oracle: the backtest of the same bars (the limit fills on the bar that reaches it; the strategy
// closes on that bar's close). Real ccxt client against the simulator over loopback.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineInstrument, defineStrategy, runBacktest } from '@keel/core';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { noParams } from './fixtures/strategies.ts';
import { KEY, startLiveBot, toSeries } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-fill-before-bar-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 3, 1);
const MIN = 60_000;

/** A limit buy at 39,950 on the first bar; whenever it holds coins, it sells them all. */
const dipThenExit = defineStrategy({
  name: 'dip-then-exit',
  params: noParams,
  warmup: 'none',
  onStart: () => ({ n: 0, seen: [] as number[] }),
  onBar(ctx, s) {
    s.seen.push(ctx.position().size);
    if (++s.n === 1) ctx.submit({ type: 'limit', side: 'buy', amount: 0.01, price: 39_950 });
    else if (ctx.position().size > 0) ctx.close();
  },
});

// Flat at 40,000; bar 3 dips to 39,900 (the limit fills there), then flat again.
const lows = [39_980, 39_980, 39_980, 39_900, 39_980, 39_980, 39_980, 39_980, 39_980, 39_980];
const bars = lows.map((low, i) => ({ time: T0 + i * MIN, open: 40_000, high: 40_020, low, close: 40_000, volume: 50 }));

describe('a fill not yet reported when its bar closes (real ccxt, loopback)', () => {
  it('is read from the exchange before the strategy decides: it exits on the bar the backtest exits on', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'f.db')}`, synchronous: 'NORMAL' });
    const run = await startLiveBot({
      bars,
      strategy: dipThenExit,
      store,
      botId: 'fb',
      balances: { USDT: 10_000 },
      sim: { liquidity: { spreadTicks: 0 } },
    });
    try {
      await run.step(); // bar 0 handled: the limit buy goes out
      await run.step();
      await run.step();
      // The user-data stream goes silent: the fill on bar 3 is never pushed.
      run.sim.faults.stallWebSockets({ kind: 'user' });
      for (let k = 0; k < 4; k++) await run.step();
    } finally {
      run.sim.faults.resumeWebSockets();
      await run.close();
    }
    const onExchange = run.sim.getOrders(KEY.apiKey);
    expect(onExchange.map((o) => [o.side, o.type, o.status])).toEqual([
      ['BUY', 'LIMIT', 'FILLED'],
      ['SELL', 'MARKET', 'FILLED'],
    ]);
    const bt = runBacktest({
      strategy: dipThenExit,
      data: [
        {
          symbol: 'BTC/USDT',
          timeframe: '1m',
          series: toSeries(bars),
          instrument: defineInstrument({ symbol: 'BTC/USDT', tickSize: 0.01, stepSize: 0.00001 }),
        },
      ],
      cash: 10_000,
      fee: 0.001,
      feeAsset: 'received',
    });
    const mine = await store.orders.list('fb');
    const shape = (o: { request: { side: string; type: string }; createdAt: number }) =>
      `${o.request.side} ${o.request.type} decided ${new Date(o.createdAt).toISOString()}`;
    // The exit was decided on the close of bar 3, the bar the limit filled on, as in the backtest.
    expect(bt.orders.map(shape)).toEqual([
      `buy limit decided ${new Date(T0 + MIN).toISOString()}`,
      `sell market decided ${new Date(T0 + 4 * MIN).toISOString()}`,
    ]);
    expect(mine.map(shape)).toEqual(bt.orders.map(shape));
    await store.close();
  }, 60_000);
});
