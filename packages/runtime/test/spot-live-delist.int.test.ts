// A live spot bot whose pair Binance halts (delists): exchangeInfo status BREAK, new orders refused
// (-1013 "Market is closed."), open orders cancelled by the exchange, the coins left in the account.
// Real ccxt client against the simulator over loopback, default fees (0.1 %, paid in the coin
// received). The oracle: the exchange's own balances and orders, and the hand-computed position
// (0.01 BTC bought, its fee 0.1 % of it taken in BTC: 0.00999 held).
import path from 'node:path';
import { defineStrategy } from '@keel/core';
import type { ExchangeSim } from '@keel/exchange-sim';
import { describe, expect, it } from 'vitest';
import { noParams, type PerpStep, perpScript } from './fixtures/strategies.ts';
import { testStores } from './futures-live-books.ts';
import { BotProcess, FEED, KEY, MIN, quietBars, startLiveBot, startSim, T0, until } from './live-harness.ts';

const HELD = 0.00999; // 0.01 bought, 0.00001 BTC fee taken from it
const CLOSED = 'market closed: BTC/USDT is BREAK on the exchange';
const MARKET_CLOSED_LINE =
  'error MARKET CLOSED: BTC/USDT is BREAK on the exchange, no longer TRADING (halted or delisted): every order there would be refused, so this bot sends none and stops; its coins there stay in the account (spot has no settlement) and in its books; start it again once the pair trades';
const bars = quietBars(14);

const { dir, open, newStore } = testStores('spot-live-delist');

const posts = (sim: ExchangeSim) => sim.requestCounts()['POST /api/v3/order'] ?? 0;
const sends = (sim: ExchangeSim) =>
  Object.entries(sim.requestCounts())
    .filter(([k]) => k.startsWith('POST /api/v3/order') || k.startsWith('DELETE /api/v3/'))
    .reduce((n, [, v]) => n + v, 0);
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The exchange's balances of the account: the total of each asset (free + locked). */
function exchangeTotals(sim: ExchangeSim): { BTC: number; USDT: number } {
  const b = sim.getBalances(KEY.apiKey);
  const total = (a: string) => (b[a]?.free ?? 0) + (b[a]?.locked ?? 0);
  return { BTC: total('BTC'), USDT: total('USDT') };
}

