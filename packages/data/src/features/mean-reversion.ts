import { rollingVwapColumn, zscoreColumn } from '@keel/core';
import type { Feature } from './context.ts';

/** Position of the close in the Donchian channel of `w` bars, 0..1 (`flat` when the channel is flat). */
function channelPosition(
  f: Parameters<Feature['compute']>[0],
  w: number,
  scaleBy: number,
  flat: number,
  out: Float64Array,
) {
  const { upper, lower } = f.donchian(w);
  for (let i = 0; i < f.n; i++) {
    const r = (upper[i] as number) - (lower[i] as number);
    out[i] = r > 0 ? (scaleBy * ((f.close[i] as number) - (lower[i] as number))) / r : r === 0 ? flat : Number.NaN;
  }
}

export const MEAN_REVERSION_FEATURES: readonly Feature[] = [
  {
    name: 'zscore_20',
    family: 'mean-reversion',
    warmup: 19,
    formula: '(C - SMA20(C)) / SD20(C), population SD (core ZScore; 0 on a flat window)',
    compute: (f, out) => void zscoreColumn(f.close, 20, out),
  },
  {
    name: 'zscore_100',
    family: 'mean-reversion',
    warmup: 99,
    formula: '(C - SMA100(C)) / SD100(C), population SD (core ZScore; 0 on a flat window)',
    compute: (f, out) => void zscoreColumn(f.close, 100, out),
  },
  {
    name: 'stoch_k_14',
    family: 'mean-reversion',
    warmup: 13,
    formula: '100 (C - min14(L)) / (max14(H) - min14(L)), 50 when flat (fast %K on the Donchian(14) channel)',
    compute: (f, out) => channelPosition(f, 14, 100, 50, out),
  },
  {
    name: 'dist_vwap_20',
    family: 'mean-reversion',
    warmup: 19,
    formula: 'C / VWAP20 - 1, VWAP20 = sum20(typical price x V) / sum20(V) (core VWAP, rolling)',
    compute: (f, out) => {
      const vwap = rollingVwapColumn(f.bars, 20, f.scratch());
      for (let i = 0; i < f.n; i++) out[i] = (f.close[i] as number) / (vwap[i] as number) - 1;
    },
  },
  {
    name: 'range_pos_60',
    family: 'mean-reversion',
    warmup: 59,
    formula: '(C - min60(L)) / (max60(H) - min60(L)), 0.5 when flat (Donchian(60) channel)',
    compute: (f, out) => channelPosition(f, 60, 1, 0.5, out),
  },
];
