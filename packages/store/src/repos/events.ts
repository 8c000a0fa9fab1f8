import { inTx, nextSeq, type RepoContext } from './context.ts';

export interface StoredEvent {
  readonly seq: number;
  readonly time: number;
  readonly type: string;
  readonly payload: unknown;
}

export interface EventRepo {
  /** Appends to the bot's journal and returns the event's sequence number (1, 2, …, no gaps). */
  append(botId: string, type: string, payload: unknown): Promise<number>;
  list(botId: string, opts?: { readonly afterSeq?: number; readonly limit?: number }): Promise<StoredEvent[]>;
}

export function eventRepo({ db, dialect, clock }: RepoContext): EventRepo {
  return {
    append(botId, type, payload) {
      return inTx(db, async (trx) => {
        const seq = await nextSeq(trx, dialect, 'events', botId);
        await trx
          .insertInto('events')
          .values({ bot_id: botId, seq, time: clock.now(), type, payload: JSON.stringify(payload ?? null) })
          .execute();
        return seq;
      });
    },
    async list(botId, opts = {}) {
      let q = db
        .selectFrom('events')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('seq', '>', opts.afterSeq ?? 0)
        .orderBy('seq');
      if (opts.limit !== undefined) q = q.limit(opts.limit);
      return (await q.execute()).map((e) => ({
        seq: Number(e.seq),
        time: Number(e.time),
        type: e.type,
        payload: JSON.parse(e.payload) as unknown,
      }));
    },
  };
}
