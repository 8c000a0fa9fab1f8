import { Account, defineInstrument, type Fill, type Instrument, TradeTracker } from '@keel/core';

/** What a bot's fills add up to. Money in the quote currency of its markets. */
export interface PnlTotals {
  readonly fills: number;
  /** Round trips closed (flat to flat), however many restarts lay between entry and exit. */
  readonly trades: number;
  /** Realised PnL before fees: each reduction of a position, at its price, against the average entry. */
  readonly realizedPnlGross: number;
  /**
   * Fees paid, in the quote currency: a fee charged in the base asset (Binance takes a spot
   * buy's fee in the coin bought) is valued at its fill's price. Includes the entry fees of a
   * position still open, so that `realizedPnlNet` is what the closed business did to the cash.
   */
  readonly fees: number;
  /** `realizedPnlGross - fees`. */
  readonly realizedPnlNet: number;
  /** Fees in an asset that is neither base nor quote (BNB), per asset: not in `fees`, not valued (no price for it at the fill). */
  readonly otherFees: Readonly<Record<string, number>>;
}

export const NO_PNL: PnlTotals = {
  fills: 0,
  trades: 0,
  realizedPnlGross: 0,
  fees: 0,
  realizedPnlNet: 0,
  otherFees: {},
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

  constructor(instruments: readonly Instrument[]) {
    for (const i of instruments) this.instruments.set(i.symbol, i);
    this.account = new Account(instruments[0]?.quote ?? 'USDT', 0);
    // Only the count of round trips is read: they are not kept (a bot's book lives for months).
    this.tracker = new TradeTracker(instruments, undefined, 0);
  }

  add(f: Fill): void {
    let inst = this.instruments.get(f.symbol);
    if (inst === undefined) {
      inst = defineInstrument({ symbol: f.symbol });
      this.instruments.set(f.symbol, inst);
    }
    // A hedge-mode fill books against its side's position and round trip.
    this.account.applyFill(inst, f.side, f.price, f.amount, f.fee, f.feeAsset, undefined, f.positionSide);
    this.tracker.fill(f.symbol, f.side, f.price, f.amount, f.fee, f.feeAsset, f.time, f.orderId, f.positionSide);
    this.count++;
  }

  totals(): PnlTotals {
    const a = this.account;
    return {
      fills: this.count,
      trades: this.tracker.closedCount,
      realizedPnlGross: a.realizedPnl,
      fees: a.feesPaid,
      realizedPnlNet: a.realizedPnl - a.feesPaid,
      otherFees: Object.fromEntries([...a.unvaluedFees].sort(([x], [y]) => (x < y ? -1 : 1))),
    };
  }
}

/** The totals of `fills` (oldest first). */
export function pnlOf(fills: readonly Fill[], instruments: readonly Instrument[]): PnlTotals {
  const book = new PnlBook(instruments);
  for (const f of fills) book.add(f);
  return book.totals();
}

/** `later - earlier`: what happened between two totals of the same book. */
export function pnlSince(later: PnlTotals, earlier: PnlTotals): PnlTotals {
  const other: Record<string, number> = {};
  for (const [k, v] of Object.entries(later.otherFees)) {
    const d = v - (earlier.otherFees[k] ?? 0);
    if (d !== 0) other[k] = d;
  }
  const gross = later.realizedPnlGross - earlier.realizedPnlGross;
  const fees = later.fees - earlier.fees;
  return {
    fills: later.fills - earlier.fills,
    trades: later.trades - earlier.trades,
    realizedPnlGross: gross,
    fees,
    realizedPnlNet: gross - fees,
    otherFees: other,
  };
}
