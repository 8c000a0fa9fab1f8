import { ClientOrderId, type OrderRequest, SeededRng } from '@keel/core';
import * as ccxt from 'ccxt';
import { describe, expect, it } from 'vitest';
import { ExchangeGateway, ManualTimer, type PlaceOutcome, toInstrument } from '../src/index.ts';
import { BTC_USDT, type CreateFault, FakeExchange } from './fake-ccxt.ts';
import { drive, testOrderId } from './helpers.ts';

function setup(faults: CreateFault[] = [], opts: ConstructorParameters<typeof ExchangeGateway>[1] = {}) {
  const fake = new FakeExchange();
  fake.createFaults = faults;
  const timer = new ManualTimer(1_700_000_000_000);
  const gw = new ExchangeGateway(fake.asClient(), { timer, seed: 5, lookupDelayMs: 1_000, ...opts });
  return { fake, timer, gw };
}

const limit = (key: string, extra: Partial<OrderRequest> = {}): OrderRequest =>
  ({
    id: testOrderId('bot-1', key),
    symbol: 'BTC/USDT',
    side: 'buy',
    type: 'limit',
    price: 50_000.004,
    amount: 0.0012345,
    timeInForce: 'GTC',
    ...extra,
  }) as OrderRequest;

describe('toInstrument', () => {
  it('maps Binance TICK_SIZE precision and limits to an Instrument', () => {
    expect(toInstrument(BTC_USDT as never, 4)).toEqual({
      symbol: 'BTC/USDT',
      base: 'BTC',
      quote: 'USDT',
      kind: 'spot',
      tickSize: 0.01,
      stepSize: 0.00001,
      minAmount: 0.00001,
      minNotional: 5,
      contractSize: 1,
      settle: 'USDT',
    });
  });
  it('maps DECIMAL_PLACES precision to increments and perpetual swaps to perpetual instruments', () => {
    const perp = {
      ...BTC_USDT,
      symbol: 'BTC/USDT:USDT',
      type: 'swap',
      spot: false,
      swap: true,
      contract: true,
      contractSize: 1,
      precision: { price: 1, amount: 3 },
    };
    expect(toInstrument(perp as never, 2)).toMatchObject({
      kind: 'perpetual',
      tickSize: 0.1,
      stepSize: 0.001,
      settle: 'USDT',
    });
    expect(() => toInstrument(perp as never, 3)).toThrow(/SIGNIFICANT_DIGITS/);
  });
});

describe('ExchangeGateway: order preparation', () => {
  it('rounds amount down to the step and price to the tick before sending', async () => {
    const { gw, fake } = setup();
    const r = await gw.createOrder(limit('a'));
    expect(r.kind).toBe('placed');
    const sent = [...fake.orders.values()][0];
    expect(sent?.amount).toBe(0.00123);
    expect(sent?.price).toBe(50_000);
    expect(fake.loadCalls).toBe(1);
    await gw.createOrder(limit('b'));
    expect(fake.loadCalls).toBe(1); // markets are loaded once
  });

  it('a filter violation is a rejected outcome with the rule, and nothing is sent', async () => {
    const { gw, fake } = setup();
    const tooSmall = await gw.createOrder(limit('c', { amount: 0.00005, price: 50_000 })); // 2.5 USDT < 5
    expect(tooSmall).toMatchObject({ kind: 'rejected', rule: 'min-notional', sends: 0 });
    const zero = await gw.createOrder(limit('d', { amount: 0.000001 }));
    expect(zero).toMatchObject({ kind: 'rejected', rule: 'non-positive' });
    const trailing = await gw.createOrder({
      id: testOrderId('b', 't'),
      symbol: 'BTC/USDT',
      side: 'sell',
      type: 'trailing-stop',
      trail: { kind: 'percent', value: 1 },
      amount: 1,
      timeInForce: 'GTC',
    });
    expect(trailing).toMatchObject({ kind: 'rejected', rule: 'unsupported' });
    const badId = await gw.createOrder(limit('e', { id: ClientOrderId('has spaces!') }));
    expect(badId).toMatchObject({ kind: 'rejected', rule: 'invalid-client-id' });
    expect(fake.createCalls).toBe(0);
  });
});

