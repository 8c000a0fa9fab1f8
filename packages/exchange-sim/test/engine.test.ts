import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SimError } from '../src/errors.ts';
import type { PlaceOrderRequest } from '../src/exchange/matching.ts';
import { pricePath } from '../src/exchange/replay.ts';
import { SpotExchange } from '../src/exchange/spot-exchange.ts';
import { nextStatus } from '../src/lifecycle.ts';
import { MIN, stairBars, T0 } from './helpers.ts';

const KEY = 'k';

function engine(opts: { participation?: number; balances?: Record<string, number> } = {}): SpotExchange {
  const bars = stairBars(60);
  return new SpotExchange({
    markets: [
      {
        symbol: 'BTC/USDT',
        id: 'BTCUSDT',
        base: 'BTC',
        quote: 'USDT',
        tickSize: 0.01,
        stepSize: 0.001,
        minQty: 0.001,
        minNotional: 1,
        bars,
        intervalMs: MIN,
      },
    ],
    accounts: [{ apiKey: KEY, secret: 's', balances: opts.balances ?? { USDT: 10_000, BTC: 1 } }],
    fees: { maker: 0.001, taker: 0.002 },
    participation: opts.participation ?? 0.1,
    bookLevels: 20,
    spreadTicks: 1,
    startTime: T0 + 10 * MIN,
  });
}

function req(r: Partial<PlaceOrderRequest>): PlaceOrderRequest {
  return {
    symbol: 'BTCUSDT',
    side: 'BUY',
    type: 'LIMIT',
    timeInForce: 'GTC',
    quantity: 1,
    quoteOrderQty: undefined,
    price: undefined,
    stopPrice: undefined,
    newClientOrderId: undefined,
    ...r,
  };
}

/** Runs the next replay event. */
function tick(e: SpotExchange, n = 1): void {
  for (let i = 0; i < n; i++) e.advanceTo(e.nextEvent());
}

function simError(f: () => unknown): SimError {
  try {
    f();
  } catch (e) {
    if (e instanceof SimError) return e;
    throw e;
  }
  throw new Error('expected a SimError');
}

describe('price path (the documented assumption)', () => {
  it('goes open-low-high-close on an up bar and open-high-low-close on a down bar', () => {
    expect(pricePath({ time: 0, open: 10, high: 12, low: 9, close: 11, volume: 1 })).toEqual([10, 9, 12, 11]);
    expect(pricePath({ time: 0, open: 10, high: 12, low: 9, close: 9.5, volume: 1 })).toEqual([10, 12, 9, 9.5]);
  });

  it('replays 4 ticks per bar then the close, at open + k/4 of the interval', () => {
    const e = engine();
    const m = e.market('BTCUSDT')!;
    expect(m.price).toBe(110);
    const seen: Array<[number, number]> = [];
    for (let i = 0; i < 5; i++) {
      tick(e);
      seen.push([e.now() - T0 - 10 * MIN, m.price]);
    }
    expect(seen).toEqual([
      [15_000, 108],
      [30_000, 112],
      [45_000, 111],
      [60_000, 111], // bar 10's close and bar 11's open share the instant: one step replays both
      [75_000, 109], // bar 11's low
    ]);
  });
});

