import { type Bar, type BarSeries, copyBar, type FeedKey, SeriesCursor } from '@keel/core';
import { systemTimer, type Timer } from '@keel/exchange';

/** A closed bar of one feed, as live and replayed sources deliver them. */
export interface BarEvent {
  readonly feed: FeedKey;
  readonly bar: Bar;
  /** History delivered only to warm indicators up (never acted on). */
  readonly warmup?: boolean;
  /**
   * A bar that closed while the bot was not running, delivered when it resumes (before any live
   * bar): `last-missed` for the newest of them. The bot's catch-up policy decides whether its
   * signals may trade (`BotConfig.catchUp`).
   */
  readonly catchUp?: 'missed' | 'last-missed';
  /**
   * Live: how many newer bars of the feed had already closed when this one came (the bot fell
   * behind the exchange, or a gap was filled after a reconnect). Its signals are late: the bot
   * runs the strategy on it and holds its orders as for a missed bar (BotConfig.catchUp).
   */
  readonly behind?: number;
  /**
   * Another feed's bar of the same close time follows at once (set by `mergeSources`): a bot
   * handles a close time's bars together, every market's fills before any strategy (docs/live.md).
   */
  readonly moreAtClose?: true;
  /** performance.now() when the message that closed this bar arrived (latency measurement). */
  readonly receivedAt?: number;
}

/** Where a running bot's bars come from: a live exchange stream or a replay. */
export interface BarSource extends AsyncIterable<BarEvent> {
  close(): Promise<void>;
  /**
   * The first bar of `feed` opening after `after` (the bot's last handled bar), as far as it has
   * traded (it may still be forming), or undefined when the source has none. Works after close().
   * A paper bot stopping with --flatten fills its closing orders on it, as a backtest would: a
   * market order decided at a bar's close fills at the next bar's open. A source without it has
   * no such bar to give.
   */
  nextBar?(feed: FeedKey, after: number): Promise<Bar | undefined>;
}

/**
 * Replays stored bars as a live source: one event per bar, yielding to the event loop between
 * bars (so timers, signals and sockets keep working), optionally paced: `delayMs` between bars by
 * `timer` (default the system's).
 */
export function replaySource(
  feed: FeedKey,
  series: BarSeries,
  opts: { from?: number; delayMs?: number; timer?: Timer } = {},
): BarSource {
  let closed = false;
  return {
    async close() {
      closed = true;
    },
    async nextBar(f, after) {
      if (f.symbol !== feed.symbol || f.timeframe !== feed.timeframe) return undefined;
      let lo = 0;
      let hi = series.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((series.time[mid] as number) <= after) lo = mid + 1;
        else hi = mid;
      }
      if (lo >= series.length) return undefined;
      const cur = new SeriesCursor(series);
      cur.i = lo;
      return copyBar(cur);
    },
    async *[Symbol.asyncIterator]() {
      const cur = new SeriesCursor(series);
      for (let i = opts.from ?? 0; i < series.length && !closed; i++) {
        cur.i = i;
        yield { feed, bar: copyBar(cur) };
        if (opts.delayMs) await (opts.timer ?? systemTimer).sleep(opts.delayMs);
        else if ((i & 255) === 0) await new Promise((r) => setImmediate(r));
      }
    },
  };
}
