import { defineStrategy, RSI } from '@keel/core';
import { z } from 'zod';
import { allocation, direction, trade } from './common.ts';

/** RSI mean reversion: buy when RSI < oversold, close when RSI > overbought. */
export const rsiReversion = defineStrategy({
  name: 'rsi-reversion',
  description:
    "Buy when Wilder's RSI drops below `oversold`, close when it rises above `overbought` (direction: long by default, short or both).",
  params: z
    .object({
      period: z.number().int().min(2).default(14),
      oversold: z.number().gt(0).lt(100).default(30),
      overbought: z.number().gt(0).lt(100).default(70),
      allocation,
      direction,
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
    const p = ctx.params;
    const low = r < p.oversold;
    const high = r > p.overbought;
    trade(ctx, p.direction, p.allocation, low, high, high, low);
  },
  plot: {
    RSI: { panel: 'rsi', value: (s) => s.rsi.value },
    oversold: { panel: 'rsi', value: (s) => s.oversold },
    overbought: { panel: 'rsi', value: (s) => s.overbought },
  },
});
