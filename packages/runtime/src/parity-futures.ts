// `keel bots parity` for perpetuals: the futures book a session's backtest runs with (its
// settings, starting book, funding rates and marks), and the comparison of the bot's funding payments and
// liquidations with the backtest's. Plain functions over values: the caller reads the store.
import {
  type Account,
  type BarSeries,
  type FundingRateSeries,
  type FundingRecord,
  FuturesBook,
  type FuturesMarketSettings,
  type FuturesSummary,
  humanNumber,
  type Instrument,
  type LiquidationRecord,
} from '@keel/core';
import { type Dated, differs, iso, round } from './parity-difference.ts';
import type { SessionRange } from './parity-orders.ts';
import { fundingSeriesOf, type SessionFutures } from './session.ts';

/** Funding and liquidations of perpetuals, in the settlement currency. */
export interface FuturesTotals {
  /** Net funding: > 0 received. */
  readonly funding: number;
  readonly payments: number;
  readonly liquidations: number;
  readonly clearanceFees: number;
}

/** What the bot journaled of its perpetuals (`futures.funding`, `futures.liquidation`, `futures.adl`, `futures.settlement`). */
export interface BotFuturesRecords {
  readonly funding: readonly FundingRecord[];
  readonly liquidations: readonly LiquidationRecord[];
  /** The exchange's ADL closes (live): counted, never replayed. */
  readonly adlCloses: number;
  /** The exchange's settlement closes of a delisted contract (live): counted, never replayed. */
  readonly settlementCloses: number;
}

/** What a session's backtest needs to build its futures book. */
export interface SessionBookInput {
  readonly seq: number;
  readonly futures: SessionFutures;
  /** The session's starting account (the book's wallet). */
  readonly account: Account;
  readonly instruments: readonly Instrument[];
  /** The bot's funding payments: a live session's backtest charges their rates. */
  readonly recorded: readonly FundingRecord[];
  /** Live rates by symbol, made from `recorded` once over every session (filled in here). */
  readonly rates: Map<string, FundingRateSeries>;
  /**
   * By symbol: the mark bars the session's book read, as it recorded them with the bars it handled
   * (`SessionPerpetual.marks`), over those bars.
   */
  readonly marks: ReadonlyMap<string, BarSeries>;
}

/**
 * The futures book a session's backtest runs with: the session's settings and starting book.
 * Funding: a paper session's own rates (as recorded at its start); live, the exchange charged,
 * and the rates are those of the payments the bot recorded (a funding time at which the bot held
 * nothing has no rate then: the backtest charges nothing there, which a note says).
 * Mark: a paper session with mark bars recorded the one its book read with each bar it handled,
 * and the backtest reads the same (a bar it had none for takes the traded price, counted in the
 * warnings, as the session did). Otherwise the mark is the traded price, and a note says where
 * that can differ: a paper session recorded before Keel kept its marks, and live, where the
 * exchange marks (funding, liquidation) on its own mark price, which the bot does not record.
 */
