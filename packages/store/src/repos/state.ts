import { sql } from 'kysely';
import type { RepoContext } from './context.ts';

export interface StoredState {
  readonly state: unknown;
  readonly version: number;
}

export interface StateRepo {
  /**
   * Saves the strategy state and returns the new version (1, 2, …). Without `expectedVersion`
   * the save always lands. With it, the save is a compare-and-set: it returns null (and changes
   * nothing) when the stored version is not `expectedVersion` (0: no state saved yet), i.e.
   * another writer got there first.
   */
  save(botId: string, state: unknown, expectedVersion?: number): Promise<number | null>;
  load(botId: string): Promise<StoredState | undefined>;
}

export function stateRepo({ db, clock }: RepoContext): StateRepo {
  return {
    async save(botId, value, expectedVersion) {
      const now = clock.now();
      const json = JSON.stringify(value);
      const row = { bot_id: botId, state: json, version: 1, updated_at: now };
      if (expectedVersion === undefined) {
        // One statement, so that a concurrent writer cannot make this save vanish.
        const r = await db
          .insertInto('strategy_state')
          .values(row)
          .onConflict((oc) =>
            oc.column('bot_id').doUpdateSet({
              state: json,
              version: sql<number>`strategy_state.version + 1`,
              updated_at: now,
            }),
          )
          .returning('version')
          .executeTakeFirstOrThrow();
        return Number(r.version);
      }
      if (expectedVersion === 0) {
        const r = await db
          .insertInto('strategy_state')
          .values(row)
          .onConflict((oc) => oc.column('bot_id').doNothing())
          .executeTakeFirst();
        return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1 ? 1 : null;
      }
      const r = await db
        .updateTable('strategy_state')
        .set({ state: json, version: expectedVersion + 1, updated_at: now })
        .where('bot_id', '=', botId)
        .where('version', '=', expectedVersion)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1 ? expectedVersion + 1 : null;
    },
    async load(botId) {
      const r = await db.selectFrom('strategy_state').selectAll().where('bot_id', '=', botId).executeTakeFirst();
      return r && { state: JSON.parse(r.state) as unknown, version: Number(r.version) };
    },
  };
}
