import type { BarSeries, Timeframe } from '@keel/core';
import { timeframeMs } from '@keel/core';

/**
 * Bar features, computed column by column in single forward passes over Float64Arrays. Every value
 * at row i uses rows <= i only (trailing windows, recursive filters seeded at the first row), so
 * features on a prefix of the data equal the same rows computed on all of it (tested). NaN marks
 * warm-up and rows whose inputs are missing; nothing is back- or forward-filled.
 */

export const FEATURE_FAMILIES = [
  'price',
  'trend',
  'mean-reversion',
  'volatility',
  'volume',
  'cross-asset',
  'microstructure',
  'regime',
  'risk',
] as const;
export type FeatureFamily = (typeof FEATURE_FAMILIES)[number];

export interface FeatureDef {
  readonly name: string;
  readonly family: FeatureFamily;
  /** Rows before the first value can be finite (for the QC NaN share). */
  readonly warmup: number;
  readonly formula: string;
}

export interface FeatureFrame {
  readonly time: Float64Array;
  readonly defs: readonly FeatureDef[];
  readonly columns: readonly Float64Array[];
}

/**
 * Buffers reused across computeFeatures calls of the same length (streaming batches, benchmarks).
 * With a workspace the returned columns are the workspace's own arrays: copy them before the next call.
 */
export class FeatureWorkspace {
  readonly free: Float64Array[] = [];
  readonly outputs: Float64Array[] = [];
  readonly dq: Int32Array;
  constructor(readonly n: number) {
    this.dq = new Int32Array(n);
  }
}

export interface FeatureOptions {
  readonly timeframe: Timeframe;
  readonly workspace?: FeatureWorkspace;
  /** Reference asset for the cross-asset family (e.g. BTC/USDT), matched on open time. */
  readonly reference?: BarSeries;
}

const NaN_ = Number.NaN;
/** Rows between exact re-summations of a window: running add/subtract sums drift by rounding. */
const RESUM = 4096;

// ---------------- columnar building blocks (each O(1) per row) ----------------

/** Trailing sum over w rows; NaN while the window is short or holds a NaN. */
export function rollingSum(x: Float64Array, w: number, out: Float64Array = new Float64Array(x.length)): Float64Array {
  let s = 0;
  let nan = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    if (!Number.isNaN(v)) s += v;
    else nan++;
    if (i >= w) {
      const o = x[i - w] as number;
      if (!Number.isNaN(o)) s -= o;
      else nan--;
      if (i % RESUM === 0 && nan === 0) {
        s = 0;
        for (let j = i - w + 1; j <= i; j++) s += x[j] as number;
      }
    }
    out[i] = i >= w - 1 && nan === 0 ? s : NaN_;
  }
  return out;
}

export function rollingMean(x: Float64Array, w: number, out: Float64Array = new Float64Array(x.length)): Float64Array {
  rollingSum(x, w, out);
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / w;
  return out;
}

/** Trailing sample standard deviation (n - 1) over w rows. */
export function rollingStd(
  x: Float64Array,
  w: number,
  out: Float64Array = new Float64Array(x.length),
  mean?: Float64Array,
): Float64Array {
  let s = 0;
  let q = 0;
  let nan = 0;
  const invW = 1 / w;
  const invW1 = 1 / (w - 1);
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    if (!Number.isNaN(v)) {
      s += v;
      q += v * v;
    } else nan++;
    if (i >= w) {
      const o = x[i - w] as number;
      if (!Number.isNaN(o)) {
        s -= o;
        q -= o * o;
      } else nan--;
      if (i % RESUM === 0 && nan === 0) {
        s = 0;
        q = 0;
        for (let j = i - w + 1; j <= i; j++) {
          const u = x[j] as number;
          s += u;
          q += u * u;
        }
      }
    }
    if (i >= w - 1 && nan === 0) {
      const m = s * invW;
      if (mean) mean[i] = m;
      const varc = (q - s * m) * invW1;
      out[i] = varc > 0 ? Math.sqrt(varc) : 0;
    } else {
      out[i] = NaN_;
      if (mean) mean[i] = NaN_;
    }
  }
  return out;
}

/** Trailing covariance of x and y over w rows (sample, n - 1). */
export function rollingCov(
  x: Float64Array,
  y: Float64Array,
  w: number,
  out: Float64Array = new Float64Array(x.length),
): Float64Array {
  let sx = 0;
  let sy = 0;
  let sxy = 0;
  let nan = 0;
  for (let i = 0; i < x.length; i++) {
    const a = x[i] as number;
    const b = y[i] as number;
    if (!Number.isNaN(a) && !Number.isNaN(b)) {
      sx += a;
      sy += b;
      sxy += a * b;
    } else nan++;
    if (i >= w) {
      const c = x[i - w] as number;
      const d = y[i - w] as number;
      if (!Number.isNaN(c) && !Number.isNaN(d)) {
        sx -= c;
        sy -= d;
        sxy -= c * d;
      } else nan--;
      if (i % RESUM === 0 && nan === 0) {
        sx = 0;
        sy = 0;
        sxy = 0;
        for (let j = i - w + 1; j <= i; j++) {
          const p = x[j] as number;
          const r = y[j] as number;
          sx += p;
          sy += r;
          sxy += p * r;
        }
      }
    }
    out[i] = i >= w - 1 && nan === 0 ? (sxy - (sx * sy) / w) / (w - 1) : NaN_;
  }
  return out;
}

