import path from 'node:path';
import { type AnyStrategy, defineStrategy } from '@keel/core';
import type { ExchangeSim } from '@keel/exchange-sim';
import { describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { botParity } from '../src/parity.ts';
import { noParams, type PerpStep, perpScript } from './fixtures/strategies.ts';
import { exchangeBooks, expectBooksEqual, expectStored, stepTo, testStores } from './futures-live-books.ts';
import {
  BotProcess,
  futuresConnect,
  futuresSim,
  KEY,
  LINK_USDM_BARS,
  PERP,
  startLiveBot,
  until,
} from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('futures-live-delist.int.test.ts', LINK_USDM_BARS);

const T = (h: number, m = 0) => Date.UTC(2023, 1, 1, h, m);
const ENTRY = 6.847;
const SETTLE = 6.9;
const WALLET_AFTER = 10_000 - 684.7 * 0.0005 + 100 * (SETTLE - ENTRY) - 690 * 0.0005;
const CLOSED = 'market closed: LINK/USDT:USDT is SETTLING on the exchange';

const { dir, open, newStore } = testStores('futures-live-delist');

/**
 * A simulator from 07:50 and a store, and on them a 5x isolated live bot trading `steps` (a
 * perpScript, or a strategy), its log lines kept in `logs`.
 */
async function startBot(
  botId: string,
  steps: ReadonlyMap<number, PerpStep> | AnyStrategy,
  shutdown: { flatten?: boolean; onShutdown?: 'cancel' | 'keep' } = {},
) {
  const sim = await futuresSim(T(7, 50));
  open.push(sim);
  const store = await newStore();
  const logs: string[] = [];
  const run = await startLiveBot({
    strategy: steps instanceof Map ? perpScript(steps) : (steps as AnyStrategy),
    store,
    exchange: sim,
    feed: PERP,
    botId,
    connect: futuresConnect(sim.httpUrl, botId, () => {}),
    bot: {
      futures: () => ({ leverage: 5, marginMode: 'isolated', funding: null }),
      onShutdown: shutdown.onShutdown ?? 'cancel',
      flatten: shutdown.flatten ?? false,
    },
    log: (l, m) => logs.push(`${l} ${m}`),
  });
  return { sim, store, logs, run };
}

const posts = (sim: ExchangeSim) => sim.requestCounts()['POST /fapi/v1/order'] ?? 0;

describe.skipIf(!HAS_SHARED_DATA)('live futures: the exchange delists the bot’s perpetual', () => {
  it('while it runs: the settlement close is applied from the stream before the next bar (position, wallet, report = the oracle), then the bot says the market is closed, once, and stops', async () => {
    const steps = new Map<number, PerpStep>([
      [T(7, 50), { buy: 100 }],
      [T(7, 51), { sell: 20, limit: 7.5 }],
    ]);
    const { sim, store, logs, run } = await startBot('delist', steps);
    await stepTo(run, T(7, 53));
    expect(exchangeBooks(sim)).toMatchObject({ size: 100, entry: ENTRY });
    expect(exchangeBooks(sim).isolatedWallet).toBeCloseTo(136.94, 8);
    expectBooksEqual(run, 'before the delisting');

    // Delisted and settled at 6.9; no bar closes: the stream's ORDER_TRADE_UPDATE makes the bot read it.
    const bars = run.bot.barsHandled;
    const [settled, ...others] = sim.delist(PERP.symbol, { price: SETTLE });
    expect(others).toEqual([]);
    expect(settled?.order).toMatchObject({ status: 'FILLED', executedQty: 100, side: 'SELL' });
    expect(settled?.order.clientOrderId).toMatch(/^settlement_autoclose-\d{19}$/);
    expect(settled?.order.fills.map((f) => f.commission)).toEqual([0.345]);
    await until(() => (run.bot.account.find(PERP.symbol)?.size ?? 0) === 0, 10_000, 'the settlement to be applied');
    expect(run.bot.barsHandled).toBe(bars);
    await until(() => run.bot.stopRequested !== undefined, 10_000, 'the bot to see the market closed');
    await until(() => run.events.some((e) => e.type === 'order.cancelled'), 10_000, 'the limit’s cancel');
    await run.bot.settled();
    expect(exchangeBooks(sim)).toMatchObject({ size: 0, isolatedWallet: 0 });
    expect(exchangeBooks(sim).wallet).toBeCloseTo(WALLET_AFTER, 8);
    expectBooksEqual(run, 'after the settlement');
    expect(run.bot.account.cash).toBeCloseTo(WALLET_AFTER, 8);
    const id = String(settled?.order.orderId);
    const stored = async () => (await store.events.list('delist')).filter((e) => e.type === 'futures.settlement');
    await until(async () => (await stored()).length === 1, 10_000, 'the settlement event to be stored');
    expect((await stored())[0]?.payload).toEqual({
      symbol: PERP.symbol,
      time: settled?.order.time,
      marginMode: 'isolated',
      size: 100,
      entryPrice: ENTRY,
      closed: 100,
      price: SETTLE,
      realizedPnl: expect.closeTo(5.3, 9),
      fee: 0.345,
      id,
    });
    expect(logs).toContainEqual(
      `warn SETTLED: the exchange settled 100 of 100 LINK/USDT:USDT at 6.9 (long; order ${id}, ${settled?.order.clientOrderId}, fee 0.345), flat now: the contract was delisted`,
    );
    expect(logs.filter((l) => l.includes('MARKET CLOSED'))).toEqual([
      'error MARKET CLOSED: LINK/USDT:USDT is SETTLING on the exchange, no longer TRADING (delisted, or not trading yet): every order there would be refused, so this bot sends none and stops; its position there is settled by the exchange and applied at the next start',
    ]);
    expect((await store.positions.load('delist')).find((p) => p.symbol === PERP.symbol)?.size).toBe(0);
    expect(run.bot.stopRequested).toBe(CLOSED);
    const report = await run.bot.stop(run.bot.stopRequested);
    expect(report.reason).toBe(CLOSED);
    expect(report.futures).toMatchObject({ settlementCloses: 1, adlCloses: 0, liquidations: 0, warnings: [] });
    // The wallet is the oracle's; the trading figures count the bot's own fills (the buy's fee), the
    // exchange's close is in the wallet and the settlement count, as a liquidation's is.
    expect(report.cash).toBeCloseTo(WALLET_AFTER, 8);
    expect(report.equity).toBeCloseTo(WALLET_AFTER, 8);
    expect(report.fees).toBeCloseTo(0.34235, 9);
    await run.close();
    const parity = (await botParity(store, 'delist', { strategies: () => perpScript(steps) })).result;
    expect(parity.notes).toContainEqual(expect.stringContaining('1 settlement close(s) by the exchange'));
  }, 120_000);

  it('with the user-data stream stalled: the settlement is applied by the poll after the next bar, once (the stream back, nothing twice)', async () => {
    const { sim, store, logs, run } = await startBot('polled', new Map([[T(7, 50), { buy: 100 }]]));
    await stepTo(run, T(7, 53));
    sim.faults.stallWebSockets({ kind: 'user' });
    sim.delist(PERP.symbol, { price: SETTLE });
    await new Promise((r) => setTimeout(r, 300));
    expect(run.bot.account.find(PERP.symbol)?.size).toBe(100);
    await run.step();
    await until(() => (run.bot.account.find(PERP.symbol)?.size ?? 0) === 0, 10_000, 'the poll to apply the settlement');
    await until(() => run.bot.stopRequested === CLOSED, 10_000, 'the bot to see the market closed');
    await run.bot.settled();
    expectBooksEqual(run, 'after the polled settlement');
    expect(run.bot.account.cash).toBeCloseTo(WALLET_AFTER, 8);
    sim.faults.resumeWebSockets();
    await new Promise((r) => setTimeout(r, 500));
    await run.bot.settled();
    expect((await store.events.list('polled')).filter((e) => e.type === 'futures.settlement')).toHaveLength(1);
    expect(logs.filter((l) => l.startsWith('warn SETTLED: '))).toHaveLength(1);
    const report = await run.bot.stop(run.bot.stopRequested);
    expect(report.futures).toMatchObject({ settlementCloses: 1, warnings: [] });
    await run.close();
  }, 120_000);

  it('orders after the contract went SETTLING: the one refusal (-4141) makes the bot read the status, say so once and stop; the strategy’s later orders are never sent', async () => {
    // Long 100, then a buy of 10 on every bar from 07:53 on (each would be refused).
    const steps = new Map<number, PerpStep>([
      [T(7, 50), { buy: 100 }],
      ...[53, 54, 55, 56, 57].map((m): [number, PerpStep] => [T(7, m), { buy: 10 }]),
    ]);
    // --flatten: on a market that no longer trades it sends nothing either.
    const { sim, logs, run } = await startBot('refused', steps, { flatten: true });
    await stepTo(run, T(7, 53));
    // Delisted, the positions not settled yet: SETTLING, orders refused.
    expect(sim.delist(PERP.symbol, { settle: false })).toEqual([]);
    const barsBefore = run.bot.barsHandled;
    const before = posts(sim);
    // 07:53 to 07:57 close, as the replay goes on: the strategy wants to buy 10 on each.
    for (let i = 0; i < 5; i++) {
      sim.step();
      await new Promise((r) => setTimeout(r, 300));
    }
    await run.bot.settled();
    // One request reached the exchange: the bot stopped after its refusal, nothing was retried.
    expect(posts(sim) - before).toBe(1);
    const rejected = run.events.filter((e) => e.type === 'order.rejected');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]?.type === 'order.rejected' && rejected[0].reason).toMatch(/-4141.*Symbol is closed/);
    expect(run.bot.stopRequested).toBe(CLOSED);
    expect(run.bot.barsHandled).toBeLessThanOrEqual(barsBefore + 1);
    expect(logs.filter((l) => l.includes('MARKET CLOSED'))).toHaveLength(1);
    // Not settled yet: the bot's position is still the exchange's.
    expect(exchangeBooks(sim).size).toBe(100);
    expectBooksEqual(run, 'SETTLING, not yet settled');
    const report = await run.bot.stop(run.bot.stopRequested);
    expect(report.reason).toBe(CLOSED);
    expect(posts(sim) - before).toBe(1);
    expect(logs).toContain(
      'warn --flatten: LINK/USDT:USDT no longer trades on the exchange: no order sent for its position of 100; the exchange settles it',
    );
    await run.close();
  }, 120_000);

  it('stopping with --on-shutdown keep on a market that no longer trades: its trailing stop is not parked there (the exchange would refuse it)', async () => {
    const strategy = defineStrategy({
      name: 'perp-trail',
      params: noParams,
      warmup: 'none',
      onStart: () => ({}),
      onBar(ctx, _s, bar) {
        if (bar.time === T(7, 50)) ctx.buy(100);
        // A trail of 50 %: held by Keel, it never triggers here.
        if (bar.time === T(7, 51))
          ctx.submit({
            type: 'trailing-stop',
            side: 'sell',
            amount: 100,
            trail: { kind: 'percent', value: 0.5 },
            reduceOnly: true,
            tag: 'trail',
          });
        if (bar.time === T(7, 53)) ctx.buy(10);
      },
    });
    const { sim, run } = await startBot('keep', strategy, { onShutdown: 'keep' });
    await stepTo(run, T(7, 53));
    sim.delist(PERP.symbol, { settle: false });
    sim.step(); // 07:53 closes: the buy is refused, the bot reads the status and stops
    await until(() => run.bot.stopRequested === CLOSED, 10_000, 'the bot to see the market closed');
    const report = await run.bot.stop(run.bot.stopRequested);
    expect(report.parked).toEqual([]);
    expect(sim.requestCounts()['POST /fapi/v1/algoOrder'] ?? 0).toBe(0);
    await run.close();
  }, 120_000);

  it('settled while the bot was down (kill -9): applied at the next start, once across restarts, and each start stops at once with the market closed; books equal the exchange’s', async () => {
    const sim = await futuresSim(T(7, 50));
    const storeUrl = `sqlite:${path.join(dir, 'down.db')}`;
    const env = {
      KEEL_TEST_MARKET: 'futures',
      KEEL_TEST_LEVERAGE: '4',
      KEEL_TEST_MARGIN: 'isolated',
      KEEL_TEST_SCRIPT: JSON.stringify([[T(7, 50), { buy: 100 }]]),
    };
    const spawnBot = () => new BotProcess(sim.httpUrl, storeUrl, 'down', KEY, 'perp', env);
    const stepThrough = async (p: BotProcess, t: number) => {
      while (sim.now() < t + 60_000) sim.step();
      await p.waitFor(() => p.lines.includes(`SETTLED ${t}`), `bar ${new Date(t).toISOString()} and its orders`);
    };
    /** A start on the delisted market: it reconciles, then stops by itself before any bar. */
    const startClosed = async () => {
      const p = spawnBot();
      await p.waitFor(() => p.lines.some((l) => l.startsWith('REPORT ')), 'the bot to stop by itself', 30_000);
      expect(await p.exited).toBe(0);
      const report = JSON.parse(p.lines.find((l) => l.startsWith('REPORT '))!.slice('REPORT '.length));
      return { p, report };
    };
    let bot = spawnBot();
    try {
      await bot.waitFor(() => bot.lines.includes('READY'), 'the bot to start', 30_000);
      await sim.waitForSubscription('linkusdt@kline_1m', 10_000);
      for (let t = T(7, 50); t <= T(7, 52); t += 60_000) await stepThrough(bot, t);
      expect(exchangeBooks(sim)).toMatchObject({ size: 100, entry: ENTRY });
      await bot.crash();

      // Down: the contract is delisted and settled at 6.9.
      while (sim.now() < T(7, 55)) sim.step();
      const [settled] = sim.delist(PERP.symbol, { price: SETTLE });
      const down = exchangeBooks(sim);
      expect(down).toMatchObject({ size: 0, isolatedWallet: 0 });
      expect(down.wallet).toBeCloseTo(WALLET_AFTER, 8);

      const first = await startClosed();
      bot = first.p;
      const recovery = bot.lines.filter((l) => l.startsWith('RECOVERY '));
      expect(recovery.filter((l) => l.startsWith('RECOVERY settlement-recovered '))).toEqual([
        `RECOVERY settlement-recovered the exchange settled 100 of 100 LINK/USDT:USDT at 6.9 (long; order ${settled?.order.orderId}, ${settled?.order.clientOrderId}, fee 0.345), flat now: the contract was delisted, while the bot was down`,
      ]);
      // Nothing differs: position, entry, wallet and isolated wallet are the exchange's.
      expect(recovery.filter((l) => /-difference /.test(l))).toEqual([]);
      const state = bot.lines.find((l) => l.startsWith('STATE '))!.split(' ');
      expect(Number(state[1])).toBe(0);
      expect(Number(state[2])).toBeCloseTo(WALLET_AFTER, 8);
      const events = bot.lines.filter((l) => l.startsWith('EVENT futures.settlement '));
      expect(events).toHaveLength(1);
      expect(JSON.parse(events[0]!.slice('EVENT futures.settlement '.length)).settlement).toMatchObject({
        size: 100,
        closed: 100,
        price: SETTLE,
        realizedPnl: expect.closeTo(5.3, 9),
        fee: 0.345,
        id: String(settled?.order.orderId),
      });
      expect(bot.err.join('').match(/MARKET CLOSED/g)).toHaveLength(1);
      expect(bot.lines.some((l) => l.startsWith('BAR '))).toBe(false);
      expect(first.report).toMatchObject({ reason: CLOSED, futures: { settlementCloses: 1, warnings: [] } });

      // A second start finds nothing new, and stops the same way.
      const second = await startClosed();
      bot = second.p;
      expect(bot.lines.filter((l) => l.startsWith('RECOVERY ') && /-recovered |-difference /.test(l))).toEqual([]);
      expect(Number(bot.lines.find((l) => l.startsWith('STATE '))!.split(' ')[1])).toBe(0);
      expect(second.report).toMatchObject({ reason: CLOSED, futures: { settlementCloses: 0 } });
      await expectStored(storeUrl, 'down', sim, { type: 'futures.settlement', events: 1, size: 0 });
    } finally {
      if (bot.proc.exitCode === null) await bot.crash();
      await sim.close();
    }
  }, 120_000);
});
