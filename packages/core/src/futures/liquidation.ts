/**
 * The liquidation price of a USDⓈ-M position, as Binance documents it in "How to Calculate
 * Liquidation Price of USDⓈ-M Futures Contracts"
 * (https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93):
 *
 *   LP = (WB - TMM1 + UPNL1 + cumB + cumL + cumS
 *           - Side1BOTH x Position1BOTH x EP1BOTH - Position1LONG x EP1LONG + Position1SHORT x EP1SHORT)
 *      / (Position1BOTH x MMRB + Position1LONG x MMRL + Position1SHORT x MMRS
 *           - Side1BOTH x Position1BOTH - Position1LONG + Position1SHORT)
 *
 * WB is the cross wallet balance (cross) or the position's isolated wallet (isolated); TMM1 and
 * UPNL1 are the maintenance margin and unrealised PnL of every other cross contract (0 when
 * isolated). It is the mark price at which the margin balance equals the maintenance margin:
 * WB + UPNL1 + sum(size_i x (P - EP_i)) = TMM1 + sum(|size_i| x P x MMR_i - cum_i), solved for P.
 * MMR and cum are those of the tier that holds the notional *at the liquidation price*: Binance's
 * note says to recompute with the other tier when they differ, which `liquidationPrice` does.
 */
import type { NotionalBracket } from './brackets.ts';

/**
 * The inputs of Binance's formula for one contract. A caller on a hot path keeps one object and
 * overwrites its fields: the functions below allocate nothing.
 */
export interface LiquidationInputs {
  /** WB: cross wallet balance (cross margin) or the position's isolated wallet (isolated margin). */
  walletBalance: number;
  /** TMM1: maintenance margin of every other cross contract; 0 for an isolated position. */
  otherMaintenance: number;
  /** UPNL1: unrealised PnL of every other cross contract; 0 for an isolated position. */
  otherUnrealizedPnl: number;
  /** One-way mode: signed size of the BOTH position (Side1BOTH x Position1BOTH); 0 in hedge mode. */
  bothSize: number;
  /** EP1BOTH */
  bothEntry: number;
  /** Hedge mode: size of the LONG position (>= 0); 0 in one-way mode or for an isolated SHORT. */
  longSize: number;
  /** EP1LONG */
  longEntry: number;
  /** Hedge mode: size of the SHORT position as a positive number; 0 in one-way mode or for an isolated LONG. */
  shortSize: number;
  /** EP1SHORT */
  shortEntry: number;
}

/** A zeroed inputs object to reuse. */
export function liquidationInputs(): LiquidationInputs {
  return {
    walletBalance: 0,
    otherMaintenance: 0,
    otherUnrealizedPnl: 0,
    bothSize: 0,
    bothEntry: 0,
    longSize: 0,
    longEntry: 0,
    shortSize: 0,
    shortEntry: 0,
  };
}

/**
 * Binance's formula with given maintenance rates and amounts (the tier already chosen). Returns
 * the raw value: it may be negative (no liquidation possible) or not finite (no position, or a
 * hedge whose sides cancel).
 */
export function liquidationPriceFormula(
  x: LiquidationInputs,
  mmrB: number,
  cumB: number,
  mmrL: number,
  cumL: number,
  mmrS: number,
  cumS: number,
): number {
  const posB = Math.abs(x.bothSize);
  const sideB = x.bothSize > 0 ? 1 : x.bothSize < 0 ? -1 : 0;
  const numerator =
    x.walletBalance -
    x.otherMaintenance +
    x.otherUnrealizedPnl +
    (posB > 0 ? cumB : 0) +
    (x.longSize > 0 ? cumL : 0) +
    (x.shortSize > 0 ? cumS : 0) -
    sideB * posB * x.bothEntry -
    x.longSize * x.longEntry +
    x.shortSize * x.shortEntry;
  const denominator = posB * mmrB + x.longSize * mmrL + x.shortSize * mmrS - sideB * posB - x.longSize + x.shortSize;
  return numerator / denominator;
}

/**
 * The liquidation price, with each position's tier taken at the liquidation price itself (the
 * first consistent combination, tiers tried from the lowest). Returns 0 when there is none, as
 * Binance's `liquidationPrice` does: no position, a result at or below zero (the collateral covers
 * any fall), or hedged sides that cancel.
 */
export function liquidationPrice(x: LiquidationInputs, brackets: readonly NotionalBracket[]): number {
  const posB = Math.abs(x.bothSize);
  const hasB = posB > 0;
  const hasL = x.longSize > 0;
  const hasS = x.shortSize > 0;
  if (!hasB && !hasL && !hasS) return 0;
  const n = brackets.length;
  // One-way mode has one position (B); hedge mode has L and/or S. Unused sides try tier 0 once.
  for (let b = 0; b < (hasB ? n : 1); b++) {
    const tb = brackets[b] as NotionalBracket;
    for (let l = 0; l < (hasL ? n : 1); l++) {
      const tl = brackets[l] as NotionalBracket;
      for (let s = 0; s < (hasS ? n : 1); s++) {
        const ts = brackets[s] as NotionalBracket;
        const lp = liquidationPriceFormula(
          x,
          tb.maintMarginRate,
          tb.cum,
          tl.maintMarginRate,
          tl.cum,
          ts.maintMarginRate,
          ts.cum,
        );
        if (!Number.isFinite(lp)) continue;
        if (hasB && !inTier(tb, posB * lp, b === n - 1)) continue;
        if (hasL && !inTier(tl, x.longSize * lp, l === n - 1)) continue;
        if (hasS && !inTier(ts, x.shortSize * lp, s === n - 1)) continue;
        return lp > 0 ? lp : 0;
      }
    }
  }
  return 0;
}

function inTier(t: NotionalBracket, notional: number, last: boolean): boolean {
  // A negative price (no liquidation) belongs to the first tier: it is reported as 0 anyway.
  if (notional < 0) return t.bracket === 1;
  return notional >= t.notionalFloor && (last || notional < t.notionalCap);
}

/**
 * The liquidation clearance fee (Binance's insurance clearance): `clearanceRate` x the notional
 * closed at the liquidation price, but never more than the margin left after the loss is realised
 * (the user never ends below zero; the insurance fund takes the rest), and never negative.
 */
export function liquidationClearanceFee(notional: number, clearanceRate: number, remainingMargin: number): number {
  return Math.max(0, Math.min(notional * clearanceRate, remainingMargin));
}
