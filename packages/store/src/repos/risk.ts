import type { RepoContext } from './context.ts';

/** A bot's risk engine as last saved (see `BotRiskTable`). */
export interface StoredRisk {
  /** The risk engine's snapshot (`keel.risk-state`), or null when only a resume was asked for. */
  readonly state: unknown;
  /** The halts and locks in force when it was saved (the core's `RiskHalt` values). */
  readonly halts: readonly unknown[];
  /** Denials by rule since the bot was created. */
  readonly denied: Readonly<Record<string, number>>;
  /** A resume asked for (`keel bots resume`) and not applied yet. */
  readonly resume?: ResumeRequest;
  readonly updatedAt: number;
}

export interface ResumeRequest {
  /** Who asked (user@host). */
  readonly by: string;
  readonly at: number;
}

export interface RiskSave {
  readonly state: unknown;
  readonly halts: readonly unknown[];
  readonly denied: Readonly<Record<string, number>>;
  /** The resume request this save applied (made at `at`): cleared with the save, in one statement. */
  readonly resumed?: number;
}

export interface RiskRepo {
  /** Saves the bot's risk state; a resume request is kept unless this save applied it (`resumed`). */
  save(botId: string, r: RiskSave): Promise<void>;
  load(botId: string): Promise<StoredRisk | undefined>;
  /**
   * Asks the bot to end its halts and locks (replaces an earlier request). The bot applies it
   * while it runs, or when it next starts: nothing else lifts a halt that lasts until resumed.
   */
  requestResume(botId: string, by: string): Promise<ResumeRequest>;
}

export function riskRepo({ db, clock }: RepoContext): RiskRepo {
  return {
    async save(botId, r) {
      const now = clock.now();
      const values = {
        state: JSON.stringify(r.state),
        halts: JSON.stringify(r.halts),
        denied: JSON.stringify(r.denied),
        updated_at: now,
      };
      await db
        .insertInto('bot_risk')
        .values({ bot_id: botId, ...values, resume_by: null, resume_at: null })
        .onConflict((oc) => oc.column('bot_id').doUpdateSet(values))
        .execute();
      if (r.resumed !== undefined)
        await db
          .updateTable('bot_risk')
          .set({ resume_by: null, resume_at: null })
          .where('bot_id', '=', botId)
          .where('resume_at', '=', r.resumed)
          .execute();
    },
    async load(botId) {
      const r = await db.selectFrom('bot_risk').selectAll().where('bot_id', '=', botId).executeTakeFirst();
      if (r === undefined) return undefined;
      return {
        state: r.state === null ? null : (JSON.parse(r.state) as unknown),
        halts: JSON.parse(r.halts) as unknown[],
        denied: JSON.parse(r.denied) as Record<string, number>,
        ...(r.resume_at !== null && r.resume_by !== null
          ? { resume: { by: r.resume_by, at: Number(r.resume_at) } }
          : {}),
        updatedAt: Number(r.updated_at),
      };
    },
    async requestResume(botId, by) {
      const at = clock.now();
      await db
        .insertInto('bot_risk')
        .values({ bot_id: botId, state: null, halts: '[]', denied: '{}', resume_by: by, resume_at: at, updated_at: at })
        .onConflict((oc) => oc.column('bot_id').doUpdateSet({ resume_by: by, resume_at: at }))
        .execute();
      return { by, at };
    },
  };
}
