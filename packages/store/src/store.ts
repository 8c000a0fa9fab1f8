import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Clock, Fill, OrderRequest, OrderState, OrderStatus } from '@keel/core';
import { ClientOrderId, TERMINAL_STATUSES, VenueOrderId } from '@keel/core';
import Database from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  Kysely,
  Migrator,
  PostgresDialect,
  type Selectable,
  SqliteDialect,
  SqliteDriver,
  sql,
  type Transaction,
} from 'kysely';
import pg from 'pg';
import { type BotOpsRepos, botOpsRepos } from './bot-ops.ts';
import { WalCheckpointer } from './checkpointer.ts';
import { clearIntentLog, IntentLog, intentLogFile, readIntentLog } from './intents.ts';
import { type KeyStore, keyStore } from './keys.ts';
import { type KeelDb, MIGRATIONS, type OrdersTable } from './schema.ts';

export type StoreDialect = 'sqlite' | 'postgres';
export type BotMode = 'paper' | 'live';

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

export interface BotRecord {
  readonly id: string;
  readonly strategy: string;
  readonly params: unknown;
  readonly mode: BotMode;
  readonly exchange: string;
  readonly symbols: readonly string[];
  readonly status: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export type NewBot = Omit<BotRecord, 'createdAt' | 'updatedAt' | 'status'> & { readonly status?: string };

export interface LockResult {
  /** True when `owner` holds the lock after the call. */
  readonly acquired: boolean;
  /** Who holds the lock now. */
  readonly owner: string;
  readonly heartbeatAt: number;
  /** True when the lock was taken from another owner whose heartbeat was older than its TTL. */
  readonly tookOver: boolean;
}

export interface StoredPosition {
  readonly symbol: string;
  readonly size: number;
  /** NaN when flat. */
  readonly avgPrice: number;
  readonly realizedPnl: number;
}

export interface StoredBalance {
  readonly asset: string;
  readonly free: number;
  readonly used: number;
  readonly total: number;
}

export interface StoredState {
  readonly state: unknown;
  readonly version: number;
}

export interface StoredEvent {
  readonly seq: number;
  readonly time: number;
  readonly type: string;
  readonly payload: unknown;
}

export interface SessionRecord {
  readonly seq: number;
  readonly startedAt: number;
  readonly endedAt: number | null;
  readonly report: unknown;
}

export interface BotRepo {
  create(bot: NewBot): Promise<BotRecord>;
  get(id: string): Promise<BotRecord | undefined>;
  list(): Promise<BotRecord[]>;
  setStatus(id: string, status: string): Promise<void>;
}

export interface LockRepo {
  /**
   * Takes the lock if it is free, already ours, or stale (holder's heartbeat older than its TTL);
   * also if its holder is exactly `takeOverFrom` (a holder the caller knows to be dead, e.g. a
   * crashed process on this host): a compare-and-set, so a lock that changed hands is not taken.
   */
  acquire(botId: string, owner: string, ttlMs: number, opts?: { readonly takeOverFrom?: string }): Promise<LockResult>;
  /** False when the lock is no longer ours (taken over): the caller must stop at once. */
  heartbeat(botId: string, owner: string): Promise<boolean>;
  release(botId: string, owner: string): Promise<boolean>;
  holder(botId: string): Promise<{ owner: string; heartbeatAt: number; ttlMs: number } | undefined>;
}

export interface OrderRepo {
  upsert(botId: string, order: OrderState): Promise<void>;
  get(clientOrderId: string): Promise<OrderState | undefined>;
  byVenueId(botId: string, venueOrderId: string): Promise<OrderState | undefined>;
  /** Orders not in a terminal status, oldest first. */
  open(botId: string): Promise<OrderState[]>;
  list(
    botId: string,
    opts?: { readonly status?: readonly OrderStatus[]; readonly limit?: number },
  ): Promise<OrderState[]>;
}

export interface FillRepo {
  /** Records one execution; false (and no change) when this bot already has this trade id. */
  record(botId: string, fill: Fill): Promise<boolean>;
  forOrder(botId: string, clientOrderId: string): Promise<Fill[]>;
  since(botId: string, time: number): Promise<Fill[]>;
  /** The latest fill time for a bot (the `since` for fetchMyTrades after a restart). */
  lastTime(botId: string): Promise<number | undefined>;
}

export interface PositionRepo {
  save(botId: string, position: StoredPosition): Promise<void>;
  load(botId: string): Promise<StoredPosition[]>;
  get(botId: string, symbol: string): Promise<StoredPosition | undefined>;
}

export interface BalanceRepo {
  /** Replaces the bot's balance snapshot (assets absent from `balances` are removed). */
  save(botId: string, balances: readonly StoredBalance[]): Promise<void>;
  load(botId: string): Promise<StoredBalance[]>;
}

export interface StateRepo {
  /**
   * Saves the strategy state and returns the new version. With `expectedVersion`, the save is a
   * compare-and-set: it returns null (and changes nothing) when another writer got there first.
   */
  save(botId: string, state: unknown, expectedVersion?: number): Promise<number | null>;
  load(botId: string): Promise<StoredState | undefined>;
}

export interface EventRepo {
  /** Appends to the bot's journal and returns the event's sequence number (1, 2, …). */
  append(botId: string, type: string, payload: unknown): Promise<number>;
  list(botId: string, opts?: { readonly afterSeq?: number; readonly limit?: number }): Promise<StoredEvent[]>;
}

export interface SessionRepo {
  start(botId: string): Promise<number>;
  end(botId: string, seq: number, report: unknown): Promise<void>;
  list(botId: string): Promise<SessionRecord[]>;
}

/** The repositories, bound either to the store or to one transaction. */
export interface StoreRepos extends BotOpsRepos {
  readonly bots: BotRepo;
  readonly locks: LockRepo;
  readonly orders: OrderRepo;
  readonly fills: FillRepo;
  readonly positions: PositionRepo;
  readonly balances: BalanceRepo;
  readonly state: StateRepo;
  readonly events: EventRepo;
  readonly sessions: SessionRepo;
}

export interface ApplyFillChange {
  /** The order as it is after this fill. */
  readonly order: OrderState;
  /** The position as it is after this fill. */
  readonly position?: StoredPosition;
  /** Journal entry type; default `fill`. Pass null to write no event. */
  readonly eventType?: string | null;
}

export interface Store extends StoreRepos {
  readonly dialect: StoreDialect;
  /** Runs `fn` in one database transaction: all of its writes land, or none. */
  transaction<T>(fn: (tx: StoreRepos) => Promise<T>): Promise<T>;
  /**
   * Records a fill and, only if it is new, the order and position it produced plus a journal
   * event, in one transaction. Returns whether the fill was new.
   */
  applyFill(botId: string, fill: Fill, change: ApplyFillChange): Promise<boolean>;
  /**
   * The live path's write-ahead record of a new order, durable when this call returns, without a
   * trip through the event loop. SQLite file: appended to the bot's intent log (`intents.ts`);
   * the row itself is written by `save()`, which the caller runs in order with the order's later
   * writes (a bot's journal queues it). SQLite in memory: the row is written at once. PostgreSQL,
   * or a transaction open on the connection: declined, nothing written (use `orders.upsert` and
   * wait for it). Throws when the order id belongs to another bot (a row written at once).
   */
  writeOrderNow(botId: string, order: OrderState): WriteAhead;
  /**
   * Writes the rows of a bot's intent log that never reached the database (a crash between the
   * append and the row), then empties the log. For the bot's lock holder, at start, before it
   * reads its orders. SQLite files only; elsewhere there is no log and nothing to do.
   */
  replayIntents(botId: string): Promise<IntentReplay>;
  /** Encrypted exchange API keys (docs/keys.md). */
  readonly keys: KeyStore;
  /** The underlying Kysely instance, for queries the repositories do not cover. */
  readonly db: Kysely<KeelDb>;
  close(): Promise<void>;
}

const systemClock: Clock = { now: () => Date.now() };

export const DEFAULT_STORE_URL = 'sqlite:.keel/keel.db';

/** What `writeOrderNow` did with a new order. */
export type WriteAhead =
  /** The row is written. */
  | { readonly kind: 'row' }
  /** Durable in the bot's intent log; `save()` writes the row: run it in order with later writes. */
  | { readonly kind: 'logged'; save(): Promise<void> }
  /** Nothing written: use `orders.upsert`, and wait for it before the request leaves. */
  | { readonly kind: 'declined' };

export interface IntentReplay {
  /** Orders written to the database from the log (their rows had not arrived). */
  readonly recovered: readonly string[];
  /** Lines that were not complete records (a write torn by a power loss), skipped. */
  readonly torn: number;
  /** Logged orders whose id the database holds for another bot: not written (a bug; reported). */
  readonly clashes: readonly string[];
}

const DECLINED: WriteAhead = { kind: 'declined' };
const ROW: WriteAhead = { kind: 'row' };

/** One line of an intent log. */
interface IntentRecord {
  readonly v: 1;
  readonly row: OrderRow;
}

/** Opens (and migrates) the store. */
export async function openStore(opts: OpenStoreOptions = {}): Promise<Store> {
  const url = opts.url ?? DEFAULT_STORE_URL;
  const clock = opts.clock ?? systemClock;
  let db: Kysely<KeelDb>;
  let dialect: StoreDialect;
  let sqlite: Database.Database | undefined;
  let sqliteFile: string | undefined;
  const syncFull = (opts.synchronous ?? 'FULL') === 'FULL';
  if (url.startsWith('sqlite:')) {
    dialect = 'sqlite';
    const file = url.slice('sqlite:'.length);
    sqliteFile = file;
    if (file === '') throw new Error(`Invalid store url "${url}": expected sqlite:<path> or sqlite::memory:`);
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    sqlite = new Database(file);
    // WAL: readers never block the writer and a commit is one append to the log. The choice
    // between FULL and NORMAL is about power loss, not process crashes: see docs/store.md.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma(`synchronous = ${opts.synchronous ?? 'FULL'}`);
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    cachePreparedStatements(sqlite);
    db = new Kysely<KeelDb>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
  } else if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    dialect = 'postgres';
    const schema = opts.schema;
    if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) {
      throw new Error(`Invalid schema name "${schema}": use lower-case letters, digits and _`);
    }
    if (schema !== undefined) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`create schema if not exists ${schema}`);
      } finally {
        await c.end();
      }
    }
    const pool = new pg.Pool({
      connectionString: url,
      max: 5,
      ...(schema !== undefined ? { options: `-c search_path=${schema}` } : {}),
      // bigint columns hold ms timestamps and sequence numbers, all far below 2^53.
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === 20 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
      },
    });
    db = new Kysely<KeelDb>({ dialect: new PostgresDialect({ pool }) });
  } else {
    throw new Error(`Unsupported store url "${url}": expected sqlite:<path>, sqlite::memory: or postgres://…`);
  }

  const migrator = new Migrator({ db, provider: { getMigrations: async () => MIGRATIONS } });
  const { error } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    throw new Error(`Store migration failed for ${redactStoreUrl(url)}: ${(error as Error).message ?? String(error)}`, {
      cause: error,
    });
  }

  const root = repos(db, clock);
  let upsertNow: CompiledUpsert | undefined;
  let checkpointer: WalCheckpointer | undefined;
  const intentLogs = new Map<string, IntentLog>();
  return {
    ...root,
    dialect,
    db,
    keys: keyStore(db, clock),
    transaction: (fn) => db.transaction().execute((trx) => fn(repos(trx, clock))),
    applyFill: (botId, fill, change) =>
      db.transaction().execute(async (trx) => {
        const r = repos(trx, clock);
        if (!(await r.fills.record(botId, fill))) return false;
        await r.orders.upsert(botId, change.order);
        if (change.position) await r.positions.save(botId, change.position);
        const eventType = change.eventType === undefined ? 'fill' : change.eventType;
        if (eventType !== null) await r.events.append(botId, eventType, fill);
        return true;
      }),
    writeOrderNow: (botId, order) => {
      if (sqlite === undefined || sqlite.inTransaction) return DECLINED;
      // The same upsert as orders.upsert, compiled once: the query builder and compiler cost more
      // than SQLite's write.
      const row = orderRow(botId, order);
      if (upsertNow === undefined) {
        upsertNow = compiledUpsert(db, sqlite, row);
        // The rows follow the live path closely: checkpoints move to a worker thread.
        if (!sqlite.memory) checkpointer = new WalCheckpointer(sqlite, sqlite.name);
      }
      const upsert = upsertNow;
      if (sqlite.memory || sqliteFile === undefined) {
        if (upsert.run(row) !== 1) throw orderClash(order, botId);
        return ROW;
      }
      let log = intentLogs.get(botId);
      if (log === undefined) {
        log = new IntentLog(intentLogFile(sqliteFile, botId), syncFull);
        intentLogs.set(botId, log);
      }
      const record: IntentRecord = { v: 1, row };
      log.append(record);
      const logged = log;
      const conn = sqlite;
      return {
        kind: 'logged',
        save: async () => {
          // Inside someone else's open transaction the prepared statement would join it (and
          // vanish with a rollback): through Kysely, which waits for the connection, instead.
          const changed = conn.inTransaction
            ? Number((await upsertOrderQuery(db, row).executeTakeFirst()).numInsertedOrUpdatedRows)
            : upsert.run(row);
          if (changed !== 1) throw orderClash(order, botId);
          logged.saved();
        },
      };
    },
    replayIntents: async (botId) => {
      if (sqlite === undefined || sqlite.memory || sqliteFile === undefined)
        return { recovered: [], torn: 0, clashes: [] };
      // A restart in this process (the earlier instance abandoned): its log is read like any.
      intentLogs.get(botId)?.close();
      intentLogs.delete(botId);
      const file = intentLogFile(sqliteFile, botId);
      const { records, torn } = readIntentLog<IntentRecord>(file);
      const recovered: string[] = [];
      const clashes: string[] = [];
      let bad = torn;
      await db.transaction().execute(async (trx) => {
        for (const r of records) {
          if (r?.v !== 1 || r.row?.bot_id !== botId || typeof r.row.client_order_id !== 'string') {
            bad++;
            continue;
          }
          const id = r.row.client_order_id;
          const had = await trx
            .selectFrom('orders')
            .select('bot_id')
            .where('client_order_id', '=', id)
            .executeTakeFirst();
          if (had === undefined) {
            await trx.insertInto('orders').values(r.row).execute();
            recovered.push(id);
          } else if (had.bot_id !== botId) clashes.push(id);
        }
      });
      // Every line has its row now (a crash before this point replays them again: no-ops).
      clearIntentLog(file, syncFull);
      return { recovered, torn: bad, clashes };
    },
    close: async () => {
      for (const log of intentLogs.values()) log.close();
      intentLogs.clear();
      await checkpointer?.stop();
      await db.destroy();
    },
  };
}

