import { type Kysely, type Migration, PostgresAdapter, sql } from 'kysely';

/**
 * Row types of the operational store. One schema for SQLite and PostgreSQL:
 * - money and quantities are `double precision` (REAL in SQLite): Keel computes in IEEE doubles
 *   rounded to tick/step at the order boundary, and a double round-trips exactly through both
 *   engines, so the store gives back the very number the engine held (see docs/store.md);
 * - times are `bigint` UTC milliseconds (parsed back to numbers on PostgreSQL);
 * - JSON documents are `text` (same bytes on both engines, no jsonb normalisation);
 * - booleans are integers 0/1; NaN (e.g. avg price before the first fill) is stored as NULL.
 */
export interface BotsTable {
  id: string;
  strategy: string;
  params: string;
  mode: string;
  exchange: string;
  symbols: string;
  status: string;
  /** The risk settings in the parser's grammar (JSON), or null: the bot runs without a risk engine. */
  risk: string | null;
  /**
   * A perpetual bot's futures settings per symbol (leverage, margin mode, position mode; JSON), or
   * null: a spot bot, or a futures bot stored before this column (its next start records them).
   */
  futures: string | null;
  /** The exchange URL a live bot last ran against (`--exchange-url`, e.g. keel exchange-sim), or null: the exchange's own. */
  exchange_url: string | null;
  created_at: number;
  updated_at: number;
}

export interface BotLocksTable {
  bot_id: string;
  owner: string;
  acquired_at: number;
  heartbeat_at: number;
  ttl_ms: number;
}

export interface OrdersTable {
  client_order_id: string;
  bot_id: string;
  venue_order_id: string | null;
  symbol: string;
  side: string;
  type: string;
  request: string;
  status: string;
  filled: number;
  avg_price: number | null;
  fee: number;
  reason: string | null;
  triggered: number;
  stop_level: number | null;
  decision_price: number | null;
  active: number;
  created_at: number;
  updated_at: number;
}

export interface FillsTable {
  bot_id: string;
  trade_id: string;
  client_order_id: string;
  symbol: string;
  side: string;
  price: number;
  amount: number;
  fee: number;
  fee_asset: string;
  liquidity: string;
  time: number;
  tag: string | null;
  /** A hedge-mode perpetual's side ('long' or 'short'); null otherwise. */
  position_side: string | null;
  /** A fee paid outside the market (BNB) valued in the quote when it was booked (`Fill.feeValue`); null otherwise. */
  fee_value: number | null;
}

export interface PositionsTable {
  bot_id: string;
  symbol: string;
  /** A hedge-mode perpetual's side ('long' or 'short'); '' for a market's one position. */
  position_side: string;
  size: number;
  avg_price: number | null;
  realized_pnl: number;
  updated_at: number;
}

export interface BalancesTable {
  bot_id: string;
  asset: string;
  free: number;
  used: number;
  total: number;
  updated_at: number;
}

export interface StrategyStateTable {
  bot_id: string;
  state: string;
  version: number;
  updated_at: number;
}

export interface EventsTable {
  bot_id: string;
  seq: number;
  time: number;
  type: string;
  payload: string;
}

export interface SessionsTable {
  bot_id: string;
  seq: number;
  started_at: number;
  ended_at: number | null;
  report: string | null;
}

/** The key store's one row: how the encryption key is derived from the passphrase, and a verifier. */
export interface KeystoreTable {
  id: string;
  kdf: string;
  kdf_salt: string;
  kdf_n: number;
  kdf_r: number;
  kdf_p: number;
  /** A known plaintext encrypted under the derived key: tells a wrong passphrase from a tampered row. */
  verifier: string;
  created_at: number;
  /** When the passphrase (or the KDF parameters) last changed. */
  updated_at: number;
}

/** Exchange API keys, encrypted (AES-256-GCM, `v1:` + base64 of iv | tag | ciphertext). */
export interface ExchangeKeysTable {
  name: string;
  exchange: string;
  api_key_enc: string;
  secret_enc: string;
  password_enc: string | null;
  uid_enc: string | null;
  /** Not secret: the last characters of the api key, for listing. */
  fingerprint: string;
  created_at: number;
  /** When the credentials were last replaced (`keys add --replace`); null if never. */
  rotated_at: number | null;
}

