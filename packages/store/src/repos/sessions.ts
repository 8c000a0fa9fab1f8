import { inTx, nextSeq, type RepoContext } from './context.ts';

export interface SessionRecord {
  readonly seq: number;
  readonly startedAt: number;
  readonly endedAt: number | null;
  readonly report: unknown;
}

export interface SessionRepo {
  /** Opens the bot's next session (1, 2, …) and returns its number. */
  start(botId: string): Promise<number>;
  end(botId: string, seq: number, report: unknown): Promise<void>;
  list(botId: string): Promise<SessionRecord[]>;
}

export function sessionRepo({ db, dialect, clock }: RepoContext): SessionRepo {
  return {
    start(botId) {
      return inTx(db, async (trx) => {
        const seq = await nextSeq(trx, dialect, 'sessions', botId);
        await trx
          .insertInto('sessions')
          .values({ bot_id: botId, seq, started_at: clock.now(), ended_at: null, report: null })
          .execute();
        return seq;
      });
    },
    async end(botId, seq, report) {
      const r = await db
        .updateTable('sessions')
        .set({ ended_at: clock.now(), report: JSON.stringify(report ?? null) })
        .where('bot_id', '=', botId)
        .where('seq', '=', seq)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) throw new Error(`Unknown session ${seq} of bot "${botId}"`);
    },
    async list(botId) {
      const rows = await db.selectFrom('sessions').selectAll().where('bot_id', '=', botId).orderBy('seq').execute();
      return rows.map((s) => ({
        seq: Number(s.seq),
        startedAt: Number(s.started_at),
        endedAt: s.ended_at === null ? null : Number(s.ended_at),
        report: s.report === null ? null : (JSON.parse(s.report) as unknown),
      }));
    },
  };
}