/**
 * Kysely prepares every query anew; the repositories issue the same few statements over and over
 * (the live path writes an order before every request), so prepared statements are kept and
 * reused. better-sqlite3 statements are reusable once a call has returned.
 */
function cachePreparedStatements(sqlite: Database.Database): void {
  const cache = new Map<string, Database.Statement>();
  const prepare = sqlite.prepare.bind(sqlite);
  (sqlite as { prepare: (sql: string) => Database.Statement }).prepare = (sql: string) => {
    let st = cache.get(sql);
    if (st === undefined) {
      st = prepare(sql);
      if (cache.size < 1_000) cache.set(sql, st);
    }
    return st;
  };
}

/**
 * SQLite transactions start with BEGIN IMMEDIATE: they take the write lock up front, so two
 * processes never both read under a shared lock and then deadlock upgrading it (a deferred BEGIN
 * that reads then writes fails with SQLITE_BUSY instead of waiting for busy_timeout).
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: ConstructorParameters<typeof SqliteDialect>[0];
  constructor(config: ConstructorParameters<typeof SqliteDialect>[0]) {
    super(config);
    this.#config = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

/** A store url with any password replaced by *** (for messages and logs). */
export function redactStoreUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
}

type Db = Kysely<KeelDb> | Transaction<KeelDb>;

