import { sql } from 'kysely';
import { inTx, type RepoContext } from './context.ts';

export interface LockResult {
  /** True when `owner` holds the lock after the call. */
  readonly acquired: boolean;
  /** Who holds the lock now. */
  readonly owner: string;
  readonly heartbeatAt: number;
  /** True when the lock was taken from another owner whose heartbeat was older than its TTL. */
  readonly tookOver: boolean;
}

export interface LockRepo {
  /**
   * Takes the lock if it is free, already ours, or stale (holder's heartbeat older than its TTL);
   * also if its holder is exactly `takeOverFrom` (a holder the caller knows to be dead, e.g. a
   * crashed process on this host): a compare-and-set, so a lock that changed hands is not taken.
   */
  acquire(botId: string, owner: string, ttlMs: number, opts?: { readonly takeOverFrom?: string }): Promise<LockResult>;
  /** False when the lock is no longer ours (taken over): the caller must stop at once. */
  heartbeat(botId: string, owner: string): Promise<boolean>;
  release(botId: string, owner: string): Promise<boolean>;
  holder(botId: string): Promise<{ owner: string; heartbeatAt: number; ttlMs: number } | undefined>;
}

export function lockRepo({ db, clock }: RepoContext): LockRepo {
  return {
    acquire(botId, owner, ttlMs, opts = {}) {
      if (!(ttlMs > 0)) throw new Error(`Lock TTL must be > 0 ms, got ${ttlMs}`);
      const dead = opts.takeOverFrom ?? '';
      return inTx(db, async (trx) => {
        const now = clock.now();
        const before = await trx
          .selectFrom('bot_locks')
          .select(['owner'])
          .where('bot_id', '=', botId)
          .executeTakeFirst();
        // One statement decides: insert when free; update when ours or stale (by the holder's own
        // TTL). The row lock of ON CONFLICT makes two racing acquirers see each other.
        await trx
          .insertInto('bot_locks')
          .values({ bot_id: botId, owner, acquired_at: now, heartbeat_at: now, ttl_ms: ttlMs })
          .onConflict((oc) =>
            oc
              .column('bot_id')
              .doUpdateSet({
                owner: sql`excluded.owner`,
                acquired_at: sql`case when bot_locks.owner = excluded.owner then bot_locks.acquired_at else excluded.acquired_at end`,
                heartbeat_at: sql`excluded.heartbeat_at`,
                ttl_ms: sql`excluded.ttl_ms`,
              })
              .where(
                sql<boolean>`bot_locks.owner = excluded.owner or bot_locks.heartbeat_at + bot_locks.ttl_ms <= excluded.heartbeat_at or (${dead} <> '' and bot_locks.owner = ${dead})`,
              ),
          )
          .execute();
        const after = await trx
          .selectFrom('bot_locks')
          .select(['owner', 'heartbeat_at'])
          .where('bot_id', '=', botId)
          .executeTakeFirstOrThrow();
        const acquired = after.owner === owner;
        return {
          acquired,
          owner: after.owner,
          heartbeatAt: Number(after.heartbeat_at),
          tookOver: acquired && before !== undefined && before.owner !== owner,
        };
      });
    },
    async heartbeat(botId, owner) {
      const r = await db
        .updateTable('bot_locks')
        .set({ heartbeat_at: clock.now() })
        .where('bot_id', '=', botId)
        .where('owner', '=', owner)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) === 1;
    },
    async release(botId, owner) {
      const r = await db
        .deleteFrom('bot_locks')
        .where('bot_id', '=', botId)
        .where('owner', '=', owner)
        .executeTakeFirst();
      return Number(r.numDeletedRows) === 1;
    },
    async holder(botId) {
      const r = await db.selectFrom('bot_locks').selectAll().where('bot_id', '=', botId).executeTakeFirst();
      return r && { owner: r.owner, heartbeatAt: Number(r.heartbeat_at), ttlMs: Number(r.ttl_ms) };
    },
  };
}
