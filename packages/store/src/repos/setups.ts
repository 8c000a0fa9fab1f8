import type { RepoContext } from './context.ts';

export interface SessionSetupRecord {
  readonly seq: number;
  readonly setup: unknown;
}

/** How each session of a bot was set up (the runtime's SessionSetup, as JSON). */
export interface SetupRepo {
  /** Saves (or replaces) how session `seq` of the bot was set up. */
  save(botId: string, seq: number, setup: unknown): Promise<void>;
  /** Every session's setup, oldest first. */
  list(botId: string): Promise<SessionSetupRecord[]>;
}

export function setupRepo({ db }: RepoContext): SetupRepo {
  return {
    async save(botId, seq, setup) {
      const json = JSON.stringify(setup ?? null);
      await db
        .insertInto('session_setups')
        .values({ bot_id: botId, seq, setup: json })
        .onConflict((oc) => oc.columns(['bot_id', 'seq']).doUpdateSet({ setup: json }))
        .execute();
    },
    async list(botId) {
      const rows = await db
        .selectFrom('session_setups')
        .selectAll()
        .where('bot_id', '=', botId)
        .orderBy('seq')
        .execute();
      return rows.map((r) => ({ seq: Number(r.seq), setup: JSON.parse(r.setup) as unknown }));
    },
  };
}
