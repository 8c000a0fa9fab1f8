import { inTx, type RepoContext } from './context.ts';

export interface StoredBalance {
  readonly asset: string;
  readonly free: number;
  readonly used: number;
  readonly total: number;
}

export interface BalanceRepo {
  /**
   * Replaces the bot's balance snapshot (assets absent from `balances` are removed). The
   * balances a fill changed go through `applyFill` instead, with the fill and its position.
   */
  save(botId: string, balances: readonly StoredBalance[]): Promise<void>;
  load(botId: string): Promise<StoredBalance[]>;
}

export function balanceRepo({ db, clock }: RepoContext): BalanceRepo {
  return {
    save(botId, list) {
      return inTx(db, async (trx) => {
        const now = clock.now();
        await trx.deleteFrom('balances').where('bot_id', '=', botId).execute();
        if (list.length === 0) return;
        await trx
          .insertInto('balances')
          .values(
            list.map((b) => ({
              bot_id: botId,
              asset: b.asset,
              free: b.free,
              used: b.used,
              total: b.total,
              updated_at: now,
            })),
          )
          .execute();
      });
    },
    async load(botId) {
      const rows = await db.selectFrom('balances').selectAll().where('bot_id', '=', botId).orderBy('asset').execute();
      return rows.map((r) => ({ asset: r.asset, free: Number(r.free), used: Number(r.used), total: Number(r.total) }));
    },
  };
}
