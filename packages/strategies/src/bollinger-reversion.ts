import { Bollinger, defineStrategy } from '@keel/core';
import { z } from 'zod';
import { allocation, direction, trade } from './common.ts';

/** Bollinger mean reversion: buy a close below the lower band, exit above the middle. */
export const bollingerReversion = defineStrategy({
  name: 'bollinger-reversion',
  description:
    'Buy when the close falls below the lower band, close when it rises above the middle band (direction: long by default, short or both).',
  params: z
    .object({
      period: z.number().int().min(2).default(20),
      stddev: z.number().gt(0).default(2),
      allocation,
      direction,
    })
    .strict(),
  onStart(ctx) {
    return { bb: ctx.indicator(new Bollinger(ctx.params.period, ctx.params.stddev)) };
  },
  onBar(ctx, s, bar) {
    const c = bar.close;
    const b = s.bb;
    const p = ctx.params;
    trade(ctx, p.direction, p.allocation, c < b.lower, c > b.middle, c > b.upper, c < b.middle);
  },
  plot: {
    'upper band': { panel: 'price', value: (s) => s.bb.upper },
    'middle band': { panel: 'price', value: (s) => s.bb.middle },
    'lower band': { panel: 'price', value: (s) => s.bb.lower },
  },
});
