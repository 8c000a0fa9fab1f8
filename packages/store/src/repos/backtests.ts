import { type Selectable, sql } from 'kysely';
import type { BacktestsTable } from '../schema.ts';
import { type Db, inTx, type RepoContext, type StoreDialect } from './context.ts';

/** A backtest run as it is listed, shown and compared (the result itself is in its artifacts). */
export interface BacktestRecord {
  /** 1, 2, 3, ... in the order the runs were saved; never reused after a run is removed. */
  readonly id: number;
  readonly createdAt: number;
  readonly strategy: string;
  readonly params: unknown;
  readonly symbols: readonly string[];
  readonly timeframe: string;
  /** Open time of the first and of the last bar replayed (NaN: no bar). */
  readonly firstBar: number;
  readonly lastBar: number;
  /** How the run was set up (cash, fees, risk, data), as the caller gave it. */
  readonly settings: unknown;
  /** The run's metrics and per-market split, as the caller gave them (the result JSON's members). */
  readonly metrics: unknown;
  readonly pairs: unknown;
  /** The summary as the terminal showed it. */
  readonly summary: string;
}

export type NewBacktest = Omit<BacktestRecord, 'id' | 'createdAt'> & {
  /** The whole result and what its report draws beyond it, as opaque bytes (the caller compresses them). */
  readonly result: Uint8Array;
  readonly chart: Uint8Array;
  /** The run's bars, kept apart from the chart and once per content; absent: the chart holds them. */
  readonly bars?: BacktestBars;
};

/** A run's bars: who they are (the caller's hash of their columns) and, unless stored already, their bytes. */
export interface BacktestBars {
  /** Names the bars: equal bars, equal hash (the caller's SHA-256 of the raw columns, hex). */
  readonly hash: string;
  readonly count: number;
  /**
   * The columns as opaque bytes (the caller compresses them). May be left out when `hasBars`
   * said the store holds them: should they be deleted meanwhile, `save` throws BarsNotStoredError
   * and writes nothing.
   */
  readonly data?: Uint8Array;
}

/** What `remove` and `prune` took out of the store (or, dry run, would). */
export interface BacktestsRemoved {
  readonly kind: 'removed';
  /** The runs, in id order. */
  readonly ids: readonly number[];
  /** Bar sets that no run kept refers to, removed with the last run that did. */
  readonly barSets: number;
  /** What the removed rows held (compressed artifacts, bars, JSON text): about the room freed. */
  readonly bytes: number;
  readonly dryRun: boolean;
}

/** `remove` named runs that are not in the store: nothing was removed. */
export interface BacktestsMissing {
  readonly kind: 'missing';
  readonly ids: readonly number[];
}

export interface PruneBacktests {
  /** Keep the newest `keep` runs whatever their age. */
  readonly keep?: number;
  /** Remove only runs saved more than this many ms ago (by the store's clock). */
  readonly olderThanMs?: number;
  readonly dryRun?: boolean;
}

/** Backtest runs (`keel backtests`): every `keel backtest` saves one. */
export interface BacktestRepo {
  /** Saves a run under the next id (ids only go up: a removed run's id is never given again). */
  save(run: NewBacktest): Promise<BacktestRecord>;
  get(id: number): Promise<BacktestRecord | undefined>;
  /** Newest first; `limit` of them (default all). */
  list(opts?: { readonly limit?: number }): Promise<BacktestRecord[]>;
  /** The run's result, chart and bars (absent for a run whose chart holds them), as saved. */
  artifacts(id: number): Promise<{ result: Uint8Array; chart: Uint8Array; bars?: Required<BacktestBars> } | undefined>;
  /** Whether bars of this hash are stored (a run on them need not send them again). */
  hasBars(hash: string): Promise<boolean>;
  /**
   * Removes the runs, their artifacts and the bars no other run refers to, in one transaction;
   * when any id is not in the store, removes nothing and says which.
   */
  remove(ids: readonly number[], opts?: { readonly dryRun?: boolean }): Promise<BacktestsRemoved | BacktestsMissing>;
  /**
   * Removes the runs that are not among the newest `keep` and are older than `olderThanMs` (either
   * condition alone when only one is given; one is required), as `remove` does.
   */
  prune(opts: PruneBacktests): Promise<BacktestsRemoved>;
}

/** `save` was told the store holds the run's bars, and it no longer does (a run removed meanwhile). */
export class BarsNotStoredError extends Error {
  constructor(readonly hash: string) {
    super(`the backtest bars ${hash.slice(0, 12)}... are not in the store`);
    this.name = 'BarsNotStoredError';
  }
}

const nullIfNaN = (x: number): number | null => (Number.isFinite(x) ? x : null);

