import type { Feature } from './context.ts';
import { rollingCov, rollingSum } from './rolling.ts';

/** Microstructure read from bars alone (no trades or order book). */
export const MICROSTRUCTURE_FEATURES: readonly Feature[] = [
  {
    name: 'taker_buy_ratio',
    family: 'microstructure',
    warmup: 0,
    formula: 'taker-buy volume / V',
    compute: (f, out) => {
      for (let i = 0; i < f.n; i++)
        out[i] = (f.volume[i] as number) > 0 ? (f.takerBuyVolume[i] as number) / (f.volume[i] as number) : Number.NaN;
    },
  },
  {
    name: 'taker_imb_20',
    family: 'microstructure',
    warmup: 19,
    formula: '(2 sum20(taker-buy V) - sum20(V)) / sum20(V)',
    compute: (f, out) => {
      const a = rollingSum(f.takerBuyVolume, 20, f.scratch());
      const s = f.volumeSum(20);
      for (let i = 0; i < f.n; i++)
        out[i] = (s[i] as number) > 0 ? (2 * (a[i] as number) - (s[i] as number)) / (s[i] as number) : Number.NaN;
    },
  },
  {
    name: 'roll_spread_20',
    family: 'microstructure',
    warmup: 21,
    formula: '2 sqrt(max(0, -cov20(dC_t, dC_{t-1}))) / C (Roll 1984)',
    compute: (f, out) => {
      const c = f.close;
      const d = f.scratch();
      const d1 = f.scratch();
      for (let i = 0; i < f.n; i++) {
        d[i] = i > 0 ? (c[i] as number) - (c[i - 1] as number) : Number.NaN;
        d1[i] = i > 1 ? (c[i - 1] as number) - (c[i - 2] as number) : Number.NaN;
      }
      rollingCov(d, d1, 20, out);
      for (let i = 0; i < f.n; i++) {
        const cv = out[i] as number;
        out[i] = !Number.isNaN(cv) ? (2 * Math.sqrt(Math.max(0, -cv))) / (c[i] as number) : Number.NaN;
      }
    },
  },
  {
    name: 'range_rel',
    family: 'microstructure',
    warmup: 0,
    formula: '(H - L) / C',
    compute: (f, out) => {
      for (let i = 0; i < f.n; i++) out[i] = ((f.high[i] as number) - (f.low[i] as number)) / (f.close[i] as number);
    },
  },
  {
    name: 'close_loc',
    family: 'microstructure',
    warmup: 0,
    formula: '((C - L) - (H - C)) / (H - L), 0 when H = L',
    compute: (f, out) => {
      for (let i = 0; i < f.n; i++) {
        const h = f.high[i] as number;
        const l = f.low[i] as number;
        const c = f.close[i] as number;
        out[i] = h - l > 0 ? (c - l - (h - c)) / (h - l) : 0;
      }
    },
  },
  {
    name: 'vol_imbalance_20',
    family: 'microstructure',
    warmup: 19,
    formula: 'sum20(sign(C - O) V) / sum20(V); 0 without volume',
    compute: (f, out) => {
      const t = f.scratch();
      for (let i = 0; i < f.n; i++)
        t[i] = Math.sign((f.close[i] as number) - (f.open[i] as number)) * (f.volume[i] as number);
      rollingSum(t, 20, out);
      const s = f.volumeSum(20);
      for (let i = 0; i < f.n; i++) {
        const v = s[i] as number;
        out[i] = Number.isNaN(v) ? Number.NaN : v > 0 ? (out[i] as number) / v : 0;
      }
    },
  },
  {
    name: 'log_trade_size',
    family: 'microstructure',
    warmup: 0,
    formula: 'ln(V / trades)',
    compute: (f, out) => {
      for (let i = 0; i < f.n; i++) {
        const trades = f.trades[i] as number;
        const v = f.volume[i] as number;
        out[i] = trades > 0 && v > 0 ? Math.log(v / trades) : Number.NaN;
      }
    },
  },
];
