// Several bots trading one account share its order limits: Binance counts new orders per ACCOUNT
// (spot 100 per 10 s and 200,000 a day; USDⓈ-M 300 per 10 s and 1,200 a minute), whatever process
// sends them, and refuses the next one with 429 / -1015. Each gateway counts the orders it sends
// and raises its count to the exchange's reading of the account (X-MBX-ORDER-COUNT-10S, -1D / -1M
// on every order's answer), so two gateways with the same API key together stay under the limit.
// Real ccxt clients (binance, binanceusdm) against one simulator over loopback; the simulator
// counts and enforces the ORDERS limits per API key in windows of its wall clock, which is the
// gateways' clock here. Oracle: the simulator's limit (a 429 / -1015 is the exchange saying the
// account went over it).
import { ccxtConfigFor, startExchangeSim } from '@keel/exchange-sim';
import { describe, expect, it } from 'vitest';
import {
  binanceSpotLimits,
  binanceUsdmLimits,
  createCcxtClient,
  ExchangeGateway,
  type GatewayEvent,
  type GatewayOptions,
  ManualTimer,
  type PlaceOutcome,
} from '../src/index.ts';
import { testOrderId } from './helpers.ts';
import { closeAfterEach, eventually, KEY, limitBuy, stairBars, T0 } from './sim-harness.ts';

const closers = closeAfterEach();

type Market = 'spot' | 'futures';

async function setup(market: Market) {
  // Minute-aligned: the test starts at the beginning of every order window of the simulator.
  const timer = new ManualTimer(T0 + 3_600_000);
  const sim = await startExchangeSim({
    ...(market === 'futures' ? { market: 'futures' as const } : {}),
    wallClock: () => timer.now(),
    markets: [{ symbol: 'BTC/USDT', bars: stairBars(), stepSize: 0.001, minNotional: 1 }],
    accounts: [{ ...KEY, balances: { USDT: 100_000 } }],
    startTime: T0 + 10 * 60_000,
  });
  closers.push(() => sim.close());
  /** A bot: its own ccxt client and gateway, on the one account (the same API key). */
  const bot = (opts: GatewayOptions = {}) => {
    const client = createCcxtClient(
      market === 'futures' ? 'binanceusdm' : 'binance',
      ccxtConfigFor(sim, KEY, { timeout: 5_000 }),
    );
    closers.push(() => client.close());
    // Requests sent and answered, counted at ccxt's HTTP layer (every create goes through it).
    const http = { sent: 0, answered: 0 };
    const raw = client as unknown as { fetch: (...args: unknown[]) => Promise<unknown> };
    const fetch = raw.fetch.bind(client);
    raw.fetch = (...args) => {
      http.sent++;
      return fetch(...args).finally(() => void http.answered++);
    };
    const events: GatewayEvent[] = [];
    const gw = new ExchangeGateway(client, {
      timer,
      retry: { maxAttempts: 1 },
      onEvent: (e) => events.push(e),
      ...opts,
    });
    return { gw, events, http };
  };
  /** Signatures are checked against real time (ccxt signs with it); only the rate-limit windows follow `timer`. */
  const realTimeSignatures = () => sim.faults.skewServerClock(Date.now() - timer.now());
  return { timer, sim, bot, realTimeSignatures };
}

type Bot = ReturnType<Awaited<ReturnType<typeof setup>>['bot']>;

/**
 * A bot placing `perSecond` orders each second of the clock for `seconds` seconds: IOC limit buys
 * far under the market, which expire at once (nothing rests, nothing fills) and count as new orders.
 */
function load({ gw }: Bot, name: string, symbol: string) {
  const s = { asked: 0, settled: 0, outcomes: [] as PlaceOutcome[], calls: [] as Promise<unknown>[] };
  const place = (n: number) => {
    for (let i = 0; i < n; i++) {
      const k = s.asked++;
      const req = {
        id: testOrderId(name, String(k)),
        symbol,
        side: 'buy',
        type: 'limit',
        price: 50,
        amount: 0.05,
        timeInForce: 'IOC',
      } as const;
      s.calls.push(
        gw.createOrder(req).then((o) => {
          s.outcomes.push(o);
          s.settled++;
        }),
      );
    }
  };
  return { s, place };
}

/**
 * Each second: every bot asks `perSecond` orders (for the first `seconds` seconds), the requests
 * let through are answered, the clock moves a second; until every order has ended.
 */
