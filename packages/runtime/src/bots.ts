import { hostname, userInfo } from 'node:os';
import {
  defineInstrument,
  feedId,
  type Instrument,
  type OrderState,
  parseRiskConfig,
  type RiskHalt,
  type RiskInput,
  riskConfigText,
  TERMINAL_STATUSES,
} from '@keel/core';
import { systemTimer, type Timer } from '@keel/exchange';
import type { BotMode, BotRecord, SessionRecord, Store } from '@keel/store';
import type { SessionReport } from './bot.ts';
import { iso as isoOf } from './parity-difference.ts';
import { type PnlTotals, pnlOf } from './pnl.ts';
import { isSessionSetup, type SessionSetup } from './session.ts';

/**
 * What a bot is doing, judged from the store alone (any host):
 * - `running`: its lock is held and the holder's heartbeat is within the lock's TTL;
 * - `stopping`: running, and a stop was requested of that holder;
 * - `crashed`: it was running, but no instance holds a live lock (killed, or its host is gone):
 *   the next start reconciles;
 * - `stopped`: it stopped gracefully (or never ran).
 */
export type BotState = 'running' | 'stopping' | 'crashed' | 'stopped';

export interface BotHolder {
  /** `host:pid:nonce` of the running instance. */
  readonly owner: string;
  readonly heartbeatAt: string;
  readonly ttlMs: number;
}

export interface BotSummary {
  readonly id: string;
  readonly state: BotState;
  readonly mode: BotMode;
  readonly strategy: string;
  readonly symbols: readonly string[];
  readonly exchange: string;
  /** When its current (or last) session started; null if it never ran. */
  readonly started: string | null;
  /** Open time of the last bar it handled (latest over its feeds); null if none. */
  readonly lastBar: string | null;
  readonly trades: number;
  readonly realizedPnlNet: number;
}

export interface PositionStatus {
  readonly symbol: string;
  /** One side of a hedge-mode perpetual (absent: the market's one position). */
  readonly positionSide?: 'long' | 'short';
  readonly size: number;
  /**
   * Flat: no position, or one smaller than the market's step (what the fills' arithmetic leaves,
   * -5.6e-17, or dust): nothing the bot can trade; it has no entry and no unrealised PnL.
   */
  readonly flat: boolean;
  /** The market's amount step (0 when the bot's instruments are not known): a person's table rounds to it. */
  readonly stepSize: number;
  /** Average entry price; null when flat. */
  readonly entry: number | null;
  /** The close of the last bar the bot saw of this market, and that bar's open time. */
  readonly lastPrice: number | null;
  readonly lastPriceAt: string | null;
  /** size * (lastPrice - entry) in the quote currency; null when flat or without a price. */
  readonly unrealizedPnl: number | null;
}

export interface OpenOrderStatus {
  readonly id: string;
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  readonly type: string;
  readonly amount: number;
  readonly filled: number;
  /** Limit or stop price (a trailing stop: its current level); null for market orders. */
  readonly price: number | null;
  readonly status: string;
  readonly createdAt: string;
}

export interface BotStatus extends PnlTotals {
  readonly id: string;
  readonly state: BotState;
  readonly mode: BotMode;
  readonly strategy: string;
  readonly params: unknown;
  readonly symbols: readonly string[];
  readonly exchange: string;
  readonly holder: BotHolder | null;
  readonly stopRequest: { readonly by: string; readonly at: string } | null;
  /** The current (or last) session. */
  readonly session: {
    readonly seq: number;
    readonly startedAt: string;
    readonly endedAt: string | null;
    /** Why it ended (from its report); null while it runs or when it crashed. */
    readonly reason: string | null;
  } | null;
  readonly started: string | null;
  /** Per feed (`BTC/USDT@1m`): open time of the last bar handled. */
  readonly lastBar: Readonly<Record<string, string>>;
  readonly openOrders: readonly OpenOrderStatus[];
  readonly positions: readonly PositionStatus[];
  readonly balances: readonly { asset: string; free: number; used: number; total: number }[];
  /** The last error the bot logged or its strategy threw; null if none. */
  readonly lastError: { readonly at: string; readonly message: string } | null;
  /** Its risk settings, halts and denials; null for a bot without risk settings. */
  readonly risk: RiskStatus | null;
}

export interface RiskStatus {
  /** The settings as flags (`--risk max-drawdown=0.2:flatten:resume`). */
  readonly settings: readonly string[];
  /** Halts and locks in force when the bot last saved its state (time = the bar close it knew). */
  readonly halts: readonly (RiskHalt & { readonly sinceIso: string; readonly untilIso: string | null })[];
  /** Denials by rule since the bot was created. */
  readonly denied: Readonly<Record<string, number>>;
  readonly deniedTotal: number;
  /** A `keel bots resume` the bot has not applied yet (it applies it when it runs). */
  readonly resumeRequest: { readonly by: string; readonly at: string } | null;
}

