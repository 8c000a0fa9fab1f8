// A live bot on an account that already holds coins (USDT 10,000 and the user's 1 BTC), under a
// 429 storm while its exit is in doubt. A strategy that repeats its exit signal on every bar must
// not multiply the exit, and the bot must never sell coins it did not buy. Oracle: the simulator's
// own records (orders, executions, balances) against the bot's books.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineStrategy } from '@keel/core';
import { startExchangeSim } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { noParams } from './fixtures/strategies.ts';
import { KEY, MIN, movableWallClock, startLiveBot, T0, until } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-own-coins-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * Buys 0.05 BTC on its 2nd bar; on its 4th tries to sell 0.5 (more than it bought, less than the
 * account holds); from its 5th on, closes on every bar while it sees a position.
 */
const exitEveryBar = defineStrategy({
  name: 'exit-every-bar',
  params: noParams,
  warmup: 'none',
  onStart: () => ({ n: 0 }),
  onBar(ctx, s) {
    s.n++;
    if (s.n === 2) ctx.buy(0.05, { tag: 'entry' });
    else if (s.n === 4) ctx.sell(0.5, { tag: 'too-much' });
    else if (s.n >= 5 && ctx.position().size > 0) ctx.close({ tag: 'exit' });
  },
});

describe('a bot never sells coins that are not its own (real ccxt, loopback)', () => {
  it('under a 429 storm: one exit, the user’s 1 BTC untouched, the bot’s books equal to the exchange’s less the user’s coins', async () => {
    const bars = Array.from({ length: 60 }, (_, i) => {
      const o = 40_000 + 20 * Math.sin(i / 4);
      return { time: T0 + i * MIN, open: o, high: o + 15, low: o - 15, close: o + 3, volume: 50 };
    });
    const wall = movableWallClock();
    const sim = await startExchangeSim({
      wallClock: wall.now,
      markets: [{ symbol: 'BTC/USDT', bars }],
      accounts: [{ ...KEY, balances: { USDT: 10_000, BTC: 1 } }],
      startTime: T0,
    });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'own.db')}`, synchronous: 'NORMAL' });
    const run = await startLiveBot({ exchange: sim, store, strategy: exitEveryBar, botId: 'own' });
    // Bars without waiting for the bot's requests to finish: the strategy runs on while its exit
    // is in doubt, as it would live.
    const bar = async () => {
      const k = run.bot.barsHandled;
      sim.step();
      await run.timer.advance(sim.now() - run.timer.now());
      await until(() => run.bot.barsHandled > k, 10_000, `bar ${k}`);
    };
    try {
      expect(run.bot.report().recovery.map((a) => a.kind)).toContain('coins-not-this-bots');
      for (let k = 0; k < 4; k++) await run.step(); // bought on the 2nd bar; the 4th's sell refused
      wall.toMinuteEnd(1_000, sim); // the storm's Retry-After: ~1 s
      sim.faults.rateLimitStorm({ count: 12 });
      for (let k = 0; k < 12; k++) {
        await bar();
        await new Promise((r) => setTimeout(r, 120));
      }
      await run.bot.settled();
      // The exit fills within a few bars once the storm is over (bounded: a bot that cannot exit
      // fails the assertions below with its orders' reasons, not a timeout at the last bar).
      for (let k = 0; k < 20 && (run.bot.account.find('BTC/USDT')?.size ?? 0) > 1e-5; k++) await run.step();
      await run.step();
    } finally {
      await run.close();
    }

    const orders = sim.getOrders(KEY.apiKey);
    if (process.env.KEEL_DEBUG)
      for (const o of orders) process.stderr.write(`ORDER ${o.clientOrderId} ${o.side} ${o.origQty} ${o.status}\n`);
    // The sell of 0.5 was refused by the bot and never reached the exchange.
    expect(orders.some((o) => o.origQty === 0.5)).toBe(false);
    const tooMuch = run.events.find((e) => e.type === 'order.rejected' && e.order.request.tag === 'too-much');
    expect(tooMuch && 'reason' in tooMuch ? tooMuch.reason : '').toMatch(/coins this bot does not own/);
    // While an exit was in flight, the repeated close() sent nothing more: every exit order
    // either filled or was dropped when its bar was over (stale, never sent late); none was
    // refused for want of coins.
    const exits = run.bot.botEngine.engine.history.filter((o) => o.request.tag === 'exit');
    expect(
      exits.map((o) => o.status).filter((x) => x !== 'cancelled'),
      exits.map((o) => `${o.request.id} ${o.status}: ${o.reason ?? ''}`).join('\n'),
    ).toEqual(['filled']);
    expect(exits.filter((o) => o.status === 'cancelled').every((o) => /^signal expired/.test(o.reason ?? ''))).toBe(
      true,
    );
    // One exit executed, and no more was sold than the bot bought (less the fee in BTC).
    const bought = orders.filter((o) => o.side === 'BUY').reduce((a, o) => a + o.executedQty, 0);
    const sold = orders.filter((o) => o.side === 'SELL').reduce((a, o) => a + o.executedQty, 0);
    expect(bought).toBe(0.05);
    expect(orders.filter((o) => o.side === 'SELL' && o.executedQty > 0)).toHaveLength(1);
    expect(sold).toBeLessThanOrEqual(0.05 * 0.999);
    // The user's coin is untouched; the bot's own books are the exchange's less it.
    const simBal = sim.getBalances(KEY.apiKey);
    const total = (a: string) => (simBal[a]?.free ?? 0) + (simBal[a]?.locked ?? 0);
    expect(total('BTC')).toBeGreaterThanOrEqual(1);
    const position = await store.positions.get('own', 'BTC/USDT');
    const local = Object.fromEntries((await store.balances.load('own')).map((b) => [b.asset, b.total]));
    expect(position?.size ?? 0).toBeCloseTo(total('BTC') - 1, 8);
    expect(local.BTC ?? 0).toBeCloseTo(total('BTC') - 1, 8);
    expect(local.USDT).toBeCloseTo(total('USDT'), 6);

    // A restart reports the user's coins and keeps them out of the bot's position.
    const again = await startLiveBot({ exchange: sim, store, strategy: exitEveryBar, botId: 'own' });
    try {
      const notOurs = again.bot.report().recovery.find((a) => a.kind === 'coins-not-this-bots');
      expect(notOurs?.detail).toMatch(
        /^BTC: the account holds 1(\.\d+)?, this bot's own fills \S+: \S+ BTC are not this bot's/,
      );
      expect(again.bot.account.find('BTC/USDT')?.size ?? 0).toBeCloseTo(total('BTC') - 1, 8);
    } finally {
      await again.close();
      await sim.close();
      await store.close();
    }
  }, 120_000);
});
