// A restart must not change what the strategy decides. The live bot (sma-cross 10/30, real ccxt,
// its own process, the simulator over loopback) warms up on 60 bars of the exchange's history, is
// killed with SIGKILL on the bar before a crossing and stopped with SIGTERM on the bar before the
// next one, and restarted each time. At every restart the strategy warms up again on the
// exchange's history up to where it stopped, onBar included (its CrossOver's last side), so the
// first bar after the restart trades the crossing. Oracle: the backtest of the same real candles:
// every order the bot placed was decided on the bar the backtest decides one, on the same side.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runBacktest } from '@keel/core';
import { startExchangeSim } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import type { SessionReport } from '../src/bot.ts';
import { sessionSummary } from '../src/cli.ts';
import { botParity } from '../src/index.ts';
import { BotProcess, FEED, KEY, MIN, realCandles, simBars, toSeries } from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('strategy state through restarts');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-restart-warmup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const WARM = 60;

describe.skipIf(!HAS_SHARED_DATA)('strategy state through kill -9 and SIGTERM (real ccxt, loopback)', () => {
  it('sma-cross restarted on the bar before a crossing trades that crossing, as the backtest of the same bars does', async () => {
    const bars = simBars(realCandles(240));
    const smaCross = getStrategy('sma-cross');
    // The oracle's decisions: [decision bar's open time, side].
    const backtest = runBacktest({ strategy: smaCross, data: [{ ...FEED, series: toSeries(bars) }], cash: 10_000 });
    const decisions = backtest.orders.map((o) => [o.createdAt - MIN, o.request.side] as const);
    // The bot starts where the backtest is flat (it holds nothing either) with WARM bars before it.
    // and the next crossing three bars later or more.
    const startAt = bars.findIndex(
      (b, i) =>
        i >= WARM &&
        decisions.filter(([t]) => t < b.time).length % 2 === 0 &&
        (decisions.find(([t]) => t >= b.time)?.[0] ?? Number.NEGATIVE_INFINITY) >= b.time + 3 * MIN,
    );
    const live = decisions.filter(([t]) => t >= bars[startAt]!.time);
    expect(live.length, 'crossings after the start').toBeGreaterThanOrEqual(3);
    const sim = await startExchangeSim({
      markets: [{ symbol: FEED.symbol, bars }],
      accounts: [{ ...KEY, balances: { USDT: 10_000 } }],
      startTime: bars[startAt]!.time,
    });
    const storeUrl = `sqlite:${path.join(dir, 'warm.db')}`;
    const runs: BotProcess[] = [];
    const start = async () => {
      const bot = new BotProcess(sim.httpUrl, storeUrl, 'warm', KEY, 'sma-cross', { KEEL_TEST_WARMUP: String(WARM) });
      runs.push(bot);
      await bot.waitFor(() => bot.lines.includes('READY'), 'the bot to start', 30_000);
      await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
      return bot;
    };
    /** Steps until the bot has handled (and settled) the bar opening at `t`. */
    const stepTo = async (bot: BotProcess, t: number) => {
      while (!bot.lines.includes(`SETTLED ${t}`)) {
        const seen = bot.bars().length;
        sim.step();
        await bot.waitFor(() => bot.bars().length > seen, 'the next bar');
        await bot.waitFor(() => bot.lines.includes(`SETTLED ${bot.bars().at(-1)}`), 'the bar to settle');
      }
    };
    try {
      const first = await start();
      await stepTo(first, live[0]![0] - MIN);
      expect(first.err.join('')).toMatch(/warmed up on 60 past bar\(s\)/);
      await first.crash();

      const second = await start();
      await stepTo(second, live[0]![0]);
      // The history up to the last bar handled warmed the strategy up again (onBar ran from its 30th
      // bar, when the slow SMA is defined): no bar handled twice, none skipped.
      const warmed = second.lines.filter((l) => l.startsWith('WARM ')).map((l) => Number(l.slice(5)));
      expect(warmed).toEqual(Array.from({ length: WARM - 29 }, (_, i) => live[0]![0] - (WARM - 29 - i) * MIN));
      expect(second.bars()[0]).toBe(live[0]![0]);
      await stepTo(second, live[1]![0] - MIN);
      second.proc.kill('SIGTERM');
      expect(await second.exited, second.err.join('').slice(-3000)).toBe(0);
      // The log says what the warm-up asked for; the report counts it; the summary line names it.
      const said =
        /warmed up on 60 past bar\(s\) \([^)]*\): the strategy ran on them(?: and asked for (\d+) order\(s\), none sent)?/.exec(
          second.err.join(''),
        );
      expect(said, second.err.join('').slice(-3000)).not.toBeNull();
      const report = JSON.parse(second.lines.find((l) => l.startsWith('REPORT '))!.slice(7)) as SessionReport;
      expect(report.signalsDropped.warmup).toBe(Number(said![1] ?? 0));
      const summary = sessionSummary(report);
      if (report.signalsDropped.warmup > 0)
        expect(summary).toContain(
          `; signals not traded: ${report.signalsDropped.warmup} asked for while warming up on past bars`,
        );
      else expect(summary).not.toContain('signals not traded');

      const third = await start();
      await stepTo(third, live[2]![0]);
      third.proc.kill('SIGTERM');
      expect(await third.exited, third.err.join('').slice(-3000)).toBe(0);
    } finally {
      for (const r of runs) if (r.proc.exitCode === null) r.proc.kill('SIGKILL');
      await sim.close();
    }

    const store = await openStore({ url: storeUrl });
    try {
      const orders = await store.orders.list('warm');
      const placed = orders.map((o) => [o.createdAt - MIN, o.request.side] as const);
      // Each crossing the backtest traded after the start, the bot traded, on the same bar, and nothing else:
      // the first bar after each restart included.
      expect(placed).toEqual(live.slice(0, 3));
      expect(orders.every((o) => o.status === 'filled')).toBe(true);
      // keel bots parity warms its backtest up on the bars each session warmed up on, the same way:
      // every order of the three sessions is one the backtest of what the bot saw made too.
      const { result } = await botParity(store, 'warm');
      expect(result.sessions.map((x) => [x.seq, x.warmupBars])).toEqual([
        [1, WARM],
        [2, WARM],
        [3, WARM],
      ]);
      // (A first start's history is its warm-up, not bars it handled: the backtest trades none of it.)
      expect(result.orders).toMatchObject({ bot: 3, backtest: 3, matched: 3 });
      expect(result.differences.filter((d) => d.kind !== 'price' && d.kind !== 'fee')).toEqual([]);
    } finally {
      await store.close();
    }
  }, 180_000);
});
