import type { Clock } from '@keel/core';
import type { Kysely, Transaction } from 'kysely';
import type { KeelDb } from '../schema.ts';

export type StoreDialect = 'sqlite' | 'postgres';

/** The store's database handle, or one open transaction on it. */
export type Db = Kysely<KeelDb> | Transaction<KeelDb>;

/** What every repository is built from: where to write, which engine it is, and the time. */
export interface RepoContext {
  readonly db: Db;
  readonly dialect: StoreDialect;
  /** Every timestamp a repository writes comes from it. */
  readonly clock: Clock;
}

/** Runs fn in the current transaction if there is one, else in a new one. */
export function inTx<T>(db: Db, fn: (trx: Db) => Promise<T>): Promise<T> {
  return db.isTransaction ? fn(db) : (db as Kysely<KeelDb>).transaction().execute(fn);
}

/**
 * The next sequence number of a bot's journal or sessions (max + 1), called inside a transaction.
 * SQLite transactions take the write lock up front (BEGIN IMMEDIATE), so two of them never read
 * the same max. PostgreSQL reads at READ COMMITTED: two transactions would read the same max and
 * the second insert would fail on the key; locking the bot's row first makes them take turns (the
 * second reads the max after the first committed).
 */
export async function nextSeq(
  trx: Db,
  dialect: StoreDialect,
  table: 'events' | 'sessions',
  botId: string,
): Promise<number> {
  if (dialect === 'postgres') {
    await trx.selectFrom('bots').select('id').where('id', '=', botId).forNoKeyUpdate().execute();
  }
  const r = await trx
    .selectFrom(table)
    .select((eb) => eb.fn.max('seq').as('m'))
    .where('bot_id', '=', botId)
    .executeTakeFirst();
  return (r?.m === null || r?.m === undefined ? 0 : Number(r.m)) + 1;
}

export const nullIfNaN = (x: number): number | null => (Number.isNaN(x) ? null : x);
export const nanIfNull = (x: number | null): number => (x === null ? Number.NaN : Number(x));

/**
 * A money or quantity column must hold a finite number. PostgreSQL would store NaN and Infinity
 * and SQLite would refuse them with a bare NOT NULL error: one clear error on both engines, naming
 * the field, instead.
 */
export function finite(what: string, field: string, x: number): number {
  if (!Number.isFinite(x)) throw new Error(`Invalid ${what}: ${field} must be a finite number, got ${x}`);
  return x;
}
