import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type ExchangeSim, startExchangeSim } from '@keel/exchange-sim';
import { intentLogFile, openStore, readIntentLog } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { BotProcess, MIN, T0 } from './live-harness.ts';

/**
 * The write-ahead record of an order is a line in the bot's intent log; its database row follows
 * an instant later. A bot killed (SIGKILL) in that instant, after the exchange has taken the
 * order, must get it back on restart: recovered from the log, found on the exchange by its
 * client id, its fill recorded, nothing flagged as unknown and nothing sent twice. Real ccxt
 * client against the simulator on loopback; the bot in its own process.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'keel-crash-send-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const KEY = { apiKey: 'crash-key', secret: 'crash-secret' };

describe('kill -9 between an order leaving and its row being saved (real ccxt, loopback)', () => {
  it('the restart recovers the order from the write-ahead log and adopts its fill; nothing is sent twice', async () => {
    const bars = Array.from({ length: 60 }, (_, i) => {
      const o = 40_000 + 30 * Math.sin(i / 2);
      return { time: T0 + i * MIN, open: o, high: o + 25, low: o - 25, close: o + 5, volume: 50 };
    });
    const sim: ExchangeSim = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars }],
      accounts: [{ ...KEY, balances: { USDT: 10_000 } }],
      startTime: T0,
    });
    const dbFile = path.join(dir, 'crash.db');
    const storeUrl = `sqlite:${dbFile}`;
    // The churn bot buys on its 4th bar and sells two bars later: its 2nd order is the sell.
    let bot = new BotProcess(sim.httpUrl, storeUrl, 'crash', KEY, 'churn', { KEEL_TEST_DIE_AFTER_ORDER: '2' });
    let lostId = '';
    try {
      await bot.waitFor(() => bot.lines.includes('READY'), 'the bot to start');
      await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
      for (let k = 0; k < 20 && bot.proc.exitCode === null && bot.proc.signalCode === null; k++) {
        sim.step();
        await Promise.race([bot.exited, new Promise((r) => setTimeout(r, 300))]);
      }
      expect(bot.proc.signalCode, 'the bot killed itself after its 2nd order').toBe('SIGKILL');
      lostId = bot.lines.find((l) => l.startsWith('LOGGED '))?.slice(7) ?? '';
      expect(lostId).not.toBe('');

      // What the crash left: the exchange has the order, the database does not, the log does.
      expect(sim.getOrders(KEY.apiKey).filter((o) => o.clientOrderId === lostId)).toHaveLength(1);
      const before = await openStore({ url: storeUrl });
      expect(await before.orders.get(lostId)).toBeUndefined();
      await before.close();
      const logged = readIntentLog<{ row: { client_order_id: string } }>(intentLogFile(dbFile, 'crash')).records;
      expect(logged.map((r) => r.row.client_order_id)).toContain(lostId);

      sim.step(); // the market moves on while the bot is down
      bot = new BotProcess(sim.httpUrl, storeUrl, 'crash', KEY);
      await bot.waitFor(() => bot.lines.includes('READY'), 'the restarted bot', 30_000);
      expect(bot.err.join('')).toContain(`recovered 1 order(s) from the write-ahead log of bot crash`);
      expect(bot.lines.filter((l) => l.startsWith('RECOVERY ') && l.includes(lostId) && /unknown/i.test(l))).toEqual(
        [],
      );
      for (let k = 0; k < 6; k++) sim.step();
      await new Promise((r) => setTimeout(r, 500));
      bot.proc.kill('SIGTERM');
      await bot.exited;
      expect(bot.lines.some((l) => l.startsWith('REPORT '))).toBe(true);
    } finally {
      if (bot.proc.exitCode === null && bot.proc.signalCode === null) bot.proc.kill('SIGKILL');
      await sim.close();
    }

    // The simulator is the oracle: every order once, every fill once, the same balances.
    const orders = sim.getOrders(KEY.apiKey);
    const ids = orders.map((o) => o.clientOrderId);
    expect(new Set(ids).size, `duplicate client order ids: ${ids.join(',')}`).toBe(ids.length);
    const store = await openStore({ url: storeUrl });
    try {
      const lost = await store.orders.get(lostId);
      const onExchange = orders.find((o) => o.clientOrderId === lostId)!;
      expect(lost?.filled).toBeCloseTo(onExchange.executedQty, 10);
      expect(lost?.status).toBe('filled');
      const fills = await store.fills.since('crash', 0);
      const trades = orders.flatMap((o) => o.fills.map((f) => String(f.tradeId)));
      expect(new Set(fills.map((f) => f.tradeId))).toEqual(new Set(trades));
      expect(fills).toHaveLength(trades.length);
      const simBal = sim.getBalances(KEY.apiKey) as Record<string, { free: number; locked: number }>;
      const local = Object.fromEntries((await store.balances.load('crash')).map((b) => [b.asset, b.total]));
      const total = (a: string) => (simBal[a]?.free ?? 0) + (simBal[a]?.locked ?? 0);
      expect(local.USDT).toBeCloseTo(total('USDT'), 6);
      expect(local.BTC ?? 0).toBeCloseTo(total('BTC'), 8);
    } finally {
      await store.close();
    }
  }, 90_000);
});
