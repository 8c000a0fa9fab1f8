import { mfiColumn, obvColumn, zscoreColumn } from '@keel/core';
import type { Feature } from './context.ts';
import { rollingMean } from './rolling.ts';

export const VOLUME_FEATURES: readonly Feature[] = [
  {
    name: 'vol_z_20',
    family: 'volume',
    warmup: 19,
    formula: 'z-score of ln(1 + V) over 20 bars, population SD (core ZScore)',
    compute: (f, out) => {
      const t = f.scratch();
      for (let i = 0; i < f.n; i++) t[i] = Math.log1p(f.volume[i] as number);
      zscoreColumn(t, 20, out);
    },
  },
  {
    name: 'vol_ratio_20',
    family: 'volume',
    warmup: 19,
    formula: 'V / SMA20(V)',
    compute: (f, out) => {
      // SMA20(V) is its exact window sum / 20, so the shared volume sum gives it bit for bit.
      const s = f.volumeSum(20);
      for (let i = 0; i < f.n; i++) {
        const mean = (s[i] as number) / 20;
        out[i] = mean > 0 ? (f.volume[i] as number) / mean : Number.NaN;
      }
    },
  },
  {
    name: 'log_dollar_vol',
    family: 'volume',
    warmup: 0,
    formula: 'ln(1 + quote volume), quote volume = V C when absent',
    compute: (f, out) => {
      const d = f.dollarVolume();
      for (let i = 0; i < f.n; i++) out[i] = Math.log1p(d[i] as number);
    },
  },
  {
    name: 'amihud_20',
    family: 'volume',
    warmup: 20,
    formula: '1e6 mean20(|ret_1| / quote volume) (Amihud illiquidity)',
    compute: (f, out) => {
      const r = f.return1();
      const d = f.dollarVolume();
      const t = f.scratch();
      for (let i = 0; i < f.n; i++)
        t[i] = (d[i] as number) > 0 ? (1e6 * Math.abs(r[i] as number)) / (d[i] as number) : Number.NaN;
      rollingMean(t, 20, out);
    },
  },
  {
    name: 'obv_flow_20',
    family: 'volume',
    warmup: 20,
    formula: '(OBV_t - OBV_{t-20}) / sum20(V) = sum20(sign(C_t - C_{t-1}) V) / sum20(V); 0 without volume',
    compute: (f, out) => {
      const obv = obvColumn(f.bars, f.scratch());
      const s = f.volumeSum(20);
      for (let i = 0; i < f.n; i++) {
        if (i < 20) {
          out[i] = Number.NaN;
          continue;
        }
        const v = s[i] as number;
        out[i] = v > 0 ? ((obv[i] as number) - (obv[i - 20] as number)) / v : 0;
      }
    },
  },
  {
    name: 'mfi_14',
    family: 'volume',
    warmup: 14,
    formula:
      'MFI14: 100 sum14(up money flow) / sum14(money flow), money flow = typical price x V (core MFI, as TA-Lib)',
    compute: (f, out) => void mfiColumn(f.bars, 14, out),
  },
];
