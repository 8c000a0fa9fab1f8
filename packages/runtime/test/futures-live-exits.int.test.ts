// A live bot's orders on a USDⓈ-M perpetual keep what makes them exits: a modified reduce-only
// take-profit, the market exit of a held (emulated) reduce-only trailing stop and the --flatten of a
// one-way position reach the exchange reduce-only. Real ccxt binanceusdm client against the futures
// simulator over loopback, Binance's LINKUSDT 1m candles of 2023-02, default fees. Oracle: the
// simulator's own order records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ClientOrderId, defineStrategy } from '@keel/core';
import { openStore, type Store } from '@keel/store';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { exitOrderId } from '../src/bot-engine.ts';
import { noParams } from './fixtures/strategies.ts';
import { futuresConnect, futuresSim, KEY, LINK_USDM_BARS, PERP, startLiveBot } from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('futures-live-exits.int.test.ts', LINK_USDM_BARS);

const T = (h: number, m = 0) => Date.UTC(2023, 1, 1, h, m);

const dir = mkdtempSync(path.join(tmpdir(), 'keel-futures-exits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close().catch(() => undefined);
});

async function newStore(): Promise<Store> {
  const s = await openStore({ url: `sqlite:${path.join(dir, `s${++n}.db`)}`, synchronous: 'NORMAL' });
  open.push(s);
  return s;
}

describe.skipIf(!HAS_SHARED_DATA)('live perpetual exits stay reduce-only (binanceusdm against the simulator)', () => {
  it('a modified take-profit and a trailing stop’s exit reach the exchange reduce-only; --flatten too', async () => {
    const sim = await futuresSim(T(7, 50));
    open.push(sim);
    const store = await newStore();
    const ids: Record<string, ClientOrderId | null> = {};
    const strategy = defineStrategy({
      name: 'perp-exits',
      params: noParams,
      warmup: 'none',
      onStart: () => ({}),
      onBar(ctx, _s, bar) {
        switch (bar.time) {
          case T(7, 50):
            ctx.buy(100);
            break;
          case T(7, 51):
            ids['tp'] = ctx.submit({ type: 'limit', side: 'sell', amount: 60, price: 20, reduceOnly: true, tag: 'tp' });
            break;
          case T(7, 52):
            ids['tp2'] = ctx.modify(ids['tp']!, { price: 19 });
            break;
          case T(7, 53):
            // A trail of 0.01 %: the next bar's path triggers it.
            ids['trail'] = ctx.submit({
              type: 'trailing-stop',
              side: 'sell',
              amount: 40,
              trail: { kind: 'percent', value: 0.0001 },
              reduceOnly: true,
              tag: 'trail',
            });
            break;
        }
      },
    });
    const run = await startLiveBot({
      strategy,
      store,
      exchange: sim,
      feed: PERP,
      botId: 'exits',
      connect: futuresConnect(sim.httpUrl, 'exits', () => {}),
      bot: { futures: () => ({ leverage: 3, marginMode: 'cross', funding: null }), flatten: true },
    });
    while (sim.now() < T(7, 56)) await run.step();
    const orders = sim.futuresOrders(KEY.apiKey);
    const byId = (id: string) => orders.find((o) => o.clientOrderId === id);
    // The take-profit moved: the original cancelled, its replacement resting at 19, reduce-only.
    expect(byId(ids['tp']!)).toMatchObject({ status: 'CANCELED', reduceOnly: true, price: 20 });
    expect(byId(ids['tp2']!)).toMatchObject({
      status: 'NEW',
      type: 'LIMIT',
      side: 'SELL',
      origQty: 60,
      price: 19,
      reduceOnly: true,
    });
    // The trailing stop triggered: its market exit sold the 40, reduce-only.
    expect(byId(exitOrderId(ids['trail']!))).toMatchObject({
      status: 'FILLED',
      type: 'MARKET',
      side: 'SELL',
      executedQty: 40,
      reduceOnly: true,
    });
    expect(run.bot.account.find(PERP.symbol)?.size).toBe(60);
    // --flatten at the stop: a reduce-only market sell of the 60 held.
    await run.close();
    const flatten = sim.futuresOrders(KEY.apiKey).filter((o) => !orders.some((x) => x.orderId === o.orderId));
    expect(flatten.map((o) => [o.type, o.side, o.origQty, o.reduceOnly])).toEqual([['MARKET', 'SELL', 60, true]]);
  }, 120_000);

  it('a resting reduce-only take-profit the exchange expires when the position closes leaves the bot’s open orders, expired with its reason', async () => {
    const sim = await futuresSim(T(7, 50));
    open.push(sim);
    const store = await newStore();
    const ids: Record<string, ClientOrderId | null> = {};
    const seen: string[][] = [];
    const strategy = defineStrategy({
      name: 'perp-tp-expires',
      params: noParams,
      warmup: 'none',
      onStart: () => ({}),
      onBar(ctx, _s, bar) {
        seen.push(ctx.openOrders().map((o) => o.request.tag ?? ''));
        if (bar.time === T(7, 50)) ctx.buy(100);
        if (bar.time === T(7, 51))
          ids['tp'] = ctx.submit({ type: 'limit', side: 'sell', amount: 100, price: 20, reduceOnly: true, tag: 'tp' });
        if (bar.time === T(7, 52)) ctx.sell(100); // closes the long by another order: the take-profit has nothing left
      },
    });
    const run = await startLiveBot({
      strategy,
      store,
      exchange: sim,
      feed: PERP,
      botId: 'tp-expires',
      connect: futuresConnect(sim.httpUrl, 'tp-expires', () => {}),
      bot: { futures: () => ({ leverage: 3, marginMode: 'cross', funding: null }) },
    });
    open.push(run);
    while (sim.now() < T(7, 55)) await run.step();
    // The exchange's record (Binance: "expired due to current position has been closed").
    const tp = sim.futuresOrders(KEY.apiKey).find((o) => o.clientOrderId === ids['tp']);
    expect(tp).toMatchObject({ status: 'EXPIRED', reduceOnly: true, executedQty: 0, expiryReason: 4 });
    expect(run.bot.account.find(PERP.symbol)?.size ?? 0).toBe(0);
    const stored = await store.orders.get(ids['tp']!);
    expect(stored?.status).toBe('expired');
    // Named as a backtest names it (the simulated venue: docs/conventions.md).
    expect(stored?.reason).toBe('reduce-only: expired with 0 of 100 filled (the position it reduces was closed)');
    expect(seen.at(-1), 'the strategy’s open orders after the close').toEqual([]);
  }, 120_000);
});
