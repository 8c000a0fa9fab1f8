// A fill the stream has not reported when the bar closes (the user-data stream stalled, or slower
// than the candle stream): the strategy must not decide on the position it had before. The live
// venue reads the bot's orders whose price the bar reached before the strategy sees the bar.
// Oracle: the backtest of the same bars (the limit fills on the bar that reaches it; the strategy
// closes on that bar's close). Real ccxt client against the simulator over loopback.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineStrategy, type EngineEvent } from '@keel/core';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { noParams } from './fixtures/strategies.ts';
import { binanceSpotBacktest, KEY, type LiveRun, startLiveBot } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-fill-before-bar-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 3, 1);
const MIN = 60_000;

/** A limit buy at 39,950 on the first bar; whenever it holds coins, it sells them all. */
const dipThenExit = defineStrategy({
  name: 'dip-then-exit',
  params: noParams,
  warmup: 'none',
  onStart: () => ({ n: 0, seen: [] as number[] }),
  onBar(ctx, s) {
    s.seen.push(ctx.position().size);
    if (++s.n === 1) ctx.submit({ type: 'limit', side: 'buy', amount: 0.01, price: 39_950 });
    else if (ctx.position().size > 0) ctx.close();
  },
});

// Flat at 40,000; bar 3 dips to 39,900 (the limit fills there), then flat again.
const lows = [39_980, 39_980, 39_980, 39_900, 39_980, 39_980, 39_980, 39_980, 39_980, 39_980];
const bars = lows.map((low, i) => ({ time: T0 + i * MIN, open: 40_000, high: 40_020, low, close: 40_000, volume: 50 }));

