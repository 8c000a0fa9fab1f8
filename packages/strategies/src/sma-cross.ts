import { CrossOver, defineStrategy, SMA } from '@keel/core';
import { z } from 'zod';
import { allocation } from './common.ts';

/** Long-only SMA crossover: enter `allocation` of equity when fast crosses above slow, exit below. */
export const smaCross = defineStrategy({
  name: 'sma-cross',
  description: 'Buy when the fast SMA crosses above the slow SMA, close when it crosses below (long only).',
  params: z
    .object({
      fast: z.number().int().min(1).default(10),
      slow: z.number().int().min(2).default(30),
      allocation,
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
    const size = ctx.position().size;
    if (size === 0) {
      if (c > 0) ctx.orderTargetPercent(ctx.params.allocation);
    } else if (c < 0) ctx.close();
  },
  plot: {
    'fast SMA': { panel: 'price', value: (s) => s.fast.value },
    'slow SMA': { panel: 'price', value: (s) => s.slow.value },
  },
});
