import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExchangeSim, SimBar } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { exitOrderId, parkOrderId } from '../src/index.ts';
import { BotProcess, KEY, MIN, startSim, T0 } from './live-harness.ts';

/**
 * A trailing stop is held by Keel: nothing on the exchange trails it while the bot is stopped.
 * Stopped with `--on-shutdown keep`, the bot parks each held trailing stop on the exchange as a
 * stop-market at its current level; the next start cancels it and trails again, or, if the
 * market fell through it meanwhile, takes its fill as the trailing stop's. Oracle: the
 * simulator's own orders, fills and balances. Real ccxt client, the bot in its own process.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'keel-park-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Rises 10 a bar for 12 bars (the stop trails the highs 30 below), then falls through the stop. */
const bars: SimBar[] = Array.from({ length: 24 }, (_, i) => {
  if (i < 12) {
    const o = 1000 + 10 * i;
    return { time: T0 + i * MIN, open: o, high: o + 15, low: o - 5, close: o + 10, volume: 100 };
  }
  const o = 1120 - (i - 12) * 15;
  return { time: T0 + i * MIN, open: o, high: o + 5, low: o - 20, close: o - 15, volume: 100 };
});

async function session(name: string) {
  const sim: ExchangeSim = await startSim({ bars, balances: { USDT: 10_000 } });
  const storeUrl = `sqlite:${path.join(dir, `${name}.db`)}`;
  const start = async () => {
    const p = new BotProcess(sim.httpUrl, storeUrl, name, KEY, 'trail', { KEEL_TEST_ON_SHUTDOWN: 'keep' });
    await p.waitFor(() => p.lines.includes('READY'), 'the bot to start', 30_000);
    await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
    return p;
  };
  const stepThrough = async (p: BotProcess, k: number) => {
    while (sim.now() < T0 + (k + 1) * MIN) sim.step();
    await p.waitFor(() => p.lines.includes(`SETTLED ${T0 + k * MIN}`), `bar ${k} and its orders`);
  };
  const stop = async (p: BotProcess) => {
    p.proc.kill('SIGTERM');
    await p.exited;
    expect(
      p.lines.some((l) => l.startsWith('REPORT ')),
      p.err.join(''),
    ).toBe(true);
  };
  const stored = async () => {
    const store = await openStore({ url: storeUrl });
    try {
      const trail = (await store.orders.list(name)).find((o) => o.request.type === 'trailing-stop')!;
      const fills = await store.fills.since(name, 0);
      const balances = Object.fromEntries((await store.balances.load(name)).map((b) => [b.asset, b.total]));
      return { trail, fills, balances };
    } finally {
      await store.close();
    }
  };
  /** Every client id once; the store's fills and balances are the simulator's. */
  const checkAgainstSim = async () => {
    const orders = sim.getOrders(KEY.apiKey);
    const ids = orders.map((o) => o.clientOrderId);
    expect(new Set(ids).size, `a client order id twice: ${ids.join(',')}`).toBe(ids.length);
    const { fills, balances } = await stored();
    const trades = orders.flatMap((o) => o.fills.map((f) => String(f.tradeId)));
    expect(new Set(fills.map((f) => f.tradeId))).toEqual(new Set(trades));
    expect(fills).toHaveLength(trades.length);
    const simBal = sim.getBalances(KEY.apiKey) as Record<string, { free: number; locked: number }>;
    const total = (a: string) => (simBal[a]?.free ?? 0) + (simBal[a]?.locked ?? 0);
    expect(balances.USDT).toBeCloseTo(total('USDT'), 6);
    expect(balances.BTC ?? 0).toBeCloseTo(total('BTC'), 8);
    return orders;
  };
  return { sim, start, stepThrough, stop, stored, checkAgainstSim };
}

