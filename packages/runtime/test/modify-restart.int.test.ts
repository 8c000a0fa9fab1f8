// kill -9 between a modification's cancel request and its replacement's send (the live venue
// sends a ctx.modify replacement only once the cancel of the original is confirmed), then a
// restart. A live bot in its own process, real ccxt against the spot simulator over loopback,
// default fees. Oracle: the simulator's own order records. Whatever the exchange did with the
// cancel, the outcome is one of: the original still working and the replacement not sent, said
// so; or the original cancelled and the replacement sent once. Never both trading, never the
// replacement twice, never silence.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ExchangeSim, SimBar } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { BotProcess, KEY, MIN, startSim, T0 } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-modify-restart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Flat at 40,000 (high 40,010); from bar `spike` on, the highs reach 40,100 (a take-profit at 40,050 fills). */
function flatBars(spike = Number.POSITIVE_INFINITY): SimBar[] {
  return Array.from({ length: 14 }, (_, i) => ({
    time: T0 + i * MIN,
    open: 40_000,
    high: i >= spike ? 40_100 : 40_010,
    low: 39_990,
    close: 40_000,
    volume: 50,
  }));
}

/** The bar at which the strategy (tp-modify) moves its take-profit: the cancel leaves on its close. */
const MODIFY_BAR = 4;

interface Case {
  readonly sim: ExchangeSim;
  readonly storeUrl: string;
  readonly botId: string;
  start(): Promise<BotProcess>;
  stepThrough(p: BotProcess, k: number): Promise<void>;
  /** The simulator's orders by side and price. */
  sells(): ReturnType<ExchangeSim['getOrders']>;
  /** The stored order rows. */
  rows(): Promise<Awaited<ReturnType<Awaited<ReturnType<typeof openStore>>['orders']['list']>>>;
}

async function setup(name: string, bars: SimBar[]): Promise<Case> {
  const sim = await startSim({ bars, balances: { USDT: 10_000 } });
  const storeUrl = `sqlite:${path.join(dir, `${name}.db`)}`;
  return {
    sim,
    storeUrl,
    botId: name,
    async start() {
      const p = new BotProcess(sim.httpUrl, storeUrl, name, KEY, 'tp-modify');
      await p.waitFor(() => p.lines.includes('READY'), 'the bot to start', 30_000);
      await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
      return p;
    },
    async stepThrough(p, k) {
      while (sim.now() < T0 + (k + 1) * MIN) sim.step();
      await p.waitFor(() => p.lines.includes(`SETTLED ${T0 + k * MIN}`), `bar ${k} and its orders`);
    },
    sells: () => sim.getOrders(KEY.apiKey).filter((o) => o.side === 'SELL'),
    async rows() {
      const store = await openStore({ url: storeUrl });
      try {
        return await store.orders.list(name);
      } finally {
        await store.close();
      }
    },
  };
}

/**
 * Runs the bot up to the modification and kills it in the window, with one request held:
 * - `cancel-executed`: the cancel is executed on the exchange, its answer lost, the user stream
 *   silent (the bot never learns the cancel went through: the replacement waits);
 * - `cancel-lost`: the cancel never reaches the book (nor does any answer);
 * - `replacement-lost`: the cancel is confirmed, then the replacement's create never reaches the
 *   book (killed before its answer could be looked up).
 */
async function crashInTheWindow(c: Case, held: 'cancel-executed' | 'cancel-lost' | 'replacement-lost'): Promise<void> {
  const bot = await c.start();
  try {
    for (let k = 0; k < MODIFY_BAR; k++) await c.stepThrough(bot, k);
    expect(c.sells()).toMatchObject([{ price: 40_050, status: 'NEW' }]);
    if (held === 'replacement-lost')
      c.sim.faults.holdHttpResponses({ method: 'POST', path: '/api/v3/order', count: 1 });
    else {
      c.sim.faults.stallWebSockets({ kind: 'user' });
      c.sim.faults.holdHttpResponses({
        method: 'DELETE',
        path: '/api/v3/order',
        count: 1,
        execute: held === 'cancel-executed',
      });
    }
    c.sim.step();
    await bot.waitFor(() => bot.lines.includes(`BAR ${T0 + MODIFY_BAR * MIN}`), 'the modification');
    // The held request has reached the exchange (its rule is used up).
    await bot.waitFor(() => c.sim.faults.holds.every((h) => h.count === 0), 'the held request');
    if (held === 'cancel-executed') await bot.waitFor(() => c.sells()[0]?.status === 'CANCELED', 'the cancel');
    await bot.crash();
  } finally {
    if (bot.proc.exitCode === null) bot.proc.kill('SIGKILL');
    c.sim.faults.reset();
    c.sim.faults.resumeWebSockets();
  }
}

