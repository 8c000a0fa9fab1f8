import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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
