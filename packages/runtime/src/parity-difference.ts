// What `keel bots parity` calls a difference, and the number and time helpers both of its
// comparisons (orders, parity-orders.ts; perpetuals' funding and liquidations, parity-futures.ts)
// share.

export const PARITY_KINDS = [
  'missing-order',
  'not-acted',
  'extra-order',
  'amount',
  'unfilled',
  'extra-fill',
  'filled-amount',
  'price',
  'time',
  'fee',
  'fills-not-recorded',
  'funding',
  'liquidation',
] as const;
/**
 * What differs for one order:
 * - `missing-order`: the backtest placed it; the bot has no order for that signal;
 * - `not-acted`: the bot has the order, but it was denied, rejected or dropped (the reason says why);
 * - `extra-order`: the bot placed an order the backtest did not (or the backtest denied);
 * - `amount`: both placed it, for different amounts;
 * - `unfilled`: the backtest's filled, the bot's did not (cancelled, expired, still open);
 * - `extra-fill`: the bot's filled, the backtest's did not;
 * - `filled-amount`: both filled, different amounts;
 * - `price`: both filled, at different prices (slippage against the model, signed against the bot);
 * - `time`: both filled, on different bars;
 * - `fee`: both filled, the fee (valued in the quote currency) or its asset differs from the model's;
 * - `fills-not-recorded`: the bot's order row says filled, but the store has none of its fills;
 * - `funding` (perpetuals): a funding payment differs, or only one side was charged at that time;
 * - `liquidation` (perpetuals): only one side was liquidated, or at another price.
 */
export type ParityKind = (typeof PARITY_KINDS)[number];

/** One order as it ended, on one side. */
export interface OrderOutcome {
  readonly type: string;
  readonly status: string;
  readonly amount: number;
  /** Limit or stop price; null for market orders. */
  readonly price: number | null;
  readonly filled: number;
  /** Volume-weighted fill price; null when unfilled. */
  readonly avgPrice: number | null;
  /** Fees in the quote currency (a base-asset fee valued at its fill's price). */
  readonly fee: number;
  readonly feeAssets: readonly string[];
  /** Open time of the bar during which it first filled; null when unfilled. */
  readonly fillBar: string | null;
  /** How many fills of it the store holds (the order row may say more filled than they add up to). */
  readonly fillCount: number;
  readonly reason: string | null;
  readonly tag: string | null;
}

export interface ParityDifference {
  readonly kind: ParityKind;
  /** The order's client id; for funding and liquidations, the exchange's id of the payment or close (or a made-up one). */
  readonly id: string;
  /** The session whose bars the signal came from; null if outside every compared session. */
  readonly session: number | null;
  readonly symbol: string;
  /** The order's side; for funding and liquidations, the position's (buy: long). */
  readonly side: 'buy' | 'sell';
  /** The close of the bar the order was decided on; for funding and liquidations, their time. */
  readonly signalAt: string;
  /** The difference in a sentence. */
  readonly detail: string;
  /** What it cost the bot against the backtest, in the quote currency (negative: the bot gained); null when not money. */
  readonly cost: number | null;
  readonly bot: OrderOutcome | null;
  readonly backtest: OrderOutcome | null;
}

/** A difference and the time it is ordered by (its signal, or its funding or liquidation time). */
export type Dated = { readonly at: number; readonly d: ParityDifference };

/** a and b differ by more than `tol`, relative to the larger. */
export function differs(a: number, b: number, tol: number): boolean {
  return Math.abs(a - b) > tol * Math.max(Math.abs(a), Math.abs(b), Number.MIN_VALUE);
}

export function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

export function iso(t: number): string | null {
  return Number.isFinite(t) ? new Date(t).toISOString() : null;
}
