/**
 * What a move of the replayed price between two ticks reaches: the rules stops and resting orders
 * share in the spot and the futures matching engines. Within a bar the path is continuous (every
 * price between two ticks trades); across bars it gaps.
 */
import type { OrderSide } from '../types.ts';

export interface PathMove {
  readonly lo: number;
  readonly hi: number;
  /** A level a falling price reached (or one already above the price it rose from). */
  reachedGoingDown(x: number): boolean;
  /** A level a rising price reached (or one already below the price it fell from). */
  reachedGoingUp(x: number): boolean;
}

export function pathMove(from: number, to: number): PathMove {
  return {
    lo: Math.min(from, to),
    hi: Math.max(from, to),
    reachedGoingDown: (x) => (to < from && to <= x) || (to >= from && x > from),
    reachedGoingUp: (x) => (to > from && to >= x) || (to <= from && x < from),
  };
}

/** Where a triggered stop works from: its own price within a bar, the gap price across bars. */
export function triggerPrice(move: PathMove, stop: number, to: number, withinBar: boolean): number {
  return withinBar ? Math.min(move.hi, Math.max(move.lo, stop)) : to;
}

/**
 * Stop-loss buys and take-profit sells trigger on the way up (price >= stop); stop-loss sells and
 * take-profit buys on the way down (price <= stop).
 */
export function triggersUpward(isStopLoss: boolean, side: OrderSide): boolean {
  return (side === 'BUY') === isStopLoss;
}

/** True when a stop placed now would trigger at once at `price`. */
export function wouldTriggerAt(isStopLoss: boolean, side: OrderSide, stop: number, price: number): boolean {
  return triggersUpward(isStopLoss, side) ? price >= stop : price <= stop;
}

/** A resting limit order as both matching engines hold it. */
export interface RestingOrder {
  readonly order: { readonly side: OrderSide; readonly price: number };
  /** Booking sequence: time priority among orders at one price. */
  readonly seq: number;
  /**
   * Set on an order that started working during the current move (a stop that triggered on the
   * way): the price it joined the book at. Only the rest of the move, from there, can fill it.
   */
  restingFrom?: number | undefined;
}

/**
 * The resting orders a move from `from` to `to` reached, in the order they fill: buys from the
 * highest price, then sells from the lowest, each price level in booking order. An order that
 * joined during the move is checked against the rest of it only; its mark is cleared.
 */
export function crossedInPriority<T extends RestingOrder>(working: readonly T[], from: number, to: number): T[] {
  const whole = pathMove(from, to);
  const reached = (r: T): boolean => {
    const move = r.restingFrom === undefined ? whole : pathMove(r.restingFrom, to);
    r.restingFrom = undefined;
    return r.order.side === 'BUY' ? move.reachedGoingDown(r.order.price) : move.reachedGoingUp(r.order.price);
  };
  const hit = working.filter(reached);
  const buys = hit.filter((r) => r.order.side === 'BUY').sort((x, y) => y.order.price - x.order.price || x.seq - y.seq);
  const sells = hit
    .filter((r) => r.order.side === 'SELL')
    .sort((x, y) => x.order.price - y.order.price || x.seq - y.seq);
  return [...buys, ...sells];
}
