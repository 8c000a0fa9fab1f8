import { CrossOver, defineStrategy, MACD } from '@keel/core';
import { z } from 'zod';
import { allocation, direction, trade } from './common.ts';

/** MACD: enter when the MACD line crosses above its signal line, exit when below. */
export const macdStrategy = defineStrategy({
  name: 'macd',
  description:
    'Buy when MACD crosses above its signal line, close when it crosses below (direction: long by default, short or both).',
  params: z
    .object({
      fast: z.number().int().min(2).default(12),
      slow: z.number().int().min(2).default(26),
      signal: z.number().int().min(1).default(9),
      allocation,
      direction,
    })
    .strict()
    .refine((p) => p.fast < p.slow, { message: 'fast must be smaller than slow', path: ['fast'] }),
  onStart(ctx) {
    return {
      macd: ctx.indicator(new MACD(ctx.params.fast, ctx.params.slow, ctx.params.signal)),
      cross: new CrossOver(),
    };
  },
  onBar(ctx, s) {
    const c = s.cross.update(s.macd.macd, s.macd.signal);
    const p = ctx.params;
    trade(ctx, p.direction, p.allocation, c > 0, c < 0, c < 0, c > 0);
  },
  plot: {
    MACD: { panel: 'macd', value: (s) => s.macd.macd },
    signal: { panel: 'macd', value: (s) => s.macd.signal },
  },
});
