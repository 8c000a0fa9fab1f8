import { createCcxtClient, ManualTimer } from '@keel/exchange';
import { ccxtConfigFor, startExchangeSim } from '@keel/exchange-sim';
import { describe, expect, it } from 'vitest';
import type { SessionReport } from '../src/bot.ts';
import { sessionSummary } from '../src/cli.ts';
import { connectExchange } from '../src/index.ts';
import { fastConnect, MIN, quietBars, T0 } from './live-harness.ts';

// A live bot's exchange connection when another user of the same account (a second bot, a script,
// the exchange's UI) has spent the account's order budget: Binance counts new orders per account
// (spot: 100 per 10 s). The bot's next order waits for the next window instead of meeting a 429
// -1015, its log says so once a window in plain words, and the session report counts it. Real ccxt
// against the exchange simulator, which counts and enforces the ORDERS limits per API key in
// windows of its wall clock (the bot's clock here).
describe('live port: the account’s order budget, shared with another user of the account', () => {
  it('a new order waits for the next window (no 429), one log line for the window, counted for the report', async () => {
    const KEY = { apiKey: 'shared-key', secret: 'shared-secret' };
    const timer = new ManualTimer(T0 + 3_600_000 + 2_000);
    const sim = await startExchangeSim({
      wallClock: () => timer.now(),
      markets: [{ symbol: 'BTC/USDT', bars: quietBars(30) }],
      accounts: [{ ...KEY, balances: { USDT: 100_000 } }],
      startTime: T0 + 10 * MIN,
    });
    // Signatures are checked against real time; only the rate-limit windows follow the timer.
    const realTimeSignatures = () => sim.faults.skewServerClock(Date.now() - timer.now());
    realTimeSignatures();
    const logs: string[] = [];
    const base = fastConnect(sim.httpUrl, KEY, 'shared', (level, msg) => void logs.push(`${level} ${msg}`));
    const conn = await connectExchange({ ...base, streamCache: false, gateway: { ...base.gateway, timer } });
    const other = createCcxtClient('binance', ccxtConfigFor(sim, KEY, { timeout: 2_000 }));
    const order = (n: number) =>
      conn.live.placeOrder({
        id: `kshared-${n}` as never,
        symbol: 'BTC/USDT',
        side: 'buy',
        type: 'limit',
        price: 30_000,
        amount: 0.001,
        timeInForce: 'IOC',
      });
    try {
      // The other user places 79 orders this window; the bot's own order's answer says 80.
      await other.loadMarkets();
      for (let i = 0; i < 79; i++)
        await other.createOrder('BTC/USDT', 'limit', 'buy', 0.001, 30_000, { timeInForce: 'IOC' });
      await expect(order(1)).resolves.toMatchObject({ kind: 'placed' });
      const posts = sim.requestCounts()['POST /api/v3/order'];
      let placed = false;
      const second = order(2).then((r) => {
        placed = true;
        return r;
      });
      const third = order(3);
      await new Promise((r) => setTimeout(r, 50));
      const line = logs.filter((l) => l.includes('order budget'));
      expect(line).toEqual([
        "info order budget: this account has placed 80 new orders this 10 s window on binance (the exchange's count: every bot, script and person trading the account shares its limit of 100); this bot keeps under 80 and its new orders wait 8 s for the next window (cancels are not held; an order whose signal goes stale meanwhile is dropped, never sent late)",
      ]);
      await timer.advance(7_000);
      realTimeSignatures();
      await new Promise((r) => setTimeout(r, 50));
      expect(placed).toBe(false);
      expect(sim.requestCounts()['POST /api/v3/order']).toBe(posts);
      await timer.advance(1_000);
      realTimeSignatures();
      await expect(second).resolves.toMatchObject({ kind: 'placed' });
      await expect(third).resolves.toMatchObject({ kind: 'placed' });
      // Once for the window, not once per order; no 429 met, nothing retried.
      expect(logs.filter((l) => l.includes('order budget'))).toHaveLength(1);
      expect(logs.filter((l) => / retry \d|-1015/.test(l))).toEqual([]);
      const counts = conn.live.budgetCounts?.();
      expect(counts).toEqual({ ipWeightFull: 0, ipLimited: 0, orderCountFull: 1, ordersLimited: 0 });
      // What the session's summary line says of it.
      const summary = sessionSummary({
        session: 1,
        reason: 'stopped',
        bars: 0,
        fills: 0,
        trades: 0,
        realizedPnlGross: 0,
        fees: 0,
        realizedPnlNet: 0,
        total: { trades: 0, realizedPnlNet: 0 },
        cash: 0,
        equity: 0,
        openOrders: 0,
        errors: 0,
        signalsDropped: { stale: 0, catchUp: 0, warmup: 0 },
        repeatedBars: 0,
        exchangeBudget: counts,
      } as unknown as SessionReport);
      expect(summary).not.toContain('signals not traded');
      expect(summary).toContain(
        "; exchange budget: new orders waited for the account's order count in 1 window(s) (0 refused, 429 -1015), requests for the IP's weight in 0 minute(s) (0 refused, 429/418)",
      );
    } finally {
      await other.close();
      await conn.close();
      await sim.close();
    }
  }, 30_000);
});