export function sessionBook(input: SessionBookInput, notes: string[]): FuturesBook {
  const { futures: f, account, instruments, seq, rates: exchangeRates, recorded } = input;
  const settings = new Map<string, FuturesMarketSettings>();
  for (const inst of instruments) {
    const m = f.markets[inst.symbol];
    if (inst.kind !== 'perpetual' || m === undefined) continue;
    let funding: FundingRateSeries | null;
    let fundingSource: string;
    if (m.funding === null) {
      funding = null;
      fundingSource = 'none given';
    } else if (m.funding !== undefined) {
      funding = fundingSeriesOf(inst.symbol, m.funding);
      fundingSource = m.funding.source;
    } else {
      let rates = exchangeRates.get(inst.symbol);
      if (rates === undefined) {
        rates = recordedRates(recorded, inst.symbol);
        exchangeRates.set(inst.symbol, rates);
        notes.push(
          `${inst.symbol}: the backtest charges funding at the rates of the bot's own payments (${rates.length} funding time(s)); at a funding time the bot held nothing, it has no rate and charges nothing`,
        );
        if (m.marks === undefined)
          notes.push(
            `${inst.symbol}: the exchange charged funding and liquidated on its own mark price (each payment records the mark it was charged at), which the bot does not record per bar; the backtest takes the traded price as the mark (funding at the bar's open, the liquidation test at its low or high): a payment that differs by the mark alone, or a liquidation on one side only, can come from that`,
          );
      }
      funding = rates;
      fundingSource = "the rates of the bot's payments";
    }
    const mark = m.marks === undefined ? undefined : input.marks.get(inst.symbol);
    if (m.markSource !== undefined && mark === undefined)
      notes.push(
        `session ${seq}: ${inst.symbol}'s paper session used mark bars (${m.markSource}); the backtest takes the traded price as the mark`,
      );
    settings.set(inst.symbol, {
      leverage: m.leverage,
      marginMode: m.marginMode,
      ...(m.positionMode !== undefined ? { positionMode: m.positionMode } : {}),
      ...(m.brackets !== undefined ? { brackets: m.brackets } : {}),
      ...(m.clearanceRate !== undefined ? { clearanceRate: m.clearanceRate } : {}),
      funding,
      fundingSource,
      ...(mark !== undefined ? { mark, markSource: m.markSource ?? 'the mark bars the session recorded' } : {}),
    });
  }
  const book = new FuturesBook(
    account,
    instruments.filter((i) => settings.has(i.symbol)),
    (i) => settings.get(i.symbol) as FuturesMarketSettings,
    'simulated',
  );
  book.restore(f.book);
  return book;
}

/** The rates of the funding payments a live bot recorded for `symbol`, one row per funding time. */
function recordedRates(recorded: readonly FundingRecord[], symbol: string): FundingRateSeries {
  const byTime = new Map<number, number>();
  for (const r of recorded)
    if (r.symbol === symbol && Number.isFinite(r.time) && Number.isFinite(r.rate)) byTime.set(r.time, r.rate);
  const times = [...byTime.keys()].sort((a, b) => a - b);
  return {
    symbol,
    length: times.length,
    time: Float64Array.from(times),
    rate: Float64Array.from(times, (t) => byTime.get(t) as number),
    intervalHours: new Float64Array(times.length).fill(8),
  };
}

/**
 * A session book's warnings, each named by its session. Live, the rates are only those of the
 * bot's payments: the funding times between have none by design, and are not warned about.
 */
export function sessionBookWarnings(seq: number, f: SessionFutures, summary: FuturesSummary): string[] {
  const live = Object.values(f.markets).some((m) => m.funding === undefined);
  return summary.warnings.filter((w) => !live || !/: no funding data /.test(w)).map((w) => `session ${seq}: ${w}`);
}

export interface FuturesComparisonInput {
  readonly bot: BotFuturesRecords;
  /** What the backtest charged and liquidated over every compared session. */
  readonly backtest: {
    readonly funding: readonly FundingRecord[];
    readonly liquidations: readonly LiquidationRecord[];
  };
  readonly ranges: readonly SessionRange[];
  /** The primary feed's bar length: a payment or close belongs to the session whose bars it falls in. */
  readonly barMs: number;
  /** A symbol's settlement currency. */
  readonly quoteOf: (symbol: string) => string;
  readonly tol: number;
}

export interface FuturesComparison {
  /** Every funding and liquidation difference, dated by the record. */
  readonly differences: readonly Dated[];
  readonly totals: { readonly bot: FuturesTotals; readonly backtest: FuturesTotals };
  readonly notes: readonly string[];
}

/**
 * The bot's funding payments and liquidations during the compared sessions against the
 * backtest's: each payment or close only one side has, or that differs, is named.
 */