describe('live spot: the exchange halts (delists) the bot’s pair', () => {
  it('orders after the halt: the one refusal (-1013 Market is closed.) makes the bot read the status (BREAK), say so once and stop; --flatten sends nothing; books = the exchange’s', async () => {
    // Buy 0.01 on the first bar, then 0.001 on every bar from the 4th on (each refused once halted).
    const steps = new Map<number, PerpStep>([
      [T0, { buy: 0.01 }],
      ...[3, 4, 5, 6, 7].map((k): [number, PerpStep] => [T0 + k * MIN, { buy: 0.001 }]),
    ]);
    const store = await newStore();
    const logs: string[] = [];
    const run = await startLiveBot({
      bars,
      strategy: perpScript(steps),
      store,
      botId: 'refused',
      balances: { USDT: 10_000 },
      bot: { onShutdown: 'cancel', flatten: true },
      log: (l, m) => logs.push(`${l} ${m}`),
    });
    open.push({ close: () => run.close() });
    for (let k = 0; k < 3; k++) await run.step();
    expect(run.bot.account.find(FEED.symbol)?.size).toBeCloseTo(HELD, 12);
    expect(exchangeTotals(run.sim).BTC).toBeCloseTo(HELD, 12);

    // Halted: status BREAK, no open order to cancel; the coins stay.
    expect(run.sim.delist(FEED.symbol)).toEqual([]);
    const before = posts(run.sim);
    for (let i = 0; i < 5; i++) {
      run.sim.step();
      await wait(300);
    }
    await run.bot.settled();
    // One request reached the exchange: the bot stopped after its refusal, nothing was retried.
    expect(posts(run.sim) - before).toBe(1);
    const rejected = run.events.filter((e) => e.type === 'order.rejected');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.type === 'order.rejected' && rejected[0].reason).toMatch(/Market is closed/);
    expect(run.bot.stopRequested).toBe(CLOSED);
    expect(logs.filter((l) => l.includes('MARKET CLOSED'))).toEqual([MARKET_CLOSED_LINE]);

    // --flatten on a halted pair: nothing sent, said why.
    const report = await run.bot.stop(run.bot.stopRequested);
    expect(report.reason).toBe(CLOSED);
    expect(posts(run.sim) - before).toBe(1);
    expect(logs).toContain(
      'warn --flatten: BTC/USDT no longer trades on the exchange: no order sent for its position of 0.00999; the BTC stays in the account',
    );
    // The books are the exchange's: the coins held, the cash left.
    const x = exchangeTotals(run.sim);
    expect(x.BTC).toBeCloseTo(HELD, 12);
    expect(run.bot.account.find(FEED.symbol)?.size).toBeCloseTo(x.BTC, 12);
    expect(run.bot.account.cash).toBeCloseTo(x.USDT, 8);
    expect((await store.positions.load('refused')).find((p) => p.symbol === FEED.symbol)?.size).toBeCloseTo(HELD, 12);
  }, 120_000);

  it('open orders cancelled by the exchange: applied once, the bot reads the status at once (no bar, nothing sent), stops; --on-shutdown keep parks no trailing stop there', async () => {
    const T1 = T0 + MIN;
    const strategy = defineStrategy({
      name: 'spot-rest-trail',
      params: noParams,
      warmup: 'none',
      onStart: () => ({}),
      onBar(ctx, _s, bar) {
        if (bar.time === T0) ctx.buy(0.01);
        if (bar.time === T1) {
          // A take-profit resting far above, and a 50 % trail held by Keel (never triggers here).
          ctx.submit({ type: 'limit', side: 'sell', amount: 0.004, price: 45_000, timeInForce: 'GTC', tag: 'tp' });
          ctx.submit({ type: 'trailing-stop', side: 'sell', amount: 0.005, trail: { kind: 'percent', value: 0.5 } });
        }
        if (bar.time > T1) ctx.buy(0.001);
      },
    });
    const store = await newStore();
    const logs: string[] = [];
    const run = await startLiveBot({
      bars,
      strategy,
      store,
      botId: 'cancelled',
      balances: { USDT: 10_000 },
      bot: { onShutdown: 'keep' },
      log: (l, m) => logs.push(`${l} ${m}`),
    });
    open.push({ close: () => run.close() });
    await run.step();
    await run.step();
    expect(run.sim.getOrders(KEY.apiKey).map((o) => o.status)).toEqual(['FILLED', 'NEW']);
    const bars0 = run.bot.barsHandled;
    const sent = sends(run.sim);

    run.sim.delist(FEED.symbol);
    expect(run.sim.getOrders(KEY.apiKey).map((o) => o.status)).toEqual(['FILLED', 'CANCELED']);
    await until(() => run.bot.stopRequested === CLOSED, 10_000, 'the bot to see the market closed');
    await run.bot.settled();
    expect(run.bot.barsHandled).toBe(bars0);
    const cancelled = run.events.filter((e) => e.type === 'order.cancelled');
    expect(cancelled.map((e) => e.type === 'order.cancelled' && [e.order.request.tag, e.reason])).toEqual([
      ['tp', 'cancelled on the exchange'],
    ]);
    expect(logs.filter((l) => l.includes('MARKET CLOSED'))).toEqual([MARKET_CLOSED_LINE]);

    const report = await run.bot.stop(run.bot.stopRequested);
    expect(report.parked).toEqual([]);
    expect(sends(run.sim)).toBe(sent);
    // The take-profit's lock is back in the free balance; the books are the exchange's.
    const x = exchangeTotals(run.sim);
    expect(run.sim.getBalances(KEY.apiKey).BTC).toEqual({ free: x.BTC, locked: 0 });
    expect(run.bot.account.find(FEED.symbol)?.size).toBeCloseTo(HELD, 12);
    expect(x.BTC).toBeCloseTo(HELD, 12);
    expect(run.bot.account.cash).toBeCloseTo(x.USDT, 8);
    const stored = (await store.orders.list('cancelled')).filter((o) => o.request.tag === 'tp');
    expect(stored.map((o) => [o.status, o.reason])).toEqual([['cancelled', 'cancelled on the exchange']]);
  }, 120_000);

  it('halted while the bot was down (kill -9): the restart reconciles, reads BREAK and stops before its first bar, sending nothing', async () => {
    const sim = await startSim({ bars, balances: { USDT: 10_000 } });
    const storeUrl = `sqlite:${path.join(dir, 'down.db')}`;
    const script: [number, PerpStep][] = [
      [T0, { buy: 0.01 }],
      [T0 + MIN, { sell: 0.004, limit: 45_000 }],
      ...[3, 4, 5, 6].map((k): [number, PerpStep] => [T0 + k * MIN, { buy: 0.001 }]),
    ];
    const spawnBot = () =>
      new BotProcess(sim.httpUrl, storeUrl, 'down', KEY, 'perp', { KEEL_TEST_SCRIPT: JSON.stringify(script) });
    const stepThrough = async (p: BotProcess, t: number) => {
      while (sim.now() < t + MIN) sim.step();
      await p.waitFor(() => p.lines.includes(`SETTLED ${t}`), `bar ${new Date(t).toISOString()} and its orders`);
    };
    let bot = spawnBot();
    try {
      await bot.waitFor(() => bot.lines.includes('READY'), 'the bot to start', 30_000);
      await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
      for (let t = T0; t <= T0 + 2 * MIN; t += MIN) await stepThrough(bot, t);
      expect(sim.getOrders(KEY.apiKey).map((o) => o.status)).toEqual(['FILLED', 'NEW']);
      await bot.crash();

      // Down: the pair is halted, its take-profit cancelled by the exchange; bars go on closing.
      sim.delist(FEED.symbol);
      while (sim.now() < T0 + 5 * MIN) sim.step();
      const sent = sends(sim);

      bot = spawnBot();
      await bot.waitFor(() => bot.lines.some((l) => l.startsWith('REPORT ')), 'the bot to stop by itself', 30_000);
      expect(await bot.exited).toBe(0);
      const report = JSON.parse(bot.lines.find((l) => l.startsWith('REPORT '))!.slice('REPORT '.length));
      expect(report.reason).toBe(CLOSED);
      expect(sends(sim)).toBe(sent);
      expect(bot.lines.some((l) => l.startsWith('BAR '))).toBe(false);
      expect(bot.err.join('').match(/MARKET CLOSED/g)).toHaveLength(1);
      // The cancel the exchange made while the bot was down is applied, once; the coins are the exchange's.
      const recovery = bot.lines.filter((l) => l.startsWith('RECOVERY '));
      expect(recovery).toHaveLength(1);
      expect(recovery[0]).toMatch(/^RECOVERY order-cancelled-while-down \S+: cancelled$/);
      const state = bot.lines.find((l) => l.startsWith('STATE '))!.split(' ');
      const x = exchangeTotals(sim);
      expect(Number(state[1])).toBeCloseTo(HELD, 12);
      expect(Number(state[1])).toBeCloseTo(x.BTC, 12);
      expect(Number(state[2])).toBeCloseTo(x.USDT, 8);
    } finally {
      if (bot.proc.exitCode === null) await bot.crash();
      await sim.close();
    }
  }, 120_000);
});
