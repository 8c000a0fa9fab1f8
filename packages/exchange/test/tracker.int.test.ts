import type { Fill } from '@keel/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ExchangeOrder, OrderTracker } from '../src/index.ts';
import { limitBuy as buy, eventually, KEY, type SimHarness, simHarness } from './sim-harness.ts';

// Real ccxt.pro user-data stream and REST against the sim. Oracle: the sim's own record of each
// order's fills (`sim.getOrders(...).fills`), compared trade by trade.
describe('order tracking against the exchange simulator', () => {
  let h: SimHarness;
  beforeEach(async () => {
    h = await simHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const limitBuy = (key: string, price: number, amount = 0.05) => buy('trk', key, price, amount);

  it('stream while up, REST polling while down; every fill exactly once, matching the exchange', async () => {
    const gw = h.gateway();
    await gw.loadMarkets();
    const orders: ExchangeOrder[] = [];
    const fills: Fill[] = [];
    const open = new Map<string, string>();
    let streamErrors = 0;
    const tracker = new OrderTracker(gw, {
      symbols: ['BTC/USDT'],
      clientIdOf: () => undefined,
      onOrder: (o) => {
        orders.push(o);
        if (o.clientOrderId && (o.status === 'filled' || o.status === 'cancelled')) open.delete(o.clientOrderId);
      },
      onFill: (f) => void fills.push(f),
      trackedOpen: () => [...open].map(([clientOrderId, symbol]) => ({ clientOrderId, symbol })),
      pollMs: 150,
      onError: () => void streamErrors++,
      reconnect: { baseMs: 100, maxMs: 300 },
    });
    tracker.start();
    try {
      await h.sim.waitForSubscription(`user:${KEY.apiKey}`);
      // 1) Filled while the stream is up: bar 10 trades down to 108, our 109 bid fills.
      const a = limitBuy('a', 109);
      open.set(a.id, 'BTC/USDT');
      expect((await gw.createOrder(a)).kind).toBe('placed');
      h.sim.tick();
      await eventually(() => fills.some((f) => f.orderId === a.id), 5_000, 'the stream fill of a');
      expect(tracker.mode).toBe('stream');
      // 2) Filled while the user stream is down: only REST polling can see it.
      const b = limitBuy('b', 100);
      open.set(b.id, 'BTC/USDT');
      expect((await gw.createOrder(b)).kind).toBe('placed');
      await eventually(() => orders.some((o) => o.clientOrderId === b.id), 5_000, 'b accepted');
      expect(h.sim.faults.fillOpenOrdersWhileDisconnected(KEY.apiKey)).toBe(1);
      await eventually(() => streamErrors > 0, 5_000, 'the tracker to notice the dropped stream');
      await eventually(() => fills.some((f) => f.orderId === b.id), 5_000, 'the polled fill of b');
      await eventually(() => orders.some((o) => o.clientOrderId === b.id && o.status === 'filled'), 5_000, 'b filled');
      await new Promise((r) => setTimeout(r, 500)); // more polls and the reconnect: no fill may repeat
    } finally {
      await tracker.stop();
    }
    const simFills = h.sim
      .getOrders(KEY.apiKey)
      .flatMap((o) =>
        o.fills.map((f) => ({ id: String(f.tradeId), order: o.clientOrderId, qty: f.qty, price: f.price })),
      );
    expect(
      fills
        .map((f) => ({ id: f.tradeId, order: f.orderId, qty: f.amount, price: f.price }))
        .sort((x, y) => x.id.localeCompare(y.id)),
    ).toEqual(simFills.sort((x, y) => x.id.localeCompare(y.id)));
    expect(new Set(fills.map((f) => f.tradeId)).size).toBe(fills.length);
  });
});
