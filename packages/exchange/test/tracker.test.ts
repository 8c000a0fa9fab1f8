import type { Fill } from '@keel/core';
import type { Order, Trade } from 'ccxt';
import { describe, expect, it } from 'vitest';
import { ExchangeGateway, type ExchangeOrder, ManualTimer, OrderTracker } from '../src/index.ts';
import { ccxtOrder, FakeExchange } from './fake-ccxt.ts';

const order = (status: string, filled: number): Order =>
  ccxtOrder({ filled, average: filled > 0 ? 100 : undefined, status, timestamp: 1 } as Partial<Order>);
const trade = (id: string, time: number, info: Record<string, unknown> = {}): Trade =>
  ({
    id,
    order: 'v1',
    symbol: 'BTC/USDT',
    side: 'buy',
    price: 100,
    amount: 0.5,
    takerOrMaker: 'maker',
    timestamp: time,
    fee: { cost: 0, currency: 'USDT' },
    info,
  }) as unknown as Trade;

function setup() {
  const fake = new FakeExchange();
  const timer = new ManualTimer(0);
  const gw = new ExchangeGateway(fake.asClient(), { timer, seed: 2 });
  const orders: ExchangeOrder[] = [];
  const fills: Fill[] = [];
  const tracker = new OrderTracker(gw, {
    symbols: ['BTC/USDT'],
    clientIdOf: () => undefined,
    onOrder: (o) => void orders.push(o),
    onFill: (f) => void fills.push(f),
    pollMs: 1_000,
    reconnect: { baseMs: 100, maxMs: 100 },
  });
  return { fake, timer, gw, tracker, orders, fills };
}

describe('OrderTracker (fake ccxt client)', () => {
  it('de-duplicates fills by trade id and order updates by (status, filled); trades before their order are parked', async () => {
    const s = setup();
    // The trade stream is faster than the order stream, and the exchange repeats itself.
    s.fake.tradeStream = [[trade('t1', 10, { c: undefined })], [trade('t1', 10)], 'hang'];
    s.fake.orderStream = [[order('open', 0)], [order('open', 0.5)], [order('open', 0.5)], [order('closed', 1)], 'hang'];
    s.fake.myTrades = [trade('t1', 10), trade('t2', 20)];
    s.tracker.start();
    await s.timer.advance(100);
    await s.tracker.stop();
    expect(s.orders.map((o) => `${o.status}:${o.filled}`)).toEqual(['accepted:0', 'partially-filled:0.5', 'filled:1']);
    expect(s.fills.map((f) => [f.tradeId, f.orderId])).toEqual(
      expect.arrayContaining([
        ['t1', 'c1'],
        ['t2', 'c1'],
      ]),
    );
    expect(new Set(s.fills.map((f) => f.tradeId)).size).toBe(s.fills.length);
  });

  it('holds the working orders and the last 10,000 finished ones, however many orders pass (a bot that runs for months)', async () => {
    const s = setup();
    const n = 12_000;
    const o = (i: number, status: string) => ccxtOrder({ id: `v${i}`, clientOrderId: `c${i}`, status });
    const batch: Order[] = [];
    // Each order is placed, then cancelled; the last 5 are still working.
    for (let i = 0; i < n; i++) batch.push(o(i, 'open'), ...(i < n - 5 ? [o(i, 'canceled')] : []));
    s.fake.orderStream = [batch, [o(n - 1, 'open'), o(n - 6, 'canceled'), o(0, 'canceled')], 'hang'];
    s.fake.tradeStream = ['hang'];
    s.tracker.start();
    await s.timer.advance(100);
    await s.tracker.stop();
    expect(s.tracker.stats().orders).toBe(10_000 + 5);
    expect(s.tracker.stats().venueIds).toBe(10_000 + 5);
    // A repeated update of a working or recently finished order is still dropped; one of an order
    // finished 10,000 orders ago is passed on again (the live venue finds no order for it: a no-op).
    const updates = s.orders.map((x) => `${x.clientOrderId}:${x.status}`);
    expect(updates).toHaveLength(2 * n - 5 + 1);
    expect(updates.at(-1)).toBe('c0:cancelled');
  });

  it('polls REST while the stream is down and stops polling once it is back', async () => {
    const s = setup();
    s.fake.orders.set('c1', order('open', 0));
    // Empty scripts: both user streams are down (every watch fails at once).
    s.tracker.start();
    await s.timer.advance(3_500);
    expect(s.tracker.mode).toBe('polling');
    const polled = s.fake.restTradeCalls;
    expect(polled).toBeGreaterThanOrEqual(3);
    expect(s.orders.map((o) => o.status)).toEqual(['accepted']);
    // The stream comes back with a message: polling ends after one last pass.
    s.fake.script(s.fake.orderStream, [[order('open', 0)], 'hang']);
    s.fake.script(s.fake.tradeStream, ['hang']);
    s.fake.myTrades = [trade('t9', 50)];
    await s.timer.advance(500); // the reconnect backoff
    await s.timer.advance(5_000);
    expect(s.tracker.mode).toBe('stream');
    expect(s.fake.restTradeCalls - polled).toBeLessThanOrEqual(2);
    expect(s.fills.map((f) => f.tradeId)).toEqual(['t9']);
    await s.tracker.stop();
  });
});
