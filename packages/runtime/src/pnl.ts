import { Account, defineInstrument, type Fill, type Instrument, isOutsideFee, TradeTracker } from '@keel/core';

/** What a bot's fills add up to. Money in the quote currency of its markets. */
export interface PnlTotals {
  readonly fills: number;
  /** Round trips closed (flat to flat), however many restarts lay between entry and exit. */
  readonly trades: number;
  /** Realised PnL before fees: each reduction of a position, at its price, against the average entry. */
  readonly realizedPnlGross: number;
  /**
   * Fees paid, in the quote currency: a fee charged in the base asset (Binance takes a spot
   * buy's fee in the coin bought) is valued at its fill's price, one paid outside the market (BNB)
   * at the value it was booked at (`Fill.feeValue`). Includes the entry fees of a position still
   * open, so that `realizedPnlNet` is what the closed business did to the cash.
   */
  readonly fees: number;
  /** `realizedPnlGross - fees`. */
  readonly realizedPnlNet: number;
  /** Fees in an asset that is neither base nor quote (BNB) that had no value (no price for it at the fill), per asset: not in `fees`. */
  readonly otherFees: Readonly<Record<string, number>>;
  /**
   * Fees paid in an asset that is neither base nor quote (Binance's BNB), per asset, valued or not:
   * what the account's BNB paid for this bot (the valued part is in `fees`, the rest in `otherFees`).
   */
  readonly feesPaidOutside: Readonly<Record<string, number>>;
}

export const NO_PNL: PnlTotals = {
  fills: 0,
  trades: 0,
  realizedPnlGross: 0,
  fees: 0,
  realizedPnlNet: 0,
  otherFees: {},
  feesPaidOutside: {},
};

/**
 * Adds fills up as the engine books them (the account's arithmetic for realised PnL and fees, the
 * trade tracker's for round trips), so a total read from the store equals what the running bot
 * counted. Fed with a bot's stored fills in order, then with each new one.
 */
export class PnlBook {
  private readonly account: Account;
  private readonly tracker: TradeTracker;
  private readonly instruments = new Map<string, Instrument>();
  private count = 0;
  private readonly outside = new Map<string, number>();
  /** With `perMarket`: a book of each market's fills alone. */
  private readonly markets: Map<string, PnlBook> | undefined;

  constructor(instruments: readonly Instrument[], opts: { readonly perMarket?: boolean } = {}) {
    for (const i of instruments) this.instruments.set(i.symbol, i);
    this.account = new Account(instruments[0]?.quote ?? 'USDT', 0);
    // Only the count of round trips is read: they are not kept (a bot's book lives for months).
    this.tracker = new TradeTracker(instruments, undefined, 0);
    this.markets = opts.perMarket === true ? new Map() : undefined;
  }

  /** Each market's totals (a book made with `perMarket`; empty otherwise). */
  marketTotals(): Map<string, PnlTotals> {
    return new Map([...(this.markets ?? [])].map(([symbol, b]) => [symbol, b.totals()]));
  }

  add(f: Fill): void {
    let inst = this.instruments.get(f.symbol);
    if (inst === undefined) {
      inst = defineInstrument({ symbol: f.symbol });
      this.instruments.set(f.symbol, inst);
    }
    // A hedge-mode fill books against its side's position and round trip; a fee paid outside the
    // market (BNB) at the value it was booked at, if it had one.
    const value = f.feeValue;
    const rate = value === undefined ? undefined : (a: string) => (a === f.feeAsset ? value / f.fee : Number.NaN);
    this.account.applyFill(inst, f.side, f.price, f.amount, f.fee, f.feeAsset, rate, f.positionSide);
    this.tracker.fill(f.symbol, f.side, f.price, f.amount, f.fee, f.feeAsset, f.time, f.orderId, f.positionSide);
    if (f.fee !== 0 && isOutsideFee(inst, f.feeAsset))
      this.outside.set(f.feeAsset, (this.outside.get(f.feeAsset) ?? 0) + f.fee);
    this.count++;
    if (this.markets !== undefined) {
      let m = this.markets.get(f.symbol);
      if (m === undefined) {
        m = new PnlBook([inst]);
        this.markets.set(f.symbol, m);
      }
      m.add(f);
    }
  }

  totals(): PnlTotals {
    const a = this.account;
    return {
      fills: this.count,
      trades: this.tracker.closedCount,
      realizedPnlGross: a.realizedPnl,
      fees: a.feesPaid,
      realizedPnlNet: a.realizedPnl - a.feesPaid,
      otherFees: byAsset(a.unvaluedFees),
      feesPaidOutside: byAsset(this.outside),
    };
  }
}

/**
 * What a status or report line says of fees paid outside the markets and of fees without a
 * value: `; fees paid in 0.0452 BNB (in the fees at their value)`, `; not valued: 0.001 BNB (no
 * price; left out of the fees)`; empty when there are none.
 */
export function outsideFeesNote(t: {
  readonly otherFees?: Readonly<Record<string, number>> | undefined;
  readonly feesPaidOutside?: Readonly<Record<string, number>> | undefined;
}): string {
  const list = (r: Readonly<Record<string, number>>) =>
    Object.entries(r)
      .map(([a, v]) => `${Number(v.toFixed(8))} ${a}`)
      .join(', ');
  const other = t.otherFees ?? {};
  const valued = Object.fromEntries(
    Object.entries(t.feesPaidOutside ?? {})
      .map(([a, v]) => [a, v - (other[a] ?? 0)] as const)
      .filter(([, v]) => v > 0),
  );
  return `${Object.keys(valued).length > 0 ? `; fees paid in ${list(valued)} (in the fees at their value)` : ''}${Object.keys(other).length > 0 ? `; not valued: ${list(other)} (no price; left out of the fees)` : ''}`;
}

/**
 * What the fills' fees in `asset` add up to where they were booked at a value (`Fill.feeValue`: a
 * fee paid outside the market, BNB): their amount and that value. `value / amount` is what a unit
 * of the asset the fees took was worth to the bot; `amount` 0: none had a value.
 */
export function bookedFees(fills: readonly Fill[], asset: string): { amount: number; value: number } {
  let amount = 0;
  let value = 0;
  for (const f of fills)
    if (f.fee !== 0 && f.feeAsset === asset && f.feeValue !== undefined) {
      amount += f.fee;
      value += f.feeValue;
    }
  return { amount, value };
}

function byAsset(m: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...m].sort(([x], [y]) => (x < y ? -1 : 1)));
}

/** The totals of `fills` (oldest first). */
export function pnlOf(fills: readonly Fill[], instruments: readonly Instrument[]): PnlTotals {
  const book = new PnlBook(instruments);
  for (const f of fills) book.add(f);
  return book.totals();
}

/** `later - earlier`: what happened between two totals of the same book. */
export function pnlSince(later: PnlTotals, earlier: PnlTotals): PnlTotals {
  const since = (a: Readonly<Record<string, number>>, b: Readonly<Record<string, number>>) => {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(a)) {
      const d = v - (b[k] ?? 0);
      if (d !== 0) out[k] = d;
    }
    return out;
  };
  const gross = later.realizedPnlGross - earlier.realizedPnlGross;
  const fees = later.fees - earlier.fees;
  return {
    fills: later.fills - earlier.fills,
    trades: later.trades - earlier.trades,
    realizedPnlGross: gross,
    fees,
    realizedPnlNet: gross - fees,
    otherFees: since(later.otherFees, earlier.otherFees),
    feesPaidOutside: since(later.feesPaidOutside, earlier.feesPaidOutside),
  };
}