async function run(
  { timer, realTimeSignatures }: Awaited<ReturnType<typeof setup>>,
  bots: Bot[],
  loads: ReturnType<typeof load>[],
  perSecond: number,
  seconds: number,
) {
  const answered = () => bots.every((b) => b.http.answered === b.http.sent);
  for (let t = 0; t < 600; t++) {
    realTimeSignatures();
    if (t < seconds) for (const l of loads) l.place(perSecond);
    // What the limiter lets through at this instant is sent and answered before the clock moves.
    await new Promise((r) => setTimeout(r, 20));
    await eventually(answered, 20_000, 'the orders let through to be answered');
    if (t >= seconds && loads.every((l) => l.s.settled === l.s.asked)) break;
    await timer.advance(1_000);
  }
  await Promise.all(loads.flatMap((l) => l.s.calls));
}

/** Outcomes other than placed, as text: a 429 / -1015 would show here (one attempt, no retry). */
function failures(loads: ReturnType<typeof load>[]): string[] {
  return loads.flatMap((l) => l.s.outcomes.filter((o) => o.kind !== 'placed').map((o) => `${o.kind}: ${o.reason}`));
}

const CASES = [
  // Spot: 7 orders a second each, 70 per 10 s: each alone under its own 80, together 140 of 100.
  {
    market: 'spot' as Market,
    symbol: 'BTC/USDT',
    perSecond: 7,
    seconds: 30,
    limits: binanceSpotLimits,
    published: 100,
    share: 80,
  },
  // USDⓈ-M: 16 a second each (its bucket's rate), 160 per 10 s: together 320 of 300, 1,920 a minute of 1,200.
  {
    market: 'futures' as Market,
    symbol: 'BTC/USDT:USDT',
    perSecond: 16,
    seconds: 45,
    limits: binanceUsdmLimits,
    published: 300,
    share: 240,
  },
];

describe.each(CASES)('two gateways on one account share its order limits ($market)', (c) => {
  it('each counts the other’s orders from the exchange’s reading: together under the limit, no 429', async () => {
    const env = await setup(c.market);
    const { bot } = env;
    const a = bot();
    const b = bot();
    await a.gw.loadMarkets();
    await b.gw.loadMarkets();
    const la = load(a, 'a', c.symbol);
    const lb = load(b, 'b', c.symbol);
    await run(env, [a, b], [la, lb], c.perSecond, c.seconds);
    expect(failures([la, lb])).toEqual([]);
    expect(la.s.settled + lb.s.settled).toBe(2 * c.perSecond * c.seconds);
    const events = [...a.events, ...b.events];
    expect(events.filter((e) => e.type === 'retry' || e.type === 'orders-limited')).toEqual([]);
    // Each saw the other's orders: the account's window filled (reported once a window), where its
    // own orders alone never would have.
    const full = events.filter((e) => e.type === 'order-count-full');
    expect(full.length).toBeGreaterThan(0);
    expect(full[0]).toMatchObject({ windowMs: 10_000, limit: c.share, published: c.published });
    expect((full[0] as Extract<GatewayEvent, { type: 'order-count-full' }>).used).toBeGreaterThanOrEqual(c.share);
    const windowsFull = new Set(full.map((e) => (e as { resumeAt: number }).resumeAt));
    expect(windowsFull.size, 'one report per window and gateway at most').toBeGreaterThanOrEqual(full.length / 2);
    expect(a.gw.budgetCounts().orderCountFull + b.gw.budgetCounts().orderCountFull).toBe(full.length);
    if (c.market === 'futures') {
      // 32 orders a second for 45 s: the minute's 960 filled too.
      expect(full.some((e) => (e as { windowMs: number }).windowMs === 60_000)).toBe(true);
    }
  }, 180_000);

  it('control: the same load with each gateway counting only its own orders gets 429 -1015', async () => {
    const env = await setup(c.market);
    const { bot } = env;
    const { orderCount: _none, ...ownOnly } = c.limits();
    const a = bot({ limits: ownOnly });
    const b = bot({ limits: ownOnly });
    await a.gw.loadMarkets();
    await b.gw.loadMarkets();
    const la = load(a, 'a', c.symbol);
    const lb = load(b, 'b', c.symbol);
    await run(env, [a, b], [la, lb], c.perSecond, 10);
    expect(failures([la, lb]).some((f) => /-1015|Too many new orders/.test(f))).toBe(true);
  }, 180_000);
});