describe('kill -9 between a modification’s cancel and its replacement, then a restart', () => {
  it('the cancel went through: the original is cancelled and the replacement is sent once, at the restart', async () => {
    const c = await setup('went-through', flatBars());
    try {
      await crashInTheWindow(c, 'cancel-executed');
      expect(c.sells(), 'nothing but the cancelled original before the restart').toMatchObject([
        { price: 40_050, status: 'CANCELED' },
      ]);
      const stored = await c.rows();
      const original = stored.find((o) => o.request.tag === 'take-profit' && o.request.replaces === undefined)!;
      const replacement = stored.find((o) => o.request.replaces === original.request.id)!;
      expect(replacement).toMatchObject({ status: 'submitted', request: { price: 40_040, replacesFilled: 0 } });

      let bot = await c.start();
      expect(bot.lines.filter((l) => l.startsWith('RECOVERY '))).toContain(
        `RECOVERY replacement-sent ${replacement.request.id}: the order it replaces (${original.request.id}) is cancelled with nothing more filled; the replacement had not left when the bot stopped: sent now`,
      );
      await bot.waitFor(() => c.sells().length === 2, 'the replacement on the exchange');
      await c.stepThrough(bot, MODIFY_BAR + 2);
      // A second crash and restart: the replacement is found by its id, never sent again.
      await bot.crash();
      bot = await c.start();
      expect(bot.lines).toContain(`RECOVERY order-still-open ${replacement.request.id}`);
      await c.stepThrough(bot, MODIFY_BAR + 4);
      expect(c.sells().map((o) => [o.clientOrderId, o.price, o.status])).toEqual([
        [original.request.id, 40_050, 'CANCELED'],
        [replacement.request.id, 40_040, 'NEW'],
      ]);
      expect((await c.rows()).find((o) => o.request.id === replacement.request.id)?.status).toBe('accepted');
      bot.proc.kill('SIGTERM'); // --on-shutdown cancel: the replacement is cancelled like any open order
      await bot.exited;
      expect(c.sells().filter((o) => o.clientOrderId === replacement.request.id)).toHaveLength(1);
    } finally {
      await c.sim.close();
    }
  }, 120_000);

  it('the cancel never reached the book: the original still works, the replacement is not sent, and the restart says so', async () => {
    const c = await setup('lost', flatBars());
    try {
      await crashInTheWindow(c, 'cancel-lost');
      const bot = await c.start();
      const stored = await c.rows();
      const original = stored.find((o) => o.request.tag === 'take-profit' && o.request.replaces === undefined)!;
      const replacement = stored.find((o) => o.request.replaces === original.request.id)!;
      const why = `the cancel of the order it replaces (${original.request.id}) was not confirmed before the bot stopped; ${original.request.id} still works with its old terms`;
      expect(bot.lines).toContain(`RECOVERY replacement-not-sent ${replacement.request.id}: ${why}`);
      expect(bot.lines).toContain(`RECOVERY order-still-open ${original.request.id}`);
      expect(replacement).toMatchObject({ status: 'cancelled', reason: `not sent: ${why}` });
      await c.stepThrough(bot, MODIFY_BAR + 2);
      // The original works on at its old price, tracked as the bot's own.
      expect(c.sells().map((o) => [o.clientOrderId, o.price, o.status])).toEqual([
        [original.request.id, 40_050, 'NEW'],
      ]);
      expect((await c.rows()).find((o) => o.request.id === original.request.id)?.status).toBe('accepted');
      bot.proc.kill('SIGTERM');
      await bot.exited;
      expect(c.sells().map((o) => o.clientOrderId)).toEqual([original.request.id]);
    } finally {
      await c.sim.close();
    }
  }, 120_000);

  it('the original fills while the bot is down: the replacement is never sent, one sell only', async () => {
    // Bar MODIFY_BAR + 2 reaches 40,100: the original take-profit (40,050) fills while the bot is down.
    const c = await setup('filled', flatBars(MODIFY_BAR + 2));
    try {
      await crashInTheWindow(c, 'cancel-lost');
      while (c.sim.now() < T0 + (MODIFY_BAR + 3) * MIN) c.sim.step();
      expect(c.sells()).toMatchObject([{ price: 40_050, status: 'FILLED' }]);
      const bot = await c.start();
      const stored = await c.rows();
      const original = stored.find((o) => o.request.tag === 'take-profit' && o.request.replaces === undefined)!;
      const replacement = stored.find((o) => o.request.replaces === original.request.id)!;
      const why = `the order it replaces (${original.request.id}) filled before its cancel was confirmed`;
      expect(bot.lines).toContain(`RECOVERY replacement-not-sent ${replacement.request.id}: ${why}`);
      expect(original.status).toBe('filled');
      expect(replacement).toMatchObject({ status: 'cancelled', reason: `not sent: ${why}` });
      await c.stepThrough(bot, MODIFY_BAR + 4);
      bot.proc.kill('SIGTERM');
      await bot.exited;
      const sells = c.sells();
      expect(sells.filter((o) => o.executedQty > 0)).toHaveLength(1);
      expect(sells.some((o) => o.clientOrderId === replacement.request.id)).toBe(false);
    } finally {
      await c.sim.close();
    }
  }, 120_000);
  it('the cancel was confirmed and the replacement’s create never reached the book: it is sent once at the restart', async () => {
    const c = await setup('create-lost', flatBars());
    try {
      await crashInTheWindow(c, 'replacement-lost');
      const stored = await c.rows();
      const original = stored.find((o) => o.request.tag === 'take-profit' && o.request.replaces === undefined)!;
      const replacement = stored.find((o) => o.request.replaces === original.request.id)!;
      // The bot had recorded the cancel: recovery finds the original in the store, not on the exchange.
      expect(original.status).toBe('cancelled');
      expect(replacement.status).toBe('submitted');
      expect(c.sells().map((o) => o.clientOrderId)).toEqual([original.request.id]);
      const bot = await c.start();
      expect(bot.lines.filter((l) => l.startsWith('RECOVERY replacement-'))).toEqual([
        `RECOVERY replacement-sent ${replacement.request.id}: the order it replaces (${original.request.id}) is cancelled with nothing more filled; the replacement had not left when the bot stopped: sent now`,
      ]);
      await c.stepThrough(bot, MODIFY_BAR + 2);
      expect(c.sells().map((o) => [o.clientOrderId, o.price, o.status])).toEqual([
        [original.request.id, 40_050, 'CANCELED'],
        [replacement.request.id, 40_040, 'NEW'],
      ]);
      bot.proc.kill('SIGTERM');
      await bot.exited;
    } finally {
      await c.sim.close();
    }
  }, 120_000);
});
