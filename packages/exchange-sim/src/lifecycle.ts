import type { OrderStatus } from './types.ts';

/** What can happen to an order once it is accepted. */
/** `expireInMatch`: the exchange's self-trade prevention (status EXPIRED_IN_MATCH). */
export type OrderEvent = 'partialFill' | 'fill' | 'cancel' | 'expire' | 'expireInMatch';

/**
 * The order lifecycle as a `(status, event) -> status` table. A missing entry is a bug in the
 * engine (for example a fill on a cancelled order) and throws at once.
 */
const TABLE: Readonly<Partial<Record<OrderStatus, Partial<Record<OrderEvent, OrderStatus>>>>> = {
  NEW: {
    partialFill: 'PARTIALLY_FILLED',
    fill: 'FILLED',
    cancel: 'CANCELED',
    expire: 'EXPIRED',
    expireInMatch: 'EXPIRED_IN_MATCH',
  },
  PARTIALLY_FILLED: {
    partialFill: 'PARTIALLY_FILLED',
    fill: 'FILLED',
    cancel: 'CANCELED',
    expire: 'EXPIRED',
    expireInMatch: 'EXPIRED_IN_MATCH',
  },
};

export function nextStatus(status: OrderStatus, event: OrderEvent): OrderStatus {
  const next = TABLE[status]?.[event];
  if (next === undefined) throw new Error(`order lifecycle: no transition from ${status} on ${event}`);
  return next;
}
