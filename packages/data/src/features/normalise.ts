import { bollingerColumns, zscoreColumn } from '@keel/core';
import type { FeatureFrame } from './index.ts';

export interface NormaliseOptions {
  /** Trailing window for the winsorisation and the z-score (rows). */
  readonly window: number;
  /** Winsorise each raw value at its trailing mean +- clip SD before the z-score. */
  readonly clip: number;
}

/**
 * Trailing normalisation: each feature (except regime labels) is winsorised at its trailing
 * Bollinger bands (mean +- clip population SD of the window, core Bollinger), then z-scored over
 * the same trailing window (core ZScore). Uses rows <= i only, so it leaks nothing from the future.
 */
export function normaliseFeatures(f: FeatureFrame, opts: NormaliseOptions): FeatureFrame {
  const columns = f.columns.map((c, k) => {
    if (f.defs[k]?.family === 'regime') return c;
    return zscoreColumn(winsorizeTrailing(c, opts.window, opts.clip), opts.window);
  });
  return { time: f.time, defs: f.defs, columns };
}

/** Clips x to its trailing Bollinger bands (mean +- k SD over w rows); rows before the bands exist pass unchanged. */
export function winsorizeTrailing(
  x: Float64Array,
  w: number,
  k: number,
  out: Float64Array = new Float64Array(x.length),
): Float64Array {
  const { upper, lower } = bollingerColumns(x, w, k);
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    const hi = upper[i] as number;
    const lo = lower[i] as number;
    out[i] = Number.isNaN(hi) ? v : Math.min(hi, Math.max(lo, v));
  }
  return out;
}
