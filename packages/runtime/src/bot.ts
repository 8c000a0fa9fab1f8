import { hostname } from 'node:os';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  Account,
  type AnyStrategy,
  type Bar,
  type ClientOrderId,
  copyBar,
  type Engine,
  type EngineEvent,
  type ExchangeCloseRecord,
  emptyBar,
  type FeedKey,
  type Fill,
  FuturesBook,
  type FuturesBookState,
  type FuturesMarketSettings,
  type FuturesSummary,
  feedId,
  type Instrument,
  isOutsideFee,
  isTerminal,
  type OrderState,
  percentFee,
  type RiskConfig,
  type Rng,
  riskConfigInput,
  type SimulatedVenueOptions,
  timeframeEnd,
  tradableAmount,
} from '@keel/core';
import { systemRng, systemTimer, type Timer } from '@keel/exchange';
import { liquidationLine } from '@keel/report';
import type { BotMode, Store } from '@keel/store';
import { BotEngine, orderIdPrefix, type PerPairSetup } from './bot-engine.ts';
import { type Logger, orderLogLine, repeatingWarning } from './bot-log.ts';
import { BotRisk, type RiskReport } from './bot-risk.ts';
import { BotJournal } from './journal.ts';
import { FeePrices } from './live/fee-prices.ts';
import { LiveFuturesSync, refuseHedgeAccount } from './live/futures.ts';
import { MarketStatusWatch } from './live/market-status.ts';
import type { ExchangeBudgetCounts, LiveExchange } from './live/port.ts';
import { type RecoveryReport, reconcile, type UnknownOrderPolicy } from './live/recover.ts';
import { CANCELLED_ON_EXCHANGE, LiveVenue, type SignalAge } from './live/venue.ts';
import { NO_PNL, PnlBook, type PnlTotals, pnlSince } from './pnl.ts';
import {
  type FillModelSetup,
  markFeedId,
  resolvedParams,
  SessionRecorder,
  sessionFutures,
  startingState,
} from './session.ts';
import { BotSettingsChangedError, settingsChange, storedFutures, storedRisk } from './settings.ts';
import type { BarEvent, BarSource } from './sources.ts';

export type { Logger } from './bot-log.ts';
export { BotSettingsChangedError } from './settings.ts';

/**
 * What a restarted bot does with the bars it missed while it was down (they arrive before any
 * live bar): `none` runs the strategy on them without trading (its orders are denied: their bars
 * are over); `last` lets the newest of them trade, as if the bot had been up for its close.
 * Emulated orders (trailing stops, GTD) move and trigger on them either way.
 */
export type CatchUpPolicy = 'none' | 'last';

export interface BotConfig {
  readonly botId: string;
  readonly mode: BotMode;
  readonly strategy: AnyStrategy;
  readonly params: unknown;
  readonly feeds: readonly FeedKey[];
  readonly instruments: readonly Instrument[];
  readonly store: Store;
  readonly log: Logger;
  /** Paper: starting cash in the quote currency and the simulated fill model. */
  readonly paperCash?: number;
  readonly paperFee?: number;
  readonly simulated?: SimulatedVenueOptions;
  /**
   * Perpetuals: each one's leverage, margin mode and funding (docs/futures.md). Paper: margin,
   * funding and liquidation are simulated as in a backtest, and survive a restart. Live: leverage
   * and margin mode are set on the exchange at start, and the exchange's funding and liquidations
   * are applied to the bot's books (its funding series is not used: the exchange charges).
   */
  readonly futures?: (symbol: string) => FuturesMarketSettings;
  /** Live: the exchange account. */
  readonly exchange?: LiveExchange;
  readonly exchangeName?: string;
  /** Live: the exchange URL given (`--exchange-url`, e.g. keel exchange-sim); absent: the exchange's own. Recorded for `keel bots reconcile`. */
  readonly exchangeUrl?: string;
  readonly unknownOrders?: UnknownOrderPolicy;
  /** What to do with open orders on shutdown. */
  readonly onShutdown?: 'cancel' | 'keep';
  /** Close every position on shutdown (market orders). */
  readonly flatten?: boolean;
  /** Lock time-to-live; another instance can take the bot over after this long without heartbeat. */
  readonly lockTtlMs?: number;
  /**
   * A stored bot with another strategy, other params or other markets is refused, naming both
   * (its history belongs to what it ran); with this, it takes the new ones (`--reconfigure`).
   */
  readonly reconfigure?: boolean;
  /** How often the store is asked whether someone requested a stop (`keel bots stop`). Default 1 s. */
  readonly stopPollMs?: number;
  readonly onEvent?: (e: EngineEvent) => void;
  /** Instrumentation: called right before a live order request leaves. */
  readonly onSend?: (clientOrderId: string) => void;
  /**
   * The wall clock and its waits: the session's start and end, the lock's heartbeat, the poll for
   * stop requests, the time a paper order is closed at. Default the system's.
   */
  readonly clock?: Timer;
  /** Randomness (the lock owner's nonce, which tells two instances apart). Default the system's. */
  readonly rng?: Rng;
  /**
   * Live: the time GTD orders expire by (Keel cancels them at expireAt) and recovery compares
   * expiries with. Default: the wall clock. Tests against a replaying simulator pass its clock.
   */
  readonly timer?: Timer;
  /**
   * Live: how long a signal stays valid; an order not sent by then is dropped (`cancelled`, with
   * the reason), never sent late. Default `{ bars: 1 }`: until the bar after its decision closes.
   */
  readonly maxSignalAge?: SignalAge;
  /**
   * How many finished orders (and fills) the bot's engine keeps in memory for `ctx.order(id)`;
   * older ones are in the store only (docs/live.md, "Memory"). Default `DEFAULT_KEEP_FINISHED`.
   */
  readonly keepFinished?: number;
  /** Bars missed while the bot was down: `none` (default) only warms the strategy up on them. */
  readonly catchUp?: CatchUpPolicy;
  /**
   * Risk limits, protections, sizing and exits around the strategy (docs/risk.md), the backtest's
   * engine; its state is stored, so a halt survives a restart until `keel bots resume`.
   */
  readonly risk?: RiskConfig;
  /**
   * One strategy instance per market (`--symbol A,B,...`), as the backtest runs several markets:
   * shared cash and risk engine, `slots` equal shares of the equity (`--max-open-trades`).
   */
  readonly perPair?: PerPairSetup;
}

/** What a session's fills did, and what all of the bot's fills did (`total`, across restarts). */
export interface PnlReport {
  readonly fills: number;
  /** Round trips closed; one whose entry came before a restart counts in the session of its exit. */
  readonly trades: number;
  /** Realised PnL before fees. */
  readonly realizedPnlGross: number;
  /** Fees paid, in the quote currency (a fee in the base asset valued at its fill's price). */
  readonly fees: number;
  /** `realizedPnlGross - fees`: what the trading did to the cash, open positions aside. */
  readonly realizedPnlNet: number;
  /** Fees in other assets (BNB) that had no price to value them: not in `fees`; absent when there were none. */
  readonly otherFees?: Readonly<Record<string, number>>;
  /**
   * Fees paid in an asset outside the bot's markets (Binance's BNB, "use BNB to pay fees"), per
   * asset: what the account's BNB paid for this bot (valued in `fees`); absent when none.
   */
  readonly feesPaidOutside?: Readonly<Record<string, number>>;
}

/** How the reason of an order held on a late bar begins (Bot.catchUpHold). */
const LATE = 'late:';

/** One market's share of a session of a bot on several markets. */
export interface PairReport extends PnlReport {
  readonly symbol: string;
  /** Its orders denied this session (risk rules, `max-open-trades` among them). */
  readonly denied: number;
}

