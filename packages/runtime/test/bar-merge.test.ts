import { type Bar, emptyBar, type FeedKey, seriesFromRows } from '@keel/core';
import { ManualTimer } from '@keel/exchange';
import { describe, expect, it } from 'vitest';
import { mergeSources } from '../src/bar-merge.ts';
import { type BarEvent, type BarSource, replaySource } from '../src/sources.ts';

const MIN = 60_000;
const T0 = Date.UTC(2024, 0, 1);
const A: FeedKey = { symbol: 'BTC/USDT', timeframe: '1m' };
const B: FeedKey = { symbol: 'ETH/USDT', timeframe: '1m' };
const C: FeedKey = { symbol: 'BNB/USDT', timeframe: '5m' };

const bar = (time: number, close = 100): Bar => ({
  ...emptyBar(),
  time,
  open: close,
  high: close,
  low: close,
  close,
  volume: 1,
});

/** A feed's stream that the test feeds bar by bar; `rest` is what its exchange answers a late read with. */
function pushSource(feed: FeedKey, rest: (after: number) => Bar | undefined | Error = () => undefined) {
  const queue: BarEvent[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  const reads: number[] = [];
  const source: BarSource = {
    async close() {
      ended = true;
      wake?.();
    },
    async nextBar(_f, after) {
      reads.push(after);
      const r = rest(after);
      if (r instanceof Error) throw r;
      return r;
    },
    async *[Symbol.asyncIterator]() {
      for (;;) {
        while (queue.length > 0) yield queue.shift() as BarEvent;
        if (ended) return;
        await new Promise<void>((r) => {
          wake = r;
        });
      }
    },
  };
  return {
    source,
    reads,
    push(time: number, close = 100) {
      queue.push({ feed, bar: bar(time, close) });
      wake?.();
    },
    end() {
      ended = true;
      wake?.();
    },
  };
}

/** What the merge lets through, as `symbol@minute`, collected as it comes. */
function collect(src: BarSource) {
  const out: string[] = [];
  const done = (async () => {
    for await (const ev of src) out.push(`${ev.feed.symbol.split('/')[0]}@${(ev.bar.time - T0) / MIN}`);
  })();
  return { out, done };
}

const settle = () => new Promise((r) => setTimeout(r, 5));

describe('mergeSources: the backtest order, (close time, feed index)', () => {
  it('replays of different timeframes and gaps come out as runBacktest merges them', async () => {
    // Oracle: the order written out by hand from runBacktest's rule (close time, then feed index).
    const a = seriesFromRows([0, 1, 2, 3, 4, 5, 6].map((m) => bar(T0 + m * MIN)));
    const b = seriesFromRows([0, 2, 3, 6].map((m) => bar(T0 + m * MIN))); // gaps at 1, 4, 5
    const c = seriesFromRows([0].map((m) => bar(T0 + m * MIN))); // one 5m bar: closes at minute 5
    const timer = new ManualTimer(0);
    const merged = mergeSources([A, B, C], [replaySource(A, a), replaySource(B, b), replaySource(C, c)], {
      lateAfterMs: 1_000,
      timer,
    });
    const { out, done } = collect(merged);
    await done;
    expect(out).toEqual([
      'BTC@0', // closes 1
      'ETH@0',
      'BTC@1', // 2
      'BTC@2', // 3
      'ETH@2',
      'BTC@3', // 4
      'ETH@3',
      'BTC@4', // 5
      'BNB@0', // the 5m bar closes at 5, after BTC (feed 0)
      'BTC@5',
      'BTC@6',
      'ETH@6',
    ]);
  });

  it("a close time's bars come back to back, each but the last marked moreAtClose (a bot handles them together)", async () => {
    // Oracle: the close times written out by hand, as in the test above.
    const a = seriesFromRows([0, 1, 2, 3, 4, 5, 6].map((m) => bar(T0 + m * MIN)));
    const b = seriesFromRows([0, 2, 3, 6].map((m) => bar(T0 + m * MIN)));
    const c = seriesFromRows([0].map((m) => bar(T0 + m * MIN)));
    const merged = mergeSources([A, B, C], [replaySource(A, a), replaySource(B, b), replaySource(C, c)], {
      lateAfterMs: 1_000,
      timer: new ManualTimer(0),
    });
    const groups: string[][] = [[]];
    for await (const ev of merged) {
      (groups[groups.length - 1] as string[]).push(`${ev.feed.symbol.split('/')[0]}@${(ev.bar.time - T0) / MIN}`);
      if (ev.moreAtClose !== true) groups.push([]);
    }
    expect(groups).toEqual([
      ['BTC@0', 'ETH@0'], // closes 1
      ['BTC@1'], // 2
      ['BTC@2', 'ETH@2'], // 3
      ['BTC@3', 'ETH@3'], // 4
      ['BTC@4', 'BNB@0'], // 5: the 5m bar closes with BTC's 1m bar of minute 4
      ['BTC@5'],
      ['BTC@6', 'ETH@6'],
      [],
    ]);
  });

  it('a feed whose bar arrives later is still first when its index is lower; a later bar never overtakes', async () => {
    const timer = new ManualTimer(0);
    const a = pushSource(A);
    const b = pushSource(B);
    const { out } = collect(mergeSources([A, B], [a.source, b.source], { lateAfterMs: 10_000, timer }));
    b.push(T0); // ETH's bar of minute 0 first
    b.push(T0 + MIN); // and even its next one
    await settle();
    expect(out).toEqual([]); // BTC's bar closing at the same time may still come
    a.push(T0);
    await settle();
    expect(out).toEqual(['BTC@0', 'ETH@0']); // ETH@1 waits for BTC@1
    a.push(T0 + MIN);
    await settle();
    expect(out).toEqual(['BTC@0', 'ETH@0', 'BTC@1', 'ETH@1']);
    a.end();
    b.end();
  });

  it('a late bar is read from the exchange after the bound, once, and its stream copy is dropped', async () => {
    const timer = new ManualTimer(0);
    const logs: string[] = [];
    const a = pushSource(A);
    const b = pushSource(B, (after) => (after < T0 + MIN ? bar(T0 + MIN, 7) : undefined));
    const { out } = collect(
      mergeSources([A, B], [a.source, b.source], { lateAfterMs: 5_000, timer, log: (_l, m) => logs.push(m) }),
    );
    a.push(T0);
    b.push(T0);
    a.push(T0 + MIN);
    a.push(T0 + 2 * MIN);
    await settle();
    expect(out).toEqual(['BTC@0', 'ETH@0']); // BTC@1 waits for ETH@1
    await timer.advance(4_999);
    await settle();
    expect(b.reads).toEqual([]);
    await timer.advance(1);
    await settle();
    // Read from the bar after the newest received (minute 0): ETH@1 closes by then, so it goes in.
    expect(b.reads).toEqual([T0]);
    expect(out).toEqual(['BTC@0', 'ETH@0', 'BTC@1', 'ETH@1']);
    expect(logs.join('\n')).toMatch(/ETH\/USDT 1m bar of 2024-01-01T00:01:00.000Z had not come by stream 5000 ms/);
    b.push(T0 + MIN, 999); // the stream's own copy, late: already handled
    b.push(T0 + 2 * MIN);
    await settle();
    expect(out).toEqual(['BTC@0', 'ETH@0', 'BTC@1', 'ETH@1', 'BTC@2', 'ETH@2']);
    a.end();
    b.end();
  });

  it('a gap on the exchange (its next bar closes later) lets the other feeds go on, said in the log', async () => {
    const timer = new ManualTimer(0);
    const logs: string[] = [];
    const a = pushSource(A);
    const b = pushSource(B, () => bar(T0 + 3 * MIN)); // nothing between minute 0 and minute 3
    const { out } = collect(
      mergeSources([A, B], [a.source, b.source], { lateAfterMs: 1_000, timer, log: (_l, m) => logs.push(m) }),
    );
    a.push(T0);
    b.push(T0);
    a.push(T0 + MIN);
    await settle();
    await timer.advance(1_000);
    await settle();
    expect(out).toEqual(['BTC@0', 'ETH@0', 'BTC@1']);
    expect(logs.join('\n')).toMatch(
      /ETH\/USDT 1m has no bar closing at 2024-01-01T00:02:00.000Z on the exchange \(a gap\)/,
    );
    a.end();
    b.end();
  });

  it('while the late bar cannot be read, nothing later is let through; the wait is logged each bound', async () => {
    const timer = new ManualTimer(0);
    const logs: string[] = [];
    let fail = true;
    const a = pushSource(A);
    const b = pushSource(B, () => (fail ? new Error('HTTP 503') : undefined));
    const { out } = collect(
      mergeSources([A, B], [a.source, b.source], { lateAfterMs: 1_000, timer, log: (_l, m) => logs.push(m) }),
    );
    a.push(T0);
    a.push(T0 + MIN);
    await settle();
    await timer.advance(1_000);
    await settle();
    fail = false;
    await timer.advance(1_000);
    await settle();
    expect(out).toEqual([]);
    expect(b.reads).toEqual([T0 - MIN, T0 - MIN]);
    expect(logs).toHaveLength(2);
    expect(logs[0]).toMatch(/waiting for the ETH\/USDT 1m bar closing at 2024-01-01T00:01:00.000Z .*HTTP 503/);
    expect(logs[1]).toMatch(/the exchange has no such bar yet; trying again/);
    b.push(T0);
    await settle();
    expect(out).toEqual(['BTC@0', 'ETH@0']);
    a.end();
    b.end();
  });

  it("a stream's failure ends the merge with that error (never a silent end of one market)", async () => {
    const timer = new ManualTimer(0);
    const a = pushSource(A);
    const broken: BarSource = {
      close: async () => {},
      // biome-ignore lint/correctness/useYield: a stream that fails before its first bar
      async *[Symbol.asyncIterator]() {
        throw new Error('candle stream ETH/USDT: unrecoverable');
      },
    };
    const { out, done } = collect(mergeSources([A, B], [a.source, broken], { lateAfterMs: 1_000, timer }));
    a.push(T0);
    await expect(done).rejects.toThrow('candle stream ETH/USDT: unrecoverable');
    expect(out).toEqual([]);
  });

  it('close() ends the merge while it waits', async () => {
    const timer = new ManualTimer(0);
    const a = pushSource(A);
    const b = pushSource(B);
    const merged = mergeSources([A, B], [a.source, b.source], { lateAfterMs: 1_000, timer });
    const { out, done } = collect(merged);
    a.push(T0);
    await settle();
    await merged.close();
    await done;
    expect(out).toEqual([]);
  });
});
