import type { StrategyContext } from '@keel/core';
import { z } from 'zod';

/** Fraction of equity an entry targets (backtrader's order_target_percent). */
export const allocation = z
  .number()
  .gt(0, 'allocation must be > 0')
  .max(1, "allocation must be <= 1 (leverage is the market's setting, e.g. --leverage 3 on futures)")
  .default(0.95);

/**
 * Which side a strategy trades: `long` (the default), `short` (sells short on its exit signal:
 * needs a market that can go short, a perpetual), or `both` (reverses on each opposite signal).
 */
export const direction = z.enum(['long', 'short', 'both']).default('long');
export type Direction = z.infer<typeof direction>;

/**
 * Why parameters cannot trade a spot market, or undefined: a `direction` that sells short (spot
 * cannot go short: every short entry would be rejected, and the run would read as buy and hold).
 * Any strategy's parameters, read by name: a strategy without `direction` passes.
 */
export function spotDirectionProblem(params: unknown): string | undefined {
  const d = typeof params === 'object' && params !== null ? (params as { direction?: unknown }).direction : undefined;
  if (d !== 'short' && d !== 'both') return undefined;
  return `direction=${d} sells short, which a spot market cannot: short selling needs a perpetual (--market futures), or use direction=long`;
}

/**
 * Acts on a strategy's four signals in the direction it trades: enters `allocation` of equity long
 * (short: the negative target) from flat, closes on the exit signal, and with `both` reverses
 * from one side to the other on the opposite entry. Long-only, it does exactly what the
 * strategies did before they had a direction (golden masters unchanged).
 */
export function trade(
  ctx: StrategyContext,
  dir: Direction,
  fraction: number,
  longEntry: boolean,
  longExit: boolean,
  shortEntry: boolean,
  shortExit: boolean,
): void {
  const size = ctx.position().size;
  switch (dir) {
    case 'long':
      if (size === 0) {
        if (longEntry) ctx.orderTargetPercent(fraction);
      } else if (longExit) ctx.close();
      return;
    case 'short':
      if (size === 0) {
        if (shortEntry) ctx.orderTargetPercent(-fraction);
      } else if (shortExit) ctx.close();
      return;
    case 'both':
      if (size === 0) {
        if (longEntry) ctx.orderTargetPercent(fraction);
        else if (shortEntry) ctx.orderTargetPercent(-fraction);
      } else if (size > 0) {
        if (shortEntry) ctx.orderTargetPercent(-fraction);
        else if (longExit) ctx.close();
      } else if (longEntry) ctx.orderTargetPercent(fraction);
      else if (shortExit) ctx.close();
      return;
  }
}