describe('held trailing stops are parked on the exchange while the bot is stopped (keep)', () => {
  it('the market falls through the parked stop while the bot is down: its fill is the trailing stop’s', async () => {
    const s = await session('park-fill');
    let bot = await s.start();
    try {
      for (let k = 0; k <= 5; k++) await s.stepThrough(bot, k);
      await s.stop(bot);
      const { trail } = await s.stored();
      const pid = parkOrderId(trail.request.id);
      const parked = s.sim.getOrders(KEY.apiKey).find((o) => o.clientOrderId === pid);
      expect(parked).toMatchObject({ type: 'STOP_LOSS', side: 'SELL', status: 'NEW', stopPrice: trail.stopLevel });
      expect(bot.err.join('')).toContain(`trailing stop ${trail.request.id} parked on the exchange`);
      const report = JSON.parse(bot.lines.find((l) => l.startsWith('REPORT '))!.slice(7)) as { parked: string[] };
      expect(report.parked).toEqual([pid]);

      // Down while the market rises, then falls through the parked level.
      while (s.sim.now() < T0 + 20 * MIN) s.sim.step();
      expect(s.sim.getOrders(KEY.apiKey).find((o) => o.clientOrderId === pid)?.status).toBe('FILLED');

      bot = await s.start();
      expect(bot.lines).toContain(
        `RECOVERY order-closed-while-down ${trail.request.id}: filled by its parked stop ${pid}`,
      );
      expect(bot.lines.filter((l) => l.startsWith('RECOVERY unknown-order'))).toEqual([]);
      await s.stepThrough(bot, 21);
      await s.stop(bot);
    } finally {
      if (bot.proc.exitCode === null) bot.proc.kill('SIGKILL');
      await s.sim.close();
    }
    const orders = await s.checkAgainstSim();
    const { trail, balances } = await s.stored();
    expect(trail).toMatchObject({ status: 'filled' });
    expect(orders.some((o) => o.clientOrderId === exitOrderId(trail.request.id))).toBe(false); // no second exit
    expect(balances.BTC ?? 0).toBeLessThan(0.0001); // sold: only the fee's dust is left
  }, 90_000);

  it('stopped on the bar it was placed on (no level yet): parked where its first bar anchors it, its decision price less the trail', async () => {
    const s = await session('park-new');
    const bot = await s.start();
    try {
      // Bar 0 buys; bar 1 (close 1020) places the trailing stop 30 below; the bot stops before bar 2.
      for (let k = 0; k <= 1; k++) await s.stepThrough(bot, k);
      await s.stop(bot);
    } finally {
      if (bot.proc.exitCode === null) bot.proc.kill('SIGKILL');
      await s.sim.close();
    }
    const { trail } = await s.stored();
    expect(trail.createdAt).toBe(T0 + 2 * MIN);
    const parked = s.sim.getOrders(KEY.apiKey).find((o) => o.clientOrderId === parkOrderId(trail.request.id));
    expect(parked).toMatchObject({ type: 'STOP_LOSS', side: 'SELL', status: 'NEW', stopPrice: 1020 - 30 });
  }, 90_000);

  it('the market does not reach it: the next start cancels it and trails again, and the stop triggers once', async () => {
    const s = await session('park-resume');
    let bot = await s.start();
    try {
      for (let k = 0; k <= 4; k++) await s.stepThrough(bot, k);
      await s.stop(bot);
      const { trail } = await s.stored();
      const pid = parkOrderId(trail.request.id);
      expect(s.sim.getOrders(KEY.apiKey).find((o) => o.clientOrderId === pid)?.status).toBe('NEW');
      for (let i = 0; i < 2; i++) s.sim.step(); // still rising: the parked stop rests

      bot = await s.start();
      expect(bot.lines.some((l) => l.startsWith(`RECOVERY parked-stop-cancelled ${pid} (0 of `))).toBe(true);
      expect(bot.lines.some((l) => l.startsWith(`RECOVERY order-held-by-keel ${trail.request.id}:`))).toBe(true);
      expect(s.sim.getOrders(KEY.apiKey).find((o) => o.clientOrderId === pid)?.status).toBe('CANCELED');
      // Trailing again from the stored level: the fall triggers it through its exit order.
      await s.stepThrough(bot, 16);
      await bot.waitFor(
        () => s.sim.getOrders(KEY.apiKey).some((o) => o.clientOrderId === exitOrderId(trail.request.id)),
        'the exit order',
      );
      await s.stepThrough(bot, 17);
      await s.stop(bot);
    } finally {
      if (bot.proc.exitCode === null) bot.proc.kill('SIGKILL');
      await s.sim.close();
    }
    const orders = await s.checkAgainstSim();
    const { trail } = await s.stored();
    expect(trail.status).toBe('filled');
    const exits = orders.filter((o) => o.clientOrderId === exitOrderId(trail.request.id));
    expect(exits).toHaveLength(1);
    expect(exits[0]).toMatchObject({ type: 'MARKET', side: 'SELL', status: 'FILLED' });
  }, 90_000);
});
