import { createHash } from 'node:crypto';
import {
  type Account,
  type AnyStrategy,
  type BarSeries,
  Engine,
  type EngineEvent,
  type FeedKey,
  FuturesBook,
  type FuturesMarketSettings,
  feedId,
  type Instrument,
  type OrderState,
  parseParams,
  type RiskConfig,
  SimulatedVenue,
  type SimulatedVenueOptions,
  type Trade,
  TradeTracker,
  type Venue,
} from '@keel/core';
import type { BotMode } from '@keel/store';
import { systemClock } from './clock.ts';
import type { BarSource } from './sources.ts';

export interface BotOptions {
  readonly botId: string;
  readonly mode: BotMode;
  readonly strategy: AnyStrategy;
  readonly params?: unknown;
  readonly feeds: readonly FeedKey[];
  readonly instruments: readonly Instrument[];
  readonly account: Account;
  /** Paper: a SimulatedVenue is built from these options. Live: pass the live venue. */
  readonly venue?: Venue;
  readonly simulated?: SimulatedVenueOptions;
  /**
   * Paper perpetuals: each one's settings; margin, funding and liquidation are simulated as in a
   * backtest (FuturesBook). Live, the exchange does these.
   */
  readonly futures?: (symbol: string) => FuturesMarketSettings;
  readonly risk?: RiskConfig;
  /** Every engine event, in order (persistence, logs, the dashboard). */
  readonly onEvent?: (e: EngineEvent) => void;
  readonly log?: (level: 'info' | 'warn' | 'error', msg: string, data?: Record<string, unknown>) => void;
}

/**
 * Deterministic client order ids: the bot, the bar that produced the signal and the signal's
 * sequence within that bar. Replaying the same bar after a crash gives the same id, so the
 * exchange (or our lookup) recognises an order that was already sent. Binance allows 36 chars
 * of [.A-Z:/a-z0-9_-].
 */
export function signalOrderId(botId: string, barTime: number, seqInBar: number): string {
  return `${orderIdPrefix(botId)}${Math.floor(barTime / 1000).toString(36)}-${seqInBar}`;
}

/**
 * What every client order id of this bot starts with: `k`, 12 characters at most for the bot,
 * `-`. A bot id of up to 12 letters, digits, `_` and `-` is used as it is; any other (longer, or
 * with characters Binance does not take) becomes its first 6 such characters and 6 of a SHA-256
 * of the whole id, so that ids that begin alike (`sma-cross-BTCUSDT-paper` and `...-live`, the
 * CLI's defaults) still get different order ids.
 */
export function orderIdPrefix(botId: string): string {
  const clean = botId.replace(/[^A-Za-z0-9_-]/g, '');
  if (clean === botId && clean.length <= 12) return `k${clean}-`;
  return `k${clean.slice(0, 6)}${createHash('sha256').update(botId).digest('base64url').slice(0, 6)}-`;
}

/**
 * The client order id of the exchange order that executes an order Keel emulates (the market
 * order of a triggered trailing stop): derived from the emulated order's id, so a restart finds
 * it by lookup and never sends it twice.
 */
export function exitOrderId(emulatedId: string): string {
  return derivedOrderId(emulatedId, 'x', 'exit');
}

/**
 * The client order id of the stop-market order that stands in for a trailing stop Keel holds
 * while its bot is stopped (`--on-shutdown keep`): derived from the trailing stop's id, so the
 * next start finds it by lookup.
 */
export function parkOrderId(emulatedId: string): string {
  return derivedOrderId(emulatedId, 'p', 'parked');
}

function derivedOrderId(emulatedId: string, mark: 'x' | 'p', what: string): string {
  const id = `${emulatedId}-${mark}`;
  if (id.length > 36)
    throw new Error(`Invariant violated: ${what} order id ${id} is longer than Binance's 36 characters`);
  return id;
}

/** The rest of a Keel order id after its prefix: signal bar (base 36 s), sequence, optional exit or park mark. */
const SIGNAL_TAIL = /^[0-9a-z]+-\d+(-[xp])?$/;
const KEEL_ID = /^k[A-Za-z0-9_-]{0,12}-[0-9a-z]+-\d+(-[xp])?$/;

