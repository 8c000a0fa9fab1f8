import type { RepoContext } from './context.ts';

/** A stop request waiting for the bot instance it was addressed to. */
export interface StopRequest {
  /** The lock holder the request was made to (`host:pid:nonce`). */
  readonly owner: string;
  /** Who asked (user@host of `keel bots stop`). */
  readonly by: string;
  readonly at: number;
}

export interface StopRequestRepo {
  /**
   * Asks the instance `owner` of the bot to stop (replaces an earlier request). Addressed to one
   * holder, so a request left behind by an instance that crashed never stops the next one.
   */
  request(botId: string, owner: string, by: string): Promise<void>;
  /** The request addressed to `owner`, if any: what a running bot polls for. */
  pending(botId: string, owner: string): Promise<StopRequest | undefined>;
  /** The request waiting for whichever instance, if any (for status). */
  get(botId: string): Promise<StopRequest | undefined>;
  /** Removes the request addressed to `owner` (the bot has honoured it). */
  done(botId: string, owner: string): Promise<void>;
  /** Removes a request addressed to any other instance than `owner` (one that is gone): at start. */
  dropStale(botId: string, owner: string): Promise<void>;
}

export function stopRequestRepo({ db, clock }: RepoContext): StopRequestRepo {
  const toStop = (r: { owner: string; requested_by: string; requested_at: number }): StopRequest => ({
    owner: r.owner,
    by: r.requested_by,
    at: Number(r.requested_at),
  });
  return {
    async request(botId, owner, by) {
      const at = clock.now();
      await db
        .insertInto('bot_stop_requests')
        .values({ bot_id: botId, owner, requested_by: by, requested_at: at })
        .onConflict((oc) => oc.column('bot_id').doUpdateSet({ owner, requested_by: by, requested_at: at }))
        .execute();
    },
    async pending(botId, owner) {
      const r = await db
        .selectFrom('bot_stop_requests')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('owner', '=', owner)
        .executeTakeFirst();
      return r && toStop(r);
    },
    async get(botId) {
      const r = await db.selectFrom('bot_stop_requests').selectAll().where('bot_id', '=', botId).executeTakeFirst();
      return r && toStop(r);
    },
    async done(botId, owner) {
      await db.deleteFrom('bot_stop_requests').where('bot_id', '=', botId).where('owner', '=', owner).execute();
    },
    async dropStale(botId, owner) {
      await db.deleteFrom('bot_stop_requests').where('bot_id', '=', botId).where('owner', '<>', owner).execute();
    },
  };
}
