import { createServer } from 'node:net';
import type { FailureKind } from '@keel/core';
import { ccxtConfigFor } from '@keel/exchange-sim';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type CcxtClient, createCcxtClient, failureKind, type GatewayEvent } from '../src/index.ts';
import { testOrderId } from './helpers.ts';
import { KEY, limitBuy, type SimHarness, simHarness } from './sim-harness.ts';

// Each failure kind as the exchange simulator produces it, through the REAL ccxt binance client
// over loopback: ccxt turns the simulator's Binance-shaped answer into its error, and the one
// classifier gives the kind docs/exchange.md says. Then what the gateway does with a create that
// meets it: only a lost response is looked up; a refusal is never resent. Oracle: the table, and
// the simulator's own order records.

/** A port on loopback with nothing listening: a connection to it is refused before anything is sent. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('failure kinds from the exchange simulator (real ccxt, loopback)', () => {
  let h: SimHarness;
  let raw: CcxtClient;
  beforeEach(async () => {
    h = await simHarness();
    raw = h.client({ timeout: 700 });
    await raw.loadMarkets();
  });
  afterEach(async () => {
    await h.close();
  });

  const kindOf = (p: Promise<unknown>): Promise<FailureKind | 'no error'> =>
    p.then(
      () => 'no error' as const,
      (e: unknown) => failureKind(e),
    );
  const create = (c: CcxtClient, id: string) =>
    c.createOrder('BTC/USDT', 'limit', 'buy', 0.01, 100, { clientOrderId: testOrderId('kinds', id) });

  it('transient: a refused connection, and Binance -1008 "server busy"', async () => {
    const port = await closedPort();
    const nowhere = createCcxtClient(
      'binance',
      ccxtConfigFor({ httpUrl: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}` }, KEY, { timeout: 700 }),
    );
    try {
      expect(await kindOf(nowhere.fetchTime())).toBe('transient');
    } finally {
      await nowhere.close();
    }
    h.sim.faults.rejectNextOrder({
      code: -1008,
      msg: 'Server is currently overloaded with other requests. Please try again in a few minutes.',
    });
    expect(await kindOf(create(raw, 'busy'))).toBe('transient');
  });

  it('rate-limited: a 429 storm (-1003)', async () => {
    h.nearMinuteEnd();
    h.sim.faults.rateLimitStorm({ count: 1 });
    expect(await kindOf(raw.fetchOpenOrders('BTC/USDT'))).toBe('rate-limited');
  });

  it('in doubt: a response that never comes, a 503 page, a 503 with -1001, Binance -1007', async () => {
    h.sim.faults.holdHttpResponses({ path: '/api/v3/openOrders', count: 1 });
    expect(await kindOf(raw.fetchOpenOrders('BTC/USDT'))).toBe('in-doubt');
    h.sim.faults.httpErrorBurst({ path: '/api/v3/openOrders', count: 1, status: 503 });
    expect(await kindOf(raw.fetchOpenOrders('BTC/USDT'))).toBe('in-doubt');
    h.sim.faults.httpErrorBurst({ path: '/api/v3/openOrders', count: 1, status: 503, body: 'json' });
    expect(await kindOf(raw.fetchOpenOrders('BTC/USDT'))).toBe('in-doubt');
    h.sim.faults.rejectNextOrder({
      code: -1007,
      msg: 'Timeout waiting for response from backend server. Send status unknown; execution status unknown.',
    });
    expect(await kindOf(create(raw, 'timeout'))).toBe('in-doubt');
  });

  it('rejected: a filter failure, insufficient funds, a refusal (-2010), a stale timestamp (-1021)', async () => {
    expect(
      await kindOf(
        raw.createOrder('BTC/USDT', 'limit', 'buy', 0.0015, 100, { clientOrderId: testOrderId('k', 'lot') }),
      ),
    ).toBe('rejected');
    expect(await kindOf(raw.createOrder('BTC/USDT', 'limit', 'buy', 5_000, 100))).toBe('rejected');
    h.sim.faults.rejectNextOrder();
    expect(await kindOf(create(raw, 'refused'))).toBe('rejected');
    h.sim.faults.skewServerClock(120_000);
    expect(await kindOf(raw.fetchOpenOrders('BTC/USDT'))).toBe('rejected');
  });

  it('not-found: an unknown order (-2013), a cancel of one (-2011), an unknown market', async () => {
    const id = testOrderId('kinds', 'never');
    expect(await kindOf(raw.fetchOrder(id, 'BTC/USDT', { origClientOrderId: id }))).toBe('not-found');
    expect(await kindOf(raw.cancelOrder(id, 'BTC/USDT', { origClientOrderId: id }))).toBe('not-found');
    expect(await kindOf(raw.fetchOHLCV('DOGE/USDT', '1m'))).toBe('not-found');
  });

  it('auth: an unknown key (-2015), a wrong secret (-1022), no key where one is needed', async () => {
    const unknown = h.client({ apiKey: 'nobody', secret: 'x' });
    const wrong = h.client({ apiKey: KEY.apiKey, secret: 'not-the-secret' });
    const none = h.client({ apiKey: undefined, secret: undefined });
    expect(await kindOf(unknown.fetchBalance())).toBe('auth');
    expect(await kindOf(wrong.fetchBalance())).toBe('auth');
    expect(await kindOf(none.fetchBalance())).toBe('auth');
  });
});

describe('what a create does with each kind (gateway, real ccxt, loopback)', () => {
  let h: SimHarness;
  beforeEach(async () => {
    h = await simHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const buy = (key: string) => limitBuy('create-kinds', key, 100, 0.01);
  const onSim = (id: string) => h.sim.getOrders(KEY.apiKey).filter((o) => o.clientOrderId === id);
  const setup = async () => {
    const events: GatewayEvent[] = [];
    const gw = h.gateway({ onEvent: (e) => events.push(e) });
    await gw.loadMarkets();
    return { gw, types: () => events.map((e) => e.type) };
  };

  it('transient (-1008): resent with the same id at once, no lookup; one order', async () => {
    const { gw, types } = await setup();
    h.sim.faults.rejectNextOrder({ code: -1008, msg: 'Server is currently overloaded with other requests.' });
    expect(await gw.createOrder(buy('busy'))).toMatchObject({ kind: 'placed', via: 'response', sends: 2 });
    expect(types()).toEqual(['resend']);
    expect(onSim(buy('busy').id)).toHaveLength(1);
  });

  it('rate-limited (429): resent after Retry-After, no lookup; one order', async () => {
    const { gw, types } = await setup();
    h.nearMinuteEnd();
    h.sim.faults.rateLimitStorm({ count: 1 });
    expect(await gw.createOrder(buy('storm'))).toMatchObject({ kind: 'placed', via: 'response', sends: 2 });
    // The 429 is for the IP's weight (-1003): every class of the gateway pauses, said once.
    expect(types()).toEqual(['ip-limited', 'resend']);
    expect(onSim(buy('storm').id)).toHaveLength(1);
  });

  it('in doubt (-1007, not executed): looked up by client id, not found, resent; one order', async () => {
    const { gw, types } = await setup();
    h.sim.faults.rejectNextOrder({ code: -1007, msg: 'Timeout waiting for response from backend server.' });
    expect(await gw.createOrder(buy('lost'))).toMatchObject({ kind: 'placed', via: 'response', sends: 2 });
    expect(types()).toEqual(['create-in-doubt', 'lookup', 'resend']);
    expect(onSim(buy('lost').id)).toHaveLength(1);
  });

  it('in doubt (the response lost, the order placed): found by the lookup, never resent', async () => {
    const { gw, types } = await setup();
    h.sim.faults.holdHttpResponses({ path: '/api/v3/order', method: 'POST', count: 1, execute: true });
    expect(await gw.createOrder(buy('held'))).toMatchObject({ kind: 'placed', via: 'lookup', sends: 1 });
    expect(types()).toEqual(['create-in-doubt', 'lookup']);
    expect(onSim(buy('held').id)).toHaveLength(1);
  });

  it('rejected (-2010): final, sent once, never looked up', async () => {
    const { gw, types } = await setup();
    h.sim.faults.rejectNextOrder();
    expect(await gw.createOrder(buy('no'))).toMatchObject({
      kind: 'rejected',
      sends: 1,
      error: { kind: 'rejected', code: 'InvalidOrder' },
    });
    expect(types()).toEqual([]);
    expect(onSim(buy('no').id)).toEqual([]);
  });

  it('auth (a wrong secret): thrown, sent once, never looked up', async () => {
    const events: GatewayEvent[] = [];
    const gw = h.gateway({ ccxt: { secret: 'not-the-secret' }, onEvent: (e) => events.push(e) });
    await gw.loadMarkets();
    await expect(gw.createOrder(buy('keys'))).rejects.toMatchObject({ kind: 'auth' });
    expect(gw.sends.get(buy('keys').id)).toBe(1);
    expect(events).toEqual([]);
  });
});
