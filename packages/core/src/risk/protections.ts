import { durationText } from '../model/duration.ts';
import { isoUtc } from '../model/timeframe.ts';
import type { HaltUntil, RiskRuleSpec } from './config.ts';
import type { RiskHalt } from './events.ts';
import { num, pct } from './text.ts';

const DAY = 86_400_000;

/** A closed round trip as the protections see it. */
export interface ClosedTradeInfo {
  readonly symbol: string;
  /** Exit time (the fill that closed it). */
  readonly time: number;
  readonly pnlNet: number;
  /** Net return as a fraction of the entry notional. */
  readonly ret: number;
  /** Closed by a stop order (stop-market, stop-limit or trailing stop). */
  readonly stopOut: boolean;
}

/** The protections' state as plain JSON (see RiskEngine.snapshot). */
export interface ProtectionsSnapshot {
  readonly peak: number | null;
  readonly dayKey: number | null;
  readonly dayStartEquity: number | null;
  readonly stopOuts: readonly number[];
  readonly lossStreak: number;
  readonly recent: readonly { readonly symbol: string; readonly time: number; readonly ret: number }[];
  readonly halts: readonly RiskHalt[];
}

type Rule<K extends RiskRuleSpec['rule']> = Extract<RiskRuleSpec, { rule: K }>;

function find<K extends RiskRuleSpec['rule']>(rules: readonly RiskRuleSpec[], k: K): Rule<K> | undefined {
  return rules.find((r) => r.rule === k) as Rule<K> | undefined;
}

/**
 * The protections: halts from the equity (daily loss, drawdown from the peak) and locks from
 * closed round trips (stoploss guard, cooldown, low profit, losses in a row). Deterministic and
 * serialisable; time is the engine's (bar close times).
 */
export class Protections {
  private peak = Number.NaN;
  private dayKey = Number.NaN;
  private dayStartEquity = Number.NaN;
  private stopOuts: number[] = [];
  private lossStreak = 0;
  private recent: { symbol: string; time: number; ret: number }[] = [];
  private halts: RiskHalt[] = [];
  private readonly daily: Rule<'daily-loss'> | undefined;
  private readonly drawdown: Rule<'max-drawdown'> | undefined;
  private readonly guard: Rule<'stoploss-guard'> | undefined;
  private readonly cooldown: Rule<'cooldown'> | undefined;
  private readonly lowProfit: Rule<'low-profit'> | undefined;
  private readonly maxLosses: Rule<'max-losses'> | undefined;

  constructor(rules: readonly RiskRuleSpec[]) {
    this.daily = find(rules, 'daily-loss');
    this.drawdown = find(rules, 'max-drawdown');
    this.guard = find(rules, 'stoploss-guard');
    this.cooldown = find(rules, 'cooldown');
    this.lowProfit = find(rules, 'low-profit');
    this.maxLosses = find(rules, 'max-losses');
  }

  /** Halts and locks in force (some may have run out: see `expire`). */
  get active(): readonly RiskHalt[] {
    return this.halts;
  }

  /** The halt or lock that denies an entry on `symbol` at `time`, if any. */
  blocking(symbol: string, time: number): RiskHalt | undefined {
    for (const h of this.halts)
      if ((h.scope === 'account' || h.scope === symbol) && (h.until === null || time < h.until)) return h;
    return undefined;
  }

  /** Removes the halts whose time has run out and returns them; their rules start afresh. */
  expire(time: number, equity: number): RiskHalt[] {
    if (this.halts.length === 0) return [];
    const out: RiskHalt[] = [];
    this.halts = this.halts.filter((h) => {
      if (h.until === null || time < h.until) return true;
      out.push(h);
      return false;
    });
    for (const h of out) this.restart(h.rule, time, equity);
    return out;
  }

  /** Ends every halt and lock (the user's explicit resume); returns them. Every rule starts afresh. */
  resume(time: number, equity: number): RiskHalt[] {
    const out = this.halts;
    this.halts = [];
    for (const h of out) this.restart(h.rule, time, equity);
    return out;
  }

  /**
   * A rule starts afresh after its halt ends: the drawdown from the equity now, the day's loss
   * from the equity now, the loss streak and the stop-outs from zero. Without this the condition
   * that halted would halt again on the next bar.
   */
  private restart(rule: RiskHalt['rule'], time: number, equity: number): void {
    switch (rule) {
      case 'max-drawdown':
        if (Number.isFinite(equity)) this.peak = equity;
        return;
      case 'daily-loss':
        if (Number.isFinite(equity)) this.dayStartEquity = equity;
        return;
      case 'max-losses':
        this.lossStreak = 0;
        return;
      case 'stoploss-guard':
        this.stopOuts = this.stopOuts.filter((t) => t > time);
        return;
      default:
        return;
    }
  }

  private haltUntil(u: HaltUntil, time: number): number | null {
    switch (u.kind) {
      case 'resume':
        return null;
      case 'duration':
        return time + u.ms;
      case 'next-day':
        return this.dayKey + DAY;
    }
  }

  private has(rule: RiskHalt['rule'], scope: string): boolean {
    for (const h of this.halts) if (h.rule === rule && h.scope === scope) return true;
    return false;
  }

  private add(h: RiskHalt): RiskHalt {
    // A lock renewed while it runs is extended, not stacked.
    const i = this.halts.findIndex((x) => x.rule === h.rule && x.scope === h.scope);
    if (i >= 0) this.halts.splice(i, 1);
    this.halts.push(h);
    return h;
  }

