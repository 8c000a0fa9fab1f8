import { type OrderRequest, SeededRng } from '@keel/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GatewayEvent } from '../src/index.ts';
import { testOrderId } from './helpers.ts';
import { KEY, type SimHarness, simHarness } from './sim-harness.ts';

// The REAL ccxt binance client against the exchange simulator over loopback. Oracle: the sim's
// own order book of record (`sim.getOrders`), which is what "placed twice" would show up in.
describe('ExchangeGateway against the exchange simulator (real ccxt, loopback)', () => {
  let h: SimHarness;
  beforeEach(async () => {
    h = await simHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const buy = (key: string, extra: Partial<OrderRequest> = {}): OrderRequest =>
    ({
      id: testOrderId('int-bot', key),
      symbol: 'BTC/USDT',
      side: 'buy',
      type: 'limit',
      price: 100.004,
      amount: 0.0105,
      timeInForce: 'GTC',
      ...extra,
    }) as OrderRequest;
  const onSim = (id: string) => h.sim.getOrders(KEY.apiKey).filter((o) => o.clientOrderId === id);

  it('round trip: markets -> instrument, limit create (rounded), lookup, open orders, cancel, market fill', async () => {
    const gw = h.gateway();
    await gw.loadMarkets();
    expect(gw.instrument('BTC/USDT')).toMatchObject({
      tickSize: 0.01,
      stepSize: 0.001,
      minAmount: 0.001,
      minNotional: 1,
    });
    const r = await gw.createOrder(buy('rt-1'));
    expect(r).toMatchObject({
      kind: 'placed',
      via: 'response',
      sends: 1,
      order: { status: 'accepted', amount: 0.01, price: 100 },
    });
    expect(onSim(buy('rt-1').id)[0]).toMatchObject({ origQty: 0.01, price: 100, status: 'NEW' });
    expect((await gw.lookupOrder(buy('rt-1').id, 'BTC/USDT'))?.venueOrderId).toBe(
      r.kind === 'placed' ? r.order.venueOrderId : '',
    );
    expect((await gw.fetchOpenOrders('BTC/USDT')).map((o) => o.clientOrderId)).toEqual([buy('rt-1').id]);
    expect(await gw.cancelOrder(buy('rt-1').id, 'BTC/USDT')).toMatchObject({
      kind: 'cancelled',
      order: { status: 'cancelled' },
    });
    expect(await gw.cancelOrder(buy('rt-1').id, 'BTC/USDT')).toMatchObject({
      kind: 'not-found',
      order: { status: 'cancelled' },
    });
    expect(await gw.lookupOrder(testOrderId('int-bot', 'never'), 'BTC/USDT')).toBeNull();
    const m = await gw.createOrder(
      {
        id: testOrderId('int-bot', 'mkt'),
        symbol: 'BTC/USDT',
        side: 'buy',
        type: 'market',
        amount: 0.02,
        timeInForce: 'GTC',
      },
      { refPrice: 110 },
    );
    expect(m).toMatchObject({ kind: 'placed', order: { status: 'filled', filled: 0.02 } });
    const trades = await gw.fetchMyTrades('BTC/USDT');
    expect(trades.at(-1)).toMatchObject({ amount: 0.02 });
    expect((await gw.fetchBalance()).find((b) => b.asset === 'BTC')?.total).toBeCloseTo(10 + 0.02 - 0.00002, 10);
  });

  it('spot: a reduce-only order goes out without the flag (spot has none; the engine clips to the position)', async () => {
    const gw = h.gateway();
    await gw.loadMarkets();
    const p = gw.prepareOrder(buy('ro', { side: 'sell', reduceOnly: true }));
    expect(p.ok && p.order.params).toEqual({ clientOrderId: buy('ro').id, timeInForce: 'GTC' });
  });

  it('filter violations and exchange rejections are outcomes; violations are never sent', async () => {
    const gw = h.gateway();
    expect(await gw.createOrder(buy('small', { amount: 0.001, price: 100 }))).toMatchObject({
      kind: 'rejected',
      rule: 'min-notional',
      sends: 0,
    });
    expect(onSim(buy('small').id)).toHaveLength(0);
    const broke = await gw.createOrder(buy('broke', { amount: 5_000, price: 100 }));
    expect(broke).toMatchObject({ kind: 'rejected', sends: 1, error: { kind: 'rejected', code: 'InsufficientFunds' } });
  });

  it('lost acknowledgement (order executed, response never came): resolved by lookup, one order', async () => {
    const events: GatewayEvent[] = [];
    const gw = h.gateway({ ccxt: { timeout: 300 }, onEvent: (e) => events.push(e) });
    await gw.loadMarkets();
    h.sim.faults.holdHttpResponses({ path: '/api/v3/order', method: 'POST', count: 1, execute: true });
    const r = await gw.createOrder(buy('lost-ack'));
    expect(r).toMatchObject({ kind: 'placed', via: 'lookup', sends: 1 });
    expect(events.map((e) => e.type)).toEqual(['create-in-doubt', 'lookup']);
    expect(onSim(buy('lost-ack').id)).toHaveLength(1);
  });

  it('request lost before execution: lookup says unknown, resent with the SAME client id, one order', async () => {
    const gw = h.gateway({ ccxt: { timeout: 300 } });
    await gw.loadMarkets();
    h.sim.faults.holdHttpResponses({ path: '/api/v3/order', method: 'POST', count: 1 }); // never runs
    const r = await gw.createOrder(buy('lost-req'));
    expect(r).toMatchObject({ kind: 'placed', via: 'response', sends: 2 });
    expect(onSim(buy('lost-req').id)).toHaveLength(1);
  });

  it('a late response (arrives after the client timed out) is resolved by lookup, not doubled', async () => {
    const gw = h.gateway({ ccxt: { timeout: 200 }, lookupDelayMs: 300 });
    await gw.loadMarkets();
    h.sim.faults.holdHttpResponses({ path: '/api/v3/order', method: 'POST', count: 1, ms: 400, execute: true });
    const r = await gw.createOrder(buy('late'));
    expect(r).toMatchObject({ kind: 'placed', via: 'lookup', sends: 1 });
    expect(onSim(buy('late').id)).toHaveLength(1);
  });

  it('5xx burst on order entry: resent with the same id after lookups, one order', async () => {
    const gw = h.gateway();
    await gw.loadMarkets();
    h.sim.faults.httpErrorBurst({ path: '/api/v3/order', method: 'POST', count: 3, status: 503 });
    const r = await gw.createOrder(buy('burst'));
    expect(r).toMatchObject({ kind: 'placed', sends: 4 });
    expect(onSim(buy('burst').id)).toHaveLength(1);
  });

  it('429 storm: waits out Retry-After, one order', async () => {
    const gw = h.gateway();
    await gw.loadMarkets();
    h.nearMinuteEnd();
    h.sim.faults.rateLimitStorm({ count: 2 });
    const t0 = Date.now();
    const r = await gw.createOrder(buy('storm'));
    expect(r.kind).toBe('placed');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900); // the sim's Retry-After is >= 1 s
    expect(onSim(buy('storm').id)).toHaveLength(1);
  });

  it('InvalidNonce against a replaying exchange: its replay clock (2024) is not adopted for signing', async () => {
    const events: GatewayEvent[] = [];
    const gw = h.gateway({
      onEvent: (e) => {
        events.push(e);
        // The request left late once (the server's check clock is a minute ahead); after the
        // re-sync the retry must still sign with this machine's clock.
        if (e.type === 'retry') h.resetFaults();
      },
    });
    await gw.loadMarkets();
    const c = gw.client as unknown as { options: { timeDifference?: number } };
    const before = c.options.timeDifference ?? 0;
    h.sim.faults.skewServerClock(120_000);
    expect(await gw.fetchOpenOrders('BTC/USDT')).toEqual([]);
    expect(events.map((e) => e.type)).toEqual(['clock-skew-ignored', 'retry']);
    const ignored = events[0] as Extract<GatewayEvent, { type: 'clock-skew-ignored' }>;
    expect(ignored.differenceMs).toBeGreaterThan(30 * 24 * 3_600_000); // the replay is in 2024
    expect(c.options.timeDifference ?? 0).toBe(before);
  });

  it('a re-sent signal (same bot + signal key) after a restart lands on the order already placed', async () => {
    const first = await h.gateway().createOrder(buy('restart'));
    const second = await h.gateway().createOrder(buy('restart')); // a fresh process: new client, same id
    expect(second).toMatchObject({ kind: 'placed', via: 'lookup' });
    expect(first.kind === 'placed' && second.kind === 'placed' && second.order.venueOrderId).toBe(
      first.kind === 'placed' ? first.order.venueOrderId : '',
    );
    expect(onSim(buy('restart').id)).toHaveLength(1);
  });

  it('zero duplicates across 24 orders under a seeded mix of timeouts, 5xx bursts and 429s', async () => {
    const gw = h.gateway({ ccxt: { timeout: 250 }, lookupDelayMs: 400 });
    await gw.loadMarkets();
    const rng = new SeededRng(77);
    const outcomes: string[] = [];
    for (let i = 0; i < 24; i++) {
      const f = Math.floor(rng.next() * 5);
      if (f === 1) h.sim.faults.holdHttpResponses({ path: '/api/v3/order', method: 'POST', count: 1, execute: true });
      if (f === 2)
        h.sim.faults.holdHttpResponses({
          path: '/api/v3/order',
          method: 'POST',
          count: 1,
          ms: 300,
          execute: rng.next() < 0.5,
        });
      if (f === 3)
        h.sim.faults.httpErrorBurst({
          path: '/api/v3/order',
          count: 1 + Math.floor(rng.next() * 3),
          status: rng.next() < 0.5 ? 502 : 503,
        });
      if (f === 4 && i % 3 === 0) {
        h.nearMinuteEnd();
        h.sim.faults.rateLimitStorm({ count: 1 + Math.floor(rng.next() * 2) });
      }
      const r = await gw.createOrder(buy(`mix-${i}`, { price: 90 + i * 0.1, amount: 0.02 }));
      outcomes.push(r.kind);
      h.resetFaults();
    }
    // Held requests (f=2) land late: give them time before counting.
    await new Promise((r) => setTimeout(r, 400));
    for (let i = 0; i < 24; i++) {
      const n = onSim(buy(`mix-${i}`).id).length;
      expect(n, `order mix-${i} (${outcomes[i]})`).toBeLessThanOrEqual(1);
      if (outcomes[i] === 'placed') expect(n).toBe(1);
    }
    expect(outcomes.filter((k) => k === 'placed').length).toBeGreaterThanOrEqual(22);
    const ids = h.sim.getOrders(KEY.apiKey).map((o) => o.clientOrderId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every((id) => id.startsWith('kintbot-'))).toBe(true);
  });
});
