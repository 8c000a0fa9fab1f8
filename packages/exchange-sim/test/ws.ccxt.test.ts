import type { OHLCV, Trade } from 'ccxt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type Harness, harness, KEY, MIN, stairBars, T0, watchUntil } from './helpers.ts';

// ccxt.pro binance over real WebSockets; the sim is stepped by hand so every update is known.
describe('ccxt.pro binance WebSockets against the sim', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await harness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('watchOHLCV: x=false updates while the bar forms, then the closed bar equals the data bar', async () => {
    const pro = h.pro();
    const first = pro.watchOHLCV('BTC/USDT', '1m');
    await h.sim.waitForSubscription('btcusdt@kline_1m');
    h.sim.tick(); // to the low
    expect((await first).at(-1)).toEqual([T0 + 10 * MIN, 110, 110, 108, 108, 50]);
    const seen: OHLCV[] = [];
    await watchUntil(
      () => pro.watchOHLCV('BTC/USDT', '1m'),
      (candles) => {
        seen.push(...candles);
        return seen.some((c) => c[0] === T0 + 11 * MIN);
      },
      { kick: () => void h.sim.step() },
    );
    const bar = stairBars()[10]!;
    const closed = seen.filter((c) => c[0] === T0 + 10 * MIN).at(-1);
    expect(closed).toEqual([bar.time, bar.open, bar.high, bar.low, bar.close, bar.volume]);
  });

  it('watchOHLCV on a wider timeframe aggregates the base bars', async () => {
    const pro = h.pro();
    const p = pro.watchOHLCV('BTC/USDT', '5m');
    await h.sim.waitForSubscription('btcusdt@kline_5m');
    h.sim.tick();
    const c = (await p).at(-1)!;
    expect(c[0]).toBe(T0 + 10 * MIN);
    expect(c[3]).toBe(108);
  });

  it('watchTrades: one trade per price-path tick with a quarter of the bar volume', async () => {
    const pro = h.pro();
    const p = pro.watchTrades('BTC/USDT');
    await h.sim.waitForSubscription('btcusdt@trade');
    h.sim.tick();
    const trades = await p;
    expect(trades.at(-1)).toMatchObject({
      symbol: 'BTC/USDT',
      price: 108,
      amount: 25,
      timestamp: T0 + 10 * MIN + 15_000,
    });
  });

  it('watchOrderBook: snapshot over REST plus depth diffs stay in sync with /api/v3/depth', async () => {
    const pro = h.pro();
    const p = pro.watchOrderBook('BTC/USDT');
    await h.sim.waitForSubscription('btcusdt@depth@100ms');
    await new Promise((r) => setTimeout(r, 200)); // let ccxt fetch its REST snapshot
    h.sim.tick();
    const ob = await p;
    const rest = await h.ex.fetchOrderBook('BTC/USDT', 20);
    expect(ob.bids.slice(0, 20)).toEqual(rest.bids);
    expect(ob.asks.slice(0, 20)).toEqual(rest.asks);
    expect(ob.bids[0]).toEqual([108, 0.5]);
  });

  it('watchTicker and watchBidsAsks', async () => {
    const pro = h.pro();
    const t = pro.watchTicker('BTC/USDT');
    const ba = pro.watchBidsAsks(['BTC/USDT']);
    await h.sim.waitForSubscription('btcusdt@miniTicker'); // ccxt 4.5 watchTicker uses the mini ticker
    await h.sim.waitForSubscription('btcusdt@bookTicker');
    h.sim.tick();
    expect(await t).toMatchObject({ symbol: 'BTC/USDT', last: 108 });
    expect((await ba)['BTC/USDT']).toMatchObject({ bid: 108, ask: 108.01 });
  });

  it('watchOrders / watchMyTrades / watchBalance via the WS-API user data stream', async () => {
    const pro = h.pro();
    const orders = pro.watchOrders('BTC/USDT');
    await h.sim.waitForSubscription(`user:${KEY.apiKey}`);
    const placed = await h.ex.createOrder('BTC/USDT', 'limit', 'buy', 0.5, 109, { clientOrderId: 'ws-1' });
    const got = await orders;
    expect(got.at(-1)).toMatchObject({ id: placed.id, clientOrderId: 'ws-1', status: 'open', price: 109, amount: 0.5 });

    const balance = pro.watchBalance();
    const myTrades = pro.watchMyTrades('BTC/USDT');
    const filled = await watchUntil(
      () => pro.watchOrders('BTC/USDT'),
      (os) => os.some((o) => o.id === placed.id && o.status === 'closed'),
      { kick: () => void h.sim.tick() },
    );
    expect(filled.find((o) => o.id === placed.id)).toMatchObject({ filled: 0.5 });
    expect((await myTrades).at(-1)).toMatchObject({
      order: placed.id,
      price: 109,
      amount: 0.5,
      takerOrMaker: 'maker',
      fee: { currency: 'BTC', cost: 0.0005 },
    });
    const b = await balance;
    expect(b.BTC?.free).toBeCloseTo(1.4995, 8);
    expect(b.USDT?.free).toBeCloseTo(10_000 - 54.5, 8);
  });

  it('executionReport says why an order expired: eR for an IOC rest, TRADE_PREVENTION / EXPIRED_IN_MATCH for self-trade prevention', async () => {
    const pro = h.pro();
    const seen: Awaited<ReturnType<typeof pro.watchOrders>> = [];
    await h.ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 100, { clientOrderId: 'resting' });
    await watchUntil(
      async () => {
        seen.push(...(await pro.watchOrders('BTC/USDT')));
        return seen;
      },
      (os) => os.filter((o) => o.status === 'expired').length === 2,
      {
        kick: async () => {
          await h.sim.waitForSubscription(`user:${KEY.apiKey}`);
          await h.ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 100, { timeInForce: 'IOC', clientOrderId: 'ioc' });
          expect(h.sim.faults.expireInMatch(KEY.apiKey, 'resting')).toBe(true);
        },
      },
    );
    expect(
      seen
        .filter((o) => o.status === 'expired')
        .map((o) => [o.clientOrderId, o.info.x, o.info.X, o.info.eR])
        .sort(),
    ).toEqual([
      ['ioc', 'EXPIRED', 'EXPIRED', 'UNFILLED_IOC_QUANTITY_EXPIRED'],
      ['resting', 'TRADE_PREVENTION', 'EXPIRED_IN_MATCH', undefined],
    ]);
    expect(
      await h.ex.fetchOrder(seen.find((o) => o.clientOrderId === 'resting')?.id as string, 'BTC/USDT'),
    ).toMatchObject({
      status: 'expired',
      info: { status: 'EXPIRED_IN_MATCH' },
    });
  });

  it('WebSocket API trading: createOrderWs, fetchOrderWs, fetchOpenOrdersWs, cancelOrderWs, fetchBalanceWs', async () => {
    const pro = h.pro();
    const o = await pro.createOrderWs('BTC/USDT', 'limit', 'buy', 0.3, 101, { clientOrderId: 'wsapi-1' });
    expect(o).toMatchObject({ status: 'open', price: 101, amount: 0.3, clientOrderId: 'wsapi-1' });
    expect((await pro.fetchOrderWs(o.id!, 'BTC/USDT')).status).toBe('open');
    expect((await pro.fetchOpenOrdersWs('BTC/USDT')).map((x) => x.id)).toEqual([o.id]);
    // ccxt 4.5.84 parses account.status without a market type, so spot balances stay in `info`
    // (the same against binance.com); the raw answer is checked.
    const bal = (await pro.fetchBalanceWs()).info as {
      balances: Array<{ asset: string; free: string; locked: string }>;
    };
    expect(bal.balances.find((b) => b.asset === 'USDT')).toEqual({
      asset: 'USDT',
      free: '9969.70000000',
      locked: '30.30000000',
    });
    expect((await pro.cancelOrderWs(o.id!, 'BTC/USDT')).status).toBe('canceled');
    expect(h.sim.getOrders(KEY.apiKey).map((x) => x.status)).toEqual(['CANCELED']);
  });

  it("fetchTradesWs (WS API trades.historical): the same tape as REST trades, in Binance's shape", async () => {
    h.sim.step(3); // to bar 13's open: one public trade per price-path tick
    const pro = h.pro();
    const ws = await pro.fetchTradesWs('BTC/USDT', undefined, 5);
    // Oracle: the REST tape (GET /api/v3/trades) parsed by the same ccxt client.
    await h.ex.loadMarkets();
    const rest = h.ex.parseTrades(
      (await h.ex.publicGetTrades({ symbol: 'BTCUSDT', limit: 5 })) as unknown[],
      h.ex.market('BTC/USDT'),
    );
    const key = (t: Trade) => [t.id, t.price, t.amount, t.timestamp, t.side];
    expect(ws).toHaveLength(5);
    expect(ws.map(key)).toEqual(rest.map(key));
    expect(ws.at(-1)).toMatchObject({ price: 113, amount: 25, timestamp: T0 + 13 * MIN }); // bar 13's open
    // fromId pages forward from a trade id, as Binance's historicalTrades does.
    const firstId = Number(ws[0]?.id);
    const from = await pro.fetchTradesWs('BTC/USDT', undefined, 2, { fromId: firstId + 1 });
    expect(from.map((t) => Number(t.id))).toEqual([firstId + 1, firstId + 2]);
    // REST historicalTrades serves the same page (ccxt: options.fetchTradesMethod).
    const restPage = (await h.ex.publicGetHistoricalTrades({
      symbol: 'BTCUSDT',
      fromId: firstId + 1,
      limit: 2,
    })) as Array<{
      id: number;
    }>;
    expect(restPage.map((t) => t.id)).toEqual([firstId + 1, firstId + 2]);
  });

  it('raw clients: combined /stream wrapping, LIST_SUBSCRIPTIONS, and a listenKey user stream', async () => {
    const res = await fetch(`${h.sim.httpUrl}/api/v3/userDataStream`, {
      method: 'POST',
      headers: { 'X-MBX-APIKEY': KEY.apiKey },
    });
    const { listenKey } = (await res.json()) as { listenKey: string };
    const combined = new WebSocket(`${h.sim.wsUrl}/stream?streams=btcusdt@trade`);
    const user = new WebSocket(`${h.sim.wsUrl}/ws/${listenKey}`);
    try {
      await Promise.all([combined, user].map((w) => new Promise((r) => w.once('open', r))));
      const list = new Promise<unknown>((r) => combined.once('message', (d) => r(JSON.parse(d.toString()))));
      combined.send(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: 7 }));
      expect(await list).toEqual({ result: ['btcusdt@trade'], id: 7 });
      const msg = new Promise<{ stream: string; data: { e: string; p: string } }>((r) =>
        combined.once('message', (d) => r(JSON.parse(d.toString()))),
      );
      const report = new Promise<{ e: string; x: string }>((r) =>
        user.once('message', (d) => r(JSON.parse(d.toString()))),
      );
      h.sim.tick();
      expect(await msg).toMatchObject({ stream: 'btcusdt@trade', data: { e: 'trade', p: '108.00000000' } });
      await h.ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 100);
      expect(await report).toMatchObject({ e: 'executionReport', x: 'NEW' });
    } finally {
      combined.terminate();
      user.terminate();
    }
  });
});
