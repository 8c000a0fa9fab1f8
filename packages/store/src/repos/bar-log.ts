import { type BarSeries, type OhlcvRow, seriesFromRows } from '@keel/core';
import { finite, type RepoContext } from './context.ts';

export interface BarLogRepo {
  /**
   * Records bars a bot saw on a feed (`feedId`: `BTC/USDT@1m`). A bar already recorded for that
   * time is kept as it was first seen: a restart that sees it again adds nothing.
   */
  record(botId: string, feed: string, bars: readonly OhlcvRow[]): Promise<void>;
  /** The recorded bars of a feed with open time in [from, to], oldest first. */
  range(botId: string, feed: string, from: number, to: number): Promise<BarSeries>;
  /** The latest recorded bar of a feed. */
  last(botId: string, feed: string): Promise<OhlcvRow | undefined>;
}

/** Rows per insert: far below SQLite's and PostgreSQL's limits on bound parameters. */
const CHUNK = 500;
const COLUMNS = ['time', 'open', 'high', 'low', 'close', 'volume'] as const;

export function barLogRepo({ db }: RepoContext): BarLogRepo {
  return {
    async record(botId, feed, bars) {
      for (let i = 0; i < bars.length; i += CHUNK) {
        const rows = bars.slice(i, i + CHUNK).map((b) => {
          const what = `bar ${feed} ${b.time} of bot ${botId}`;
          return {
            bot_id: botId,
            feed,
            time: finite(what, 'time', b.time),
            open: finite(what, 'open', b.open),
            high: finite(what, 'high', b.high),
            low: finite(what, 'low', b.low),
            close: finite(what, 'close', b.close),
            volume: finite(what, 'volume', b.volume),
          };
        });
        await db
          .insertInto('bot_bars')
          .values(rows)
          .onConflict((oc) => oc.columns(['bot_id', 'feed', 'time']).doNothing())
          .execute();
      }
    },
    async range(botId, feed, from, to) {
      const rows = await db
        .selectFrom('bot_bars')
        .select([...COLUMNS])
        .where('bot_id', '=', botId)
        .where('feed', '=', feed)
        .where('time', '>=', from)
        .where('time', '<=', to)
        .orderBy('time')
        .execute();
      return seriesFromRows(rows);
    },
    async last(botId, feed) {
      const r = await db
        .selectFrom('bot_bars')
        .select([...COLUMNS])
        .where('bot_id', '=', botId)
        .where('feed', '=', feed)
        .orderBy('time', 'desc')
        .limit(1)
        .executeTakeFirst();
      return (
        r && {
          time: Number(r.time),
          open: Number(r.open),
          high: Number(r.high),
          low: Number(r.low),
          close: Number(r.close),
          volume: Number(r.volume),
        }
      );
    },
  };
}
