import type { Engine, EngineEvent, RiskConfig, RiskHalt, RiskSnapshot } from '@keel/core';
import type { RiskSave, Store } from '@keel/store';
import { type Logger, riskLogLine } from './bot-log.ts';

/** What a session's risk engine did, for the session report (absent without risk settings). */
export interface RiskReport {
  /** Orders the risk engine denied this session, by rule. */
  readonly denied: Readonly<Record<string, number>>;
  readonly deniedTotal: number;
  /** Denials by rule since the bot was created (every session). */
  readonly deniedSinceStart: Readonly<Record<string, number>>;
  /** Halts and locks that started this session, by rule. */
  readonly halts: Readonly<Record<string, number>>;
  /** Halts and locks in force when the report was made. */
  readonly inForce: readonly RiskHalt[];
}

/**
 * A bot's risk engine across restarts (docs/risk.md, "For the runtime"): restores the stored
 * state before the first bar, so a halt survives a restart; saves it with every handled bar;
 * applies `keel bots resume` (a request in the store), the only thing that ends a halt that lasts
 * until resumed; logs each halt and resume; counts denials by rule.
 */
export class BotRisk {
  private readonly sessionDenied = new Map<string, number>();
  private readonly total = new Map<string, number>();
  private readonly started = new Map<string, number>();
  private engine: Engine | undefined;
  /** The resume request being applied (its time), so that a poll does not apply it twice. */
  private applied: number | undefined;
  private polling = false;
  /** A resume asked for while the bot was down: applied before the first bar it trades. */
  private pending: { by: string; at: number } | undefined;
  private enqueue: ((w: () => Promise<void>) => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly botId: string,
    private readonly config: RiskConfig | undefined,
    private readonly log: Logger,
  ) {}

  /**
   * After the engine is built and its open orders restored, before the first bar: puts the
   * stored state back and applies a resume asked for while the bot was down. A bot halted with
   * risk settings refuses to run without them (nothing would then hold the halt).
   */
  async restore(engine: Engine, enqueue: (w: () => Promise<void>) => void): Promise<void> {
    this.engine = engine;
    this.enqueue = enqueue;
    const stored = await this.store.risk.load(this.botId);
    for (const [k, v] of Object.entries(stored?.denied ?? {})) this.total.set(k, v);
    const state = stored?.state as RiskSnapshot | null | undefined;
    const risk = engine.risk;
    if (state !== null && state !== undefined) {
      if (risk === undefined) {
        const held = state.protections.halts;
        if (held.length > 0 && stored?.resume === undefined)
          throw new Error(
            `bot "${this.botId}" is halted (${held.map((h) => `${h.rule}: ${h.message}`).join('; ')}); it cannot run without risk settings while a halt holds: resume it first (keel bots resume ${this.botId}) or start it with its risk settings`,
          );
      } else {
        risk.restore(state);
        for (const h of risk.halts())
          this.log(
            'warn',
            `risk: still halted after the restart: ${h.rule} on ${h.scope} (${h.action}${h.until === null ? ', until resumed: keel bots resume' : `, until ${new Date(h.until).toISOString()}`}): ${h.message}`,
          );
      }
    }
    if (stored?.resume !== undefined) {
      this.pending = stored.resume;
      this.applied = stored.resume.at;
    } else if (risk !== undefined && (state === null || state === undefined)) this.save();
  }

  /**
   * Before each bar the bot trades: a resume asked for while it was down is applied now, after
   * the warm-up, dated with the last bar the engine saw.
   */
  beforeBar(): void {
    const p = this.pending;
    if (p === undefined) return;
    this.pending = undefined;
    this.resume(p);
  }

  /** Asks the store whether someone asked to resume; applies it (between two bars). */
  async poll(): Promise<void> {
    if (this.engine === undefined || this.polling) return;
    this.polling = true;
    try {
      const stored = await this.store.risk.load(this.botId).catch(() => undefined);
      if (stored?.resume !== undefined && stored.resume.at !== this.applied) this.resume(stored.resume);
    } finally {
      this.polling = false;
    }
  }

  private resume(req: { by: string; at: number }): void {
    const engine = this.engine as Engine;
    this.applied = req.at;
    const held = engine.risk?.halts() ?? [];
    const time = engine.resumeTrading();
    // Journalled with the time it took effect at: `keel bots parity` resumes its replay there.
    this.enqueue?.(async () => void (await this.store.events.append(this.botId, 'risk.resume', { time, by: req.by })));
    this.log(
      'info',
      held.length > 0
        ? `risk: resumed by ${req.by}: ${held.length} halt(s) and lock(s) ended (${held.map((h) => `${h.rule} on ${h.scope}`).join(', ')}); every protection starts afresh from now`
        : `risk: resume asked by ${req.by}: no halt or lock was in force; the protections start afresh from now`,
    );
    this.save(req.at);
  }

  /** Counts denials and halts; logs halts and resumes (denials have their order line). */
  onEvent(e: EngineEvent): void {
    if (e.type === 'order.denied' && e.denial !== undefined) {
      const r = e.denial.rule;
      this.sessionDenied.set(r, (this.sessionDenied.get(r) ?? 0) + 1);
      this.total.set(r, (this.total.get(r) ?? 0) + 1);
      return;
    }
    if (e.type === 'risk.halt') this.started.set(e.halt.rule, (this.started.get(e.halt.rule) ?? 0) + 1);
    const line = riskLogLine(e);
    if (line === undefined) return;
    this.log(line.level, line.msg, line.data);
    // At once, not only with the bar: a halt a fill starts between two bars must survive a crash.
    this.save();
  }

  /** Queues a write of the state as it is now (`resumed`: the resume request it applied). */
  save(resumed?: number): void {
    const row = this.row(resumed);
    if (row !== undefined) this.enqueue?.(() => this.store.risk.save(this.botId, row));
  }

  /** The row to store, taken now (the write may run later), or undefined without a risk engine. */
  row(resumed?: number): RiskSave | undefined {
    const risk = this.engine?.risk;
    if (risk === undefined) return undefined;
    return {
      state: risk.snapshot(),
      halts: risk.halts(),
      denied: sorted(this.total),
      ...(resumed !== undefined ? { resumed } : {}),
    };
  }

  report(): RiskReport | undefined {
    if (this.config === undefined && this.engine?.risk === undefined) return undefined;
    const denied = sorted(this.sessionDenied);
    return {
      denied,
      deniedTotal: Object.values(denied).reduce((a, b) => a + b, 0),
      deniedSinceStart: sorted(this.total),
      halts: sorted(this.started),
      inForce: this.engine?.risk?.halts() ?? [],
    };
  }
}

function sorted(m: ReadonlyMap<string, number>): Record<string, number> {
  return Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));
}