describe('the account’s order count, spot', () => {
  /** Another user of the account (a script, the exchange's UI) places `n` orders through its own client. */
  async function otherUser(env: Awaited<ReturnType<typeof setup>>, n: number) {
    const client = createCcxtClient('binance', ccxtConfigFor(env.sim, KEY, { timeout: 5_000 }));
    closers.push(() => client.close());
    env.realTimeSignatures();
    await client.loadMarkets();
    for (let i = 0; i < n; i++) await client.createOrder('BTC/USDT', 'limit', 'buy', 0.05, 50, { timeInForce: 'IOC' });
  }

  it('a 429 -1015 holds new orders until the end of the window it names; cancels still go; reported once', async () => {
    const env = await setup('spot');
    const a = env.bot({ retry: { maxAttempts: 3, baseMs: 10, maxMs: 100 } });
    await a.gw.loadMarkets();
    env.realTimeSignatures();
    const resting = await a.gw.createOrder({ ...limitBuy('a', 'rest', 60), id: testOrderId('a', 'rest') });
    expect(resting.kind).toBe('placed');
    await env.timer.advance(2_000);
    // The account's 100 for this 10 s window are spent elsewhere: the gateway has not seen them.
    await otherUser(env, 99);
    env.realTimeSignatures();
    const t = env.timer.now();
    const create = a.gw.createOrder({ ...limitBuy('a', 'late', 61), id: testOrderId('a', 'late') });
    await eventually(() => a.events.some((e) => e.type === 'orders-limited'), 10_000, 'the 429 -1015');
    const limited = a.events.find((e) => e.type === 'orders-limited');
    expect(limited).toMatchObject({ until: t - (t % 10_000) + 10_000 });
    expect((limited as { message: string }).message).toMatch(
      /Too many new orders; current limit is 100 orders per 10 SECOND/,
    );
    // While new orders wait, a cancel goes at once.
    await expect(a.gw.cancelOrder(testOrderId('a', 'rest'), 'BTC/USDT')).resolves.toMatchObject({ kind: 'cancelled' });
    let settled = false;
    void create.then(() => (settled = true));
    for (let i = 0; i < 7; i++) {
      await env.timer.advance(1_000);
      env.realTimeSignatures();
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(settled).toBe(false);
    const posts = env.sim.requestCounts()['POST /api/v3/order'];
    // The next window: it goes, once more, and is placed.
    await env.timer.advance(1_000);
    env.realTimeSignatures();
    await expect(create).resolves.toMatchObject({ kind: 'placed', sends: 2 });
    expect(env.sim.requestCounts()['POST /api/v3/order']).toBe((posts ?? 0) + 1);
    expect(a.events.filter((e) => e.type === 'orders-limited')).toHaveLength(1);
    expect(a.gw.budgetCounts()).toMatchObject({ ordersLimited: 1 });
  }, 60_000);

  it('an order waiting for the account’s budget whose signal goes stale is dropped at once, never sent', async () => {
    const env = await setup('spot');
    const a = env.bot();
    await a.gw.loadMarkets();
    await otherUser(env, 79);
    env.realTimeSignatures();
    // Its own order's answer says 80: the window is full for the gateway.
    await expect(
      a.gw.createOrder({ ...limitBuy('a', 'first', 50), id: testOrderId('a', 'first') }),
    ).resolves.toMatchObject({
      kind: 'placed',
    });
    const posts = env.sim.requestCounts()['POST /api/v3/order'];
    const ctl = new AbortController();
    const create = a.gw.createOrder(
      { ...limitBuy('a', 'stale', 51), id: testOrderId('a', 'stale') },
      { signal: ctl.signal },
    );
    await env.timer.advance(3_000);
    expect(a.events.filter((e) => e.type === 'order-count-full')).toHaveLength(1);
    ctl.abort(new Error('signal expired: not placed within 1 bar'));
    await expect(create).resolves.toMatchObject({ kind: 'rejected', sends: 0, error: { code: 'NotSent' } });
    // Dropped at the abort, not at the next window: nothing was sent then or later.
    expect(env.timer.now() % 10_000).toBe(3_000);
    await env.timer.advance(10_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(env.sim.requestCounts()['POST /api/v3/order']).toBe(posts);
  }, 60_000);
});
