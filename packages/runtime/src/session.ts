import {
  type Account,
  type AnyStrategy,
  type Bar,
  copyBar,
  type FeedKey,
  type FundingRateSeries,
  type FuturesBookState,
  type FuturesMarketSettings,
  type HedgeSide,
  type Instrument,
  type MarginMode,
  type NotionalBracket,
  type PositionMode,
  parseParams,
  type riskConfigInput,
} from '@keel/core';
import type { BotMode, RiskSave, Store } from '@keel/store';
import type { PerPairSetup } from './bot-engine.ts';

/** The fill model a session's orders were filled by. */
export type FillModelSetup =
  /** Paper, `percentFee(rate)` in the quote currency (the CLI's `--fee`). */
  | { readonly kind: 'percent'; readonly rate: number }
  /** Paper with a model given in code (`BotConfig.simulated`): parity needs it passed again. */
  | { readonly kind: 'custom' }
  /** Live: the exchange filled the orders. */
  | { readonly kind: 'exchange' };

/** The bot's state as its session began trading (after loading and, live, reconciliation). */
export interface StartingState {
  readonly currency: string;
  readonly cash: number;
  /** Other asset balances the account held. */
  readonly balances: Readonly<Record<string, number>>;
  readonly positions: readonly {
    readonly symbol: string;
    /** A hedge-mode side (absent: the market's one position). */
    readonly positionSide?: HedgeSide;
    readonly size: number;
    /** null when flat. */
    readonly avgPrice: number | null;
    readonly realizedPnl: number;
  }[];
  /** Orders working from before (restored, live): not part of this session's backtest. */
  readonly openOrders: readonly string[];
}

export interface WarmupRange {
  readonly first: number;
  readonly last: number;
  readonly count: number;
}

/**
 * How one session of a bot ran: everything `keel bots parity` needs to backtest exactly the bars
 * that session saw, from the state it started in. Saved at start; `warmup` is added once the
 * first bar of a feed is handled.
 */
export interface SessionSetup {
  readonly v: 1;
  readonly mode: BotMode;
  readonly strategy: string;
  /** As parsed by the strategy's schema (defaults filled in). */
  readonly params: unknown;
  readonly feeds: readonly FeedKey[];
  readonly instruments: readonly Instrument[];
  readonly model: FillModelSetup;
  readonly start: StartingState;
  /** Per feed (`feedId`): the last bar handled before this session; this session's bars come after it. */
  readonly resumeAfter: Readonly<Record<string, number>>;
  /** Per feed: the bars that only warmed the strategy up before its first handled bar. */
  readonly warmup: Readonly<Record<string, WarmupRange>>;
  /** Per feed: warm-up bars that arrived after trading began (not replayable by parity). */
  readonly lateWarmup?: Readonly<Record<string, number>>;
  /** The risk settings in the parser's grammar (`riskConfigInput`); absent: none. */
  readonly risk?: ReturnType<typeof riskConfigInput>;
  /** Perpetuals: their settings and the futures book as the session began (absent: spot only). */
  readonly futures?: SessionFutures;
  /** One strategy instance per market (`--symbol A,B`, `BotConfig.perPair`); absent: the strategy as written. */
  readonly perPair?: PerPairSetup;
}

/** The rows of a funding-rate series, as a session recorded them (FundingRateSeries' columns). */
export interface FundingRows {
  readonly source: string;
  readonly time: readonly number[];
  readonly rate: readonly number[];
  readonly intervalHours: readonly number[];
}

/** One perpetual's settings as a session ran with it. */
export interface SessionPerpetual {
  readonly leverage: number;
  readonly marginMode: MarginMode;
  readonly positionMode?: PositionMode;
  readonly brackets?: readonly NotionalBracket[];
  readonly clearanceRate?: number;
  /**
   * Paper: the funding rates the bot charged from, from the session's first bar on (`null`: none
   * given, deliberately). Absent live: the exchange charged, and parity takes the rates of the
   * payments the bot recorded.
   */
  readonly funding?: FundingRows | null;
  /** Paper with `--mark`: the file its mark bars came from. */
  readonly markSource?: string;
  /**
   * With mark bars: the bar-log feed (`markFeedId`) in which the session recorded, with each bar it
   * handled, the mark bar its book read for it, so that parity marks as the session did. Absent
   * from a session recorded before Keel kept them (parity then takes the traded price as the mark).
   */
  readonly marks?: string;
}