describe('ExchangeGateway: idempotent create', () => {
  const run = async (faults: CreateFault[]) => {
    const s = setup(faults);
    const out = await drive(s.timer, s.gw.createOrder(limit('x')));
    return { ...s, out };
  };

  it('a timeout after the exchange accepted is resolved by lookup, not by a resend', async () => {
    const { out, fake } = await run(['timeout-after-accept']);
    expect(out).toMatchObject({ kind: 'placed', via: 'lookup', sends: 1 });
    expect(fake.createCalls).toBe(1);
    expect(fake.orders.size).toBe(1);
  });

  it('5xx before acceptance: looked up, unknown to the exchange, resent with the SAME id', async () => {
    const { out, fake, gw } = await run(['5xx', '5xx']);
    expect(out).toMatchObject({ kind: 'placed', via: 'response', sends: 3 });
    expect(fake.orders.size).toBe(1);
    expect(gw.sends.get(limit('x').id)).toBe(3);
  });

  it('429: turned away unexecuted, so resent without a lookup, not before Retry-After', async () => {
    const events: string[] = [];
    const s = setup(['429'], { onEvent: (e) => events.push(e.type) });
    const t0 = s.timer.now();
    const out = await drive(s.timer, s.gw.createOrder(limit('x')), 100);
    expect(out).toMatchObject({ kind: 'placed', via: 'response', sends: 2 });
    expect(s.timer.now() - t0).toBeGreaterThanOrEqual(5_000);
    expect(s.fake.orders.size).toBe(1);
    expect(events).toEqual(['resend']);
  });

  it('a duplicate-client-id rejection means already placed: resolved by lookup', async () => {
    const s = setup();
    await s.gw.createOrder(limit('x'));
    const again = await drive(s.timer, s.gw.createOrder(limit('x')));
    expect(again).toMatchObject({ kind: 'placed', via: 'lookup' });
    expect(s.fake.orders.size).toBe(1);
  });

  it('an exchange rejection is final: no resend', async () => {
    const { out, fake } = await run(['insufficient']);
    expect(out).toMatchObject({ kind: 'rejected', sends: 1 });
    expect(fake.createCalls).toBe(1);
  });

  it('in doubt and the lookup fails too: in-doubt, never resent', async () => {
    const s = setup(['timeout-after-accept']);
    s.fake.lookupFaults = Array(50).fill('5xx');
    const out = await drive(s.timer, s.gw.createOrder(limit('y')));
    expect(out.kind).toBe('in-doubt');
    expect(s.fake.createCalls).toBe(1);
    expect(s.fake.orders.size).toBe(1);
  });

  it('one budget per create: maxAttempts failed requests, sends and lookups together; lookups never retry on their own', async () => {
    const policy = { retry: { maxAttempts: 4, baseMs: 100, maxMs: 1_000 } };
    const lookups = (s: ReturnType<typeof setup>) => {
      let n = 0;
      const f = s.fake.fetchOrder;
      s.fake.fetchOrder = (...a) => {
        n++;
        return f(...a);
      };
      return () => n;
    };
    // Every send answered 5xx (in doubt; none landed): each is looked up once, then resent.
    const a = setup(Array(10).fill('5xx'), policy);
    const aLookups = lookups(a);
    const outA = await drive(a.timer, a.gw.createOrder(limit('budget-a')));
    expect(outA).toMatchObject({ kind: 'unavailable', sends: 4 });
    expect(aLookups()).toBe(4);
    expect(a.fake.orders.size).toBe(0);
    // The order landed but its response was lost; the lookups fail twice, the third finds it.
    const b = setup(['timeout-after-accept'], policy);
    b.fake.lookupFaults = ['5xx', '5xx'];
    const bLookups = lookups(b);
    expect(await drive(b.timer, b.gw.createOrder(limit('budget-b')))).toMatchObject({
      kind: 'placed',
      via: 'lookup',
      sends: 1,
    });
    expect(bLookups()).toBe(3);
    // Three failing lookups after the lost response spend the budget of 4: in doubt, never resent.
    const c = setup(['timeout-after-accept'], policy);
    c.fake.lookupFaults = ['5xx', '5xx', '5xx', '5xx'];
    const cLookups = lookups(c);
    expect(await drive(c.timer, c.gw.createOrder(limit('budget-c')))).toMatchObject({ kind: 'in-doubt', sends: 1 });
    expect([cLookups(), c.fake.createCalls]).toEqual([3, 1]);
  });

  it('transient and rate-limited sends are resent without a lookup; out of budget they are unavailable, not rejected', async () => {
    const s = setup(Array(10).fill('429'), { retry: { maxAttempts: 3, baseMs: 100, maxMs: 1_000 } });
    const events: string[] = [];
    const gw = new ExchangeGateway(s.fake.asClient(), {
      timer: s.timer,
      seed: 5,
      retry: { maxAttempts: 3, baseMs: 100, maxMs: 1_000 },
      onEvent: (e) => events.push(e.type),
    });
    const out = await drive(s.timer, gw.createOrder(limit('storm')), 100);
    expect(out).toMatchObject({ kind: 'unavailable', sends: 3, error: { kind: 'rate-limited' } });
    expect(events).toEqual(['resend', 'resend']);
  });

  it('mayExist (an id sent before a restart): looked up before the first send; sent only if unknown', async () => {
    const first = setup();
    await first.gw.createOrder(limit('restart'));
    // A new process (gateway) on the same exchange, the same id: found, not sent again.
    const events: string[] = [];
    const gw = new ExchangeGateway(first.fake.asClient(), { timer: first.timer, onEvent: (e) => events.push(e.type) });
    const again = await drive(first.timer, gw.createOrder(limit('restart'), { mayExist: true }));
    expect(again).toMatchObject({ kind: 'placed', via: 'lookup', sends: 0 });
    expect([first.fake.createCalls, first.fake.orders.size, events]).toEqual([1, 1, ['lookup']]);
    // An id that never reached the exchange: one lookup, then the send.
    const fresh = await drive(first.timer, gw.createOrder(limit('never-sent'), { mayExist: true }));
    expect(fresh).toMatchObject({ kind: 'placed', via: 'response', sends: 1 });
    expect(events).toEqual(['lookup', 'lookup']);
  });

  it('circuit open before any send: unavailable, nothing sent', async () => {
    const s = setup([], { breaker: { failureThreshold: 1, openMs: 60_000 } });
    s.fake.lookupFaults = ['5xx'];
    await expect(
      drive(
        s.timer,
        s.gw.call(
          'orders',
          'x',
          () => Promise.reject(new ccxt.NetworkError('binance POST /api/v3/order fetch failed: connect ECONNREFUSED')),
          { retry: false },
        ),
      ),
    ).rejects.toThrow(/transient/);
    const out = await s.gw.createOrder(limit('z'));
    expect(out).toMatchObject({ kind: 'unavailable', sends: 0 });
    expect(s.fake.createCalls).toBe(0);
  });

  // Invariant (no oracle needed): under any mix of faults, an id is on the exchange at most once,
  // and the outcome agrees with the exchange: placed => exactly one, rejected => none.
  it('never places an order twice under 300 random fault scripts', async () => {
    const rng = new SeededRng(2024);
    const kinds: CreateFault[] = ['ok', 'timeout-after-accept', '5xx', '429', 'insufficient'];
    const tally: Record<PlaceOutcome['kind'], number> = { placed: 0, rejected: 0, 'in-doubt': 0, unavailable: 0 };
    for (let run = 0; run < 300; run++) {
      const script = Array.from(
        { length: 1 + Math.floor(rng.next() * 6) },
        () => kinds[Math.floor(rng.next() * kinds.length)] as CreateFault,
      );
      const s = setup([...script], { retry: { maxAttempts: 4, baseMs: 100, maxMs: 2_000 } });
      if (rng.next() < 0.3) s.fake.lookupFaults = Array(Math.floor(rng.next() * 4)).fill('5xx');
      const id = limit(`r${run}`).id;
      const out = await drive(s.timer, s.gw.createOrder(limit(`r${run}`)), 500);
      tally[out.kind]++;
      const onExchange = [...s.fake.orders.values()].filter((o) => o.clientOrderId === id).length;
      expect(onExchange, `run ${run} script ${script.join(',')}`).toBeLessThanOrEqual(1);
      if (out.kind === 'placed') expect(onExchange).toBe(1);
      if (out.kind === 'rejected' || out.kind === 'unavailable')
        expect(onExchange, `run ${run} ${script.join(',')}`).toBe(0);
    }
    expect(tally.placed).toBeGreaterThan(100);
  });
});

