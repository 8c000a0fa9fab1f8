import { type BarSeries, type Clock, seriesFromRows } from '@keel/core';
import type { Kysely, Transaction } from 'kysely';
import type { KeelDb } from './schema.ts';

/** A stop request waiting for the bot instance it was addressed to. */
export interface StopRequest {
  /** The lock holder the request was made to (`host:pid:nonce`). */
  readonly owner: string;
  /** Who asked (user@host of `keel bots stop`, or a server's caller). */
  readonly by: string;
  readonly at: number;
}

export interface StopRequestRepo {
  /**
   * Asks the instance `owner` of the bot to stop (replaces an earlier request). Addressed to one
   * holder, so a request left behind by an instance that crashed never stops the next one.
   */
  request(botId: string, owner: string, by: string): Promise<void>;
  /** The request addressed to `owner`, if any: what a running bot polls for. */
  pending(botId: string, owner: string): Promise<StopRequest | undefined>;
  /** The request waiting for whichever instance, if any (for status). */
  get(botId: string): Promise<StopRequest | undefined>;
  /** Removes the request addressed to `owner` (the bot has honoured it). */
  done(botId: string, owner: string): Promise<void>;
  /** Removes a request addressed to any other instance than `owner` (one that is gone): at start. */
  dropStale(botId: string, owner: string): Promise<void>;
}

/** The fields of a bar the bot log keeps (exact doubles, as the engine saw them). */
export interface LoggedBar {
  readonly time: number;
  readonly open: number;
  readonly high: number;
  readonly low: number;
  readonly close: number;
  readonly volume: number;
}

export interface BarLogRepo {
  /**
   * Records bars a bot saw on a feed (`feedId`: `BTC/USDT@1m`). A bar already recorded for that
   * time is kept as it was first seen: a restart that sees it again adds nothing.
   */
  record(botId: string, feed: string, bars: readonly LoggedBar[]): Promise<void>;
  /** The recorded bars of a feed with open time in [from, to], oldest first. */
  range(botId: string, feed: string, from: number, to: number): Promise<BarSeries>;
  /** The latest recorded bar of a feed. */
  last(botId: string, feed: string): Promise<LoggedBar | undefined>;
}

export interface SessionSetupRecord {
  readonly seq: number;
  readonly setup: unknown;
}

export interface BotSettings {
  readonly strategy: string;
  readonly params: unknown;
  readonly symbols: readonly string[];
}

export interface SetupRepo {
  /** Saves (or replaces) how session `seq` of the bot was set up. */
  save(botId: string, seq: number, setup: unknown): Promise<void>;
  /** Every session's setup, oldest first. */
  list(botId: string): Promise<SessionSetupRecord[]>;
  /** Gives the bot another strategy, params or markets (`--reconfigure`). */
  reconfigure(botId: string, settings: BotSettings): Promise<void>;
}

/** What running bots are operated with: stop requests, the bars they saw, their set-up. */
export interface BotOpsRepos {
  readonly stopRequests: StopRequestRepo;
  readonly barLog: BarLogRepo;
  readonly setups: SetupRepo;
}

type Db = Kysely<KeelDb> | Transaction<KeelDb>;

/** Rows per insert: far below SQLite's and PostgreSQL's limits on bound parameters. */
const CHUNK = 500;

export function botOpsRepos(db: Db, clock: Clock): BotOpsRepos {
  const toStop = (r: { owner: string; requested_by: string; requested_at: number }): StopRequest => ({
    owner: r.owner,
    by: r.requested_by,
    at: Number(r.requested_at),
  });
  const stopRequests: StopRequestRepo = {
    async request(botId, owner, by) {
      const row = { bot_id: botId, owner, requested_by: by, requested_at: clock.now() };
      await db
        .insertInto('bot_stop_requests')
        .values(row)
        .onConflict((oc) =>
          oc.column('bot_id').doUpdateSet({ owner, requested_by: by, requested_at: row.requested_at }),
        )
        .execute();
    },
    async pending(botId, owner) {
      const r = await db
        .selectFrom('bot_stop_requests')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('owner', '=', owner)
        .executeTakeFirst();
      return r && toStop(r);
    },
    async get(botId) {
      const r = await db.selectFrom('bot_stop_requests').selectAll().where('bot_id', '=', botId).executeTakeFirst();
      return r && toStop(r);
    },
    async done(botId, owner) {
      await db.deleteFrom('bot_stop_requests').where('bot_id', '=', botId).where('owner', '=', owner).execute();
    },
    async dropStale(botId, owner) {
      await db.deleteFrom('bot_stop_requests').where('bot_id', '=', botId).where('owner', '<>', owner).execute();
    },
  };

  const barLog: BarLogRepo = {
    async record(botId, feed, bars) {
      for (let i = 0; i < bars.length; i += CHUNK) {
        const rows = bars.slice(i, i + CHUNK).map((b) => ({
          bot_id: botId,
          feed,
          time: b.time,
          open: b.open,
          high: b.high,
          low: b.low,
          close: b.close,
          volume: b.volume,
        }));
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
        .select(['time', 'open', 'high', 'low', 'close', 'volume'])
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
        .select(['time', 'open', 'high', 'low', 'close', 'volume'])
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

  const setups: SetupRepo = {
    async save(botId, seq, setup) {
      const json = JSON.stringify(setup ?? null);
      await db
        .insertInto('session_setups')
        .values({ bot_id: botId, seq, setup: json })
        .onConflict((oc) => oc.columns(['bot_id', 'seq']).doUpdateSet({ setup: json }))
        .execute();
    },
    async list(botId) {
      const rows = await db
        .selectFrom('session_setups')
        .selectAll()
        .where('bot_id', '=', botId)
        .orderBy('seq')
        .execute();
      return rows.map((r) => ({ seq: Number(r.seq), setup: JSON.parse(r.setup) as unknown }));
    },
    async reconfigure(botId, s) {
      const r = await db
        .updateTable('bots')
        .set({
          strategy: s.strategy,
          params: JSON.stringify(s.params ?? {}),
          symbols: JSON.stringify(s.symbols),
          updated_at: clock.now(),
        })
        .where('id', '=', botId)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw new Error(`Unknown bot "${botId}"`);
    },
  };

  return { stopRequests, barLog, setups };
}