describe('a fill not yet reported when its bar closes (real ccxt, loopback)', () => {
  it('is read from the exchange before the strategy decides: it exits on the bar the backtest exits on', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'f.db')}`, synchronous: 'NORMAL' });
    const run = await startLiveBot({
      bars,
      strategy: dipThenExit,
      store,
      botId: 'fb',
      balances: { USDT: 10_000 },
      sim: { liquidity: { spreadTicks: 0 } },
    });
    try {
      await run.step(); // bar 0 handled: the limit buy goes out
      await run.step();
      await run.step();
      // The user-data stream goes silent: the fill on bar 3 is never pushed.
      run.sim.faults.stallWebSockets({ kind: 'user' });
      for (let k = 0; k < 4; k++) await run.step();
    } finally {
      run.sim.faults.resumeWebSockets();
      await run.close();
    }
    const onExchange = run.sim.getOrders(KEY.apiKey);
    expect(onExchange.map((o) => [o.side, o.type, o.status])).toEqual([
      ['BUY', 'LIMIT', 'FILLED'],
      ['SELL', 'MARKET', 'FILLED'],
    ]);
    const bt = binanceSpotBacktest(dipThenExit, bars);
    const mine = await store.orders.list('fb');
    const shape = (o: { request: { side: string; type: string }; createdAt: number }) =>
      `${o.request.side} ${o.request.type} decided ${new Date(o.createdAt).toISOString()}`;
    // The exit was decided on the close of bar 3, the bar the limit filled on, as in the backtest.
    expect(bt.orders.map(shape)).toEqual([
      `buy limit decided ${new Date(T0 + MIN).toISOString()}`,
      `sell market decided ${new Date(T0 + 4 * MIN).toISOString()}`,
    ]);
    expect(mine.map(shape)).toEqual(bt.orders.map(shape));
    await store.close();
  }, 60_000);
});

/** A grid of ten limit buys of 0.01, one a bar from the first, 39,900 down to 39,810; nothing else. */
const gridOfTen = defineStrategy({
  name: 'grid-of-ten',
  params: noParams,
  warmup: 'none',
  onStart: () => ({ n: 0 }),
  onBar(ctx, s) {
    if (s.n < 10) ctx.submit({ type: 'limit', side: 'buy', amount: 0.01, price: 39_900 - 10 * s.n });
    s.n++;
  },
});

// Flat above the grid; bar 11 falls through all of it (low 39,800) with so little volume that the
// exchange fills only 0.035 of it (participation 0.5 x 0.07), from the highest price down.
const DROP = 11;
const gridBars = Array.from({ length: 14 }, (_, i) => ({
  time: T0 + i * MIN,
  open: 40_000,
  high: 40_020,
  low: i === DROP ? 39_800 : 39_980,
  close: 40_000,
  volume: i === DROP ? 0.07 : 50,
}));
const ORDER_READ = { path: '/api/v3/order', method: 'GET' } as const;

/** What the venue logs of the reads (a fill found by one, a read that failed). */
const readLine = /read from the exchange as the bar closed|its state could not be read/;

/** What a grid bot did at the close of the bar that fell through its grid (gridDrop). */
interface GridDrop {
  /** The grid's client order ids, highest price first. */
  readonly ids: string[];
  /** The engine's events at that close. */
  readonly trace: (readonly unknown[])[];
  /** What the venue logged of its reads. */
  readonly logs: string[];
  /** The store's rows at the end: orders, fills, journal, position, balances. */
  readonly rows: unknown;
  /** The exchange's orders and the engine's, by id. */
  readonly exchange: { id: string; status: string; executed: number }[];
  readonly engine: { id: string; status: string; filled: number }[];
  /** Order reads (GET /api/v3/order) the exchange got at that close, and the most it had in hand at once. */
  readonly reads: number;
  readonly atOnce: number | undefined;
}

/**
 * The grid bot to the drop: its ten orders placed, the user-data stream stalled (the exchange's
 * reports of what follows are lost), orders 1, 4 and 8 expired by the exchange (self-trade
 * prevention) and the drop bar replayed: orders 0, 2 and 3 fill, 5 partly, 6, 7 and 9 are reached
 * and rest; the bot hears none of it until it reads them as the drop bar closes. `beforeDrop`
 * runs just before that bar (faults on the reads). Returns what the bot did at the drop's close.
 */
async function gridDrop(name: string, beforeDrop: (run: LiveRun) => void): Promise<GridDrop> {
  // Every time the store writes comes from this clock, so that two runs' rows can be compared.
  const store = await openStore({
    url: `sqlite:${path.join(dir, `${name}.db`)}`,
    synchronous: 'NORMAL',
    clock: { now: () => T0 },
  });
  const logs: string[] = [];
  const run = await startLiveBot({
    bars: gridBars,
    strategy: gridOfTen,
    store,
    botId: 'gr',
    balances: { USDT: 10_000 },
    sim: { liquidity: { spreadTicks: 0, participation: 0.5 } },
    // The order tracker's REST pass once its stream is up (fastConnect: 300 ms after the start,
    // about when this run reaches the drop) would find the fills itself, racing the reads; kept
    // out of the way so that only the reads at the close apply them.
    connect: { pollMs: 600_000 },
    log: (level, msg) => {
      logs.push(`${level} ${msg}`);
      if (process.env.GRID_DEBUG) process.stderr.write(`[${name}] ${level} ${msg}\n`);
    },
  });
  let seen: Omit<GridDrop, 'rows'>;
  try {
    for (let k = 0; k < DROP - 1; k++) await run.step(); // bars 0-9: the grid placed, one order a bar
    const ids = submitted(run.events);
    run.sim.faults.stallWebSockets({ kind: 'user' });
    for (const k of [1, 4, 8]) expect(run.sim.faults.expireInMatch(KEY.apiKey, ids[k] as string)).toBe(true);
    await run.step(); // bar 10: reaches nothing
    const mark = run.events.length;
    const readsBefore = run.sim.requestCounts()['GET /api/v3/order'] ?? 0;
    beforeDrop(run);
    await run.step(); // bar 11: the drop
    const engine = run.bot.botEngine.engine;
    seen = {
      ids,
      trace: run.events.slice(mark).map(trace),
      logs: logs.filter((l) => readLine.test(l)),
      exchange: run.sim
        .getOrders(KEY.apiKey)
        .map((o) => ({ id: o.clientOrderId, status: o.status, executed: o.executedQty })),
      engine: ids.map((id) => {
        const o = engine.order(id);
        return { id, status: o?.status ?? 'unknown', filled: o?.filled ?? Number.NaN };
      }),
      reads: (run.sim.requestCounts()['GET /api/v3/order'] ?? 0) - readsBefore,
      atOnce: run.sim.requestConcurrency()['GET /api/v3/order'],
    };
  } finally {
    run.sim.faults.resumeWebSockets();
    await run.close();
  }
  const rows = {
    orders: await store.orders.list('gr'),
    fills: await store.fills.since('gr', 0),
    journal: await store.events.list('gr'),
    positions: await store.positions.load('gr'),
    balances: await store.balances.load('gr'),
  };
  await store.close();
  return { ...seen, rows };
}

function submitted(events: readonly EngineEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'order.submitted' ? [e.order.request.id as string] : []));
}

function trace(e: EngineEvent): readonly unknown[] {
  switch (e.type) {
    case 'order.filled':
      return [e.type, e.order.request.id, e.fill.amount, e.fill.price, e.fill.tradeId];
    case 'order.expired':
    case 'order.cancelled':
    case 'order.rejected':
      return [e.type, e.order.request.id, e.reason];
    default:
      return [e.type];
  }
}

/**
 * The reads of the orders a bar reached go out together (at most 5 at once) and their answers are
 * applied in the venue's order whatever order they come back in. Oracle: the sequential order,
 * worked out by hand from what the exchange did (below), and the exchange's own order states.
 */
describe('the orders a bar reached, read together (real ccxt, loopback)', () => {
  // Holds on the reads, by arrival: every read 150 ms; the first asked answered last; a shuffle.
  const uniform = Array.from({ length: 10 }, () => 150);
  const reversed = Array.from({ length: 10 }, (_, k) => 30 * (10 - k));
  const shuffled = [60, 240, 0, 180, 30, 270, 120, 0, 210, 90];
  const hold = (ms: readonly number[]) => (run: LiveRun) => {
    for (const m of ms) run.sim.faults.holdHttpResponses({ ...ORDER_READ, count: 1, ms: m });
  };

  it('applies them in the sequential order whatever order the answers come back in, byte for byte', async () => {
    const a = await gridDrop('uniform', hold(uniform));
    const b = await gridDrop('reversed', hold(reversed));
    const c = await gridDrop('shuffled', hold(shuffled));
    const [o0, o1, o2, o3, o4, o5, o6, o7, o8, o9] = a.ids;
    const ex = new Map(a.exchange.map((o) => [o.id, o]));
    expect(a.exchange.map((o) => o.status)).toEqual([
      'FILLED',
      'EXPIRED_IN_MATCH',
      'FILLED',
      'FILLED',
      'EXPIRED_IN_MATCH',
      'PARTIALLY_FILLED',
      'NEW',
      'NEW',
      'EXPIRED_IN_MATCH',
      'NEW',
    ]);
    const part = ex.get(o5 as string)?.executed as number;
    expect(part).toBeGreaterThan(0);
    // Read one after the other: order 0 is read first; it filled, so the bot fetches its trades,
    // which carry every fill of the bar (0, 2, 3 and part of 5, highest price first, as the
    // exchange filled them). Then 1 expired; 2 and 3 have ended (not applied again); 4 expired;
    // 5's fill is already in; 6 and 7 rest; 8 expired; 9 rests.
    expect(a.trace.map((t) => t.slice(0, 2))).toEqual([
      ['order.filled', o0],
      ['order.filled', o2],
      ['order.filled', o3],
      ['order.filled', o5],
      ['order.expired', o1],
      ['order.expired', o4],
      ['order.expired', o8],
    ]);
    expect(a.trace.slice(0, 4).map((t) => t.slice(2, 4))).toEqual([
      [0.01, 39_900],
      [0.01, 39_880],
      [0.01, 39_870],
      [part, 39_850],
    ]);
    // The one fill found by a read is logged on the order read (0), once.
    expect(a.logs).toEqual([
      `info order ${o0}: 0.01 filled, read from the exchange as the bar closed (the stream had not reported it yet)`,
    ]);
    // The engine holds what the exchange did, every order.
    expect(a.engine.map((o) => [o.status, o.filled])).toEqual([
      ['filled', 0.01],
      ['expired', 0],
      ['filled', 0.01],
      ['filled', 0.01],
      ['expired', 0],
      ['partially-filled', part],
      ['accepted', 0],
      ['accepted', 0],
      ['expired', 0],
      ['accepted', 0],
    ]);
    expect([o6, o7, o9].every((id) => ex.get(id as string)?.status === 'NEW')).toBe(true);
    // Answers in another order change nothing: events, log, store rows (orders, fills, journal,
    // position, balances) identical.
    for (const other of [b, c]) {
      expect(other.ids).toEqual(a.ids);
      expect(other.trace).toEqual(a.trace);
      expect(other.logs).toEqual(a.logs);
      expect(JSON.stringify(other.rows)).toBe(JSON.stringify(a.rows));
    }
    for (const r of [a, b, c]) expect(r.atOnce).toBeLessThanOrEqual(5);
  }, 120_000);

  it('reads them 5 at once: ten reached orders cost two rounds of reads, not ten', async () => {
    // Every read held 150 ms: the exchange has the first five in hand together, never more. All
    // ten are asked before an answer is applied (2 and 3, whose fills come with 0's trades, too:
    // read one after the other they were not, 8 reads in ten rounds).
    const r = await gridDrop('at-once', hold(uniform));
    expect(r.atOnce).toBe(5);
    expect(r.reads).toBe(10);
  }, 60_000);

  it('a read that fails is warned about and the others are applied', async () => {
    // One read refused (401: nothing a retry cures); the rest answered.
    const r = await gridDrop('one-fails', (run) =>
      run.sim.faults.httpErrorBurst({ ...ORDER_READ, count: 1, status: 401 }),
    );
    const warned = r.logs.filter((l) => l.startsWith('warn '));
    expect(warned).toHaveLength(1);
    const failed =
      /^warn order (\S+): the bar reached its price and its state could not be read \(.+\); the strategy runs on what the stream last said$/.exec(
        warned[0] as string,
      )?.[1];
    expect(r.ids).toContain(failed);
    // Every other order is as the exchange has it (the exchange's own states are the oracle).
    const ex = new Map(r.exchange.map((o) => [o.id, o]));
    const as = (s: string) =>
      s === 'FILLED' ? 'filled' : s === 'EXPIRED_IN_MATCH' ? 'expired' : s === 'NEW' ? 'accepted' : 'partially-filled';
    for (const o of r.engine) {
      if (o.id === failed) continue;
      const e = ex.get(o.id);
      expect([o.id, o.status, o.filled]).toEqual([o.id, as(e?.status as string), e?.executed]);
    }
  }, 60_000);
});