export interface SessionReport extends PnlReport {
  readonly botId: string;
  readonly mode: BotMode;
  /** The session's number (1 for the bot's first start). */
  readonly session: number;
  /** ISO 8601, UTC. */
  readonly startedAt: string;
  readonly endedAt: string;
  /** Why it stopped: a signal, a stop requested through the store, the input ending, a failure. */
  readonly reason: string;
  readonly bars: number;
  /** Since the bot was created: every session's fills. */
  readonly total: PnlReport;
  readonly cash: number;
  readonly equity: number;
  readonly openOrders: number;
  /** Stopped with `keep`: the stop orders standing in for held trailing stops (`<id>-p`). */
  readonly parked: readonly string[];
  readonly recovery: readonly { kind: string; detail: string }[];
  /** Strategy errors caught, and protective orders (stops, exits, a flatten) the exchange or the venue rejected. */
  readonly errors: number;
  /**
   * Orders not traded: `stale`, dropped unsent when their bar was over (`maxSignalAge`);
   * `catchUp`, denied on bars missed while the bot was down (`catchUp`); `late`, denied on bars
   * that came after newer ones had closed (the bot fell behind: BarEvent.behind); `warmup`, asked for on
   * past bars while the strategy warmed up (Engine.warmUp: none is sent).
   */
  readonly signalsDropped: {
    readonly stale: number;
    readonly catchUp: number;
    readonly late: number;
    readonly warmup: number;
  };
  /** Bars that came again for a time their feed already had: not fed twice. */
  readonly repeatedBars: number;
  /** Per market, what the bot holds that is too small to trade (dust: flat for the strategy). */
  readonly dust: Readonly<Record<string, number>>;
  /**
   * A bot on several markets: this session per market, in `--symbol`'s order (as the backtest's
   * per-pair table); absent for one market.
   */
  readonly pairs?: readonly PairReport[];
  /**
   * Live: how often the exchange's shared budgets held this session's requests back: windows in
   * which new orders waited for the account's order count (`orderCountFull`) or requests for the
   * IP's weight (`ipWeightFull`), and the exchange's refusals (`ordersLimited`: 429 -1015;
   * `ipLimited`: 429 / 418 for the IP).
   */
  readonly exchangeBudget?: ExchangeBudgetCounts;
  /** With risk settings: denials by rule, halts started, halts in force. */
  readonly risk?: RiskReport;
  /**
   * Perpetuals, this session: funding (net, paid, received, payments), liquidations (with their
   * clearance fees) apart from the trading fees, the exchange's ADL and settlement closes (live),
   * and the futures warnings.
   */
  readonly futures?: {
    readonly funding: number;
    readonly fundingPaid: number;
    readonly fundingReceived: number;
    readonly fundingPayments: number;
    readonly liquidations: number;
    readonly liquidationFees: number;
    /** Live: the exchange's auto-deleveraging (ADL) closes applied this session. */
    readonly adlCloses: number;
    /** Live: the exchange's settlement closes of a delisted contract applied this session. */
    readonly settlementCloses: number;
    readonly warnings: readonly string[];
  };
}

export class BotAlreadyRunningError extends Error {
  constructor(
    botId: string,
    readonly owner: string,
  ) {
    super(
      `bot "${botId}" is already running (held by ${owner}); stop it first, or wait for its lock to expire if it crashed`,
    );
    this.name = 'BotAlreadyRunningError';
  }
}

/**
 * True when a lock owner name (`host:pid:nonce`) names a process on this host that no longer
 * exists. A pid reused by another process counts as alive: then the TTL decides, as for a holder
 * on another host.
 */
