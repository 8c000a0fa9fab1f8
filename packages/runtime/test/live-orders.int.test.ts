import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineStrategy, type OrderState, runBacktest } from '@keel/core';
import { createCcxtClient } from '@keel/exchange';
import { ccxtConfigFor, type ExchangeSim, type SimBar } from '@keel/exchange-sim';
import { openStore, type Store } from '@keel/store';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { exitOrderId } from '../src/index.ts';
import { noParams, trailingExit } from './fixtures/strategies.ts';
import {
  FEED,
  KEY,
  type LiveRun,
  MIN,
  realCandles,
  simBars,
  startLiveBot,
  startSim,
  T0,
  toSeries,
} from './live-harness.ts';

/**
 * What Binance spot lacks, emulated by the live venue, against the exchange simulator with the
 * real ccxt client: trailing stops (held by Keel, moved by the simulated venue's own code), GTD
 * (sent as GTC, cancelled by Keel at expireAt) and the adoption of orders the bot did not place.
 */
if (!HAS_SHARED_DATA) noteSkip('live trailing stop on real candles');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-live-orders-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  cleanup = [];
});

async function setup(bars: SimBar[], balances: Record<string, number>): Promise<{ sim: ExchangeSim; store: Store }> {
  const sim = await startSim({ bars, balances });
  const store = await openStore({ url: `sqlite:${path.join(dir, `${Math.random().toString(36).slice(2)}.db`)}` });
  cleanup.push(
    () => sim.close(),
    () => store.close(),
  );
  return { sim, store };
}

function run(live: LiveRun): LiveRun {
  cleanup.push(() => live.close());
  return live;
}

/** Local balances as journaled, against the simulator's totals (free + locked). */
async function expectBalancesEqual(sim: ExchangeSim, store: Store, botId: string): Promise<void> {
  const simBal = sim.getBalances(KEY.apiKey) as Record<string, { free: number; locked: number }>;
  const total = (a: string) => (simBal[a]?.free ?? 0) + (simBal[a]?.locked ?? 0);
  const local = Object.fromEntries((await store.balances.load(botId)).map((b) => [b.asset, b.total]));
  expect(local.USDT, 'USDT: local vs the simulator').toBeCloseTo(total('USDT'), 6);
  expect(local.BTC ?? 0, 'BTC: local vs the simulator').toBeCloseTo(total('BTC'), 8);
}

describe.skipIf(!HAS_SHARED_DATA)('live trailing stop, emulated by Keel (real candles)', () => {
  const N = 30;
  const series = realCandles(N);

  it('triggers on the same bar at the same stop level as the backtest of the same bars, and exits once at the next open (the documented latency)', async () => {
    const bars = simBars(series);
    const strategy = trailingExit({ entryTime: bars[0]!.time, trail: { kind: 'percent', value: 0.2 } });
    // Oracle: the backtest of the same bars. Its trailing stop fills at its level on the trigger bar.
    const bt = runBacktest({ strategy, data: [{ ...FEED, series }], cash: 10_000, fee: 0.001 });
    const btTrail = bt.orders.find((o) => o.request.type === 'trailing-stop')!;
    const btExit = bt.fills.find((f) => f.orderId === btTrail.request.id)!;
    expect(btTrail.status).toBe('filled');
    const triggerBar = bars.findIndex((b) => b.time + MIN === btExit.time);
    expect(triggerBar).toBeGreaterThan(2);

    const { sim, store } = await setup(bars, { USDT: 10_000 });
    const live = run(await startLiveBot({ exchange: sim, store, botId: 'trail', strategy }));
    const trail = () => live.bot.botEngine.engine.openOrders().find((o) => o.request.type === 'trailing-stop');
    const levels: number[] = [];
    for (let k = 0; k <= triggerBar; k++) {
      await live.step();
      const t = trail();
      if (t && k < triggerBar) {
        // Every level the bot holds is saved as it moves (what a restart resumes from).
        levels.push(t.stopLevel);
        expect((await store.orders.get(t.request.id))?.stopLevel).toBe(t.stopLevel);
      }
    }
    await live.step(); // the exit fills at the open of the bar after the trigger
    const order = live.bot.botEngine.engine.history.find((o) => o.request.type === 'trailing-stop') as OrderState;
    expect(order.createdAt, 'the live bot placed the trailing stop on the same bar').toBe(btTrail.createdAt);
    expect(levels.length).toBeGreaterThan(2);
    const triggered = live.events.find((e) => e.type === 'order.triggered' && e.order.request.id === order.request.id);
    expect(triggered?.time, 'trigger bar (close time) = the backtest fill bar').toBe(btExit.time);
    expect(order.stopLevel, 'stop level at the trigger = the backtest fill price').toBe(btExit.price);
    expect(order.status).toBe('filled');

    // On the exchange: one market order, with the id derived from the trailing stop's, at the open
    // of the bar after the trigger (bars close, then Keel acts: one bar of latency).
    const exitId = exitOrderId(order.request.id);
    const exits = sim.getOrders(KEY.apiKey).filter((o) => o.clientOrderId === exitId);
    expect(exits).toHaveLength(1);
    expect(exits[0]).toMatchObject({ type: 'MARKET', side: 'SELL', status: 'FILLED' });
    const exitFills = live.bot.botEngine.engine.fills.filter((f) => f.orderId === order.request.id);
    expect(exitFills.map((f) => f.price)).toEqual([bars[triggerBar + 1]!.open]);
    expect(live.bot.account.find(FEED.symbol)?.size).toBe(0);
    await expectBalancesEqual(sim, store, 'trail');
  });
});

