import ccxt, { type Trade } from 'ccxt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Harness, harness, KEY, rejectionOf, within } from './helpers.ts';

// Each fault is checked from the client's side: what ccxt throws or what it receives.
describe('sim.faults, observed through ccxt', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.close();
  });

  async function watchingTrades(): Promise<{
    pro: ReturnType<Harness['pro']>;
    next: Promise<Trade[]>;
  }> {
    const pro = h.pro();
    const next = pro.watchTrades('BTC/USDT');
    await h.sim.waitForSubscription('btcusdt@trade');
    return { pro, next };
  }

  it('dropWebSockets: the pending watch fails with a NetworkError and the next watch reconnects', async () => {
    const { pro, next } = await watchingTrades();
    next.catch(() => undefined);
    expect(h.sim.faults.dropWebSockets({ kind: 'market' })).toBe(1);
    expect(await rejectionOf(next)).toBeInstanceOf(ccxt.NetworkError);
    const again = pro.watchTrades('BTC/USDT');
    await h.sim.waitForSubscription('btcusdt@trade');
    h.sim.tick();
    expect((await again).at(-1)?.price).toBe(108);
  });

  it('stallWebSockets: the connection stays open but nothing arrives until resumed (updates meanwhile are lost)', async () => {
    const { next } = await watchingTrades();
    h.sim.faults.stallWebSockets({ kind: 'market' });
    h.sim.tick(); // trade at 108, swallowed
    expect(await within(next, 300)).toBe('timeout');
    expect(h.sim.subscriptions()).toContain('btcusdt@trade');
    const raw = new WebSocket(`${h.sim.wsUrl}/ws`);
    await new Promise((r) => raw.once('open', r));
    const pong = new Promise<'pong'>((r) => raw.once('pong', () => r('pong')));
    raw.ping();
    expect(await within(pong, 200)).toBe('timeout'); // pings go unanswered too
    h.sim.faults.resumeWebSockets();
    raw.ping();
    expect(await within(pong, 1000)).toBe('pong');
    raw.terminate();
    h.sim.tick(); // trade at 112
    expect((await next).map((t) => t.price)).toEqual([112]);
  });

  it('delayWsMessages: a message arrives no sooner than the delay', async () => {
    const { next } = await watchingTrades();
    h.sim.faults.delayWsMessages(300, { count: 1 });
    const t0 = Date.now();
    h.sim.tick();
    await next;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
  });

  it('duplicateWsMessages: the same trade id reaches the client twice', async () => {
    const { pro, next } = await watchingTrades();
    h.sim.faults.duplicateWsMessages(1);
    h.sim.tick();
    await next;
    await new Promise((r) => setTimeout(r, 100));
    const ids = (pro.trades['BTC/USDT'] ?? []).map((t: { id?: string }) => t.id);
    expect(ids).toHaveLength(2);
    expect(ids[0]).toBe(ids[1]);
  });

  it('reorderWsMessages: two consecutive trades arrive in reverse order', async () => {
    const { pro, next } = await watchingTrades();
    h.sim.faults.reorderWsMessages(1);
    h.sim.tick(2); // 108 then 112
    await next;
    await new Promise((r) => setTimeout(r, 100));
    const got: Trade[] = pro.trades['BTC/USDT'] ?? [];
    expect(got.map((t) => t.price)).toEqual([112, 108]);
    expect(got[0]?.timestamp as number).toBeGreaterThan(got[1]?.timestamp as number);
  });

  it('httpErrorBurst: N x 503 -> ExchangeNotAvailable, then normal service', async () => {
    h.sim.faults.httpErrorBurst({ path: '/api/v3/time', count: 2, status: 503 });
    expect(await rejectionOf(h.ex.fetchTime())).toBeInstanceOf(ccxt.ExchangeNotAvailable);
    expect(await rejectionOf(h.ex.fetchTime())).toBeInstanceOf(ccxt.ExchangeNotAvailable);
    expect(await h.ex.fetchTime()).toBe(h.sim.now());
    h.sim.faults.httpErrorBurst({ count: 1, status: 504 });
    expect(await rejectionOf(h.ex.fetchTime())).toBeInstanceOf(ccxt.RequestTimeout);
    h.sim.faults.httpErrorBurst({ count: 1, status: 500, body: 'json' }); // Binance's own -1001
    const e = await rejectionOf(h.ex.fetchTime());
    expect(e).toBeInstanceOf(ccxt.OperationFailed);
    expect(e.message).toContain('-1001');
  });

  it('rateLimitStorm: 429 -> DDoSProtection for the next N requests', async () => {
    await h.ex.loadMarkets();
    h.sim.faults.rateLimitStorm({ count: 2 });
    for (let i = 0; i < 2; i++) {
      const e = await rejectionOf(h.ex.fetchTicker('BTC/USDT'));
      expect(e).toBeInstanceOf(ccxt.DDoSProtection);
      expect(e.message).toContain('429');
    }
    expect((await h.ex.fetchTicker('BTC/USDT')).last).toBe(110);
  });

  it('holdHttpResponses: the client times out; an order held with execute:true was placed anyway', async () => {
    const ex = h.rest(KEY, { timeout: 300 });
    await ex.loadMarkets();
    h.sim.faults.holdHttpResponses({ path: '/api/v3/order', method: 'POST', count: 1, execute: true });
    const e = await rejectionOf(ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 100, { clientOrderId: 'lost-ack' }));
    expect(e).toBeInstanceOf(ccxt.RequestTimeout);
    // Retrying with the same client order id cannot double the order.
    const retry = await rejectionOf(
      ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 100, { clientOrderId: 'lost-ack' }),
    );
    expect(retry).toBeInstanceOf(ccxt.InvalidOrder);
    expect(retry.message).toContain('Duplicate order sent.');
    expect((await ex.fetchOrder('', 'BTC/USDT', { origClientOrderId: 'lost-ack' })).status).toBe('open');
    expect(h.sim.getOrders(KEY.apiKey)).toHaveLength(1);
  });

  it('holdHttpResponses with ms: the answer is late but arrives', async () => {
    h.sim.faults.holdHttpResponses({ path: '/api/v3/time', count: 1, ms: 250 });
    const t0 = Date.now();
    expect(await h.ex.fetchTime()).toBe(h.sim.now());
    expect(Date.now() - t0).toBeGreaterThanOrEqual(240);
  });

  it('requestConcurrency: the most requests of a path the simulator had in hand at once', async () => {
    h.sim.faults.holdHttpResponses({ path: '/api/v3/time', count: 3, ms: 200 });
    const before = h.sim.requestCounts()['GET /api/v3/time'] ?? 0;
    const time = () => fetch(`${h.sim.httpUrl}/api/v3/time`).then((r) => r.status);
    // Three asked together, each answered 200 ms later: all three in hand at once.
    expect(await Promise.all([time(), time(), time()])).toEqual([200, 200, 200]);
    // Then one at a time: never more than one in hand, the most stays three.
    expect(await time()).toBe(200);
    expect(await time()).toBe(200);
    expect(h.sim.requestCounts()['GET /api/v3/time']).toBe(before + 5);
    expect(h.sim.requestConcurrency()['GET /api/v3/time']).toBe(3);
    expect(h.sim.requestConcurrency()['GET /api/v3/depth']).toBeUndefined();
  });

  it('rejectNextOrder: the next order fails with the chosen Binance error', async () => {
    h.sim.faults.rejectNextOrder();
    expect(await rejectionOf(h.ex.createOrder('BTC/USDT', 'market', 'buy', 0.1))).toBeInstanceOf(ccxt.InvalidOrder);
    h.sim.faults.rejectNextOrder({ code: -2010, msg: 'Account has insufficient balance for requested action.' });
    expect(await rejectionOf(h.ex.createOrder('BTC/USDT', 'market', 'buy', 0.1))).toBeInstanceOf(
      ccxt.InsufficientFunds,
    );
    expect((await h.ex.createOrder('BTC/USDT', 'market', 'buy', 0.1)).status).toBe('closed');
  });

  it('fillOpenOrdersWhileDisconnected: the user stream drops, the fill is only seen over REST', async () => {
    const pro = h.pro();
    const o = await h.ex.createOrder('BTC/USDT', 'limit', 'buy', 0.2, 100);
    const pending = pro.watchOrders('BTC/USDT');
    pending.catch(() => undefined);
    await h.sim.waitForSubscription(`user:${KEY.apiKey}`);
    expect(h.sim.faults.fillOpenOrdersWhileDisconnected(KEY.apiKey)).toBe(1);
    expect(await rejectionOf(pending)).toBeInstanceOf(ccxt.NetworkError);
    expect(h.sim.subscriptions()).not.toContain(`user:${KEY.apiKey}`);
    expect(await h.ex.fetchOrder(o.id!, 'BTC/USDT')).toMatchObject({ status: 'closed', filled: 0.2, average: 100 });
    expect((await h.ex.fetchBalance()).BTC?.free).toBeCloseTo(1.1998, 8);
  });

  it('skewServerClock: a client clock ahead of the server -> InvalidNonce (-1021)', async () => {
    h.sim.faults.skewServerClock(-5000);
    const e = await rejectionOf(h.ex.fetchBalance());
    expect(e).toBeInstanceOf(ccxt.InvalidNonce);
    expect(e.message).toContain('ahead of the server');
    h.sim.faults.reset();
    await expect(h.ex.fetchBalance()).resolves.toBeDefined();
  });
});
