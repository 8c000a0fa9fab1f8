// A cancel this bot asked for keeps its reason whichever way the exchange's answer arrives: here
// the user-data stream's CANCELED comes before the cancel's own (held) reply. Before, the order
// read "cancelled on the exchange" (as if someone else had cancelled it) whenever the stream won.
// Real ccxt client against the simulator over loopback.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineStrategy } from '@keel/core';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { noParams } from './fixtures/strategies.ts';
import { KEY, startLiveBot } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-cancel-reason-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 3, 1);
const bars = Array.from({ length: 6 }, (_, i) => ({
  time: T0 + i * 60_000,
  open: 40_000,
  high: 40_020,
  low: 39_980,
  close: 40_000,
  volume: 50,
}));

/** One limit buy far below the market on the first bar: it rests until the bot stops. */
const restingBuy = defineStrategy({
  name: 'resting-buy',
  params: noParams,
  warmup: 'none',
  onStart: () => ({ n: 0 }),
  onBar(ctx, s) {
    if (++s.n === 1) ctx.submit({ type: 'limit', side: 'buy', amount: 0.01, price: 30_000 });
  },
});

describe('the reason of a cancel the bot asked for (real ccxt, loopback)', () => {
  it('--on-shutdown cancel: the order says so even when the stream reports the cancel before its reply', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'c.db')}`, synchronous: 'NORMAL' });
    const run = await startLiveBot({
      bars,
      strategy: restingBuy,
      store,
      botId: 'cr',
      balances: { USDT: 10_000 },
      bot: { onShutdown: 'cancel' },
    });
    await run.step();
    await run.step();
    expect(run.sim.getOrders(KEY.apiKey).map((o) => o.status)).toEqual(['NEW']);
    // The cancel runs at once on the exchange (the stream says CANCELED), its reply comes 400 ms later.
    run.sim.faults.holdHttpResponses({ path: '/api/v3/order', method: 'DELETE', count: 1, ms: 400, execute: true });
    await run.close();
    expect(run.sim.getOrders(KEY.apiKey).map((o) => o.status)).toEqual(['CANCELED']);
    const [o] = await store.orders.list('cr');
    expect(o?.status).toBe('cancelled');
    expect(o?.reason).toMatch(/^bot stopped \(.*\): --on-shutdown cancel$/);
    await store.close();
  }, 60_000);
});
