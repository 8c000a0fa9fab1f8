// A paper bot on two markets killed in the middle of a close time (after one market's strategy ran,
// before the other's) and restarted: it handles that close time again, whole, and its fills are
// the backtest's. Oracle: runBacktest of the same bars with the same settings.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineInstrument, defineStrategy, type Fill, runBacktest, SMA, syntheticBars } from '@keel/core';
import { systemTimer } from '@keel/exchange';
import { openStore, type Store } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { Bot, botParity, mergeSources, replaySource } from '../src/index.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-close-time-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MIN = 60_000;
const start = Date.UTC(2024, 0, 1);
const markets = [
  { symbol: 'AAA/USDT', series: syntheticBars(400, { seed: 3, start, intervalMs: MIN }) },
  { symbol: 'BBB/USDT', series: syntheticBars(400, { seed: 5, start, intervalMs: MIN }) },
];
const feeds = markets.map((m) => ({ symbol: m.symbol, timeframe: '1m' as const }));
const params = {};
/**
 * Long `orderTargetPercent(0.9)` while SMA(2) is above SMA(6), flat otherwise: each decision reads
 * only the indicators and the position, which a restart restores, so a bar handled again after a
 * crash is decided as the first time (a crossover's memory would start afresh).
 */
const trend = defineStrategy({
  name: 'trend',
  params: { safeParse: (x: unknown) => ({ success: true as const, data: x }) },
  onStart: (ctx) => ({ fast: ctx.indicator(new SMA(2)), slow: ctx.indicator(new SMA(6)) }),
  onBar(ctx, s) {
    const up = s.fast.value > s.slow.value;
    const size = ctx.position().size;
    if (up && size === 0) ctx.orderTargetPercent(0.9);
    else if (!up && size > 0) ctx.close();
  },
});
const shape = (f: Pick<Fill, 'symbol' | 'side' | 'time' | 'price' | 'amount' | 'fee'>) =>
  `${f.symbol} ${f.side} ${f.time} ${f.price} ${f.amount} ${f.fee}`;

/** Both markets' replays through the bot's merge (the backtest's order, a close time's bars together). */
const source = () =>
  mergeSources(
    feeds,
    markets.map((m, i) => replaySource(feeds[i] as (typeof feeds)[number], m.series)),
    { lateAfterMs: 5_000, timer: systemTimer },
  );

describe('a close time partly handled before a kill -9', () => {
  it('the restart handles it again, whole: the fills of the backtest, none twice', async () => {
    const model = runBacktest({
      strategy: trend,
      params,
      data: markets.map((m) => ({ ...m, timeframe: '1m' as const })),
      perPair: {},
      cash: 10_000,
      fee: 0.001,
    });
    // The close to crash in: AAA decides an order there while BBB's order filled at that close's
    // bar (so AAA's size depends on BBB's fill, and BBB's strategy has not run yet at the crash).
    const crashAt = model.orders.find(
      (o) =>
        o.request.symbol === 'AAA/USDT' &&
        model.fills.some((f) => f.symbol === 'BBB/USDT' && f.time === o.createdAt) &&
        o.createdAt > start + 50 * MIN,
    )?.createdAt as number;
    expect(crashAt).toBeGreaterThan(0);

    const store: Store = await openStore({ url: `sqlite:${path.join(dir, 'bot.db')}` });
    const botId = 'close-time-paper';
    let bot: Bot | undefined;
    let dead = false;
    // What dies: after AAA's strategy has run at `crashAt` (and its bar is done), as BBB's strategy
    // is about to run, nothing more reaches the store.
    const dying = defineStrategy({
      ...trend,
      onBar(ctx, s, bar, feed) {
        if (!dead && feed.symbol === 'BBB/USDT' && bar.time + MIN === crashAt) {
          dead = true;
          bot?.abandon();
        }
        trend.onBar(ctx, s, bar, feed);
      },
    });
    const cfg = (strategy: typeof trend) => ({
      botId,
      mode: 'paper' as const,
      strategy,
      params,
      feeds,
      instruments: markets.map((m) => defineInstrument({ symbol: m.symbol })),
      store,
      log: () => {},
      paperCash: 10_000,
      paperFee: 0.001,
      lockTtlMs: 200,
      perPair: {},
    });
    bot = new Bot(cfg(dying));
    await bot.start();
    const journal = bot.journal;
    const enqueue = journal.enqueue.bind(journal);
    journal.enqueue = (w) => {
      if (!dead) enqueue(w);
    };
    await bot.run(source());
    await journal.flush(); // what the crash leaves: every write queued before it
    expect(dead).toBe(true);

    // At the crash, both markets' fills of that close and AAA's order of it are stored, and neither
    // bar of it is recorded.
    const aaaOrder = (await store.orders.open(botId)).find((o) => o.request.symbol === 'AAA/USDT');
    expect(aaaOrder?.createdAt).toBe(crashAt);
    const stored = (await store.fills.since(botId, 0)).map(shape);
    expect(stored.some((f) => f.startsWith('BBB/USDT') && f.includes(` ${crashAt} `))).toBe(true);
    const state = (await store.state.load(botId))?.state as { lastBarTime: Record<string, number> };
    expect(state.lastBarTime).toEqual({ 'AAA/USDT@1m': crashAt - 2 * MIN, 'BBB/USDT@1m': crashAt - 2 * MIN });

    await new Promise((r) => setTimeout(r, 250)); // the crashed instance's lock expires
    const again = new Bot(cfg(trend));
    await again.start();
    await again.run(source());
    await again.stop();
    const all = (await store.fills.since(botId, 0)).map(shape);
    // Parity replays each session's close times whole: the crashed one belongs to the second.
    const { result } = await botParity(store, botId, { strategies: () => trend });
    await store.close();
    expect(all).toEqual(model.fills.map(shape));
    expect(result.sessions.length).toBe(2);
    expect(result.differences).toEqual([]);
  }, 60_000);
});
