import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runBacktest } from '@keel/core';
import type { ExchangeSim } from '@keel/exchange-sim';
import { openStore, type Store } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { Bot, replaySource } from '../src/index.ts';
import { buyEachBar, gridChurn } from './fixtures/strategies.ts';
import {
  BotProcess,
  FEED,
  KEY,
  MIN,
  movableWallClock,
  paperBotConfig,
  quietBars,
  startLiveBot,
  startSim,
  T0,
  toSeries,
  until,
} from './live-harness.ts';

/**
 * A bot that runs for months must not hold every order it ever placed: memory and each bar's work
 * follow the orders that are working. Driven through the live venue against the exchange simulator
 * (real ccxt client, loopback). Oracle: the exchange's own orders and trades (every fill applied
 * once, no order sent twice); what the bot holds is read from `Bot.retained`.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'keel-bounded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The exchange's trades of the account, and the bot's stored fills, by trade id. */
async function fillsVsExchange(sim: ExchangeSim, store: Store, botId: string) {
  const orders = sim.getOrders(KEY.apiKey);
  const exchange = orders.flatMap((o) => o.fills.map((f) => String(f.tradeId)));
  const stored = (await store.fills.since(botId, 0)).map((f) => f.tradeId);
  return { orders, exchange, stored };
}

