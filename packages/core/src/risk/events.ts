import type { OrderSide } from '../model/orders.ts';
import type { HaltAction, RiskRuleId } from './config.ts';

/** The rule that denied an order: a configured rule, or the sizing model (it yielded nothing). */
export type DenyingRule = RiskRuleId | 'sizing';

/** Why the risk engine denied an order, with the numbers (in the rule's own unit). */
export interface RiskDenial {
  readonly rule: DenyingRule;
  /** The rule's limit (for a halt or a lock: the limit of the rule that halted). */
  readonly limit: number;
  /** The value the order would have reached (for a halt or a lock: the value that tripped it). */
  readonly actual: number;
  readonly message: string;
}

/** A halt (account-wide) or a lock (one symbol): entries are denied while it lasts. */
export interface RiskHalt {
  readonly rule: RiskRuleId;
  /** `account`, or the symbol a lock applies to. */
  readonly scope: string;
  readonly action: HaltAction;
  readonly since: number;
  /** When it ends by itself (UTC ms), or null: only `resumeTrading()` ends it. */
  readonly until: number | null;
  readonly limit: number;
  readonly actual: number;
  readonly message: string;
}

/**
 * One entry of a run's risk log (`BacktestResult.riskEvents`): a denial, a halt, a resume, or a
 * notice (an exit that could not be placed yet, and why). Discriminated on `type`.
 */
export type RiskEvent =
  | {
      readonly type: 'denied';
      readonly time: number;
      readonly rule: DenyingRule;
      readonly action: 'deny';
      readonly symbol: string;
      readonly orderId: string;
      readonly side: OrderSide;
      readonly amount: number;
      readonly limit: number;
      readonly actual: number;
      readonly message: string;
    }
  | ({ readonly type: 'halt'; readonly time: number } & RiskHalt)
  | {
      readonly type: 'resume';
      readonly time: number;
      readonly rule: RiskRuleId;
      readonly action: 'resume';
      readonly scope: string;
      /** `user`: resumeTrading(); `expiry`: the lock's time ran out. */
      readonly by: 'user' | 'expiry';
      readonly message: string;
    }
  | {
      readonly type: 'notice';
      readonly time: number;
      readonly rule: string;
      readonly action: 'notice';
      readonly scope: string;
      readonly message: string;
    };

/** Counts of a run's risk events: denials by rule, halts by rule (what the summary shows). */
export interface RiskCounts {
  readonly denied: Readonly<Record<string, number>>;
  readonly halts: Readonly<Record<string, number>>;
  readonly deniedTotal: number;
  readonly haltsTotal: number;
}

export function countRiskEvents(events: readonly RiskEvent[]): RiskCounts {
  const denied: Record<string, number> = {};
  const halts: Record<string, number> = {};
  let deniedTotal = 0;
  let haltsTotal = 0;
  for (const e of events) {
    if (e.type === 'denied') {
      denied[e.rule] = (denied[e.rule] ?? 0) + 1;
      deniedTotal++;
    } else if (e.type === 'halt') {
      halts[e.rule] = (halts[e.rule] ?? 0) + 1;
      haltsTotal++;
    }
  }
  return { denied: sortKeys(denied), halts: sortKeys(halts), deniedTotal, haltsTotal };
}

function sortKeys(o: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k] as number;
  return out;
}
