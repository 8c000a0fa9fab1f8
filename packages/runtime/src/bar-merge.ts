import { type Bar, type FeedKey, feedId, timeframeEnd, timeframeMs } from '@keel/core';
import type { Timer } from '@keel/exchange';
import type { BarEvent, BarSource } from './sources.ts';

/**
 * Several feeds' bar sources as one, in the backtest's order: by (close time, feed index), every
 * feed's bar of a close time before any bar of a later close time (`runBacktest`'s k-way merge),
 * so that a bot on several markets handles the bars exactly as the backtest of the same bars does.
 *
 * Streams deliver a close time's bars at different moments. A bar is let through only once every
 * other feed has shown it has nothing earlier: its next bar is here, or it has ended, or a read of
 * the exchange said it has no bar closing by then (a gap). A feed whose bar is late holds the others
 * (a later bar of one feed is never handled before an earlier bar of another). After `lateAfterMs`
 * (counted from the moment the first bar of that close time arrived) the late bar is read once from
 * the exchange (its source's `nextBar`: REST) and, if closed by then, goes in its place; the stream's own copy,
 * when it comes, is dropped as already seen. Each wait past the bound is logged, naming the feed
 * and the close time, and tried again every `lateAfterMs` until the bar comes. Bars a feed delivers
 * at or before a bar already let through (a backfill after a reconnect) are dropped. A close time's
 * bars are let through back to back, each but the last marked `moreAtClose`: when the first goes,
 * every feed has shown whether it has a bar then.
 */
export interface MergeOptions {
  /** How long to wait for the other feeds' bars of a close time before reading them. */
  readonly lateAfterMs: number;
  /** Time and waits (injected: the tests' manual timer). */
  readonly timer: Timer;
  readonly log?: (level: 'info' | 'warn', msg: string) => void;
}

/** Merges one source per feed (in the bot's feed order) into one; see MergeOptions. */
export function mergeSources(feeds: readonly FeedKey[], sources: readonly BarSource[], opts: MergeOptions): BarSource {
  if (feeds.length !== sources.length)
    throw new Error(`Invariant violated: ${feeds.length} feeds but ${sources.length} bar sources`);
  const stop = new AbortController();
  const sourceOf = new Map(feeds.map((f, i) => [feedId(f), sources[i] as BarSource]));
  return {
    async close() {
      stop.abort();
      await Promise.all(sources.map((s) => s.close()));
    },
    async nextBar(feed, after) {
      return sourceOf.get(feedId(feed))?.nextBar?.(feed, after);
    },
    [Symbol.asyncIterator]() {
      return merged(feeds, sources, opts, stop.signal);
    },
  };
}

