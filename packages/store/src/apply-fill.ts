import type { Fill, OrderState } from '@keel/core';
import type { StoreRepos } from './repos/index.ts';
import type { StoredPosition } from './repos/positions.ts';

export interface ApplyFillChange {
  /** The order as it is after this fill. */
  readonly order: OrderState;
  /** The position as it is after this fill. */
  readonly position?: StoredPosition;
  /** Journal entry type; default `fill`. Pass null to write no event. */
  readonly eventType?: string | null;
}

/**
 * Records a fill and, only if it is new, the order and position it produced plus a journal
 * event, inside one transaction (`tx`). Returns whether the fill was new.
 */
export async function applyFill(tx: StoreRepos, botId: string, fill: Fill, change: ApplyFillChange): Promise<boolean> {
  if (!(await tx.fills.record(botId, fill))) return false;
  await tx.orders.upsert(botId, change.order);
  if (change.position) await tx.positions.save(botId, change.position);
  const eventType = change.eventType === undefined ? 'fill' : change.eventType;
  if (eventType !== null) await tx.events.append(botId, eventType, fill);
  return true;
}
