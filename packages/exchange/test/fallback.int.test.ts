import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type BalanceRow,
  type ExchangeGateway,
  type GatewayEvent,
  KeelExchangeError,
  StreamCache,
} from '../src/index.ts';
import { testOrderId } from './helpers.ts';
import { limitBuy as buy, eventually, KEY, type SimHarness, simHarness } from './sim-harness.ts';

// REST failing, WebSocket up: reads are answered from what the streams said, and say so; with the
// stream down or stale they fail with a clear error. The real ccxt.pro client against the exchange
// simulator over loopback; oracle: the simulator's own balances and orders.
describe('REST falling back to WebSocket-cached data (real ccxt, exchange simulator)', () => {
  let h: SimHarness;
  let gw: ExchangeGateway;
  let cache: StreamCache;
  const events: GatewayEvent[] = [];
  beforeEach(async () => {
    h = await simHarness();
    events.length = 0;
  });
  afterEach(async () => {
    await cache?.stop();
    await h.close();
  });

  const start = async (
    maxAgeMs: { balance?: number; orders?: number; ticker?: number } = {},
    reconnect = { baseMs: 50, maxMs: 200 },
  ) => {
    gw = h.gateway({
      retry: { maxAttempts: 2, baseMs: 10, maxMs: 20 },
      breaker: { failureThreshold: 3, openMs: 60_000 },
      onEvent: (e) => void events.push(e),
    });
    await gw.loadMarkets();
    cache = new StreamCache(gw, {
      symbols: ['BTC/USDT'],
      maxAgeMs: { balance: 30_000, orders: 30_000, ticker: 30_000, ...maxAgeMs },
      reconnect,
    });
    cache.start();
    await h.sim.waitForSubscription(`user:${KEY.apiKey}`);
    await eventually(
      () => Object.values(cache.status()).every((s) => s.connected),
      5_000,
      'the user-stream subscriptions',
    );
  };
  const limitBuy = (key: string, price: number, amount = 0.05) => buy('fb', key, price, amount);
  const simBalances = (): BalanceRow[] =>
    Object.entries(h.sim.getBalances(KEY.apiKey))
      .map(([asset, b]) => ({ asset, free: b.free, used: b.locked, total: b.free + b.locked }))
      .filter((r) => r.total !== 0)
      .sort((a, b) => (a.asset < b.asset ? -1 : 1));
  const breakRest = () => h.sim.faults.httpErrorBurst({ path: '/api/v3/', count: 10_000, status: 503 });
  const refusal = async (p: Promise<unknown>, reason: RegExp) => {
    const e = await p.then(
      () => expect.fail('expected the read to fail'),
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(KeelExchangeError);
    expect((e as KeelExchangeError).kind).toBe('transient');
    expect((e as Error).message).toMatch(/failed \(.*\) and the WebSocket cache cannot stand in: /);
    expect((e as Error).message).toMatch(reason);
  };

  it('breaker open: balance, order and open orders come from the user stream, say so, and match the exchange', async () => {
    await start();
    const resting = limitBuy('rest', 90);
    const filling = limitBuy('fill', 109); // bar 10 trades down to 108
    expect((await gw.createOrder(resting)).kind).toBe('placed');
    expect((await gw.createOrder(filling)).kind).toBe('placed');
    // REST confirms balance and open orders while the stream is up: the cache's anchors.
    expect((await gw.readBalance()).source).toBe('rest');
    expect((await gw.readOpenOrders('BTC/USDT')).value.length).toBe(2);

    breakRest();
    // The market moves while REST is down: `filling` fills; only the user stream can tell.
    h.sim.tick(4);
    await eventually(() => cache.seen(filling.id)?.status === 'filled', 5_000, 'the fill on the user stream');
    await eventually(
      () => {
        const b = cache.balance();
        return b.ok && b.value.find((r) => r.asset === 'BTC')?.total !== 10;
      },
      5_000,
      'the balance update on the user stream',
    );

    const bal = await gw.readBalance();
    expect(bal.source).toBe('stream');
    expect(bal.restError?.code).toMatch(/ExchangeNotAvailable|CircuitOpen/);
    expect(bal.value).toEqual(simBalances());

    const ord = await gw.readOrder(filling.id, 'BTC/USDT');
    expect(ord.source).toBe('stream');
    expect(gw.breakers.queries.state).toBe('open');
    const simOrder = h.sim.getOrders(KEY.apiKey).find((o) => o.clientOrderId === filling.id)!;
    expect(ord.value).toMatchObject({ clientOrderId: filling.id, status: 'filled', filled: simOrder.executedQty });

    const open = await gw.readOpenOrders('BTC/USDT');
    expect(open.source).toBe('stream');
    expect(open.restError?.code).toBe('CircuitOpen');
    expect(open.value.map((o) => o.clientOrderId)).toEqual([resting.id]);

    const served = events
      .filter((e) => e.type === 'served-from-cache')
      .map((e) => e.type === 'served-from-cache' && e.what);
    expect(served).toEqual(['balance', 'order', 'open-orders']);

    // Never "does not exist" on the cache's word: an id it has not seen is an error, not null.
    await refusal(
      gw.readOrder(testOrderId('fb', 'never'), 'BTC/USDT'),
      /there is no REST answer for order k.* \(nor its creation on the stream\) since the user stream \(orders BTC\/USDT\)/,
    );
  });

  it('the user stream down, or back but not re-confirmed by REST: reads fail with a clear error', async () => {
    await start({}, { baseMs: 2_000, maxMs: 2_000 }); // slow reconnects: the "down" state lasts long enough to read
    const o = limitBuy('drop', 90);
    expect((await gw.createOrder(o)).kind).toBe('placed');
    await gw.readBalance();
    breakRest();
    expect((await gw.readBalance()).source).toBe('stream');

    h.sim.faults.dropWebSockets({ kind: 'api' });
    await eventually(() => !cache.status()['user stream (balance)']?.connected, 5_000, 'the drop to be noticed');
    await refusal(gw.readBalance(), /user stream \(balance\) is not connected \(dropped at .*Z: /);
    await eventually(() => cache.status()['user stream (balance)']?.connected === true, 10_000, 'the reconnect');
    await eventually(() => cache.status()['user stream (orders BTC/USDT)']?.connected === true, 10_000, 'orders');
    // Back, but anything may have changed during the gap: not served until REST confirms again.
    await refusal(gw.readBalance(), /there is no REST balance since the user stream \(balance\) \(re\)connected at/);
    await refusal(
      gw.readOrder(o.id, 'BTC/USDT'),
      /\(re\)connected at .*: anything that changed before then may be missing/,
    );
    const refused = events.filter((e) => e.type === 'cache-refused');
    expect(refused.length).toBe(3);
  });

  it('stale: nothing older than maxAge is served; tickers come from the market stream while fresh', async () => {
    await start({ balance: 1_500, ticker: 1_500 });
    h.sim.tick(); // a market-stream ticker
    await eventually(() => cache.ticker('BTC/USDT').ok, 5_000, 'a ticker from the market stream');
    await gw.readBalance();
    breakRest();
    const t = await gw.readTicker('BTC/USDT');
    expect(t.source).toBe('stream');
    expect(t.value.last).toBe(h.sim.price('BTC/USDT'));
    expect((await gw.readBalance()).source).toBe('stream');
    await new Promise((r) => setTimeout(r, 1_700)); // a quiet account and a quiet market
    await refusal(
      gw.readBalance(),
      /cached balance is stale: last confirmed \d+\.\d s ago .*more than the 1\.5 s allowed/,
    );
    await refusal(gw.readTicker('BTC/USDT'), /cached BTC\/USDT ticker is stale/);
  });

  it('an auth error is never masked by the cache; an in-doubt create is proven to exist by the stream, never disproven', async () => {
    await start();
    const o = limitBuy('doubt', 90);
    // The order lands but its response is lost, and REST stays down for the lookup.
    h.sim.faults.holdHttpResponses({ path: '/api/v3/order', method: 'POST', count: 1, execute: true });
    h.sim.faults.httpErrorBurst({ path: '/api/v3/order', method: 'GET', count: 10_000, status: 503 });
    h.sim.faults.httpErrorBurst({ path: '/api/v3/openOrders', method: 'GET', count: 10_000, status: 503 });
    const out = await gw.createOrder(o);
    expect(out).toMatchObject({ kind: 'placed', via: 'stream', sends: 1 });
    expect(h.sim.getOrders(KEY.apiKey).filter((x) => x.clientOrderId === o.id).length).toBe(1);
    // An id the stream never reported: in doubt, not resent.
    const p = limitBuy('doubt2', 90);
    h.sim.faults.holdHttpResponses({ path: '/api/v3/order', method: 'POST', count: 1, execute: false });
    const out2 = await gw.createOrder(p);
    expect(out2.kind).toBe('in-doubt');
    expect(out2.sends).toBe(1);
    h.resetFaults();
    // A wrong secret: the exchange's answer (auth) is thrown as it is, the cache is not even asked.
    const otherEvents: GatewayEvent[] = [];
    const other = h.gateway({ ccxt: { secret: 'not-the-secret' }, onEvent: (e) => void otherEvents.push(e) });
    const otherCache = new StreamCache(other, { symbols: ['BTC/USDT'] });
    await expect(other.readBalance()).rejects.toMatchObject({ kind: 'auth' });
    expect(otherEvents.filter((e) => e.type === 'served-from-cache' || e.type === 'cache-refused')).toEqual([]);
    await otherCache.stop();
  });
});
