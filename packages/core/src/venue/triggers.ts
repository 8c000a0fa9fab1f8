import type { OrderRequest, OrderState, TrailingStopOrder } from '../model/orders.ts';

/**
 * Trigger rules shared by every venue that walks a bar's price path (see `barPath`): the simulated
 * venue of backtests and paper trading, and the live venue's client-side emulation of orders the
 * exchange does not have. One implementation, so a live emulated order moves exactly as it would
 * in a backtest of the same bars.
 */

/** Where along a bar's path (0 = the open, 3 = the close) an order executes, and at what price. */
export interface PathHit {
  readonly pos: number;
  readonly price: number;
}

/**
 * GTD: an order expires at the first bar that opens at or after `expireAt` (the bar is not traded).
 * `barTime` is the bar's open time.
 */
export function expiresAt(r: OrderRequest, barTime: number): boolean {
  return r.timeInForce === 'GTD' && r.expireAt !== undefined && barTime >= r.expireAt;
}

/** The stop level of a trailing stop whose best price so far is `anchor`. */
export function trailingLevel(r: TrailingStopOrder, anchor: number): number {
  const off = r.trail;
  const buy = r.side === 'buy';
  return off.kind === 'amount'
    ? buy
      ? anchor + off.value
      : anchor - off.value
    : buy
      ? anchor * (1 + off.value / 100)
      : anchor * (1 - off.value / 100);
}

/**
 * Moves a trailing stop along one bar's path and says where it triggers (null: it did not).
 *
 * The order's state is its `stopLevel` (NaN before its first bar: it is then anchored at the
 * decision price, or the bar's open when there is none). The stop trails the best price seen:
 * a sell stop only ever rises, a buy stop only ever falls. Keeping the level rather than the best
 * price is exact: `trailingLevel` is monotonic, so the best of the levels is the level of the best
 * price, bit for bit, and the level alone is what a restarted live bot needs to resume.
 *
 * A gap through the stop at the open fills at the open; otherwise the stop fills at its level where
 * the path crosses it. Mutates `o.stopLevel` to the level at the trigger, or at the bar's close.
 */
export function trailingStopHit(o: OrderState, path: Float64Array): PathHit | null {
  const r = o.request;
  if (r.type !== 'trailing-stop') throw new Error(`Invariant violated: ${r.id} is a ${r.type}, not a trailing stop`);
  const buy = r.side === 'buy';
  let prev = path[0] as number;
  let stop = o.stopLevel;
  if (Number.isNaN(stop)) stop = trailingLevel(r, Number.isNaN(o.decisionPrice) ? prev : o.decisionPrice);
  if (buy ? prev >= stop : prev <= stop) return { pos: 0, price: prev };
  stop = tighter(buy, stop, trailingLevel(r, prev));
  for (let k = 1; k < 4; k++) {
    const b = path[k] as number;
    if (buy ? b >= stop && prev < stop : b <= stop && prev > stop) {
      o.stopLevel = stop;
      return { pos: k - 1 + (stop - prev) / (b - prev), price: stop };
    }
    stop = tighter(buy, stop, trailingLevel(r, b));
    prev = b;
  }
  o.stopLevel = stop;
  return null;
}

function tighter(buy: boolean, a: number, b: number): number {
  return buy ? Math.min(a, b) : Math.max(a, b);
}
