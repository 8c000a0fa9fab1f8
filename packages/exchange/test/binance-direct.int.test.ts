import type { OrderRequest } from '@keel/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testOrderId } from './helpers.ts';
import { FAST, KEY, type SimHarness, simHarness, stairBars } from './sim-harness.ts';

// Binance spot market and limit orders leave as Binance's own request through ccxt's raw
// privatePostOrder (the live latency path). Oracle: the request ccxt's createOrder builds for the
// same order, and the simulator's record of what arrived.
describe('ExchangeGateway: Binance spot orders without ccxt createOrder (real ccxt, loopback)', () => {
  let h: SimHarness;
  beforeAll(async () => {
    h = await simHarness({
      markets: [
        { symbol: 'BTC/USDT', bars: stairBars(), stepSize: 0.001, minNotional: 1 },
        // Tiny ticks and whole-coin steps: decimal strings, never exponents.
        {
          symbol: 'SHIB/USDT',
          bars: stairBars().map((b) => ({ ...b, open: 1e-5, high: 1.1e-5, low: 9e-6, close: 1e-5 })),
          tickSize: 1e-8,
          stepSize: 1,
          minNotional: 1,
        },
        {
          symbol: 'ETH/BTC',
          bars: stairBars().map((b) => ({ ...b, open: 0.05, high: 0.051, low: 0.049, close: 0.05 })),
          tickSize: 0.00001,
          stepSize: 0.0001,
          minNotional: 0.0001,
        },
      ],
      accounts: [{ ...KEY, balances: { USDT: 1_000_000, BTC: 10, SHIB: 1e9, ETH: 100 } }],
    });
  });
  afterAll(async () => {
    await h.close();
  });

  let n = 0;
  const req = (o: Partial<OrderRequest>): OrderRequest =>
    ({
      id: testOrderId('direct', `o${n++}`),
      symbol: 'BTC/USDT',
      side: 'buy',
      type: 'market',
      amount: 0.5,
      timeInForce: 'GTC',
      ...o,
    }) as OrderRequest;

  const cases: [string, Partial<OrderRequest>][] = [
    ['market buy', {}],
    ['market sell, amount off the step', { side: 'sell', amount: 1.23456 }],
    ['limit GTC', { type: 'limit', price: 101.005, amount: 2 } as Partial<OrderRequest>],
    ['limit IOC', { type: 'limit', price: 99.1, timeInForce: 'IOC' } as Partial<OrderRequest>],
    ['limit FOK sell', { type: 'limit', side: 'sell', price: 120, timeInForce: 'FOK' } as Partial<OrderRequest>],
    [
      'tiny tick, whole steps',
      { symbol: 'SHIB/USDT', type: 'limit', price: 0.0000098, amount: 1_234_567.8 } as Partial<OrderRequest>,
    ],
    [
      'small step',
      { symbol: 'ETH/BTC', type: 'limit', side: 'sell', price: 0.0512345, amount: 0.01234 } as Partial<OrderRequest>,
    ],
    ['whole amount', { amount: 3 }],
  ];

  for (const [name, o] of cases) {
    it(`${name}: the request equals the one ccxt's createOrder builds`, async () => {
      const gw = h.gateway(FAST);
      await gw.loadMarkets();
      const prep = gw.prepareOrder(req(o));
      if (!prep.ok) throw new Error(prep.reason);
      const p = prep.order;
      const ours = gw.binanceSpotRequest(p);
      const ccxtBuilt = (
        gw.client as unknown as {
          createOrderRequest: (...a: unknown[]) => Record<string, unknown>;
        }
      ).createOrderRequest(p.symbol, p.ccxtType, p.side, p.amount, p.price, { ...p.params });
      expect(ours?.request).toEqual(ccxtBuilt);
    });
  }

  it('stop and post-only orders still go through ccxt createOrder', async () => {
    const gw = h.gateway(FAST);
    await gw.loadMarkets();
    for (const o of [
      { type: 'stop-market', stopPrice: 90, side: 'sell' },
      { type: 'limit', price: 90, postOnly: true },
    ] as Partial<OrderRequest>[]) {
      const prep = gw.prepareOrder(req(o));
      if (!prep.ok) throw new Error(prep.reason);
      expect(gw.binanceSpotRequest(prep.order)).toBeUndefined();
    }
  });

  it('placed and parsed as createOrder would: a market fill and a resting limit', async () => {
    const gw = h.gateway(FAST);
    // Signed by Keel and handed to ccxt's HTTP layer: ccxt's raw privatePostOrder is not used, and
    // the simulator checks the signature as Binance does.
    const raw = gw.client as unknown as { privatePostOrder: (...a: unknown[]) => unknown };
    const viaCcxtSign = raw.privatePostOrder;
    let ccxtSigned = 0;
    raw.privatePostOrder = (...a) => {
      ccxtSigned++;
      return viaCcxtSign.apply(gw.client, a);
    };
    const m = req({ amount: 0.25 });
    const placed = await gw.createOrder(m);
    expect(placed).toMatchObject({
      kind: 'placed',
      sends: 1,
      order: {
        clientOrderId: m.id,
        symbol: 'BTC/USDT',
        side: 'buy',
        type: 'market',
        amount: 0.25,
        filled: 0.25,
        status: 'filled',
      },
    });
    const l = req({ type: 'limit', price: 80.004, amount: 1 } as Partial<OrderRequest>);
    const rest = await gw.createOrder(l);
    expect(rest).toMatchObject({
      kind: 'placed',
      order: { clientOrderId: l.id, type: 'limit', price: 80, amount: 1, filled: 0, status: 'accepted' },
    });
    const onSim = h.sim.getOrders(KEY.apiKey).find((x) => x.clientOrderId === l.id);
    expect(onSim).toMatchObject({ type: 'LIMIT', price: 80, origQty: 1, timeInForce: 'GTC', status: 'NEW' });
    // What the exchange says when asked again is the same order.
    expect(await gw.lookupOrder(l.id, 'BTC/USDT')).toMatchObject({
      clientOrderId: l.id,
      price: 80,
      amount: 1,
      status: 'accepted',
    });
    expect(ccxtSigned).toBe(0);
  });

  it('a post-only limit leaves as LIMIT_MAKER with no timeInForce (Binance refuses one: -1106)', async () => {
    const gw = h.gateway(FAST);
    const o = req({ type: 'limit', price: 80, amount: 0.5, postOnly: true } as Partial<OrderRequest>);
    const placed = await gw.createOrder(o);
    expect(placed).toMatchObject({ kind: 'placed', order: { clientOrderId: o.id, status: 'accepted', price: 80 } });
    const onSim = h.sim.getOrders(KEY.apiKey).find((x) => x.clientOrderId === o.id);
    expect(onSim).toMatchObject({ type: 'LIMIT_MAKER', price: 80, origQty: 0.5, status: 'NEW' });
    // Post-only and immediate-or-cancel contradict each other: refused before anything is sent.
    const ioc = req({ type: 'limit', price: 80, postOnly: true, timeInForce: 'IOC' } as Partial<OrderRequest>);
    expect(await gw.createOrder(ioc)).toMatchObject({
      kind: 'rejected',
      rule: 'invalid-request',
      reason: expect.stringContaining('post-only order rests on the book'),
      sends: 0,
    });
  });

  it('a key ccxt must sign with (no secret for Keel to use) goes through ccxt, and its error', async () => {
    const gw = h.gateway(FAST);
    await gw.loadMarkets();
    const c = gw.client as unknown as { secret: string };
    const secret = c.secret;
    c.secret = '';
    try {
      // ccxt's own check: an order without credentials is refused before anything is sent.
      await expect(gw.createOrder(req({ amount: 0.1 }))).rejects.toMatchObject({
        kind: 'auth',
        message: expect.stringContaining('requires "secret" credential'),
      });
    } finally {
      c.secret = secret;
    }
  });
});
