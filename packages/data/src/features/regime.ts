import { emaColumn } from '@keel/core';
import type { Feature } from './context.ts';
import { rollingSum } from './rolling.ts';

/** Regime labels (categorical: never normalised). */
export const REGIME_FEATURES: readonly Feature[] = [
  {
    name: 'trend_regime',
    family: 'regime',
    warmup: 47,
    formula: '+1 if C > EMA48 and EMA12 > EMA48 and ADX14 > 20; -1 if both below and ADX14 > 20; else 0',
    compute: (f, out) => {
      const fast = f.ema(12);
      const slow = f.ema(48);
      const adx = f.adx(14);
      for (let i = 0; i < f.n; i++) {
        const s = slow[i] as number;
        if (Number.isNaN(s)) {
          out[i] = Number.NaN;
          continue;
        }
        const e = fast[i] as number;
        const c = f.close[i] as number;
        // NaN > 20 is false: before the ADX is defined the trend is never "strong".
        const strong = (adx[i] as number) > 20;
        out[i] = strong && c > s && e > s ? 1 : strong && c < s && e < s ? -1 : 0;
      }
    },
  },
  {
    name: 'vol_regime',
    family: 'regime',
    warmup: 20,
    formula: '0 if rv_20 < 0.75 EMA500(rv_20), 2 if > 1.33 EMA500(rv_20), else 1 (1 until the EMA is defined)',
    compute: (f, out) => {
      const rv = f.realisedVolatility(20);
      const base = emaColumn(rv, 500, f.scratch());
      for (let i = 0; i < f.n; i++) {
        const r = rv[i] as number;
        if (Number.isNaN(r)) {
          out[i] = Number.NaN;
          continue;
        }
        const b = base[i] as number;
        out[i] = Number.isNaN(b) ? 1 : r < 0.75 * b ? 0 : r > 1.33 * b ? 2 : 1;
      }
    },
  },
  {
    name: 'efficiency_ratio_20',
    family: 'regime',
    warmup: 20,
    formula: '|C_t - C_{t-20}| / sum20(|C_t - C_{t-1}|) (Kaufman); 0 when the path is flat',
    compute: (f, out) => {
      const c = f.close;
      const t = f.scratch();
      for (let i = 0; i < f.n; i++) t[i] = i > 0 ? Math.abs((c[i] as number) - (c[i - 1] as number)) : Number.NaN;
      rollingSum(t, 20, out);
      for (let i = 0; i < f.n; i++) {
        const s = out[i] as number;
        out[i] =
          i >= 20 && !Number.isNaN(s)
            ? s > 0
              ? Math.abs((c[i] as number) - (c[i - 20] as number)) / s
              : 0
            : Number.NaN;
      }
    },
  },
];
