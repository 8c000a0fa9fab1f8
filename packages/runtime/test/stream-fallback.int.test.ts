import { startExchangeSim } from '@keel/exchange-sim';
import { describe, expect, it } from 'vitest';
import { connectExchange, placedOrder } from '../src/index.ts';

// The runtime's live port over the real ccxt client and the exchange simulator: with REST down,
// balances and order lookups come from the WebSocket cache and the log says so.
describe('live port: REST down, reads from the WebSocket cache (real ccxt, exchange simulator)', () => {
  it('fetchBalances and fetchOrder are answered from the user stream and logged as such', async () => {
    const T0 = Date.UTC(2024, 0, 1);
    const KEY = { apiKey: 'fallback-key', secret: 'fallback-secret' };
    const sim = await startExchangeSim({
      markets: [
        {
          symbol: 'BTC/USDT',
          bars: Array.from({ length: 30 }, (_, i) => ({
            time: T0 + i * 60_000,
            open: 100,
            high: 101,
            low: 99,
            close: 100,
            volume: 10,
          })),
        },
      ],
      accounts: [{ ...KEY, balances: { USDT: 1_000 } }],
      startTime: T0 + 10 * 60_000,
    });
    const logs: string[] = [];
    const conn = await connectExchange({
      exchange: 'binance',
      url: sim.httpUrl,
      ...KEY,
      botId: 'fallback',
      symbols: ['BTC/USDT'],
      log: (level, msg) => void logs.push(`${level} ${msg}`),
      ccxtOptions: { timeout: 1_000 },
      gateway: {
        lookupDelayMs: 20,
        retry: { maxAttempts: 2, baseMs: 10, maxMs: 20 },
        breaker: { failureThreshold: 2 },
      },
    });
    try {
      await sim.waitForSubscription(`user:${KEY.apiKey}`);
      const end = Date.now() + 5_000; // the subscriptions confirmed on our side too
      while (!Object.values(conn.streamCache?.status() ?? {}).every((x) => x.connected) && Date.now() < end)
        await new Promise((r) => setTimeout(r, 10));
      const order = placedOrder(
        await conn.live.placeOrder({
          id: 'kfallback-1' as never,
          symbol: 'BTC/USDT',
          side: 'buy',
          type: 'limit',
          price: 90,
          amount: 1,
          timeInForce: 'GTC',
        }),
      );
      const before = await conn.live.fetchBalances();
      sim.faults.httpErrorBurst({ path: '/api/v3/', count: 10_000, status: 503 });
      expect(await conn.live.fetchBalances()).toEqual(before);
      expect(before.USDT).toMatchObject({ free: 910, used: 90 });
      expect(await conn.live.fetchOrder('kfallback-1', 'BTC/USDT')).toMatchObject({
        venueOrderId: order.venueOrderId,
        status: 'open',
      });
      expect(conn.gateway.breakers.queries.state).toBe('open');
      expect(logs.filter((l) => l.includes('answered from the WebSocket cache')).length).toBe(2);
      // Never "not found" from the cache: an unknown id is an error, not null (which would allow a resend).
      await expect(conn.live.fetchOrder('kfallback-2', 'BTC/USDT')).rejects.toThrow(/cannot stand in/);
      expect(logs.some((l) => l.startsWith('error fetchOrder failed and the WebSocket cache cannot stand in'))).toBe(
        true,
      );
    } finally {
      await conn.close();
      await sim.close();
    }
  });
});