/**
 * Who placed an exchange order, judged by its client order id: `this-bot` (the shape of
 * `signalOrderId` / `exitOrderId` with this bot's prefix), `other-keel-bot` (the same shape with
 * another prefix: a sibling bot on the same account, never touched), or `foreign` (a person, the
 * exchange's UI, another program). Two bots of one store never share a prefix (a bot whose prefix
 * another bot has is refused at start); bots on one account in different stores should not
 * either: give them distinct ids.
 */
export function orderOwner(botId: string, clientOrderId: string): 'this-bot' | 'other-keel-bot' | 'foreign' {
  const prefix = orderIdPrefix(botId);
  if (clientOrderId.startsWith(prefix) && SIGNAL_TAIL.test(clientOrderId.slice(prefix.length))) return 'this-bot';
  return KEEL_ID.test(clientOrderId) ? 'other-keel-bot' : 'foreign';
}

/**
 * One running strategy in paper or live mode: the same Engine and strategy code as a backtest;
 * only the clock (wall time), the bar source (live or replayed) and the venue differ.
 */
export class BotRunner {
  readonly engine: Engine;
  readonly trades: TradeTracker;
  private readonly feedIndex = new Map<string, number>();
  private stopping = false;
  private lastBarTime = Number.NaN;
  private seqInBar = 0;
  private barsSeen = 0;
  private readonly venue: Venue;
  /** Paper perpetuals' book (absent for spot and live). */
  readonly futures: FuturesBook | undefined;

  constructor(readonly opts: BotOptions) {
    this.trades = new TradeTracker(opts.instruments);
    const params = parseParams(opts.strategy, opts.params);
    const settings = opts.futures;
    this.futures =
      settings !== undefined && opts.venue === undefined
        ? new FuturesBook(opts.account, opts.instruments, (i) => settings(i.symbol))
        : undefined;
    const book = this.futures;
    this.venue =
      opts.venue ??
      new SimulatedVenue(opts.instruments, opts.account, {
        ...(opts.simulated ?? {}),
        ...(book !== undefined ? { marginCheck: book.marginCheck.bind(book) } : {}),
      });
    const log = opts.log;
    this.engine = new Engine({
      clock: systemClock,
      instruments: opts.instruments,
      account: opts.account,
      venue: this.venue,
      strategy: opts.strategy,
      params,
      feeds: opts.feeds,
      ...(opts.risk ? { risk: opts.risk } : {}),
      idFactory: (_seq, time) => {
        if (time !== this.lastBarTime) {
          this.lastBarTime = time;
          this.seqInBar = 0;
        }
        return signalOrderId(opts.botId, time, ++this.seqInBar);
      },
      onFill: this.trades.fill,
      ...(this.futures !== undefined ? { futures: this.futures } : {}),
      onEvent: (e) => {
        if (e.type === 'strategy.error' && log) log('error', `strategy error in ${e.hook}: ${e.message}`);
        opts.onEvent?.(e);
      },
    });
    for (const [i, f] of opts.feeds.entries()) this.feedIndex.set(feedId(f), i);
  }

  get bars(): number {
    return this.barsSeen;
  }

  /** Runs until the source ends or stop() is called. */
  async run(source: BarSource): Promise<void> {
    this.engine.start();
    try {
      for await (const ev of source) {
        if (this.stopping) break;
        const idx = this.feedIndex.get(feedId(ev.feed));
        if (idx === undefined) continue;
        this.engine.onBar(idx, ev.bar);
        this.barsSeen++;
      }
    } finally {
      await source.close();
    }
  }

  /** Stops taking bars; the caller decides about open orders (see shutdown in the CLI). */
  stop(): void {
    this.stopping = true;
  }

  openOrders(): OrderState[] {
    return this.engine.openOrders();
  }

  closedTrades(): readonly Trade[] {
    return this.trades.closed;
  }

  finish(): void {
    this.engine.stop();
  }
}

/** A backtest-equivalent paper run over stored bars (used by the parity test and `keel paper --replay`). */
export async function paperReplay(o: Omit<BotOptions, 'mode' | 'venue'> & { source: BarSource }): Promise<BotRunner> {
  const r = new BotRunner({ ...o, mode: 'paper' });
  await r.run(o.source);
  r.finish();
  return r;
}

export type { BarSeries };