describe('a live bot holds only its working orders (real ccxt, loopback)', () => {
  it('over a hundred orders: the venue and the engine stay bounded, every fill is applied once, late stream updates of retired orders change nothing', async () => {
    // 60 bars, two orders each: about 120 orders against the 4 the venue and 16 the engine may hold.
    const N = 60;
    const store = await openStore({ url: `sqlite:${path.join(dir, 'grid.db')}` });
    // Binance lets an account place 100 orders per 10 s: each bar moves the exchange's wall clock
    // into a new window, so that the bot's order budget does not pace this fast replay.
    const wall = movableWallClock();
    const run = await startLiveBot({
      strategy: gridChurn,
      store,
      bars: quietBars(N + 2),
      botId: 'grid',
      sim: { wallClock: wall.now },
      bot: { keepFinished: 16 },
    });
    const filledEvents: string[] = [];
    let most = { tracked: 0, trades: 0, finished: 0, fills: 0 };
    let retained: ReturnType<Bot['retained']> | undefined;
    try {
      for (let k = 0; k < N; k++) {
        // Stream messages late (the REST answers apply the fills first, the order is retired, then
        // its executionReports arrive) and twice over (a replayed message).
        if (k === 20) run.sim.faults.delayWsMessages(300, { count: 8 });
        if (k === 40) run.sim.faults.duplicateWsMessages(8);
        wall.toMinuteEnd(k % 2 === 0 ? 5_000 : 35_000, run.sim);
        await run.step();
        const r = run.bot.retained();
        const v = r.venue!;
        most = {
          tracked: Math.max(most.tracked, v.tracked),
          trades: Math.max(most.trades, v.trades),
          finished: Math.max(most.finished, r.engine.finished),
          fills: Math.max(most.fills, r.engine.fills),
        };
      }
      await new Promise((r) => setTimeout(r, 500)); // the late messages arrive
      await run.bot.settled();
      retained = run.bot.retained();
      for (const e of run.events) if (e.type === 'order.filled') filledEvents.push(e.fill.tradeId);
    } finally {
      await run.close();
    }
    const { orders, exchange, stored } = await fillsVsExchange(run.sim, store, 'grid');
    await store.close();
    // The bot placed over a hundred orders...
    expect(orders.length).toBeGreaterThanOrEqual(2 * N - 4);
    expect(new Set(orders.map((o) => o.clientOrderId)).size, 'an order sent twice').toBe(orders.length);
    // ...and holds a handful: its working orders, not every one it placed.
    const v = retained.venue!;
    expect(v.retired, 'finished orders let go of').toBeGreaterThanOrEqual(orders.length - 3);
    expect(most.tracked, 'orders the live venue held at once').toBeLessThanOrEqual(4);
    expect(most.trades, 'trade ids the live venue held at once').toBeLessThanOrEqual(4);
    expect(v.venueIds).toBeLessThanOrEqual(4);
    expect(v.aliases).toBe(0);
    expect(most.finished, 'finished orders the engine kept').toBeLessThanOrEqual(16);
    expect(most.fills, 'fills the engine kept').toBeLessThanOrEqual(16);
    // The delayed and duplicated stream messages came after their orders were retired.
    expect(v.untracked).toBeGreaterThan(0);
    // Every fill once: the exchange's own trade list.
    expect(exchange.length).toBeGreaterThanOrEqual(N - 2);
    expect([...stored].sort()).toEqual([...exchange].sort());
    expect([...filledEvents].sort(), 'a fill applied twice or lost').toEqual([...exchange].sort());
  }, 180_000);

  it('kill -9 after hundreds of retired orders: the restart tracks only what still works, nothing is applied twice or sent again', async () => {
    const bars = quietBars(64);
    const sim = await startSim({ bars, balances: { USDT: 10_000 } });
    const storeUrl = `sqlite:${path.join(dir, 'crash.db')}`;
    const start = async () => {
      const p = new BotProcess(sim.httpUrl, storeUrl, 'crash', KEY, 'churn');
      await p.waitFor(() => p.lines.includes('READY'), 'the bot to start', 30_000);
      await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
      return p;
    };
    /** The live venue's holdings the bot printed (STATS lines): at start, or after the last bar. */
    const venueStats = (p: BotProcess, which: 'start' | 'last') => {
      const all = p.lines
        .filter((l) => l.startsWith('STATS '))
        .map((l) => JSON.parse(l.slice(6)) as ReturnType<Bot['retained']>);
      const v = (which === 'start' ? all[0] : all[all.length - 1])?.venue;
      if (v === undefined)
        throw new Error(`the bot printed no STATS line with its venue's:\n${p.lines.slice(-10).join('\n')}`);
      return v;
    };
    const stepThrough = async (p: BotProcess, k: number) => {
      while (sim.now() < T0 + (k + 1) * MIN) sim.step();
      await p.waitFor(() => p.lines.includes(`SETTLED ${T0 + k * MIN}`), `bar ${k} and its orders`);
    };
    let bot = await start();
    try {
      for (let k = 0; k < 30; k++) await stepThrough(bot, k);
      const before = venueStats(bot, 'last');
      expect(before.retired, 'orders retired before the crash').toBeGreaterThanOrEqual(10);
      await new Promise((r) => setTimeout(r, 200)); // the journal catches up
      await bot.crash();
      while (sim.now() < T0 + 33 * MIN) sim.step(); // down for a few bars
      bot = await start();
      // Restarted: only the orders still working are tracked, and only their trades remembered
      // (the exchange's late messages of the others find no order and change nothing).
      const atStart = venueStats(bot, 'start');
      const stored = await openStore({ url: storeUrl });
      const open = await stored.orders.open('crash');
      const fillsAtStart = await stored.fills.since('crash', 0);
      await stored.close();
      expect(fillsAtStart.length).toBeGreaterThanOrEqual(10);
      expect(atStart.tracked).toBe(open.length);
      const openIds = new Set(open.map((o) => o.request.id as string));
      expect(atStart.trades).toBe(fillsAtStart.filter((f) => openIds.has(f.orderId)).length);
      for (let k = 33; k < 60; k++) await stepThrough(bot, k);
      const after = venueStats(bot, 'last');
      expect(after.tracked).toBeLessThanOrEqual(2);
      expect(after.trades).toBeLessThanOrEqual(2);
      bot.proc.kill('SIGTERM');
      await bot.exited;
    } finally {
      if (bot.proc.exitCode === null) await bot.crash();
    }
    const store = await openStore({ url: storeUrl });
    const { orders, exchange, stored } = await fillsVsExchange(sim, store, 'crash');
    const position = (await store.positions.load('crash')).find((p) => p.symbol === 'BTC/USDT')?.size ?? 0;
    await store.close();
    await sim.close();
    expect(new Set(orders.map((o) => o.clientOrderId)).size, 'an order sent twice').toBe(orders.length);
    expect([...stored].sort(), 'a fill lost or applied twice').toEqual([...exchange].sort());
    // The position is what the exchange's fills hold (a buy's fee is taken in the coin).
    const net = orders
      .flatMap((o) =>
        o.fills.map((f) => ({ side: o.side, qty: Number(f.qty), fee: Number(f.commission), asset: f.commissionAsset })),
      )
      .reduce((s, f) => s + (f.side === 'BUY' ? f.qty : -f.qty) - (f.asset === 'BTC' ? f.fee : 0), 0);
    expect(position).toBeCloseTo(net, 10);
  }, 180_000);

  it('paper: thousands of orders on replayed bars: the engine keeps what the strategy can ask for, every fill equals the backtest of the same bars', async () => {
    const series = toSeries(quietBars(3_000));
    const store = await openStore({ url: `sqlite:${path.join(dir, 'paper.db')}`, synchronous: 'NORMAL' });
    let most = { open: 0, finished: 0, fills: 0 };
    const bot: Bot = new Bot(
      paperBotConfig(store, 'paper-grid', gridChurn, {
        keepFinished: 16,
        onEvent: (e) => {
          if (e.type !== 'order.filled') return;
          const r = bot.retained().engine;
          most = {
            open: Math.max(most.open, r.open),
            finished: Math.max(most.finished, r.finished),
            fills: Math.max(most.fills, r.fills),
          };
        },
      }),
    );
    let report: Awaited<ReturnType<Bot['stop']>>;
    try {
      await bot.start();
      await bot.run(replaySource(FEED, series));
    } finally {
      report = await bot.stop();
    }
    const stored = await store.fills.since('paper-grid', 0);
    await store.close();
    const bt = runBacktest({ strategy: gridChurn, data: [{ ...FEED, series }], cash: 10_000, fee: 0.001 });
    expect(bt.orders.length).toBeGreaterThanOrEqual(5_900);
    expect(most.open, 'open orders the engine held at once').toBeLessThanOrEqual(3);
    expect(most.finished, 'finished orders the engine kept').toBeLessThanOrEqual(16);
    expect(most.fills, 'fills the engine kept').toBeLessThanOrEqual(16);
    const strip = (fs: readonly { side: string; time: number; price: number; amount: number; fee: number }[]) =>
      fs.map((f) => [f.side, f.time, f.price, f.amount, f.fee]);
    expect(strip(stored)).toEqual(strip(bt.fills));
    // The round trips are counted though not kept.
    expect(report.trades).toBe(bt.trades.length);
  }, 120_000);

  it('a crash before its last bar was recorded: that bar is handled again and its order, filled and finished, is looked up, not sent twice', async () => {
    const sim = await startSim({ bars: quietBars(12), balances: { USDT: 10_000 } });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'replay.db')}` });
    const logs: string[] = [];
    const start = () =>
      startLiveBot({
        strategy: buyEachBar,
        store,
        exchange: sim,
        botId: 'replay',
        log: (l, m) => void logs.push(`${l} ${m}`),
        // The bar handled again after the restart is one missed while the bot was down: it trades.
        bot: { catchUp: 'last', lockTtlMs: 300 },
      });
    let run = await start();
    try {
      for (let k = 0; k < 5; k++) await run.step();
      // kill -9 after the last bar's order was sent, filled and saved, before the bar itself was
      // recorded as handled (its record is one write behind): the restart handles it again.
      run.bot.abandon();
      await run.conn.close();
      const row = (await store.state.load('replay'))?.state as { lastBarTime: Record<string, number> };
      const lastBar = Math.max(...Object.values(row.lastBarTime));
      const lastId = (await store.orders.list('replay')).at(-1);
      expect(lastId?.status).toBe('filled');
      await store.state.save('replay', {
        ...row,
        lastBarTime: Object.fromEntries(Object.keys(row.lastBarTime).map((k) => [k, lastBar - MIN])),
      });
      await new Promise((r) => setTimeout(r, 400)); // the crashed instance's lock expires
      run = await start();
      await until(() => run.bot.barsHandled >= 1, 10_000, 'the bar handled again');
      await run.bot.settled();
      expect(logs.some((l) => l.includes(`order ${lastId?.request.id} was already placed before the restart`))).toBe(
        true,
      );
    } finally {
      await run.close();
      await store.close();
      await sim.close();
    }
    const ids = sim.getOrders(KEY.apiKey).map((o) => o.clientOrderId);
    expect(new Set(ids).size, `an order sent twice: ${ids.join(' ')}`).toBe(ids.length);
  }, 60_000);
});
