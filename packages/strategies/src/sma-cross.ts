import { CrossOver, defineStrategy, SMA } from '@keel/core';
import { z } from 'zod';
import { allocation, direction, trade } from './common.ts';

/** SMA crossover: enter `allocation` of equity when fast crosses above slow, exit below. */
export const smaCross = defineStrategy({
  name: 'sma-cross',
  description:
    'Buy when the fast SMA crosses above the slow SMA, close when it crosses below (direction: long by default, short or both).',
  params: z
    .object({
      fast: z.number().int().min(1).default(10),
      slow: z.number().int().min(2).default(30),
      allocation,
      direction,
    })
    .strict()
    .refine((p) => p.fast < p.slow, { message: 'fast must be smaller than slow', path: ['fast'] }),
  onStart(ctx) {
    const fast = ctx.indicator(new SMA(ctx.params.fast));
    const slow = ctx.indicator(new SMA(ctx.params.slow));
    return { fast, slow, cross: new CrossOver() };
  },
  onBar(ctx, s) {
    const c = s.cross.update(s.fast.value, s.slow.value);
    const p = ctx.params;
    trade(ctx, p.direction, p.allocation, c > 0, c < 0, c < 0, c > 0);
  },
  plot: {
    'fast SMA': { panel: 'price', value: (s) => s.fast.value },
    'slow SMA': { panel: 'price', value: (s) => s.slow.value },
  },
});
