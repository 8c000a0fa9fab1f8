import type { Clock, Fill, OrderState } from '@keel/core';
import type { Kysely } from 'kysely';
import { type ApplyFillChange, applyFill } from './apply-fill.ts';
import { connect, DEFAULT_STORE_URL } from './connection.ts';
import { type KeyStore, keyStore } from './keys.ts';
import type { RepoContext, StoreDialect } from './repos/context.ts';
import { repos, type StoreRepos } from './repos/index.ts';
import type { KeelDb } from './schema.ts';
import { reclaimSpace, type StoreSpace, storeSpace } from './space.ts';
import { type IntentReplay, OrderWriteAhead, type WriteAhead } from './write-ahead.ts';

export interface OpenStoreOptions {
  /** `sqlite:<path>` (default `sqlite:.keel/keel.db`), `sqlite::memory:` or `postgres://…`. */
  readonly url?: string;
  /** Every timestamp the store writes (updated_at, lock heartbeats) comes from this clock. */
  readonly clock?: Clock;
  /** PostgreSQL only: the schema to use (created if missing); default the server's search_path. */
  readonly schema?: string;
  /** SQLite only: `FULL` (default) or `NORMAL`; see docs/store.md for why FULL is the default. */
  readonly synchronous?: 'FULL' | 'NORMAL';
}

export interface Store extends StoreRepos {
  readonly dialect: StoreDialect;
  /** Runs `fn` in one database transaction: all of its writes land, or none. */
  transaction<T>(fn: (tx: StoreRepos) => Promise<T>): Promise<T>;
  /**
   * Records a fill with the order, position and balances it produced and a journal event, in one
   * transaction. Returns true when the fill was new, false when this very fill (same trade id,
   * same values) was recorded before: nothing is written again. Throws `StoreConflictError`,
   * writing nothing, when the trade id is recorded with other values.
   */
  applyFill(botId: string, fill: Fill, change: ApplyFillChange): Promise<boolean>;
  /**
   * The live path's write-ahead record of a new order, durable when this call returns, without a
   * trip through the event loop. SQLite file: appended to the bot's intent log (`intents.ts`);
   * the row itself is written by `save()`, which the caller runs in order with the order's later
   * writes (a bot's journal queues it). SQLite in memory: the row is written at once. PostgreSQL,
   * or a transaction open on the connection: declined, nothing written (use `orders.upsert` and
   * wait for it). An order id that belongs to another bot throws `StoreConflictError` (from
   * `save()`, or at once when the row is written at once).
   */
  writeOrderNow(botId: string, order: OrderState): WriteAhead;
  /**
   * Writes the rows of a bot's intent log that never reached the database (a crash between the
   * append and the row), then empties the log. For the bot's lock holder, at start, before it
   * reads its orders. SQLite files only; elsewhere there is no log and nothing to do. A logged
   * order whose id the store holds for another bot throws `StoreConflictError` and writes
   * nothing: the bot must not start until that order is accounted for.
   */
  replayIntents(botId: string): Promise<IntentReplay>;
  /** How much room the store takes: a SQLite file's size and free pages, PostgreSQL's backtest tables. */
  space(): Promise<StoreSpace>;
  /**
   * Gives the room of deleted rows back to the file system (SQLite files; see `reclaimSpace`):
   * at once on a store with incremental vacuum, by a whole-file VACUUM with `vacuum: true`.
   * Returns the space after. Call it outside a transaction.
   */
  reclaim(opts?: { readonly vacuum?: boolean }): Promise<StoreSpace>;
  /** Encrypted exchange API keys (docs/keys.md). */
  readonly keys: KeyStore;
  /** The underlying Kysely instance, for queries the repositories do not cover. */
  readonly db: Kysely<KeelDb>;
  close(): Promise<void>;
}

const systemClock: Clock = { now: () => Date.now() };

/** Opens (and migrates) the store. */
export async function openStore(opts: OpenStoreOptions = {}): Promise<Store> {
  const url = opts.url ?? DEFAULT_STORE_URL;
  const clock = opts.clock ?? systemClock;
  const synchronous = opts.synchronous ?? 'FULL';
  const { db, dialect, sqlite, sqliteFile } = await connect({ url, schema: opts.schema, synchronous });
  const bound = (handle: RepoContext['db']): StoreRepos => repos({ db: handle, dialect, clock });
  const writeAhead = new OrderWriteAhead(db, sqlite, sqliteFile, synchronous === 'FULL');
  return {
    ...bound(db),
    dialect,
    db,
    keys: keyStore(db, clock),
    transaction: (fn) => db.transaction().execute((trx) => fn(bound(trx))),
    applyFill: (botId, fill, change) => db.transaction().execute((trx) => applyFill(bound(trx), botId, fill, change)),
    writeOrderNow: (botId, order) => writeAhead.write(botId, order),
    replayIntents: (botId) => writeAhead.replay(botId),
    space: () => storeSpace(db, sqlite, sqliteFile),
    reclaim: (o) => reclaimSpace(db, sqlite, sqliteFile, o),
    close: async () => {
      await writeAhead.close();
      await db.destroy();
    },
  };
}