describe('matching', () => {
  it('fills a resting limit buy at its own price as maker when the path crosses it; fee in the base asset', () => {
    const e = engine();
    const o = e.placeOrder(KEY, req({ price: 109, quantity: 1 }));
    expect(o.status).toBe('NEW');
    expect(e.balances(KEY).USDT).toEqual({ free: 9891, locked: 109 });
    tick(e); // to the low, 108
    const [after] = e.ordersOf(KEY);
    expect(after!.status).toBe('FILLED');
    expect(after!.fills).toMatchObject([
      { price: 109, qty: 1, commission: 0.001, commissionAsset: 'BTC', isMaker: true },
    ]);
    expect(e.balances(KEY).USDT).toEqual({ free: 9891, locked: 0 });
    expect(e.balances(KEY).BTC!.free).toBeCloseTo(1.999, 9);
  });

  it('caps fills at participation x bar volume per bar and fills the rest on later bars', () => {
    const e = engine(); // 0.1 x 100 = 10 BTC per bar per side
    e.placeOrder(KEY, req({ price: 109, quantity: 25 }));
    tick(e);
    expect(e.ordersOf(KEY)[0]).toMatchObject({ status: 'PARTIALLY_FILLED', executedQty: 10 });
    tick(e, 3); // 112, 111, then bar 10's close together with bar 11's open (same instant)
    expect(e.ordersOf(KEY)[0]!.executedQty).toBe(10);
    tick(e); // bar 11 low = 109: crosses again, new budget
    expect(e.ordersOf(KEY)[0]).toMatchObject({ status: 'PARTIALLY_FILLED', executedQty: 20 });
  });

  it('walks the synthetic book for a market order, taker fee, and expires what the book cannot fill', () => {
    const e = engine();
    const o = e.placeOrder(KEY, req({ type: 'MARKET', timeInForce: undefined, quantity: 1 }));
    expect(o.status).toBe('FILLED');
    expect(o.fills.map((f) => [f.price, f.qty, f.isMaker])).toEqual([
      [110.01, 0.5, false],
      [110.02, 0.5, false],
    ]);
    expect(o.fills[0]!.commission).toBeCloseTo(0.001, 9); // 0.5 x 0.002 taker
    const big = e.placeOrder(KEY, req({ type: 'MARKET', timeInForce: undefined, quantity: 50 }));
    expect(big.status).toBe('EXPIRED');
    expect(big.executedQty).toBeCloseTo(9, 9); // 10 per bar minus the 1 already taken
  });

  it('buys a quoteOrderQty market order for at most that much quote', () => {
    const e = engine();
    const o = e.placeOrder(
      KEY,
      req({ type: 'MARKET', timeInForce: undefined, quantity: undefined, quoteOrderQty: 50 }),
    );
    expect(o.status).toBe('FILLED');
    expect(o.cummulativeQuoteQty).toBeLessThanOrEqual(50);
    expect(o.cummulativeQuoteQty).toBeGreaterThan(49.8);
    expect(o.origQty).toBe(o.executedQty);
  });

  it('triggers a STOP_LOSS_LIMIT sell on the way down and fills it as taker at the trigger', () => {
    const e = engine();
    const o = e.placeOrder(
      KEY,
      req({ side: 'SELL', type: 'STOP_LOSS_LIMIT', price: 108, stopPrice: 108.5, quantity: 0.5 }),
    );
    expect(o).toMatchObject({ status: 'NEW', isWorking: false });
    tick(e);
    const [after] = e.ordersOf(KEY);
    expect(after).toMatchObject({ status: 'FILLED', isWorking: true });
    expect(after!.fills[0]).toMatchObject({ price: 108.5, isMaker: false, commissionAsset: 'USDT' });
  });

  it('a STOP_LOSS_LIMIT sell whose limit is above its stop rests from the trigger on: the part of the move before it cannot fill it', () => {
    const e = engine();
    e.placeOrder(KEY, req({ side: 'SELL', type: 'STOP_LOSS_LIMIT', price: 109, stopPrice: 108.5, quantity: 0.5 }));
    tick(e); // 110 -> 108: triggers at 108.5, where the 109 limit is above the bid; the price goes on down
    expect(e.ordersOf(KEY)[0]).toMatchObject({ status: 'NEW', isWorking: true, executedQty: 0 });
    tick(e); // 108 -> 112: back up through 109, filled there as maker
    const [after] = e.ordersOf(KEY);
    expect(after).toMatchObject({ status: 'FILLED' });
    expect(after!.fills[0]).toMatchObject({ price: 109, isMaker: true });
  });

  it('triggers a TAKE_PROFIT_LIMIT sell on the way up', () => {
    const e = engine();
    e.placeOrder(KEY, req({ side: 'SELL', type: 'TAKE_PROFIT_LIMIT', price: 111.5, stopPrice: 111.5, quantity: 0.5 }));
    tick(e); // 108: nothing
    expect(e.ordersOf(KEY)[0]!.status).toBe('NEW');
    tick(e); // 112
    expect(e.ordersOf(KEY)[0]!.status).toBe('FILLED');
  });

  it('FOK expires untouched when the book is too thin; IOC fills what it can and expires the rest', () => {
    const e = engine();
    const fok = e.placeOrder(KEY, req({ price: 110.05, quantity: 5, timeInForce: 'FOK' }));
    expect(fok).toMatchObject({ status: 'EXPIRED', executedQty: 0 });
    const ioc = e.placeOrder(KEY, req({ price: 110.05, quantity: 5, timeInForce: 'IOC' }));
    expect(ioc.status).toBe('EXPIRED');
    expect(ioc.executedQty).toBeCloseTo(2.5, 9); // levels 110.01..110.05, 0.5 each
    expect(e.balances(KEY).USDT!.locked).toBe(0);
  });

  it('a FOK stop-limit is judged whole at its trigger: it expires untouched where an IOC of the same size fills in part', () => {
    const big = { balances: { USDT: 10_000, BTC: 50 } };
    const stop = (tif: 'IOC' | 'FOK') =>
      req({ side: 'SELL', type: 'STOP_LOSS_LIMIT', price: 108, stopPrice: 108.5, quantity: 20, timeInForce: tif });
    const ioc = engine(big);
    ioc.placeOrder(KEY, stop('IOC'));
    tick(ioc);
    const [partial] = ioc.ordersOf(KEY);
    // The oracle: what the book offered at the trigger (20 levels of 0.5 down from 108.49).
    expect(partial).toMatchObject({ status: 'EXPIRED' });
    expect(partial!.executedQty).toBeCloseTo(10, 9);
    const fok = engine(big);
    fok.placeOrder(KEY, stop('FOK'));
    tick(fok);
    const [whole] = fok.ordersOf(KEY);
    expect(whole).toMatchObject({ status: 'EXPIRED', executedQty: 0, isWorking: true });
    expect(whole!.fills).toEqual([]);
    expect(fok.balances(KEY).BTC).toMatchObject({ free: 50, locked: 0 });
  });

  it('rejects like Binance: LIMIT_MAKER that would take, stops that would trigger, filters, funds, duplicates', () => {
    const e = engine();
    expect(
      simError(() => e.placeOrder(KEY, req({ type: 'LIMIT_MAKER', timeInForce: undefined, price: 111 }))).message,
    ).toBe('Order would immediately match and take.');
    expect(
      simError(() => e.placeOrder(KEY, req({ side: 'SELL', type: 'STOP_LOSS_LIMIT', price: 111, stopPrice: 111 })))
        .message,
    ).toBe('Stop price would trigger immediately.');
    expect(simError(() => e.placeOrder(KEY, req({ price: 100.001 }))).message).toBe('Filter failure: PRICE_FILTER');
    expect(simError(() => e.placeOrder(KEY, req({ price: 100, quantity: 0.0015 }))).message).toBe(
      'Filter failure: LOT_SIZE',
    );
    expect(simError(() => e.placeOrder(KEY, req({ price: 100, quantity: 0.001 }))).message).toBe(
      'Filter failure: NOTIONAL',
    );
    const funds = simError(() => e.placeOrder(KEY, req({ price: 100, quantity: 1000 })));
    expect([funds.http, funds.code, funds.message]).toEqual([
      400,
      -2010,
      'Account has insufficient balance for requested action.',
    ]);
    e.placeOrder(KEY, req({ price: 100, newClientOrderId: 'dup' }));
    expect(simError(() => e.placeOrder(KEY, req({ price: 100, newClientOrderId: 'dup' }))).message).toBe(
      'Duplicate order sent.',
    );
    expect(simError(() => e.cancelOrder(KEY, 'BTCUSDT', 42, undefined, undefined)).code).toBe(-2011);
    expect(simError(() => e.queryOrder(KEY, 'BTCUSDT', 42, undefined)).code).toBe(-2013);
  });

  it('lets a client order id be reused once the first order is closed', () => {
    const e = engine();
    const first = e.placeOrder(KEY, req({ price: 100, newClientOrderId: 'again' }));
    e.cancelOrder(KEY, 'BTCUSDT', first.orderId, undefined, undefined);
    expect(e.placeOrder(KEY, req({ price: 100, newClientOrderId: 'again' })).status).toBe('NEW');
  });
});

