import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EngineEvent } from '@keel/core';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { buyOnce } from './fixtures/strategies.ts';
import { fastConnect, KEY, quietBars, startLiveBot, until } from './live-harness.ts';

// Exactly-once sending has one owner, the gateway, and one retry budget: its RetryPolicy's
// maxAttempts failed requests for a create, sends and lookups together. The live venue does not
// retry around it. A live bot in this process against the simulator (real ccxt client, loopback)
// whose order creates all answer HTTP 503 (in doubt: each send is looked up, not found, and sent
// again). Oracle: the gateway's count of requests that left, the simulator's records, and the
// budget written in the connection settings (fastConnect).

const dir = mkdtempSync(path.join(tmpdir(), 'keel-one-budget-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bars = quietBars(10);

describe('live: one retry budget for an order create', () => {
  it('an outage longer than the budget: sent maxAttempts times, each looked up first, then rejected as not sent', async () => {
    const budget = fastConnect('', KEY, '', () => {}).gateway?.retry?.maxAttempts as number;
    const store = await openStore({ url: `sqlite:${path.join(dir, 'a.db')}` });
    const logs: string[] = [];
    const run = await startLiveBot({
      strategy: buyOnce,
      store,
      bars,
      balances: { USDT: 10_000 },
      botId: 'budget',
      log: (level, msg) => logs.push(`${level} ${msg}`),
    });
    try {
      run.sim.faults.httpErrorBurst({ path: '/api/v3/order', method: 'POST', count: 10_000, status: 503 });
      await run.step();
      const rejected = () =>
        run.events.find((e): e is Extract<EngineEvent, { type: 'order.rejected' }> => e.type === 'order.rejected');
      await until(() => rejected() !== undefined, 20_000, 'the order to end');
      run.sim.faults.reset();
      await run.bot.settled();
      const ev = rejected()!;
      const id = ev.order.request.id;
      expect(run.conn.gateway.sends.get(id), 'sends of the one create: its whole budget, no more').toBe(budget);
      expect(ev.reason).toMatch(/^not sent, the exchange was unavailable: /);
      expect(run.sim.getOrders(KEY.apiKey).filter((o) => o.clientOrderId === id)).toEqual([]);
      expect((await store.orders.list('budget')).find((o) => o.request.id === id)?.status).toBe('rejected');
      expect(logs.filter((l) => /outcome unknown/.test(l))).toEqual([]);
    } finally {
      await run.close();
      await store.close();
    }
  }, 30_000);
});
