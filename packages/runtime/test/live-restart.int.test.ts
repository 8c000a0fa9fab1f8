import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runBacktest } from '@keel/core';
import type { ExchangeSim, SimBar } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { exitOrderId } from '../src/index.ts';
import { trailGtd } from './fixtures/strategies.ts';
import { BotProcess, FEED, KEY, MIN, startSim, T0, toSeries } from './live-harness.ts';

/**
 * kill -9 while Keel holds a trailing stop and a GTD order, and again while the trailing stop's
 * exit order is on its way (its response and the user stream both lost). Oracles: the simulator's
 * own orders and fills (nothing lost, nothing sent twice, balances equal) and the backtest of the
 * same bars (the trailing stop triggers on the same bar at the same level).
 */
const dir = mkdtempSync(path.join(tmpdir(), 'keel-restart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Rises 10 a bar for 12 bars (the stop trails the highs 30 below), then falls through the stop. */
const bars: SimBar[] = Array.from({ length: 20 }, (_, i) => {
  if (i < 12) {
    const o = 1000 + 10 * i;
    return { time: T0 + i * MIN, open: o, high: o + 15, low: o - 5, close: o + 10, volume: 100 };
  }
  if (i === 12) return { time: T0 + i * MIN, open: 1120, high: 1125, low: 1090, close: 1100, volume: 100 };
  const o = 1100 - (i - 13) * 5;
  return { time: T0 + i * MIN, open: o, high: o + 5, low: o - 10, close: o - 5, volume: 100 };
});
const TRIGGER_BAR = 12;

describe('kill -9 with a held trailing stop and a GTD order, and again with the exit in flight', () => {
  it('no order lost, none sent twice; the stop resumes from its stored level and triggers on the backtest’s bar', async () => {
    const sim: ExchangeSim = await startSim({ bars, balances: { USDT: 10_000 } });
    const storeUrl = `sqlite:${path.join(dir, 'restart.db')}`;
    const start = async () => {
      const p = new BotProcess(sim.httpUrl, storeUrl, 'restart', KEY, 'trail-gtd');
      await p.waitFor(() => p.lines.includes('READY'), 'the bot to start', 30_000);
      await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
      return p;
    };
    /** Steps the sim until bar `k` (index) has closed and the bot has handled it. */
    const stepThrough = async (p: BotProcess, k: number) => {
      while (sim.now() < T0 + (k + 1) * MIN) sim.step();
      await p.waitFor(() => p.lines.includes(`SETTLED ${T0 + k * MIN}`), `bar ${k} and its orders`);
    };
    const onSim = () => sim.getOrders(KEY.apiKey);
    const storedTrail = async () => {
      const store = await openStore({ url: storeUrl });
      const t = (await store.orders.list('restart')).find((o) => o.request.type === 'trailing-stop')!;
      await store.close();
      return t;
    };
    let bot = await start();
    let triggeredLine: string | undefined;
    try {
      // Orders leave after the bar is handled: wait for each before the market moves on.
      await stepThrough(bot, 0);
      await bot.waitFor(() => bot.lines.some((l) => l.startsWith('EVENT order.filled ')), 'the entry fill');
      await stepThrough(bot, 1);
      await bot.waitFor(() => onSim().some((o) => o.type === 'LIMIT'), 'the GTD order on the exchange');
      for (let k = 2; k <= 3; k++) await stepThrough(bot, k);
      const gtd = onSim().find((o) => o.type === 'LIMIT')!;
      expect(gtd).toMatchObject({ timeInForce: 'GTC', status: 'NEW' });
      await new Promise((r) => setTimeout(r, 200)); // the journal catches up; a kill loses at most the last bar
      await bot.crash();
      const held = await storedTrail();
      expect(held.status).toBe('accepted');
      expect(held.stopLevel).toBeGreaterThan(1000);

      // Down while the GTD order's expiry (T0 + 6 min) passes.
      while (sim.now() < T0 + 7 * MIN) sim.step();
      bot = await start();
      const recovery = bot.lines.filter((l) => l.startsWith('RECOVERY '));
      expect(recovery).toContain(
        `RECOVERY order-held-by-keel ${held.request.id}: trailing-stop sell ${held.request.amount}, stop level ${held.stopLevel}`,
      );
      expect(recovery).toContain(`RECOVERY order-expired-while-down ${gtd.clientOrderId}: expired`);
      expect(onSim().find((o) => o.clientOrderId === gtd.clientOrderId)?.status).toBe('CANCELED');

      // The exit leaves on the trigger bar; its response and the user stream are lost, and the
      // bot is killed as soon as the exchange has the order.
      await stepThrough(bot, TRIGGER_BAR - 1);
      sim.faults.stallWebSockets({ kind: 'user' });
      sim.faults.holdHttpResponses({ path: '/api/v3/order', method: 'POST', count: 1, execute: true });
      sim.step();
      const exitId = exitOrderId(held.request.id);
      await bot.waitFor(() => onSim().some((o) => o.clientOrderId === exitId), 'the exit order on the exchange');
      triggeredLine = bot.lines.find((l) => l.startsWith(`EVENT order.triggered ${held.request.id} `));
      await bot.crash();
      sim.faults.reset();
      sim.faults.resumeWebSockets();

      bot = await start();
      expect(bot.lines).toContain(`RECOVERY order-closed-while-down ${held.request.id}: filled`);
      await stepThrough(bot, TRIGGER_BAR + 2);
      bot.proc.kill('SIGTERM');
      await bot.exited;
      expect(bot.lines.some((l) => l.startsWith('REPORT '))).toBe(true);
    } finally {
      if (bot.proc.exitCode === null) bot.proc.kill('SIGKILL');
      await sim.close();
    }

    // The simulator's records: every client id once, one exit, the trailing stop itself never sent.
    const orders = onSim();
    const ids = orders.map((o) => o.clientOrderId);
    expect(new Set(ids).size, `a client order id twice: ${ids.join(',')}`).toBe(ids.length);
    const trail = await storedTrail();
    expect(ids).not.toContain(trail.request.id);
    const exit = orders.filter((o) => o.clientOrderId === exitOrderId(trail.request.id));
    expect(exit).toHaveLength(1);
    expect(exit[0]).toMatchObject({ type: 'MARKET', side: 'SELL', status: 'FILLED' });
    expect(orders.filter((o) => o.type === 'MARKET' && o.side === 'BUY')).toHaveLength(1);

    // Oracle: the backtest of the same bars.
    const bt = runBacktest({
      strategy: trailGtd,
      data: [{ ...FEED, series: toSeries(bars) }],
      cash: 10_000,
      fee: 0.001,
    });
    const btTrail = bt.orders.find((o) => o.request.type === 'trailing-stop')!;
    const btExit = bt.fills.find((f) => f.orderId === btTrail.request.id)!;
    expect(btExit.time).toBe(T0 + (TRIGGER_BAR + 1) * MIN);
    expect(triggeredLine, 'triggered at the close of the backtest’s fill bar, at its fill price').toBe(
      `EVENT order.triggered ${trail.request.id} ${btExit.time} ${btExit.price}`,
    );
    expect(bt.orders.find((o) => o.request.tag === 'gtd')?.status).toBe('expired');

    const store = await openStore({ url: storeUrl });
    try {
      expect(trail).toMatchObject({ status: 'filled', stopLevel: btExit.price, filled: exit[0]!.executedQty });
      // Expired while the bot was down, named as GTD (as a backtest names it), with what recovery did.
      expect((await store.orders.list('restart')).find((o) => o.request.tag === 'gtd')).toMatchObject({
        status: 'expired',
        reason: `GTD: expired at ${new Date(T0 + 6 * MIN).toISOString()} with 0 of 0.1 filled (the bot was down then: cancelled during recovery)`,
      });
      const fills = await store.fills.since('restart', 0);
      const simTrades = orders.flatMap((o) => o.fills.map((f) => String(f.tradeId)));
      expect(fills.map((f) => f.tradeId).sort()).toEqual(simTrades.sort());
      expect(fills.find((f) => f.orderId === trail.request.id)?.price, 'exit at the next open').toBe(
        bars[TRIGGER_BAR + 1]!.open,
      );
      const simBal = sim.getBalances(KEY.apiKey) as Record<string, { free: number; locked: number }>;
      const local = Object.fromEntries((await store.balances.load('restart')).map((b) => [b.asset, b.total]));
      expect(local.USDT).toBeCloseTo(simBal.USDT!.free + simBal.USDT!.locked, 6);
      expect(local.BTC ?? 0).toBeCloseTo((simBal.BTC?.free ?? 0) + (simBal.BTC?.locked ?? 0), 8);
    } finally {
      await store.close();
    }
  }, 120_000);
});
