/**
 * The synthetic order book around the replayed price: `levels` one-tick levels per side, a fixed
 * spread, each side sized from what the bar's liquidity budget has left. The accounts' own
 * resting orders are not in it (accounts never trade with each other).
 */
import { decimalsOf, floorToStep, roundAssetAmount, roundTo } from '../num.ts';
import type { OrderSide } from '../types.ts';
import type { MarketState } from './model.ts';

/** Price levels, best first: `[price, quantity]`. */
export type BookLevels = Array<[number, number]>;

export interface BookSnapshot {
  bids: BookLevels;
  asks: BookLevels;
  lastUpdateId: number;
}

export class SyntheticBook {
  constructor(
    /** Levels shown per side. */
    readonly levels: number,
    /** Best ask minus best bid, in ticks. */
    readonly spreadTicks: number,
  ) {}

  /** Best bid around a reference price (default the last price). */
  bestBid(m: MarketState, ref = m.price): number {
    return floorToStep(ref, m.tickSize);
  }

  bestAsk(m: MarketState, ref = m.price): number {
    return roundTo(this.bestBid(m, ref) + this.spreadTicks * m.tickSize, decimalsOf(m.tickSize));
  }

  /** The book around `ref`, at most `limit` levels per side. */
  snapshot(m: MarketState, limit = this.levels, ref = m.price): BookSnapshot {
    const n = Math.min(limit, this.levels);
    const dec = decimalsOf(m.tickSize);
    const side = (cap: number, used: number, first: number, dir: 1 | -1): BookLevels => {
      const out: BookLevels = [];
      if (!Number.isFinite(first)) return out;
      const perLevel = cap / this.levels;
      for (let i = 0; i < n; i++) {
        const q = floorToStep(Math.min(perLevel, Math.max(0, perLevel * (i + 1) - used)), m.stepSize);
        const p = roundTo(first + dir * i * m.tickSize, dec);
        if (q > 0 && p > 0) out.push([p, q]);
      }
      return out;
    };
    const l = m.liquidity;
    return {
      bids: side(l.sellCap, l.sellUsed, this.bestBid(m, ref), -1),
      asks: side(l.buyCap, l.buyUsed, this.bestAsk(m, ref), 1),
      lastUpdateId: m.updateId,
    };
  }

  /** True when a limit order at `price` would take liquidity now. */
  isMarketable(m: MarketState, side: OrderSide, price: number, ref = m.price): boolean {
    return side === 'BUY' ? price >= this.bestAsk(m, ref) : price <= this.bestBid(m, ref);
  }

  /** Quantity the book offers to `side` up to a limit price (the book around `ref`, the last price by default). */
  available(m: MarketState, side: OrderSide, limit: number, ref = m.price): number {
    const book = this.snapshot(m, this.levels, ref);
    let q = 0;
    for (const [p, lq] of side === 'BUY' ? book.asks : book.bids) {
      if (side === 'BUY' ? p > limit : p < limit) break;
      q += lq;
    }
    return q;
  }

  /** What taking `qty` from the book would cost (or bring), walking the levels. */
  walkCost(m: MarketState, side: OrderSide, qty: number): number {
    const book = this.snapshot(m);
    let left = qty;
    let cost = 0;
    for (const [p, lq] of side === 'BUY' ? book.asks : book.bids) {
      const take = Math.min(left, lq);
      cost += take * p;
      left -= take;
      if (left <= 1e-12) break;
    }
    return roundAssetAmount(cost);
  }
}
