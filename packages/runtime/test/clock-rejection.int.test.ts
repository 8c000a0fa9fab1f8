import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EngineEvent } from '@keel/core';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { buyOnce } from './fixtures/strategies.ts';
import { KEY, MIN, quietBars, startLiveBot, until } from './live-harness.ts';

// Binance refuses a request whose timestamp is outside recvWindow (-1021) before executing it.
// After the gateway has re-synced its clock and sent the order once more, a second -1021 is the
// exchange's answer: the order ends rejected, with the reason, and is never treated as in doubt
// (looked up, or sent again as if it might have landed). A live bot in this process against the
// simulator (real ccxt client, loopback) whose timestamp check runs two minutes ahead while the
// bot's order goes out; the simulator's server time is its replay's (2024), which the gateway
// does not adopt for signing, so re-syncing cannot cure it. Oracle: the simulator's records.

const dir = mkdtempSync(path.join(tmpdir(), 'keel-clock-rejection-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const bars = quietBars(10);

describe('live: an order refused with -1021 after the clock re-sync', () => {
  it('ends rejected with the exchange reason; never looked up, never sent a third time', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'a.db')}` });
    const logs: string[] = [];
    const run = await startLiveBot({
      strategy: buyOnce,
      store,
      bars,
      balances: { USDT: 10_000 },
      botId: 'nonce',
      log: (level, msg) => logs.push(`${level} ${msg}`),
    });
    try {
      const lookedUp: string[] = [];
      const client = run.conn.gateway.client as unknown as { fetchOrder: (...a: unknown[]) => Promise<unknown> };
      const fetchOrder = client.fetchOrder.bind(client);
      client.fetchOrder = (...a: unknown[]) => {
        lookedUp.push(String(a[0]));
        return fetchOrder(...a);
      };
      run.sim.faults.skewServerClock(2 * MIN);
      await run.step();
      const rejected = () =>
        run.events.find((e): e is Extract<EngineEvent, { type: 'order.rejected' }> => e.type === 'order.rejected');
      await until(() => rejected() !== undefined, 10_000, 'the order to be rejected');
      run.sim.faults.reset();
      const ev = rejected()!;
      const id = ev.order.request.id;
      expect(ev.reason).toMatch(/Timestamp for this request .*recvWindow/);
      expect(ev.reason).toMatch(/after re-syncing the clock/);
      expect(lookedUp, 'a rejection is never looked up').toEqual([]);
      expect(run.conn.gateway.sends.get(id), 'sent, and once more after the re-sync').toBe(2);
      expect(run.sim.getOrders(KEY.apiKey).filter((o) => o.clientOrderId === id)).toEqual([]);
      // The journal has it rejected; nothing says "in doubt".
      await run.bot.settled();
      expect((await store.orders.list('nonce')).find((o) => o.request.id === id)?.status).toBe('rejected');
      expect(logs.filter((l) => /in doubt|outcome unknown|resolving by client id/.test(l))).toEqual([]);
      // The bot goes on: the next bar is handled as usual.
      await run.step();
      expect(run.bot.barsHandled).toBeGreaterThanOrEqual(2);
    } finally {
      await run.close();
      await store.close();
    }
  });
});
