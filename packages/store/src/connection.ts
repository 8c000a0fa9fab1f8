import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  Kysely,
  Migrator,
  PostgresDialect,
  SqliteAdapter,
  SqliteDialect,
  SqliteDriver,
  sql,
} from 'kysely';
import type { StoreDialect } from './repos/context.ts';
import { type KeelDb, MIGRATIONS } from './schema.ts';

export const DEFAULT_STORE_URL = 'sqlite:.keel/keel.db';

/**
 * The file a `sqlite:<path>` url names when it does not exist, else undefined: a command that only
 * reads the store (`keel bots`, `keel backtests`, `keel portfolio`) says so instead of opening,
 * and so creating, an empty store.
 */
export function missingSqliteFile(url: string): string | undefined {
  if (!url.startsWith('sqlite:') || url === 'sqlite::memory:') return undefined;
  const file = url.slice('sqlite:'.length);
  return existsSync(file) ? undefined : file;
}

export interface ConnectOptions {
  readonly url: string;
  readonly schema?: string | undefined;
  readonly synchronous: 'FULL' | 'NORMAL';
}

/** An open, migrated database. */
export interface Connection {
  readonly db: Kysely<KeelDb>;
  readonly dialect: StoreDialect;
  /** SQLite only: the connection itself (the write-ahead path writes through it directly). */
  readonly sqlite?: Database.Database;
  /** SQLite only: the file (`:memory:` in memory). */
  readonly sqliteFile?: string;
}

/** Opens the database a store url names, with the settings docs/store.md explains, and migrates it. */
export async function connect(opts: ConnectOptions): Promise<Connection> {
  const conn = await open(opts);
  if (conn.sqlite !== undefined && upToDate(conn.sqlite)) return conn;
  let error: unknown;
  try {
    const migrator = new Migrator({
      db: conn.db,
      provider: { getMigrations: async () => MIGRATIONS },
      // Kysely looks for its migration tables in every schema unless told which one: on a
      // PostgreSQL database where another schema has them (another store, another application),
      // it would not create the store's own and the migration would fail.
      ...(conn.dialect === 'postgres' ? { migrationTableSchema: opts.schema ?? (await currentSchema(conn.db)) } : {}),
    });
    ({ error } = await migrator.migrateToLatest());
  } catch (e) {
    error = e;
  }
  if (error !== undefined) {
    await conn.db.destroy();
    throw new Error(
      `Store migration failed for ${redactStoreUrl(opts.url)}: ${(error as Error).message ?? String(error)}`,
      { cause: error },
    );
  }
  return conn;
}

/**
 * Whether a SQLite store has applied exactly this build's migrations: then Kysely's Migrator (its
 * lock, its table checks, its sort of the names: ~10-20 ms of a short command such as `keel
 * backtest`) would find nothing to do. Anything else (a new store, a migration to apply, one this
 * build does not know) takes the Migrator's path, which applies or reports it.
 */
function upToDate(sqlite: Database.Database): boolean {
  let done: string[];
  try {
    done = (sqlite.prepare('select name from kysely_migration').all() as { name: string }[]).map((r) => r.name);
  } catch {
    return false;
  }
  const names = Object.keys(MIGRATIONS);
  return done.length === names.length && names.every((n) => done.includes(n));
}

async function open({ url, schema, synchronous }: ConnectOptions): Promise<Connection> {
  if (url.startsWith('sqlite:')) {
    const file = url.slice('sqlite:'.length);
    if (file === '') throw new Error(`Invalid store url "${url}": expected sqlite:<path> or sqlite::memory:`);
    if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
    const sqlite = new Database(file);
    // A new store frees the pages of what is deleted from it on request (`PRAGMA
    // incremental_vacuum`, which `keel backtests delete|prune` run): without it they stay free pages
    // inside the file until a VACUUM. It can only be set before the first table.
    if (file !== ':memory:' && sqlite.pragma('page_count', { simple: true }) === 0)
      sqlite.pragma('auto_vacuum = INCREMENTAL');
    // WAL: readers never block the writer and a commit is one append to the log. The choice
    // between FULL and NORMAL is about power loss, not process crashes: see docs/store.md.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma(`synchronous = ${synchronous}`);
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    cachePreparedStatements(sqlite);
    const db = new Kysely<KeelDb>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
    return { db, dialect: 'sqlite', sqlite, sqliteFile: file };
  }
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    if (schema !== undefined && !/^[a-z_][a-z0-9_]*$/.test(schema)) {
      throw new Error(`Invalid schema name "${schema}": use lower-case letters, digits and _`);
    }
    // Loaded for PostgreSQL only: a SQLite store (every CLI default) never pays for the driver.
    const { default: pg } = await import('pg');
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
    return { db: new Kysely<KeelDb>({ dialect: new PostgresDialect({ pool }) }), dialect: 'postgres' };
  }
  throw new Error(`Unsupported store url "${url}": expected sqlite:<path>, sqlite::memory: or postgres://…`);
}

/** The schema PostgreSQL creates tables in for this connection (the first of its search_path). */
async function currentSchema(db: Kysely<KeelDb>): Promise<string> {
  const r = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(db);
  const schema = r.rows[0]?.schema;
  if (!schema)
    throw new Error('PostgreSQL has no current schema (search_path names no existing schema): pass a schema');
  return schema;
}

/** A store url with any password replaced by *** (for messages and logs). */
export function redactStoreUrl(url: string): string {
  return url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
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
  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}

/**
 * SQLite runs DDL inside transactions, but Kysely's adapter says it does not, so its Migrator
 * would run each migration bare, with no lock (SQLite's migration lock is a no-op): two processes
 * opening a new store at once (a bot starting while `keel bots list` runs) both created the tables
 * and one failed with "table already exists". Declared transactional, the migrations run in one
 * BEGIN IMMEDIATE transaction: the second process waits for the first and then finds them applied.
 */
class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}
