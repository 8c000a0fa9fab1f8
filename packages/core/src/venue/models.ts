import type { Bar } from '../model/bar.ts';
import type { Liquidity, OrderSide } from '../model/orders.ts';

/**
 * Which asset a fee is charged in: `quote` (backtrader's), or `received`: the asset the fill gives
 * the trader, the base on a buy and the quote on a sell (Binance spot without BNB). There is no
 * "always the base": a sell's fee taken in the coin would take coins the account may no longer hold.
 */
export type FeeAsset = 'quote' | 'received';

/** Commission per fill. The default is backtrader's: (|size| * rate) * price, in the quote asset. */
export interface FeeModel {
  /** In the asset `feeAssetOf(asset, side)` names. */
  fee(side: OrderSide, price: number, amount: number, liquidity: Liquidity): number;
  readonly asset: FeeAsset;
}

/** True when a fill's fee is charged in the base asset. */
export function feeInBase(asset: FeeAsset, side: OrderSide): boolean {
  return asset === 'received' && side === 'buy';
}

export function percentFee(rate: number, opts: { makerRate?: number; asset?: FeeAsset } = {}): FeeModel {
  if (!(rate >= 0)) throw new Error(`fee rate must be >= 0, got ${rate}`);
  return new PercentFee(rate, opts.makerRate ?? rate, opts.asset ?? 'quote');
}

// A class, not an object with a closure: every backtest's fee model then shares one `fee` function,
// so the venue's optimised call to it stays valid from one backtest to the next.
class PercentFee implements FeeModel {
  constructor(
    private readonly rate: number,
    private readonly maker: number,
    readonly asset: FeeAsset,
  ) {}

  fee(side: OrderSide, price: number, amount: number, liquidity: Liquidity): number {
    const r = liquidity === 'maker' ? this.maker : this.rate;
    // Evaluated in backtrader's order: (|s| * r) * p. In base: a fraction of the amount.
    return feeInBase(this.asset, side) ? Math.abs(amount) * r : Math.abs(amount) * r * price;
  }
}

/** Adjusts the price of taker fills (market, stop) against the trader, and caps fill sizes. */
export interface SlippageModel {
  /** Price actually paid for a taker fill of `amount` at reference price `price` on `bar`. */
  price(side: OrderSide, price: number, amount: number, bar: Bar): number;
  /** Most that can fill on this bar (Infinity = no cap). */
  capacity(bar: Bar): number;
}

export const noSlippage: SlippageModel = {
  price: (_s, p) => p,
  capacity: () => Number.POSITIVE_INFINITY,
};

/** Slippage in basis points is below this: 10,000 bps (100 %) makes a sell's price 0, more a negative one. */
export const MAX_SLIPPAGE_BPS = 10_000;

/** A fixed adverse move in basis points on every taker fill, in [0, MAX_SLIPPAGE_BPS). */
export function fixedBpsSlippage(bps: number): SlippageModel {
  if (!(bps >= 0 && bps < MAX_SLIPPAGE_BPS))
    throw new Error(`slippage must be in [0, ${MAX_SLIPPAGE_BPS}) bps (100 bps = 1 %), got ${bps}`);
  const f = bps / 10_000;
  return {
    price: (side, p) => (side === 'buy' ? p * (1 + f) : p * (1 - f)),
    capacity: () => Number.POSITIVE_INFINITY,
  };
}

/**
 * Volume-share slippage (as zipline's): at most `participation` of the bar's volume fills per bar
 * (the rest stays working: partial fills), and the price moves by impact * share^2.
 */
export function volumeShareSlippage(participation = 0.025, impact = 0.1): SlippageModel {
  if (!(participation > 0 && participation <= 1))
    throw new Error(`participation must be in (0, 1], got ${participation}`);
  return {
    capacity: (bar) => bar.volume * participation,
    price(side, p, amount, bar) {
      const share = bar.volume > 0 ? Math.min(1, amount / bar.volume) : 1;
      const m = impact * share * share;
      return side === 'buy' ? p * (1 + m) : p * (1 - m);
    },
  };
}

/**
 * The price path assumed inside a bar, for limit/stop triggering: open, then the nearer extreme,
 * then the other, then close. A bar that closed up is assumed to have dipped first (O, L, H, C);
 * a bar that closed down to have rallied first (O, H, L, C). Gaps through a level fill at the open.
 */
export function barPath(bar: Bar, out: Float64Array): Float64Array {
  out[0] = bar.open;
  if (bar.close >= bar.open) {
    out[1] = bar.low;
    out[2] = bar.high;
  } else {
    out[1] = bar.high;
    out[2] = bar.low;
  }
  out[3] = bar.close;
  return out;
}