/** Thrown for a bot id the store does not have. */
export class UnknownBotError extends Error {
  constructor(
    readonly botId: string,
    known: readonly string[],
  ) {
    super(
      `no bot "${botId}" in this store${known.length > 0 ? ` (bots: ${known.join(', ')})` : ' (it has no bots yet)'}`,
    );
    this.name = 'UnknownBotError';
  }
}

/** Every bot of the store, by id. */
export async function listBots(store: Store, clock: { now(): number } = systemTimer): Promise<BotSummary[]> {
  const out: BotSummary[] = [];
  for (const b of await store.bots.list()) {
    const [state, sessions, setups, last, fills] = await Promise.all([
      botState(store, b, clock.now()),
      store.sessions.list(b.id),
      store.setups.list(b.id),
      store.state.load(b.id),
      store.fills.since(b.id, 0),
    ]);
    const pnl = pnlOf(fills, instrumentsOf(b, latestSetup(setups)));
    const times = Object.values(lastBarTimes(last?.state));
    out.push({
      id: b.id,
      state: state.state,
      mode: b.mode,
      strategy: b.strategy,
      symbols: b.symbols,
      exchange: b.exchange,
      started: iso(sessions.at(-1)?.startedAt),
      lastBar: times.length > 0 ? iso(Math.max(...times)) : null,
      trades: pnl.trades,
      realizedPnlNet: pnl.realizedPnlNet,
    });
  }
  return out;
}

/** Everything about one bot a person looks for: state, settings, orders, positions, money, errors. */
export async function botStatus(
  store: Store,
  botId: string,
  clock: { now(): number } = systemTimer,
): Promise<BotStatus> {
  const b = await botNamed(store, botId);
  const [state, sessions, setups, stateRow, fills, open, positions, balances, lastError, risk] = await Promise.all([
    botState(store, b, clock.now()),
    store.sessions.list(botId),
    store.setups.list(botId),
    store.state.load(botId),
    store.fills.since(botId, 0),
    store.orders.open(botId),
    store.positions.load(botId),
    store.balances.load(botId),
    lastErrorOf(store, botId),
    riskStatus(store, b),
  ]);
  const setup = latestSetup(setups);
  const instruments = instrumentsOf(b, setup);
  const pnl = pnlOf(fills, instruments);
  const session = sessions.at(-1);
  const lastBar = lastBarTimes(stateRow?.state);
  const posOut: PositionStatus[] = [];
  for (const p of positions) {
    const inst = instruments.find((i) => i.symbol === p.symbol);
    const bar = await lastBarOf(store, botId, p.symbol, setup);
    const step = inst?.stepSize ?? 0;
    const flat = p.size === 0 || Number.isNaN(p.avgPrice) || Math.abs(p.size) < step;
    posOut.push({
      symbol: p.symbol,
      ...(p.positionSide !== undefined ? { positionSide: p.positionSide } : {}),
      size: p.size,
      flat,
      stepSize: step,
      entry: flat ? null : p.avgPrice,
      lastPrice: bar?.close ?? null,
      lastPriceAt: iso(bar?.time),
      unrealizedPnl: flat || bar === undefined ? null : p.size * (bar.close - p.avgPrice) * (inst?.contractSize ?? 1),
    });
  }
  return {
    id: b.id,
    state: state.state,
    mode: b.mode,
    strategy: b.strategy,
    params: b.params,
    symbols: b.symbols,
    exchange: b.exchange,
    holder: state.holder,
    stopRequest: state.stopRequest,
    session: session
      ? {
          seq: session.seq,
          startedAt: iso(session.startedAt) as string,
          endedAt: iso(session.endedAt ?? undefined),
          reason: reportOf(session)?.reason ?? null,
        }
      : null,
    started: iso(session?.startedAt),
    lastBar: Object.fromEntries(Object.entries(lastBar).map(([k, v]) => [k, iso(v) as string])),
    openOrders: open.map(openOrderStatus),
    positions: posOut,
    balances,
    ...pnl,
    lastError,
    risk,
  };
}

async function riskStatus(store: Store, b: BotRecord): Promise<RiskStatus | null> {
  const row = await store.risk.load(b.id);
  if ((b.risk === null || b.risk === undefined) && row === undefined) return null;
  const parsed = b.risk === null || b.risk === undefined ? undefined : parseRiskConfig(b.risk as RiskInput);
  const halts = (row?.halts ?? []) as RiskHalt[];
  const denied = row?.denied ?? {};
  return {
    settings: parsed?.ok ? riskConfigText(parsed.config) : [],
    halts: halts.map((h) => ({
      ...h,
      sinceIso: iso(h.since) as string,
      untilIso: h.until === null ? null : (iso(h.until) as string),
    })),
    denied,
    deniedTotal: Object.values(denied).reduce((a, n) => a + n, 0),
    resumeRequest: row?.resume ? { by: row.resume.by, at: iso(row.resume.at) as string } : null,
  };
}

