import { createHash } from 'node:crypto';
import {
  type Account,
  type AnyStrategy,
  Engine,
  type EngineEvent,
  type FeedKey,
  type FuturesBook,
  type Instrument,
  type OrderState,
  parseParams,
  perPair,
  type RiskConfig,
  SimulatedVenue,
  type SimulatedVenueOptions,
  type Trade,
  TradeTracker,
  type Venue,
} from '@keel/core';

/** How a bot runs one strategy over several markets (`perPair` in @keel/core). */
export interface PerPairSetup {
  readonly slots?: number;
}

export interface BotOptions {
  readonly botId: string;
  readonly strategy: AnyStrategy;
  readonly params?: unknown;
  readonly feeds: readonly FeedKey[];
  readonly instruments: readonly Instrument[];
  readonly account: Account;
  /** Paper: a SimulatedVenue is built from these options. Live: pass the live venue. */
  readonly venue?: Venue;
  readonly simulated?: SimulatedVenueOptions;
  /**
   * The perpetuals' book, built by the bot (it restores its state and, live, applies the fills
   * recovered at start before the engine exists). Paper: margin, funding and liquidation are
   * simulated as in a backtest. Live (venue `exchange`): the exchange does these and the book
   * records what it reports (live/futures.ts).
   */
  readonly futures?: FuturesBook;
  readonly risk?: RiskConfig;
  /** Live: prices of the assets the exchange charges fees in besides the markets' own (BNB); see EngineOptions.prices. */
  readonly prices?: (asset: string) => number;
  /**
   * Several markets traded by one strategy written for one (`keel paper|live --symbol A,B`): an
   * instance per market in one portfolio, as `runBacktest`'s `perPair` (`slots`: the equal shares
   * of the equity, `--max-open-trades`; default one per market).
   */
  readonly perPair?: PerPairSetup;
  /**
   * A running bot: the engine keeps the last `keepFinished` finished orders and fills, and
   * `closedTrades` the last `keepFinished` round trips (up to twice as many), so memory does not
   * grow with its orders (they are in the store). Unset (the parity replay): everything is kept,
   * as in a backtest.
   */
  readonly keepFinished?: number;
  /** Every engine event, in order (persistence, logs). */
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

/**
 * The client order id under which the kept leg of a native OCO list is placed again, after the
 * list was cancelled to change (or cancel) its other leg: derived from the changed leg's
 * replacement (or, after a cancel, from the cancelled leg), so each placement has its own id and a
 * restart finds the current one by lookup (recover.ts).
 */
export function keptOrderId(changedId: string): string {
  return derivedOrderId(changedId, 'k', 'kept leg');
}

function derivedOrderId(emulatedId: string, mark: 'x' | 'p' | 'k', what: string): string {
  const id = `${emulatedId}-${mark}`;
  if (id.length > 36)
    throw new Error(`Invariant violated: ${what} order id ${id} is longer than Binance's 36 characters`);
  return id;
}

/** The rest of a Keel order id after its prefix: signal bar (base 36 s), sequence, optional exit, park or kept-leg mark. */
const SIGNAL_TAIL = /^[0-9a-z]+-\d+(-[xpk])?$/;
const KEEL_ID = /^k[A-Za-z0-9_-]{0,12}-[0-9a-z]+-\d+(-[xpk])?$/;

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
 * The engine of one bot in paper or live mode: the same Engine and strategy code as a backtest,
 * with the bot's client order ids and trade tracking; only the clock, the bar source and the
 * venue differ. It holds no loop: `Bot.run` is the one loop that feeds it bars (warm-up, resume,
 * catch-up, state), in every mode and in the parity tests.
 */
export class BotEngine {
  readonly engine: Engine;
  readonly trades: TradeTracker;
  private readonly venue: Venue;
  private lastBarTime = Number.NaN;
  private seqInBar = 0;
  /** The perpetuals' book (absent for spot). */
  readonly futures: FuturesBook | undefined;

  constructor(readonly opts: BotOptions) {
    this.trades = new TradeTracker(opts.instruments, undefined, opts.keepFinished);
    const params = parseParams(opts.strategy, opts.params);
    this.futures = opts.futures;
    const book = this.futures;
    const venue =
      opts.venue ??
      new SimulatedVenue(opts.instruments, opts.account, {
        ...(opts.simulated ?? {}),
        ...(book !== undefined ? { marginCheck: book.marginCheck.bind(book) } : {}),
      });
    this.venue = venue;
    const log = opts.log;
    this.engine = new Engine({
      instruments: opts.instruments,
      account: opts.account,
      venue,
      strategy:
        opts.perPair === undefined
          ? opts.strategy
          : perPair(opts.strategy, {
              instruments: opts.instruments,
              ...(opts.perPair.slots !== undefined ? { slots: opts.perPair.slots } : {}),
            }),
      params,
      feeds: opts.feeds,
      ...(opts.risk ? { risk: opts.risk } : {}),
      ...(opts.keepFinished !== undefined ? { keepFinished: opts.keepFinished } : {}),
      idFactory: (_seq, time) => {
        if (time !== this.lastBarTime) {
          this.lastBarTime = time;
          this.seqInBar = 0;
        }
        return signalOrderId(opts.botId, time, ++this.seqInBar);
      },
      onFill: this.trades.fill,
      ...(this.futures !== undefined ? { futures: this.futures } : {}),
      ...(opts.prices !== undefined ? { prices: opts.prices } : {}),
      onEvent: (e) => {
        if (e.type === 'strategy.error' && log) log('error', `strategy error in ${e.hook}: ${e.message}`);
        opts.onEvent?.(e);
      },
    });
  }

  /**
   * An order working when the last session ended, carried into this one: tracked by the engine
   * and, unless it is a bracket exit still waiting for its entry, working at the venue again from
   * its decision on (a paper bot's restart; `keel bots parity`'s sessions).
   */
  carryOver(o: OrderState): void {
    this.engine.restoreOrder(o);
    if (o.active) this.venue.submit(o, o.createdAt);
  }

  closedTrades(): readonly Trade[] {
    return this.trades.closed;
  }
}
