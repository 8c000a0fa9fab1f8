/**
 * Margin arithmetic of a linear (USDⓈ-M) perpetual, as Binance defines it. Every function takes
 * and returns plain numbers: the engine's hot path calls them per bar without allocating.
 * Sizes are signed (long > 0, short < 0), prices and amounts are in the quote (settle) asset, and
 * `contractSize` is the quantity one contract stands for (1 on Binance USDⓈ-M).
 */
import { bracketFor, type NotionalBracket } from './brackets.ts';

/** The two ways Binance holds margin for a position. */
export type MarginMode = 'cross' | 'isolated';
/** One-way: one net (BOTH) position per symbol; hedge: a LONG and a SHORT position side by side. */
export type PositionMode = 'one-way' | 'hedge';
/** Binance's `positionSide`: BOTH in one-way mode, LONG or SHORT in hedge mode. */
export type PositionSide = 'BOTH' | 'LONG' | 'SHORT';

/** Position notional: |size| x price x contractSize (always >= 0). */
export function positionNotional(size: number, price: number, contractSize = 1): number {
  return Math.abs(size) * price * contractSize;
}

/** Initial margin of a notional at a leverage: notional / leverage. */
export function initialMargin(notional: number, leverage: number): number {
  return notional / leverage;
}

/**
 * Maintenance margin of a position notional (Binance): notional x mmr - cum, with mmr and cum of
 * the tier that holds the notional. 0 for no position.
 */
export function maintenanceMargin(notional: number, brackets: readonly NotionalBracket[]): number {
  if (notional <= 0) return 0;
  const b = bracketFor(brackets, notional);
  return notional * b.maintMarginRate - b.cum;
}

/** Unrealised PnL of a linear position on the mark: size x (mark - entry) x contractSize. */
export function unrealizedPnl(size: number, entryPrice: number, markPrice: number, contractSize = 1): number {
  return size * (markPrice - entryPrice) * contractSize;
}

/** Margin balance: wallet balance + unrealised PnL (Binance's `marginBalance`). */
export function marginBalance(walletBalance: number, unrealizedPnL: number): number {
  return walletBalance + unrealizedPnL;
}

/**
 * Margin ratio (Binance): maintenance margin / margin balance. The position (isolated) or the
 * account's cross positions are liquidated when it reaches 1; +Infinity when the margin balance
 * is zero or negative and there is maintenance margin to hold.
 */
export function marginRatio(maintenance: number, marginBal: number): number {
  if (maintenance <= 0) return 0;
  return marginBal > 0 ? maintenance / marginBal : Number.POSITIVE_INFINITY;
}

/** True when the margin balance has reached the maintenance margin (margin ratio >= 100%). */
export function isLiquidatable(marginBal: number, maintenance: number): boolean {
  return maintenance > 0 && marginBal <= maintenance;
}

/**
 * What may still open positions or back new orders (Binance's `availableBalance` of a cross
 * account): cross wallet + cross unrealised PnL - initial margin of the cross positions - initial
 * margin held by open orders, never below 0.
 */
export function availableBalance(
  crossWallet: number,
  crossUnrealizedPnl: number,
  positionInitialMargin: number,
  openOrderInitialMargin: number,
): number {
  return Math.max(0, crossWallet + crossUnrealizedPnl - positionInitialMargin - openOrderInitialMargin);
}
