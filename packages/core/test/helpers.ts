import {
  type AnyStrategy,
  type BacktestConfig,
  type BarSeries,
  barSeries,
  defineStrategy,
  type FuturesMarketSettings,
  type OrderInput,
  type StrategyContext,
} from '../src/index.ts';

export const T0 = Date.UTC(2024, 0, 1);

/** Hand-made 1m bars: [open, high, low, close, volume?]. */
export function bars(rows: readonly (readonly number[])[], stepMs = 60_000): BarSeries {
  return barSeries({
    time: rows.map((_, i) => T0 + i * stepMs),
    open: rows.map((r) => r[0]!),
    high: rows.map((r) => r[1]!),
    low: rows.map((r) => r[2]!),
    close: rows.map((r) => r[3]!),
    volume: rows.map((r) => r[4] ?? 100),
  });
}

const anyParams = { safeParse: (x: unknown) => ({ success: true as const, data: x as Record<string, unknown> }) };

/** A strategy that runs a script: at bar index i (0-based, primary feed) it calls script[i](ctx). */
export function scripted(script: Record<number, (ctx: StrategyContext) => void>, name = 'scripted'): AnyStrategy {
  return defineStrategy({
    name,
    params: anyParams,
    warmup: 'none',
    onStart: () => ({ i: 0 }),
    onBar(ctx, s) {
      const f = script[s.i];
      s.i++;
      if (f) f(ctx);
    },
  });
}

export function at(i: number, input: OrderInput): Record<number, (ctx: StrategyContext) => void> {
  return { [i]: (ctx) => void ctx.submit(input) };
}

export const PERP = 'LINK/USDT:USDT';

/** A 1m feed of `PERP` on hand-made bars (tick 0.001, whole contracts), and its futures settings. */
export function perpetual(rows: readonly (readonly number[])[]): Pick<BacktestConfig, 'data' | 'futures'> {
  const futures = (): FuturesMarketSettings => ({ leverage: 2, marginMode: 'cross', funding: null });
  return {
    data: [{ symbol: PERP, timeframe: '1m', instrument: { tickSize: 0.001, stepSize: 1 }, series: bars(rows) }],
    futures,
  };
}
