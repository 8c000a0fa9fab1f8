import { inTx, type RepoContext } from './context.ts';

export interface StoredState {
  readonly state: unknown;
  readonly version: number;
}

export interface StateRepo {
  /**
   * Saves the strategy state and returns the new version. With `expectedVersion`, the save is a
   * compare-and-set: it returns null (and changes nothing) when another writer got there first.
   */
  save(botId: string, state: unknown, expectedVersion?: number): Promise<number | null>;
  load(botId: string): Promise<StoredState | undefined>;
}

export function stateRepo({ db, clock }: RepoContext): StateRepo {
  return {
    save(botId, value, expectedVersion) {
      return inTx(db, async (trx) => {
        const now = clock.now();
        const json = JSON.stringify(value);
        const cur = await trx
          .selectFrom('strategy_state')
          .select('version')
          .where('bot_id', '=', botId)
          .executeTakeFirst();
        const curVersion = cur === undefined ? 0 : Number(cur.version);
        if (expectedVersion !== undefined && expectedVersion !== curVersion) return null;
        if (cur === undefined) {
          const r = await trx
            .insertInto('strategy_state')
            .values({ bot_id: botId, state: json, version: 1, updated_at: now })
            .onConflict((oc) => oc.column('bot_id').doNothing())
            .executeTakeFirst();
          return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1 ? 1 : null;
        }
        // Compare-and-set on the version, so a concurrent writer cannot be silently overwritten.
        const r = await trx
          .updateTable('strategy_state')
          .set({ state: json, version: curVersion + 1, updated_at: now })
          .where('bot_id', '=', botId)
          .where('version', '=', curVersion)
          .executeTakeFirst();
        return Number(r.numUpdatedRows) === 1 ? curVersion + 1 : null;
      });
    },
    async load(botId) {
      const r = await db.selectFrom('strategy_state').selectAll().where('bot_id', '=', botId).executeTakeFirst();
      return r && { state: JSON.parse(r.state) as unknown, version: Number(r.version) };
    },
  };
}