export function holderIsDeadHere(owner: string): boolean {
  const m = /^(.*):(\d+):[a-z0-9]+$/.exec(owner);
  if (!m || m[1] !== hostname()) return false;
  const pid = Number(m[2]);
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Finished orders a running bot keeps in memory by default: `ctx.order(id)` finds the last this
 * many (and every open one); the rest are in the store, so memory stays flat over months.
 */
export const DEFAULT_KEEP_FINISHED = 10_000;

/**
 * A bot process: one lock, one journal, one engine. Start-up loads the stored state and, live,
 * reconciles it with the exchange before any new bar is handled; shutdown stops the inputs,
 * cancels or keeps open orders, optionally flattens, saves everything and writes a session report.
 */
export class Bot {
  readonly owner: string;
  botEngine!: BotEngine;
  journal!: BotJournal;
  account!: Account;
  private venue: LiveVenue | undefined;
  /** Perpetuals' margin, funding and liquidation (paper: simulated; live: the exchange's). */
  private futuresBook: FuturesBook | undefined;
  /** Live perpetuals: the exchange's settings, funding and liquidations (live/futures.ts). */
  private futuresSync: LiveFuturesSync | undefined;
  /** Live spot: prices of the assets fees are paid in besides the markets' own (BNB). */
  private feePrices: FeePrices | undefined;
  /** Aborted to stop the lock's heartbeat. */
  private heartbeat: AbortController | undefined;
  private session = 0;
  private sessionNo = 0;
  private startedAt = 0;
  private recovery: RecoveryReport | undefined;
  private parked: readonly string[] = [];
  private stopExecutions: (() => Promise<void>) | undefined;
  private source: BarSource | undefined;
  private lastBarTime = new Map<string, number>();
  private stopped = false;
  /** While handling a missed bar with its orders held: the reason they are denied. */
  private holding: string | null = null;
  private catchUpDenied = 0;
  /** Protective orders rejected this session (an error line each; counted in the report's errors). */
  private exitsRejected = 0;
  /**
   * The catch-up under way: missed bars handled, the close times they make (one per close time,
   * however many markets have a bar then) and their markets, orders denied on them, first and last bar.
   */
  private caughtUp = noCatchUp();
  /** Bars handled late (newer ones had closed: BarEvent.behind) in the run under way, and before. */
  private late = { bars: 0, denied: 0, first: 0, last: 0, behind: 0 };
  private lateDenied = 0;
  /** Past bars the strategy ran on since the last handled bar (see Engine.warmUp), said once trading begins. */
  private warmed = { bars: 0, requests: 0, first: 0, last: 0 };
  /** A bar that came again (a time its feed already had): not fed twice, counted. */
  private repeatedBars = 0;
  /** Aborted to stop polling the store for stop requests. */
  private stopPoll: AbortController | undefined;
  private stopRequest: string | undefined;
  /**
   * Live: reads whether the bot's markets still trade (at start, after a refused order, after an
   * order the exchange cancelled, after a settlement close); one that does not: `marketClosed`.
   * No order is sent there, a flatten's neither, and no trailing stop is parked there.
   */
  private marketStatus: MarketStatusWatch | undefined;
  private recorder: SessionRecorder | undefined;
  /** Every fill of the bot (stored ones first), and its totals when this session began. */
  private book: PnlBook | undefined;
  private bookAtStart: PnlTotals | undefined;
  private marketsAtStart = new Map<string, PnlTotals>();
  /** This session's denied orders per market (the per-market report). */
  private deniedBy = new Map<string, number>();
  private endReason = '';
  private stopping: Promise<SessionReport> | undefined;
  private risk: BotRisk | undefined;
  readonly cfg: BotConfig;
  /** The wall clock (`BotConfig.clock`). */
  private readonly wall: Timer;

  constructor(cfg: BotConfig) {
    this.wall = cfg.clock ?? systemTimer;
    const nonce = Math.floor((cfg.rng ?? systemRng).next() * 36 ** 6)
      .toString(36)
      .padStart(6, '0');
    this.owner = `${hostname()}:${process.pid}:${nonce}`;
    // Errors also go to the bot's event journal, where `keel bots status` finds the last one.
    const log: Logger = (level, msg, data) => {
      cfg.log(level, msg, data);
      if (level === 'error') this.recordError(msg);
    };
    this.cfg = { ...cfg, log };
  }

  /**
   * Set when a stop was requested through the store (`keel bots stop`), or when the bot stops
   * itself because the exchange no longer trades one of its markets: the reason to stop with.
   */
  get stopRequested(): string | undefined {
    return this.stopRequest;
  }

  /** Acquires the lock, restores state (and reconciles, live), and builds the engine. */
  async start(): Promise<void> {
    const { store, botId, log } = this.cfg;
    // The bot's row first (locks reference it), then the lock, then anything else.
    const existing = await store.bots.get(botId);
    // Client order ids hold 12 characters for the bot (`orderIdPrefix`): two bots with the same
    // prefix would give the same signal the same id, and one bot's order could pass for the other's.
    const prefix = orderIdPrefix(botId);
    const twin = (await store.bots.list()).find((b) => b.id !== botId && orderIdPrefix(b.id) === prefix);
    if (twin)
      throw new Error(
        `bot id "${botId}" cannot be used in this store: bot "${twin.id}" already gives its orders client ids starting with "${prefix}", and so would this one (a bot's 12 characters in an order id are its id, or 6 of it and 6 of a hash when it is longer); choose another bot id`,
      );
    const futures = storedFutures(this.cfg.futures, this.cfg.instruments);
    if (!existing) {
      await store.bots.create({
        id: botId,
        strategy: this.cfg.strategy.name,
        params: resolvedParams(this.cfg.strategy, this.cfg.params),
        mode: this.cfg.mode,
        exchange: this.cfg.exchangeName ?? 'simulated',
        symbols: [...new Set(this.cfg.feeds.map((f) => f.symbol))],
        risk: storedRisk(this.cfg.risk),
        futures,
      });
    } else if (existing.mode !== this.cfg.mode) {
      throw new Error(
        `bot "${botId}" was created in ${existing.mode} mode; it cannot be started in ${this.cfg.mode} mode (use another --bot-id)`,
      );
    }
    const changed = existing
      ? settingsChange(existing, {
          strategy: this.cfg.strategy,
          params: this.cfg.params,
          feeds: this.cfg.feeds,
          risk: this.cfg.risk,
          futures,
        })
      : undefined;
    if (changed && !this.cfg.reconfigure) throw new BotSettingsChangedError(botId, changed.stored, changed.requested);
    const ttl = this.cfg.lockTtlMs ?? 15_000;
    let lock = await store.locks.acquire(botId, this.owner, ttl);
    if (!lock.acquired && store.dialect === 'sqlite' && holderIsDeadHere(lock.owner)) {
      // A crashed instance on this machine (its process is gone): no need to wait out its TTL.
      // SQLite only: its file is on this host; a shared PostgreSQL may serve hosts (containers)
      // that share a hostname, where a pid says nothing, so there the TTL decides.
      log('warn', `the lock of bot ${botId} is held by ${lock.owner}, a process that no longer exists: taking it over`);
      lock = await store.locks.acquire(botId, this.owner, ttl, { takeOverFrom: lock.owner });
    }
    if (!lock.acquired) throw new BotAlreadyRunningError(botId, lock.owner);
    if (lock.tookOver) log('warn', `took over the lock of bot ${botId} from a crashed instance`);
    try {
      await this.startLocked(ttl);
      // Written once the start succeeded: settings the exchange refused (a leverage above its
      // brackets) were never run, and must not become the ones the next start is held to.
      if (changed) {
        await store.bots.reconfigure(botId, changed.requested);
        log(
          'warn',
          `bot ${botId} reconfigured (--reconfigure): was ${JSON.stringify(changed.stored)}, now ${JSON.stringify(changed.requested)}`,
        );
      } else if (existing && (existing.futures ?? null) === null && futures !== null)
        // Stored before its futures settings were kept: recorded now, compared from the next start.
        await store.bots.reconfigure(botId, { ...existing, futures });
      if (this.cfg.mode === 'live') await store.bots.setExchangeUrl(botId, this.cfg.exchangeUrl ?? null);
    } catch (e) {
      // A start that fails (the exchange unreachable during reconciliation, a bad state row) must
      // not keep the bot locked: a process that goes on after the failure would hold it for ever. Not
      // stop(): that acts on the orders (cancel, park, flatten) of a bot that never ran.
      this.stopPoll?.abort();
      this.heartbeat?.abort();
      await this.stopExecutions?.().catch(() => undefined);
      await this.futuresSync?.close().catch(() => undefined);
      this.venue?.close();
      await store.bots.setStatus(botId, 'stopped').catch(() => undefined);
      await store.locks.release(botId, this.owner).catch(() => false);
      log('error', `bot ${botId} could not start: ${(e as Error).message}; its lock is released`);
      await this.journal?.flush().catch(() => undefined);
      throw e;
    }
  }

  /** The rest of `start`, with the lock held. */
  private async startLocked(ttl: number): Promise<void> {
    const { store, botId, log } = this.cfg;
    // Orders the last run logged as it sent them but never got into the database (it stopped
    // between the two): written now, before anything reads the bot's orders.
    const replay = await store.replayIntents(botId);
    if (replay.recovered.length > 0)
      log(
        'warn',
        `recovered ${replay.recovered.length} order(s) from the write-ahead log of bot ${botId} that the last run sent but had not saved yet (it stopped in between): ${replay.recovered.join(', ')}; reconciliation looks them up on the exchange`,
      );
    if (replay.torn > 0)
      log(
        'warn',
        `skipped ${replay.torn} incomplete line(s) in the write-ahead log of bot ${botId} (a write cut short)`,
      );
    this.heartbeat = this.every(Math.max(50, Math.floor(ttl / 3)), async () => {
      if (await store.locks.heartbeat(botId, this.owner)) return;
      log('error', `lost the lock of bot ${botId} to another instance: stopping at once`);
      void this.stop('lock lost');
    });
    // A stop request left for an instance that is gone is not ours.
    await store.stopRequests.dropStale(botId, this.owner);
    this.risk = new BotRisk(store, botId, this.cfg.risk, log);
    this.stopPoll = this.every(this.cfg.stopPollMs ?? 1_000, async () => {
      await this.pollStopRequest();
      if (!this.stopped) await this.risk?.poll();
    });
    this.startedAt = this.wall.now();
    await store.bots.setStatus(botId, 'running');
    this.session = await store.sessions.start(botId);
    this.sessionNo = this.session;

    const quote = this.cfg.instruments[0]?.quote ?? 'USDT';
    this.account = new Account(quote, 0);
    const storedBalances = await store.balances.load(botId);
    // Positions as stored; reconciliation (live) applies what happened while the bot was down.
    for (const p of await store.positions.load(botId)) {
      const inst = this.cfg.instruments.find((x) => x.symbol === p.symbol);
      if (!inst) continue;
      const pos = this.account.position(inst, p.positionSide);
      pos.size = p.size;
      pos.avgPrice = p.size === 0 ? Number.NaN : p.avgPrice;
      pos.realizedPnl = p.realizedPnl;
    }
    const liveFutures = this.cfg.mode === 'live' && this.cfg.futures !== undefined;
    if (this.cfg.mode === 'live' && !liveFutures)
      // What the bot's fees took from an asset outside its markets (BNB: negative, valued in its
      // equity), as the last run left it; the account's own BNB is the user's, never the bot's.
      for (const b of storedBalances)
        if (b.asset !== quote && this.cfg.instruments.every((i) => isOutsideFee(i, b.asset)))
          this.account.balances.set(b.asset, b.total);
    if (liveFutures && !this.cfg.exchange?.futures)
      throw new Error(
        `live futures need a USDⓈ-M account (ccxt's binanceusdm); ${this.cfg.exchangeName ?? 'this exchange'} has none here`,
      );
    const settings = this.cfg.futures;
    if (settings !== undefined) {
      this.futuresBook = new FuturesBook(
        this.account,
        this.cfg.instruments,
        (i) => settings(i.symbol),
        this.cfg.mode === 'live' ? 'exchange' : 'simulated',
      );
      // Its isolated wallets as saved with the last handled bar, before any recovered fill moves them.
      const st = (await store.state.load(botId))?.state as { futures?: FuturesBookState } | undefined;
      if (st?.futures !== undefined) this.futuresBook.restore(st.futures);
    }
    const cashRow = storedBalances.find((b) => b.asset === quote);
    // Live perpetuals: the stored wallet, moved by what reconciliation recovers, is compared with
    // the exchange's (live/futures.ts).
    if (liveFutures && cashRow) this.account.cash = cashRow.total;
    if (this.cfg.mode === 'paper') {
      this.account.cash = cashRow ? cashRow.total : (this.cfg.paperCash ?? 10_000);
    }
    const book = new PnlBook(this.cfg.instruments, { perMarket: this.markets().length > 1 });
    const storedFills = await store.fills.since(botId, 0);
    for (const f of storedFills) book.add(f);
    this.book = book;
    this.bookAtStart = book.totals();
    this.marketsAtStart = book.marketTotals();

    const timer = this.cfg.timer ?? systemTimer;
    // The exchange account of a live bot, checked here once; undefined in paper mode.
    const exchange = this.cfg.mode === 'live' ? this.cfg.exchange : undefined;
    if (this.cfg.mode === 'live') {
      if (!exchange) throw new Error('live mode needs an exchange account');
      const positionFor = (symbol: string) => this.account.position(this.instrument(symbol));
      const symbols = new Set(this.cfg.feeds.map((f) => f.symbol));
      // Before reconciliation adopts, cancels or records anything for a bot that would not run.
      if (liveFutures && exchange.futures)
        await refuseHedgeAccount(
          exchange.futures,
          this.cfg.instruments.filter((i) => i.kind === 'perpetual').map((i) => i.symbol),
        );
      const feePrices = liveFutures ? undefined : await this.startFeePrices(exchange, quote, storedFills);
      this.feePrices = feePrices;
      this.recovery = await reconcile({
        store,
        botId,
        exchange,
        ...(feePrices
          ? {
              feeValue: this.outsideFeeValue(feePrices),
            }
          : {}),
        instruments: this.cfg.instruments.filter((i) => symbols.has(i.symbol)),
        unknownOrders: this.cfg.unknownOrders ?? 'flag',
        now: () => timer.now(),
        position: (symbol) => this.account.find(symbol)?.size ?? 0,
        onRecoveredFill: (fill) => {
          book.add(fill);
          const inst = this.instrument(fill.symbol);
          // Spot: only a fee in the coin changes the position (the cash is the exchange's below).
          // A perpetual's fee is in the settle asset: its wallet is compared with the exchange's.
          // A fee paid outside the market (BNB) is the books' debt in that asset.
          const perp = inst.kind === 'perpetual';
          const outside = isOutsideFee(inst, fill.feeAsset);
          if (fill.fee !== 0 && outside) feePrices?.book(fill.feeAsset, fill.fee, fill.feeValue);
          this.futuresBook?.beforeFill(fill.symbol, fill.side === 'buy' ? fill.amount : -fill.amount, fill.price);
          this.account.applyFill(
            inst,
            fill.side,
            fill.price,
            fill.amount,
            fill.feeAsset === inst.base || perp || outside ? fill.fee : 0,
            perp || outside ? fill.feeAsset : inst.base,
            feePrices?.price,
          );
          const p = positionFor(fill.symbol);
          return { symbol: fill.symbol, size: p.size, avgPrice: p.avgPrice, realizedPnl: p.realizedPnl };
        },
      });
      for (const a of this.recovery.actions)
        log(
          a.kind === 'balance-difference' ||
            a.kind === 'position-not-in-account' ||
            a.kind === 'oco-leg-placed-again' ||
            a.kind === 'order-never-reached-exchange' ||
            a.kind.startsWith('unknown')
            ? 'warn'
            : 'info',
          `reconcile: ${a.kind}: ${a.detail}`,
        );
      // The exchange is the truth for balances (a perpetual's wallet: live/futures.ts, below).
      const q = this.recovery.balances[quote];
      if (!liveFutures) this.account.cash = q ? q.total : 0;
    }

    this.journal = new BotJournal(store, botId, this.account, (e) => {
      log('error', `could not save state, stopping: ${e.message}`);
      void this.stop('persistence failure');
    });
    let venue: LiveVenue | undefined;
    if (exchange) {
      // What reconciliation found (fills while down, the exchange's cash) is the state from now on.
      this.journal.saveBalances();
      // Ids this run may give again (a signal of a bar after the last one handled, replayed after a
      // crash) and the orders still open: looked up before they are sent, never sent twice. Older
      // finished orders' ids cannot come again (an id carries its bar's time), so the run does not
      // hold every id the bot ever used.
      const handled = (await store.state.load(botId))?.state as { lastBarTime?: Record<string, number> } | undefined;
      const lasts = this.cfg.feeds.map((f) => handled?.lastBarTime?.[feedId(f)]);
      const from = lasts.some((t) => t === undefined) ? Number.NEGATIVE_INFINITY : Math.min(...(lasts as number[]));
      const before = new Set(
        (await store.orders.list(botId))
          .filter((x) => !isTerminal(x.status) || x.createdAt > from)
          .map((x) => x.request.id as string),
      );
      venue = new LiveVenue(exchange, {
        knownBefore: (id) => before.has(id),
        beforeSend: (id) => this.journal.beforeSend(id),
        log,
        now: () => timer.now(),
        timer,
        positionOf: (symbol) => this.account.find(symbol)?.size ?? 0,
        instruments: this.cfg.instruments,
        persist: (o) => this.journal.saveOrder(o),
        ...(this.feePrices !== undefined ? { feeValue: this.outsideFeeValue(this.feePrices) } : {}),
        ...(this.cfg.onSend ? { onSend: this.cfg.onSend } : {}),
        ...(this.cfg.maxSignalAge ? { maxSignalAge: this.cfg.maxSignalAge } : {}),
      });
      this.venue = venue;
    }
    this.botEngine = new BotEngine({
      botId,
      strategy: this.cfg.strategy,
      params: this.cfg.params,
      feeds: this.cfg.feeds,
      instruments: this.cfg.instruments,
      account: this.account,
      ...(this.venue
        ? { venue: this.venue }
        : { simulated: this.cfg.simulated ?? { fees: percentFee(this.cfg.paperFee ?? 0.001) } }),
      ...(this.cfg.risk ? { risk: this.cfg.risk } : {}),
      ...(this.cfg.perPair ? { perPair: this.cfg.perPair } : {}),
      ...(this.futuresBook !== undefined ? { futures: this.futuresBook } : {}),
      ...(this.feePrices !== undefined ? { prices: this.feePrices.bookedPrice } : {}),
      keepFinished: this.cfg.keepFinished ?? DEFAULT_KEEP_FINISHED,
      log,
      onEvent: (e) => {
        if (e.type === 'order.denied') {
          if (this.holding !== null && e.reason === this.holding) {
            if (this.holding.startsWith(LATE)) this.late.denied++;
            else this.caughtUp.denied++;
          }
          const sym = e.order.request.symbol;
          this.deniedBy.set(sym, (this.deniedBy.get(sym) ?? 0) + 1);
        }
        this.journal.onEvent(e);
        // Live: a refusal, or an order the exchange cancelled on its own, may say the market no
        // longer trades (a halted or delisted spot pair, a delisted contract): its status is read.
        if (e.type === 'order.rejected' || (e.type === 'order.cancelled' && e.reason === CANCELLED_ON_EXCHANGE))
          void this.marketStatus?.check(e.order.request.symbol);
        if (e.type === 'order.filled') {
          const f = e.fill;
          if (f.fee !== 0 && isOutsideFee(this.instrument(f.symbol), f.feeAsset)) {
            this.feePrices?.book(f.feeAsset, f.fee, f.feeValue);
            if (this.feePrices?.watch(f.feeAsset)) this.feeAssetSeen(f.feeAsset, f.symbol);
          }
          book.add(e.fill);
          const q = e.fill.side === 'buy' ? e.fill.amount : -e.fill.amount;
          this.futuresSync?.onFill(e.fill.symbol, e.fill.tradeId, e.fill.time, q);
        }
        if (e.type === 'futures.liquidation') log('warn', `LIQUIDATED ${liquidationLine(e.liquidation)}`);
        const line = orderLogLine(e);
        if (line) log(line.level, line.msg, line.data);
        if (line?.level === 'error') this.exitsRejected++;
        this.risk?.onEvent(e);
        this.cfg.onEvent?.(e);
      },
    });
    if (exchange?.marketStatus !== undefined) {
      const read = exchange.marketStatus.bind(exchange);
      this.marketStatus = new MarketStatusWatch({
        read,
        onClosed: (symbol, status) => this.marketClosed(symbol, status),
        log,
      });
    }
    const futuresBook = this.futuresBook;
    if (liveFutures && exchange?.futures && futuresBook && this.cfg.futures)
      // Before the execution stream starts: it sees every fill (onFill) from the first on.
      this.futuresSync = new LiveFuturesSync({
        futures: exchange.futures,
        store,
        botId,
        instruments: this.cfg.instruments.filter((i) => i.kind === 'perpetual'),
        settings: this.cfg.futures,
        account: this.account,
        book: futuresBook,
        engine: this.botEngine.engine,
        log,
        storedCash: cashRow !== undefined,
        checkTrading: (symbol) => this.marketStatus?.check(symbol) ?? Promise.resolve(),
      });
    const st = await store.state.load(botId);
    const last = (st?.state as { lastBarTime?: Record<string, number> } | undefined)?.lastBarTime ?? {};
    if (exchange && venue) {
      const live = venue;
      const open = this.recovery?.openOrders ?? [];
      for (const o of open) {
        this.botEngine.engine.restoreOrder(o);
        live.adopt(
          o,
          this.recovery?.exchangeFilled.get(o.request.id) ?? 0,
          this.recovery?.exchangeIds.get(o.request.id),
        );
      }
      live.rememberTrades(this.recovery?.knownTrades ?? new Map());
      for (const [id, xid] of this.recovery?.placeAgain ?? []) live.placeAgainAfterRestart(id, xid);
      for (const o of this.recovery?.replacements ?? []) this.botEngine.engine.restoreOrder(o);
      // Bracket exits waiting for their entry: the engine's until the entry fills (never on the exchange).
      for (const o of this.recovery?.waitingExits ?? []) this.botEngine.engine.restoreOrder(o);
      const streamWarning = repeatingWarning(log, () => this.wall.now(), 'execution stream');
      this.stopExecutions = exchange.watchExecutions({
        onOrder: (o) => {
          // Live perpetuals: a forced close reported by the stream is applied at once.
          this.futuresSync?.onOrder(o);
          void live.onOrder(o);
        },
        onTrade: (t) => live.onTrade(t),
        onError: (e) => streamWarning(e.message),
      });
    } else {
      // Paper: the orders working when the bot stopped (a kill -9, or --on-shutdown keep) go on
      // working in the simulated venue from their decision on, as a live bot's do on the exchange,
      // bracket exits still waiting for their entry included. Those decided at a close time the
      // bot did not finish are closed: that close time is handled again and decides them again,
      // under the same ids.
      let handledUpTo = Number.NEGATIVE_INFINITY;
      for (const f of this.cfg.feeds) {
        const t = last[feedId(f)];
        if (t !== undefined) handledUpTo = Math.max(handledUpTo, timeframeEnd(f.timeframe, t));
      }
      const carried: string[] = [];
      for (const o of await store.orders.open(botId)) {
        if (o.createdAt <= handledUpTo) {
          this.botEngine.carryOver(o);
          carried.push(o.request.id);
          continue;
        }
        await store.orders.upsert(botId, {
          ...o,
          status: 'cancelled',
          reason: 'decided at a close time the bot did not finish before it stopped: that close time is handled again',
          updatedAt: this.wall.now(),
        } as OrderState);
      }
      if (carried.length > 0)
        log(
          'info',
          `paper: ${carried.length} order(s) working when the bot stopped go on working: ${carried.join(', ')}`,
        );
    }
    await this.risk.restore(this.botEngine.engine, (w) => this.journal.enqueue(w));
    // A position held in the other position mode would sit in the books with nothing to manage it.
    const fb = this.botEngine.futures;
    if (fb !== undefined)
      for (const p of this.account.positions) {
        const sym = p.instrument.symbol;
        if (p.size === 0 || p.instrument.kind !== 'perpetual' || fb.isHedge(sym) === (p.positionSide !== undefined))
          continue;
        throw new Error(
          `bot "${botId}" holds ${p.size} ${sym}${p.positionSide === undefined ? ' (one-way)' : ` on its ${p.positionSide} side (hedge mode)`}: it cannot start in ${fb.isHedge(sym) ? 'hedge' : 'one-way'} position mode; start it in the mode it holds the position in, and close it there first`,
        );
      }
    if (this.futuresSync !== undefined) {
      this.recovery?.actions.push(...(await this.futuresSync.start()));
      this.journal.saveBalances();
    }
    // A market that no longer trades (halted or delisted while the bot was down, say): read once
    // the exchange's account is reconciled; the bot then sends nothing and stops before its first bar.
    for (const inst of this.cfg.instruments) await this.marketStatus?.check(inst.symbol);
    for (const [k, v] of Object.entries(last)) this.lastBarTime.set(k, v);
    this.recorder = new SessionRecorder(
      store,
      botId,
      this.session,
      {
        v: 1,
        mode: this.cfg.mode,
        strategy: this.cfg.strategy.name,
        params: resolvedParams(this.cfg.strategy, this.cfg.params),
        feeds: this.cfg.feeds,
        instruments: this.cfg.instruments,
        model: this.fillModel(),
        start: startingState(
          this.account,
          this.botEngine.engine.openOrders().map((o) => o.request.id),
        ),
        resumeAfter: Object.fromEntries(this.lastBarTime),
        warmup: {},
        ...(this.cfg.risk ? { risk: riskConfigInput(this.cfg.risk) } : {}),
        ...(this.cfg.perPair ? { perPair: this.cfg.perPair } : {}),
        ...(this.cfg.futures !== undefined && this.botEngine.futures !== undefined
          ? {
              futures: sessionFutures(
                this.cfg.instruments,
                this.cfg.futures,
                this.botEngine.futures.snapshot(),
                this.cfg.mode === 'live' ? 'exchange' : 'simulated',
                this.lastBarTime.size > 0 ? Math.min(...this.lastBarTime.values()) : Number.NEGATIVE_INFINITY,
              ),
            }
          : {}),
      },
      (w) => this.journal.enqueue(w),
    );
    await this.recorder.begin();
    this.botEngine.engine.start();
    // Replacements whose original the exchange cancelled before the bot stopped leave now, once
    // the strategy has started (each is looked up by its id first: a send before the stop is never
    // repeated).
    for (const o of this.recovery?.replacements ?? [])
      if (this.marketStatus?.isClosed(o.request.symbol) !== true) venue?.submit(o, timer.now());
    // The exits of entries that filled while the bot was down leave now, as those fills would have sent them.
    for (const entry of this.recovery?.entriesFilled ?? [])
      if (this.marketStatus?.isClosed(entry.request.symbol) !== true)
        this.botEngine.engine.resumeChildren(entry, timer.now());
  }

  /**
   * Live spot: asks the exchange which asset the account pays its fees in besides the markets' own
   * (Binance: BNB with "use BNB to pay fees" on) and reads its price, so that those fees are valued
   * from the first fill on. Undefined where the exchange has no ticker read.
   */
  private async startFeePrices(
    exchange: LiveExchange,
    quote: string,
    storedFills: readonly Fill[],
  ): Promise<FeePrices | undefined> {
    if (exchange.lastPrice === undefined) return undefined;
    const read = exchange.lastPrice.bind(exchange);
    const prices = new FeePrices(quote, (symbol) => read(symbol), this.cfg.log);
    // What the bot's fees took from assets outside its markets so far, at the values booked then.
    for (const f of storedFills) {
      const inst = this.cfg.instruments.find((i) => i.symbol === f.symbol);
      if (f.fee === 0 || inst === undefined || !isOutsideFee(inst, f.feeAsset)) continue;
      prices.watch(f.feeAsset);
      prices.book(f.feeAsset, f.fee, f.feeValue);
    }
    for (const inst of this.cfg.instruments) {
      if (inst.kind !== 'spot' || exchange.feeDiscountAsset === undefined) continue;
      try {
        const asset = await exchange.feeDiscountAsset(inst.symbol);
        if (asset !== undefined && isOutsideFee(inst, asset) && prices.watch(asset))
          this.cfg.log(
            'info',
            `the account pays its fees on ${inst.symbol} in ${asset} (the exchange's fee discount): the bot's position keeps all it buys, and ${asset}/${quote} is read once per bar to value those fees; the ${asset} they take is the account's, never traded by this bot`,
          );
      } catch (e) {
        this.cfg.log(
          'warn',
          `could not ask the exchange which asset the account pays fees on ${inst.symbol} in (${(e as Error).message}): a fee in another asset (BNB) is valued from the bar after the first one`,
        );
      }
    }
    await prices.refresh();
    return prices;
  }

  /**
   * The value in the quote of a fill's fee paid outside its market (BNB) at the last price read;
   * NaN for the market's own fees and for an asset not read yet (which is read from now on).
   */
  private outsideFeeValue(prices: FeePrices): (symbol: string, fee: number, asset: string) => number {
    return (symbol, fee, asset) => {
      if (!isOutsideFee(this.instrument(symbol), asset)) return Number.NaN;
      if (prices.watch(asset)) this.feeAssetSeen(asset, symbol);
      return fee * prices.price(asset);
    };
  }

  /** A fill's fee came in an asset outside the markets that was not watched: its price is read from now on. */
  private feeAssetSeen(asset: string, symbol: string): void {
    const quote = this.cfg.instruments[0]?.quote ?? 'USDT';
    this.cfg.log(
      'warn',
      `a fill on ${symbol} paid its fee in ${asset} (the exchange's fee discount, turned on after the bot started?): that fee is not valued; ${asset}/${quote} is read once per bar from now on to value the next ones`,
    );
  }

  /** Calls `fn` every `ms` by the wall clock, each call after the last has finished, until aborted. */
  private every(ms: number, fn: () => Promise<void>): AbortController {
    const ctl = new AbortController();
    void (async () => {
      for (;;) {
        await this.wall.sleep(ms, ctl.signal);
        if (ctl.signal.aborted) return;
        await fn();
      }
    })();
    return ctl;
  }

  private fillModel(): FillModelSetup {
    if (this.cfg.mode === 'live') return { kind: 'exchange' };
    return this.cfg.simulated ? { kind: 'custom' } : { kind: 'percent', rate: this.cfg.paperFee ?? 0.001 };
  }

  /** Asks the store whether someone requested this instance to stop; if so, closes the inputs. */
  private async pollStopRequest(): Promise<void> {
    if (this.stopRequest !== undefined || this.stopped) return;
    const r = await this.cfg.store.stopRequests.pending(this.cfg.botId, this.owner).catch(() => undefined);
    if (r === undefined || this.stopRequest !== undefined) return;
    this.stopRequest = `stop requested by ${r.by}`;
    this.cfg.log('info', `${this.stopRequest}: shutting down gracefully`);
    await this.source?.close();
  }

  /**
   * Live: a market of the bot's that the exchange no longer trades (a spot pair halted or delisted:
   * BREAK, HALT, ...; a perpetual delisted: SETTLING, CLOSE; PENDING_TRADING). Every order there
   * would be refused, so the bot sends none: it says so once, as an error line, and stops as a stop
   * request does, the whole bot even when it trades other markets too (docs/live.md, "A market
   * that stops trading"). A perpetual's position there is settled by the exchange and applied at
   * the next start; a spot pair's coins stay in the account, in the bot's books as they were. A
   * start on such a market stops the same way before the first bar, having sent nothing.
   */
  private marketClosed(symbol: string, status: string): void {
    if (this.stopped || this.stopRequest !== undefined) return;
    this.stopRequest = `market closed: ${symbol} is ${status} on the exchange`;
    const [why, held] =
      this.instrument(symbol).kind === 'perpetual'
        ? [
            'delisted, or not trading yet',
            'its position there is settled by the exchange and applied at the next start',
          ]
        : [
            'halted or delisted',
            'its coins there stay in the account (spot has no settlement) and in its books; start it again once the pair trades',
          ];
    this.cfg.log(
      'error',
      `MARKET CLOSED: ${symbol} is ${status} on the exchange, no longer TRADING (${why}): every order there would be refused, so this bot sends none and stops; ${held}`,
    );
    void this.source?.close();
  }

  /** An error line, kept in the bot's event journal (in order with its other writes when it runs). */
  private recordError(message: string): void {
    const { store, botId } = this.cfg;
    const write = async () => void (await store.events.append(botId, 'error', { message }));
    if (this.journal && !this.journal.failed) this.journal.enqueue(write);
    else if (!this.journal) void write().catch(() => undefined);
  }

  private instrument(symbol: string): Instrument {
    const i = this.cfg.instruments.find((x) => x.symbol === symbol);
    if (!i) throw new Error(`no instrument for ${symbol}`);
    return i;
  }

  /** The last bar time handled per feed (bars at or before it are warm-up after a restart). */
  lastHandled(feed: FeedKey): number | undefined {
    return this.lastBarTime.get(feedId(feed));
  }

  /**
   * Runs the bot on a source of closed bars. Bars at or before the last handled bar of their feed
   * only warm the indicators up (a restart never acts on the past twice). The bars of one close
   * time (several markets: `BarEvent.moreAtClose`) are handled together, as the backtest handles
   * them: every market's fills first, then the strategies, then one record of them all, so a crash
   * resumes after the last close time handled whole.
   */
  async run(source: BarSource): Promise<void> {
    this.source = source;
    if (this.stopRequest !== undefined) await source.close();
    const index = new Map(this.cfg.feeds.map((f, i) => [feedId(f), i]));
    // The last bar time each feed gave the engine (warm-up or handled): indicators see a bar once.
    const fed = new Map<string, number>();
    const group: CloseBar[] = [];
    try {
      for await (const ev of source as AsyncIterable<BarEvent>) {
        if (this.stopped || this.stopRequest !== undefined) break;
        const key = feedId(ev.feed);
        const i = index.get(key);
        if (i !== undefined) {
          const seen = fed.get(key);
          if (seen !== undefined && ev.bar.time <= seen) {
            this.repeatedBars++;
            this.cfg.log(
              'warn',
              `${key}: the bar of ${new Date(ev.bar.time).toISOString()} came again (this feed is at ${new Date(seen).toISOString()}); not fed to the strategy twice`,
            );
          } else {
            fed.set(key, ev.bar.time);
            const last = this.lastBarTime.get(key);
            if (ev.warmup === true || (last !== undefined && ev.bar.time <= last)) this.warmUp(i, key, ev.bar);
            else group.push({ i, key, ev });
          }
        }
        if (ev.moreAtClose === true || group.length === 0) continue;
        if (this.warmed.bars > 0) this.endWarmUp();
        await this.handleClose(group);
        group.length = 0;
      }
    } finally {
      // A run that ends during a warm-up, a catch-up or a late stretch still says what it held.
      if (this.warmed.bars > 0) this.endWarmUp();
      if (this.caughtUp.bars > 0) this.endCatchUp();
      if (this.late.bars > 0) this.endLate();
      await source.close();
    }
  }

  /** A past bar: the strategy runs on it and nothing it asks for is sent (Engine.warmUp). */
  private warmUp(i: number, key: string, bar: Bar): void {
    const engine = this.botEngine.engine;
    const w = this.warmed;
    if (w.bars++ === 0) {
      w.first = bar.time;
      w.requests = engine.warmupRequests;
    }
    w.last = bar.time;
    engine.warmUp(i, bar);
    this.recorder?.warmUp(key, bar);
  }

  /** Says, once the first bar to trade comes (or the input ends), what the warm-up did. */
  private endWarmUp(): void {
    const w = this.warmed;
    const asked = this.botEngine.engine.warmupRequests - w.requests;
    this.cfg.log(
      'info',
      `warmed up on ${w.bars} past bar(s) (${new Date(w.first).toISOString()} to ${new Date(w.last).toISOString()}): the strategy ran on them${asked > 0 ? ` and asked for ${asked} order(s), none sent (past bars are never traded)` : ''}`,
    );
    this.warmed = { bars: 0, requests: 0, first: 0, last: 0 };
  }

  /**
   * One close time's bars (one per feed that has a bar then, in feed order) in the backtest's two
   * phases (Engine.matchBar, closeBar): live, each market's fills not yet reported are read from
   * the exchange (`beforeBars`, every market's at once) and every bar is matched before any strategy decides, so that a
   * market's strategy sizes on an equity that has every other market's fills of that close.
   */
  private async handleClose(group: readonly CloseBar[]): Promise<void> {
    const engine = this.botEngine.engine;
    let missed = false;
    for (const { ev } of group)
      if (ev.catchUp !== undefined) {
        const c = this.caughtUp;
        if (c.bars++ === 0) c.first = ev.bar.time;
        c.last = ev.bar.time;
        c.markets.add(ev.feed.symbol);
        missed = true;
      } else {
        if (this.caughtUp.bars > 0) this.endCatchUp();
        if (ev.behind !== undefined && ev.behind > 0) {
          const l = this.late;
          if (l.bars++ === 0) l.first = ev.bar.time;
          l.last = ev.bar.time;
          l.behind = Math.max(l.behind, ev.behind);
        } else if (this.late.bars > 0) this.endLate();
      }
    if (missed) this.caughtUp.closes++;
    // Live: fills the bars may have caused, not yet reported, are read before any strategy decides.
    // (A bar missed while the bot was down is not: recovery read every open order at start.)
    if (this.venue !== undefined) {
      // Every market's reads together (LiveVenue.beforeBars).
      const closes = group.flatMap(({ i, ev }) =>
        engine.isMarketFeed(i) && ev.catchUp === undefined ? [{ symbol: ev.feed.symbol, bar: ev.bar }] : [],
      );
      if (closes.length > 0) {
        await this.venue.beforeBars(closes);
        // The price of BNB (fees paid outside the markets) the orders of these bars are valued at.
        await this.feePrices?.refresh();
      }
    }
    this.risk?.beforeBar();
    for (const { i, ev } of group) this.withCatchUpHold(ev, () => engine.matchBar(i, ev.bar));
    for (const { i, ev } of group) this.withCatchUpHold(ev, () => engine.closeBar(i, ev.bar));
    // The bars (for `keel bots parity`) and the last handled bar times, in one write.
    const book = this.botEngine.futures;
    const rows = group.map(({ key, ev }) => {
      this.lastBarTime.set(key, ev.bar.time);
      const mark = book?.markBarAt(ev.feed.symbol, ev.bar.time, this.markBar) ?? null;
      return {
        feed: key,
        bar: ev.bar,
        ...(mark === null ? {} : { mark: { feed: markFeedId(ev.feed.symbol), bar: copyBar(mark) } }),
      };
    });
    this.recorder?.handled(
      rows,
      Object.fromEntries(this.lastBarTime),
      this.risk?.row(),
      book !== undefined ? { futures: book.snapshot() } : undefined,
    );
    this.barsHandled += group.length;
    // Live perpetuals: the exchange's funding and liquidations since the last bar.
    if (this.futuresSync !== undefined) void this.futuresSync.poll();
    // Live: let the orders of these bars leave before the candle stream is re-armed for the
    // next one (that and the queued writes would otherwise run between the promise hops
    // of the order's way to the exchange).
    if (this.cfg.mode === 'live') await nextTurn();
  }

  /** Runs one phase of a bar with its orders held when the catch-up policy says so. */
  private withCatchUpHold(ev: BarEvent, phase: () => void): void {
    this.holding = this.catchUpHold(ev);
    if (this.holding === null) {
      phase();
      return;
    }
    const engine = this.botEngine.engine;
    engine.holdOrders(this.holding);
    try {
      phase();
    } finally {
      engine.holdOrders(null);
      this.holding = null;
    }
  }

  barsHandled = 0;
  /** The mark bar the futures book read for the bar being handled (reused). */
  private readonly markBar = emptyBar();

  /** The reason a missed bar's orders are denied under the catch-up policy, or null to trade it. */
  private catchUpHold(ev: BarEvent): string | null {
    if (ev.catchUp === undefined)
      return ev.behind !== undefined && ev.behind > 0
        ? `${LATE} the bar of ${new Date(ev.bar.time).toISOString()} came after ${ev.behind} newer bar(s) had closed (a gap filled after the candle stream dropped, or the bot fell behind); its signals are not traded`
        : null;
    const policy = this.cfg.catchUp ?? 'none';
    if (policy === 'last' && ev.catchUp === 'last-missed') return null;
    return `catching up: the bar of ${new Date(ev.bar.time).toISOString()} closed while the bot was down; its signals are not traded (--catch-up ${policy})`;
  }

  /** Says, once a bar comes on time again, how far behind the bot was and what was not sent. */
  private endLate(): void {
    const l = this.late;
    this.lateDenied += l.denied;
    this.cfg.log(
      'warn',
      `late bars: ${l.bars} bar(s) (${new Date(l.first).toISOString()} to ${new Date(l.last).toISOString()}) came after newer ones had closed (up to ${l.behind} bar(s) late: a gap filled after the candle stream dropped, or the bot fell behind: a slow strategy, a saturated machine): the strategy ran on them, none of them traded; ${l.denied} order(s) not sent`,
    );
    this.late = { bars: 0, denied: 0, first: 0, last: 0, behind: 0 };
  }

  /** Says, once the first live bar comes, what the catch-up did. */
  private endCatchUp(): void {
    const c = this.caughtUp;
    this.catchUpDenied += c.denied;
    const policy = this.cfg.catchUp ?? 'none';
    this.cfg.log(
      c.denied > 0 ? 'warn' : 'info',
      `caught up on ${c.markets.size > 1 ? `${c.closes} close time(s) (${c.bars} bars across ${c.markets.size} markets)` : `${c.bars} bar(s)`} missed while the bot was down (${new Date(c.first).toISOString()} to ${new Date(c.last).toISOString()}): the strategy ran on them; ${policy === 'none' ? 'none of them traded' : 'only the last one could trade'} (--catch-up ${policy}); ${c.denied} order(s) not sent`,
    );
    this.caughtUp = noCatchUp();
  }

  /**
   * What the running bot holds in memory of its orders and fills (tests, the soak benchmark): the
   * engine's open orders, the finished orders and fills it keeps (`keepFinished`), and, live, the
   * venue's (LiveVenue.stats). None of it grows with the orders the bot has placed.
   */
  retained(): { readonly engine: ReturnType<Engine['retained']>; readonly venue?: ReturnType<LiveVenue['stats']> } {
    const engine = this.botEngine.engine.retained();
    return this.venue === undefined ? { engine } : { engine, venue: this.venue.stats() };
  }

  /** Resolves when every live request under way is done and everything so far is saved. */
  async settled(): Promise<void> {
    await this.futuresSync?.idle();
    await this.venue?.idle();
    await this.journal.flush();
  }

  /** What a kill -9 leaves behind: no cleanup, no more heartbeats (used by crash tests). */
  abandon(): void {
    this.venue?.close();
    void this.futuresSync?.close();
    this.heartbeat?.abort();
    this.heartbeat = undefined;
    this.stopPoll?.abort();
    this.stopped = true;
  }

  /**
   * Graceful shutdown. Safe to call more than once, and from two places at once (a signal and a
   * failed write): every call gets the one report the session ended with.
   */
  stop(reason = 'stopped'): Promise<SessionReport> {
    this.stopping ??= this.shutDown(reason);
    return this.stopping;
  }

  private async shutDown(reason: string): Promise<SessionReport> {
    const { store, botId, log } = this.cfg;
    if (!this.stopped) {
      this.stopped = true;
      this.endReason = reason;
      this.stopPoll?.abort();
      log('info', `stopping bot ${botId}: ${reason}`);
      await this.source?.close();
      const engine = this.botEngine?.engine;
      if (engine) {
        if ((this.cfg.onShutdown ?? 'cancel') === 'cancel')
          for (const o of engine.openOrders())
            engine.cancel(o.request.id, `bot stopped (${reason}): --on-shutdown cancel`);
        else if (!this.cfg.flatten) {
          // Kept: what Keel holds (trailing stops) would protect nothing while the bot is down.
          await this.venue?.idle();
          this.parked = (await this.venue?.parkHeld((symbol) => this.marketStatus?.isClosed(symbol) === true)) ?? [];
        }
        if (this.cfg.flatten) {
          const sent: ClientOrderId[] = [];
          for (const p of this.account.positions) {
            if (p.size !== 0 && this.marketStatus?.isClosed(p.instrument.symbol) === true) {
              log(
                'warn',
                `--flatten: ${p.instrument.symbol} no longer trades on the exchange: no order sent for its position of ${p.size}; ${p.instrument.kind === 'perpetual' ? 'the exchange settles it' : `the ${p.instrument.base} stays in the account`}`,
              );
              continue;
            }
            // What can be traded of it (dust stays in the account).
            const amount = tradableAmount(p.instrument, Math.abs(p.size), p.lastPrice);
            if (amount > 0)
              sent.push(
                engine.submitInput({
                  type: 'market',
                  side: p.size > 0 ? 'sell' : 'buy',
                  amount,
                  symbol: p.instrument.symbol,
                  // A hedge-mode side is closed by an order on that side; a one-way perpetual's
                  // flatten is reduce-only, as close() is: should the position be closed on the
                  // exchange meanwhile, it is cancelled instead of opening the other side.
                  ...(p.positionSide !== undefined
                    ? { positionSide: p.positionSide }
                    : p.instrument.kind === 'perpetual'
                      ? { reduceOnly: true }
                      : {}),
                  tag: 'flatten',
                }),
              );
          }
          if (this.cfg.mode === 'paper' && sent.length > 0) await this.settlePaperFlatten(engine, sent);
        }
        await this.venue?.idle();
        await this.futuresSync?.close();
        this.venue?.close();
        engine.stop();
        this.risk?.save();
      }
      await this.stopExecutions?.();
      this.recorder?.finish();
      try {
        await this.journal?.flush();
      } catch (e) {
        log('error', (e as Error).message);
      }
    }
    const report = this.report();
    if (this.session) {
      await store.sessions.end(botId, this.session, report);
      this.session = 0;
      await store.bots.setStatus(botId, 'stopped');
    }
    this.heartbeat?.abort();
    this.heartbeat = undefined;
    if (this.stopRequest !== undefined) await store.stopRequests.done(botId, this.owner).catch(() => undefined);
    await store.locks.release(botId, this.owner);
    return report;
  }

  /**
   * Paper: the flatten orders fill where a backtest's would, on the bar after the last one the bot
   * handled (a market order at its open, with the paper fees), which the source gives (the
   * replay's next bar; the exchange's bar after the last, forming or closed). What no such bar
   * fills is cancelled with the reason, so the books, the order rows and the report all say
   * plainly what was and was not closed; nothing is left open for the next start to discard.
   */
  private async settlePaperFlatten(engine: Engine, sent: readonly ClientOrderId[]): Promise<void> {
    const open = (id: ClientOrderId) => {
      const o = engine.order(id);
      return o !== undefined && !isTerminal(o.status);
    };
    const settled = new Set<string>();
    for (const [i, feed] of this.cfg.feeds.entries()) {
      if (settled.has(feed.symbol)) continue; // the first feed of a market is its execution feed
      settled.add(feed.symbol);
      const mine = sent.filter((id) => open(id) && engine.order(id)?.request.symbol === feed.symbol);
      if (mine.length === 0) continue;
      const last = this.lastBarTime.get(feedId(feed));
      const after = last === undefined ? 'the start' : new Date(last).toISOString();
      let why = `no ${feed.symbol} ${feed.timeframe} bar after ${after} to fill at`;
      if (last !== undefined && this.source?.nextBar !== undefined) {
        try {
          const bar = await this.source.nextBar(feed, last);
          if (bar !== undefined) {
            engine.settleOn(i, bar);
            why = `the ${feed.symbol} bar of ${new Date(bar.time).toISOString()} did not fill it`;
          }
        } catch (e) {
          why = `the ${feed.symbol} bar after ${after} could not be read: ${(e as Error).message}`;
        }
      }
      for (const id of mine) if (open(id)) engine.cancel(id, `paper flatten not filled: ${why}`);
    }
  }

  report(): SessionReport {
    const engine = this.botEngine?.engine;
    const total = this.book?.totals();
    return {
      botId: this.cfg.botId,
      mode: this.cfg.mode,
      session: this.sessionNo,
      startedAt: new Date(this.startedAt).toISOString(),
      endedAt: new Date(this.wall.now()).toISOString(),
      reason: this.endReason || 'running',
      bars: this.barsHandled,
      ...pnlReport(total && this.bookAtStart ? pnlSince(total, this.bookAtStart) : undefined),
      total: pnlReport(total),
      cash: this.account?.cash ?? 0,
      equity: engine ? engine.equity() : 0,
      openOrders: engine ? engine.openOrders().length : 0,
      parked: this.parked,
      recovery: this.recovery?.actions ?? [],
      errors: (engine?.errorCount ?? 0) + this.exitsRejected,
      signalsDropped: {
        stale: this.venue?.staleDropped ?? 0,
        catchUp: this.catchUpDenied + this.caughtUp.denied,
        late: this.lateDenied + this.late.denied,
        warmup: this.botEngine?.engine.warmupRequests ?? 0,
      },
      repeatedBars: this.repeatedBars,
      dust: this.dust(),
      ...(this.markets().length > 1 ? { pairs: this.pairReports() } : {}),
      ...(this.cfg.mode === 'live' && this.cfg.exchange?.budgetCounts
        ? { exchangeBudget: this.cfg.exchange.budgetCounts() }
        : {}),
      ...(this.risk?.report() ? { risk: this.risk.report() } : {}),
      ...(this.botEngine?.futures
        ? {
            futures: futuresReport(
              this.botEngine.futures.summary(),
              this.botEngine.futures.adl,
              this.botEngine.futures.settlements,
            ),
          }
        : {}),
    };
  }

  /** The bot's markets, in its feeds' order. */
  private markets(): string[] {
    return [...new Set(this.cfg.feeds.map((f) => f.symbol))];
  }

  /** This session per market: what its fills did (since the session began) and its denials. */
  private pairReports(): PairReport[] {
    const now = this.book?.marketTotals() ?? new Map<string, PnlTotals>();
    return this.markets().map((symbol) => ({
      symbol,
      ...pnlReport(pnlSince(now.get(symbol) ?? NO_PNL, this.marketsAtStart.get(symbol) ?? NO_PNL)),
      denied: this.deniedBy.get(symbol) ?? 0,
    }));
  }

  /** What the bot holds below what its markets can trade, per market (see PositionView.dust). */
  private dust(): Record<string, number> {
    const out: Record<string, number> = {};
    const engine = this.botEngine?.engine;
    if (!engine || !this.account) return out;
    for (const p of this.account.positions) {
      if (p.size === 0) continue;
      const tradable = tradableAmount(p.instrument, Math.abs(p.size), p.lastPrice);
      const dust = Math.abs(p.size) - tradable;
      if (dust > 0) out[p.instrument.symbol] = p.size > 0 ? dust : -dust;
    }
    return out;
  }
}

/** A bar of a close time being handled: its feed's index and id, and the event. */
interface CloseBar {
  readonly i: number;
  readonly key: string;
  readonly ev: BarEvent;
}

function pnlReport(t: PnlTotals | undefined): PnlReport {
  if (t === undefined) return { fills: 0, trades: 0, realizedPnlGross: 0, fees: 0, realizedPnlNet: 0 };
  return {
    fills: t.fills,
    trades: t.trades,
    realizedPnlGross: t.realizedPnlGross,
    fees: t.fees,
    realizedPnlNet: t.realizedPnlNet,
    ...(Object.keys(t.otherFees).length > 0 ? { otherFees: t.otherFees } : {}),
    ...(Object.keys(t.feesPaidOutside).length > 0 ? { feesPaidOutside: t.feesPaidOutside } : {}),
  };
}

function futuresReport(
  f: FuturesSummary,
  adl: readonly ExchangeCloseRecord[],
  settlements: readonly ExchangeCloseRecord[],
): NonNullable<SessionReport['futures']> {
  return {
    funding: f.funding,
    fundingPaid: f.fundingPaid,
    fundingReceived: f.fundingReceived,
    fundingPayments: f.fundingEvents,
    liquidations: f.liquidations.length,
    liquidationFees: f.liquidationFees,
    adlCloses: adl.length,
    settlementCloses: settlements.length,
    warnings: f.warnings,
  };
}

function noCatchUp() {
  return { bars: 0, closes: 0, markets: new Set<string>(), denied: 0, first: 0, last: 0 };
}