/**
 * A request that one running instance of a bot stop (`keel bots stop`), addressed to the lock
 * holder it was made to (`owner`), so that a later instance never takes it for its own.
 */
export interface BotStopRequestsTable {
  bot_id: string;
  owner: string;
  requested_by: string;
  requested_at: number;
}

/** The bars a bot saw, once per feed and bar time (what `keel bots parity` backtests). */
export interface BotBarsTable {
  bot_id: string;
  feed: string;
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
}

/** How one session of a bot was set up (strategy, params, markets, fill model, starting state). */
export interface SessionSetupsTable {
  bot_id: string;
  seq: number;
  setup: string;
}

/** One backtest run as `keel backtests list|show|compare` read it (JSON documents as text). */
export interface BacktestsTable {
  id: number;
  created_at: number;
  strategy: string;
  params: string;
  symbols: string;
  timeframe: string;
  /** Open time of the first and of the last bar replayed (null: no bar). */
  first_bar: number | null;
  last_bar: number | null;
  /** How the run was set up (cash, fees, risk, data sources), JSON. */
  settings: string;
  metrics: string;
  pairs: string;
  /** The summary as the terminal showed it. */
  summary: string;
}

/**
 * The whole result of a run and its chart, compressed (base64 text: same on both engines). `bars`
 * holds the chart (named for what it first held); `bars_hash` names the run's bars in
 * `backtest_bars` (null: a run saved before migration 0008, its bars inside the chart).
 */
export interface BacktestArtifactsTable {
  backtest_id: number;
  result: string;
  bars: string;
  bars_hash: string | null;
}

/**
 * A backtest's bars, stored once however many runs replayed them: keyed by the SHA-256 (hex) of
 * their six float64 columns (time, open, high, low, close, volume), compressed. A row no run refers
 * to is deleted with the last run that did.
 */
export interface BacktestBarsTable {
  hash: string;
  /** How many bars the columns hold. */
  bars: number;
  /** BLOB (SQLite) or bytea (PostgreSQL): the compressed columns. */
  data: Uint8Array;
}

/** Named counters that only go up: `backtests` holds the last backtest id given (never reused). */
export interface CountersTable {
  name: string;
  value: number;
}

/**
 * A bot's risk engine between runs: its state (halts and locks in force, the protections' memory,
 * the run-level exits), the halts in force and the denials by rule for `keel bots status`, and a
 * resume asked for with `keel bots resume` that the bot has not applied yet.
 */
export interface BotRiskTable {
  bot_id: string;
  /** The risk engine's snapshot (JSON, `keel.risk-state`), or null before the first save. */
  state: string | null;
  /** JSON array of the halts and locks in force when saved. */
  halts: string;
  /** JSON object: denials by rule since the bot was created. */
  denied: string;
  resume_by: string | null;
  resume_at: number | null;
  updated_at: number;
}

export interface KeelDb {
  keystore: KeystoreTable;
  exchange_keys: ExchangeKeysTable;
  bots: BotsTable;
  bot_locks: BotLocksTable;
  orders: OrdersTable;
  fills: FillsTable;
  positions: PositionsTable;
  balances: BalancesTable;
  strategy_state: StrategyStateTable;
  events: EventsTable;
  sessions: SessionsTable;
  bot_stop_requests: BotStopRequestsTable;
  bot_bars: BotBarsTable;
  session_setups: SessionSetupsTable;
  backtests: BacktestsTable;
  backtest_artifacts: BacktestArtifactsTable;
  backtest_bars: BacktestBarsTable;
  counters: CountersTable;
  bot_risk: BotRiskTable;
}

// biome-ignore lint/suspicious/noExplicitAny: migrations run against the schema as it was then, not KeelDb
type AnyDb = Kysely<any>;

const DOUBLE = 'double precision';