export function compareFutures(input: FuturesComparisonInput): FuturesComparison {
  const { bot, backtest, ranges, barMs, quoteOf, tol } = input;
  const notes: string[] = [];
  // A payment or close belongs to a compared session when it falls in the bars it handled.
  const during = (t: number) => ranges.find((r) => t >= r.from - barMs && t < r.to);
  const botFunding = bot.funding.filter((r) => Number.isFinite(r.time));
  const outside = botFunding.filter((r) => during(r.time) === undefined).length;
  if (outside > 0)
    notes.push(
      `${outside} funding payment(s) of the bot fell outside the bars it handled (while it was down, applied at its next start): not compared`,
    );
  if (bot.adlCloses > 0)
    notes.push(
      `${bot.adlCloses} ADL close(s) by the exchange (auto-deleveraging) reduced the bot's position: a backtest never deleverages, so its positions differ from then on`,
    );
  if (bot.settlementCloses > 0)
    notes.push(
      `${bot.settlementCloses} settlement close(s) by the exchange (the contract was delisted) closed the bot's position at the settlement price: a backtest never delists, so its positions differ from then on`,
    );
  const fundingIn = botFunding.filter((r) => during(r.time) !== undefined);
  const liquidationsIn = bot.liquidations.filter((r) => during(r.time) !== undefined);
  return {
    differences: [
      ...compareFunding(fundingIn, backtest.funding, during, quoteOf, tol),
      ...compareLiquidations(liquidationsIn, backtest.liquidations, during, barMs, quoteOf, tol),
    ],
    totals: {
      bot: futuresTotals(fundingIn, liquidationsIn),
      backtest: futuresTotals(backtest.funding, backtest.liquidations),
    },
    notes,
  };
}

/** The backtest's futures summary over every compared session (the report's Futures card). */
export function parityFutures(
  last: FuturesSummary,
  payments: readonly FundingRecord[],
  liquidations: readonly LiquidationRecord[],
  warnings: readonly string[],
): FuturesSummary {
  let paid = 0;
  let received = 0;
  for (const p of payments) {
    if (p.payment < 0) paid -= p.payment;
    else received += p.payment;
  }
  return {
    markets: last.markets,
    funding: received - paid,
    fundingPaid: paid,
    fundingReceived: received,
    fundingEvents: payments.length,
    payments,
    liquidations,
    liquidationFees: liquidations.reduce((a, l) => a + l.clearanceFee, 0),
    warnings,
  };
}

function futuresTotals(funding: readonly FundingRecord[], liquidations: readonly LiquidationRecord[]): FuturesTotals {
  return {
    funding: funding.reduce((a, r) => a + r.payment, 0),
    payments: funding.length,
    liquidations: liquidations.length,
    clearanceFees: liquidations.reduce((a, r) => a + r.clearanceFee, 0),
  };
}

const SLACK_MS = 60_000;
const sideKey = (r: { symbol: string; positionSide?: string }) => `${r.symbol} ${r.positionSide ?? ''}`;

/**
 * Pairs each side's items of one market (and hedge side) in time order, two within `slack` of each
 * other; calls `pair` for each pair and `only` for each item one side has.
 */
function pairInTime<T extends { readonly symbol: string; readonly time: number; readonly positionSide?: string }>(
  bot: readonly T[],
  model: readonly T[],
  slack: number,
  pair: (b: T, m: T) => void,
  only: (x: T, side: 'bot' | 'backtest') => void,
): void {
  const keys = new Set([...bot.map(sideKey), ...model.map(sideKey)]);
  for (const k of keys) {
    const bs = bot.filter((x) => sideKey(x) === k).sort((a, b) => a.time - b.time);
    const ms = model.filter((x) => sideKey(x) === k).sort((a, b) => a.time - b.time);
    let i = 0;
    let j = 0;
    while (i < bs.length || j < ms.length) {
      const b = bs[i];
      const m = ms[j];
      if (b !== undefined && m !== undefined && Math.abs(b.time - m.time) <= slack) {
        pair(b, m);
        i++;
        j++;
      } else if (m === undefined || (b !== undefined && b.time < m.time)) {
        only(b as T, 'bot');
        i++;
      } else {
        only(m, 'backtest');
        j++;
      }
    }
  }
}

