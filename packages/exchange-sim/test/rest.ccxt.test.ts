import { request } from 'node:http';
import ccxt from 'ccxt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, harness, KEY, MIN, rejectionOf, stairBars, T0 } from './helpers.ts';

// The real ccxt binance client over real HTTP on 127.0.0.1; the oracle for shapes is ccxt's own
// parser (a wrong field shows up as undefined / NaN or a thrown error) and for errors the ccxt
// exception class Binance's code maps to.
describe('ccxt binance REST against the sim', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });
  afterAll(async () => {
    await h.close();
  });

  it('loadMarkets: one spot market with tick/step/min filters; only /api/v3/exchangeInfo is called', async () => {
    const markets = await h.ex.loadMarkets();
    expect(Object.keys(markets)).toEqual(['BTC/USDT']);
    const m = markets['BTC/USDT']!;
    expect(m).toMatchObject({ id: 'BTCUSDT', spot: true, active: true, base: 'BTC', quote: 'USDT' });
    expect(m.precision).toMatchObject({ price: 0.01, amount: 0.001 });
    expect(m.limits.amount?.min).toBe(0.001);
    expect(m.limits.cost?.min).toBe(1);
  });

  it('fetchTime is the replay clock', async () => {
    expect(await h.ex.fetchTime()).toBe(h.sim.now());
    expect(h.sim.now()).toBe(T0 + 10 * MIN);
  });

  it('fetchOHLCV returns history up to the clock, the last candle being the open one', async () => {
    const c = await h.ex.fetchOHLCV('BTC/USDT', '1m', undefined, 3);
    expect(c).toEqual([
      [T0 + 8 * MIN, 108, 110, 106, 109, 100],
      [T0 + 9 * MIN, 109, 111, 107, 110, 100],
      [T0 + 10 * MIN, 110, 110, 110, 110, 25], // only its opening tick so far
    ]);
    const since = await h.ex.fetchOHLCV('BTC/USDT', '5m', T0, 2);
    expect(since).toEqual([
      [T0, 100, 106, 98, 105, 500],
      [T0 + 5 * MIN, 105, 111, 103, 110, 500],
    ]);
  });

  it('fetchOHLCV since a time inside a candle: the candles that open at or after it, as many as asked', async () => {
    // Binance selects klines by open time: the candle holding `since` opened before it and is not
    // returned, so ccxt (which drops rows before `since`) still gets `limit` rows.
    const c = await h.ex.fetchOHLCV('BTC/USDT', '1m', T0 + 3 * MIN + 30_000, 4);
    expect(c.map((r) => r[0])).toEqual([T0 + 4 * MIN, T0 + 5 * MIN, T0 + 6 * MIN, T0 + 7 * MIN]);
    expect(c[0]).toEqual([T0 + 4 * MIN, 104, 106, 102, 105, 100]);
    expect(await h.ex.fetchOHLCV('BTC/USDT', '5m', T0 + 1, 1)).toEqual([[T0 + 5 * MIN, 105, 111, 103, 110, 500]]);
  });

  it('fetchOHLCV until (endTime): candles that open at or before it, the newest `limit` of them', async () => {
    const at = await h.ex.fetchOHLCV('BTC/USDT', '1m', undefined, 3, { until: T0 + 5 * MIN });
    expect(at.map((r) => r[0])).toEqual([T0 + 3 * MIN, T0 + 4 * MIN, T0 + 5 * MIN]);
    const inside = await h.ex.fetchOHLCV('BTC/USDT', '1m', undefined, 2, { until: T0 + 5 * MIN + 59_999 });
    expect(inside.map((r) => r[0])).toEqual([T0 + 4 * MIN, T0 + 5 * MIN]);
    const both = await h.ex.fetchOHLCV('BTC/USDT', '1m', T0 + 2 * MIN, 10, { until: T0 + 4 * MIN });
    expect(both.map((r) => r[0])).toEqual([T0 + 2 * MIN, T0 + 3 * MIN, T0 + 4 * MIN]);
  });

  it('fetchOHLCV over a gap in the data still returns `limit` candles (missing bars are skipped)', async () => {
    const gapped = await harness({
      markets: [{ symbol: 'BTC/USDT', bars: stairBars().filter((_, i) => i !== 7 && i !== 8), stepSize: 0.001 }],
    });
    try {
      const c = await gapped.ex.fetchOHLCV('BTC/USDT', '1m', undefined, 5);
      expect(c.map((r) => r[0])).toEqual([T0 + 4 * MIN, T0 + 5 * MIN, T0 + 6 * MIN, T0 + 9 * MIN, T0 + 10 * MIN]);
    } finally {
      await gapped.close();
    }
  });

  it('fetchTicker, fetchOrderBook, fetchTrades', async () => {
    const t = await h.ex.fetchTicker('BTC/USDT');
    expect(t).toMatchObject({ symbol: 'BTC/USDT', last: 110, bid: 110, ask: 110.01 });
    const ob = await h.ex.fetchOrderBook('BTC/USDT', 5);
    expect(ob.bids[0]).toEqual([110, 0.5]);
    expect(ob.asks[0]).toEqual([110.01, 0.5]);
    expect(ob.bids).toHaveLength(5);
    expect(typeof ob.nonce).toBe('number');
    expect(Array.isArray(await h.ex.fetchTrades('BTC/USDT'))).toBe(true);
  });

  it('fetchBalance', async () => {
    const b = await h.ex.fetchBalance();
    expect(b.USDT).toEqual({ free: 10_000, used: 0, total: 10_000 });
    expect(b.BTC).toEqual({ free: 1, used: 0, total: 1 });
  });

  it('createOrder market with clientOrderId: filled, fee in base, visible in fetchMyTrades', async () => {
    const o = await h.ex.createOrder('BTC/USDT', 'market', 'buy', 0.4, undefined, { clientOrderId: 'mkt-1' });
    expect(o).toMatchObject({ status: 'closed', filled: 0.4, clientOrderId: 'mkt-1', side: 'buy', type: 'market' });
    expect(o.average).toBeCloseTo(110.01, 8);
    expect(o.fee).toEqual({ currency: 'BTC', cost: 0.0004 });
    const trades = await h.ex.fetchMyTrades('BTC/USDT');
    expect(trades.at(-1)).toMatchObject({
      order: o.id,
      price: 110.01,
      amount: 0.4,
      takerOrMaker: 'taker',
      fee: { currency: 'BTC', cost: 0.0004 },
    });
  });

  it('createOrder limit, fetchOrder by id and by clientOrderId, fetchOpenOrders, cancelOrder', async () => {
    const o = await h.ex.createOrder('BTC/USDT', 'limit', 'buy', 1, 105, { clientOrderId: 'lim-1' });
    expect(o).toMatchObject({ status: 'open', price: 105, amount: 1, filled: 0, clientOrderId: 'lim-1' });
    expect((await h.ex.fetchOrder(o.id!, 'BTC/USDT')).status).toBe('open');
    expect((await h.ex.fetchOrder('', 'BTC/USDT', { origClientOrderId: 'lim-1' })).id).toBe(o.id);
    expect((await h.ex.fetchOpenOrders('BTC/USDT')).map((x) => x.id)).toEqual([o.id]);
    expect((await h.ex.fetchBalance()).USDT?.used).toBe(105);
    const c = await h.ex.cancelOrder(o.id!, 'BTC/USDT');
    expect(c.status).toBe('canceled');
    expect(await h.ex.fetchOpenOrders('BTC/USDT')).toEqual([]);
    expect((await h.ex.fetchOrders('BTC/USDT')).map((x) => x.status)).toContain('canceled');
  });

  it('cancelAllOrders cancels every open order of the symbol', async () => {
    await h.ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 90);
    await h.ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 91);
    const canceled = await h.ex.cancelAllOrders('BTC/USDT');
    expect(canceled.map((o) => o.status)).toEqual(['canceled', 'canceled']);
    expect(await h.ex.fetchOpenOrders('BTC/USDT')).toEqual([]);
  });

  it('editOrder (order/cancelReplace): the old order is canceled, the new one placed; a closed one cannot be edited', async () => {
    const o = await h.ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 95);
    const edited = await h.ex.editOrder(o.id!, 'BTC/USDT', 'limit', 'buy', 0.2, 96);
    expect(edited).toMatchObject({ status: 'open', price: 96, amount: 0.2 });
    expect((await h.ex.fetchOrder(o.id!, 'BTC/USDT')).status).toBe('canceled');
    await h.ex.cancelOrder(edited.id!, 'BTC/USDT');
    const e = await rejectionOf(h.ex.editOrder(o.id!, 'BTC/USDT', 'limit', 'buy', 0.2, 97));
    expect(e).toBeInstanceOf(ccxt.ExchangeError);
    expect(e.message).toContain('-2022');
    expect(e.message).toContain('NOT_ATTEMPTED');
  });

  it('fetchTradingFee', async () => {
    expect(await h.ex.fetchTradingFee('BTC/USDT')).toMatchObject({ symbol: 'BTC/USDT', maker: 0.001, taker: 0.001 });
  });

  it('a resting limit order fills when the replay crosses it', async () => {
    const o = await h.ex.createOrder('BTC/USDT', 'limit', 'sell', 0.1, 111.5);
    h.sim.tick(2); // low 108, then high 112
    const f = await h.ex.fetchOrder(o.id!, 'BTC/USDT');
    expect(f).toMatchObject({ status: 'closed', filled: 0.1, price: 111.5 });
  });

  it('maps errors to ccxt classes: duplicate id, insufficient funds, filters, unknown order, bad symbol', async () => {
    await h.ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 100, { clientOrderId: 'dup-1' });
    const dup = await rejectionOf(h.ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 100, { clientOrderId: 'dup-1' }));
    expect(dup).toBeInstanceOf(ccxt.InvalidOrder);
    expect(dup.message).toContain('"code":-2010');
    expect(dup.message).toContain('Duplicate order sent.');
    const funds = await rejectionOf(h.ex.createOrder('BTC/USDT', 'limit', 'buy', 500, 100));
    expect(funds).toBeInstanceOf(ccxt.InsufficientFunds);
    const lot = await rejectionOf(h.ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 100, { quantity: '0.0001' }));
    expect(lot).toBeInstanceOf(ccxt.InvalidOrder); // "Filter failure: LOT_SIZE"
    const gone = await rejectionOf(h.ex.cancelOrder('999', 'BTC/USDT'));
    expect(gone).toBeInstanceOf(ccxt.OrderNotFound);
    expect(gone.message).toContain('-2011');
    const missing = await rejectionOf(h.ex.fetchOrder('999', 'BTC/USDT'));
    expect(missing).toBeInstanceOf(ccxt.OrderNotFound);
    expect(missing.message).toContain('-2013');
    const maker = await rejectionOf(h.ex.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 120, { postOnly: true }));
    expect(maker).toBeInstanceOf(ccxt.OrderImmediatelyFillable);
  });

  it('auth: bad signature -> AuthenticationError (-1022); unknown key -> AuthenticationError (-2015)', async () => {
    const badSecret = h.rest({ apiKey: KEY.apiKey, secret: 'wrong' });
    const e1 = await rejectionOf(badSecret.fetchBalance());
    expect(e1).toBeInstanceOf(ccxt.AuthenticationError);
    expect(e1.message).toContain('-1022');
    const unknown = h.rest({ apiKey: 'nobody', secret: 'x' });
    const e2 = await rejectionOf(unknown.fetchBalance());
    expect(e2).toBeInstanceOf(ccxt.AuthenticationError);
    expect(e2.message).toContain('-2015');
  });

  it('timestamp outside recvWindow -> InvalidNonce (-1021)', async () => {
    const late = h.rest(KEY, { options: { timeDifference: 30_000 } }); // signs 30 s in the past
    const e = await rejectionOf(late.fetchBalance());
    expect(e).toBeInstanceOf(ccxt.InvalidNonce);
    expect(e.message).toContain('outside of the recvWindow');
    const ok = h.rest(KEY, { options: { timeDifference: 30_000, recvWindow: 60_000 } });
    await expect(ok.fetchBalance()).resolves.toBeDefined();
  });

  it('stop-loss-limit and take-profit-limit orders through ccxt', async () => {
    const sl = await h.ex.createOrder('BTC/USDT', 'limit', 'sell', 0.1, 100, { stopLossPrice: 101 });
    expect(sl.info).toMatchObject({ type: 'STOP_LOSS_LIMIT' });
    const tp = await h.ex.createOrder('BTC/USDT', 'limit', 'sell', 0.1, 130, { takeProfitPrice: 130 });
    expect(tp.info).toMatchObject({ type: 'TAKE_PROFIT_LIMIT' });
    const soon = await rejectionOf(h.ex.createOrder('BTC/USDT', 'limit', 'sell', 0.1, 100, { stopLossPrice: 150 }));
    expect(soon).toBeInstanceOf(ccxt.OrderImmediatelyFillable); // "Stop price would trigger immediately."
  });
});