describe('determinism', () => {
  it('the same orders on the same bars give byte-identical orders and trades', () => {
    const run = (): string => {
      const e = engine();
      e.placeOrder(KEY, req({ price: 109, quantity: 12, newClientOrderId: 'a' }));
      e.placeOrder(
        KEY,
        req({ side: 'SELL', type: 'TAKE_PROFIT_LIMIT', price: 111.5, stopPrice: 111.5, quantity: 0.7 }),
      );
      e.placeOrder(KEY, req({ type: 'MARKET', timeInForce: undefined, quantity: 0.9 }));
      for (let i = 0; i < 30; i++) e.advanceTo(e.nextEvent());
      return JSON.stringify([e.ordersOf(KEY), e.myTrades(KEY, 'BTCUSDT'), e.balances(KEY)]);
    };
    expect(run()).toBe(run());
  });
});

describe('order lifecycle table', () => {
  it('has no transition out of a terminal status', () => {
    for (const s of ['FILLED', 'CANCELED', 'EXPIRED', 'REJECTED'] as const) {
      for (const ev of ['partialFill', 'fill', 'cancel', 'expire'] as const)
        expect(() => nextStatus(s, ev)).toThrow(/no transition/);
    }
    expect(nextStatus('NEW', 'partialFill')).toBe('PARTIALLY_FILLED');
  });
});