/** A funding or liquidation difference, dated by the record (its exchange id, or one made up). */
function futuresDifference(
  kind: 'funding' | 'liquidation',
  r: FundingRecord | LiquidationRecord,
  detail: string,
  cost: number | null,
  during: (t: number) => { seq: number } | undefined,
): Dated {
  return {
    at: r.time,
    d: {
      kind,
      id: r.id ?? `${kind} ${r.symbol}${r.positionSide ? ` ${r.positionSide}` : ''} ${iso(r.time)}`,
      session: during(r.time)?.seq ?? null,
      symbol: r.symbol,
      side: r.size < 0 || r.positionSide === 'short' ? 'sell' : 'buy',
      signalAt: iso(r.time) as string,
      detail,
      cost,
      bot: null,
      backtest: null,
    },
  };
}

function compareFunding(
  bot: readonly FundingRecord[],
  model: readonly FundingRecord[],
  during: (t: number) => { seq: number } | undefined,
  quoteOf: (symbol: string) => string,
  tol: number,
): Dated[] {
  const out: Dated[] = [];
  const how = (r: FundingRecord, q: string) =>
    `${r.payment < 0 ? 'paid' : 'received'} ${round(Math.abs(r.payment), 8)} ${q} on ${humanNumber(r.size)} (rate ${r.rate}, mark ${humanNumber(r.markPrice)})`;
  const add = (r: FundingRecord, detail: string, cost: number) =>
    out.push(futuresDifference('funding', r, detail, cost, during));
  pairInTime(
    bot,
    model,
    SLACK_MS,
    (b, m) => {
      if (!differs(b.payment, m.payment, tol)) return;
      const q = quoteOf(b.symbol);
      add(
        b,
        `funding at ${iso(b.time)}: the bot ${how(b, q)}, the backtest ${how(m, q)}`,
        round(m.payment - b.payment, 8),
      );
    },
    (x, side) => {
      const q = quoteOf(x.symbol);
      if (side === 'bot')
        add(
          x,
          `funding at ${iso(x.time)}: the bot ${how(x, q)}; the backtest was charged nothing then (no position, or no rate)`,
          round(-x.payment, 8),
        );
      else
        add(
          x,
          `funding at ${iso(x.time)}: the backtest ${how(x, q)}; the bot has no payment recorded then`,
          round(x.payment, 8),
        );
    },
  );
  return out;
}

function compareLiquidations(
  bot: readonly LiquidationRecord[],
  model: readonly LiquidationRecord[],
  during: (t: number) => { seq: number } | undefined,
  barMs: number,
  quoteOf: (symbol: string) => string,
  tol: number,
): Dated[] {
  const out: Dated[] = [];
  const how = (r: LiquidationRecord, q: string) =>
    `liquidated ${humanNumber(r.size)} at ${humanNumber(r.price)} (entry ${humanNumber(r.entryPrice)}, PnL ${round(r.realizedPnl, 8)} ${q}, clearance fee ${round(r.clearanceFee, 8)} ${q})`;
  const net = (r: LiquidationRecord) => r.realizedPnl - r.clearanceFee;
  const add = (r: LiquidationRecord, detail: string, cost: number | null) =>
    out.push(futuresDifference('liquidation', r, detail, cost, during));
  pairInTime(
    bot,
    model,
    barMs,
    (b, m) => {
      if (!differs(b.price, m.price, tol) && !differs(b.clearanceFee, m.clearanceFee, tol)) return;
      const q = quoteOf(b.symbol);
      add(b, `the bot ${how(b, q)} at ${iso(b.time)}; the backtest ${how(m, q)}`, round(net(m) - net(b), 8));
    },
    (x, side) => {
      const q = quoteOf(x.symbol);
      add(
        x,
        side === 'bot'
          ? `the bot was ${how(x, q)} at ${iso(x.time)}; the backtest was not`
          : `the backtest was ${how(x, q)} at ${iso(x.time)}; the bot was not`,
        null,
      );
    },
  );
  return out;
}