/** Runs fn in the current transaction if there is one, else in a new one. */
function inTx<T>(db: Db, fn: (trx: Db) => Promise<T>): Promise<T> {
  return db.isTransaction ? fn(db) : (db as Kysely<KeelDb>).transaction().execute(fn);
}

const nullIfNaN = (x: number): number | null => (Number.isNaN(x) ? null : x);
const nanIfNull = (x: number | null): number => (x === null ? Number.NaN : Number(x));
const TERMINAL = [...TERMINAL_STATUSES];

type OrderRow = ReturnType<typeof orderRow>;

function orderRow(botId: string, o: OrderState) {
  return {
    client_order_id: o.request.id as string,
    bot_id: botId,
    venue_order_id: o.venueOrderId ?? null,
    symbol: o.request.symbol,
    side: o.request.side,
    type: o.request.type,
    request: JSON.stringify(o.request),
    status: o.status,
    filled: o.filled,
    avg_price: nullIfNaN(o.avgPrice),
    fee: o.fee,
    reason: o.reason ?? null,
    triggered: o.triggered ? 1 : 0,
    stop_level: nullIfNaN(o.stopLevel),
    decision_price: nullIfNaN(o.decisionPrice),
    active: o.active ? 1 : 0,
    created_at: o.createdAt,
    updated_at: o.updatedAt,
  };
}

