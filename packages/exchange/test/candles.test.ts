import type { OHLCV } from 'ccxt';
import * as ccxt from 'ccxt';
import { describe, expect, it } from 'vitest';
import { type ClosedBar, ExchangeGateway, ManualTimer, type WatchCandlesOptions, watchCandles } from '../src/index.ts';
import { FakeExchange } from './fake-ccxt.ts';
import { drive } from './helpers.ts';

const T0 = 1_700_000_040_000 - (1_700_000_040_000 % 60_000);
const M = 60_000;
/** The exchange's final 1m candles (the oracle): bar i opens at T0 + i*M. */
const bar = (i: number, close = 100 + i): OHLCV => [T0 + i * M, 100 + i, 101 + i, 99 + i, close, 10 + i];
/** A forming update of bar i (not final values). */
const partial = (i: number): OHLCV => [T0 + i * M, 100 + i, 100.5 + i, 99.5 + i, 100.2 + i, 1];
const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, k) => a + k);

function setup() {
  const fake = new FakeExchange();
  const timer = new ManualTimer(T0 + 5 * M + 1_000);
  const gw = new ExchangeGateway(fake.asClient(), { timer, seed: 3 });
  return { fake, timer, gw };
}

async function collect(gw: ExchangeGateway, timer: ManualTimer, n: number, opts: Partial<WatchCandlesOptions> = {}) {
  const reconnects: string[] = [];
  const got: ClosedBar[] = [];
  const run = (async () => {
    for await (const b of watchCandles(gw, {
      symbol: 'BTC/USDT',
      timeframe: '1m',
      onReconnect: (r) => reconnects.push(r),
      ...opts,
    })) {
      got.push(b);
      if (got.length >= n) break;
    }
  })();
  await drive(timer, run, 1_000);
  return { got, reconnects };
}

const times = (bs: ClosedBar[]) => bs.map((b) => (b.time - T0) / M);

