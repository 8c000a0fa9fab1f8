// `keel paper --market futures` without --replay reads its bars from the exchange through ccxt's
// binanceusdm: here the futures simulator on loopback (`keel exchange-sim --market futures`).
// Oracle: the simulator's own LINKUSDT candles and contract (tick, step, perpetual).
import { readBarsFile, startExchangeSim } from '@keel/exchange-sim';
import { describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { connectExchange } from '../src/live/ccxt.ts';

const BARS = dataFile('binance-futures-um_LINKUSDT_1m_2023-02.csv.gz');
if (!HAS_SHARED_DATA) noteSkip('futures-connect.int.test.ts', BARS);

describe.skipIf(!HAS_SHARED_DATA)('the runtime reaches a USD-M exchange through ccxt binanceusdm', () => {
  it('loads the perpetual and streams its closed 1m bars, history then live, as the exchange has them', async () => {
    const bars = readBarsFile(BARS);
    const start = Date.UTC(2023, 1, 1, 6);
    const sim = await startExchangeSim({
      market: 'futures',
      markets: [{ symbol: 'LINK/USDT', bars, tickSize: 0.001, stepSize: 0.01, minNotional: 5, funding: 0.0001 }],
      accounts: [{ apiKey: 'k', secret: 's', balances: { USDT: 1000 } }],
      startTime: start,
    });
    const logs: string[] = [];
    const ex = await connectExchange({
      exchange: 'binanceusdm',
      url: sim.httpUrl,
      botId: 'fut',
      symbols: ['LINK/USDT:USDT'],
      log: (_l, m) => logs.push(m),
    });
    try {
      const inst = await ex.instrument('LINK/USDT:USDT');
      expect(inst).toMatchObject({
        kind: 'perpetual',
        base: 'LINK',
        quote: 'USDT',
        settle: 'USDT',
        tickSize: 0.001,
        stepSize: 0.01,
      });
      const source = ex.candles({ symbol: 'LINK/USDT:USDT', timeframe: '1m' });
      const seen: { time: number; open: number; close: number; warmup: boolean }[] = [];
      // History first (flagged warm-up), then each bar the replay closes (stepped here).
      // Stepped once the stream is subscribed: the replay's clock starts inside the 06:00 bar.
      let stepper: NodeJS.Timeout | undefined;
      void sim.waitForSubscription('linkusdt@kline_1m', 20_000).then(() => {
        stepper = setInterval(() => sim.step(), 50);
      });
      try {
        for await (const ev of source) {
          seen.push({ time: ev.bar.time, open: ev.bar.open, close: ev.bar.close, warmup: ev.warmup === true });
          if (seen.filter((b) => !b.warmup).length >= 3) break;
        }
      } finally {
        if (stepper) clearInterval(stepper);
      }
      await source.close();
      expect(seen.some((b) => b.warmup)).toBe(true);
      // History is the exchange's candles as they are; bars come once each, in time order.
      for (const b of seen.filter((x) => x.warmup)) {
        const x = bars.find((y) => y.time === b.time)!;
        expect([b.open, b.close], new Date(b.time).toISOString()).toEqual([x.open, x.close]);
      }
      for (let i = 1; i < seen.length; i++) expect(seen[i]!.time - seen[i - 1]!.time).toBe(60_000);
      // Live bars are the replay's closed bars, as the file has them.
      const liveBars = seen.filter((b) => !b.warmup);
      for (const b of liveBars) {
        const x = bars.find((y) => y.time === b.time)!;
        expect([b.open, b.close], new Date(b.time).toISOString()).toEqual([x.open, x.close]);
      }
    } finally {
      await ex.close();
      await sim.close();
    }
  }, 60_000);
});