/** The one upsert of an order row (used by `orders.upsert` and, compiled once, by `writeOrderNow`). */
function upsertOrderQuery(db: Db, row: OrderRow) {
  const {
    client_order_id: _k,
    bot_id: _b,
    created_at: _c,
    request: _r,
    symbol: _s,
    side: _d,
    type: _t,
    ...mutable
  } = row;
  return db
    .insertInto('orders')
    .values(row)
    .onConflict((oc) =>
      oc
        .column('client_order_id')
        .doUpdateSet(mutable)
        // An order id belongs to one bot for ever: a clash is a bug, not an update.
        .where('orders.bot_id', '=', row.bot_id),
    );
}

interface CompiledUpsert {
  /** Runs the upsert for `row`; returns the number of rows changed. */
  run(row: OrderRow): number;
}

/**
 * `upsertOrderQuery` compiled once with a marker for each column of `sample` (any row: only its
 * keys are read), so each parameter's column is known; a write then only fills the parameter
 * list and runs the prepared statement.
 */
function compiledUpsert(db: Db, sqlite: Database.Database, sample: OrderRow): CompiledUpsert {
  const columns = Object.keys(sample) as (keyof OrderRow)[];
  const marker = (col: string) => `\u0000keel:${col}`;
  const markers = Object.fromEntries(columns.map((c) => [c, marker(c)])) as unknown as OrderRow;
  const q = upsertOrderQuery(db, markers).compile();
  const byMarker = new Map(columns.map((c) => [marker(c), c]));
  const paramColumns = q.parameters.map((p) => {
    const c = byMarker.get(p as string);
    if (c === undefined) throw new Error(`Invariant violated: order upsert parameter ${String(p)} is no column`);
    return c;
  });
  const st = sqlite.prepare(q.sql);
  const params: unknown[] = new Array(paramColumns.length);
  return {
    run(row) {
      for (let i = 0; i < paramColumns.length; i++) params[i] = row[paramColumns[i] as keyof OrderRow];
      return st.run(params).changes;
    },
  };
}