/** Exponential moving average, alpha = 2 / (span + 1), seeded with the first finite value; NaN for the first span - 1 values. */
export function ema(x: Float64Array, span: number, out: Float64Array = new Float64Array(x.length)): Float64Array {
  const a = 2 / (span + 1);
  let e = NaN_;
  let seen = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    if (!Number.isNaN(v)) {
      e = seen === 0 ? v : e + a * (v - e);
      seen++;
    }
    out[i] = seen >= span ? e : NaN_;
  }
  return out;
}

/** Wilder's smoothing (RMA, alpha = 1/n) seeded with the mean of the first n finite values. */
export function rma(x: Float64Array, n: number, out: Float64Array = new Float64Array(x.length)): Float64Array {
  let e = 0;
  let seen = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    if (!Number.isNaN(v)) {
      if (seen < n) e += v / n;
      else e += (v - e) / n;
      seen++;
    }
    out[i] = seen >= n ? e : NaN_;
  }
  return out;
}

/** Trailing max (sign 1) or min (sign -1) over w rows with a monotonic deque: amortised O(1). */
export function rollingExtreme(
  x: Float64Array,
  w: number,
  sign: 1 | -1,
  out: Float64Array = new Float64Array(x.length),
  dq: Int32Array = new Int32Array(x.length),
): Float64Array {
  let head = 0;
  let tail = 0;
  for (let i = 0; i < x.length; i++) {
    const v = (x[i] as number) * sign;
    while (tail > head && (x[dq[tail - 1] as number] as number) * sign <= v) tail--;
    dq[tail++] = i;
    if ((dq[head] as number) <= i - w) head++;
    out[i] = i >= w - 1 ? (x[dq[head] as number] as number) : NaN_;
  }
  return out;
}

export function lagDiffLog(x: Float64Array, k: number, out: Float64Array = new Float64Array(x.length)): Float64Array {
  for (let i = 0; i < x.length; i++) out[i] = i >= k ? Math.log((x[i] as number) / (x[i - k] as number)) : NaN_;
  return out;
}

/** Trailing z-score normalisation: (x - mean_w) / std_w using rows <= i only. */
export function rollingZScore(
  x: Float64Array,
  w: number,
  out: Float64Array = new Float64Array(x.length),
  mean: Float64Array = new Float64Array(x.length),
): Float64Array {
  rollingStd(x, w, out, mean);
  for (let i = 0; i < x.length; i++) {
    const sd = out[i] as number;
    out[i] = sd > 0 ? ((x[i] as number) - (mean[i] as number)) / sd : sd === 0 ? 0 : NaN_;
  }
  return out;
}

/** Trailing winsorisation: clips x to mean_w +- k std_w of the trailing window (rows <= i). */
export function winsorizeTrailing(
  x: Float64Array,
  w: number,
  k: number,
  out: Float64Array = new Float64Array(x.length),
): Float64Array {
  const mean: Float64Array = new Float64Array(x.length);
  const sd = rollingStd(x, w, new Float64Array(x.length), mean);
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    const m = mean[i] as number;
    const s = sd[i] as number;
    out[i] = !Number.isNaN(s) ? Math.min(m + k * s, Math.max(m - k * s, v)) : v;
  }
  return out;
}

/** Bars per year for a timeframe (crypto trades 24/7: 365.25 days). */
export function periodsPerYear(tf: Timeframe): number {
  if (tf === '1M') return 12;
  return (365.25 * 86_400_000) / timeframeMs(tf);
}

// ---------------- the feature set ----------------

interface Ctx {
  n: number;
  /** Reusable buffers: `free` holds arrays of length n not in use by the current feature. */
  free: Float64Array[];
  live: Float64Array[];
  cached: Set<Float64Array>;
  dq: Int32Array;
  o: Float64Array;
  h: Float64Array;
  l: Float64Array;
  c: Float64Array;
  v: Float64Array;
  qv: Float64Array;
  trades: Float64Array;
  tb: Float64Array;
  ann: number;
  ref: Float64Array | null;
  cache: Map<string, Float64Array>;
}