/** Bar i opens at 100 + i, dips 2, peaks 2, closes 1 up: every price is known in advance. */
function stairBars(n: number, volume = 100): SimBar[] {
  return Array.from({ length: n }, (_, i) => {
    const o = 100 + i;
    return { time: T0 + i * MIN, open: o, high: o + 2, low: o - 2, close: o + 1, volume };
  });
}

describe('live GTD, emulated by Keel (Binance spot has none)', () => {
  it('is sent as GTC and cancelled by Keel at expireAt, reported as expired like the simulated venue; a filled GTD order is left alone', async () => {
    const EXPIRE = T0 + 4 * MIN; // a bar boundary: live and backtest agree on the bar
    const EXPIRE_MID = T0 + 4 * MIN + 30_000; // inside bar 4: live cancels at that instant
    const strategy = defineStrategy({
      name: 'gtd',
      params: noParams,
      warmup: 'none',
      onStart: () => ({}),
      onBar(ctx, _s, bar) {
        if (bar.time !== T0) return;
        const gtd = { type: 'limit', side: 'buy', amount: 0.1, timeInForce: 'GTD' } as const;
        ctx.submit({ ...gtd, price: 90, expireAt: EXPIRE, tag: 'far' });
        ctx.submit({ ...gtd, price: 90, expireAt: EXPIRE_MID, tag: 'far-mid' });
        ctx.submit({ ...gtd, price: 100, expireAt: T0 + 6 * MIN, tag: 'near' }); // bar 1 dips to 99
        ctx.submit({ ...gtd, price: 100, expireAt: bar.time, tag: 'stale' }); // expired before it can rest
      },
    });
    const bars = stairBars(12);
    const { sim, store } = await setup(bars, { USDT: 10_000 });
    const live = run(await startLiveBot({ exchange: sim, store, botId: 'gtd', strategy }));
    const byTag = (tag: string) => live.bot.botEngine.engine.history.find((o) => o.request.tag === tag)!;
    const onSim = (tag: string) => sim.getOrders(KEY.apiKey).find((o) => o.clientOrderId === byTag(tag).request.id)!;

    while (sim.now() < EXPIRE - MIN) await live.step();
    expect(byTag('near').status).toBe('filled');
    expect(byTag('stale').status).toBe('expired');
    expect(
      sim.getOrders(KEY.apiKey).map((o) => o.clientOrderId),
      'an expired GTD order is never sent',
    ).not.toContain(byTag('stale').request.id);
    expect(onSim('far')).toMatchObject({ timeInForce: 'GTC', status: 'NEW' });
    await live.step(); // the replay clock reaches EXPIRE: Keel's timer cancels `far`
    expect(onSim('far')).toMatchObject({ status: 'CANCELED', updateTime: EXPIRE });
    expect(byTag('far').status).toBe('expired');
    expect(byTag('far-mid').status).toBe('accepted');
    await live.advanceTo(EXPIRE_MID);
    expect(onSim('far-mid')).toMatchObject({ status: 'CANCELED', updateTime: EXPIRE_MID });
    expect(byTag('far-mid').status).toBe('expired');
    for (let k = 0; k < 3; k++) await live.step();
    expect(onSim('near').status, 'a filled GTD order is never cancelled').toBe('FILLED');
    expect((await store.orders.get(byTag('far').request.id))?.status).toBe('expired');

    // Oracle: the backtest of the same bars expires `far` at the first bar opening at or after
    // EXPIRE (the same moment on a bar boundary), `far-mid` at the next bar (its finest time).
    const bt = runBacktest({ strategy, data: [{ ...FEED, series: toSeries(bars) }], cash: 10_000, fee: 0.001 });
    const btOrder = (tag: string) => bt.orders.find((o) => o.request.tag === tag)!;
    expect(['far', 'far-mid', 'near', 'stale'].map((t) => btOrder(t).status)).toEqual([
      'expired',
      'expired',
      'filled',
      'expired',
    ]);
    expect(btOrder('far').updatedAt).toBe(EXPIRE + MIN); // handled at the close of the bar opening at EXPIRE
    expect(live.events.find((e) => e.type === 'order.expired' && e.order.request.tag === 'far')?.time).toBe(EXPIRE);
  });
});

