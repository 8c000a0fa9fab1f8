import { Donchian, defineStrategy } from '@keel/core';
import { z } from 'zod';
import { allocation, direction, trade } from './common.ts';

/**
 * Long-only Donchian breakout (turtle style): buy a close above the previous `entry`-bar high,
 * exit on a close below the previous `exit`-bar low. "Previous" = channels as of the last bar,
 * so the breakout bar itself is not part of the channel it breaks.
 */
export const donchianBreakout = defineStrategy({
  name: 'donchian-breakout',
  description:
    'Buy a close above the prior N-bar high, close on a close below the prior M-bar low (direction: long by default, short or both).',
  params: z
    .object({
      entry: z.number().int().min(2).default(20),
      exit: z.number().int().min(2).default(10),
      allocation,
      direction,
    })
    .strict()
    .refine((p) => p.exit <= p.entry, { message: 'exit must be <= entry', path: ['exit'] }),
  onStart(ctx) {
    return {
      entry: ctx.indicator(new Donchian(ctx.params.entry)),
      exit: ctx.indicator(new Donchian(ctx.params.exit)),
      prevHigh: Number.NaN,
      prevLow: Number.NaN,
    };
  },
  onBar(ctx, s, bar) {
    const c = bar.close;
    const p = ctx.params;
    trade(ctx, p.direction, p.allocation, c > s.prevHigh, c < s.prevLow, c < s.prevLow, c > s.prevHigh);
    s.prevHigh = s.entry.upper;
    s.prevLow = s.exit.lower;
  },
  plot: {
    'entry high': { panel: 'price', value: (s) => s.entry.upper },
    'exit low': { panel: 'price', value: (s) => s.exit.lower },
  },
});