export type ResumeOutcome =
  /** The running bot applied it: these halts and locks ended. */
  | { readonly kind: 'resumed'; readonly ended: readonly RiskHalt[] }
  /** Recorded; the bot is not running and applies it before the first bar it trades. */
  | { readonly kind: 'requested'; readonly state: BotState; readonly halts: readonly RiskHalt[] }
  /** The running bot has not applied it within the wait. */
  | { readonly kind: 'timeout'; readonly waitedMs: number }
  /** The bot runs without risk settings: there is nothing to resume. */
  | { readonly kind: 'no-risk' };

/**
 * Ends a bot's halts and locks (`keel bots resume <id>`): the one action that lifts a halt that
 * lasts until resumed. The request goes through the store; a running bot applies it between two
 * bars (within `BotConfig.stopPollMs`) and every protection starts afresh from its equity then;
 * a stopped or crashed bot applies it when it next starts, before the first bar it trades.
 */
export async function resumeBot(
  store: Store,
  botId: string,
  opts: Omit<StopOptions, 'wait'> & { readonly wait?: boolean } = {},
): Promise<ResumeOutcome> {
  const timer = opts.timer ?? systemTimer;
  const b = await botNamed(store, botId);
  const before = await store.risk.load(botId);
  if ((b.risk === null || b.risk === undefined) && before === undefined) return { kind: 'no-risk' };
  const halts = (before?.halts ?? []) as RiskHalt[];
  const req = await store.risk.requestResume(botId, opts.by ?? defaultRequester());
  const st = await botState(store, b, timer.now());
  if (st.holder === null || opts.wait === false) return { kind: 'requested', state: st.state, halts };
  const start = timer.now();
  const timeout = opts.timeoutMs ?? 60_000;
  for (;;) {
    const row = await store.risk.load(botId);
    if (row?.resume?.at !== req.at) return { kind: 'resumed', ended: halts };
    if (timer.now() - start >= timeout) return { kind: 'timeout', waitedMs: timer.now() - start };
    await timer.sleep(opts.pollMs ?? 200);
  }
}

/** The bot with this id, or an `UnknownBotError` naming the store's bots. */
async function botNamed(store: Store, botId: string): Promise<BotRecord> {
  const b = await store.bots.get(botId);
  if (!b)
    throw new UnknownBotError(
      botId,
      (await store.bots.list()).map((x) => x.id),
    );
  return b;
}

export type StopOutcome =
  /** It stopped; `report` is what it reported (null if it ended without one: it crashed meanwhile). */
  | { readonly kind: 'stopped'; readonly owner: string; readonly report: SessionReport | null }
  /** No instance is running; `state` says whether it stopped or crashed, `report` is its last. */
  | { readonly kind: 'not-running'; readonly state: BotState; readonly report: SessionReport | null }
  /** Asked, but it has not stopped within the wait (it is still shutting down, or it hangs). */
  | { readonly kind: 'timeout'; readonly owner: string; readonly waitedMs: number }
  /** Asked, not waited for (`wait: false`). */
  | { readonly kind: 'requested'; readonly owner: string };

export interface StopOptions {
  /** Who asks (shown in the bot's log). Default `user@host`. */
  readonly by?: string;
  /** Wait for the bot to stop. Default true. */
  readonly wait?: boolean;
  /** Longest wait. Default 60 s: cancelling orders, flattening and the report take a while. */
  readonly timeoutMs?: number;
  /** How often the store is read while waiting. Default 200 ms. */
  readonly pollMs?: number;
  readonly timer?: Timer;
}

/**
 * Asks the running instance of a bot to stop, through the store (it may run on another host
 * that shares a PostgreSQL store): the request is addressed to the current lock holder, which
 * notices it within `BotConfig.stopPollMs` and shuts down as on SIGTERM (its `--on-shutdown`
 * policy). Then waits until it has released its lock and returns its session report.
 */