describe('unknown orders on the exchange: --unknown-orders adopt | flag | cancel', () => {
  /** Cancels adopted orders priced under 60 (the strategy can see and cancel adopted orders). */
  const tidy = defineStrategy({
    name: 'tidy',
    params: noParams,
    warmup: 'none',
    onStart: () => ({}),
    onBar(ctx) {
      for (const o of ctx.openOrders())
        if (o.request.tag === 'adopted' && o.request.type === 'limit' && o.request.price < 60) ctx.cancel(o.request.id);
    },
  });

  it('adopt: foreign and record-lost orders become the bot’s own; their fills (before and after) reach the position, and local balances equal the simulator’s', async () => {
    const { sim, store } = await setup(stairBars(12, 1), { USDT: 10_000 }); // 0.1 BTC per bar: partial fills
    const person = createCcxtClient('binance', ccxtConfigFor(sim, KEY));
    cleanup.push(() => person.close());
    sim.step();
    await person.createOrder('BTC/USDT', 'limit', 'buy', 0.3, 101, { clientOrderId: 'manual-buy' });
    await person.createOrder('BTC/USDT', 'limit', 'buy', 0.2, 50, { clientOrderId: 'manual-far' });
    await person.createOrder('BTC/USDT', 'limit', 'buy', 0.2, 50, { clientOrderId: 'kadopt-lr5t2o-1' }); // record lost
    await person.createOrder('BTC/USDT', 'limit', 'buy', 0.2, 50, { clientOrderId: 'kotherbot-lr5t2o-1' });
    await person.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 120, {
      clientOrderId: 'manual-stop',
      triggerPrice: 119,
    });
    sim.step(); // manual-buy fills 0.1 of 0.3 before the bot starts
    expect(sim.getOrders(KEY.apiKey).find((o) => o.clientOrderId === 'manual-buy')?.executedQty).toBeCloseTo(0.1, 10);

    const live = run(
      await startLiveBot({ exchange: sim, store, botId: 'adopt', strategy: tidy, bot: { unknownOrders: 'adopt' } }),
    );
    const actions = live.bot.report().recovery.map((a) => `${a.kind} ${a.detail.split(' ')[0]}`);
    expect(actions).toEqual(
      expect.arrayContaining([
        'unknown-order-adopted manual-buy',
        'unknown-order-adopted manual-far',
        'unknown-order-adopted kadopt-lr5t2o-1',
        'unknown-order-flagged kotherbot-lr5t2o-1',
        'unknown-order-flagged manual-stop',
      ]),
    );
    const engine = live.bot.botEngine.engine;
    expect(
      engine
        .openOrders()
        .map((o) => o.request.id)
        .sort(),
    ).toEqual(['kadopt-lr5t2o-1', 'manual-buy', 'manual-far']);
    expect(engine.order('manual-buy')).toMatchObject({ status: 'partially-filled', filled: 0.1 });
    expect(live.bot.account.find(FEED.symbol)?.size, 'the fill before adoption, less the fee in BTC').toBeCloseTo(
      0.1 * 0.999,
      12,
    );

    await live.step(); // tidy cancels the two far orders; manual-buy fills on
    const status = (id: string) => sim.getOrders(KEY.apiKey).find((o) => o.clientOrderId === id)?.status;
    expect([status('manual-far'), status('kadopt-lr5t2o-1')]).toEqual(['CANCELED', 'CANCELED']);
    while (status('manual-buy') !== 'FILLED') await live.step();
    await live.step();
    const simBuy = sim.getOrders(KEY.apiKey).find((o) => o.clientOrderId === 'manual-buy')!;
    const local = await store.orders.get('manual-buy');
    expect(local).toMatchObject({ status: 'filled', filled: simBuy.executedQty });
    expect((await store.fills.forOrder('adopt', 'manual-buy')).map((f) => f.tradeId).sort()).toEqual(
      simBuy.fills.map((f) => String(f.tradeId)).sort(),
    );
    expect((await store.orders.get('manual-far'))?.status).toBe('cancelled');
    // Left alone: another Keel bot's order and the stop order.
    expect([status('kotherbot-lr5t2o-1'), status('manual-stop')]).toEqual(['NEW', 'NEW']);
    await expectBalancesEqual(sim, store, 'adopt');
  });

  it('flag leaves unknown orders alone (warning and event); cancel cancels them; another Keel bot’s order is never touched', async () => {
    const { sim, store } = await setup(stairBars(12), { USDT: 10_000 });
    const person = createCcxtClient('binance', ccxtConfigFor(sim, KEY));
    cleanup.push(() => person.close());
    sim.step();
    await person.createOrder('BTC/USDT', 'limit', 'buy', 0.2, 50, { clientOrderId: 'manual-1' });
    await person.createOrder('BTC/USDT', 'limit', 'buy', 0.2, 50, { clientOrderId: 'kotherbot-lr5t2o-1' });
    const status = (id: string) => sim.getOrders(KEY.apiKey).find((o) => o.clientOrderId === id)?.status;

    const flagger = await startLiveBot({ exchange: sim, store, botId: 'flagger', strategy: tidy });
    const flagged = flagger.bot.report().recovery.filter((a) => a.kind === 'unknown-order-flagged');
    expect(flagged.map((a) => a.detail.split(' ')[0]).sort()).toEqual(['kotherbot-lr5t2o-1', 'manual-1']);
    expect(flagger.bot.botEngine.engine.openOrders()).toHaveLength(0);
    expect((await store.events.list('flagger')).some((e) => e.type === 'reconcile.unknown-order-flagged')).toBe(true);
    await flagger.close();
    expect([status('manual-1'), status('kotherbot-lr5t2o-1')]).toEqual(['NEW', 'NEW']);

    const canceller = run(
      await startLiveBot({
        exchange: sim,
        store,
        botId: 'canceller',
        strategy: tidy,
        bot: { unknownOrders: 'cancel' },
      }),
    );
    expect(canceller.bot.report().recovery.map((a) => `${a.kind} ${a.detail.split(' ')[0]}`)).toEqual(
      expect.arrayContaining(['unknown-order-cancelled manual-1', 'unknown-order-flagged kotherbot-lr5t2o-1']),
    );
    expect([status('manual-1'), status('kotherbot-lr5t2o-1')]).toEqual(['CANCELED', 'NEW']);
  });
});
