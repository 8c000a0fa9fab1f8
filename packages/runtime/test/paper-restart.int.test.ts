// A paper bot restarted as a user restarts it: SIGTERM, start again, SIGTERM, start again, kill -9
// while long, start again. Each run is its own process (the real ccxt client, candles from the
// exchange simulator over loopback, as `keel paper --exchange-url`). Oracle: the fills themselves.
// Every fill a run made is in the store once, with its order; the position row, the balance rows
// and the restarted bot's state are what those fills add up to.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { BotProcess, KEY, realCandles, simBars, startSim, until } from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('paper bot restarts');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-paper-restart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!HAS_SHARED_DATA)('a paper bot through SIGTERM, restart and kill -9 (real ccxt, loopback)', () => {
  it('every fill of every run is stored with its order; position and balance rows agree; the restart resumes the books', async () => {
    const bars = simBars(realCandles(90));
    const sim = await startSim({ bars });
    const storeUrl = `sqlite:${path.join(dir, 'paper.db')}`;
    const runs: BotProcess[] = [];
    const start = async () => {
      const bot = new BotProcess(sim.httpUrl, storeUrl, 'pb', KEY, 'churn', { KEEL_TEST_MODE: 'paper' });
      runs.push(bot);
      await bot.waitFor(() => bot.lines.includes('READY'), 'the paper bot to start', 30_000);
      await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
      return bot;
    };
    const step = async (bot: BotProcess, n: number) => {
      for (let k = 0; k < n; k++) {
        const seen = bot.bars().length;
        sim.step();
        await bot.waitFor(() => bot.bars().length > seen, 'the next bar');
      }
    };
    const positions = (bot: BotProcess) =>
      bot.lines.filter((l) => l.startsWith('POSITION ')).map((l) => l.split(' ').slice(1));
    try {
      for (let session = 0; session < 2; session++) {
        const bot = await start();
        await step(bot, 14);
        bot.proc.kill('SIGTERM');
        expect(await bot.exited, bot.err.join('').slice(-3000)).toBe(0);
      }
      // Third run: trade until long, then kill -9.
      const crashed = await start();
      await step(crashed, 3);
      while (Number(positions(crashed).at(-1)?.[1] ?? 0) <= 0) await step(crashed, 1);
      // A paper fill exists only in the bot: the kill comes once its rows are written (a fill
      // not yet written when a paper bot dies is lost with it; there is no exchange to ask).
      const [, sizeAtCrash, cashAtCrash] = positions(crashed).at(-1)!;
      const made = () => runs.flatMap((r) => r.lines.filter((l) => l.startsWith('EVENT order.filled '))).length;
      const peek = await openStore({ url: storeUrl });
      const stored = async () => (await peek.fills.since('pb', 0)).length;
      const cashRow = async () => (await peek.balances.load('pb')).find((b) => b.asset === 'USDT')?.total;
      await until(
        async () => (await stored()) >= made() && String(await cashRow()) === cashAtCrash,
        10_000,
        'the fills and balances to be written',
      ).catch(() => undefined);
      expect(await stored(), 'fills the runs made vs fills stored, before the kill').toBe(made());
      await peek.close();
      await crashed.crash();
      sim.step(); // the market moves on while the bot is down
      sim.step();
      const restarted = await start();
      // The restarted bot holds what the crashed one held: its position and its cash.
      expect(restarted.lines.find((l) => l.startsWith('STATE '))).toBe(`STATE ${sizeAtCrash} ${cashAtCrash}`);
      await step(restarted, 8);
      restarted.proc.kill('SIGTERM');
      expect(await restarted.exited, restarted.err.join('').slice(-3000)).toBe(0);
    } finally {
      for (const r of runs) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
      await sim.close();
    }

    const store = await openStore({ url: storeUrl });
    try {
      const fills = await store.fills.since('pb', 0);
      // Every fill each run's engine made (its order.filled events) is stored, once.
      const made = runs.flatMap((r) => r.lines.filter((l) => l.startsWith('EVENT order.filled ')));
      expect(made.length).toBeGreaterThan(8);
      expect(fills.length, 'fills made by the runs vs fills stored').toBe(made.length);
      expect(new Set(fills.map((f) => f.tradeId)).size).toBe(fills.length);
      // Orders filled == fills stored: each paper market order fills once, and its row says so.
      const filled = await store.orders.list('pb', { status: ['filled'] });
      expect(filled.map((o) => o.request.id).sort()).toEqual(fills.map((f) => f.orderId).sort());
      for (const o of filled) {
        const own = fills.filter((f) => f.orderId === o.request.id);
        expect(own.reduce((a, f) => a + f.amount, 0)).toBeCloseTo(o.filled, 12);
      }
      // The books as the fills add them up (fees in USDT at 0.1 %).
      let size = 0;
      let cash = 10_000;
      for (const f of fills) {
        size += f.side === 'buy' ? f.amount : -f.amount;
        cash += (f.side === 'buy' ? -1 : 1) * f.amount * f.price - f.fee;
      }
      const position = await store.positions.get('pb', 'BTC/USDT');
      const balances = Object.fromEntries((await store.balances.load('pb')).map((b) => [b.asset, b.total]));
      expect(position?.size ?? 0, 'position row vs the fills').toBeCloseTo(size, 12);
      expect(balances.BTC ?? 0, 'balance row vs position row').toBeCloseTo(position?.size ?? 0, 12);
      expect(balances.USDT, 'cash row vs the fills').toBeCloseTo(cash, 6);
      // The last run's report: its equity is its cash and position at the last close.
      const last = runs.at(-1)!;
      const report = JSON.parse(last.lines.find((l) => l.startsWith('REPORT '))!.slice(7)) as {
        cash: number;
        equity: number;
      };
      expect(report.cash).toBeCloseTo(cash, 6);
      const lastBar = Math.max(...last.bars());
      const close = bars.find((b) => b.time === lastBar)!.close;
      expect(report.equity).toBeCloseTo(cash + size * close, 6);
      expect(report.equity).toBeGreaterThan(9_000);
    } finally {
      await store.close();
    }
  }, 240_000);
});
