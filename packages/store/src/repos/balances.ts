import { finite, inTx, type RepoContext } from './context.ts';

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
    async save(botId, list) {
      const now = clock.now();
      const seen = new Set<string>();
      const rows = list.map((b) => {
        const what = `balance ${b.asset} of bot "${botId}"`;
        if (seen.has(b.asset)) throw new Error(`Invalid balances of bot "${botId}": ${b.asset} is listed twice`);
        seen.add(b.asset);
        return {
          bot_id: botId,
          asset: b.asset,
          free: finite(what, 'free', b.free),
          used: finite(what, 'used', b.used),
          total: finite(what, 'total', b.total),
          updated_at: now,
        };
      });
      await inTx(db, async (trx) => {
        await trx.deleteFrom('balances').where('bot_id', '=', botId).execute();
        if (rows.length > 0) await trx.insertInto('balances').values(rows).execute();
      });
    },
    async load(botId) {
      const rows = await db.selectFrom('balances').selectAll().where('bot_id', '=', botId).orderBy('asset').execute();
      return rows.map((r) => ({ asset: r.asset, free: Number(r.free), used: Number(r.used), total: Number(r.total) }));
    },
  };
}