describe('watchCandles (fake ccxt client; oracle: the exchange final candles)', () => {
  it('backfills from REST, then emits each live bar once, when a newer open time arrives', async () => {
    const { fake, timer, gw } = setup();
    fake.bars = range(0, 5).map((i) => (i === 5 ? partial(5) : bar(i)));
    fake.stream = [[partial(5)], [bar(5), partial(6)], [partial(6)], [bar(6)], [partial(7)]];
    const { got } = await collect(gw, timer, 5, { backfill: 3 });
    expect(times(got)).toEqual([2, 3, 4, 5, 6]);
    expect(got.slice(0, 5).map((b) => b.close)).toEqual([2, 3, 4, 5, 6].map((i) => 100 + i));
    expect(got[0]).toMatchObject({ symbol: 'BTC/USDT', timeframe: '1m' });
  });

  it('after a WS drop, fills the gap from REST: no missed and no duplicated bar', async () => {
    const { fake, timer, gw } = setup();
    fake.bars = range(0, 5).map((i) => (i === 5 ? partial(5) : bar(i)));
    fake.stream = [
      [bar(5), partial(6)],
      new ccxt.NetworkError('connection closed by remote server, closing code 1006'),
      [bar(9), partial(10)],
      [bar(10), partial(11)],
    ];
    // While the socket is down the market moves on: bars 6..8 close, 9 forms.
    fake.onWatch = (n) => {
      if (n === 2) fake.bars = range(0, 9).map((i) => (i === 9 ? partial(9) : bar(i)));
    };
    const { got, reconnects } = await collect(gw, timer, 8, { backfill: 2 });
    expect(times(got)).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    for (const b of got) expect(b.close, `bar ${(b.time - T0) / M}`).toBe(100 + (b.time - T0) / M);
    expect(reconnects).toHaveLength(1);
  });

  it('a stalled stream is detected, dropped (unWatch) and re-opened with a gap fill', async () => {
    const { fake, timer, gw } = setup();
    fake.bars = range(0, 5).map((i) => (i === 5 ? partial(5) : bar(i)));
    fake.stream = [[partial(5)], 'hang', [partial(8)], [bar(8), partial(9)]];
    fake.onWatch = (n) => {
      if (n === 3) fake.bars = range(0, 8).map((i) => (i === 8 ? partial(8) : bar(i)));
    };
    const { got, reconnects } = await collect(gw, timer, 5, { backfill: 1, staleAfterMs: 120_000 });
    expect(times(got)).toEqual([4, 5, 6, 7, 8]);
    expect(reconnects[0]).toMatch(/no BTC\/USDT 1m candle message for 120000 ms/);
    expect(fake.unwatched).toBe(2); // the stale drop, then the release when the consumer stops
  });

  it('a stream that skips bars without dropping triggers a REST fill before going on', async () => {
    const { fake, timer, gw } = setup();
    fake.bars = range(0, 5).map((i) => (i === 5 ? partial(5) : bar(i)));
    fake.stream = [[partial(5)], [partial(8)], [bar(8), partial(9)]];
    fake.onWatch = (n) => {
      if (n === 2) fake.bars = range(0, 8).map((i) => (i === 8 ? partial(8) : bar(i)));
    };
    const { got } = await collect(gw, timer, 5, { backfill: 1 });
    expect(times(got)).toEqual([4, 5, 6, 7, 8]);
  });

  it('a bar REST gave while forming, closed before the first stream message, is read again before it is emitted', async () => {
    const { fake, timer, gw } = setup();
    fake.bars = range(0, 5).map((i) => (i === 5 ? partial(5) : bar(i)));
    // Bar 5 closes between the REST read and the subscription: the stream starts with bar 6.
    fake.stream = [[partial(6)], { final: bar(6) }];
    fake.onWatch = (n) => {
      if (n === 1) fake.bars = range(0, 6).map((i) => (i === 6 ? partial(6) : bar(i)));
    };
    const { got } = await collect(gw, timer, 3, { backfill: 1 });
    expect(times(got)).toEqual([4, 5, 6]);
    expect(got.map((b) => b.close)).toEqual([104, 105, 106]);
    expect(got[1]?.volume).toBe(15);
  });

  it("Binance's kline closed flag (x=true) closes a bar at once, without waiting for the next bar", async () => {
    const { fake, timer, gw } = setup();
    fake.bars = range(0, 5).map((i) => (i === 5 ? partial(5) : bar(i)));
    fake.stream = [[partial(5)], { final: bar(5) }, [partial(6)], { final: bar(6) }];
    const { got } = await collect(gw, timer, 3, { backfill: 1 });
    expect(times(got)).toEqual([4, 5, 6]);
    expect(got.map((b) => b.close)).toEqual([104, 105, 106]);
    expect(fake.watchCalls).toBe(4); // bar 6 was emitted on its own x=true message
    expect(fake.klineMessages).toBe(2);
  });

  it('live only (no backfill) starts with the first bar that closes after the start; resume with `after`', async () => {
    const a = setup();
    a.fake.bars = range(0, 5).map((i) => (i === 5 ? partial(5) : bar(i)));
    a.fake.stream = [
      [bar(5), partial(6)],
      [bar(6), partial(7)],
    ];
    expect(times((await collect(a.gw, a.timer, 2)).got)).toEqual([5, 6]);

    const b = setup();
    b.fake.bars = range(0, 5).map((i) => (i === 5 ? partial(5) : bar(i)));
    b.fake.stream = [[bar(5), partial(6)]];
    expect(times((await collect(b.gw, b.timer, 3, { after: T0 + 2 * M })).got)).toEqual([3, 4, 5]);
  });
  it('a consumer that stops pulling leaves no timer behind: the staleness watchdog runs only while a watch is pending', async () => {
    const { fake, timer, gw } = setup();
    fake.bars = range(0, 5).map((i) => (i === 5 ? partial(5) : bar(i)));
    fake.stream = [[bar(5), partial(6)]];
    const bars = watchCandles(gw, { symbol: 'BTC/USDT', timeframe: '1m', staleAfterMs: 120_000 });
    const first = await drive(timer, bars.next(), 1_000);
    expect(times([first.value as ClosedBar])).toEqual([5]);
    // Parked at the yield, never resumed nor returned: after one staleness period nothing sleeps.
    await timer.advance(3 * 120_000);
    expect(timer.pending).toBe(0);
  });
});
