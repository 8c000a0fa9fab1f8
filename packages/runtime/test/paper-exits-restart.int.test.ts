// A paper bot with --stop-loss killed (-9) while long, its stop working in the simulated venue:
// the restart carries the stop over (as a live bot's stays on the exchange) and it closes the
// position where the backtest's does. The stop had reached the venue's book before the kill: it
// goes on resting there, it is not accepted a second time (an illegal transition that stopped
// the restarted bot). The bot runs in its own process on the simulator's candles, as `keel paper
// --exchange-url`. Oracle: the backtest of the same bars with the paper bot's fee model.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseRiskConfig } from '@keel/core';
import { type SimBar, startExchangeSim } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { buyIfFlat } from './fixtures/strategies.ts';
import { BotProcess, binanceSpotBacktest, KEY, MIN, T0 } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-paper-exits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Flat at 40,000; bar 6 falls through the stop (40,000 x 0.98 = 39,200).
const closes = [40_000, 40_000, 40_000, 40_000, 40_000, 40_000, 39_000, 39_000, 39_000];
const bars: SimBar[] = closes.map((c, i) => {
  const o = i === 0 ? c : closes[i - 1]!;
  return { time: T0 + i * MIN, open: o, high: Math.max(o, c) + 5, low: Math.min(o, c) - 5, close: c, volume: 50 };
});
const EXITS = { 'stop-loss': '2%' };

describe('a paper bot’s run-level stop through kill -9 (the bot in its own process)', () => {
  it('the stop resting at the kill goes on working after the restart and sells as in the backtest', async () => {
    const sim = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars, tickSize: 0.01, stepSize: 0.00001 }],
      accounts: [{ ...KEY, balances: { USDT: 10_000 } }],
      startTime: T0,
    });
    const storeUrl = `sqlite:${path.join(dir, 'p.db')}`;
    const settled = (b: BotProcess) => b.lines.filter((l) => l.startsWith('SETTLED ')).length;
    const start = async () => {
      const b = new BotProcess(sim.httpUrl, storeUrl, 'pe', KEY, 'buy-if-flat', {
        KEEL_TEST_MODE: 'paper',
        KEEL_TEST_EXITS: JSON.stringify(EXITS),
      });
      await b.waitFor(() => b.lines.includes('READY'), 'the bot to start', 30_000);
      await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
      return b;
    };
    let bot = await start();
    try {
      // Bar 0: buy; bar 1: it fills, the stop is placed; bar 2: the stop reaches the book.
      for (let k = 1; k <= 3; k++) {
        sim.step();
        await bot.waitFor(() => settled(bot) >= k, `bar ${k - 1}`);
      }
      expect(bot.lines.filter((l) => l.startsWith('EVENT order.accepted ')).length, 'entry and stop accepted').toBe(2);
      await bot.crash();
      sim.step(); // bar 3 closes while the bot is down
      bot = await start();
      for (let k = 1; k <= 4; k++) {
        sim.step();
        await bot.waitFor(() => settled(bot) >= k, `bar ${3 + k} after the restart`);
      }
      bot.proc.kill('SIGTERM');
      expect(await bot.exited, bot.err.join('').slice(-3000)).toBe(0);
    } finally {
      if (bot.proc.exitCode === null && bot.proc.signalCode === null) await bot.crash();
      await sim.close();
    }
    const parsed = parseRiskConfig({ exits: EXITS });
    if (!parsed.ok) throw new Error(parsed.error.message);
    const bt = binanceSpotBacktest(buyIfFlat, bars, parsed.config, 'quote');
    const shape = (f: { side: string; amount: number; price: number; tag?: string | undefined }) =>
      `${f.side} ${f.amount}@${f.price}${f.tag ? ` ${f.tag}` : ''}`;
    expect(bt.fills.map(shape)).toEqual(['buy 0.01@40000', 'sell 0.01@39200 stop-loss']);
    const store = await openStore({ url: storeUrl });
    expect((await store.fills.since('pe', 0)).map(shape)).toEqual(bt.fills.map(shape));
    const stops = (await store.orders.list('pe')).filter((o) => o.request.tag === 'stop-loss');
    expect(
      stops.map((o) => o.status),
      'one stop, carried over',
    ).toEqual(['filled']);
    await store.close();
  }, 60_000);
});
