import type { Fill, OrderState } from '@keel/core';
import type { StoredBalance } from './repos/balances.ts';
import type { StoreRepos } from './repos/index.ts';
import type { StoredPosition } from './repos/positions.ts';

export interface ApplyFillChange {
  /** The order as it is after this fill. */
  readonly order: OrderState;
  /** The position as it is after this fill. */
  readonly position?: StoredPosition;
  /**
   * The bot's balances as they are after this fill (they replace the stored snapshot). Given
   * with `position`, the two are written in the fill's transaction and can never disagree: a
   * position without the balances it moved (or the reverse) is never on disk.
   */
  readonly balances?: readonly StoredBalance[];
  /** Journal entry type; default `fill`. Pass null to write no event. */
  readonly eventType?: string | null;
}

/**
 * Records a fill with everything it changed, inside one transaction (`tx`): the fill, the order,
 * the position, the balances and the journal event. Returns true when the fill was new; false
 * when the bot already has this very fill (same trade id, same values: the transaction that
 * recorded it wrote its other rows then, so nothing is written again). A trade id recorded with
 * other values throws `StoreConflictError` from `fills.record`, and the transaction rolls back.
 */
export async function applyFill(tx: StoreRepos, botId: string, fill: Fill, change: ApplyFillChange): Promise<boolean> {
  if (!(await tx.fills.record(botId, fill))) return false;
  await tx.orders.upsert(botId, change.order);
  if (change.position) await tx.positions.save(botId, change.position);
  if (change.balances) await tx.balances.save(botId, change.balances);
  const eventType = change.eventType === undefined ? 'fill' : change.eventType;
  if (eventType !== null) await tx.events.append(botId, eventType, fill);
  return true;
}