describe('ccxt with its default loadMarkets options', () => {
  it('loads too: the sim answers the futures exchangeInfo, sapi currencies and margin pairs calls', async () => {
    const h = await harness();
    try {
      const ex = h.rest(KEY, {
        options: { fetchMarkets: { types: ['spot', 'linear', 'inverse'] }, fetchCurrencies: true, fetchMargins: true },
      });
      const markets = await ex.loadMarkets();
      expect(Object.keys(markets)).toEqual(['BTC/USDT']);
      expect(Object.keys(ex.currencies ?? {}).sort()).toEqual(expect.arrayContaining(['BTC', 'USDT']));
    } finally {
      await h.close();
    }
  });
});

describe('rate limits', () => {
  it('sends X-MBX-USED-WEIGHT-1M with Binance weights, then 429 (-1003), then 418 for a client that keeps going', async () => {
    // A wall clock pinned to the start of a minute so the window cannot roll over mid-test.
    const start = Date.now();
    const minute = Math.floor(start / 60_000) * 60_000;
    const h = await harness({
      rateLimits: { weightPerMinute: 50, banAfter: 2 },
      wallClock: () => minute + 1000 + (Date.now() - start),
    });
    try {
      const r1 = await fetch(`${h.sim.httpUrl}/api/v3/exchangeInfo`);
      expect(r1.headers.get('x-mbx-used-weight-1m')).toBe('20');
      const ex = h.rest(undefined, { enableRateLimit: false });
      await ex.loadMarkets(); // exchangeInfo: 40
      const r2 = await fetch(`${h.sim.httpUrl}/api/v3/depth?symbol=BTCUSDT&limit=5`);
      expect(r2.headers.get('x-mbx-used-weight-1m')).toBe('45');
      const outcomes: string[] = [];
      for (let i = 0; i < 8 && !outcomes.includes('418'); i++) {
        try {
          await ex.fetchTicker('BTC/USDT'); // weight 2
          outcomes.push('ok');
        } catch (e) {
          expect(e).toBeInstanceOf(ccxt.DDoSProtection);
          expect((e as Error).message).toContain('-1003');
          outcomes.push(
            / 418 /.test((e as Error).message)
              ? '418'
              : / 429 /.test((e as Error).message)
                ? '429'
                : (e as Error).message,
          );
        }
      }
      // 47, 49 pass; 51 is over: two 429s are tolerated (banAfter 2), the third request is banned.
      expect(outcomes).toEqual(['ok', 'ok', '429', '429', '418']);
      const raw = await fetch(`${h.sim.httpUrl}/api/v3/ping`);
      expect(raw.status).toBe(418);
      expect(Number(raw.headers.get('retry-after'))).toBeGreaterThan(0);
    } finally {
      await h.close();
    }
  });

  it('counts request weight per IP (every API key behind it shares one window) and orders per account', async () => {
    const start = Date.now();
    const minute = Math.floor(start / 60_000) * 60_000;
    const other = { apiKey: 'testkey2', secret: 'testsecret2' };
    const h = await harness({
      accounts: [
        { ...KEY, balances: { USDT: 10_000, BTC: 1 } },
        { ...other, balances: { USDT: 10_000, BTC: 1 } },
      ],
      wallClock: () => minute + 1000 + (Date.now() - start),
    });
    // Signatures are checked against real time; only the weight windows are pinned.
    h.sim.faults.skewServerClock(start - minute - 1000);
    try {
      const a = h.rest(KEY, { enableRateLimit: false });
      const b = h.rest(other, { enableRateLimit: false });
      const used = (c: { last_response_headers?: Record<string, string> }) =>
        Number(c.last_response_headers?.['X-Mbx-Used-Weight-1m']);
      await a.loadMarkets(); // exchangeInfo: 20
      await a.fetchBalance(); // account: 20
      expect(used(a)).toBe(40);
      await b.loadMarkets(); // another key on the same IP: the same window
      await b.fetchBalance();
      expect(used(b)).toBe(80);
      // Binance's Date header is the server's clock: the minute the reading belongs to.
      expect(Math.floor(Date.parse(String(a.last_response_headers?.['Date'])) / 60_000) * 60_000).toBe(minute);
      // Another address has a window of its own (127.0.0.2 is loopback too).
      const fromOtherIp = await new Promise<string | undefined>((resolve, reject) => {
        const req = request(`${h.sim.httpUrl}/api/v3/ping`, { localAddress: '127.0.0.2' }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.headers['x-mbx-used-weight-1m'] as string | undefined));
        });
        req.on('error', reject);
        req.end();
      });
      expect(fromOtherIp).toBe('1');
      await a.fetchTime(); // 1
      expect(used(a)).toBe(81);
      // ORDERS are counted per account.
      await a.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 50);
      await a.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 51);
      expect(a.last_response_headers?.['X-Mbx-Order-Count-10s']).toBe('2');
      expect(a.last_response_headers?.['X-Mbx-Order-Count-1d']).toBe('2');
      await b.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 52);
      expect(b.last_response_headers?.['X-Mbx-Order-Count-10s']).toBe('1');
      expect(h.sim.requestCounts()).toMatchObject({ 'GET /api/v3/account': 2, 'POST /api/v3/order': 3 });
    } finally {
      await h.close();
    }
  });

  it('enforces the account’s ORDERS limit: the order past 100 in a 10 s window is 429 -1015 (no Retry-After, not counted); another account is not held; an OCO list counts 2', async () => {
    const start = Date.now();
    const window = Math.floor(start / 10_000) * 10_000;
    let wall = window + 1000;
    const other = { apiKey: 'testkey2', secret: 'testsecret2' };
    const h = await harness({
      accounts: [
        { ...KEY, balances: { USDT: 100_000, BTC: 1 } },
        { ...other, balances: { USDT: 100_000, BTC: 1 } },
      ],
      // The wall clock stays inside one 10 s window whatever the test's pace.
      wallClock: () => wall,
    });
    const move = (to: number) => {
      wall = to;
      h.sim.faults.skewServerClock(Date.now() - wall);
    };
    move(window + 1000);
    try {
      const a = h.rest(KEY, { enableRateLimit: false });
      const b = h.rest(other, { enableRateLimit: false });
      await a.loadMarkets();
      await b.loadMarkets();
      const ioc = { timeInForce: 'IOC' };
      for (let i = 0; i < 97; i++) await a.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 50, ioc);
      // An OCO list: 2 of the account's count (Binance's "unfilled order count: 2").
      const oco = a as unknown as Record<string, (p: object) => Promise<unknown>>;
      await oco.privatePostOrderListOco!({
        symbol: 'BTCUSDT',
        side: 'SELL',
        quantity: '0.01',
        aboveType: 'LIMIT_MAKER',
        abovePrice: '500',
        belowType: 'STOP_LOSS',
        belowStopPrice: '50',
      });
      expect(a.last_response_headers?.['X-Mbx-Order-Count-10s']).toBe('99');
      await a.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 50, ioc);
      expect(a.last_response_headers?.['X-Mbx-Order-Count-10s']).toBe('100');
      const over = await a.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 50, ioc).catch((e: unknown) => e);
      expect(over).toBeInstanceOf(ccxt.DDoSProtection); // ccxt: an HTTP 429
      expect((over as Error).message).toContain(
        '{"code":-1015,"msg":"Too many new orders; current limit is 100 orders per 10 SECOND."}',
      );
      expect(a.last_response_headers?.['Retry-After']).toBeUndefined();
      // Another account's count is its own.
      await b.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 50, ioc);
      expect(b.last_response_headers?.['X-Mbx-Order-Count-10s']).toBe('1');
      // The next window takes orders again; the refused one was not counted in the day's.
      move(window + 10_000);
      await a.createOrder('BTC/USDT', 'limit', 'buy', 0.1, 50, ioc);
      expect(a.last_response_headers?.['X-Mbx-Order-Count-10s']).toBe('1');
      expect(a.last_response_headers?.['X-Mbx-Order-Count-1d']).toBe('101');
    } finally {
      await h.close();
    }
  });
});
