import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { type ExchangeSim, runExchangeSimCli, startExchangeSim } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { BotProcess, MIN, movableWallClock, T0 } from './live-harness.ts';

/**
 * Chaos: a live bot (its own process, the real ccxt client) trades on the exchange simulator
 * while we drop WebSockets, send a 429 storm and a 5xx burst, time out an order create whose
 * order did land (the 5xx, the timeout and a user-stream drop sent by `keel exchange-sim fault`,
 * as a user would from another terminal), and kill -9 the bot mid-session and restart it.
 * Afterwards the simulator is the oracle: no duplicate orders, no lost fills, local balances equal
 * the simulator's, no missed bar.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'keel-chaos-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const KEY = { apiKey: 'chaos-key', secret: 'chaos-secret' };

describe('live bot under chaos against the exchange simulator (real ccxt, loopback)', () => {
  it('no duplicate orders, no lost fills, balances equal the exchange’s, no missed bar', async () => {
    const bars = Array.from({ length: 120 }, (_, i) => {
      const o = 40_000 + 10 * Math.sin(i / 3) * 10;
      return { time: T0 + i * MIN, open: o, high: o + 25, low: o - 25, close: o + 5, volume: 50 };
    });
    // A 429's Retry-After is the rest of Binance's weight window: the storm starts 1 s before it ends.
    const wall = movableWallClock();
    const sim: ExchangeSim = await startExchangeSim({
      wallClock: wall.now,
      markets: [{ symbol: 'BTC/USDT', bars }],
      accounts: [{ ...KEY, balances: { USDT: 10_000 } }],
      startTime: T0,
      admin: true,
    });
    /** `keel exchange-sim fault --port P ...`, as a user runs it from another terminal. */
    const cliFault = async (...args: string[]) => {
      const out = new PassThrough();
      let text = '';
      out.on('data', (d: Buffer) => (text += d.toString()));
      const code = await runExchangeSimCli(['fault', '--port', String(sim.port), ...args], { out, err: out });
      expect(code, text).toBe(0);
    };
    const storeUrl = `sqlite:${path.join(dir, 'chaos.db')}`;
    let bot = new BotProcess(sim.httpUrl, storeUrl, 'chaos', KEY);
    const allBars: number[] = [];
    let firstErr = '';
    let _firstOut = '';
    try {
      await bot.waitFor(() => bot.lines.includes('READY'), 'the bot to start');
      await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
      // Each step waits until the orders of the bar before are sent and answered: a bot that is
      // slow only because the machine is busy then never sees its signals expire, so the count of
      // orders below does not depend on the load (the faults still hit every order they target).
      const stepAndWait = async (k: number) => {
        sim.step();
        const t = T0 + (k - 1) * MIN;
        await bot.waitFor(() => bot.lines.includes(`SETTLED ${t}`), `bar ${k - 1} and its orders`);
      };
      for (let k = 1; k <= 40; k++) {
        if (k === 36) sim.faults.dropWebSockets({ kind: 'market' });
        if (k === 6) {
          wall.toMinuteEnd(1_000, sim);
          sim.faults.rateLimitStorm({ count: 3 });
        }
        // These three come from the command line, over the simulator's admin endpoint.
        if (k === 10) await cliFault('5xx', '--count', '2', '--path', '/api/v3/order');
        if (k === 14) await cliFault('hold', '--path', '/api/v3/order', '--execute');
        if (k === 18) await cliFault('ws-drop', '--ws', 'user');
        if (k === 24) sim.faults.duplicateWsMessages(3);
        if (k === 28) sim.faults.reorderWsMessages(2);
        await stepAndWait(k);
      }
      // kill -9 mid-session, with an order possibly in flight.
      sim.step();
      await new Promise((r) => setTimeout(r, 30));
      await bot.crash();
      allBars.push(...bot.bars());
      firstErr = bot.err.join('');
      _firstOut = bot.lines.join('\n');
      // The market moves on while the bot is down.
      for (let i = 0; i < 3; i++) sim.step();
      bot = new BotProcess(sim.httpUrl, storeUrl, 'chaos', KEY);
      await bot.waitFor(() => bot.lines.includes('READY'), 'the restarted bot', 30_000);
      await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
      const resumeFrom = Math.round((sim.now() - T0) / MIN);
      await bot.waitFor(
        () => bot.lines.includes(`SETTLED ${T0 + (resumeFrom - 1) * MIN}`),
        'the missed bars to be handled',
      );
      for (let k = resumeFrom + 1; k <= resumeFrom + 16; k++) await stepAndWait(k);
      bot.proc.kill('SIGTERM');
      await bot.exited;
      allBars.push(...bot.bars());
      expect(bot.lines.some((l) => l.startsWith('REPORT '))).toBe(true);
    } finally {
      if (bot.proc.exitCode === null) bot.proc.kill('SIGKILL');
      await sim.close();
    }

    if (process.env.KEEL_CHAOS_DEBUG)
      process.stderr.write(
        `${firstErr}\n---\n${bot.err.join('')}\n${bot.lines.filter((l) => !l.startsWith('BAR')).join('\n')}\n${allBars.length} bars\n`,
      );
    const orders = sim.getOrders(KEY.apiKey);
    if (process.env.KEEL_CHAOS_DEBUG)
      for (const o of orders)
        process.stderr.write(
          `ORDER ${o.clientOrderId} ${o.side} ${o.type} ${o.status} ${o.executedQty} t=${(o.time - T0) / MIN}\n`,
        );
    const ids = orders.map((o) => o.clientOrderId);
    expect(orders.length).toBeGreaterThanOrEqual(6);
    expect(new Set(ids).size, `duplicate client order ids on the exchange: ${ids.join(',')}`).toBe(ids.length);

    const store = await openStore({ url: storeUrl });
    const fills = await store.fills.since('chaos', 0);
    const exchangeTrades = orders.flatMap((o) => o.fills.map((f) => String(f.tradeId)));
    expect(new Set(fills.map((f) => f.tradeId))).toEqual(new Set(exchangeTrades));
    expect(fills.length, 'a fill recorded twice').toBe(exchangeTrades.length);
    // Every order the exchange has is known locally with the same filled amount.
    for (const o of orders) {
      const local = await store.orders.get(o.clientOrderId);
      expect(local, `exchange order ${o.clientOrderId} unknown locally`).toBeDefined();
      expect(local!.filled).toBeCloseTo(o.executedQty, 10);
    }
    const simBal = sim.getBalances(KEY.apiKey) as Record<string, { free: number; locked: number }>;
    const local = Object.fromEntries((await store.balances.load('chaos')).map((b) => [b.asset, b.total]));
    const total = (a: string) => (simBal[a]?.free ?? 0) + (simBal[a]?.locked ?? 0);
    expect(local.USDT).toBeCloseTo(total('USDT'), 6);
    expect(local.BTC ?? 0).toBeCloseTo(total('BTC'), 8);
    await store.close();

    // No missed bar: every bar from the first to the last was handled (the one being handled at
    // the kill may be handled again after the restart; its order is not sent twice, see above).
    const uniq = [...new Set(allBars)].sort((a, b) => a - b);
    expect(uniq.length).toBe((uniq.at(-1)! - uniq[0]!) / MIN + 1);
  }, 180_000);
});
