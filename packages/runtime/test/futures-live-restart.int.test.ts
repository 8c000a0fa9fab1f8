// A live USDⓈ-M futures bot in its own process (fixtures/live-bot.ts, KEEL_TEST_MARKET=futures),
// killed with kill -9 while it holds an isolated long and a resting sell limit; while it is down
// the limit fills and the 08:00 funding is charged (Binance's archive: rate 0.0001). Restarted, it
// recovers the fill and applies the payment it missed (each once), and its books equal the
// exchange's: position, entry, wallet and isolated wallet, with no difference to name; then it
// closes reduce-only and stops. Oracle: the simulator's own records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { futuresSim, KEY, PERP, perpBot } from './live-harness.ts';

const T = (h: number, m = 0) => Date.UTC(2023, 1, 1, h, m);
const dir = mkdtempSync(path.join(tmpdir(), 'keel-futures-live-restart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!HAS_SHARED_DATA)('live futures through kill -9', () => {
  it('funding charged while the bot was down is applied once on restart; position, wallet and isolated wallet equal the exchange’s', async () => {
    const sim = await futuresSim(T(7, 50));
    const storeUrl = `sqlite:${path.join(dir, 'perp.db')}`;
    const script = JSON.stringify([
      [T(7, 50), { buy: 100 }],
      [T(7, 52), { sell: 40 }],
      [T(7, 53), { sell: 20, limit: 6.862 }],
      [T(8, 4), 'close'],
    ]);
    const env = {
      KEEL_TEST_MARKET: 'futures',
      KEEL_TEST_LEVERAGE: '4',
      KEEL_TEST_MARGIN: 'isolated',
      KEEL_TEST_SCRIPT: script,
    };
    const { start, stepThrough } = perpBot(sim, storeUrl, 'perp', env);
    const exchange = () => {
      const a = sim.futuresAccount(KEY.apiKey);
      const p = a.positions.find((x) => x.position.symbol === 'LINKUSDT');
      return {
        wallet: a.assets.find((x) => x.asset === 'USDT')!.walletBalance,
        size: p?.position.size ?? 0,
        entry: p?.position.entryPrice ?? 0,
        isolatedWallet: p?.position.isolatedWallet ?? 0,
      };
    };
    let bot = await start();
    try {
      for (let t = T(7, 50); t <= T(7, 53); t += 60_000) await stepThrough(bot, t);
      // Bought 100 one tick above the 07:51 open (6.846), sold 40 at the 07:53 open; the sell
      // limit of 20 at 6.862 rests (the price is 6.860).
      expect(exchange()).toMatchObject({ size: 60, entry: 6.847 });
      expect(sim.futuresOrders(KEY.apiKey).at(-1)).toMatchObject({ type: 'LIMIT', status: 'NEW', origQty: 20 });
      await bot.crash();

      // Down: 07:54 (high 6.863) fills the limit (maker); through 08:00 the long of 40 pays
      // 40 x 6.859 x 0.0001 = 0.027436 (the 08:00 candle opens at 6.859, the mark then).
      while (sim.now() < T(8, 2)) sim.step();
      expect(sim.futuresOrders(KEY.apiKey).at(-1)).toMatchObject({ status: 'FILLED', executedQty: 20 });
      const income = sim.income(KEY.apiKey).filter((r) => r.incomeType === 'FUNDING_FEE');
      expect(income.map((r) => [r.time, r.income])).toEqual([[T(8), -0.027436]]);
      const down = exchange();
      // Isolated wallet: 684.7 / 4 = 171.175 at the entry, 60 % of it after the 40, 40 % after the
      // 20, less the funding: 68.47 - 0.027436.
      expect(down.isolatedWallet).toBeCloseTo(68.442564, 8);

      bot = await start();
      const recovery = bot.lines.filter((l) => l.startsWith('RECOVERY '));
      expect(recovery.filter((l) => l.startsWith('RECOVERY fill-recovered '))).toHaveLength(1);
      expect(recovery.filter((l) => l.startsWith('RECOVERY funding-recovered '))).toHaveLength(1);
      // Nothing differs: the bot's own books, with the payment it missed, are the exchange's.
      expect(recovery.filter((l) => /-difference /.test(l))).toEqual([]);
      const state = bot.lines.find((l) => l.startsWith('STATE '))!.split(' ');
      expect(Number(state[1])).toBe(40);
      expect(Number(state[2])).toBeCloseTo(down.wallet, 8);
      const funding = bot.lines.filter((l) => l.startsWith('EVENT futures.funding '));
      expect(funding).toHaveLength(1);
      expect(JSON.parse(funding[0]!.slice('EVENT futures.funding '.length)).funding).toMatchObject({
        time: T(8),
        rate: 0.0001,
        markPrice: 6.859,
        size: 40,
        payment: -0.027436,
        id: String(income[0]!.tranId),
      });

      // The reduce-only close at 08:04, then a graceful stop.
      for (let t = T(8, 2); t <= T(8, 5); t += 60_000) await stepThrough(bot, t);
      bot.proc.kill('SIGTERM');
      await bot.waitFor(() => bot.lines.some((l) => l.startsWith('REPORT ')), 'the report');
      await bot.exited;
      const end = exchange();
      expect(end.size).toBe(0);
      const orders = sim.futuresOrders(KEY.apiKey);
      expect(orders.map((o) => [o.side, o.executedQty, o.reduceOnly])).toEqual([
        ['BUY', 100, false],
        ['SELL', 40, false],
        ['SELL', 20, false],
        ['SELL', 40, true],
      ]);
      // The store: every order once, the funding once, the position flat, the wallet the exchange's.
      const store = await openStore({ url: storeUrl });
      try {
        const events = await store.events.list('perp');
        expect(events.filter((e) => e.type === 'futures.funding')).toHaveLength(1);
        expect((await store.positions.load('perp')).find((p) => p.symbol === PERP.symbol)?.size).toBe(0);
        const cash = (await store.balances.load('perp')).find((b) => b.asset === 'USDT')!.total;
        expect(cash).toBeCloseTo(end.wallet, 8);
        const fills = await store.fills.since('perp', 0);
        expect(fills.map((f) => [f.side, f.amount, f.price])).toEqual(
          orders.flatMap((o) => o.fills.map((f) => [o.side.toLowerCase(), f.qty, f.price])),
        );
      } finally {
        await store.close();
      }
    } finally {
      if (bot.proc.exitCode === null) await bot.crash();
      await sim.close();
    }
  }, 120_000);
});
