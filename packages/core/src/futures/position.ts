/**
 * A position's size and entry price as fills move them, as Binance keeps them: increasing moves
 * the entry to the size-weighted average, reducing keeps it and realises PnL on the closed part,
 * and a fill through zero closes the old position and opens the rest at the fill price.
 */

/** The mutable state a fill changes (reused by the caller: nothing is allocated per fill). */
export interface PositionState {
  /** Signed size: long > 0, short < 0, 0 flat. */
  size: number;
  /** Average entry price; 0 when flat. */
  entryPrice: number;
}

/**
 * Applies a fill of signed `qty` (buy > 0, sell < 0) at `price` to `pos` in place and returns the
 * realised PnL of the part that closed (0 when the fill only adds). Linear contracts:
 * realised = closed quantity x (price - entry) x direction x contractSize.
 */
export function applyPositionFill(pos: PositionState, qty: number, price: number, contractSize = 1): number {
  if (qty === 0) return 0;
  const size = pos.size;
  if (size === 0 || Math.sign(size) === Math.sign(qty)) {
    const next = size + qty;
    pos.entryPrice = (size * pos.entryPrice + qty * price) / next;
    pos.size = next;
    return 0;
  }
  const closing = Math.min(Math.abs(qty), Math.abs(size));
  const realized = closing * (price - pos.entryPrice) * Math.sign(size) * contractSize;
  // Sizes are step-rounded by the caller; the tolerance only absorbs binary noise (0.1 + 0.2).
  const diff = Math.abs(qty) - Math.abs(size);
  const tol = 1e-12 * Math.abs(size);
  if (diff < -tol) {
    pos.size = size + qty;
  } else if (diff <= tol) {
    pos.size = 0;
    pos.entryPrice = 0;
  } else {
    pos.size = size + qty;
    pos.entryPrice = price;
  }
  return realized;
}

/** The part of a signed fill `qty` that reduces a position of signed `size` (0 when it only adds). */
export function reducingQty(size: number, qty: number): number {
  if (size === 0 || Math.sign(size) === Math.sign(qty)) return 0;
  return Math.min(Math.abs(qty), Math.abs(size));
}