function orderClash(o: OrderState, botId: string): Error {
  return new Error(`Invariant violated: order ${o.request.id} belongs to another bot than ${botId}`);
}

function repos(db: Db, clock: Clock): StoreRepos {
  const bots: BotRepo = {
    async create(bot) {
      const now = clock.now();
      await db
        .insertInto('bots')
        .values({
          id: bot.id,
          strategy: bot.strategy,
          params: JSON.stringify(bot.params ?? {}),
          mode: bot.mode,
          exchange: bot.exchange,
          symbols: JSON.stringify(bot.symbols),
          status: bot.status ?? 'stopped',
          created_at: now,
          updated_at: now,
        })
        .execute();
      return { ...bot, status: bot.status ?? 'stopped', createdAt: now, updatedAt: now };
    },
    async get(id) {
      const r = await db.selectFrom('bots').selectAll().where('id', '=', id).executeTakeFirst();
      return r && toBot(r);
    },
    async list() {
      return (await db.selectFrom('bots').selectAll().orderBy('id').execute()).map(toBot);
    },
    async setStatus(id, status) {
      const r = await db
        .updateTable('bots')
        .set({ status, updated_at: clock.now() })
        .where('id', '=', id)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw new Error(`Unknown bot "${id}"`);
    },
  };

  const locks: LockRepo = {
    acquire(botId, owner, ttlMs, opts = {}) {
      if (!(ttlMs > 0)) throw new Error(`Lock TTL must be > 0 ms, got ${ttlMs}`);
      const dead = opts.takeOverFrom ?? '';
      return inTx(db, async (trx) => {
        const now = clock.now();
        const before = await trx
          .selectFrom('bot_locks')
          .select(['owner'])
          .where('bot_id', '=', botId)
          .executeTakeFirst();
        // One statement decides: insert when free; update when ours or stale (by the holder's own
        // TTL). The row lock of ON CONFLICT makes two racing acquirers see each other.
        await trx
          .insertInto('bot_locks')
          .values({ bot_id: botId, owner, acquired_at: now, heartbeat_at: now, ttl_ms: ttlMs })
          .onConflict((oc) =>
            oc
              .column('bot_id')
              .doUpdateSet({
                owner: sql`excluded.owner`,
                acquired_at: sql`case when bot_locks.owner = excluded.owner then bot_locks.acquired_at else excluded.acquired_at end`,
                heartbeat_at: sql`excluded.heartbeat_at`,
                ttl_ms: sql`excluded.ttl_ms`,
              })
              .where(
                sql<boolean>`bot_locks.owner = excluded.owner or bot_locks.heartbeat_at + bot_locks.ttl_ms <= excluded.heartbeat_at or (${dead} <> '' and bot_locks.owner = ${dead})`,
              ),
          )
          .execute();
        const after = await trx
          .selectFrom('bot_locks')
          .select(['owner', 'heartbeat_at'])
          .where('bot_id', '=', botId)
          .executeTakeFirstOrThrow();
        const acquired = after.owner === owner;
        return {
          acquired,
          owner: after.owner,
          heartbeatAt: Number(after.heartbeat_at),
          tookOver: acquired && before !== undefined && before.owner !== owner,
        };
      });
    },
    async heartbeat(botId, owner) {
      const r = await db
        .updateTable('bot_locks')
        .set({ heartbeat_at: clock.now() })
        .where('bot_id', '=', botId)
        .where('owner', '=', owner)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },
    async release(botId, owner) {
      const r = await db
        .deleteFrom('bot_locks')
        .where('bot_id', '=', botId)
        .where('owner', '=', owner)
        .executeTakeFirst();
      return Number(r.numDeletedRows) === 1;
    },
    async holder(botId) {
      const r = await db.selectFrom('bot_locks').selectAll().where('bot_id', '=', botId).executeTakeFirst();
      return r && { owner: r.owner, heartbeatAt: Number(r.heartbeat_at), ttlMs: Number(r.ttl_ms) };
    },
  };

  const orders: OrderRepo = {
    async upsert(botId, o) {
      const r = await upsertOrderQuery(db, orderRow(botId, o)).executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows) !== 1) throw orderClash(o, botId);
    },
    async get(id) {
      const r = await db.selectFrom('orders').selectAll().where('client_order_id', '=', id).executeTakeFirst();
      return r && toOrder(r);
    },
    async byVenueId(botId, venueOrderId) {
      const r = await db
        .selectFrom('orders')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('venue_order_id', '=', venueOrderId)
        .executeTakeFirst();
      return r && toOrder(r);
    },
    async open(botId) {
      const rows = await db
        .selectFrom('orders')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('status', 'not in', TERMINAL)
        .orderBy('created_at')
        .orderBy('client_order_id')
        .execute();
      return rows.map(toOrder);
    },
    async list(botId, opts = {}) {
      let q = db.selectFrom('orders').selectAll().where('bot_id', '=', botId);
      if (opts.status && opts.status.length > 0) q = q.where('status', 'in', [...opts.status]);
      q = q.orderBy('created_at').orderBy('client_order_id');
      if (opts.limit !== undefined) q = q.limit(opts.limit);
      return (await q.execute()).map(toOrder);
    },
  };

  const fills: FillRepo = {
    async record(botId, f) {
      const r = await db
        .insertInto('fills')
        .values({
          bot_id: botId,
          trade_id: f.tradeId,
          client_order_id: f.orderId,
          symbol: f.symbol,
          side: f.side,
          price: f.price,
          amount: f.amount,
          fee: f.fee,
          fee_asset: f.feeAsset,
          liquidity: f.liquidity,
          time: f.time,
          tag: f.tag ?? null,
        })
        .onConflict((oc) => oc.columns(['bot_id', 'trade_id']).doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
    },
    async forOrder(botId, id) {
      const rows = await db
        .selectFrom('fills')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('client_order_id', '=', id)
        .orderBy('time')
        .orderBy('trade_id')
        .execute();
      return rows.map(toFill);
    },
    async since(botId, time) {
      const rows = await db
        .selectFrom('fills')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('time', '>=', time)
        .orderBy('time')
        .orderBy('trade_id')
        .execute();
      return rows.map(toFill);
    },
    async lastTime(botId) {
      const r = await db
        .selectFrom('fills')
        .select((eb) => eb.fn.max('time').as('t'))
        .where('bot_id', '=', botId)
        .executeTakeFirst();
      return r?.t === null || r?.t === undefined ? undefined : Number(r.t);
    },
  };

  const positions: PositionRepo = {
    async save(botId, p) {
      const row = {
        bot_id: botId,
        symbol: p.symbol,
        size: p.size,
        avg_price: nullIfNaN(p.avgPrice),
        realized_pnl: p.realizedPnl,
        updated_at: clock.now(),
      };
      await db
        .insertInto('positions')
        .values(row)
        .onConflict((oc) =>
          oc.columns(['bot_id', 'symbol']).doUpdateSet({
            size: row.size,
            avg_price: row.avg_price,
            realized_pnl: row.realized_pnl,
            updated_at: row.updated_at,
          }),
        )
        .execute();
    },
    async load(botId) {
      const rows = await db.selectFrom('positions').selectAll().where('bot_id', '=', botId).orderBy('symbol').execute();
      return rows.map(toPosition);
    },
    async get(botId, symbol) {
      const r = await db
        .selectFrom('positions')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('symbol', '=', symbol)
        .executeTakeFirst();
      return r && toPosition(r);
    },
  };

  const balances: BalanceRepo = {
    save(botId, list) {
      return inTx(db, async (trx) => {
        const now = clock.now();
        await trx.deleteFrom('balances').where('bot_id', '=', botId).execute();
        if (list.length === 0) return;
        await trx
          .insertInto('balances')
          .values(
            list.map((b) => ({
              bot_id: botId,
              asset: b.asset,
              free: b.free,
              used: b.used,
              total: b.total,
              updated_at: now,
            })),
          )
          .execute();
      });
    },
    async load(botId) {
      const rows = await db.selectFrom('balances').selectAll().where('bot_id', '=', botId).orderBy('asset').execute();
      return rows.map((r) => ({ asset: r.asset, free: Number(r.free), used: Number(r.used), total: Number(r.total) }));
    },
  };

  const state: StateRepo = {
    save(botId, value, expectedVersion) {
      return inTx(db, async (trx) => {
        const now = clock.now();
        const json = JSON.stringify(value);
        const cur = await trx
          .selectFrom('strategy_state')
          .select('version')
          .where('bot_id', '=', botId)
          .executeTakeFirst();
        const curVersion = cur === undefined ? 0 : Number(cur.version);
        if (expectedVersion !== undefined && expectedVersion !== curVersion) return null;
        if (cur === undefined) {
          const r = await trx
            .insertInto('strategy_state')
            .values({ bot_id: botId, state: json, version: 1, updated_at: now })
            .onConflict((oc) => oc.column('bot_id').doNothing())
            .executeTakeFirst();
          return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1 ? 1 : null;
        }
        // Compare-and-set on the version, so a concurrent writer cannot be silently overwritten.
        const r = await trx
          .updateTable('strategy_state')
          .set({ state: json, version: curVersion + 1, updated_at: now })
          .where('bot_id', '=', botId)
          .where('version', '=', curVersion)
          .executeTakeFirst();
        return Number(r.numUpdatedRows) === 1 ? curVersion + 1 : null;
      });
    },
    async load(botId) {
      const r = await db.selectFrom('strategy_state').selectAll().where('bot_id', '=', botId).executeTakeFirst();
      return r && { state: JSON.parse(r.state) as unknown, version: Number(r.version) };
    },
  };

  const events: EventRepo = {
    append(botId, type, payload) {
      return inTx(db, async (trx) => {
        const r = await trx
          .selectFrom('events')
          .select((eb) => eb.fn.max('seq').as('m'))
          .where('bot_id', '=', botId)
          .executeTakeFirst();
        const seq = (r?.m === null || r?.m === undefined ? 0 : Number(r.m)) + 1;
        await trx
          .insertInto('events')
          .values({ bot_id: botId, seq, time: clock.now(), type, payload: JSON.stringify(payload ?? null) })
          .execute();
        return seq;
      });
    },
    async list(botId, opts = {}) {
      let q = db
        .selectFrom('events')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('seq', '>', opts.afterSeq ?? 0)
        .orderBy('seq');
      if (opts.limit !== undefined) q = q.limit(opts.limit);
      return (await q.execute()).map((e) => ({
        seq: Number(e.seq),
        time: Number(e.time),
        type: e.type,
        payload: JSON.parse(e.payload) as unknown,
      }));
    },
  };

  const sessions: SessionRepo = {
    start(botId) {
      return inTx(db, async (trx) => {
        const r = await trx
          .selectFrom('sessions')
          .select((eb) => eb.fn.max('seq').as('m'))
          .where('bot_id', '=', botId)
          .executeTakeFirst();
        const seq = (r?.m === null || r?.m === undefined ? 0 : Number(r.m)) + 1;
        await trx
          .insertInto('sessions')
          .values({ bot_id: botId, seq, started_at: clock.now(), ended_at: null, report: null })
          .execute();
        return seq;
      });
    },
    async end(botId, seq, report) {
      const r = await db
        .updateTable('sessions')
        .set({ ended_at: clock.now(), report: JSON.stringify(report ?? null) })
        .where('bot_id', '=', botId)
        .where('seq', '=', seq)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw new Error(`Unknown session ${seq} of bot "${botId}"`);
    },
    async list(botId) {
      const rows = await db.selectFrom('sessions').selectAll().where('bot_id', '=', botId).orderBy('seq').execute();
      return rows.map((s) => ({
        seq: Number(s.seq),
        startedAt: Number(s.started_at),
        endedAt: s.ended_at === null ? null : Number(s.ended_at),
        report: s.report === null ? null : (JSON.parse(s.report) as unknown),
      }));
    },
  };

  return { bots, locks, orders, fills, positions, balances, state, events, sessions, ...botOpsRepos(db, clock) };
}