/**
 * In-code migrations, applied in name order by Kysely's Migrator on open. A released migration
 * is never edited: a schema change is a new entry.
 */
export const MIGRATIONS: Record<string, Migration> = {
  '0001_initial': {
    async up(db: AnyDb): Promise<void> {
      await db.schema
        .createTable('bots')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('strategy', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('mode', 'text', (c) => c.notNull().check(sqlIn('mode', ['paper', 'live'])))
        .addColumn('exchange', 'text', (c) => c.notNull())
        .addColumn('symbols', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('bot_locks')
        .addColumn('bot_id', 'text', (c) => c.primaryKey().references('bots.id').onDelete('cascade'))
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('acquired_at', 'bigint', (c) => c.notNull())
        .addColumn('heartbeat_at', 'bigint', (c) => c.notNull())
        .addColumn('ttl_ms', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('orders')
        .addColumn('client_order_id', 'text', (c) => c.primaryKey())
        .addColumn('bot_id', 'text', (c) => c.notNull().references('bots.id').onDelete('cascade'))
        .addColumn('venue_order_id', 'text')
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('side', 'text', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('request', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('filled', DOUBLE, (c) => c.notNull())
        .addColumn('avg_price', DOUBLE)
        .addColumn('fee', DOUBLE, (c) => c.notNull())
        .addColumn('reason', 'text')
        .addColumn('triggered', 'integer', (c) => c.notNull())
        .addColumn('stop_level', DOUBLE)
        .addColumn('decision_price', DOUBLE)
        .addColumn('active', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('orders_bot_status').on('orders').columns(['bot_id', 'status']).execute();
      await db.schema.createIndex('orders_venue_id').on('orders').columns(['bot_id', 'venue_order_id']).execute();

      await db.schema
        .createTable('fills')
        .addColumn('bot_id', 'text', (c) => c.notNull().references('bots.id').onDelete('cascade'))
        .addColumn('trade_id', 'text', (c) => c.notNull())
        .addColumn('client_order_id', 'text', (c) => c.notNull())
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('side', 'text', (c) => c.notNull())
        .addColumn('price', DOUBLE, (c) => c.notNull())
        .addColumn('amount', DOUBLE, (c) => c.notNull())
        .addColumn('fee', DOUBLE, (c) => c.notNull())
        .addColumn('fee_asset', 'text', (c) => c.notNull())
        .addColumn('liquidity', 'text', (c) => c.notNull())
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('tag', 'text')
        // A trade id is unique per venue; a bot trades on one venue, so (bot, trade) is the key
        // that makes recording the same fill twice a no-op.
        .addPrimaryKeyConstraint('fills_pk', ['bot_id', 'trade_id'])
        .execute();
      await db.schema.createIndex('fills_order').on('fills').columns(['bot_id', 'client_order_id']).execute();
      await db.schema.createIndex('fills_time').on('fills').columns(['bot_id', 'time']).execute();

      await db.schema
        .createTable('positions')
        .addColumn('bot_id', 'text', (c) => c.notNull().references('bots.id').onDelete('cascade'))
        .addColumn('symbol', 'text', (c) => c.notNull())
        .addColumn('size', DOUBLE, (c) => c.notNull())
        .addColumn('avg_price', DOUBLE)
        .addColumn('realized_pnl', DOUBLE, (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('positions_pk', ['bot_id', 'symbol'])
        .execute();

      await db.schema
        .createTable('balances')
        .addColumn('bot_id', 'text', (c) => c.notNull().references('bots.id').onDelete('cascade'))
        .addColumn('asset', 'text', (c) => c.notNull())
        .addColumn('free', DOUBLE, (c) => c.notNull())
        .addColumn('used', DOUBLE, (c) => c.notNull())
        .addColumn('total', DOUBLE, (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('balances_pk', ['bot_id', 'asset'])
        .execute();

      await db.schema
        .createTable('strategy_state')
        .addColumn('bot_id', 'text', (c) => c.primaryKey().references('bots.id').onDelete('cascade'))
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();

      await db.schema
        .createTable('events')
        .addColumn('bot_id', 'text', (c) => c.notNull().references('bots.id').onDelete('cascade'))
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('type', 'text', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('events_pk', ['bot_id', 'seq'])
        .execute();

      await db.schema
        .createTable('sessions')
        .addColumn('bot_id', 'text', (c) => c.notNull().references('bots.id').onDelete('cascade'))
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('started_at', 'bigint', (c) => c.notNull())
        .addColumn('ended_at', 'bigint')
        .addColumn('report', 'text')
        .addPrimaryKeyConstraint('sessions_pk', ['bot_id', 'seq'])
        .execute();
    },
    async down(db: AnyDb): Promise<void> {
      for (const t of [
        'sessions',
        'events',
        'strategy_state',
        'balances',
        'positions',
        'fills',
        'orders',
        'bot_locks',
        'bots',
      ]) {
        await db.schema.dropTable(t).ifExists().execute();
      }
    },
  },
  '0002_exchange_keys': {
    async up(db: AnyDb): Promise<void> {
      await db.schema
        .createTable('keystore')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kdf', 'text', (c) => c.notNull())
        .addColumn('kdf_salt', 'text', (c) => c.notNull())
        .addColumn('kdf_n', 'bigint', (c) => c.notNull())
        .addColumn('kdf_r', 'integer', (c) => c.notNull())
        .addColumn('kdf_p', 'integer', (c) => c.notNull())
        .addColumn('verifier', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('exchange_keys')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('exchange', 'text', (c) => c.notNull())
        .addColumn('api_key_enc', 'text', (c) => c.notNull())
        .addColumn('secret_enc', 'text', (c) => c.notNull())
        .addColumn('password_enc', 'text')
        .addColumn('uid_enc', 'text')
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('rotated_at', 'bigint')
        .execute();
    },
    async down(db: AnyDb): Promise<void> {
      await db.schema.dropTable('exchange_keys').ifExists().execute();
      await db.schema.dropTable('keystore').ifExists().execute();
    },
  },
  '0003_bot_operations': {
    async up(db: AnyDb): Promise<void> {
      await db.schema
        .createTable('bot_stop_requests')
        .addColumn('bot_id', 'text', (c) => c.primaryKey().references('bots.id').onDelete('cascade'))
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('requested_by', 'text', (c) => c.notNull())
        .addColumn('requested_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('bot_bars')
        .addColumn('bot_id', 'text', (c) => c.notNull().references('bots.id').onDelete('cascade'))
        .addColumn('feed', 'text', (c) => c.notNull())
        .addColumn('time', 'bigint', (c) => c.notNull())
        .addColumn('open', DOUBLE, (c) => c.notNull())
        .addColumn('high', DOUBLE, (c) => c.notNull())
        .addColumn('low', DOUBLE, (c) => c.notNull())
        .addColumn('close', DOUBLE, (c) => c.notNull())
        .addColumn('volume', DOUBLE, (c) => c.notNull())
        .addPrimaryKeyConstraint('bot_bars_pk', ['bot_id', 'feed', 'time'])
        .execute();
      await db.schema
        .createTable('session_setups')
        .addColumn('bot_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('setup', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('session_setups_pk', ['bot_id', 'seq'])
        .addForeignKeyConstraint('session_setups_session', ['bot_id', 'seq'], 'sessions', ['bot_id', 'seq'], (c) =>
          c.onDelete('cascade'),
        )
        .execute();
    },
    async down(db: AnyDb): Promise<void> {
      for (const t of ['session_setups', 'bot_bars', 'bot_stop_requests'])
        await db.schema.dropTable(t).ifExists().execute();
    },
  },
  '0004_backtests': {
    async up(db: AnyDb): Promise<void> {
      await db.schema
        .createTable('backtests')
        .addColumn('id', 'bigint', (c) => c.primaryKey())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('strategy', 'text', (c) => c.notNull())
        .addColumn('params', 'text', (c) => c.notNull())
        .addColumn('symbols', 'text', (c) => c.notNull())
        .addColumn('timeframe', 'text', (c) => c.notNull())
        .addColumn('first_bar', 'bigint')
        .addColumn('last_bar', 'bigint')
        .addColumn('settings', 'text', (c) => c.notNull())
        .addColumn('metrics', 'text', (c) => c.notNull())
        .addColumn('pairs', 'text', (c) => c.notNull())
        .addColumn('summary', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('backtest_artifacts')
        .addColumn('backtest_id', 'bigint', (c) => c.primaryKey().references('backtests.id').onDelete('cascade'))
        .addColumn('result', 'text', (c) => c.notNull())
        .addColumn('bars', 'text', (c) => c.notNull())
        .execute();
    },
    async down(db: AnyDb): Promise<void> {
      for (const t of ['backtest_artifacts', 'backtests']) await db.schema.dropTable(t).ifExists().execute();
    },
  },
  '0005_bot_risk': {
    async up(db: AnyDb): Promise<void> {
      await db.schema.alterTable('bots').addColumn('risk', 'text').execute();
      await db.schema
        .createTable('bot_risk')
        .addColumn('bot_id', 'text', (c) => c.primaryKey().references('bots.id').onDelete('cascade'))
        .addColumn('state', 'text')
        .addColumn('halts', 'text', (c) => c.notNull())
        .addColumn('denied', 'text', (c) => c.notNull())
        .addColumn('resume_by', 'text')
        .addColumn('resume_at', 'bigint')
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db: AnyDb): Promise<void> {
      await db.schema.dropTable('bot_risk').ifExists().execute();
      await db.schema.alterTable('bots').dropColumn('risk').execute();
    },
  },
  '0006_hedge_sides': {
    // A hedge-mode perpetual holds a long and a short position: positions are keyed by side too
    // ('' for a market's one position), and a fill names its side. SQLite cannot change a primary
    // key in place: the table is rebuilt.
    async up(db: AnyDb): Promise<void> {
      await db.schema.alterTable('fills').addColumn('position_side', 'text').execute();
      await positionsTable(db, 'positions_sides', true);
      await sql`insert into positions_sides (bot_id, symbol, position_side, size, avg_price, realized_pnl, updated_at)
        select bot_id, symbol, '', size, avg_price, realized_pnl, updated_at from positions`.execute(db);
      await db.schema.dropTable('positions').execute();
      await db.schema.alterTable('positions_sides').renameTo('positions').execute();
    },
    async down(db: AnyDb): Promise<void> {
      await positionsTable(db, 'positions_one', false);
      await sql`insert into positions_one (bot_id, symbol, size, avg_price, realized_pnl, updated_at)
        select bot_id, symbol, size, avg_price, realized_pnl, updated_at from positions where position_side = ''`.execute(
        db,
      );
      await db.schema.dropTable('positions').execute();
      await db.schema.alterTable('positions_one').renameTo('positions').execute();
      await db.schema.alterTable('fills').dropColumn('position_side').execute();
    },
  },
  '0007_bot_futures': {
    // A futures bot's leverage, margin mode and position mode are part of what it runs, as its
    // params are: a start with others is refused without --reconfigure.
    async up(db: AnyDb): Promise<void> {
      await db.schema.alterTable('bots').addColumn('futures', 'text').execute();
    },
    async down(db: AnyDb): Promise<void> {
      await db.schema.alterTable('bots').dropColumn('futures').execute();
    },
  },
  '0008_backtest_space': {
    // Backtest ids come from a counter, so that a deleted run's id is never given to another (max
    // + 1 gave the newest run's id again once it was deleted); it starts at the largest id kept.
    // Bars are stored once per content (backtest_bars), in a binary column: no base64 to make.
    async up(db: AnyDb): Promise<void> {
      await db.schema
        .createTable('counters')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'bigint', (c) => c.notNull())
        .execute();
      await sql`insert into counters (name, value) select 'backtests', coalesce(max(id), 0) from backtests`.execute(db);
      await db.schema
        .createTable('backtest_bars')
        .addColumn('hash', 'text', (c) => c.primaryKey())
        .addColumn('bars', 'bigint', (c) => c.notNull())
        .addColumn('data', db.getExecutor().adapter instanceof PostgresAdapter ? 'bytea' : 'blob', (c) => c.notNull())
        .execute();
      await db.schema
        .alterTable('backtest_artifacts')
        .addColumn('bars_hash', 'text', (c) => c.references('backtest_bars.hash'))
        .execute();
      await db.schema.createIndex('backtest_artifacts_bars').on('backtest_artifacts').column('bars_hash').execute();
    },
    // A run whose bars are stored apart has no form before it: going back refuses while one is kept.
    // SQLite cannot drop a column that references another table: backtest_artifacts is rebuilt.
    async down(db: AnyDb): Promise<void> {
      const apart = await sql<{
        n: number;
      }>`select count(*) as n from backtest_artifacts where bars_hash is not null`.execute(db);
      const n = Number(apart.rows[0]?.n ?? 0);
      if (n > 0) throw new Error(`${n} backtest run(s) keep their bars apart (migration 0008): delete them first`);
      await db.schema.dropIndex('backtest_artifacts_bars').execute();
      await db.schema
        .createTable('backtest_artifacts_0007')
        .addColumn('backtest_id', 'bigint', (c) => c.primaryKey().references('backtests.id').onDelete('cascade'))
        .addColumn('result', 'text', (c) => c.notNull())
        .addColumn('bars', 'text', (c) => c.notNull())
        .execute();
      await sql`insert into backtest_artifacts_0007 (backtest_id, result, bars) select backtest_id, result, bars from backtest_artifacts`.execute(
        db,
      );
      await db.schema.dropTable('backtest_artifacts').execute();
      await db.schema.alterTable('backtest_artifacts_0007').renameTo('backtest_artifacts').execute();
      await db.schema.dropTable('backtest_bars').execute();
      await db.schema.dropTable('counters').execute();
    },
  },
  '0009_fill_fee_value': {
    // A fee paid outside its market (Binance's commission in BNB) keeps the value it was booked
    // at, so that the bot's fees add up to the same after a restart.
    async up(db: AnyDb): Promise<void> {
      await db.schema.alterTable('fills').addColumn('fee_value', DOUBLE).execute();
    },
    async down(db: AnyDb): Promise<void> {
      await db.schema.alterTable('fills').dropColumn('fee_value').execute();
    },
  },
  '0010_bot_exchange_url': {
    // Where a live bot last traded (a simulator's URL, say): what `keel bots reconcile` asks by
    // default, rather than the exchange's public endpoint.
    async up(db: AnyDb): Promise<void> {
      await db.schema.alterTable('bots').addColumn('exchange_url', 'text').execute();
    },
    async down(db: AnyDb): Promise<void> {
      await db.schema.alterTable('bots').dropColumn('exchange_url').execute();
    },
  },
};

/** The positions table, with or without the side in its key (migration 0006). */
async function positionsTable(db: AnyDb, name: string, sides: boolean): Promise<void> {
  let t = db.schema
    .createTable(name)
    .addColumn('bot_id', 'text', (c) => c.notNull().references('bots.id').onDelete('cascade'))
    .addColumn('symbol', 'text', (c) => c.notNull());
  if (sides) t = t.addColumn('position_side', 'text', (c) => c.notNull().defaultTo(''));
  await t
    .addColumn('size', DOUBLE, (c) => c.notNull())
    .addColumn('avg_price', DOUBLE)
    .addColumn('realized_pnl', DOUBLE, (c) => c.notNull())
    .addColumn('updated_at', 'bigint', (c) => c.notNull())
    // (the builder's column names are typed from the columns added without the condition)
    .addPrimaryKeyConstraint(
      `${name}_pk`,
      (sides ? ['bot_id', 'symbol', 'position_side'] : ['bot_id', 'symbol']) as never,
    )
    .execute();
}

function sqlIn(col: string, values: readonly string[]) {
  return sql`${sql.ref(col)} in (${sql.join(values.map((v) => sql.lit(v)))})`;
}
