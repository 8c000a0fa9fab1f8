// Why an order expired, live and in the backtest: each expiry carries its cause from where it is
// decided (the exchange's status and expiry reason live, the simulated venue in a backtest) and
// the same case reads the same. Real ccxt against the spot simulator over loopback, default fees.
// Oracles: the backtest of the same bars (the same status and reason), the simulator's own order
// records (its status and `eR`).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ClientOrderId, defineStrategy, runBacktest } from '@keel/core';
import { openStore, type Store } from '@keel/store';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { noParams } from './fixtures/strategies.ts';
import { FEED, KEY, quietBars, startLiveBot, toSeries } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-live-expiry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close().catch(() => undefined);
});

async function newStore(name: string): Promise<Store> {
  const s = await openStore({ url: `sqlite:${path.join(dir, `${name}.db`)}`, synchronous: 'NORMAL' });
  open.push(s);
  return s;
}

/**
 * Bar 1: an IOC buy and a FOK buy well below the market (neither can fill at once); bar 2: a GTC
 * buy resting below the market (a test expires it by self-trade prevention).
 */
function expiring(ids: Record<string, ClientOrderId>) {
  return defineStrategy({
    name: 'expiring',
    params: noParams,
    warmup: 'none',
    onStart: () => ({ n: 0 }),
    onBar(ctx, s) {
      s.n++;
      if (s.n === 1) {
        ids['ioc'] = ctx.submit({ type: 'limit', side: 'buy', amount: 0.01, price: 39_000, timeInForce: 'IOC' });
        ids['fok'] = ctx.submit({ type: 'limit', side: 'buy', amount: 0.02, price: 39_000, timeInForce: 'FOK' });
      }
      if (s.n === 2) ids['rest'] = ctx.submit({ type: 'limit', side: 'buy', amount: 0.03, price: 39_000 });
    },
  });
}

describe('expiry reasons live (real ccxt, spot simulator) and in the backtest', () => {
  it('an IOC and a FOK order the exchange expires read as the backtest’s; self-trade prevention is named; the log and the journal say why', async () => {
    const bars = quietBars(8);
    const ids: Record<string, ClientOrderId> = {};
    const lines: string[] = [];
    const store = await newStore('expiry');
    const run = await startLiveBot({
      bars,
      store,
      strategy: expiring(ids),
      botId: 'exp',
      log: (_l, m) => void lines.push(m),
    });
    open.push(run);
    for (let k = 0; k < 3; k++) await run.step();
    const sim = run.sim;
    const onSim = (id: string) => sim.getOrders(KEY.apiKey).find((o) => o.clientOrderId === id);
    expect(onSim(ids['ioc']!)).toMatchObject({ status: 'EXPIRED', expiryReason: 'UNFILLED_IOC_QUANTITY_EXPIRED' });
    expect(onSim(ids['fok']!)).toMatchObject({ status: 'EXPIRED', expiryReason: 'UNFILLED_FOK_ORDER_EXPIRED' });
    expect(onSim(ids['rest']!)).toMatchObject({ status: 'NEW' });

    // The exchange's self-trade prevention expires the resting order (a fault: the simulator's
    // accounts never meet on its book).
    expect(sim.faults.expireInMatch(KEY.apiKey, ids['rest']!)).toBe(true);
    await run.step();
    expect(onSim(ids['rest']!)).toMatchObject({ status: 'EXPIRED_IN_MATCH' });

    const engine = run.bot.botEngine.engine;
    const live = (k: string) => engine.order(ids[k] as string)!;
    const reasons = {
      ioc: 'IOC: expired with 0 of 0.01 filled (the rest could not fill at once)',
      fok: 'FOK: expired with 0 of 0.02 filled (the whole amount could not fill at once)',
      rest: 'self-trade prevention: expired by the exchange with 0 of 0.03 filled (it would have traded against an order of the same account)',
    };
    for (const k of ['ioc', 'fok', 'rest'] as const)
      expect(live(k), k).toMatchObject({ status: 'expired', reason: reasons[k] });

    // Oracle: the backtest of the same bars names the IOC and FOK expiries alike (it has no
    // self-trade prevention: its third order rests).
    const btIds: Record<string, ClientOrderId> = {};
    const bt = runBacktest({
      strategy: expiring(btIds),
      data: [{ ...FEED, series: toSeries(bars) }],
      cash: 100_000,
      fee: 0.001,
    });
    const btOrder = (k: string) => bt.orders.find((o) => o.request.id === btIds[k])!;
    for (const k of ['ioc', 'fok'] as const) {
      expect(btOrder(k).status, k).toBe('expired');
      expect(btOrder(k).reason, k).toBe(live(k).reason);
    }

    // Where users look: one log line per expiry with its reason; the stored row and event too.
    await run.bot.settled();
    for (const k of ['ioc', 'fok', 'rest'] as const) {
      expect(
        lines.some((l) => l.startsWith('EXPIRED') && l.includes(`id ${ids[k]}`) && l.endsWith(`reason: ${reasons[k]}`)),
        `the log line of the ${k} expiry:\n${lines.join('\n')}`,
      ).toBe(true);
      const row = (await store.orders.list('exp')).find((o) => o.request.id === ids[k]);
      expect(row, k).toMatchObject({ status: 'expired', reason: reasons[k] });
    }
    const events = await store.events.list('exp');
    for (const k of ['ioc', 'fok', 'rest'] as const)
      expect(
        events.some((e) => e.type === 'order.expired' && (e.payload as { reason?: string }).reason === reasons[k]),
        `the journal's order.expired event of the ${k} order`,
      ).toBe(true);
  }, 60_000);
});
