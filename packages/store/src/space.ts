import { statSync } from 'node:fs';
import type Database from 'better-sqlite3';
import { type Kysely, sql } from 'kysely';
import type { KeelDb } from './schema.ts';

/** How much room the store takes, as its engine can tell. */
export type StoreSpace =
  | {
      readonly kind: 'sqlite-file';
      readonly file: string;
      /** The database file and its write-ahead log, in bytes. */
      readonly fileBytes: number;
      readonly walBytes: number;
      /** Free pages inside the file (deleted rows' room, reused by later writes), in bytes. */
      readonly freeBytes: number;
      /** `incremental`: `reclaim()` gives free pages back at once; `none`: only a VACUUM does. */
      readonly autoVacuum: 'none' | 'full' | 'incremental';
    }
  | { readonly kind: 'sqlite-memory' }
  | {
      readonly kind: 'postgres';
      /** The backtest tables with their indexes and TOAST (PostgreSQL reuses a deleted row's room). */
      readonly backtestBytes: number;
    };

const AUTO_VACUUM = ['none', 'full', 'incremental'] as const;

export async function storeSpace(
  db: Kysely<KeelDb>,
  sqlite: Database.Database | undefined,
  file: string | undefined,
): Promise<StoreSpace> {
  if (sqlite === undefined) {
    const r = await sql<{
      bytes: number | string | null;
    }>`select coalesce(sum(pg_total_relation_size(c.oid)), 0) as bytes
      from pg_class c where c.relkind = 'r' and c.relnamespace = current_schema()::regnamespace
      and c.relname in ('backtests', 'backtest_artifacts', 'backtest_bars')`.execute(db);
    return { kind: 'postgres', backtestBytes: Number(r.rows[0]?.bytes ?? 0) };
  }
  if (file === undefined || file === ':memory:') return { kind: 'sqlite-memory' };
  const size = (f: string) => {
    try {
      return statSync(f).size;
    } catch {
      return 0;
    }
  };
  const pageSize = sqlite.pragma('page_size', { simple: true }) as number;
  const free = sqlite.pragma('freelist_count', { simple: true }) as number;
  return {
    kind: 'sqlite-file',
    file,
    fileBytes: size(file),
    walBytes: size(`${file}-wal`),
    freeBytes: free * pageSize,
    autoVacuum: AUTO_VACUUM[sqlite.pragma('auto_vacuum', { simple: true }) as 0 | 1 | 2] ?? 'none',
  };
}

/**
 * Gives the free pages of a SQLite file back to the file system. A store made with
 * `auto_vacuum = incremental` (every store this build creates) does it at once, in time
 * proportional to the pages freed. An older store can only do it by VACUUM (`vacuum: true`): it
 * rewrites the whole file (as long as copying it, with as much free disk again), holding the write
 * lock meanwhile, and turns incremental vacuum on, so that later deletes free their pages at once.
 * Then the log is checkpointed so the file itself shrinks (unless another connection is busy with
 * it: then at a later checkpoint). PostgreSQL: nothing to do (autovacuum makes deleted rows' room reusable).
 */
export async function reclaimSpace(
  db: Kysely<KeelDb>,
  sqlite: Database.Database | undefined,
  file: string | undefined,
  opts: { readonly vacuum?: boolean } = {},
): Promise<StoreSpace> {
  if (sqlite !== undefined && file !== undefined && file !== ':memory:') {
    if (opts.vacuum) {
      sqlite.pragma('auto_vacuum = INCREMENTAL');
      sqlite.exec('VACUUM');
    } else if (sqlite.pragma('auto_vacuum', { simple: true }) === 2) {
      sqlite.pragma('incremental_vacuum');
    }
    // TRUNCATE empties the log too, but waits for readers and writers and holds off new writers
    // meanwhile: with no wait it never holds up a bot writing to the store (busy: a later
    // checkpoint shrinks the file).
    const wait = sqlite.pragma('busy_timeout', { simple: true }) as number;
    sqlite.pragma('busy_timeout = 0');
    try {
      sqlite.pragma('wal_checkpoint(TRUNCATE)');
    } finally {
      sqlite.pragma(`busy_timeout = ${wait}`);
    }
  }
  return storeSpace(db, sqlite, file);
}
