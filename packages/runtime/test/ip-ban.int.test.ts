import { createCcxtClient } from '@keel/exchange';
import { ccxtConfigFor, startExchangeSim } from '@keel/exchange-sim';
import { describe, expect, it } from 'vitest';
import { connectExchange } from '../src/index.ts';
import { fastConnect, MIN, quietBars, T0 } from './live-harness.ts';

// A live bot's exchange connection when the exchange bans the machine's IP (HTTP 418): another
// program on the same IP used up the request weight. The bot's log says so in one line (what, until
// when, what the bot does, what to change), and nothing more is sent until the ban ends. Real ccxt
// against the exchange simulator, which counts weight per IP and bans as Binance does.
describe('live port: an IP ban (418) is logged in plain words and nothing is sent into it', () => {
  it('one error line with the end of the ban; a new order ends "not sent" without reaching the exchange', async () => {
    const KEY = { apiKey: 'ban-key', secret: 'ban-secret' };
    const OTHER = { apiKey: 'other-key', secret: 'other-secret' };
    const sim = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars: quietBars(30) }],
      accounts: [
        { ...KEY, balances: { USDT: 1_000 } },
        { ...OTHER, balances: { USDT: 1_000 } },
      ],
      startTime: T0 + 10 * MIN,
      rateLimits: { weightPerMinute: 300, banAfter: 0, banMs: 600_000 },
    });
    const logs: string[] = [];
    const conn = await connectExchange({
      ...fastConnect(sim.httpUrl, KEY, 'banned', (level, msg) => void logs.push(`${level} ${msg}`)),
      streamCache: false,
    });
    const other = createCcxtClient('binance', ccxtConfigFor(sim, OTHER, { timeout: 1_000 }));
    const raw = other as unknown as Record<string, (p: object) => Promise<unknown>>;
    try {
      // The other program on this IP overdoes it until the exchange bans the IP.
      let banned = false;
      for (let i = 0; i < 100 && !banned; i++)
        await raw.publicGetTrades!({ symbol: 'BTCUSDT', limit: 1 }).catch((e: Error) => {
          banned = / 418 /.test(e.message);
        });
      expect(banned).toBe(true);

      await expect(conn.live.fetchBalances()).rejects.toThrow(/banned this IP \(HTTP 418\)/);
      const line = logs.filter((l) => l.includes('IP BANNED'));
      expect(line).toHaveLength(1);
      expect(line[0]).toMatch(
        /^error IP BANNED: binance has banned this machine's IP address \(HTTP 418, too much request weight\) until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(about 10 min\)\. This bot sends nothing to binance until then/,
      );
      expect(line[0]).toContain('Every bot and program on this IP shares');
      expect(logs.filter((l) => / retry \d/.test(l))).toEqual([]);

      // Nothing is sent into the ban: the order ends "not sent", the exchange never saw it.
      const orders = sim.requestCounts()['POST /api/v3/order'] ?? 0;
      const out = await conn.live.placeOrder({
        id: 'kbanned-1' as never,
        symbol: 'BTC/USDT',
        side: 'buy',
        type: 'limit',
        price: 90,
        amount: 1,
        timeInForce: 'GTC',
      });
      expect(out).toMatchObject({ kind: 'unavailable', failure: 'rate-limited' });
      expect((out as { reason: string }).reason).toMatch(/not sent: binance has banned this IP \(HTTP 418\) until/);
      expect(sim.requestCounts()['POST /api/v3/order'] ?? 0).toBe(orders);
      // Said once, not once per request.
      expect(logs.filter((l) => l.includes('IP BANNED'))).toHaveLength(1);
    } finally {
      await other.close();
      await conn.close();
      await sim.close();
    }
  }, 30_000);
});
