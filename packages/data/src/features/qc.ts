import type { FeatureDef, FeatureFrame } from './index.ts';

export interface FeatureQcReport {
  readonly rows: number;
  readonly features: number;
  readonly families: Readonly<Record<string, number>>;
  /** Share of NaN per feature after its warm-up rows. */
  readonly nanShareAfterWarmup: Readonly<Record<string, number>>;
  readonly constantColumns: readonly string[];
  /** Pairs with |Pearson correlation| above the threshold (computed on up to 10,000 evenly spaced rows after warm-up). */
  readonly correlatedPairs: readonly { a: string; b: string; corr: number }[];
  readonly correlationThreshold: number;
}

export function featureQc(f: FeatureFrame, threshold = 0.95): FeatureQcReport {
  const n = f.time.length;
  const nanShare: Record<string, number> = {};
  const constant: string[] = [];
  const families: Record<string, number> = {};
  f.defs.forEach((d, k) => {
    families[d.family] = (families[d.family] ?? 0) + 1;
    const c = f.columns[k] as Float64Array;
    let nan = 0;
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = d.warmup; i < n; i++) {
      const v = c[i] as number;
      if (Number.isNaN(v)) nan++;
      else {
        if (v < min) min = v;
        if (v > max) max = v;
      }
    }
    const m = Math.max(0, n - d.warmup);
    nanShare[d.name] = m > 0 ? nan / m : 0;
    if (m > 0 && min === max) constant.push(d.name);
  });
  // Correlations on up to 10,000 evenly spaced rows after the longest warm-up, each column copied
  // once into a contiguous sample so the pair loop is a tight dot product.
  const maxWarm = Math.max(...f.defs.map((d) => d.warmup));
  const start = Math.min(n, maxWarm);
  const step = Math.max(1, Math.ceil((n - start) / 10_000));
  const m0 = Math.max(0, Math.ceil((n - start) / step));
  const k = f.defs.length;
  const samples = f.columns.map((c) => {
    const a = new Float64Array(m0);
    for (let j = 0, i = start; j < m0; j++, i += step) a[j] = c[i] as number;
    return a;
  });
  const pairs: { a: string; b: string; corr: number }[] = [];
  for (let a = 0; a < k; a++) {
    const x = samples[a] as Float64Array;
    for (let b = a + 1; b < k; b++) {
      const y = samples[b] as Float64Array;
      let sx = 0;
      let sy = 0;
      let sxx = 0;
      let syy = 0;
      let sxy = 0;
      let m = 0;
      for (let j = 0; j < m0; j++) {
        const u = x[j] as number;
        const v = y[j] as number;
        if (Number.isNaN(u) || Number.isNaN(v)) continue;
        sx += u;
        sy += v;
        sxx += u * u;
        syy += v * v;
        sxy += u * v;
        m++;
      }
      if (m < 3) continue;
      const cov = sxy - (sx * sy) / m;
      const d = Math.sqrt((sxx - (sx * sx) / m) * (syy - (sy * sy) / m));
      if (d > 0 && Math.abs(cov / d) > threshold)
        pairs.push({ a: (f.defs[a] as FeatureDef).name, b: (f.defs[b] as FeatureDef).name, corr: cov / d });
    }
  }
  return {
    rows: n,
    features: k,
    families,
    nanShareAfterWarmup: nanShare,
    constantColumns: constant,
    correlatedPairs: pairs,
    correlationThreshold: threshold,
  };
}