const FEATURES: readonly (FeatureDef & { fn: (x: Ctx, out: Float64Array) => void })[] = [
  // price / returns
  { name: 'ret_1', family: 'price', warmup: 1, formula: 'ln C_t - ln C_{t-1}', fn: (x, out) => void logRet(x, 1, out) },
  { name: 'ret_5', family: 'price', warmup: 5, formula: 'ln C_t - ln C_{t-5}', fn: (x, out) => void logRet(x, 5, out) },
  {
    name: 'ret_15',
    family: 'price',
    warmup: 15,
    formula: 'ln C_t - ln C_{t-15}',
    fn: (x, out) => void logRet(x, 15, out),
  },
  {
    name: 'ret_60',
    family: 'price',
    warmup: 60,
    formula: 'ln C_t - ln C_{t-60}',
    fn: (x, out) => void logRet(x, 60, out),
  },
  {
    name: 'bar_ret',
    family: 'price',
    warmup: 0,
    formula: 'C_t / O_t - 1',
    fn: (x, out) => {
      for (let i = 0; i < x.n; i++) out[i] = (x.c[i] as number) / (x.o[i] as number) - 1;
    },
  },
  {
    name: 'gap_ret',
    family: 'price',
    warmup: 1,
    formula: 'O_t / C_{t-1} - 1',
    fn: (x, out) => {
      for (let i = 0; i < x.n; i++) out[i] = i > 0 ? (x.o[i] as number) / (x.c[i - 1] as number) - 1 : NaN_;
    },
  },
  // trend / momentum
  {
    name: 'ema_ratio_12',
    family: 'trend',
    warmup: 11,
    formula: 'C_t / EMA12(C)_t - 1',
    fn: (x, out) =>
      ratio(
        x.c,
        get(x, 'ema12', () => ema(x.c, 12, alloc(x))),
        out,
      ),
  },
  {
    name: 'ema_ratio_48',
    family: 'trend',
    warmup: 47,
    formula: 'C_t / EMA48(C)_t - 1',
    fn: (x, out) =>
      ratio(
        x.c,
        get(x, 'ema48', () => ema(x.c, 48, alloc(x))),
        out,
      ),
  },
  {
    name: 'macd',
    family: 'trend',
    warmup: 25,
    formula: '(EMA12(C) - EMA26(C)) / C',
    fn: (x, out) => {
      const m = macdLine(x);
      for (let i = 0; i < x.n; i++) out[i] = (m[i] as number) / (x.c[i] as number);
    },
  },
  {
    name: 'macd_hist',
    family: 'trend',
    warmup: 33,
    formula: '(MACD - EMA9(MACD)) / C, MACD = EMA12(C) - EMA26(C)',
    fn: (x, out) => {
      const m = macdLine(x);
      const sig = ema(m, 9, alloc(x));
      for (let i = 0; i < x.n; i++) out[i] = ((m[i] as number) - (sig[i] as number)) / (x.c[i] as number);
    },
  },
  {
    name: 'rsi_14',
    family: 'trend',
    warmup: 14,
    formula: '100 - 100 / (1 + RMA14(up moves) / RMA14(down moves)) (Wilder)',
    fn: (x, out) => rsi(x, 14, out),
  },
  {
    name: 'roc_20',
    family: 'trend',
    warmup: 20,
    formula: 'C_t / C_{t-20} - 1',
    fn: (x, out) => {
      for (let i = 0; i < x.n; i++) out[i] = i >= 20 ? (x.c[i] as number) / (x.c[i - 20] as number) - 1 : NaN_;
    },
  },
  {
    name: 'adx_14',
    family: 'trend',
    warmup: 27,
    formula: 'RMA14(100 |+DI - -DI| / (+DI + -DI)) (Wilder ADX)',
    fn: (x, out) => out.set(adx(x)),
  },
  {
    name: 'sma_slope_20',
    family: 'trend',
    warmup: 24,
    formula: 'SMA20(C)_t / SMA20(C)_{t-5} - 1',
    fn: (x, out) => {
      const s = get(x, 'sma20', () => rollingMean(x.c, 20, alloc(x)));
      for (let i = 0; i < x.n; i++) out[i] = i >= 5 ? (s[i] as number) / (s[i - 5] as number) - 1 : NaN_;
    },
  },
  // mean reversion
  {
    name: 'zscore_20',
    family: 'mean-reversion',
    warmup: 19,
    formula: '(C - SMA20(C)) / SD20(C)',
    fn: (x, out) => rollingZScore(x.c, 20, out, alloc(x)),
  },
  {
    name: 'zscore_100',
    family: 'mean-reversion',
    warmup: 99,
    formula: '(C - SMA100(C)) / SD100(C)',
    fn: (x, out) => rollingZScore(x.c, 100, out, alloc(x)),
  },
  {
    name: 'stoch_k_14',
    family: 'mean-reversion',
    warmup: 13,
    formula: '100 (C - min14(L)) / (max14(H) - min14(L))',
    fn: (x, out) => {
      const hi = rollingExtreme(x.h, 14, 1, alloc(x), x.dq);
      const lo = rollingExtreme(x.l, 14, -1, alloc(x), x.dq);
      for (let i = 0; i < x.n; i++) {
        const r = (hi[i] as number) - (lo[i] as number);
        out[i] = r > 0 ? (100 * ((x.c[i] as number) - (lo[i] as number))) / r : r === 0 ? 50 : NaN_;
      }
    },
  },
  {
    name: 'dist_vwap_20',
    family: 'mean-reversion',
    warmup: 19,
    formula: 'C / (sum20(typical price x V) / sum20(V)) - 1',
    fn: (x, out) => {
      const pv = alloc(x);
      for (let i = 0; i < x.n; i++)
        pv[i] = (((x.h[i] as number) + (x.l[i] as number) + (x.c[i] as number)) / 3) * (x.v[i] as number);
      const a = rollingSum(pv, 20, alloc(x));
      const b = get(x, 'sumv20', () => rollingSum(x.v, 20, alloc(x)));
      for (let i = 0; i < x.n; i++)
        out[i] = (b[i] as number) > 0 ? (x.c[i] as number) / ((a[i] as number) / (b[i] as number)) - 1 : NaN_;
    },
  },
  {
    name: 'range_pos_60',
    family: 'mean-reversion',
    warmup: 59,
    formula: '(C - min60(L)) / (max60(H) - min60(L))',
    fn: (x, out) => {
      const hi = get(x, 'max60h', () => rollingExtreme(x.h, 60, 1, alloc(x), x.dq));
      const lo = rollingExtreme(x.l, 60, -1, alloc(x), x.dq);
      for (let i = 0; i < x.n; i++) {
        const r = (hi[i] as number) - (lo[i] as number);
        out[i] = r > 0 ? ((x.c[i] as number) - (lo[i] as number)) / r : r === 0 ? 0.5 : NaN_;
      }
    },
  },
  // volatility / risk
  {
    name: 'rv_20',
    family: 'volatility',
    warmup: 20,
    formula: 'SD20(ret_1) sqrt(bars per year)',
    fn: (x, out) => scale(rollingStd(ret1(x), 20, out), Math.sqrt(x.ann)),
  },
  {
    name: 'rv_60',
    family: 'volatility',
    warmup: 60,
    formula: 'SD60(ret_1) sqrt(bars per year)',
    fn: (x, out) => scale(rollingStd(ret1(x), 60, out), Math.sqrt(x.ann)),
  },
  {
    name: 'parkinson_20',
    family: 'volatility',
    warmup: 19,
    formula: 'sqrt(mean20(ln(H/L)^2) / (4 ln 2)) sqrt(bars per year)',
    fn: (x, out) => {
      const t = alloc(x);
      const lh = logOf(x, 'h');
      const ll = logOf(x, 'l');
      for (let i = 0; i < x.n; i++) {
        const r = (lh[i] as number) - (ll[i] as number);
        t[i] = r * r;
      }
      rollingMean(t, 20, out);
      const k = x.ann / (4 * Math.LN2);
      for (let i = 0; i < x.n; i++) out[i] = Math.sqrt(Math.max(0, out[i] as number) * k);
    },
  },
  {
    name: 'garman_klass_20',
    family: 'volatility',
    warmup: 19,
    formula: 'sqrt(mean20(0.5 ln(H/L)^2 - (2 ln 2 - 1) ln(C/O)^2)) sqrt(bars per year)',
    fn: (x, out) => {
      const t = alloc(x);
      const k = 2 * Math.LN2 - 1;
      const lh = logOf(x, 'h');
      const ll = logOf(x, 'l');
      const lo = logOf(x, 'o');
      const lc = logOf(x, 'c');
      for (let i = 0; i < x.n; i++) {
        const hl = (lh[i] as number) - (ll[i] as number);
        const co = (lc[i] as number) - (lo[i] as number);
        t[i] = 0.5 * hl * hl - k * co * co;
      }
      rollingMean(t, 20, out);
      for (let i = 0; i < x.n; i++) out[i] = Math.sqrt(Math.max(0, out[i] as number) * x.ann);
    },
  },
  {
    name: 'rogers_satchell_20',
    family: 'volatility',
    warmup: 19,
    formula: 'sqrt(mean20(ln(H/C) ln(H/O) + ln(L/C) ln(L/O))) sqrt(bars per year)',
    fn: (x, out) => {
      const t = alloc(x);
      const lh = logOf(x, 'h');
      const ll = logOf(x, 'l');
      const lo = logOf(x, 'o');
      const lc = logOf(x, 'c');
      for (let i = 0; i < x.n; i++) {
        const h = lh[i] as number;
        const l = ll[i] as number;
        const o = lo[i] as number;
        const c = lc[i] as number;
        t[i] = (h - c) * (h - o) + (l - c) * (l - o);
      }
      rollingMean(t, 20, out);
      for (let i = 0; i < x.n; i++) out[i] = Math.sqrt(Math.max(0, out[i] as number) * x.ann);
    },
  },
  {
    name: 'atr_14',
    family: 'volatility',
    warmup: 14,
    formula: 'RMA14(true range) / C',
    fn: (x, out) => {
      const a = atr(x);
      for (let i = 0; i < x.n; i++) out[i] = (a[i] as number) / (x.c[i] as number);
    },
  },
  {
    name: 'downside_vol_20',
    family: 'volatility',
    warmup: 20,
    formula: 'sqrt(mean20(min(ret_1, 0)^2)) sqrt(bars per year)',
    fn: (x, out) => {
      const r = ret1(x);
      const t = alloc(x);
      for (let i = 0; i < x.n; i++) t[i] = Math.min(0, r[i] as number) ** 2;
      rollingMean(t, 20, out);
      for (let i = 0; i < x.n; i++) out[i] = Math.sqrt(Math.max(0, out[i] as number) * x.ann);
    },
  },
  // volume / liquidity
  {
    name: 'vol_z_20',
    family: 'volume',
    warmup: 19,
    formula: 'z-score of ln(1 + V) over 20 bars',
    fn: (x, out) => {
      const t = alloc(x);
      for (let i = 0; i < x.n; i++) t[i] = Math.log1p(x.v[i] as number);
      rollingZScore(t, 20, out, alloc(x));
    },
  },
  {
    name: 'vol_ratio_20',
    family: 'volume',
    warmup: 19,
    formula: 'V / mean20(V)',
    fn: (x, out) => {
      const s = get(x, 'sumv20', () => rollingSum(x.v, 20, alloc(x)));
      for (let i = 0; i < x.n; i++) out[i] = (s[i] as number) > 0 ? ((x.v[i] as number) * 20) / (s[i] as number) : NaN_;
    },
  },
  {
    name: 'log_dollar_vol',
    family: 'volume',
    warmup: 0,
    formula: 'ln(1 + quote volume), quote volume = V C when absent',
    fn: (x, out) => {
      const d = dollarVol(x);
      for (let i = 0; i < x.n; i++) out[i] = Math.log1p(d[i] as number);
    },
  },
  {
    name: 'amihud_20',
    family: 'volume',
    warmup: 20,
    formula: '1e6 mean20(|ret_1| / quote volume) (Amihud illiquidity)',
    fn: (x, out) => {
      const r = ret1(x);
      const d = dollarVol(x);
      const t = alloc(x);
      for (let i = 0; i < x.n; i++)
        t[i] = (d[i] as number) > 0 ? (1e6 * Math.abs(r[i] as number)) / (d[i] as number) : NaN_;
      rollingMean(t, 20, out);
    },
  },
  {
    name: 'obv_flow_20',
    family: 'volume',
    warmup: 20,
    formula: 'sum20(sign(C_t - C_{t-1}) V) / sum20(V)',
    fn: (x, out) => {
      const t = alloc(x);
      for (let i = 0; i < x.n; i++)
        t[i] = i > 0 ? Math.sign((x.c[i] as number) - (x.c[i - 1] as number)) * (x.v[i] as number) : NaN_;
      rollingSum(t, 20, out);
      const s = get(x, 'sumv20', () => rollingSum(x.v, 20, alloc(x)));
      for (let i = 0; i < x.n; i++) out[i] = (s[i] as number) > 0 ? (out[i] as number) / (s[i] as number) : 0;
    },
  },
  {
    name: 'mfi_14',
    family: 'volume',
    warmup: 14,
    formula: '100 - 100 / (1 + sum14(up money flow) / sum14(down money flow)), money flow = typical price x V',
    fn: (x, out) => mfi(x, 14, out),
  },
  // cross-asset
  {
    name: 'beta_ref_60',
    family: 'cross-asset',
    warmup: 60,
    formula: 'cov60(ret_1, ref ret_1) / var60(ref ret_1)',
    fn: (x, out) => {
      const rr = refRet(x);
      if (!rr) return void out.fill(NaN_);
      const cv = rollingCov(ret1(x), rr, 60, alloc(x));
      const vr = get(x, 'refvar60', () => rollingCov(rr, rr, 60, alloc(x)));
      for (let i = 0; i < x.n; i++) out[i] = (vr[i] as number) > 0 ? (cv[i] as number) / (vr[i] as number) : NaN_;
    },
  },
  {
    name: 'corr_ref_60',
    family: 'cross-asset',
    warmup: 60,
    formula: 'cov60(ret_1, ref ret_1) / (SD60(ret_1) SD60(ref ret_1))',
    fn: (x, out) => {
      const rr = refRet(x);
      if (!rr) return void out.fill(NaN_);
      const r = ret1(x);
      const cv = rollingCov(r, rr, 60, alloc(x));
      const va = rollingCov(r, r, 60, alloc(x));
      const vr = get(x, 'refvar60', () => rollingCov(rr, rr, 60, alloc(x)));
      for (let i = 0; i < x.n; i++) {
        const d = Math.sqrt((va[i] as number) * (vr[i] as number));
        out[i] = d > 0 ? Math.max(-1, Math.min(1, (cv[i] as number) / d)) : NaN_;
      }
    },
  },
  {
    name: 'rs_ref_20',
    family: 'cross-asset',
    warmup: 20,
    formula: 'ln(C_t / C_{t-20}) - ln(ref C_t / ref C_{t-20}) (relative strength)',
    fn: (x, out) => {
      if (!x.ref) return void out.fill(NaN_);
      const lc = logOf(x, 'c');
      const lr = refLog(x) as Float64Array;
      for (let i = 0; i < x.n; i++)
        out[i] =
          i >= 20 ? (lc[i] as number) - (lc[i - 20] as number) - ((lr[i] as number) - (lr[i - 20] as number)) : NaN_;
    },
  },
  {
    name: 'resid_ret_60',
    family: 'cross-asset',
    warmup: 61,
    formula: 'ret_1 - beta_{t-1} ref ret_1 (idiosyncratic return, beta from the previous bar)',
    fn: (x, out) => {
      const rr = refRet(x);
      if (!rr) return void out.fill(NaN_);
      const cv = rollingCov(ret1(x), rr, 60, alloc(x));
      const vr = get(x, 'refvar60', () => rollingCov(rr, rr, 60, alloc(x)));
      const r = ret1(x);
      for (let i = 0; i < x.n; i++)
        out[i] =
          i > 0 && (vr[i - 1] as number) > 0
            ? (r[i] as number) - ((cv[i - 1] as number) / (vr[i - 1] as number)) * (rr[i] as number)
            : NaN_;
    },
  },
  // microstructure from bars
  {
    name: 'taker_buy_ratio',
    family: 'microstructure',
    warmup: 0,
    formula: 'taker-buy volume / V',
    fn: (x, out) => {
      for (let i = 0; i < x.n; i++) out[i] = (x.v[i] as number) > 0 ? (x.tb[i] as number) / (x.v[i] as number) : NaN_;
    },
  },
  {
    name: 'taker_imb_20',
    family: 'microstructure',
    warmup: 19,
    formula: '(2 sum20(taker-buy V) - sum20(V)) / sum20(V)',
    fn: (x, out) => {
      const a = rollingSum(x.tb, 20, alloc(x));
      const s = get(x, 'sumv20', () => rollingSum(x.v, 20, alloc(x)));
      for (let i = 0; i < x.n; i++)
        out[i] = (s[i] as number) > 0 ? (2 * (a[i] as number) - (s[i] as number)) / (s[i] as number) : NaN_;
    },
  },
  {
    name: 'roll_spread_20',
    family: 'microstructure',
    warmup: 21,
    formula: '2 sqrt(max(0, -cov20(dC_t, dC_{t-1}))) / C (Roll 1984)',
    fn: (x, out) => {
      const d = alloc(x);
      const d1 = alloc(x);
      for (let i = 0; i < x.n; i++) {
        d[i] = i > 0 ? (x.c[i] as number) - (x.c[i - 1] as number) : NaN_;
        d1[i] = i > 1 ? (x.c[i - 1] as number) - (x.c[i - 2] as number) : NaN_;
      }
      rollingCov(d, d1, 20, out);
      for (let i = 0; i < x.n; i++) {
        const cv = out[i] as number;
        out[i] = !Number.isNaN(cv) ? (2 * Math.sqrt(Math.max(0, -cv))) / (x.c[i] as number) : NaN_;
      }
    },
  },
  {
    name: 'range_rel',
    family: 'microstructure',
    warmup: 0,
    formula: '(H - L) / C',
    fn: (x, out) => {
      for (let i = 0; i < x.n; i++) out[i] = ((x.h[i] as number) - (x.l[i] as number)) / (x.c[i] as number);
    },
  },
  {
    name: 'close_loc',
    family: 'microstructure',
    warmup: 0,
    formula: '((C - L) - (H - C)) / (H - L), 0 when H = L',
    fn: (x, out) => {
      for (let i = 0; i < x.n; i++) {
        const r = (x.h[i] as number) - (x.l[i] as number);
        out[i] = r > 0 ? ((x.c[i] as number) - (x.l[i] as number) - ((x.h[i] as number) - (x.c[i] as number))) / r : 0;
      }
    },
  },
  {
    name: 'vol_imbalance_20',
    family: 'microstructure',
    warmup: 19,
    formula: 'sum20(sign(C - O) V) / sum20(V)',
    fn: (x, out) => {
      const t = alloc(x);
      for (let i = 0; i < x.n; i++) t[i] = Math.sign((x.c[i] as number) - (x.o[i] as number)) * (x.v[i] as number);
      rollingSum(t, 20, out);
      const s = get(x, 'sumv20', () => rollingSum(x.v, 20, alloc(x)));
      for (let i = 0; i < x.n; i++) out[i] = (s[i] as number) > 0 ? (out[i] as number) / (s[i] as number) : 0;
    },
  },
  {
    name: 'log_trade_size',
    family: 'microstructure',
    warmup: 0,
    formula: 'ln(V / trades)',
    fn: (x, out) => {
      for (let i = 0; i < x.n; i++)
        out[i] =
          (x.trades[i] as number) > 0 && (x.v[i] as number) > 0
            ? Math.log((x.v[i] as number) / (x.trades[i] as number))
            : NaN_;
    },
  },
  // regime
  {
    name: 'trend_regime',
    family: 'regime',
    warmup: 47,
    formula: '+1 if C > EMA48 and EMA12 > EMA48 and ADX14 > 20; -1 if both below and ADX14 > 20; else 0',
    fn: (x, out) => {
      const e12 = get(x, 'ema12', () => ema(x.c, 12, alloc(x)));
      const e48 = get(x, 'ema48', () => ema(x.c, 48, alloc(x)));
      const a = adx(x);
      for (let i = 0; i < x.n; i++) {
        const f = e12[i] as number;
        const s = e48[i] as number;
        if (Number.isNaN(s)) {
          out[i] = NaN_;
          continue;
        }
        const strong = (a[i] as number) > 20;
        const c = x.c[i] as number;
        if (strong && c > s && f > s) {
          out[i] = 1;
          continue;
        }
        if (strong && c < s && f < s) {
          out[i] = -1;
          continue;
        }
        out[i] = 0;
      }
    },
  },
  {
    name: 'vol_regime',
    family: 'regime',
    warmup: 20,
    formula: '0 if rv_20 < 0.75 EMA500(rv_20), 2 if > 1.33 EMA500(rv_20), else 1',
    fn: (x, out) => {
      const rv = rollingStd(ret1(x), 20, alloc(x));
      const base = ema(rv, 500, alloc(x));
      for (let i = 0; i < x.n; i++) {
        const r = rv[i] as number;
        if (Number.isNaN(r)) {
          out[i] = NaN_;
          continue;
        }
        // Before the long average is warm, compare with the expanding average of rv so far.
        const b = base[i] as number;
        const ref = !Number.isNaN(b) ? b : r;
        out[i] = r < 0.75 * ref ? 0 : r > 1.33 * ref ? 2 : 1;
      }
    },
  },
  {
    name: 'efficiency_ratio_20',
    family: 'regime',
    warmup: 20,
    formula: '|C_t - C_{t-20}| / sum20(|C_t - C_{t-1}|) (Kaufman)',
    fn: (x, out) => {
      const t = alloc(x);
      for (let i = 0; i < x.n; i++) t[i] = i > 0 ? Math.abs((x.c[i] as number) - (x.c[i - 1] as number)) : NaN_;
      rollingSum(t, 20, out);
      for (let i = 0; i < x.n; i++) {
        const s = out[i] as number;
        out[i] =
          i >= 20 && !Number.isNaN(s) ? (s > 0 ? Math.abs((x.c[i] as number) - (x.c[i - 20] as number)) / s : 0) : NaN_;
      }
    },
  },
  // risk / execution
  {
    name: 'drawdown',
    family: 'risk',
    warmup: 0,
    formula: 'C / max_{s <= t}(C) - 1 (from the first bar of the series)',
    fn: (x, out) => {
      let m = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < x.n; i++) {
        const c = x.c[i] as number;
        if (c > m) m = c;
        out[i] = c / m - 1;
      }
    },
  },
  {
    name: 'drawdown_60',
    family: 'risk',
    warmup: 59,
    formula: 'C / max60(H) - 1',
    fn: (x, out) => {
      const mx = get(x, 'max60h', () => rollingExtreme(x.h, 60, 1, alloc(x), x.dq));
      for (let i = 0; i < x.n; i++) out[i] = (x.c[i] as number) / (mx[i] as number) - 1;
    },
  },
  {
    name: 'ulcer_14',
    family: 'risk',
    warmup: 26,
    formula: 'sqrt(mean14((100 (C / max14(C) - 1))^2)) (Ulcer index)',
    fn: (x, out) => {
      const mx = rollingExtreme(x.c, 14, 1, alloc(x), x.dq);
      const t = alloc(x);
      for (let i = 0; i < x.n; i++) t[i] = (100 * ((x.c[i] as number) / (mx[i] as number) - 1)) ** 2;
      rollingMean(t, 14, out);
      for (let i = 0; i < x.n; i++) out[i] = Math.sqrt(Math.max(0, out[i] as number));
    },
  },
  {
    name: 'cs_spread_20',
    family: 'risk',
    warmup: 20,
    formula: 'mean20(max(0, 2 (e^a - 1) / (1 + e^a))), Corwin-Schultz a from two-bar high/low',
    fn: (x, out) => {
      const t = alloc(x);
      const k = 3 - 2 * Math.SQRT2;
      const lh = logOf(x, 'h');
      const ll = logOf(x, 'l');
      for (let i = 0; i < x.n; i++) {
        if (i === 0) {
          t[i] = NaN_;
          continue;
        }
        const h0 = lh[i] as number;
        const l0 = ll[i] as number;
        const h1 = lh[i - 1] as number;
        const l1 = ll[i - 1] as number;
        const beta = (h0 - l0) * (h0 - l0) + (h1 - l1) * (h1 - l1);
        const g = Math.max(h0, h1) - Math.min(l0, l1);
        const gamma = g * g;
        const a = (Math.sqrt(2 * beta) - Math.sqrt(beta)) / k - Math.sqrt(gamma / k);
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
    fn: (x, out) => {
      const t = alloc(x);
      for (let i = 0; i < x.n; i++) t[i] = ((x.h[i] as number) - (x.l[i] as number)) / (x.c[i] as number);
      rollingMean(t, 20, out);
      scale(out, 5000);
    },
  },
];

export const FEATURE_DEFS: readonly FeatureDef[] = FEATURES.map(({ fn: _fn, ...d }) => d);

function scale(a: Float64Array, k: number): Float64Array {
  for (let i = 0; i < a.length; i++) a[i] = (a[i] as number) * k;
  return a;
}
function ratio(a: Float64Array, b: Float64Array, out: Float64Array): void {
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) / (b[i] as number) - 1;
}
function get(x: Ctx, key: string, make: () => Float64Array): Float64Array {
  let v = x.cache.get(key);
  if (!v) {
    v = make();
    x.cache.set(key, v);
    x.cached.add(v);
  }
  return v;
}
/** A scratch column of n rows (contents undefined); returned to the pool after the feature that took it. */
function alloc(x: Ctx): Float64Array {
  const a = x.free.pop() ?? new Float64Array(x.n);
  x.live.push(a);
  return a;
}
function logOf(x: Ctx, which: 'o' | 'h' | 'l' | 'c'): Float64Array {
  return get(x, `log_${which}`, () => {
    const src = x[which];
    const out = alloc(x);
    for (let i = 0; i < x.n; i++) out[i] = Math.log(src[i] as number);
    return out;
  });
}
/** ln(C_t) - ln(C_{t-k}) from the cached log closes (one log per row for every return horizon). */
function logRet(x: Ctx, k: number, out: Float64Array = alloc(x)): Float64Array {
  const lc = logOf(x, 'c');
  for (let i = 0; i < x.n; i++) out[i] = i >= k ? (lc[i] as number) - (lc[i - k] as number) : NaN_;
  return out;
}
function ret1(x: Ctx): Float64Array {
  return get(x, 'ret1', () => logRet(x, 1));
}
function refLog(x: Ctx): Float64Array | null {
  const ref = x.ref;
  return ref
    ? get(x, 'reflog', () => {
        const out = alloc(x);
        for (let i = 0; i < x.n; i++) out[i] = Math.log(ref[i] as number);
        return out;
      })
    : null;
}
function refRet(x: Ctx): Float64Array | null {
  const lr = refLog(x);
  return lr
    ? get(x, 'refret1', () => {
        const out = alloc(x);
        for (let i = 0; i < x.n; i++) out[i] = i >= 1 ? (lr[i] as number) - (lr[i - 1] as number) : NaN_;
        return out;
      })
    : null;
}
function macdLine(x: Ctx): Float64Array {
  return get(x, 'macd', () => {
    const a = ema(x.c, 12, alloc(x));
    const b = ema(x.c, 26, alloc(x));
    for (let i = 0; i < x.n; i++) b[i] = (a[i] as number) - (b[i] as number);
    return b;
  });
}
function dollarVol(x: Ctx): Float64Array {
  return get(x, 'dvol', () => {
    const d = alloc(x);
    for (let i = 0; i < x.n; i++) {
      const q = x.qv[i] as number;
      d[i] = !Number.isNaN(q) ? q : (x.v[i] as number) * (x.c[i] as number);
    }
    return d;
  });
}
function trueRange(x: Ctx): Float64Array {
  return get(x, 'tr', () => {
    const t = alloc(x);
    for (let i = 0; i < x.n; i++) {
      const h = x.h[i] as number;
      const l = x.l[i] as number;
      // No previous close at row 0: TA-Lib starts true range at row 1, and so do we.
      if (i === 0) t[i] = NaN_;
      else {
        const pc = x.c[i - 1] as number;
        t[i] = Math.max(h - l, Math.abs(h - pc), Math.abs(l - pc));
      }
    }
    return t;
  });
}
function atr(x: Ctx): Float64Array {
  return get(x, 'atr14', () => rma(trueRange(x), 14, alloc(x)));
}
function adx(x: Ctx): Float64Array {
  return get(x, 'adx14', () => {
    const n = x.n;
    const pdm = alloc(x);
    const mdm = alloc(x);
    const tr = alloc(x);
    const t = trueRange(x);
    pdm[0] = NaN_;
    mdm[0] = NaN_;
    tr[0] = NaN_;
    for (let i = 1; i < n; i++) {
      const up = (x.h[i] as number) - (x.h[i - 1] as number);
      const dn = (x.l[i - 1] as number) - (x.l[i] as number);
      pdm[i] = up > dn && up > 0 ? up : 0;
      mdm[i] = dn > up && dn > 0 ? dn : 0;
      tr[i] = t[i] as number;
    }
    const sp = rma(pdm, 14, alloc(x));
    const sm = rma(mdm, 14, alloc(x));
    const st = rma(tr, 14, alloc(x));
    const dx = alloc(x);
    for (let i = 0; i < n; i++) {
      const p = (sp[i] as number) / (st[i] as number);
      const m = (sm[i] as number) / (st[i] as number);
      const s = p + m;
      dx[i] = s > 0 ? (100 * Math.abs(p - m)) / s : s === 0 ? 0 : NaN_;
    }
    return rma(dx, 14, alloc(x));
  });
}
function rsi(x: Ctx, n: number, out: Float64Array): void {
  const c = x.c;
  const len = c.length;
  const up = alloc(x);
  const dn = alloc(x);
  up[0] = NaN_;
  dn[0] = NaN_;
  for (let i = 1; i < len; i++) {
    const d = (c[i] as number) - (c[i - 1] as number);
    up[i] = Math.max(d, 0);
    dn[i] = d < 0 ? -d : 0;
  }
  const au = rma(up, n, alloc(x));
  const ad = rma(dn, n, alloc(x));
  for (let i = 0; i < len; i++) {
    const u = au[i] as number;
    const d = ad[i] as number;
    out[i] = d === 0 ? (u === 0 ? 50 : 100) : 100 - 100 / (1 + u / d);
    if (Number.isNaN(u)) out[i] = NaN_;
  }
}
function mfi(x: Ctx, n: number, out: Float64Array): void {
  const pos = alloc(x);
  const neg = alloc(x);
  let prev = NaN_;
  for (let i = 0; i < x.n; i++) {
    const tp = ((x.h[i] as number) + (x.l[i] as number) + (x.c[i] as number)) / 3;
    const mf = tp * (x.v[i] as number);
    if (i === 0) {
      pos[i] = NaN_;
      neg[i] = NaN_;
    } else {
      pos[i] = tp > prev ? mf : 0;
      neg[i] = tp < prev ? mf : 0;
    }
    prev = tp;
  }
  const sp = rollingSum(pos, n, alloc(x));
  const sn = rollingSum(neg, n, alloc(x));
  for (let i = 0; i < x.n; i++) {
    const p = sp[i] as number;
    const q = sn[i] as number;
    out[i] = Number.isNaN(p) ? NaN_ : q === 0 ? (p === 0 ? 50 : 100) : 100 - 100 / (1 + p / q);
  }
}

