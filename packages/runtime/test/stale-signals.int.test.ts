// A signal is valid for the bar it was made on. An order that could not leave in time (a 429
// storm holds the requests back) is dropped, not sent late; bars missed while the bot was down
// warm the strategy up without trading (`--catch-up none`), or let only the last one trade
// (`last`). Oracle: the simulator's own records (each order's arrival time on its replay clock)
// against each order's decision bar, and the bot's store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineStrategy } from '@keel/core';
import { type ExchangeSim, startExchangeSim } from '@keel/exchange-sim';
import { openStore, type Store } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSignalAge } from '../src/cli.ts';
import { noParams } from './fixtures/strategies.ts';
import { KEY, MIN, movableWallClock, startLiveBot, T0, until } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-stale-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A signal on every bar: buy 0.001 BTC. */
const everyBar = defineStrategy({
  name: 'every-bar',
  params: noParams,
  warmup: 'none',
  onStart: () => ({}),
  onBar(ctx) {
    ctx.buy(0.001);
  },
});

const bars = Array.from({ length: 80 }, (_, i) => {
  const o = 40_000 + 10 * Math.sin(i / 5);
  return { time: T0 + i * MIN, open: o, high: o + 10, low: o - 10, close: o + 2, volume: 50 };
});

async function orderTimes(store: Store, botId: string, sim: ExchangeSim) {
  const local = new Map((await store.orders.list(botId)).map((o) => [o.request.id as string, o]));
  return sim.getOrders(KEY.apiKey).map((o) => {
    const mine = local.get(o.clientOrderId);
    if (!mine) throw new Error(`exchange order ${o.clientOrderId} unknown to the bot`);
    return { id: o.clientOrderId, arrived: o.time, decided: mine.createdAt };
  });
}

