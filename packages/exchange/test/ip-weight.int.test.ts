// Several bots on one machine share one IP's request-weight budget: Binance counts weight per IP,
// whatever the API key, and answers 429 and then 418 (an IP ban) over it. Each gateway counts what
// it sends and raises its count to the exchange's reading of the IP (X-MBX-USED-WEIGHT-1M on every
// answer), so two gateways together stay under the limit. Real ccxt binance clients against one
// simulator over loopback; the simulator counts weight per IP (both clients are 127.0.0.1) in the
// minutes of its wall clock, which is the gateways' clock here. Oracle: the simulator's own limit
// (a 429 or 418 is the exchange saying the IP went over it).
import { ccxtConfigFor, startExchangeSim } from '@keel/exchange-sim';
import { describe, expect, it } from 'vitest';
import {
  binanceSpotLimits,
  createCcxtClient,
  type EndpointClass,
  ExchangeGateway,
  type GatewayEvent,
  type GatewayOptions,
  KeelExchangeError,
  ManualTimer,
} from '../src/index.ts';
import { closeAfterEach, eventually, KEY, limitBuy, stairBars, T0 } from './sim-harness.ts';

const closers = closeAfterEach();

const OTHER = { apiKey: 'keel-int-key-2', secret: 'keel-int-secret-2' };
/** GET /api/v3/trades: 25 weight on Binance and on the simulator. */
const TRADES_WEIGHT = 25;

async function setup(rateLimits?: { weightPerMinute?: number; banAfter?: number; banMs?: number }) {
  // Minute-aligned, so the test starts at the beginning of the simulator's weight window.
  const timer = new ManualTimer(T0 + 3_600_000);
  const sim = await startExchangeSim({
    wallClock: () => timer.now(),
    markets: [{ symbol: 'BTC/USDT', bars: stairBars(), stepSize: 0.001, minNotional: 1 }],
    accounts: [
      { ...KEY, balances: { USDT: 100_000 } },
      { ...OTHER, balances: { USDT: 100_000 } },
    ],
    startTime: T0 + 10 * 60_000,
    ...(rateLimits ? { rateLimits } : {}),
  });
  closers.push(() => sim.close());
  const bot = (key: typeof KEY, opts: GatewayOptions = {}) => {
    const client = createCcxtClient('binance', ccxtConfigFor(sim, key, { timeout: 2_000 }));
    closers.push(() => client.close());
    const events: GatewayEvent[] = [];
    const gw = new ExchangeGateway(client, {
      timer,
      retry: { maxAttempts: 1 },
      onEvent: (e) => events.push(e),
      ...opts,
    });
    return { gw, client, events };
  };
  return { timer, sim, bot };
}

/**
 * `n` reads of weight 25, half in each weight class, asked at once. `sent` and `returned` count the
 * requests that left and their answers; `settled` the calls that ended (some end unsent: a ban).
 */
function load(gw: ExchangeGateway, n: number) {
  const raw = gw.client as unknown as Record<string, (p: object) => Promise<unknown>>;
  const s = { sent: 0, returned: 0, settled: 0, failures: [] as string[], sentAt: [] as number[] };
  const calls = Array.from({ length: n }, (_, i) =>
    gw
      .call(
        (i % 2 === 0 ? 'queries' : 'market-data') as EndpointClass,
        'publicGetTrades',
        () => {
          s.sent++;
          s.sentAt.push(gw.timer.now());
          return raw.publicGetTrades!({ symbol: 'BTCUSDT', limit: 1 }).finally(() => void s.returned++);
        },
        { weight: TRADES_WEIGHT },
      )
      .then(
        () => void s.settled++,
        (e: unknown) => {
          s.settled++;
          s.failures.push(e instanceof KeelExchangeError ? `${e.kind} ${e.code}: ${e.message}` : String(e));
        },
      ),
  );
  return { s, all: Promise.all(calls) };
}