describe('balances (property: random order flow conserves assets)', () => {
  it('quote and base totals move exactly by fills and commissions; nothing stays locked after cancel-all', () => {
    const action = fc.oneof(
      fc.record({
        k: fc.constant('limit' as const),
        side: fc.constantFrom('BUY', 'SELL'),
        off: fc.integer({ min: -300, max: 300 }),
        q: fc.integer({ min: 10, max: 3000 }),
      }),
      fc.record({
        k: fc.constant('market' as const),
        side: fc.constantFrom('BUY', 'SELL'),
        q: fc.integer({ min: 10, max: 3000 }),
      }),
      fc.record({ k: fc.constant('tick' as const), n: fc.integer({ min: 1, max: 6 }) }),
      fc.record({ k: fc.constant('cancel' as const), i: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(action, { maxLength: 40 }), (actions) => {
        const e = engine({ balances: { USDT: 5000, BTC: 20 } });
        const m = e.market('BTCUSDT')!;
        for (const a of actions) {
          try {
            if (a.k === 'limit')
              e.placeOrder(
                KEY,
                req({
                  side: a.side,
                  price: Math.max(0.01, Math.round(m.price * 100 + a.off) / 100),
                  quantity: a.q / 1000,
                }),
              );
            else if (a.k === 'market')
              e.placeOrder(KEY, req({ side: a.side, type: 'MARKET', timeInForce: undefined, quantity: a.q / 1000 }));
            else if (a.k === 'tick') for (let i = 0; i < a.n; i++) e.advanceTo(e.nextEvent());
            else {
              const open = e.openOrders(KEY);
              const o = open[a.i % Math.max(1, open.length)];
              if (o) e.cancelOrder(KEY, 'BTCUSDT', o.orderId, undefined, undefined);
            }
          } catch (err) {
            if (!(err instanceof SimError)) throw err;
          }
          const b = e.balances(KEY);
          for (const x of Object.values(b)) expect(x.free).toBeGreaterThanOrEqual(-1e-9);
        }
        for (const o of e.openOrders(KEY)) e.cancelOrder(KEY, 'BTCUSDT', o.orderId, undefined, undefined);
        const b = e.balances(KEY);
        expect(b.USDT!.locked).toBeCloseTo(0, 8);
        expect(b.BTC!.locked).toBeCloseTo(0, 8);
        let usdt = 5000;
        let btc = 20;
        for (const t of e.myTrades(KEY, 'BTCUSDT')) {
          if (t.isBuyer) {
            usdt -= t.quoteQty;
            btc += t.qty - t.commission;
          } else {
            usdt += t.quoteQty - t.commission;
            btc -= t.qty;
          }
        }
        expect(b.USDT!.free).toBeCloseTo(usdt, 6);
        expect(b.BTC!.free).toBeCloseTo(btc, 6);
      }),
      { numRuns: 150, seed: 20240101 },
    );
  });
});
