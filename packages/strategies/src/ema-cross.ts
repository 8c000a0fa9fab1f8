import { CrossOver, defineStrategy, EMA } from '@keel/core';
import { z } from 'zod';
import { allocation } from './common.ts';

/** Long-only EMA crossover: enter when the fast EMA crosses above the slow EMA, exit below. */
export const emaCross = defineStrategy({
  name: 'ema-cross',
  description: 'Buy when the fast EMA crosses above the slow EMA, close when it crosses below (long only).',
  params: z
    .object({
      fast: z.number().int().min(1).default(12),
      slow: z.number().int().min(2).default(26),
      allocation,
    })
    .strict()
    .refine((p) => p.fast < p.slow, { message: 'fast must be smaller than slow', path: ['fast'] }),
  onStart(ctx) {
    return {
      fast: ctx.indicator(new EMA(ctx.params.fast)),
      slow: ctx.indicator(new EMA(ctx.params.slow)),
      cross: new CrossOver(),
    };
  },
  onBar(ctx, s) {
    const c = s.cross.update(s.fast.value, s.slow.value);
    if (ctx.position().size === 0) {
      if (c > 0) ctx.orderTargetPercent(ctx.params.allocation);
    } else if (c < 0) ctx.close();
  },
  plot: {
    'fast EMA': { panel: 'price', value: (s) => s.fast.value },
    'slow EMA': { panel: 'price', value: (s) => s.slow.value },
  },
});
