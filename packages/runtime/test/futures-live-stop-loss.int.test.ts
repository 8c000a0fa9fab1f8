// `--stop-loss` on a live USDⓈ-M perpetual, in its own process (fixtures/live-bot.ts): each entry's
// stop rests on the exchange as a conditional (algo) order, and each exit by the strategy cancels
// it there, through a SIGTERM (orders kept) and a kill -9, each while a stop rests; the last stop
// triggers while the bot is down and closes the position, and the restart takes its fill. Real
// ccxt binanceusdm against the simulator, default fees.
// Oracles: the simulator's own records (every stop's algo status, none left waiting) and the
// backtest of the same bars (the same orders, in the same end states).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineInstrument, parseRiskConfig, runBacktest } from '@keel/core';
import { readBarsFile as readSimBars } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { perpScript } from './fixtures/strategies.ts';
import { type BotProcess, futuresSim, KEY, LINK_USDM_BARS, PERP, perpBot, toSeries } from './live-harness.ts';

const T = (h: number, m = 0) => Date.UTC(2023, 1, 1, h, m);
const dir = mkdtempSync(path.join(tmpdir(), 'keel-futures-stop-loss-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Three round trips closed by the strategy, then an entry whose stop the fall from 08:16 reaches
// while the bot is down.
const script: [number, unknown][] = [
  [T(8, 5), { buy: 100 }],
  [T(8, 7), 'close'],
  [T(8, 8), { buy: 100 }],
  [T(8, 10), 'close'],
  [T(8, 11), { buy: 100 }],
  [T(8, 13), 'close'],
  [T(8, 14), { buy: 100 }],
];
const LAST = T(8, 20);
/** The simulator's LINKUSDT (futuresSim). */
const LINK_PERP = defineInstrument({ symbol: PERP.symbol, kind: 'perpetual', tickSize: 0.001, stepSize: 0.01 });

describe.skipIf(!HAS_SHARED_DATA)('--stop-loss on a live perpetual through SIGTERM and kill -9', () => {
  it('every stop is cancelled on the exchange when its position closes, or fills; none is left or forgotten', async () => {
    const sim = await futuresSim(T(8, 5));
    const storeUrl = `sqlite:${path.join(dir, 'sl.db')}`;
    const env = {
      KEEL_TEST_MARKET: 'futures',
      KEEL_TEST_LEVERAGE: '3',
      KEEL_TEST_MARGIN: 'cross',
      KEEL_TEST_SCRIPT: JSON.stringify(script),
      KEEL_TEST_EXITS: JSON.stringify({ 'stop-loss': '0.3%' }),
      KEEL_TEST_ON_SHUTDOWN: 'keep',
    };
    const { start, stepThrough } = perpBot(sim, storeUrl, 'sl', env);
    const waiting = () => sim.algoOrders(KEY.apiKey).filter((a) => a.algoStatus === 'NEW');
    const recovery = (p: BotProcess) => p.lines.filter((l) => l.startsWith('RECOVERY '));
    let bot = await start();
    try {
      for (let t = T(8, 5); t <= T(8, 9); t += 60_000) await stepThrough(bot, t);
      // The first stop was cancelled with its position; the second rests.
      expect(sim.algoOrders(KEY.apiKey).map((a) => a.algoStatus)).toEqual(['CANCELED', 'NEW']);
      bot.proc.kill('SIGTERM');
      await bot.waitFor(() => bot.lines.some((l) => l.startsWith('REPORT ')), 'the report');
      await bot.exited;
      expect(waiting()).toHaveLength(1); // kept on the exchange (--on-shutdown keep)

      bot = await start();
      // Found where it rests, not taken for an order that never arrived.
      expect(recovery(bot).filter((l) => l.startsWith('RECOVERY order-never-reached-exchange'))).toEqual([]);
      expect(recovery(bot)).toContain(`RECOVERY order-still-open ${waiting()[0]?.clientAlgoId}`);
      for (let t = T(8, 10); t <= T(8, 15); t += 60_000) await stepThrough(bot, t);
      expect(sim.algoOrders(KEY.apiKey).map((a) => a.algoStatus)).toEqual(['CANCELED', 'CANCELED', 'CANCELED', 'NEW']);
      const last = waiting()[0]?.clientAlgoId;
      await bot.crash();
      // Down through the fall: the last stop triggers and closes the position meanwhile.
      while (sim.now() < LAST + 60_000) sim.step();
      expect(sim.algoOrders(KEY.apiKey).at(-1)?.algoStatus).toBe('FINISHED');

      bot = await start();
      // Found through the order it placed when it triggered: its fill recovered, once.
      expect(recovery(bot).filter((l) => l.startsWith('RECOVERY order-never-reached-exchange'))).toEqual([]);
      expect(recovery(bot)).toContain(`RECOVERY order-closed-while-down ${last}: filled`);
      expect(recovery(bot).filter((l) => l.startsWith('RECOVERY fill-recovered'))).toHaveLength(1);
      await stepThrough(bot, LAST);
      bot.proc.kill('SIGTERM');
      await bot.waitFor(() => bot.lines.some((l) => l.startsWith('REPORT ')), 'the report');
      await bot.exited;

      // The exchange: three stops cancelled, the last one triggered and done; nothing waits.
      const algos = sim.algoOrders(KEY.apiKey);
      expect(algos.map((a) => a.algoStatus)).toEqual(['CANCELED', 'CANCELED', 'CANCELED', 'FINISHED']);
      expect(sim.futuresOrders(KEY.apiKey).filter((o) => o.status === 'NEW')).toEqual([]);
      const position = sim.futuresAccount(KEY.apiKey).positions.find((p) => p.position.symbol === 'LINKUSDT');
      expect(position?.position.size ?? 0).toBe(0);

      // The store: each stop in the exchange's state, no order open.
      const store = await openStore({ url: storeUrl });
      try {
        const orders = (await store.orders.list('sl')).sort((a, b) => a.createdAt - b.createdAt);
        const stops = orders.filter((o) => o.request.tag === 'stop-loss');
        const exchangeState = { CANCELED: 'cancelled', FINISHED: 'filled' } as Record<string, string>;
        expect(stops.map((o) => [o.request.id, o.status])).toEqual(
          algos.map((a) => [a.clientAlgoId, exchangeState[a.algoStatus]]),
        );
        expect(await store.orders.open('sl')).toEqual([]);
        const fills = (await store.fills.since('sl', 0)).filter((f) => f.orderId === last);
        const exit = sim.futuresOrders(KEY.apiKey).filter((o) => o.clientOrderId === last);
        expect(exit.map((o) => [o.origType, o.executedQty])).toEqual([['STOP_MARKET', 100]]);
        expect(fills.map((f) => [f.amount, f.price, f.fee])).toEqual(
          exit.flatMap((o) => o.fills.map((f) => [f.qty, f.price, f.commission])),
        );

        // The backtest of the same bars: the same orders, ending the same way.
        const parsed = parseRiskConfig({ exits: { 'stop-loss': '0.3%' } });
        if (!parsed.ok) throw new Error(parsed.error.message);
        const bars = readSimBars(LINK_USDM_BARS).filter((b) => b.time >= T(8, 5) && b.time <= LAST + 60_000);
        const bt = runBacktest({
          strategy: perpScript(new Map(script as [number, never][])),
          data: [{ ...PERP, series: toSeries(bars), instrument: LINK_PERP }],
          cash: 10_000,
          fee: 0.0005,
          risk: parsed.config,
          futures: () => ({ leverage: 3, marginMode: 'cross', funding: null }),
        });
        expect(bt.errors).toEqual([]);
        const shape = (o: { request: { tag?: string; side: string; amount: number }; status: string }) => [
          o.request.tag,
          o.request.side,
          o.request.amount,
          o.status,
        ];
        expect(orders.map(shape)).toEqual(bt.orders.map(shape));
      } finally {
        await store.close();
      }
    } finally {
      if (bot.proc.exitCode === null) await bot.crash();
      await sim.close();
    }
  }, 120_000);
});
