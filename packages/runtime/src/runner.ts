import {
  type Account,
  type AnyStrategy,
  type BarSeries,
  Engine,
  type EngineEvent,
  type FeedKey,
  feedId,
  type Instrument,
  type OrderState,
  parseParams,
  type RiskRule,
  SimulatedVenue,
  type SimulatedVenueOptions,
  type Trade,
  TradeTracker,
  type Venue,
} from '@keel/core';
import { systemClock } from './clock.ts';
import type { BarSource } from './sources.ts';

export type BotMode = 'paper' | 'live';

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
  readonly risk?: readonly RiskRule[];
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
  const bot = botId.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 12);
  return `k${bot}-${Math.floor(barTime / 1000).toString(36)}-${seqInBar}`;
}

/**
 * One running strategy in paper or live mode: the same Engine and strategy code as a backtest;
 * only the clock (wall time), the bar source (live or replayed) and the venue differ.
 */
export class BotRunner {
  readonly engine: Engine;
  readonly trades = new TradeTracker();
  private readonly feedIndex = new Map<string, number>();
  private stopping = false;
  private lastBarTime = Number.NaN;
  private seqInBar = 0;
  private barsSeen = 0;
  private readonly venue: Venue;

  constructor(readonly opts: BotOptions) {
    const params = parseParams(opts.strategy, opts.params);
    this.venue = opts.venue ?? new SimulatedVenue(opts.instruments, opts.account, opts.simulated ?? {});
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
      onFill: (symbol, side, price, amount, fee, feeAsset, time, orderId) => {
        const inst = opts.instruments.find((i) => i.symbol === symbol);
        this.trades.add(symbol, side, price, amount, inst && feeAsset === inst.base ? fee * price : fee, time, orderId);
      },
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
