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
import type { ExchangeSim } from '@keel/exchange-sim';
import { openStore, type Store } from '@keel/store';
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

describe.skipIf(!HAS_SHARED_DATA)('adopting GTD orders, and a hedge-mode account', () => {
  const quiet = defineStrategy({
    name: 'perp-quiet',
    params: noParams,
    warmup: 'none',
    onStart: () => ({}),
    onBar() {},
  });
  const bot = (sim: ExchangeSim, store: Store, botId: string, unknownOrders: 'adopt' | 'cancel') =>
    startLiveBot({
      strategy: quiet,
      store,
      exchange: sim,
      feed: PERP,
      botId,
      connect: futuresConnect(sim.httpUrl, botId, () => {}),
      bot: { futures: () => ({ leverage: 3, marginMode: 'cross', funding: null }), unknownOrders },
    });

  it('a GTD order is adopted with its expiry: it expires at it while the bot runs, and one whose expiry passed while the bot was down is recorded expired, GTD named', async () => {
    const sim = await futuresSim(T(7, 50));
    open.push(sim);
    const store = await openStore({ url: `sqlite:${path.join(dir, 'gtd.db')}`, synchronous: 'NORMAL' });
    open.push(store);
    // The user's two GTD buys far below the market (LINK ~6.86), expiring at 07:55 and 08:05.
    const user = await connectExchange(futuresConnect(sim.httpUrl, 'user', () => {}));
    for (const [id, until] of [
      ['gtd-soon', T(7, 55)],
      ['gtd-later', T(8, 5)],
    ] as const)
      await user.gateway.client.createOrder(PERP.symbol, 'limit', 'buy', 10, 6, {
        timeInForce: 'GTD',
        goodTillDate: until,
        clientOrderId: id,
      });
    await user.close();
    expect(sim.futuresOrders(KEY.apiKey).map((o) => [o.clientOrderId, o.timeInForce, o.goodTillDate])).toEqual([
      ['gtd-soon', 'GTD', T(7, 55)],
      ['gtd-later', 'GTD', T(8, 5)],
    ]);

    let run = await bot(sim, store, 'gtd', 'adopt');
    const adopted = await store.orders.open('gtd');
    expect(
      adopted
        .map((o) => [o.request.id, o.request.timeInForce, o.request.expireAt, o.request.tag])
        .sort((a, b) => Number(a[2]) - Number(b[2])),
    ).toEqual([
      ['gtd-soon', 'GTD', T(7, 55), 'adopted'],
      ['gtd-later', 'GTD', T(8, 5), 'adopted'],
    ]);
    while (sim.now() < T(7, 57)) await run.step();
    const soon = run.bot.botEngine.engine.order('gtd-soon')!;
    expect(soon).toMatchObject({
      status: 'expired',
      reason: `GTD: expired at ${new Date(T(7, 55)).toISOString()} with 0 of 10 filled`,
    });
    // Cancelled by Keel at its expiry, or expired by the exchange at it: either way no longer open.
    expect(['CANCELED', 'EXPIRED']).toContain(sim.futuresOrders(KEY.apiKey)[0]!.status);
    await run.close(); // --on-shutdown keep: gtd-later rests on

    // Down while gtd-later's expiry passes: the exchange expires it.
    while (sim.now() < T(8, 7)) sim.step();
    expect(sim.futuresOrders(KEY.apiKey)[1]).toMatchObject({ clientOrderId: 'gtd-later', status: 'EXPIRED' });
    run = await bot(sim, store, 'gtd', 'adopt');
    open.push(run);
    expect(run.bot.report().recovery).toContainEqual({
      kind: 'order-cancelled-while-down',
      detail: 'gtd-later: expired',
    });
    expect(await store.orders.get('gtd-later')).toMatchObject({
      status: 'expired',
      reason: `GTD: expired at ${new Date(T(8, 5)).toISOString()} with 0 of 10 filled`,
    });
  }, 120_000);

  it('a hedge-mode account is refused before reconciliation touches anything: the user’s hedge-side order is neither adopted nor cancelled', async () => {
    const sim = await futuresSim(T(7, 50));
    open.push(sim);
    const store = await openStore({ url: `sqlite:${path.join(dir, 'hedge.db')}`, synchronous: 'NORMAL' });
    open.push(store);
    const user = await connectExchange(futuresConnect(sim.httpUrl, 'user', () => {}));
    await user.gateway.client.setPositionMode(true);
    await user.gateway.client.createOrder(PERP.symbol, 'limit', 'buy', 10, 6, {
      positionSide: 'LONG',
      clientOrderId: 'hedge-long',
    });
    await user.close();
    for (const policy of ['cancel', 'adopt'] as const) {
      const refused = await bot(sim, store, `hedge-${policy}`, policy).then(
        () => null,
        (e: Error) => e,
      );
      expect(refused?.message, policy).toContain('the exchange account is in hedge position mode');
      expect(sim.futuresOrders(KEY.apiKey), policy).toMatchObject([{ clientOrderId: 'hedge-long', status: 'NEW' }]);
      expect(await store.orders.list(`hedge-${policy}`), policy).toEqual([]);
    }
  }, 120_000);
});