async function* merged(
  feeds: readonly FeedKey[],
  sources: readonly BarSource[],
  opts: MergeOptions,
  signal: AbortSignal,
): AsyncGenerator<BarEvent> {
  const n = feeds.length;
  const its = sources.map((s) => s[Symbol.asyncIterator]());
  /** Bars received and not yet let through, per feed, in time order. */
  const queue: BarEvent[][] = feeds.map(() => []);
  const ended = feeds.map(() => false);
  /** Per feed: the open time of the newest bar received (queued or let through). */
  const newest = feeds.map(() => Number.NEGATIVE_INFINITY);
  /**
   * Per feed: a close time by which it has no bar beyond those received (the close of the newest
   * received, or what the exchange said of a gap).
   */
  const quietThrough = feeds.map(() => Number.NEGATIVE_INFINITY);
  const close = (i: number, ev: BarEvent) => timeframeEnd((feeds[i] as FeedKey).timeframe, ev.bar.time);
  const accept = (i: number, ev: BarEvent) => {
    if (ev.bar.time <= (newest[i] as number)) return; // already received (a backfill, or read by REST)
    newest[i] = ev.bar.time;
    // Its later bars close after this one: nothing of it can come before a bar of this close.
    quietThrough[i] = Math.max(quietThrough[i] as number, close(i, ev));
    (queue[i] as BarEvent[]).push(ev);
  };
  /**
   * What the streams delivered since the loop last looked, and a stream's failure. One read is under
   * way per feed at most, and only for a feed with nothing queued: each feed holds a bar or two.
   */
  const inbox: { readonly i: number; readonly r: IteratorResult<BarEvent> }[] = [];
  let failed: { readonly error: unknown } | undefined;
  const reading = feeds.map(() => false);
  let wakeUp: (() => void) | undefined;
  const pull = (i: number) => {
    if (reading[i]) return;
    reading[i] = true;
    (its[i] as AsyncIterator<BarEvent>).next().then(
      (r) => {
        reading[i] = false;
        inbox.push({ i, r });
        wakeUp?.();
      },
      (error: unknown) => {
        reading[i] = false;
        failed ??= { error };
        wakeUp?.();
      },
    );
  };
  /** The close time being waited for, and when its first bar arrived (by `opts.timer`). */
  let barrier = Number.NaN;
  let barrierSince = 0;
  let reads = 0;
  try {
    for (;;) {
      if (signal.aborted) return;
      for (let got = inbox.shift(); got !== undefined; got = inbox.shift())
        if (got.r.done === true) ended[got.i] = true;
        else accept(got.i, got.r.value);
      if (failed !== undefined) throw failed.error;
      // The earliest bar received, by (close time, feed index).
      let c = -1;
      let cClose = Number.POSITIVE_INFINITY;
      for (let i = 0; i < n; i++) {
        const head = (queue[i] as BarEvent[])[0];
        if (head === undefined) continue;
        const t = close(i, head);
        if (t < cClose) {
          cClose = t;
          c = i;
        }
      }
      // Feeds that may still deliver a bar closing at or before it.
      const waiting: number[] = [];
      for (let i = 0; i < n; i++)
        if (i !== c && (queue[i] as BarEvent[]).length === 0 && !ended[i] && (quietThrough[i] as number) < cClose)
          waiting.push(i);
      if (c >= 0 && waiting.length === 0) {
        const ev = (queue[c] as BarEvent[]).shift() as BarEvent;
        // The rest of this close time is known now: the feeds after it whose next bar closes then.
        let more = false;
        for (let i = c + 1; i < n && !more; i++) {
          const head = (queue[i] as BarEvent[])[0];
          more = head !== undefined && close(i, head) === cClose;
        }
        yield more ? { ...ev, moreAtClose: true } : ev;
        continue;
      }
      if (c < 0 && ended.every(Boolean)) return;
      for (const i of waiting) pull(i);
      if (c >= 0 && cClose !== barrier) {
        barrier = cClose;
        barrierSince = opts.timer.now();
        reads = 0;
      }
      if (inbox.length > 0 || failed !== undefined) continue;
      // Until a stream delivers, the merge is closed, or (a bar waiting) the bound passes.
      const wake = new AbortController();
      const woken = await new Promise<'input' | 'bound'>((resolve) => {
        wakeUp = () => resolve('input');
        signal.addEventListener('abort', wakeUp, { once: true });
        if (c >= 0)
          void opts.timer
            .sleep(barrierSince + opts.lateAfterMs * (reads + 1) - opts.timer.now(), wake.signal)
            .then(() => resolve('bound'));
      });
      signal.removeEventListener('abort', wakeUp as () => void);
      wakeUp = undefined;
      wake.abort();
      if (signal.aborted) return;
      if (woken === 'input') continue;
      // The bound passed: read each late feed's bar from the exchange.
      reads++;
      const head = (queue[c] as BarEvent[])[0] as BarEvent;
      for (const i of waiting) {
        const feed = feeds[i] as FeedKey;
        const since = `${opts.timer.now() - barrierSince} ms`;
        const what = `${feed.symbol} ${feed.timeframe} bar closing at ${new Date(cClose).toISOString()}`;
        const read = (sources[i] as BarSource).nextBar;
        if (read === undefined) {
          opts.log?.('warn', `waiting for the ${what}: the other feeds' bars of that close arrived ${since} ago`);
          continue;
        }
        // From the newest bar received; a feed with none yet: from the bar before the one waited for.
        const after = Math.max(newest[i] as number, cClose - 2 * timeframeMs(feed.timeframe));
        let bar: Bar | undefined;
        try {
          bar = await read.call(sources[i], feed, after);
        } catch (e) {
          opts.log?.(
            'warn',
            `waiting for the ${what} (${since}); reading it from the exchange failed: ${(e as Error).message}`,
          );
          continue;
        }
        if (signal.aborted) return;
        if (bar !== undefined && timeframeEnd(feed.timeframe, bar.time) <= cClose) {
          opts.log?.(
            'warn',
            `the ${feed.symbol} ${feed.timeframe} bar of ${new Date(bar.time).toISOString()} had not come by stream ${since} after the other feeds' bars closing at ${new Date(cClose).toISOString()}: read from the exchange`,
          );
          accept(i, { feed, bar, ...(head.catchUp !== undefined ? { catchUp: head.catchUp } : {}) });
        } else if (bar !== undefined) {
          // Its first bar after the newest received closes later: nothing of it closes by then.
          opts.log?.(
            'info',
            `${feed.symbol} ${feed.timeframe} has no bar closing at ${new Date(cClose).toISOString()} on the exchange (a gap): the other feeds go on`,
          );
          quietThrough[i] = cClose;
        } else opts.log?.('warn', `waiting for the ${what} (${since}): the exchange has no such bar yet; trying again`);
      }
    }
  } finally {
    // Ends every stream when the merge ends, whoever ended it; not awaited: a stream with a read
    // under way ends once that read does (its source's close() ends it).
    for (const it of its) void it.return?.(undefined)?.catch(() => undefined);
  }
}
