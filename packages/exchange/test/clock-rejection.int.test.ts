import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { GatewayEvent } from '../src/index.ts';
import { KEY, limitBuy, type SimHarness, simHarness } from './sim-harness.ts';

// Binance -1021 (timestamp outside recvWindow) is refused before the request is executed. The
// gateway re-syncs its clock and sends once more; a second -1021 is the exchange's answer: the
// order is rejected, with the reason. It was never in doubt, so it is never looked up. Real ccxt
// client, the simulator's timestamp check moved ahead (`skewServerClock`); oracle: the simulator's
// own order records and the requests that reached it.
describe('a create refused with -1021 after the clock re-sync (real ccxt, loopback)', () => {
  let h: SimHarness;
  beforeEach(async () => {
    h = await simHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const buy = limitBuy('nonce-bot', 'skewed', 100, 0.01);

  it('is rejected with the exchange reason after one re-sync and one resend, never looked up', async () => {
    const events: GatewayEvent[] = [];
    const gw = h.gateway({ onEvent: (e) => events.push(e) });
    await gw.loadMarkets();
    const lookups: string[] = [];
    const c = gw.client as unknown as { fetchOrder: (...a: unknown[]) => Promise<unknown> };
    const fetchOrder = c.fetchOrder.bind(gw.client);
    c.fetchOrder = (...a: unknown[]) => {
      lookups.push(String(a[0]));
      return fetchOrder(...a);
    };
    // The exchange's clock for the recvWindow check runs two minutes ahead of this machine's, and
    // re-syncing cannot help: the simulator's server time is its replay's (2024), which the
    // gateway refuses to adopt for signing.
    h.sim.faults.skewServerClock(120_000);
    const out = await gw.createOrder(buy);
    expect(out).toMatchObject({ kind: 'rejected', sends: 2, error: { kind: 'rejected', code: 'InvalidNonce' } });
    expect(out.kind === 'rejected' && out.reason).toMatch(/recvWindow/);
    expect(out.kind === 'rejected' && out.reason).toMatch(/after re-syncing the clock/);
    expect(events.map((e) => e.type)).toEqual(['clock-skew-ignored', 'retry', 'resend']);
    expect(lookups, 'a definitive refusal is never looked up').toEqual([]);
    expect(gw.sends.get(buy.id)).toBe(2);
    expect(h.sim.getOrders(KEY.apiKey).filter((o) => o.clientOrderId === buy.id)).toEqual([]);
  });

  it('a -1021 that the re-sync cures: the resend is placed, one order, no lookup', async () => {
    const events: GatewayEvent[] = [];
    const gw = h.gateway({
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'clock-skew-ignored') h.resetFaults(); // the clocks agree again
      },
    });
    await gw.loadMarkets();
    h.sim.faults.skewServerClock(120_000);
    const out = await gw.createOrder(buy);
    expect(out).toMatchObject({ kind: 'placed', via: 'response', sends: 2 });
    expect(events.map((e) => e.type)).toEqual(['clock-skew-ignored', 'retry', 'resend']);
    expect(h.sim.getOrders(KEY.apiKey).filter((o) => o.clientOrderId === buy.id)).toHaveLength(1);
  });
});