/** What `keel bots parity` needs to replay a session's perpetuals (docs/futures.md). */
export interface SessionFutures {
  /** By symbol. */
  readonly markets: Readonly<Record<string, SessionPerpetual>>;
  /** The futures book as the session began (its isolated wallets). */
  readonly book: FuturesBookState;
}

/**
 * A session's perpetuals as recorded: each one's settings, and (paper) the funding rows from
 * `from` on (the first bar the session can handle), so that a replay charges what the bot did.
 */
export function sessionFutures(
  instruments: readonly Instrument[],
  settings: (symbol: string) => FuturesMarketSettings,
  book: FuturesBookState,
  venue: 'simulated' | 'exchange',
  from: number,
): SessionFutures {
  const markets: Record<string, SessionPerpetual> = {};
  for (const inst of instruments) {
    if (inst.kind !== 'perpetual') continue;
    const s = settings(inst.symbol);
    markets[inst.symbol] = {
      leverage: s.leverage,
      marginMode: s.marginMode,
      ...(s.positionMode !== undefined ? { positionMode: s.positionMode } : {}),
      ...(s.brackets !== undefined ? { brackets: s.brackets } : {}),
      ...(s.clearanceRate !== undefined ? { clearanceRate: s.clearanceRate } : {}),
      ...(venue === 'simulated'
        ? { funding: s.funding === null ? null : fundingRows(s.funding, s.fundingSource, from) }
        : {}),
      ...(s.mark !== undefined
        ? { markSource: s.markSource ?? 'the mark bars given', marks: markFeedId(inst.symbol) }
        : {}),
    };
  }
  return { markets, book };
}

/** The bar-log feed of the mark bars a session's book read for a perpetual (beside its traded feeds, `feedId`). */
export function markFeedId(symbol: string): string {
  return `${symbol} mark`;
}

/** A series' rows from the last one before `from` on (a funding time in a gap is charged late). */
function fundingRows(f: FundingRateSeries, source: string | undefined, from: number): FundingRows {
  let i = 0;
  while (i + 1 < f.length && (f.time[i + 1] as number) <= from) i++;
  const pick = (c: Float64Array) => Array.from(c.subarray(i));
  return {
    source: source ?? 'the funding series given',
    time: pick(f.time),
    rate: pick(f.rate),
    intervalHours: pick(f.intervalHours),
  };
}

/** Recorded rows back as a series. */
export function fundingSeriesOf(symbol: string, rows: FundingRows): FundingRateSeries {
  return {
    symbol,
    length: rows.time.length,
    time: Float64Array.from(rows.time),
    rate: Float64Array.from(rows.rate),
    intervalHours: Float64Array.from(rows.intervalHours),
  };
}

export function isSessionSetup(x: unknown): x is SessionSetup {
  return typeof x === 'object' && x !== null && (x as { v?: unknown }).v === 1;
}

/** The starting state of an account, as a session setup records it. */
export function startingState(account: Account, openOrders: readonly string[]): StartingState {
  return {
    currency: account.currency,
    cash: account.cash,
    balances: Object.fromEntries([...account.balances].sort(([a], [b]) => (a < b ? -1 : 1))),
    positions: account.positions.map((p) => ({
      symbol: p.instrument.symbol,
      ...(p.positionSide !== undefined ? { positionSide: p.positionSide } : {}),
      size: p.size,
      avgPrice: Number.isNaN(p.avgPrice) ? null : p.avgPrice,
      realizedPnl: p.realizedPnl,
    })),
    openOrders: [...openOrders],
  };
}

/** The params a bot runs with, as stored and compared: parsed by the strategy (defaults filled in). */
export function resolvedParams(strategy: AnyStrategy, params: unknown): unknown {
  return parseParams(strategy, params);
}