export async function requestStop(store: Store, botId: string, opts: StopOptions = {}): Promise<StopOutcome> {
  const timer = opts.timer ?? systemTimer;
  const b = await botNamed(store, botId);
  const st = await botState(store, b, timer.now());
  if (st.holder === null) {
    const last = (await store.sessions.list(botId)).at(-1);
    return { kind: 'not-running', state: st.state, report: last ? reportOf(last) : null };
  }
  const owner = st.holder.owner;
  await store.stopRequests.request(botId, owner, opts.by ?? defaultRequester());
  if (opts.wait === false) return { kind: 'requested', owner };
  const start = timer.now();
  const timeout = opts.timeoutMs ?? 60_000;
  for (;;) {
    const h = await store.locks.holder(botId);
    if (h === undefined || h.owner !== owner || timer.now() - h.heartbeatAt > h.ttlMs) break;
    if (timer.now() - start >= timeout) return { kind: 'timeout', owner, waitedMs: timer.now() - start };
    await timer.sleep(opts.pollMs ?? 200);
  }
  const last = (await store.sessions.list(botId)).at(-1);
  return { kind: 'stopped', owner, report: last ? reportOf(last) : null };
}

async function botState(
  store: Store,
  b: BotRecord,
  now: number,
): Promise<{ state: BotState; holder: BotHolder | null; stopRequest: { by: string; at: string } | null }> {
  const [h, req] = await Promise.all([store.locks.holder(b.id), store.stopRequests.get(b.id)]);
  const live = h !== undefined && now - h.heartbeatAt <= h.ttlMs;
  const holder = live ? { owner: h.owner, heartbeatAt: iso(h.heartbeatAt) as string, ttlMs: h.ttlMs } : null;
  const asked = live && req !== undefined && req.owner === h.owner;
  const stopRequest = asked ? { by: req.by, at: iso(req.at) as string } : null;
  const state: BotState = live ? (asked ? 'stopping' : 'running') : b.status === 'running' ? 'crashed' : 'stopped';
  return { state, holder, stopRequest };
}

function defaultRequester(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry (a container): the host still says where it came from.
  }
  return `${user}@${hostname()} (pid ${process.pid})`;
}

function latestSetup(setups: readonly { setup: unknown }[]): SessionSetup | undefined {
  for (let i = setups.length - 1; i >= 0; i--) {
    const s = setups[i]?.setup;
    if (isSessionSetup(s)) return s;
  }
  return undefined;
}

function instrumentsOf(b: BotRecord, setup: SessionSetup | undefined): Instrument[] {
  if (setup) return [...setup.instruments];
  return b.symbols.map((symbol) => defineInstrument({ symbol }));
}

function lastBarTimes(state: unknown): Record<string, number> {
  const m = (state as { lastBarTime?: Record<string, number> } | undefined)?.lastBarTime;
  return m && typeof m === 'object' ? m : {};
}

/** The last recorded bar of a market, over the feeds the bot had of it. */
async function lastBarOf(store: Store, botId: string, symbol: string, setup: SessionSetup | undefined) {
  const feeds = setup ? setup.feeds.filter((f) => f.symbol === symbol).map(feedId) : [];
  let best: { time: number; close: number } | undefined;
  for (const f of feeds) {
    const bar = await store.barLog.last(botId, f);
    if (bar && (best === undefined || bar.time > best.time)) best = bar;
  }
  return best;
}

function reportOf(s: SessionRecord): SessionReport | null {
  return s.report !== null && typeof s.report === 'object' ? (s.report as SessionReport) : null;
}

const TERMINAL = new Set<string>(TERMINAL_STATUSES);

function openOrderStatus(o: OrderState): OpenOrderStatus {
  const r = o.request;
  const price =
    r.type === 'limit' || r.type === 'stop-limit'
      ? r.price
      : r.type === 'stop-market'
        ? r.stopPrice
        : r.type === 'trailing-stop' && Number.isFinite(o.stopLevel)
          ? o.stopLevel
          : null;
  if (TERMINAL.has(o.status)) throw new Error(`Invariant violated: order ${r.id} in the open list is ${o.status}`);
  return {
    id: r.id,
    symbol: r.symbol,
    side: r.side,
    type: r.type,
    amount: r.amount,
    filled: o.filled,
    price,
    status: o.status,
    createdAt: iso(o.createdAt) as string,
  };
}

/** Error events: what the bot logged as an error, and what its strategy threw. */
const ERROR_EVENTS = ['error', 'strategy.error'];

async function lastErrorOf(store: Store, botId: string): Promise<BotStatus['lastError']> {
  // The event journal grows with every order change: read only the last error, not the journal.
  const r = await store.db
    .selectFrom('events')
    .select(['time', 'type', 'payload'])
    .where('bot_id', '=', botId)
    .where('type', 'in', ERROR_EVENTS)
    .orderBy('seq', 'desc')
    .limit(1)
    .executeTakeFirst();
  if (!r) return null;
  const p = JSON.parse(r.payload) as { message?: unknown; hook?: unknown };
  const message = String(p.message ?? '');
  return {
    at: iso(Number(r.time)) as string,
    message: r.type === 'strategy.error' ? `strategy error in ${String(p.hook)}: ${message}` : message,
  };
}

function iso(t: number | undefined): string | null {
  return t === undefined ? null : isoOf(t);
}
