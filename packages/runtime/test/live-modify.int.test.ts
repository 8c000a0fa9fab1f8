// ctx.modify in a live bot: a cancel and a replacement, the replacement sent only once the
// exchange has confirmed the cancel. Real ccxt against the spot simulator over loopback, default
// fees (0.1 %, taken in BTC on a buy). Oracle: the simulator's own order records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ClientOrderId, defineStrategy } from '@keel/core';
import { openStore, type Store } from '@keel/store';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { noParams } from './fixtures/strategies.ts';
import { KEY, MIN, startLiveBot, T0, until } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-live-modify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close().catch(() => undefined);
});
let n = 0;

async function newStore(): Promise<Store> {
  const s = await openStore({ url: `sqlite:${path.join(dir, `s${++n}.db`)}`, synchronous: 'NORMAL' });
  open.push(s);
  return s;
}

/** Flat bars at 40,000 (high 40,010), but bar `spike` reaches 40,100. */
function flatBars(spike: number) {
  return Array.from({ length: 12 }, (_, i) => ({
    time: T0 + i * MIN,
    open: 40_000,
    high: i === spike ? 40_100 : 40_010,
    low: 39_990,
    close: 40_000,
    volume: 50,
  }));
}

/** Buys 0.01 BTC on its 1st bar; a take-profit for the 0.00999 it holds on its 3rd; moved on its 5th. */
function takeProfitMoved(ids: Record<string, ClientOrderId | null>) {
  return defineStrategy({
    name: 'tp-moved',
    params: noParams,
    warmup: 'none',
    onStart: () => ({ n: 0 }),
    onBar(ctx, s) {
      s.n++;
      if (s.n === 1) ctx.buy(0.01);
      if (s.n === 3)
        ids['tp'] = ctx.submit({ type: 'limit', side: 'sell', amount: 0.00999, price: 40_050, tag: 'take-profit' });
      if (s.n === 5) ids['tp2'] = ctx.modify(ids['tp']!, { price: 40_040 });
    },
  });
}

describe('ctx.modify live (real ccxt, spot simulator)', () => {
  it('a moved spot take-profit: the original cancelled on the exchange, then the replacement resting at the new price', async () => {
    const ids: Record<string, ClientOrderId | null> = {};
    const run = await startLiveBot({
      bars: flatBars(-1),
      store: await newStore(),
      strategy: takeProfitMoved(ids),
      botId: 'mod',
    });
    open.push(run);
    for (let k = 0; k < 6; k++) await run.step();
    const orders = run.sim.getOrders(KEY.apiKey);
    const byId = (id: string) => orders.find((o) => o.clientOrderId === id);
    expect(byId(ids['tp']!)).toMatchObject({ side: 'SELL', price: 40_050, status: 'CANCELED' });
    expect(byId(ids['tp2']!)).toMatchObject({ side: 'SELL', origQty: 0.00999, price: 40_040, status: 'NEW' });
    const tp2 = run.bot.botEngine.engine.order(ids['tp2'] as ClientOrderId)!;
    expect(tp2.status).toBe('accepted');
    expect(tp2.request).toMatchObject({ tag: 'take-profit', replaces: ids['tp'] });
  }, 60_000);

  it('a cancel not confirmed within the bar: the replacement is dropped as a stale signal, never sent late', async () => {
    const ids: Record<string, ClientOrderId | null> = {};
    const run = await startLiveBot({
      bars: flatBars(-1),
      store: await newStore(),
      strategy: takeProfitMoved(ids),
      botId: 'slow',
    });
    open.push(run);
    for (let k = 0; k < 4; k++) await run.step();
    // The cancel is held (unexecuted) for 1.5 s while the next bar closes.
    run.sim.faults.holdHttpResponses({ method: 'DELETE', path: '/api/v3/order', ms: 1_500, count: 1 });
    const k = run.bot.barsHandled;
    for (const j of [1, 2]) {
      run.sim.step();
      await run.timer.advance(run.sim.now() - run.timer.now());
      await until(() => run.bot.barsHandled >= k + j, 10_000, `bar ${k + j}`);
    }
    await run.bot.settled();
    const orders = run.sim.getOrders(KEY.apiKey);
    expect(orders.find((o) => o.clientOrderId === ids['tp'])).toMatchObject({ status: 'CANCELED' });
    expect(orders.some((o) => o.clientOrderId === ids['tp2'])).toBe(false);
    const tp2 = run.bot.botEngine.engine.order(ids['tp2'] as ClientOrderId);
    expect(tp2?.status).toBe('cancelled');
    expect(tp2?.reason).toMatch(/^signal expired: not placed within 1 bar of its decision at /);
  }, 60_000);

  it('the original fills while its cancel travels: the replacement is not sent, never selling twice', async () => {
    const ids: Record<string, ClientOrderId | null> = {};
    // Bar 5 (the bot's 6th) reaches 40,100: the original take-profit at 40,050 fills there.
    const run = await startLiveBot({
      bars: flatBars(5),
      store: await newStore(),
      strategy: takeProfitMoved(ids),
      botId: 'race',
      // Signals valid 3 bars: the replacement is still wanted when the original fills.
      bot: { maxSignalAge: { bars: 3 } },
    });
    open.push(run);
    for (let k = 0; k < 4; k++) await run.step();
    // The cancel of the modification is held 1 s, unexecuted, while the next bar fills the original.
    run.sim.faults.holdHttpResponses({ method: 'DELETE', path: '/api/v3/order', ms: 1_000, count: 1 });
    const k = run.bot.barsHandled;
    run.sim.step(); // the 5th bar: modify
    await run.timer.advance(run.sim.now() - run.timer.now());
    await until(() => run.bot.barsHandled > k, 10_000, 'the 5th bar');
    run.sim.step(); // the 6th bar: the original fills at 40,050
    await run.timer.advance(run.sim.now() - run.timer.now());
    await until(() => run.bot.barsHandled > k + 1, 10_000, 'the 6th bar');
    await run.bot.settled();
    await until(() => run.bot.botEngine.engine.order(ids['tp2']!)?.status === 'cancelled', 10_000, 'the replacement');
    const orders = run.sim.getOrders(KEY.apiKey);
    expect(orders.find((o) => o.clientOrderId === ids['tp'])).toMatchObject({ status: 'FILLED', executedQty: 0.00999 });
    expect(orders.some((o) => o.clientOrderId === ids['tp2'])).toBe(false);
    expect(orders.filter((o) => o.side === 'SELL' && o.executedQty > 0)).toHaveLength(1);
    expect(run.bot.botEngine.engine.order(ids['tp2']!)?.reason).toBe(
      `not sent: the order it replaces (${ids['tp']}) filled 0.00999 more before its cancel was confirmed`,
    );
  }, 60_000);
});