function toRecord(r: Selectable<BacktestsTable>): BacktestRecord {
  return {
    id: Number(r.id),
    createdAt: Number(r.created_at),
    strategy: r.strategy,
    params: JSON.parse(r.params) as unknown,
    symbols: JSON.parse(r.symbols) as string[],
    timeframe: r.timeframe,
    firstBar: r.first_bar === null ? Number.NaN : Number(r.first_bar),
    lastBar: r.last_bar === null ? Number.NaN : Number(r.last_bar),
    settings: JSON.parse(r.settings) as unknown,
    metrics: JSON.parse(r.metrics) as unknown,
    pairs: JSON.parse(r.pairs) as unknown,
    summary: r.summary,
  };
}

/** Ids and hashes go into `in (...)` lists this many at a time (both engines cap a statement's parameters). */
const CHUNK = 500;

function chunks<T>(xs: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += CHUNK) out.push(xs.slice(i, i + CHUNK));
  return out;
}

const len = (col: string) => sql<number>`coalesce(length(${sql.ref(col)}), 0)`;

/**
 * Saves and removals take turns on the `backtests` counter's row: SQLite's write lock is taken up
 * front (BEGIN IMMEDIATE); PostgreSQL's row lock makes a save that found its bars stored and a
 * removal that deletes them wait for each other instead of crossing.
 */
async function nextId(trx: Db): Promise<number> {
  const c = await trx
    .updateTable('counters')
    .set((eb) => ({ value: eb('value', '+', 1) }))
    .where('name', '=', 'backtests')
    .returning('value')
    .executeTakeFirst();
  if (c === undefined) throw new Error('the store has no backtests counter (migration 0008_backtest_space)');
  return Number(c.value);
}

/** A removal's turn (see nextId), before it reads what to remove: PostgreSQL locks the counter's row. */
async function removalTurn(trx: Db, dialect: StoreDialect): Promise<void> {
  if (dialect === 'postgres')
    await trx.selectFrom('counters').select('value').where('name', '=', 'backtests').forUpdate().execute();
}

/** The runs' removal (see BacktestRepo.remove), in the caller's transaction, in its turn; `ids` all exist. */
async function removeRuns(trx: Db, ids: readonly number[], dryRun: boolean): Promise<BacktestsRemoved> {
  let bytes = 0;
  const removedRefs = new Map<string, number>();
  for (const part of chunks(ids)) {
    const rows = await trx
      .selectFrom('backtests as b')
      .leftJoin('backtest_artifacts as a', 'a.backtest_id', 'b.id')
      .select([
        'a.bars_hash',
        sql<number>`${len('a.result')} + ${len('a.bars')} + ${len('b.params')} + ${len('b.symbols')} + ${len('b.settings')} + ${len('b.metrics')} + ${len('b.pairs')} + ${len('b.summary')}`.as(
          'bytes',
        ),
      ])
      .where('b.id', 'in', part)
      .execute();
    for (const r of rows) {
      bytes += Number(r.bytes);
      if (r.bars_hash !== null) removedRefs.set(r.bars_hash, (removedRefs.get(r.bars_hash) ?? 0) + 1);
    }
  }
  // Bars whose every reference is among the removed runs go with them.
  const orphans: string[] = [];
  for (const part of chunks([...removedRefs.keys()])) {
    const refs = await trx
      .selectFrom('backtest_artifacts')
      .select(['bars_hash', (eb) => eb.fn.countAll<number>().as('n')])
      .where('bars_hash', 'in', part)
      .groupBy('bars_hash')
      .execute();
    for (const r of refs)
      if (r.bars_hash !== null && Number(r.n) === removedRefs.get(r.bars_hash)) orphans.push(r.bars_hash);
  }
  for (const part of chunks(orphans)) {
    const r = await trx
      .selectFrom('backtest_bars')
      .select((eb) => eb.fn.sum<number>(len('data')).as('bytes'))
      .where('hash', 'in', part)
      .executeTakeFirst();
    bytes += Number(r?.bytes ?? 0);
  }
  if (!dryRun) {
    for (const part of chunks(ids)) {
      await trx.deleteFrom('backtest_artifacts').where('backtest_id', 'in', part).execute();
      await trx.deleteFrom('backtests').where('id', 'in', part).execute();
    }
    for (const part of chunks(orphans)) await trx.deleteFrom('backtest_bars').where('hash', 'in', part).execute();
  }
  return { kind: 'removed', ids: [...ids].sort((a, b) => a - b), barSets: orphans.length, bytes, dryRun };
}

