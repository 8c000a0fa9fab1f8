import { type Selectable, sql } from 'kysely';
import type { BacktestsTable } from '../schema.ts';
import { inTx, type RepoContext } from './context.ts';

/** A backtest run as it is listed, shown and compared (the result itself is in its artifacts). */
export interface BacktestRecord {
  /** 1, 2, 3, ... in the order the runs were saved. */
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
};

/** Backtest runs (`keel backtests`): every `keel backtest` saves one. */
export interface BacktestRepo {
  /** Saves a run under the next id and returns its record. */
  save(run: NewBacktest): Promise<BacktestRecord>;
  get(id: number): Promise<BacktestRecord | undefined>;
  /** Newest first; `limit` of them (default all). */
  list(opts?: { readonly limit?: number }): Promise<BacktestRecord[]>;
  /** The run's result and chart, as saved. */
  artifacts(id: number): Promise<{ result: Uint8Array; chart: Uint8Array } | undefined>;
  /** Deletes a run and its artifacts; false when there was none. */
  remove(id: number): Promise<boolean>;
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

export function backtestRepo({ db, dialect, clock }: RepoContext): BacktestRepo {
  return {
    save(run) {
      return inTx(db, async (trx) => {
        // Ids follow the saves: PostgreSQL readers at READ COMMITTED would read the same max, so
        // the table is locked for the transaction (SQLite's write lock is taken up front).
        if (dialect === 'postgres') await sql`lock table backtests in exclusive mode`.execute(trx);
        const m = await trx
          .selectFrom('backtests')
          .select((eb) => eb.fn.max('id').as('m'))
          .executeTakeFirst();
        const id = (m?.m === null || m?.m === undefined ? 0 : Number(m.m)) + 1;
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
      const r = await db.selectFrom('backtest_artifacts').selectAll().where('backtest_id', '=', id).executeTakeFirst();
      return (
        r && {
          result: new Uint8Array(Buffer.from(r.result, 'base64')),
          chart: new Uint8Array(Buffer.from(r.bars, 'base64')),
        }
      );
    },
    remove(id) {
      return inTx(db, async (trx) => {
        await trx.deleteFrom('backtest_artifacts').where('backtest_id', '=', id).execute();
        const r = await trx.deleteFrom('backtests').where('id', '=', id).executeTakeFirst();
        return Number(r.numDeletedRows) > 0;
      });
    },
  };
}