function toBot(r: Selectable<KeelDb['bots']>): BotRecord {
  return {
    id: r.id,
    strategy: r.strategy,
    params: JSON.parse(r.params) as unknown,
    mode: r.mode as BotMode,
    exchange: r.exchange,
    symbols: JSON.parse(r.symbols) as string[],
    status: r.status,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

function toOrder(r: Selectable<OrdersTable>): OrderState {
  const request = JSON.parse(r.request) as OrderRequest;
  const o: OrderState = {
    request: { ...request, id: ClientOrderId(r.client_order_id) },
    status: r.status as OrderStatus,
    filled: Number(r.filled),
    avgPrice: nanIfNull(r.avg_price),
    fee: Number(r.fee),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    triggered: r.triggered === 1,
    stopLevel: nanIfNull(r.stop_level),
    decisionPrice: nanIfNull(r.decision_price),
    active: r.active === 1,
  };
  if (r.venue_order_id !== null) o.venueOrderId = VenueOrderId(r.venue_order_id);
  if (r.reason !== null) o.reason = r.reason;
  return o;
}

function toFill(r: Selectable<KeelDb['fills']>): Fill {
  return {
    orderId: ClientOrderId(r.client_order_id),
    tradeId: r.trade_id,
    symbol: r.symbol,
    side: r.side as Fill['side'],
    price: Number(r.price),
    amount: Number(r.amount),
    fee: Number(r.fee),
    feeAsset: r.fee_asset,
    liquidity: r.liquidity as Fill['liquidity'],
    time: Number(r.time),
    ...(r.tag !== null ? { tag: r.tag } : {}),
  };
}

function toPosition(r: Selectable<KeelDb['positions']>): StoredPosition {
  return {
    symbol: r.symbol,
    size: Number(r.size),
    avgPrice: nanIfNull(r.avg_price),
    realizedPnl: Number(r.realized_pnl),
  };
}
