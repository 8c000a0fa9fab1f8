import type { Bar } from '../model/bar.ts';
import type { Liquidity, OrderSide } from '../model/orders.ts';

/** Commission per fill. The default is backtrader's: (|size| * rate) * price, in the quote asset. */
export interface FeeModel {
  fee(side: OrderSide, price: number, amount: number, liquidity: Liquidity): number;
  /**
   * 'quote' (default): every fee in the quote asset. 'base': in the asset received, as Binance
   * charges without BNB: the base asset on buys, the quote on sells (a sell's fee in the base
   * would take coins the account may no longer hold).
   */
  readonly asset: 'quote' | 'base';
}

export function percentFee(rate: number, opts: { makerRate?: number; asset?: 'quote' | 'base' } = {}): FeeModel {
  if (!(rate >= 0)) throw new Error(`fee rate must be >= 0, got ${rate}`);
  return new PercentFee(rate, opts.makerRate ?? rate, opts.asset ?? 'quote');
}

// A class, not an object with a closure: every backtest's fee model then shares one `fee` function,
// so the venue's optimised call to it stays valid from one backtest to the next.
class PercentFee implements FeeModel {
  constructor(
    private readonly rate: number,
    private readonly maker: number,
    readonly asset: 'quote' | 'base',
  ) {}

  fee(side: OrderSide, price: number, amount: number, liquidity: Liquidity): number {
    const r = liquidity === 'maker' ? this.maker : this.rate;
    // Evaluated in backtrader's order: (|s| * r) * p. In base (a buy's coins): a fraction of the amount.
    return this.asset === 'base' && side === 'buy' ? Math.abs(amount) * r : Math.abs(amount) * r * price;
  }
}

/** The asset a fee model charges a fill in (see FeeModel.asset). */
export function feeAssetOf(m: FeeModel, side: OrderSide, base: string, quote: string): string {
  return m.asset === 'base' && side === 'buy' ? base : quote;
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

/** A fixed adverse move in basis points on every taker fill. */
export function fixedBpsSlippage(bps: number): SlippageModel {
  if (!(bps >= 0)) throw new Error(`slippage bps must be >= 0, got ${bps}`);
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
