import type { OrderState } from '@keel/core';
import type Database from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { WalCheckpointer } from './checkpointer.ts';
import { clearIntentLog, IntentLog, intentLogFile, readIntentLog } from './intents.ts';
import type { Db } from './repos/context.ts';
import { type OrderRow, orderConflict, orderConflictWith, orderRow, upsertOrderQuery } from './repos/orders.ts';
import type { KeelDb } from './schema.ts';

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
}

const DECLINED: WriteAhead = { kind: 'declined' };
const ROW: WriteAhead = { kind: 'row' };

/** One line of an intent log. */
interface IntentRecord {
  readonly v: 1;
  readonly row: OrderRow;
}

/**
 * The store's side of the live path's write-ahead record of new orders (docs/store.md): on a
 * SQLite file, each new order is appended to its bot's intent log (`intents.ts`) before its
 * request leaves and its row is written right after; at a bot's start the lines whose row never
 * arrived are replayed. Elsewhere there is no log (see `write`).
 */
export class OrderWriteAhead {
  private upsertNow: CompiledUpsert | undefined;
  private checkpointer: WalCheckpointer | undefined;
  private readonly logs = new Map<string, IntentLog>();

  constructor(
    private readonly db: Kysely<KeelDb>,
    /** The SQLite connection; undefined on PostgreSQL. */
    private readonly sqlite: Database.Database | undefined,
    /** The SQLite database file (`:memory:` in memory). */
    private readonly file: string | undefined,
    /** Sync every append to disk (the database's `synchronous=FULL`). */
    private readonly sync: boolean,
  ) {}

  /** `Store.writeOrderNow`. */
  write(botId: string, order: OrderState): WriteAhead {
    const sqlite = this.sqlite;
    if (sqlite === undefined || sqlite.inTransaction) return DECLINED;
    // The same upsert as orders.upsert, compiled once: the query builder and compiler cost more
    // than SQLite's write.
    const row = orderRow(botId, order);
    if (this.upsertNow === undefined) {
      this.upsertNow = compiledUpsert(this.db, sqlite, row);
      // The rows follow the live path closely: checkpoints move to a worker thread.
      if (!sqlite.memory) this.checkpointer = new WalCheckpointer(sqlite, sqlite.name);
    }
    const upsert = this.upsertNow;
    if (sqlite.memory || this.file === undefined) {
      if (upsert.run(row) !== 1) throw orderConflictWith(upsert.stored(row.client_order_id), row);
      return ROW;
    }
    let log = this.logs.get(botId);
    if (log === undefined) {
      log = new IntentLog(intentLogFile(this.file, botId), this.sync);
      this.logs.set(botId, log);
    }
    const record: IntentRecord = { v: 1, row };
    log.append(record);
    const logged = log;
    return {
      kind: 'logged',
      save: async () => {
        // Inside someone else's open transaction the prepared statement would join it (and
        // vanish with a rollback): through Kysely, which waits for the connection, instead.
        const changed = sqlite.inTransaction
          ? Number((await upsertOrderQuery(this.db, row).executeTakeFirst()).numInsertedOrUpdatedRows)
          : upsert.run(row);
        if (changed !== 1) throw await orderConflict(this.db, row);
        logged.saved();
      },
    };
  }

  /** `Store.replayIntents`. */
  async replay(botId: string): Promise<IntentReplay> {
    const sqlite = this.sqlite;
    if (sqlite === undefined || sqlite.memory || this.file === undefined) return { recovered: [], torn: 0 };
    // A restart in this process (the earlier instance abandoned): its log is read like any.
    this.logs.get(botId)?.close();
    this.logs.delete(botId);
    const file = intentLogFile(this.file, botId);
    const { records, torn } = readIntentLog<IntentRecord>(file);
    const recovered: string[] = [];
    let bad = torn;
    await this.db.transaction().execute(async (trx) => {
      for (const [i, r] of records.entries()) {
        if (r?.v !== 1 || r.row?.bot_id !== botId || typeof r.row.client_order_id !== 'string') {
          bad++;
          continue;
        }
        const id = r.row.client_order_id;
        const had = await trx.selectFrom('orders').selectAll().where('client_order_id', '=', id).executeTakeFirst();
        if (had === undefined) {
          await trx.insertInto('orders').values(r.row).execute();
          recovered.push(id);
        } else if (had.bot_id !== botId) {
          // The order may be on the exchange under this id: recording it for neither bot, or
          // for the wrong one, would lose its fills. Nothing of the replay is written.
          throw orderConflictWith(
            had,
            r.row,
            `Bot "${botId}" logged this order (write-ahead log ${file}, record ${i + 1}) as it sent it. ` +
              `Look the order up on the exchange; once it is accounted for, remove that record from ` +
              `the log to start the bot.`,
          );
        }
        // A row of this bot's is at least as new as the line: left alone.
      }
    });
    // Every line has its row now (a crash before this point replays them again: no-ops).
    clearIntentLog(file, this.sync);
    return { recovered, torn: bad };
  }

  /** Closes every bot's log (emptied when all its lines have their rows) and the checkpointer. */
  async close(): Promise<void> {
    for (const log of this.logs.values()) log.close();
    this.logs.clear();
    await this.checkpointer?.stop();
  }
}

interface CompiledUpsert {
  /** Runs the upsert for `row`; returns the number of rows changed. */
  run(row: OrderRow): number;
  /** The stored row of an order id (to name it when the upsert changed nothing). */
  stored(clientOrderId: string): OrderRow | undefined;
}

/**
 * `upsertOrderQuery` compiled once with a marker for each column of `sample` (any row: only its
 * keys are read), so each parameter's column is known; a write then only fills the parameter
 * list and runs the prepared statement.
 */
function compiledUpsert(db: Db, sqlite: Database.Database, sample: OrderRow): CompiledUpsert {
  const columns = Object.keys(sample) as (keyof OrderRow)[];
  const marker = (col: string) => `\u0000keel:${col}`;
  // Every column holds its marker string, numbers included: the row is only compiled, never
  // run, so its values' types do not matter, only where each one lands among the parameters
  // (hence the cast through unknown: a row of strings is not an OrderRow).
  const markers = Object.fromEntries(columns.map((c) => [c, marker(c)])) as unknown as OrderRow;
  const q = upsertOrderQuery(db, markers).compile();
  const byMarker = new Map(columns.map((c) => [marker(c), c]));
  const paramColumns = q.parameters.map((p) => {
    const c = byMarker.get(p as string);
    if (c === undefined) throw new Error(`Invariant violated: order upsert parameter ${String(p)} is no column`);
    return c;
  });
  const st = sqlite.prepare(q.sql);
  const select = sqlite.prepare('select * from orders where client_order_id = ?');
  const params: unknown[] = new Array(paramColumns.length);
  return {
    run(row) {
      for (let i = 0; i < paramColumns.length; i++) params[i] = row[paramColumns[i] as keyof OrderRow];
      return st.run(params).changes;
    },
    stored: (id) => select.get(id) as OrderRow | undefined,
  };
}