describe('stale signals are dropped, never sent late (real ccxt, loopback)', () => {
  it('--max-signal-age takes bars or a duration', () => {
    expect(parseSignalAge('1')).toEqual({ bars: 1 });
    expect(parseSignalAge('3bars')).toEqual({ bars: 3 });
    expect(parseSignalAge('30s')).toEqual({ ms: 30_000 });
    expect(parseSignalAge('500ms')).toEqual({ ms: 500 });
    expect(parseSignalAge('2m')).toEqual({ ms: 120_000 });
    expect(parseSignalAge('0')).toMatch(/not an age/);
    expect(parseSignalAge('1.5')).toMatch(/whole/);
    expect(parseSignalAge('soon')).toMatch(/not an age/);
  });

  it('a 429 storm: no order leaves after the bar that follows its decision; the others are dropped, logged and counted', async () => {
    const wall = movableWallClock();
    const sim = await startExchangeSim({
      wallClock: wall.now,
      markets: [{ symbol: 'BTC/USDT', bars }],
      accounts: [{ ...KEY, balances: { USDT: 100_000 } }],
      startTime: T0,
    });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'storm.db')}`, synchronous: 'NORMAL' });
    const logged: string[] = [];
    const run = await startLiveBot({
      exchange: sim,
      store,
      strategy: everyBar,
      botId: 'storm',
      log: (_l, m) => logged.push(m),
    });
    let report: ReturnType<typeof run.bot.report>;
    try {
      for (let k = 0; k < 3; k++) await run.step();
      wall.toMinuteEnd(2_000, sim); // the storm's Retry-After: ~2 s
      sim.faults.rateLimitStorm({ count: 6 });
      for (let k = 0; k < 20; k++) {
        const n = run.bot.barsHandled;
        sim.step();
        await run.timer.advance(sim.now() - run.timer.now());
        await until(() => run.bot.barsHandled > n, 10_000, 'the bar');
        await new Promise((r) => setTimeout(r, 150));
      }
      await run.bot.settled();
      for (let k = 0; k < 3; k++) await run.step();
      report = run.bot.report();
    } finally {
      await run.close();
      await sim.close();
    }
    const times = await orderTimes(store, 'storm', sim);
    const late = times.filter((t) => !(t.arrived < t.decided + MIN));
    expect(late, 'orders that reached the exchange after their bar was over').toEqual([]);
    const dropped = await store.orders.list('storm', { status: ['cancelled'] });
    const stale = dropped.filter((o) => /^signal expired/.test(o.reason ?? ''));
    expect(stale.length).toBeGreaterThan(0);
    expect(report!.signalsDropped.stale).toBe(stale.length);
    // Every signal either reached the exchange in its bar or was dropped saying why.
    expect(times.length + stale.length).toBe((await store.orders.list('storm')).length);
    // Each drop is in the log (the venue's warning and the order's cancel line both name it).
    const loggedDrops = logged.filter((m) => / signal expired: not placed within 1 bar of its decision/.test(m));
    for (const o of stale) expect(loggedDrops.some((m) => m.includes(o.request.id))).toBe(true);
    await store.close();
  }, 120_000);

  for (const policy of ['none', 'last'] as const) {
    it(`a restart after downtime with --catch-up ${policy}: ${policy === 'none' ? 'no order for a missed bar' : 'only the last missed bar trades'}; the strategy ran on them`, async () => {
      const sim = await startExchangeSim({
        markets: [{ symbol: 'BTC/USDT', bars }],
        accounts: [{ ...KEY, balances: { USDT: 100_000 } }],
        startTime: T0,
      });
      const store = await openStore({ url: `sqlite:${path.join(dir, `catch-${policy}.db`)}`, synchronous: 'NORMAL' });
      const botId = `catch-${policy}`;
      const seen: number[] = [];
      const watching = defineStrategy({
        ...everyBar,
        onBar(ctx, s, bar, feed) {
          seen.push(bar.time);
          everyBar.onBar(ctx, s, bar, feed);
        },
      });
      try {
        const first = await startLiveBot({ exchange: sim, store, strategy: watching, botId });
        for (let k = 0; k < 3; k++) await first.step();
        await first.close();
        const lastHandled = seen.at(-1)!;
        for (let k = 0; k < 5; k++) sim.step(); // five bars close while the bot is down
        const missed = [1, 2, 3, 4, 5].map((i) => lastHandled + i * MIN);
        const logged: string[] = [];
        const second = await startLiveBot({
          exchange: sim,
          store,
          strategy: watching,
          botId,
          bot: { catchUp: policy },
          log: (_l, m) => logged.push(m),
        });
        await until(() => second.bot.barsHandled >= 5, 10_000, 'the missed bars');
        await second.bot.settled();
        for (let k = 0; k < 2; k++) await second.step();
        const report = second.bot.report();
        await second.close();

        // The strategy ran on every missed bar (warmed up), then on the live ones.
        expect(seen.filter((t) => t > lastHandled).slice(0, 5)).toEqual(missed);
        const times = await orderTimes(store, botId, sim);
        const decidedOn = times.map((t) => t.decided - MIN); // the decision bar's open time
        const onMissed = decidedOn.filter((t) => missed.includes(t));
        expect(onMissed).toEqual(policy === 'none' ? [] : [missed[4]]);
        expect(report.signalsDropped.catchUp).toBe(policy === 'none' ? 5 : 4);
        expect(logged.some((m) => m.startsWith('caught up on 5 bar(s) missed while the bot was down'))).toBe(true);
        const denied = await store.orders.list(botId, { status: ['denied'] });
        expect(denied.map((o) => o.reason)).toEqual(
          missed
            .slice(0, policy === 'none' ? 5 : 4)
            .map(
              (t) =>
                `catching up: the bar of ${new Date(t).toISOString()} closed while the bot was down; its signals are not traded (--catch-up ${policy})`,
            ),
        );
        // The live bars after the catch-up trade as usual.
        expect(decidedOn.filter((t) => t > missed[4]!)).toHaveLength(2);
      } finally {
        await sim.close();
        await store.close();
      }
    }, 120_000);
  }
});