/** Bars kept in memory before a write, while the strategy warms up. */
const WARM_BATCH = 2_000;

/**
 * Records the bars a session sees (`store.barLog`) and completes its setup: warm-up bars are
 * batched (a first start may bring hundreds at once), each handled bar is written with the
 * bot's last handled bar times in one transaction, in order with the journal's other writes.
 */
export class SessionRecorder {
  private readonly warmBuf = new Map<string, Bar[]>();
  private readonly warm = new Map<string, { first: number; last: number; count: number }>();
  private readonly late = new Map<string, number>();
  private readonly trading = new Set<string>();
  private setup: SessionSetup;

  constructor(
    private readonly store: Store,
    private readonly botId: string,
    private readonly seq: number,
    setup: SessionSetup,
    private readonly enqueue: (write: () => Promise<void>) => void,
  ) {
    this.setup = setup;
  }

  /** Saves the setup as it is at start. */
  async begin(): Promise<void> {
    await this.store.setups.save(this.botId, this.seq, this.setup);
  }

  /** A bar that only warmed the strategy up. */
  warmUp(feed: string, bar: Bar): void {
    if (this.trading.has(feed)) {
      this.late.set(feed, (this.late.get(feed) ?? 0) + 1);
      return;
    }
    const r = this.warm.get(feed);
    if (r === undefined) this.warm.set(feed, { first: bar.time, last: bar.time, count: 1 });
    else {
      r.last = bar.time;
      r.count++;
    }
    let buf = this.warmBuf.get(feed);
    if (buf === undefined) {
      buf = [];
      this.warmBuf.set(feed, buf);
    }
    buf.push(copyBar(bar));
    if (buf.length >= WARM_BATCH) this.flushWarm(feed);
  }

  /**
   * The bars of one close time the strategy handled (one, or one per feed that has a bar then),
   * each with the mark bar its futures book read for it; `lastBarTime` (and `more`, e.g. a futures
   * book) is the bot's state after them, `risk` its risk engine's. One transaction: a restart never
   * sees one without the other, nor part of a close time (it handles that close time again).
   */
  handled(
    bars: readonly { readonly feed: string; readonly bar: Bar; readonly mark?: { feed: string; bar: Bar } }[],
    lastBarTime: Record<string, number>,
    risk?: RiskSave,
    more?: Record<string, unknown>,
  ): void {
    const rows: { feed: string; bar: Bar }[] = [];
    for (const b of bars) {
      if (!this.trading.has(b.feed)) {
        this.trading.add(b.feed);
        this.flushWarm(b.feed);
        this.saveSetup();
      }
      rows.push({ feed: b.feed, bar: copyBar(b.bar) });
      if (b.mark !== undefined) rows.push({ feed: b.mark.feed, bar: copyBar(b.mark.bar) });
    }
    const { store, botId } = this;
    this.enqueue(() =>
      store.transaction(async (tx) => {
        for (const r of rows) await tx.barLog.record(botId, r.feed, [r.bar]);
        await tx.state.save(botId, { lastBarTime, ...more });
        if (risk !== undefined) await tx.risk.save(botId, risk);
      }),
    );
  }

  /** At stop: what is still buffered, and warm-up that came after trading began. */
  finish(): void {
    for (const feed of this.warmBuf.keys()) this.flushWarm(feed);
    if (this.late.size > 0) this.saveSetup();
  }

  private flushWarm(feed: string): void {
    const bars = this.warmBuf.get(feed);
    if (bars === undefined || bars.length === 0) return;
    this.warmBuf.set(feed, []);
    const { store, botId } = this;
    this.enqueue(() => store.barLog.record(botId, feed, bars));
  }

  private saveSetup(): void {
    this.setup = {
      ...this.setup,
      warmup: Object.fromEntries([...this.warm].map(([k, v]) => [k, { ...v }])),
      ...(this.late.size > 0 ? { lateWarmup: Object.fromEntries(this.late) } : {}),
    };
    const { store, botId, seq } = this;
    const setup = this.setup;
    this.enqueue(() => store.setups.save(botId, seq, setup));
  }
}
