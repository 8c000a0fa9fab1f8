import type { Feature } from './context.ts';

/** Cross-asset features need a reference series; without one their columns are NaN. */
export const CROSS_ASSET_FEATURES: readonly Feature[] = [
  {
    name: 'beta_ref_60',
    family: 'cross-asset',
    warmup: 60,
    formula: 'cov60(ret_1, ref ret_1) / var60(ref ret_1)',
    compute: (f, out) => {
      const vr = f.referenceVariance(60);
      const cv = f.referenceCovariance(60);
      if (!vr || !cv) return void out.fill(Number.NaN);
      for (let i = 0; i < f.n; i++) out[i] = (vr[i] as number) > 0 ? (cv[i] as number) / (vr[i] as number) : Number.NaN;
    },
  },
  {
    name: 'corr_ref_60',
    family: 'cross-asset',
    warmup: 60,
    formula: 'cov60(ret_1, ref ret_1) / (SD60(ret_1) SD60(ref ret_1))',
    compute: (f, out) => {
      const vr = f.referenceVariance(60);
      const cv = f.referenceCovariance(60);
      if (!vr || !cv) return void out.fill(Number.NaN);
      const va = f.returnVariance(60);
      for (let i = 0; i < f.n; i++) {
        const d = Math.sqrt((va[i] as number) * (vr[i] as number));
        out[i] = d > 0 ? Math.max(-1, Math.min(1, (cv[i] as number) / d)) : Number.NaN;
      }
    },
  },
  {
    name: 'rs_ref_20',
    family: 'cross-asset',
    warmup: 20,
    formula: 'ln(C_t / C_{t-20}) - ln(ref C_t / ref C_{t-20}) (relative strength)',
    compute: (f, out) => {
      const lr = f.referenceLog();
      if (!lr) return void out.fill(Number.NaN);
      const lc = f.logOf('close');
      for (let i = 0; i < f.n; i++)
        out[i] =
          i >= 20
            ? (lc[i] as number) - (lc[i - 20] as number) - ((lr[i] as number) - (lr[i - 20] as number))
            : Number.NaN;
    },
  },
  {
    name: 'resid_ret_60',
    family: 'cross-asset',
    warmup: 61,
    formula: 'ret_1 - beta_{t-1} ref ret_1 (idiosyncratic return, beta from the previous bar)',
    compute: (f, out) => {
      const rr = f.referenceReturn1();
      const vr = f.referenceVariance(60);
      const cv = f.referenceCovariance(60);
      if (!rr || !vr || !cv) return void out.fill(Number.NaN);
      const r = f.return1();
      for (let i = 0; i < f.n; i++)
        out[i] =
          i > 0 && (vr[i - 1] as number) > 0
            ? (r[i] as number) - ((cv[i - 1] as number) / (vr[i - 1] as number)) * (rr[i] as number)
            : Number.NaN;
    },
  },
];
