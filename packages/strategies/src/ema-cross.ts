import { CrossOver, defineStrategy, EMA } from '@keel/core';
import { z } from 'zod';
import { allocation, direction, trade } from './common.ts';

/** EMA crossover: enter when the fast EMA crosses above the slow EMA, exit below. */
export const emaCross = defineStrategy({
  name: 'ema-cross',
  description:
    'Buy when the fast EMA crosses above the slow EMA, close when it crosses below (direction: long by default, short or both).',
  params: z
    .object({
      fast: z.number().int().min(1).default(12),
      slow: z.number().int().min(2).default(26),
      allocation,
      direction,
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
    const p = ctx.params;
    trade(ctx, p.direction, p.allocation, c > 0, c < 0, c < 0, c > 0);
  },
  plot: {
    'fast EMA': { panel: 'price', value: (s) => s.fast.value },
    'slow EMA': { panel: 'price', value: (s) => s.slow.value },
  },
});
