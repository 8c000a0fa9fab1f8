import { readBarsFile, type SimBar } from '@keel/exchange-sim';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { type ClosedBar, watchCandles } from '../src/index.ts';
import { eventually, MIN, type SimHarness, simHarness, stairBars, T0 } from './sim-harness.ts';

// Real ccxt.pro watchOHLCV over a real WebSocket to the sim. Oracle: the sim's data bars
// (stairBars), which are the exchange's own 1m candles: every emitted bar must equal one of them,
// in order, with none missing and none twice.
describe('watchCandles against the exchange simulator (real ccxt.pro, loopback)', () => {
  let h: SimHarness;
  beforeEach(async () => {
    h = await simHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const data = stairBars();
  const expectBars = (got: ClosedBar[], from: number, to: number) => {
    expect(got.map((b) => (b.time - T0) / MIN)).toEqual(Array.from({ length: to - from + 1 }, (_, k) => from + k));
    for (const b of got) {
      const d = data[(b.time - T0) / MIN];
      expect([b.open, b.high, b.low, b.close, b.volume], `bar ${(b.time - T0) / MIN}`).toEqual([
        d?.open,
        d?.high,
        d?.low,
        d?.close,
        d?.volume,
      ]);
    }
  };

  function consume(gw: ReturnType<SimHarness['gateway']>, opts: Parameters<typeof watchCandles>[1]) {
    const got: ClosedBar[] = [];
    const reconnects: string[] = [];
    const ctl = new AbortController();
    const done = (async () => {
      for await (const b of watchCandles(gw, { ...opts, signal: ctl.signal, onReconnect: (r) => reconnects.push(r) }))
        got.push(b);
    })();
    return {
      got,
      reconnects,
      async stop() {
        ctl.abort();
        await gw.close();
        await done.catch(() => {});
      },
    };
  }

  it('REST backfill, then live bars exactly once; a WS drop with bars closing meanwhile is gap-filled', async () => {
    const gw = h.gateway();
    const c = consume(gw, { symbol: 'BTC/USDT', timeframe: '1m', backfill: 5, reconnect: { baseMs: 200, maxMs: 400 } });
    await eventually(() => c.got.length === 5, 5_000, 'the backfill');
    expectBars(c.got, 5, 9);
    await h.sim.waitForSubscription('btcusdt@kline_1m');
    h.sim.step(); // closes bar 10
    await eventually(() => c.got.length === 6, 5_000, 'bar 10');
    // The socket dies; three bars close while we are away.
    h.sim.faults.dropWebSockets({ kind: 'market' });
    h.sim.step(3);
    await eventually(() => c.got.length === 9, 5_000, 'the gap fill of bars 11..13');
    await h.sim.waitForSubscription('btcusdt@kline_1m');
    h.sim.step(); // bar 14 closes on the new socket
    await eventually(() => c.got.length === 10, 5_000, 'bar 14 after the reconnect');
    await new Promise((r) => setTimeout(r, 100));
    await c.stop();
    expectBars(c.got, 5, 14);
    expect(c.reconnects.length).toBeGreaterThanOrEqual(1);
  });

  it('a consumer that falls behind: each bar it takes while newer ones have closed says how many (behind)', async () => {
    const gw = h.gateway();
    const ctl = new AbortController();
    const it = watchCandles(gw, { symbol: 'BTC/USDT', timeframe: '1m', signal: ctl.signal })[Symbol.asyncIterator]();
    try {
      const first = it.next();
      await h.sim.waitForSubscription('btcusdt@kline_1m');
      h.sim.step(); // closes bar 10, taken at once: on time
      const b10 = (await first).value as ClosedBar;
      expect([(b10.time - T0) / MIN, b10.behind]).toEqual([10, undefined]);
      // The consumer is busy while three more bars close; it asks again, and the stream's next
      // message (bar 14 closing: on Binance the forming bar's updates every 2 s) brings them all.
      h.sim.step(3);
      await new Promise((r) => setTimeout(r, 300));
      const next = it.next();
      await new Promise((r) => setTimeout(r, 100));
      h.sim.step();
      const late: [number, number | undefined][] = [];
      for (let k = 0; k < 4; k++) {
        const b = (await (k === 0 ? next : it.next())).value as ClosedBar;
        late.push([(b.time - T0) / MIN, b.behind]);
      }
      expect(late).toEqual([
        [11, 3],
        [12, 2],
        [13, 1],
        [14, undefined],
      ]);
    } finally {
      ctl.abort();
      await it.return?.();
      await gw.close();
    }
  });

  it('a stalled socket (open but silent) is detected as stale, reopened, and the lost bars come from REST', async () => {
    const gw = h.gateway();
    const c = consume(gw, {
      symbol: 'BTC/USDT',
      timeframe: '1m',
      backfill: 1,
      staleAfterMs: 600,
      reconnect: { baseMs: 100, maxMs: 200 },
    });
    await eventually(() => c.got.length === 1, 5_000, 'the backfill');
    await h.sim.waitForSubscription('btcusdt@kline_1m');
    h.sim.faults.stallWebSockets({ kind: 'market', ms: 1_000 });
    h.sim.step(2); // bars 10 and 11 close while nothing is delivered
    await eventually(() => c.got.length === 3, 6_000, 'bars 10..11 after the stale reconnect');
    expect(c.reconnects.some((r) => /no BTC\/USDT 1m candle message/.test(r))).toBe(true);
    await eventually(() => h.sim.subscriptions().includes('btcusdt@kline_1m'), 3_000, 'the resubscription');
    await new Promise((r) => setTimeout(r, 500)); // the stall ends
    h.sim.step();
    await eventually(() => c.got.length === 4, 6_000, 'bar 12 live');
    await c.stop();
    expectBars(c.got, 9, 12);
  });
});

if (!HAS_SHARED_DATA) noteSkip('watchCandles: a bar that closes between the REST read and the stream');

// The race at start (and after a reconnect's gap fill): REST is read while a bar forms, that bar
// closes before the stream's first message arrives, and the first message is the NEXT bar. The
// bar must still be emitted with the exchange's final values, not with the ones REST gave while it
// formed. The simulator replays Binance's real BTCUSDT 1m candles; its WebSocket is stalled over
// the close (the close's x=true message is lost, as it is to a client not yet subscribed).
// Oracle: the candles of the data file, which are the exchange's own.
describe.skipIf(!HAS_SHARED_DATA)(
  'watchCandles: a bar read from REST while forming (real ccxt.pro, real candles)',
  () => {
    const real: SimBar[] = HAS_SHARED_DATA
      ? readBarsFile(dataFile('binance_BTCUSDT_1m_2024-01.csv.gz')).slice(0, 40)
      : [];
    const R0 = real[0]?.time ?? 0;
    const at = (t: number) => (t - R0) / MIN;
    let h: SimHarness;
    beforeEach(async () => {
      h = await simHarness({
        markets: [{ symbol: 'BTC/USDT', bars: real, stepSize: 0.00001, minNotional: 1 }],
        startTime: R0 + 10 * MIN,
      });
    });
    afterEach(async () => {
      await h.close();
    });

    /** Every emitted bar is the file's bar of its open time, to the last digit; none missing or twice. */
    const expectFileBars = (got: ClosedBar[], from: number, to: number) => {
      expect(got.map((b) => at(b.time))).toEqual(Array.from({ length: to - from + 1 }, (_, k) => from + k));
      for (const b of got) {
        const d = real[at(b.time)] as SimBar;
        expect([b.open, b.high, b.low, b.close, b.volume], `bar ${at(b.time)} vs the exchange's candle`).toEqual([
          d.open,
          d.high,
          d.low,
          d.close,
          d.volume,
        ]);
      }
    };

    /** What REST shows of bar i right now (forming: not its final values). */
    const restBar = async (i: number) => {
      const rows = await h.client().fetchOHLCV('BTC/USDT', '1m', R0 + i * MIN, 1);
      return rows[0]?.slice(1, 6);
    };
    const final = (i: number) => {
      const d = real[i] as SimBar;
      return [d.open, d.high, d.low, d.close, d.volume];
    };

    function consume(opts: Omit<Parameters<typeof watchCandles>[1], 'symbol' | 'timeframe'>) {
      const gw = h.gateway();
      // Counts the REST candle reads (through our gateway; the ccxt client underneath is real).
      let restReads = 0;
      const fetchOHLCV = gw.fetchOHLCV.bind(gw);
      gw.fetchOHLCV = (...a: Parameters<typeof fetchOHLCV>) => {
        restReads++;
        return fetchOHLCV(...a);
      };
      const got: ClosedBar[] = [];
      const reconnects: string[] = [];
      const ctl = new AbortController();
      const done = (async () => {
        for await (const b of watchCandles(gw, {
          symbol: 'BTC/USDT',
          timeframe: '1m',
          ...opts,
          signal: ctl.signal,
          onReconnect: (r) => reconnects.push(r),
        }))
          got.push(b);
      })();
      return {
        got,
        reconnects,
        restReads: () => restReads,
        async stop() {
          ctl.abort();
          await gw.close();
          await done.catch(() => {});
        },
      };
    }

    it('at start: the forming bar REST gave, closed before the first stream message, is emitted with its final values', async () => {
      h.sim.tick(2); // bar 10 forms: REST sees its open and first moves only
      expect(await restBar(10), 'bar 10 is still forming when REST reads it').not.toEqual(final(10));
      h.sim.faults.stallWebSockets({ kind: 'market' });
      const c = consume({ backfill: 3 });
      try {
        await eventually(() => c.got.length === 3, 5_000, 'the backfill of bars 7..9');
        await h.sim.waitForSubscription('btcusdt@kline_1m'); // REST was read before the subscription
        const atStart = c.restReads();
        h.sim.step(); // bar 10 closes; its x=true message is lost
        h.sim.faults.resumeWebSockets();
        h.sim.tick(); // the first message the client gets: bar 11 forming
        await eventually(() => c.got.length === 4, 5_000, 'bar 10');
        expect(c.restReads() - atStart, 'one REST read finalises bar 10').toBe(1);
        for (let n = 5; n <= 8; n++) {
          h.sim.step(); // bars 11..14 close normally (x=true)
          await eventually(() => c.got.length === n, 5_000, `bar ${n + 6}`);
        }
        expect(c.restReads() - atStart, 'bars that close on the stream cost no REST read').toBe(1);
      } finally {
        await c.stop();
      }
      expectFileBars(c.got, 7, 14);
    });

    it('after a reconnect: the forming bar of the gap fill, closed before the first stream message, is emitted with its final values', async () => {
      const c = consume({ backfill: 1, reconnect: { baseMs: 100, maxMs: 200 } });
      try {
        await eventually(() => c.got.length === 1, 5_000, 'the backfill of bar 9');
        await h.sim.waitForSubscription('btcusdt@kline_1m');
        h.sim.step(); // bar 10 closes on the stream
        await eventually(() => c.got.length === 2, 5_000, 'bar 10');
        h.sim.tick(2); // bar 11 forms
        expect(await restBar(11), 'bar 11 is still forming when the gap fill reads it').not.toEqual(final(11));
        h.sim.faults.stallWebSockets({ kind: 'market' });
        h.sim.faults.dropWebSockets({ kind: 'market' });
        await eventually(() => c.reconnects.length >= 1, 5_000, 'the reconnect');
        // The gap fill (REST, bar 11 forming) runs before the new subscription.
        await eventually(() => h.sim.subscriptions().includes('btcusdt@kline_1m'), 5_000, 'the resubscription');
        h.sim.step(); // bar 11 closes; its x=true message is lost
        h.sim.faults.resumeWebSockets();
        h.sim.tick(); // first message on the new socket: bar 12 forming
        await eventually(() => c.got.length === 3, 5_000, 'bar 11');
        h.sim.step();
        await eventually(() => c.got.length === 4, 5_000, 'bar 12');
      } finally {
        await c.stop();
      }
      expectFileBars(c.got, 9, 12);
    });
  },
);