/** Reference closes aligned to `time` (NaN where the reference has no bar at that open time). */
export function alignReference(time: Float64Array, ref: BarSeries): Float64Array {
  const out = new Float64Array(time.length);
  let j = 0;
  for (let i = 0; i < time.length; i++) {
    const t = time[i] as number;
    while (j < ref.length && (ref.time[j] as number) < t) j++;
    out[i] = j < ref.length && ref.time[j] === t ? (ref.close[j] as number) : NaN_;
  }
  return out;
}

/** Computes every feature in FEATURE_DEFS, column by column. */
export function computeFeatures(s: BarSeries, opts: FeatureOptions): FeatureFrame {
  const n = s.length;
  const nanCol = () => new Float64Array(n).fill(NaN_);
  const ws = opts.workspace?.n === n ? opts.workspace : undefined;
  const ctx: Ctx = {
    n,
    free: ws ? ws.free : [],
    live: [],
    cached: new Set(),
    dq: ws?.dq ?? new Int32Array(n),
    o: s.open,
    h: s.high,
    l: s.low,
    c: s.close,
    v: s.volume,
    qv: s.quoteVolume ?? nanCol(),
    trades: s.trades ?? nanCol(),
    tb: s.takerBuyVolume ?? nanCol(),
    ann: periodsPerYear(opts.timeframe),
    ref: opts.reference ? alignReference(s.time, opts.reference) : null,
    cache: new Map(),
  };
  const columns = FEATURES.map((f, k) => {
    let out = ws?.outputs[k];
    if (!out) {
      out = new Float64Array(n);
      if (ws) ws.outputs[k] = out;
    }
    f.fn(ctx, out);
    // Scratch columns go back to the pool; cached intermediates stay until the end of the call.
    for (const a of ctx.live) if (!ctx.cached.has(a)) ctx.free.push(a);
    ctx.live.length = 0;
    return out;
  });
  for (const a of ctx.cached) ctx.free.push(a);
  return { time: s.time, defs: FEATURE_DEFS, columns };
}

export interface NormaliseOptions {
  /** Trailing window for the z-score (rows). */
  readonly window: number;
  /** Winsorise the z-scores at +-clip (after the trailing winsorisation of the raw values). */
  readonly clip: number;
}

/**
 * Trailing normalisation: each feature (except regime labels) is winsorised at its trailing
 * mean +- clip SD, then z-scored over the same trailing window. Uses rows <= i only.
 */
export function normaliseFeatures(f: FeatureFrame, opts: NormaliseOptions): FeatureFrame {
  const columns = f.columns.map((c, k) => {
    if (f.defs[k]?.family === 'regime') return c;
    return rollingZScore(winsorizeTrailing(c, opts.window, opts.clip), opts.window);
  });
  return { time: f.time, defs: f.defs, columns };
}

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
