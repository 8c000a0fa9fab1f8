import { atrColumn } from '@keel/core';
import type { Feature, FeatureInputs } from './context.ts';
import { rollingMean } from './rolling.ts';

/** out = sqrt(max(0, mean_w(t)) x k): a range-based variance estimator annualised by k. */
function annualisedRootMean(f: FeatureInputs, t: Float64Array, w: number, k: number, out: Float64Array): void {
  rollingMean(t, w, out);
  for (let i = 0; i < f.n; i++) out[i] = Math.sqrt(Math.max(0, out[i] as number) * k);
}

export const VOLATILITY_FEATURES: readonly Feature[] = [
  {
    name: 'rv_20',
    family: 'volatility',
    warmup: 20,
    formula: 'SD20(ret_1) sqrt(bars per year), sample SD (n - 1)',
    compute: (f, out) => out.set(f.realisedVolatility(20)),
  },
  {
    name: 'rv_60',
    family: 'volatility',
    warmup: 60,
    formula: 'SD60(ret_1) sqrt(bars per year), sample SD (n - 1)',
    compute: (f, out) => out.set(f.realisedVolatility(60)),
  },
  {
    name: 'parkinson_20',
    family: 'volatility',
    warmup: 19,
    formula: 'sqrt(mean20(ln(H/L)^2) / (4 ln 2)) sqrt(bars per year)',
    compute: (f, out) => {
      const t = f.scratch();
      const lh = f.logOf('high');
      const ll = f.logOf('low');
      for (let i = 0; i < f.n; i++) {
        const r = (lh[i] as number) - (ll[i] as number);
        t[i] = r * r;
      }
      annualisedRootMean(f, t, 20, f.barsPerYear / (4 * Math.LN2), out);
    },
  },
  {
    name: 'garman_klass_20',
    family: 'volatility',
    warmup: 19,
    formula: 'sqrt(mean20(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2)) sqrt(bars per year)',
    compute: (f, out) => {
      const t = f.scratch();
      const k = 2 * Math.LN2 - 1;
      const lh = f.logOf('high');
      const ll = f.logOf('low');
      const lo = f.logOf('open');
      const lc = f.logOf('close');
      for (let i = 0; i < f.n; i++) {
        const hl = (lh[i] as number) - (ll[i] as number);
        const co = (lc[i] as number) - (lo[i] as number);
        t[i] = 0.5 * hl * hl - k * co * co;
      }
      annualisedRootMean(f, t, 20, f.barsPerYear, out);
    },
  },
  {
    name: 'rogers_satchell_20',
    family: 'volatility',
    warmup: 19,
    formula: 'sqrt(mean20(ln(H/C) ln(H/O) + ln(L/C) ln(L/O))) sqrt(bars per year)',
    compute: (f, out) => {
      const t = f.scratch();
      const lh = f.logOf('high');
      const ll = f.logOf('low');
      const lo = f.logOf('open');
      const lc = f.logOf('close');
      for (let i = 0; i < f.n; i++) {
        const h = lh[i] as number;
        const l = ll[i] as number;
        const o = lo[i] as number;
        const c = lc[i] as number;
        t[i] = (h - c) * (h - o) + (l - c) * (l - o);
      }
      annualisedRootMean(f, t, 20, f.barsPerYear, out);
    },
  },
  {
    name: 'atr_14',
    family: 'volatility',
    warmup: 14,
    formula: 'ATR14 / C (core ATR: Wilder average of the true range, as TA-Lib)',
    compute: (f, out) => {
      atrColumn(f.bars, 14, out);
      for (let i = 0; i < f.n; i++) out[i] = (out[i] as number) / (f.close[i] as number);
    },
  },
  {
    name: 'downside_vol_20',
    family: 'volatility',
    warmup: 20,
    formula: 'sqrt(mean20(min(ret_1, 0)^2)) sqrt(bars per year)',
    compute: (f, out) => {
      const r = f.return1();
      const t = f.scratch();
      for (let i = 0; i < f.n; i++) {
        const d = Math.min(0, r[i] as number);
        t[i] = d * d;
      }
      annualisedRootMean(f, t, 20, f.barsPerYear, out);
    },
  },
];
