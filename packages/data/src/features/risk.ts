import { rollingExtremeColumn } from '@keel/core';
import type { Feature } from './context.ts';
import { rollingMean, scale } from './rolling.ts';

export const RISK_FEATURES: readonly Feature[] = [
  {
    name: 'drawdown',
    family: 'risk',
    warmup: 0,
    formula: 'C / max_{s <= t}(C) - 1 (from the first bar of the series)',
    compute: (f, out) => {
      let m = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < f.n; i++) {
        const c = f.close[i] as number;
        if (c > m) m = c;
        out[i] = c / m - 1;
      }
    },
  },
  {
    name: 'drawdown_60',
    family: 'risk',
    warmup: 59,
    formula: 'C / max60(H) - 1 (upper Donchian(60) band)',
    compute: (f, out) => {
      const mx = f.donchian(60).upper;
      for (let i = 0; i < f.n; i++) out[i] = (f.close[i] as number) / (mx[i] as number) - 1;
    },
  },
  {
    name: 'ulcer_14',
    family: 'risk',
    warmup: 26,
    formula: 'sqrt(mean14((100 (C / max14(C) - 1))^2)) (Ulcer index)',
    compute: (f, out) => {
      const mx = rollingExtremeColumn(f.close, 14, 'max', f.scratch());
      const t = f.scratch();
      for (let i = 0; i < f.n; i++) {
        const d = 100 * ((f.close[i] as number) / (mx[i] as number) - 1);
        t[i] = d * d;
      }
      rollingMean(t, 14, out);
      for (let i = 0; i < f.n; i++) out[i] = Math.sqrt(Math.max(0, out[i] as number));
    },
  },
  {
    name: 'cs_spread_20',
    family: 'risk',
    warmup: 20,
    formula: 'mean20(max(0, 2 (e^a - 1) / (1 + e^a))), Corwin-Schultz a from two-bar high/low',
    compute: (f, out) => {
      const t = f.scratch();
      // a = (sqrt(2 beta) - sqrt(beta)) / k - sqrt(gamma / k) with k = 3 - 2 sqrt 2 and gamma = g^2:
      // the constant factors are taken out of the square roots (one root per row instead of three).
      const k = 3 - 2 * Math.SQRT2;
      const betaFactor = (Math.SQRT2 - 1) / k;
      const gammaFactor = 1 / Math.sqrt(k);
      const lh = f.logOf('high');
      const ll = f.logOf('low');
      t[0] = Number.NaN;
      for (let i = 1; i < f.n; i++) {
        const h0 = lh[i] as number;
        const l0 = ll[i] as number;
        const h1 = lh[i - 1] as number;
        const l1 = ll[i - 1] as number;
        const beta = (h0 - l0) * (h0 - l0) + (h1 - l1) * (h1 - l1);
        const g = Math.max(h0, h1) - Math.min(l0, l1);
        const a = Math.sqrt(beta) * betaFactor - g * gammaFactor;
        const ea = Math.exp(a);
        t[i] = Math.max(0, (2 * (ea - 1)) / (1 + ea));
      }
      rollingMean(t, 20, out);
    },
  },
  {
    name: 'half_range_bps_20',
    family: 'risk',
    warmup: 19,
    formula: '1e4 mean20((H - L) / C) / 2 (slippage proxy: half the typical bar range, bps)',
    compute: (f, out) => {
      const t = f.scratch();
      for (let i = 0; i < f.n; i++) t[i] = ((f.high[i] as number) - (f.low[i] as number)) / (f.close[i] as number);
      rollingMean(t, 20, out);
      scale(out, 5000);
    },
  },
];