  /** Checks the equity-based protections at a bar's close; returns the halts this starts. */
  onEquity(time: number, equity: number): RiskHalt[] {
    if (!Number.isFinite(equity)) return [];
    const out: RiskHalt[] = [];
    if (!(this.peak >= equity)) this.peak = equity;
    const d = this.daily;
    if (d !== undefined) {
      const key = Math.floor((time - d.dayStartMs) / DAY) * DAY + d.dayStartMs;
      if (key !== this.dayKey) {
        this.dayKey = key;
        this.dayStartEquity = equity;
      }
      const loss = this.dayStartEquity > 0 ? (this.dayStartEquity - equity) / this.dayStartEquity : 0;
      if (loss >= d.limit && !this.has('daily-loss', 'account'))
        out.push(
          this.add({
            rule: 'daily-loss',
            scope: 'account',
            action: d.action,
            since: time,
            until: this.haltUntil(d.until, time),
            limit: d.limit,
            actual: loss,
            message: `daily-loss: equity ${num(equity)} is ${pct(loss)} below the day's start ${num(this.dayStartEquity)} (${isoUtc(this.dayKey)}), limit ${pct(d.limit)}`,
          }),
        );
    }
    const dd = this.drawdown;
    if (dd !== undefined && this.peak > 0) {
      const fall = 1 - equity / this.peak;
      if (fall >= dd.limit && !this.has('max-drawdown', 'account'))
        out.push(
          this.add({
            rule: 'max-drawdown',
            scope: 'account',
            action: dd.action,
            since: time,
            until: this.haltUntil(dd.until, time),
            limit: dd.limit,
            actual: fall,
            message: `max-drawdown: equity ${num(equity)} is ${pct(fall)} below the peak ${num(this.peak)}, limit ${pct(dd.limit)}`,
          }),
        );
    }
    return out;
  }

  /** Books a closed round trip; returns the halts and locks it starts. */
  onTradeClosed(t: ClosedTradeInfo): RiskHalt[] {
    const out: RiskHalt[] = [];
    const losing = t.pnlNet < 0;
    const ml = this.maxLosses;
    if (ml !== undefined) {
      this.lossStreak = losing ? this.lossStreak + 1 : 0;
      if (this.lossStreak >= ml.limit && !this.has('max-losses', 'account'))
        out.push(
          this.add({
            rule: 'max-losses',
            scope: 'account',
            action: ml.action,
            since: t.time,
            until: this.haltUntil(ml.until, t.time),
            limit: ml.limit,
            actual: this.lossStreak,
            message: `max-losses: ${this.lossStreak} losing trades in a row (the last on ${t.symbol}), limit ${ml.limit}`,
          }),
        );
    }
    const g = this.guard;
    if (g !== undefined && t.stopOut && losing) {
      this.stopOuts.push(t.time);
      this.stopOuts = this.stopOuts.filter((x) => x > t.time - g.windowMs);
      if (this.stopOuts.length >= g.count)
        out.push(
          this.add({
            rule: 'stoploss-guard',
            scope: 'account',
            action: 'freeze',
            since: t.time,
            until: t.time + g.lockMs,
            limit: g.count,
            actual: this.stopOuts.length,
            message: `stoploss-guard: ${this.stopOuts.length} losing stop-outs within ${durationText(g.windowMs)} (limit ${g.count}): entries locked for ${durationText(g.lockMs)}`,
          }),
        );
    }
    const c = this.cooldown;
    if (c !== undefined && losing)
      out.push(
        this.add({
          rule: 'cooldown',
          scope: t.symbol,
          action: 'freeze',
          since: t.time,
          until: t.time + c.lockMs,
          limit: 0,
          actual: t.pnlNet,
          message: `cooldown: a losing trade on ${t.symbol} (net ${num(t.pnlNet)}): no entry on it for ${durationText(c.lockMs)}`,
        }),
      );
    const lp = this.lowProfit;
    if (lp !== undefined) {
      this.recent.push({ symbol: t.symbol, time: t.time, ret: t.ret });
      this.recent = this.recent.filter((x) => x.time > t.time - lp.windowMs);
      let n = 0;
      let sum = 0;
      for (const x of this.recent)
        if (x.symbol === t.symbol) {
          n++;
          sum += x.ret;
        }
      if (n >= lp.trades && sum < lp.minProfit)
        out.push(
          this.add({
            rule: 'low-profit',
            scope: t.symbol,
            action: 'freeze',
            since: t.time,
            until: t.time + lp.lockMs,
            limit: lp.minProfit,
            actual: sum,
            message: `low-profit: ${n} trades on ${t.symbol} within ${durationText(lp.windowMs)} returned ${pct(sum)} in sum, below ${pct(lp.minProfit)}: no entry on it for ${durationText(lp.lockMs)}`,
          }),
        );
    }
    return out;
  }

  snapshot(): ProtectionsSnapshot {
    const n = (x: number) => (Number.isFinite(x) ? x : null);
    return {
      peak: n(this.peak),
      dayKey: n(this.dayKey),
      dayStartEquity: n(this.dayStartEquity),
      stopOuts: [...this.stopOuts],
      lossStreak: this.lossStreak,
      recent: this.recent.map((x) => ({ ...x })),
      halts: this.halts.map((h) => ({ ...h })),
    };
  }

  restore(s: ProtectionsSnapshot): void {
    const n = (x: number | null) => (x === null ? Number.NaN : x);
    this.peak = n(s.peak);
    this.dayKey = n(s.dayKey);
    this.dayStartEquity = n(s.dayStartEquity);
    this.stopOuts = [...s.stopOuts];
    this.lossStreak = s.lossStreak;
    this.recent = s.recent.map((x) => ({ ...x }));
    this.halts = s.halts.map((h) => ({ ...h }));
  }
}