/** Advances the shared clock a second at a time until `done`, letting every request let through be answered. */
async function runUntil(timer: ManualTimer, loads: { sent: number; returned: number }[], done: () => boolean) {
  const settled = () => loads.every((l) => l.returned === l.sent);
  for (let i = 0; i < 600 && !done(); i++) {
    await eventually(settled, 10_000, 'the requests let through to be answered');
    await timer.advance(1_000);
  }
  await eventually(settled, 10_000, 'the requests let through to be answered');
}

/** Weight sent by all loads per minute of the clock. */
function perMinute(loads: { sentAt: number[] }[]): number[] {
  const m = new Map<number, number>();
  for (const l of loads)
    for (const t of l.sentAt) m.set(Math.floor(t / 60_000), (m.get(Math.floor(t / 60_000)) ?? 0) + TRADES_WEIGHT);
  return [...m.entries()].sort((a, b) => a[0] - b[0]).map(([, w]) => w);
}

describe('two gateways on one IP share Binance’s request weight', () => {
  it('each counts the other’s weight from the exchange’s reading: together under 6,000 a minute, no 429, no 418', async () => {
    const { timer, bot } = await setup();
    const a = bot(KEY);
    const b = bot(OTHER);
    await a.gw.loadMarkets();
    await b.gw.loadMarkets();
    // 2 x 300 reads of 25: 15,000 weight, two and a half minutes of the IP's budget. Either bot alone
    // would send up to 2 x (400 + 40 x 60) = 5,600 a minute from its own buckets.
    const la = load(a.gw, 300);
    const lb = load(b.gw, 300);
    await runUntil(timer, [la.s, lb.s], () => la.s.settled + lb.s.settled === 600);
    await Promise.all([la.all, lb.all]);
    expect([...la.s.failures, ...lb.s.failures]).toEqual([]);
    const limited = [...a.events, ...b.events].filter((e) => e.type === 'retry' || e.type === 'ip-limited');
    expect(limited).toEqual([]);
    // What the simulator counted: both bots' reads (and their exchangeInfo) per minute, under its 6,000.
    const minutes = perMinute([la.s, lb.s]);
    expect(Math.max(...minutes)).toBeLessThanOrEqual(6_000);
    expect(minutes.length).toBeGreaterThanOrEqual(3);
    // Each saw the other's weight: the window filled (reported once a minute), not its own buckets alone.
    const full = [...a.events, ...b.events].filter((e) => e.type === 'ip-weight-full');
    expect(full.length).toBeGreaterThan(0);
    const f = full[0] as Extract<GatewayEvent, { type: 'ip-weight-full' }>;
    expect(f).toMatchObject({ limit: 4_800, published: 6_000 });
    expect(f.used).toBeGreaterThan(4_800 - TRADES_WEIGHT);
  }, 120_000);

  it('control: the same load with the buckets alone (each counting only its own requests) gets 429 and then a ban', async () => {
    const { timer, bot } = await setup();
    const { ipWeight: _none, ...bucketsOnly } = binanceSpotLimits();
    const a = bot(KEY, { limits: bucketsOnly });
    const b = bot(OTHER, { limits: bucketsOnly });
    await a.gw.loadMarkets();
    await b.gw.loadMarkets();
    const la = load(a.gw, 300);
    const lb = load(b.gw, 300);
    await runUntil(timer, [la.s, lb.s], () => timer.now() >= T0 + 3_600_000 + 60_000);
    const failures = [...la.s.failures, ...lb.s.failures];
    expect(failures.some((f) => /429|418/.test(f))).toBe(true);
  }, 120_000);
});

