import type { OrderRequest } from '@keel/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GatewayEvent } from '../src/index.ts';
import { testOrderId } from './helpers.ts';
import { FAST, KEY, type SimHarness, simHarness } from './sim-harness.ts';

// Native OCO order lists through the gateway: the REAL ccxt client against the simulator.
// Oracle: the simulator's own records. The clock is at bar 10's open (110); bar 10 then goes to
// 108, 112 and closes at 111.
describe('ExchangeGateway.createOco (real ccxt, loopback)', () => {
  let h: SimHarness;
  beforeEach(async () => {
    h = await simHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const tp = (key: string, extra: Partial<OrderRequest> = {}): OrderRequest =>
    ({
      id: testOrderId('oco-bot', `${key}-tp`),
      symbol: 'BTC/USDT',
      side: 'sell',
      type: 'limit',
      price: 115.004,
      amount: 6.0004,
      timeInForce: 'GTC',
      reduceOnly: true,
      ...extra,
    }) as OrderRequest;
  const sl = (key: string, extra: Partial<OrderRequest> = {}): OrderRequest =>
    ({
      id: testOrderId('oco-bot', `${key}-sl`),
      symbol: 'BTC/USDT',
      side: 'sell',
      type: 'stop-market',
      stopPrice: 105,
      amount: 6.0004,
      timeInForce: 'GTC',
      reduceOnly: true,
      ...extra,
    }) as OrderRequest;
  const onSim = (id: string) => h.sim.getOrders(KEY.apiKey).filter((o) => o.clientOrderId === id);

  it('places both exits as one list, rounded; 6 of 10 BTC locked once (two separate sells could not be)', async () => {
    const gw = h.gateway(FAST);
    const r = await gw.createOco(tp('a'), sl('a'));
    expect(r).toMatchObject({ kind: 'placed', via: 'response', sends: 1 });
    expect(r.orders?.map((o) => o.clientOrderId)).toEqual([tp('a').id, sl('a').id]); // the caller's order
    expect(onSim(tp('a').id)[0]).toMatchObject({ type: 'LIMIT_MAKER', price: 115, origQty: 6, status: 'NEW' });
    expect(onSim(sl('a').id)[0]).toMatchObject({ type: 'STOP_LOSS', stopPrice: 105, origQty: 6, status: 'NEW' });
    expect((await gw.fetchBalance()).find((b) => b.asset === 'BTC')).toMatchObject({ free: 4, used: 6 });
    // The other 4 BTC as two separate exits: the second cannot lock them again.
    expect((await gw.createOrder(tp('b', { amount: 4 }))).kind).toBe('placed');
    expect(await gw.createOrder(sl('b', { amount: 4 }))).toMatchObject({
      kind: 'rejected',
      error: { code: 'InsufficientFunds' },
    });
  });

  it('a stop-limit leg becomes STOP_LOSS_LIMIT; pairs that are not one limit + one stop are refused unsent', async () => {
    const gw = h.gateway(FAST);
    const r = await gw.createOco(tp('c'), sl('c', { type: 'stop-limit', price: 104 } as Partial<OrderRequest>));
    expect(r.kind).toBe('placed');
    expect(onSim(sl('c').id)[0]).toMatchObject({ type: 'STOP_LOSS_LIMIT', stopPrice: 105, price: 104 });
    expect(await gw.createOco(tp('d'), tp('e'))).toMatchObject({ kind: 'rejected', rule: 'oco-shape', sends: 0 });
    expect(await gw.createOco(tp('f'), sl('f', { amount: 1 }))).toMatchObject({ kind: 'rejected', rule: 'oco-shape' });
    expect(onSim(tp('d').id)).toHaveLength(0);
  });

  it('lost acknowledgement: the list landed, found by the legs’ client ids, never sent twice', async () => {
    const events: GatewayEvent[] = [];
    const gw = h.gateway({ ...FAST, ccxt: { timeout: 300 }, onEvent: (e) => events.push(e) });
    await gw.loadMarkets();
    h.sim.faults.holdHttpResponses({ path: '/api/v3/orderList/oco', method: 'POST', count: 1, execute: true });
    const r = await gw.createOco(tp('g'), sl('g'));
    expect(r).toMatchObject({ kind: 'placed', via: 'lookup', sends: 1 });
    expect(r.orders?.map((o) => o.clientOrderId)).toEqual([tp('g').id, sl('g').id]);
    expect(events.map((e) => e.type)).toEqual(['create-in-doubt', 'lookup']);
    expect(onSim(tp('g').id)).toHaveLength(1);
    expect(onSim(sl('g').id)).toHaveLength(1);
  });

  it('request lost before execution: resent with the same ids, one list', async () => {
    const gw = h.gateway({ ...FAST, ccxt: { timeout: 300 } });
    await gw.loadMarkets();
    h.sim.faults.holdHttpResponses({ path: '/api/v3/orderList/oco', method: 'POST', count: 1 });
    const r = await gw.createOco(tp('h'), sl('h'));
    expect(r).toMatchObject({ kind: 'placed', via: 'response', sends: 2 });
    expect(onSim(tp('h').id)).toHaveLength(1);
    expect(onSim(sl('h').id)).toHaveLength(1);
  });
});
