import type { Selectable } from 'kysely';
import { differingFields, StoreConflictError } from '../errors.ts';
import type { BotsTable } from '../schema.ts';
import type { RepoContext } from './context.ts';

/** How a bot trades: against the simulated venue on live data, or on the exchange. */
export type BotMode = 'paper' | 'live';

export interface BotRecord {
  readonly id: string;
  readonly strategy: string;
  readonly params: unknown;
  readonly mode: BotMode;
  readonly exchange: string;
  readonly symbols: readonly string[];
  /** The risk settings in the parser's grammar (`riskConfigInput`), or null: no risk engine. */
  readonly risk: unknown;
  /** Perpetuals: leverage, margin mode and position mode per symbol; null for a spot bot (or one stored before them). */
  readonly futures: unknown;
  /** The exchange URL the bot last ran against live (`--exchange-url`), or null: the exchange's own. */
  readonly exchangeUrl: string | null;
  readonly status: string;
  readonly createdAt: number;
  readonly updatedAt: number;
}

export type NewBot = Omit<BotRecord, 'createdAt' | 'updatedAt' | 'status' | 'risk' | 'futures' | 'exchangeUrl'> & {
  readonly status?: string;
  readonly risk?: unknown;
  readonly futures?: unknown;
};

/** What a bot runs: replaced only on purpose (`keel paper|live --reconfigure`). */
export interface BotSettings {
  readonly strategy: string;
  readonly params: unknown;
  readonly symbols: readonly string[];
  /** The risk settings in the parser's grammar, or null (none). */
  readonly risk?: unknown;
  /** Perpetuals: leverage, margin mode and position mode per symbol, or null (a spot bot). */
  readonly futures?: unknown;
}

export interface BotRepo {
  /**
   * Creates a bot. Creating one that exists with the same definition (strategy, params, mode,
   * exchange, symbols) returns the existing record (two processes starting the same new bot);
   * with another definition it throws a `StoreConflictError` naming both.
   */
  create(bot: NewBot): Promise<BotRecord>;
  get(id: string): Promise<BotRecord | undefined>;
  list(): Promise<BotRecord[]>;
  setStatus(id: string, status: string): Promise<void>;
  /** Gives the bot another strategy, params, markets, risk or futures settings, keeping its history. */
  reconfigure(id: string, settings: BotSettings): Promise<void>;
  /** Records the exchange URL a live bot runs against (null: the exchange's own). */
  setExchangeUrl(id: string, url: string | null): Promise<void>;
}

export function botRepo({ db, clock }: RepoContext): BotRepo {
  const get = async (id: string) => {
    const r = await db.selectFrom('bots').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toBot(r);
  };
  return {
    async create(bot) {
      const now = clock.now();
      const row = {
        id: bot.id,
        strategy: bot.strategy,
        params: JSON.stringify(bot.params ?? {}),
        mode: bot.mode,
        exchange: bot.exchange,
        symbols: JSON.stringify(bot.symbols),
        risk: json(bot.risk),
        futures: json(bot.futures),
        exchange_url: null,
        status: bot.status ?? 'stopped',
        created_at: now,
        updated_at: now,
      };
      const r = await db
        .insertInto('bots')
        .values(row)
        .onConflict((oc) => oc.column('id').doNothing())
        .executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 1)
        return {
          ...bot,
          risk: bot.risk ?? null,
          futures: bot.futures ?? null,
          exchangeUrl: null,
          status: row.status,
          createdAt: now,
          updatedAt: now,
        };
      const had = toBot(await db.selectFrom('bots').selectAll().where('id', '=', bot.id).executeTakeFirstOrThrow());
      const definition = (b: NewBot) => ({
        strategy: b.strategy,
        params: b.params ?? {},
        mode: b.mode,
        exchange: b.exchange,
        symbols: b.symbols,
      });
      const stored = definition(had);
      const attempted = definition(bot);
      if (differingFields(stored, attempted).length === 0) return had;
      throw new StoreConflictError(
        'bots',
        { id: bot.id },
        stored,
        attempted,
        `bot "${bot.id}" already exists with another definition`,
        'A bot id names one bot and its history: give a new bot its own id.',
      );
    },
    get,
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
    async reconfigure(id, s) {
      const r = await db
        .updateTable('bots')
        .set({
          strategy: s.strategy,
          params: JSON.stringify(s.params ?? {}),
          symbols: JSON.stringify(s.symbols),
          risk: json(s.risk),
          futures: json(s.futures),
          updated_at: clock.now(),
        })
        .where('id', '=', id)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw new Error(`Unknown bot "${id}"`);
    },
    async setExchangeUrl(id, url) {
      const r = await db.updateTable('bots').set({ exchange_url: url }).where('id', '=', id).executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw new Error(`Unknown bot "${id}"`);
    },
  };
}

function toBot(r: Selectable<BotsTable>): BotRecord {
  return {
    id: r.id,
    strategy: r.strategy,
    params: JSON.parse(r.params) as unknown,
    mode: r.mode as BotMode,
    exchange: r.exchange,
    symbols: JSON.parse(r.symbols) as string[],
    risk: r.risk === null || r.risk === undefined ? null : (JSON.parse(r.risk) as unknown),
    futures: r.futures === null || r.futures === undefined ? null : (JSON.parse(r.futures) as unknown),
    exchangeUrl: r.exchange_url ?? null,
    status: r.status,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
  };
}

/** A nullable JSON column's text: null for none. */
function json(v: unknown): string | null {
  return v === undefined || v === null ? null : JSON.stringify(v);
}
