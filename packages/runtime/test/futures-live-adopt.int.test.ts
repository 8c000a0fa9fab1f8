// A live perpetual bot restarted with --unknown-orders adopt takes over a resting order it did not
// place (a take-profit the user set while it was down) with everything the exchange says the order
// keeps: reduce-only, post-only (Binance's GTX). Moved by the strategy, its replacement reaches the
// exchange reduce-only and post-only: without them, a take-profit that outlives the position it
// closes could open one. Real ccxt binanceusdm client against the futures simulator over
// loopback, Binance's LINKUSDT 1m candles of 2023-02, default fees. Oracle: the simulator's own
// order records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ClientOrderId, defineStrategy } from '@keel/core';
import { openStore } from '@keel/store';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { connectExchange } from '../src/index.ts';
import { noParams } from './fixtures/strategies.ts';
import { futuresConnect, futuresSim, KEY, LINK_USDM_BARS, PERP, startLiveBot } from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('futures-live-adopt.int.test.ts', LINK_USDM_BARS);

const T = (h: number, m = 0) => Date.UTC(2023, 1, 1, h, m);

const dir = mkdtempSync(path.join(tmpdir(), 'keel-futures-adopt-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close().catch(() => undefined);
});

describe.skipIf(!HAS_SHARED_DATA)('an order adopted after a restart keeps what the exchange says it is', () => {
  it('a reduce-only post-only take-profit set while the bot was down is adopted as one; moved, its replacement stays reduce-only and post-only', async () => {
    const sim = await futuresSim(T(7, 50));
    open.push(sim);
    const store = await openStore({ url: `sqlite:${path.join(dir, 'adopt.db')}`, synchronous: 'NORMAL' });
    open.push(store);
    const moved: ClientOrderId[] = [];
    const strategy = defineStrategy({
      name: 'perp-adopt',
      params: noParams,
      warmup: 'none',
      onStart: () => ({}),
      onBar(ctx, _s, bar) {
        if (bar.time === T(7, 50)) ctx.buy(100);
        for (const o of ctx.openOrders())
          if (o.request.tag === 'adopted' && o.request.type === 'limit' && o.request.price === 20) {
            const id = ctx.modify(o.request.id, { price: 19 });
            if (id) moved.push(id);
          }
      },
    });
    const start = () =>
      startLiveBot({
        strategy,
        store,
        exchange: sim,
        feed: PERP,
        botId: 'adopt',
        connect: futuresConnect(sim.httpUrl, 'adopt', () => {}),
        bot: { futures: () => ({ leverage: 3, marginMode: 'cross', funding: null }), unknownOrders: 'adopt' },
      });
    let run = await start();
    while (sim.now() < T(7, 52)) await run.step();
    expect(run.bot.account.find(PERP.symbol)?.size).toBe(100);
    await run.close();

    // While the bot is down the user sets a take-profit on the same account: reduce-only, post-only.
    const user = await connectExchange(futuresConnect(sim.httpUrl, 'user', () => {}));
    await user.gateway.client.createOrder(PERP.symbol, 'limit', 'sell', 60, 20, {
      reduceOnly: true,
      timeInForce: 'GTX',
      clientOrderId: 'manual-tp',
    });
    await user.close();
    expect(sim.futuresOrders(KEY.apiKey).find((o) => o.clientOrderId === 'manual-tp')).toMatchObject({
      status: 'NEW',
      reduceOnly: true,
      timeInForce: 'GTX',
    });

    run = await start();
    open.push(run);
    expect(run.bot.report().recovery.map((a) => a.kind)).toContain('unknown-order-adopted');
    const adopted = (await store.orders.open('adopt')).find((o) => o.request.id === 'manual-tp');
    expect(adopted?.request, 'the adopted request keeps the exchange order’s flags').toMatchObject({
      type: 'limit',
      price: 20,
      reduceOnly: true,
      postOnly: true,
      timeInForce: 'GTC',
      tag: 'adopted',
    });
    while (moved.length === 0 && sim.now() < T(7, 56)) await run.step();
    await run.step();
    const orders = sim.futuresOrders(KEY.apiKey);
    const byId = (id: string) => orders.find((o) => o.clientOrderId === id);
    expect(byId('manual-tp')).toMatchObject({ status: 'CANCELED' });
    expect(byId(moved[0]!), 'the replacement on the exchange').toMatchObject({
      status: 'NEW',
      side: 'SELL',
      origQty: 60,
      price: 19,
      reduceOnly: true,
      timeInForce: 'GTX',
    });
  }, 120_000);
});