describe('an IP ban (418)', () => {
  it('stops every request of the gateway until its Retry-After, says so once, and sends nothing into the ban', async () => {
    const { timer, sim, bot } = await setup({ weightPerMinute: 200, banAfter: 0, banMs: 300_000 });
    const a = bot(KEY, { retry: { maxAttempts: 5, baseMs: 10, maxMs: 100 } });
    await a.gw.loadMarkets(); // 20
    // Another program on the machine overdoes it: the IP is banned for 5 minutes.
    const other = createCcxtClient('binance', ccxtConfigFor(sim, OTHER, { timeout: 2_000 }));
    closers.push(() => other.close());
    const raw = other as unknown as Record<string, (p: object) => Promise<unknown>>;
    for (let i = 0; i < 8; i++) await raw.publicGetTrades!({ symbol: 'BTCUSDT', limit: 1 }).catch(() => undefined);
    const bannedAt = timer.now();
    const before = sim.requestCounts()['GET /api/v3/trades'] ?? 0;

    // The bot's next read meets the ban: an IpBanned failure at once, not retried into it.
    const read = a.gw.fetchTicker('BTC/USDT').catch((e: unknown) => e);
    await eventually(() => a.events.some((e) => e.type === 'ip-limited'), 5_000, 'the ban to be reported');
    const err = await read;
    expect(err).toBeInstanceOf(KeelExchangeError);
    expect(err).toMatchObject({ kind: 'rate-limited', code: 'IpBanned' });
    expect((err as KeelExchangeError).retryAfterMs).toBe(300_000);
    expect((err as Error).message).toMatch(/banned this IP \(HTTP 418\) until 2024-01-01T01:05:00\.000Z/);
    expect(a.events.filter((e) => e.type === 'retry')).toEqual([]);
    const ban = a.events.find((e) => e.type === 'ip-limited');
    expect(ban).toMatchObject({ status: 418, until: bannedAt + 300_000 });
    expect((ban as { method: string }).method).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/api\/v3\/ticker/);

    // During the ban: reads, creates and cancels fail at once and nothing reaches the exchange.
    const counted = JSON.stringify(sim.requestCounts());
    await timer.advance(60_000);
    await expect(a.gw.fetchBalance()).rejects.toMatchObject({ code: 'IpBanned' });
    const create = await a.gw.createOrder(limitBuy('ban', 'x', 50, 0.1));
    expect(create).toMatchObject({ kind: 'unavailable', sends: 0 });
    await expect(a.gw.cancelOrder('whatever', 'BTC/USDT')).rejects.toMatchObject({ code: 'IpBanned' });
    expect(JSON.stringify(sim.requestCounts())).toBe(counted);
    expect(sim.requestCounts()['GET /api/v3/trades']).toBe(before);
    expect(a.events.filter((e) => e.type === 'ip-limited')).toHaveLength(1);

    // After the Retry-After the gateway sends again.
    await timer.advance(240_000);
    await expect(a.gw.fetchTicker('BTC/USDT')).resolves.toMatchObject({ symbol: 'BTC/USDT' });
  }, 60_000);
});

describe('a 429 for the IP’s weight', () => {
  it('pauses every class until its Retry-After, not only the one that met it', async () => {
    const { timer, sim, bot } = await setup();
    const a = bot(KEY);
    await a.gw.loadMarkets();
    await timer.advance(30_000);
    sim.faults.rateLimitStorm({ count: 1 });
    // A query meets the 429 (Retry-After: the 30 s left of the simulator's minute).
    await expect(a.gw.fetchBalance()).rejects.toMatchObject({ kind: 'rate-limited' });
    expect(a.events.find((e) => e.type === 'ip-limited')).toMatchObject({ status: 429, until: timer.now() + 30_000 });
    // Market data waits too: the weight is the IP's, whichever class asks.
    let answered = false;
    const ticker = a.gw.fetchTicker('BTC/USDT').then(() => (answered = true));
    await timer.advance(29_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(answered).toBe(false);
    expect(sim.requestCounts()['GET /api/v3/ticker/24hr'] ?? 0).toBe(0);
    await timer.advance(1_000);
    await ticker;
    expect(answered).toBe(true);
  }, 30_000);
});
