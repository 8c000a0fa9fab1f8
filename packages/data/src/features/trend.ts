import { rocColumn, rsiColumn, smaColumn } from '@keel/core';
import type { Feature } from './context.ts';
import { ratioMinusOne } from './rolling.ts';

const emaRatio = (period: number): Feature => ({
  name: `ema_ratio_${period}`,
  family: 'trend',
  warmup: period - 1,
  formula: `C_t / EMA${period}(C)_t - 1 (EMA seeded with the SMA of its first ${period} closes, as TA-Lib)`,
  compute: (f, out) => ratioMinusOne(f.close, f.ema(period), out),
});

/** Trend and momentum. Every indicator here is core's streaming indicator run over the column. */
export const TREND_FEATURES: readonly Feature[] = [
  emaRatio(12),
  emaRatio(48),
  {
    name: 'macd',
    family: 'trend',
    warmup: 33,
    formula: 'MACD line / C, MACD(12,26,9) as TA-Lib (EMA12 - EMA26, both seeded at bar 25; published from bar 33)',
    compute: (f, out) => {
      const m = f.macd().macd;
      for (let i = 0; i < f.n; i++) out[i] = (m[i] as number) / (f.close[i] as number);
    },
  },
  {
    name: 'macd_hist',
    family: 'trend',
    warmup: 33,
    formula: 'MACD histogram / C, MACD(12,26,9) as TA-Lib (MACD line - EMA9 of it)',
    compute: (f, out) => {
      const h = f.macd().histogram;
      for (let i = 0; i < f.n; i++) out[i] = (h[i] as number) / (f.close[i] as number);
    },
  },
  {
    name: 'rsi_14',
    family: 'trend',
    warmup: 14,
    formula: "RSI14(C): 100 - 100 / (1 + Wilder avg gain / Wilder avg loss) (core RSI, TA-Lib's seeding)",
    compute: (f, out) => void rsiColumn(f.close, 14, out),
  },
  {
    name: 'roc_20',
    family: 'trend',
    warmup: 20,
    formula: 'ROC20(C) / 100 = C_t / C_{t-20} - 1',
    compute: (f, out) => {
      rocColumn(f.close, 20, out);
      for (let i = 0; i < f.n; i++) out[i] = (out[i] as number) / 100;
    },
  },
  {
    name: 'adx_14',
    family: 'trend',
    warmup: 27,
    formula: 'ADX14: Wilder average of 100 |+DI - -DI| / (+DI + -DI) (core ADX, as TA-Lib)',
    compute: (f, out) => out.set(f.adx(14)),
  },
  {
    name: 'sma_slope_20',
    family: 'trend',
    warmup: 24,
    formula: 'SMA20(C)_t / SMA20(C)_{t-5} - 1',
    compute: (f, out) => {
      const s = smaColumn(f.close, 20, f.scratch());
      for (let i = 0; i < f.n; i++) out[i] = i >= 5 ? (s[i] as number) / (s[i - 5] as number) - 1 : Number.NaN;
    },
  },
];
