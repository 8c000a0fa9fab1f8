import { defineStrategy, RSI } from '@keel/core';
import { z } from 'zod';
import { allocation } from './common.ts';

/** Long-only RSI mean reversion: buy when RSI < oversold, close when RSI > overbought. */
export const rsiReversion = defineStrategy({
  name: 'rsi-reversion',
  description: "Buy when Wilder's RSI drops below `oversold`, close when it rises above `overbought` (long only).",
  params: z
    .object({
      period: z.number().int().min(2).default(14),
      oversold: z.number().gt(0).lt(100).default(30),
      overbought: z.number().gt(0).lt(100).default(70),
      allocation,
    })
    .strict()
    .refine((p) => p.oversold < p.overbought, {
      message: 'oversold must be smaller than overbought',
      path: ['oversold'],
    }),
  onStart(ctx) {
    // The levels are kept in the state for the plot, which reads the state only.
    const { oversold, overbought } = ctx.params;
    return { rsi: ctx.indicator(new RSI(ctx.params.period)), oversold, overbought };
  },
  onBar(ctx, s) {
    const r = s.rsi.value;
    if (ctx.position().size === 0) {
      if (r < ctx.params.oversold) ctx.orderTargetPercent(ctx.params.allocation);
    } else if (r > ctx.params.overbought) ctx.close();
  },
  plot: {
    RSI: { panel: 'rsi', value: (s) => s.rsi.value },
    oversold: { panel: 'rsi', value: (s) => s.oversold },
    overbought: { panel: 'rsi', value: (s) => s.overbought },
  },
});
