import { Bollinger, defineStrategy } from '@keel/core';
import { z } from 'zod';
import { allocation } from './common.ts';

/** Long-only Bollinger mean reversion: buy a close below the lower band, exit above the middle. */
export const bollingerReversion = defineStrategy({
  name: 'bollinger-reversion',
  description: 'Buy when the close falls below the lower band, close when it rises above the middle band (long only).',
  params: z
    .object({
      period: z.number().int().min(2).default(20),
      stddev: z.number().gt(0).default(2),
      allocation,
    })
    .strict(),
  onStart(ctx) {
    return { bb: ctx.indicator(new Bollinger(ctx.params.period, ctx.params.stddev)) };
  },
  onBar(ctx, s, bar) {
    if (ctx.position().size === 0) {
      if (bar.close < s.bb.lower) ctx.orderTargetPercent(ctx.params.allocation);
    } else if (bar.close > s.bb.middle) ctx.close();
  },
  plot: {
    'upper band': { panel: 'price', value: (s) => s.bb.upper },
    'middle band': { panel: 'price', value: (s) => s.bb.middle },
    'lower band': { panel: 'price', value: (s) => s.bb.lower },
  },
});
