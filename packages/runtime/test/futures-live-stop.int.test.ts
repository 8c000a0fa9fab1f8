// A protective stop on a live USDⓈ-M perpetual: the strategy's reduce-only stop-market rests on the
// exchange (Binance's Algo Order API, as ccxt's binanceusdm sends it) and closes the position when
// the price crosses it, with the bot's books equal to the exchange's. Real ccxt client against the
// futures simulator over loopback, Binance's LINKUSDT 1m candles of 2023-02, default USD-M fees.
// Oracle: the file's candles (the first bar whose low reaches the stop) and the simulator's records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineStrategy } from '@keel/core';
import { readBarsFile as readSimBars } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { futuresConnect, futuresSim, KEY, LINK_USDM_BARS, PERP, startLiveBot } from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('futures-live-stop.int.test.ts', LINK_USDM_BARS);

const T = (h: number, m = 0) => Date.UTC(2023, 1, 1, h, m);
const dir = mkdtempSync(path.join(tmpdir(), 'keel-futures-stop-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Buys 100 on the 07:50 bar and places a reduce-only stop 0.2 % under the 07:51 close on that bar;
 * with `exitAt`, sells the 100 at market on that bar (the stop is then left without a position).
 */
function perpStop(name: string, exitAt?: number) {
  const bars = readSimBars(LINK_USDM_BARS);
  const at = (t: number) => bars.find((b) => b.time === t) as (typeof bars)[number];
  const stopPrice = Math.round(at(T(7, 51)).close * 0.998 * 1000) / 1000;
  const strategy = defineStrategy({
    name,
    params: z.object({}),
    warmup: 'none',
    onStart: () => ({}),
    onBar(ctx, _s, bar) {
      if (bar.time === T(7, 50)) ctx.submit({ type: 'market', side: 'buy', amount: 100, tag: 'entry' });
      if (bar.time === T(7, 51))
        ctx.submit({ type: 'stop-market', side: 'sell', amount: 100, stopPrice, reduceOnly: true, tag: 'stop' });
      if (bar.time === exitAt) ctx.submit({ type: 'market', side: 'sell', amount: 100, tag: 'exit' });
    },
  });
  return { strategy, stopPrice, bars };
}

describe.skipIf(!HAS_SHARED_DATA)('a stop-market on a live perpetual (binanceusdm against the simulator)', () => {
  it('rests on the exchange reduce-only, triggers on the first bar that reaches it, and closes the bot’s own position', async () => {
    const { strategy, stopPrice, bars } = perpStop('perp-stop');
    const sim = await futuresSim(T(7, 50));
    const store = await openStore({ url: `sqlite:${path.join(dir, 's.db')}`, synchronous: 'NORMAL' });
    const run = await startLiveBot({
      strategy,
      store,
      exchange: sim,
      feed: PERP,
      botId: 'perp-stop',
      connect: futuresConnect(sim.httpUrl, 'perp-stop', () => {}),
      bot: { futures: () => ({ leverage: 3, marginMode: 'cross', funding: null }), onShutdown: 'cancel' },
    });
    try {
      // The oracle: the first bar after the stop is placed (it rests from 07:52) whose low reaches it.
      const trigger = bars.find((b) => b.time >= T(7, 52) && b.low <= stopPrice);
      expect(trigger, 'the file has a bar that reaches the stop').toBeDefined();
      const triggerTime = (trigger as (typeof bars)[number]).time;
      while (sim.now() <= triggerTime + 60_000) {
        await run.step();
        if (sim.now() <= triggerTime) expect(run.bot.account.find(PERP.symbol)?.size, 'before the trigger').toBe(100);
      }
      // On the exchange: the stop rested as an algo order, then closed the position as a reduce-only market sell.
      const algo = sim.algoOrders(KEY.apiKey);
      expect(algo.map((o) => [o.side, o.triggerPrice, o.reduceOnly, o.algoStatus])).toEqual([
        ['SELL', stopPrice, true, 'FINISHED'],
      ]);
      const orders = sim.futuresOrders(KEY.apiKey);
      expect(orders.map((o) => [o.side, o.origType, o.executedQty, o.reduceOnly])).toEqual([
        ['BUY', 'MARKET', 100, false],
        ['SELL', 'STOP_MARKET', 100, true],
      ]);
      const exit = orders[1] as (typeof orders)[number];
      expect(exit.updateTime).toBeGreaterThanOrEqual(triggerTime);
      expect(exit.updateTime).toBeLessThan(triggerTime + 60_000);
      // The bot's books: its stop filled at the exchange's price; flat; cash = the exchange's wallet.
      const stop = run.bot.botEngine.engine.history.find((o) => o.request.tag === 'stop');
      expect(stop?.status).toBe('filled');
      const fills = (await store.fills.since('perp-stop', 0)).filter((f) => f.side === 'sell');
      expect(fills.map((f) => [f.amount, f.price, f.fee])).toEqual(
        exit.fills.map((f) => [f.qty, f.price, f.commission]),
      );
      expect(run.bot.account.find(PERP.symbol)?.size ?? 0).toBe(0);
      const wallet = sim.futuresAccount(KEY.apiKey).assets.find((a) => a.asset === 'USDT')?.walletBalance;
      expect(run.bot.account.cash).toBeCloseTo(wallet as number, 8);
    } finally {
      await run.close();
      await store.close();
      await sim.close();
    }
  }, 60_000);

  it('a reduce-only stop left after its position closed is refused by the exchange when it triggers: recorded expired, saying so', async () => {
    // Binance keeps a reduce-only conditional order when the position closes (only a GTE_GTC one
    // is expired with it); when it triggers the matching engine refuses it: algo status REJECTED.
    const { strategy, stopPrice, bars } = perpStop('perp-stop-left', T(7, 52));
    const sim = await futuresSim(T(7, 50));
    const store = await openStore({ url: `sqlite:${path.join(dir, 'r.db')}`, synchronous: 'NORMAL' });
    const errors: string[] = [];
    const log = (level: string, msg: string) => void (level === 'error' && errors.push(msg));
    const run = await startLiveBot({
      strategy,
      store,
      exchange: sim,
      feed: PERP,
      botId: 'perp-stop-left',
      log,
      connect: futuresConnect(sim.httpUrl, 'perp-stop-left', log),
      bot: { futures: () => ({ leverage: 3, marginMode: 'cross', funding: null }), onShutdown: 'cancel' },
    });
    try {
      const trigger = bars.find((b) => b.time >= T(7, 53) && b.low <= stopPrice) as (typeof bars)[number];
      while (sim.now() <= trigger.time + 60_000) await run.step();
      expect(sim.algoOrders(KEY.apiKey).map((o) => o.algoStatus)).toEqual(['REJECTED']);
      const stop = await store.orders.get(
        run.bot.botEngine.engine.history.find((o) => o.request.tag === 'stop')?.request.id as string,
      );
      expect([stop?.status, stop?.filled, stop?.reason]).toEqual([
        'expired',
        0,
        'expired by the exchange with 0 of 100 filled (refused by the exchange when it triggered)',
      ]);
      expect(errors).toEqual([]);
    } finally {
      await run.close();
      await store.close();
      await sim.close();
    }
  }, 60_000);
});
