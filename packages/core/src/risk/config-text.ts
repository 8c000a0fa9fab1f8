import { durationText } from '../model/duration.ts';
import type { ExitDistance, HaltUntil, RiskConfig } from './config.ts';

/**
 * A configuration back in the parser's own grammar: `parseRiskConfig(riskConfigInput(c))` gives
 * `c` again. What a report shows and a stored bot can keep in a form a person reads.
 */
export function riskConfigInput(c: RiskConfig): {
  risk: string[];
  sizing: string[];
  exits: Record<string, string>;
} {
  const risk: string[] = [];
  const g = (x: number) => String(x);
  const until = (u: HaltUntil) => (u.kind === 'duration' ? durationText(u.ms) : u.kind);
  for (const r of c.rules) {
    switch (r.rule) {
      case 'max-position':
      case 'cash-reserve':
      case 'max-position-size':
      case 'max-notional':
      case 'max-gross':
      case 'max-net':
      case 'max-leverage':
      case 'max-open-orders':
      case 'max-open-trades':
      case 'min-cash':
        risk.push(`${r.rule}=${g(r.limit)}`);
        break;
      case 'order-rate':
        risk.push(`order-rate=${r.limit}/${durationText(r.windowMs)}`);
        break;
      case 'symbols':
        risk.push(`symbols=${r.allowed.join(',')}`);
        break;
      case 'sides':
        risk.push(`sides=${r.allowed}`);
        break;
      case 'daily-loss':
        risk.push(
          `daily-loss=${g(r.limit)}${r.dayStartMs > 0 ? `:start=${durationText(r.dayStartMs)}` : ''}:${r.action}:${until(r.until)}`,
        );
        break;
      case 'max-drawdown':
      case 'max-losses':
        risk.push(`${r.rule}=${g(r.limit)}:${r.action}:${until(r.until)}`);
        break;
      case 'stoploss-guard':
        risk.push(`stoploss-guard=${r.count}/${durationText(r.windowMs)}:${durationText(r.lockMs)}`);
        break;
      case 'cooldown':
        risk.push(`cooldown=${durationText(r.lockMs)}`);
        break;
      case 'low-profit':
        risk.push(
          `low-profit=${r.trades}/${durationText(r.windowMs)}:${durationText(r.lockMs)}${r.minProfit !== 0 ? `:min=${g(r.minProfit)}` : ''}`,
        );
        break;
      default: {
        const never: never = r;
        throw new Error(`Unhandled risk rule ${(never as { rule: string }).rule}`);
      }
    }
  }
  const sizing: string[] = [];
  const z = c.sizing;
  if (z !== undefined) {
    switch (z.model) {
      case 'quantity':
        sizing.push(`quantity=${g(z.quantity)}`);
        break;
      case 'notional':
        sizing.push(`notional=${g(z.notional)}`);
        break;
      case 'percent':
      case 'risk':
        sizing.push(`${z.model}=${g(z.fraction)}`);
        break;
      case 'volatility':
        sizing.push(`volatility=${g(z.target)}`, `lookback=${z.lookback}`);
        break;
      case 'kelly':
        sizing.push(
          `kelly=${g(z.multiplier)}`,
          `cap=${g(z.cap)}`,
          `min-trades=${z.minTrades}`,
          `fallback=${g(z.fallback)}`,
        );
        break;
    }
  }
  const exits: Record<string, string> = {};
  const x = c.exits;
  if (x !== undefined) {
    const d = (v: ExitDistance) =>
      v.kind === 'percent' ? g(v.value) : v.kind === 'atr' ? `${g(v.multiple)}atr` : `@${g(v.price)}`;
    if (x.stopLoss) exits['stop-loss'] = d(x.stopLoss);
    if (x.takeProfit) exits['take-profit'] = d(x.takeProfit);
    if (x.trailing) exits.trailing = d(x.trailing);
    if (x.breakEven) exits['break-even'] = `${g(x.breakEven.trigger)}:${g(x.breakEven.offset)}`;
    if (x.timeExitMs !== undefined) exits['time-exit'] = durationText(x.timeExitMs);
    if (x.roi) exits.roi = x.roi.map((r) => `${g(r.ageMs / 60_000)}=${g(r.profit)}`).join(',');
    exits['atr-period'] = String(x.atrPeriod);
  }
  return { risk, sizing, exits };
}

/** The settings as one line each, in the parser's grammar (the summary, a log line). */
export function riskConfigText(c: RiskConfig): string[] {
  const i = riskConfigInput(c);
  const out = i.risk.map((r) => `--risk ${r}`);
  if (i.sizing.length > 0) out.push(...i.sizing.map((z) => `--sizing ${z}`));
  for (const [k, v] of Object.entries(i.exits)) if (!(k === 'atr-period' && v === '14')) out.push(`--${k} ${v}`);
  return out;
}
