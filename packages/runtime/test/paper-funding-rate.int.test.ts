// keel paper --market futures --funding-rate on the exchange's bars (--exchange-url, not --replay):
// the constant rate's funding times come from the bars' clock (the simulator replays 2023), not
// the wall clock's. Real bin, real ccxt binanceusdm against the futures simulator over loopback,
// Binance's LINKUSDT 1m candles of 2023-02. Oracle: a long of 100 through 08:00 pays
// 100 x the 08:00 mark (the bar's open: no mark bars given) x 0.0001, by hand from the bars.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readBarsFile as readSimBars } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { futuresSim, keelProcess, LINK_USDM_BARS, until } from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('paper-funding-rate.int.test.ts', LINK_USDM_BARS);

const T = (h: number, m = 0) => Date.UTC(2023, 1, 1, h, m);
const dir = mkdtempSync(path.join(tmpdir(), 'keel-paper-funding-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const HOLD = `import { defineStrategy } from '@keel/core';
import { z } from 'zod';
export default defineStrategy({
  name: 'hold-100',
  params: z.object({}),
  warmup: 'none',
  onStart: () => ({}),
  onBar(ctx) {
    if (ctx.position().size === 0 && ctx.openOrders().length === 0) ctx.buy(100);
  },
});
`;

describe.skipIf(!HAS_SHARED_DATA)('paper futures with --funding-rate on the exchange’s bars', () => {
  it('charges the constant rate at the bars’ funding time (08:00 of 2023), not from the wall clock on', async () => {
    const sim = await futuresSim(T(7, 56));
    const file = path.join(dir, 'hold.ts');
    writeFileSync(file, HOLD);
    const storeUrl = `sqlite:${path.join(dir, 'paper.db')}`;
    const botId = 'hold-paper';
    const bot = keelProcess(
      [
        'paper',
        ...['--strategy', file, '--symbol', 'LINK/USDT', '--market', 'futures', '--leverage', '2'],
        ...['--funding-rate', '0.0001', '--exchange-url', sim.httpUrl, '--warmup-bars', '0'],
        ...['--store', storeUrl, '--bot-id', botId],
      ],
      dir,
    );
    const store = await openStore({ url: storeUrl });
    try {
      await until(() => /paper bot started/.test(bot.err()) || bot.proc.exitCode !== null, 30_000, 'the paper bot');
      await sim.waitForSubscription('linkusdt@kline_1m', 20_000);
      const handled = async (t: number) =>
        ((await store.state.load(botId))?.state as { lastBarTime?: Record<string, number> } | undefined)?.lastBarTime?.[
          'LINK/USDT:USDT@1m'
        ] === t;
      // The bars of 07:56 to 08:01 close one after the other; the long of 100 is held through 08:00.
      for (let t = T(7, 56); t <= T(8, 1); t += 60_000) {
        sim.step();
        await until(
          () => handled(t),
          20_000,
          `the bar of ${new Date(t).toISOString()} (stderr: ${bot.err().slice(-1500)})`,
        );
      }
      bot.proc.kill('SIGTERM');
      expect(await bot.exited, bot.err()).toBe(0);
      const open8 = readSimBars(LINK_USDM_BARS).find((b) => b.time === T(8, 0))?.open ?? Number.NaN;
      const funding = (await store.events.list(botId)).filter((e) => e.type === 'futures.funding');
      expect(funding.map((e) => e.payload)).toEqual([
        expect.objectContaining({
          time: T(8, 0),
          rate: 0.0001,
          size: 100,
          payment: expect.closeTo(-100 * open8 * 0.0001, 10),
        }),
      ]);
      const report = JSON.parse(bot.out()) as { futures: { fundingPayments: number; warnings: string[] } };
      expect(report.futures.fundingPayments).toBe(1);
      expect(report.futures.warnings).toEqual([]);
    } finally {
      bot.proc.kill('SIGKILL');
      await store.close();
      await sim.close();
    }
  }, 120_000);
});