export function backtestRepo({ db, dialect, clock }: RepoContext): BacktestRepo {
  return {
    save(run) {
      return inTx(db, async (trx) => {
        const id = await nextId(trx);
        const bars = run.bars;
        if (bars?.data !== undefined) {
          await trx
            .insertInto('backtest_bars')
            .values({
              hash: bars.hash,
              bars: bars.count,
              data: Buffer.from(bars.data.buffer, bars.data.byteOffset, bars.data.byteLength),
            })
            .onConflict((oc) => oc.column('hash').doNothing())
            .execute();
        } else if (bars !== undefined) {
          const there = await trx
            .selectFrom('backtest_bars')
            .select('hash')
            .where('hash', '=', bars.hash)
            .executeTakeFirst();
          if (there === undefined) throw new BarsNotStoredError(bars.hash);
        }
        const row = {
          id,
          created_at: clock.now(),
          strategy: run.strategy,
          params: JSON.stringify(run.params ?? null),
          symbols: JSON.stringify(run.symbols),
          timeframe: run.timeframe,
          first_bar: nullIfNaN(run.firstBar),
          last_bar: nullIfNaN(run.lastBar),
          settings: JSON.stringify(run.settings ?? null),
          metrics: JSON.stringify(run.metrics ?? null),
          pairs: JSON.stringify(run.pairs ?? null),
          summary: run.summary,
        };
        await trx.insertInto('backtests').values(row).execute();
        await trx
          .insertInto('backtest_artifacts')
          .values({
            backtest_id: id,
            result: Buffer.from(run.result).toString('base64'),
            // The column is named for what it first held; it holds the chart.
            bars: Buffer.from(run.chart).toString('base64'),
            bars_hash: bars?.hash ?? null,
          })
          .execute();
        return toRecord(row);
      });
    },
    async get(id) {
      const r = await db.selectFrom('backtests').selectAll().where('id', '=', id).executeTakeFirst();
      return r && toRecord(r);
    },
    async list(opts = {}) {
      let q = db.selectFrom('backtests').selectAll().orderBy('id', 'desc');
      if (opts.limit !== undefined) q = q.limit(opts.limit);
      return (await q.execute()).map(toRecord);
    },
    async artifacts(id) {
      const r = await db
        .selectFrom('backtest_artifacts as a')
        .leftJoin('backtest_bars as s', 's.hash', 'a.bars_hash')
        .select(['a.result', 'a.bars', 'a.bars_hash', 's.bars as count', 's.data'])
        .where('a.backtest_id', '=', id)
        .executeTakeFirst();
      if (r === undefined) return undefined;
      const out = {
        result: new Uint8Array(Buffer.from(r.result, 'base64')),
        chart: new Uint8Array(Buffer.from(r.bars, 'base64')),
      };
      if (r.bars_hash === null) return out;
      if (r.data === null || r.count === null)
        throw new Error(`backtest ${id} refers to bars ${r.bars_hash} that are not in the store`);
      return { ...out, bars: { hash: r.bars_hash, count: Number(r.count), data: r.data } };
    },
    async hasBars(hash) {
      return (
        (await db.selectFrom('backtest_bars').select('hash').where('hash', '=', hash).executeTakeFirst()) !== undefined
      );
    },
    remove(ids, opts = {}) {
      return inTx(db, async (trx) => {
        await removalTurn(trx, dialect);
        const wanted = [...new Set(ids)];
        const found = new Set<number>();
        for (const part of chunks(wanted))
          for (const r of await trx.selectFrom('backtests').select('id').where('id', 'in', part).execute())
            found.add(Number(r.id));
        const missing = wanted.filter((id) => !found.has(id));
        if (missing.length > 0) return { kind: 'missing', ids: missing };
        return removeRuns(trx, wanted, opts.dryRun === true);
      });
    },
    async prune(opts) {
      if (opts.keep === undefined && opts.olderThanMs === undefined)
        throw new Error('prune needs keep or olderThanMs (it would remove every run)');
      return await inTx(db, async (trx) => {
        await removalTurn(trx, dialect);
        let q = trx.selectFrom('backtests').select('id');
        if (opts.keep !== undefined && opts.keep > 0) {
          const edge = await trx
            .selectFrom('backtests')
            .select('id')
            .orderBy('id', 'desc')
            .limit(1)
            .offset(opts.keep - 1)
            .executeTakeFirst();
          if (edge === undefined)
            return { kind: 'removed', ids: [], barSets: 0, bytes: 0, dryRun: opts.dryRun === true };
          q = q.where('id', '<', Number(edge.id));
        }
        if (opts.olderThanMs !== undefined) q = q.where('created_at', '<', clock.now() - opts.olderThanMs);
        const ids = (await q.execute()).map((r) => Number(r.id));
        return removeRuns(trx, ids, opts.dryRun === true);
      });
    },
  };
}