describe('ExchangeGateway: retries and cancel', () => {
  it('retries transient query failures with backoff, then succeeds', async () => {
    const s = setup();
    await s.gw.loadMarkets();
    s.fake.lookupFaults = ['5xx', '5xx'];
    const events: string[] = [];
    const gw = new ExchangeGateway(s.fake.asClient(), { timer: s.timer, seed: 1, onEvent: (e) => events.push(e.type) });
    const open = await drive(s.timer, gw.fetchOpenOrders('BTC/USDT'));
    expect(open).toEqual([]);
    expect(events).toEqual(['retry', 'retry']);
  });

  it('the breaker of a class opens after consecutive failures, fails fast, and closes after a good probe', async () => {
    const s = setup([], { breakers: { queries: { failureThreshold: 3, openMs: 10_000 } } });
    await s.gw.loadMarkets();
    s.fake.lookupFaults = ['5xx', '5xx', '5xx'];
    const err = await drive(s.timer, s.gw.fetchOpenOrders('BTC/USDT')).catch((e: unknown) => e);
    expect(err).toMatchObject({ kind: 'transient', code: 'CircuitOpen', endpoint: 'queries' });
    expect(s.gw.breakers.queries.state).toBe('open');
    expect(s.gw.breakers.orders.state).toBe('closed'); // classes are independent
    await expect(s.gw.fetchOpenOrders('BTC/USDT')).rejects.toMatchObject({ code: 'CircuitOpen' });
    await s.timer.advance(10_000);
    expect(s.gw.breakers.queries.state).toBe('half-open');
    expect(await s.gw.fetchOpenOrders('BTC/USDT')).toEqual([]);
    expect(s.gw.breakers.queries.state).toBe('closed');
  });

  it('InvalidNonce (-1021): re-syncs the clock, then retries', async () => {
    const s = setup();
    s.fake.lookupFaults = ['nonce'];
    expect(await drive(s.timer, s.gw.fetchOpenOrders('BTC/USDT'))).toEqual([]);
    expect(s.fake.timeSyncs).toBe(1);
  });

  it('rate-limited: Retry-After pauses the whole endpoint class', async () => {
    const s = setup(['429']); // the fake answers 429 with Retry-After: 5
    await s.gw.loadMarkets();
    const t0 = s.timer.now();
    const create = s.gw.createOrder(limit('p'));
    await s.timer.advance(0);
    let at = -1;
    const other = s.gw.call('orders', 'other', async () => {
      at = s.timer.now();
    });
    await s.timer.advance(4_000);
    expect(at, 'another order call went out inside the Retry-After window').toBe(-1);
    await drive(s.timer, Promise.all([create, other]));
    expect(at).toBeGreaterThanOrEqual(t0 + 5_000);
  });

  it('does not retry rejected / not-found, and reports cancel of an unknown order as not-found', async () => {
    const s = setup();
    await s.gw.createOrder(limit('k'));
    expect(await s.gw.cancelOrder(limit('k').id, 'BTC/USDT')).toMatchObject({ kind: 'cancelled' });
    const again = await s.gw.cancelOrder(limit('k').id, 'BTC/USDT');
    expect(again.kind).toBe('not-found');
    expect(again.order?.status).toBe('cancelled');
  });
});
