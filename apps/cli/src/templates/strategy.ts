// A Keel strategy: a parameter schema plus lifecycle hooks. The same code runs in a backtest, in
// paper trading and live; it never asks which one it is in. Guide: docs/strategies.md.
//
//   keel backtest --strategy ./my-strategy.ts --data <candles.csv.gz>
//   keel backtest --strategy ./my-strategy.ts --data <candles.csv.gz> --param fast=20 --param slow=50
//   keel strategies ./my-strategy.ts        (its parameters, defaults and rules)
//
// `@keel/core` and `zod` come with Keel: nothing to install. TypeScript runs as written.
import { CrossOver, defineStrategy, RSI, SMA } from '@keel/core';
import { z } from 'zod';

export default defineStrategy({
  // kebab-case; names the run in reports and the bot in the store.
  name: 'my-strategy',
  description: 'Buy when the fast SMA crosses above the slow one while RSI is not overbought; sell on the cross down.',

  // Every parameter with its type, default and rule: `--param fast=20` is checked against it before
  // the first bar, and a bad value is reported with its line here.
  params: z
    .object({
      fast: z.number().int().min(1).default(10),
      slow: z.number().int().min(2).default(30),
      rsiPeriod: z.number().int().min(2).default(14),
      maxRsi: z.number().gt(0).lt(100).default(70),
      allocation: z.number().gt(0).max(1).default(0.95),
    })
    .strict()
    .refine((p) => p.fast < p.slow, { message: 'fast must be smaller than slow', path: ['fast'] }),

  // Once, before the first bar: register indicators (updated by the engine before each onBar) and
  // return the state the other hooks receive.
  onStart(ctx) {
    return {
      fast: ctx.indicator(new SMA(ctx.params.fast)),
      slow: ctx.indicator(new SMA(ctx.params.slow)),
      rsi: ctx.indicator(new RSI(ctx.params.rsiPeriod)),
      cross: new CrossOver(),
    };
  },

  // Each closed bar, once every registered indicator has a value (the warm-up). A market order
  // decided here fills at the next bar's open. A paper or live bot also runs it on past bars
  // before its first live one (ctx.warmingUp is true then, and no order is sent), so the cross
  // below knows its last side after a restart.
  onBar(ctx, s) {
    const cross = s.cross.update(s.fast.value, s.slow.value); // +1 up, -1 down, 0 neither
    if (ctx.position().size === 0) {
      if (cross > 0 && s.rsi.value < ctx.params.maxRsi) ctx.orderTargetPercent(ctx.params.allocation);
    } else if (cross < 0) {
      ctx.close();
    }
  },

  // Each fill of one of this strategy's orders.
  onFill(ctx, _s, fill) {
    ctx.log(`${fill.side} ${fill.amount} @ ${fill.price}`);
  },

  // The lines the HTML report (`--report <dir>`) draws: over the candles, or in a pane of their own.
  plot: {
    'fast SMA': { panel: 'price', value: (s) => s.fast.value },
    'slow SMA': { panel: 'price', value: (s) => s.slow.value },
    RSI: { panel: 'rsi', value: (s) => s.rsi.value },
  },
});
