import type { BarSeries } from '@keel/core';
import { adxColumn, donchianColumns, emaColumn, macdColumns, windowSumColumn } from '@keel/core';
import { rollingCov } from './rolling.ts';

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

/** A feature: its definition and how to fill its column from the shared inputs. */
export interface Feature extends FeatureDef {
  readonly compute: (f: FeatureInputs, out: Float64Array) => void;
}

/**
 * What every feature reads: the bar columns, the annualisation factor, the aligned reference
 * closes, and a pool of scratch columns. Intermediate columns used by several features (log prices,
 * 1-bar returns, EMAs, ADX, window sums...) are computed once per call and shared.
 */
export class FeatureInputs {
  readonly n: number;
  readonly open: Float64Array;
  readonly high: Float64Array;
  readonly low: Float64Array;
  readonly close: Float64Array;
  readonly volume: Float64Array;
  /** NaN where the source has no such column. */
  readonly quoteVolume: Float64Array;
  readonly trades: Float64Array;
  readonly takerBuyVolume: Float64Array;
  /** Bars per year of the timeframe (annualises volatility). */
  readonly barsPerYear: number;
  /** Reference closes matched on open time (NaN where the reference has no bar), or null. */
  readonly reference: Float64Array | null;
  /** Columns of length n not in use; scratch columns return here after each feature. */
  private readonly pool: Float64Array[];
  private readonly taken: Float64Array[] = [];
  private readonly shared = new Map<string, Float64Array>();
  private readonly sharedSet = new Set<Float64Array>();

  constructor(
    readonly bars: BarSeries,
    opts: { barsPerYear: number; reference: Float64Array | null; pool: Float64Array[] },
  ) {
    const n = bars.length;
    const nanColumn = () => new Float64Array(n).fill(Number.NaN);
    this.n = n;
    this.open = bars.open;
    this.high = bars.high;
    this.low = bars.low;
    this.close = bars.close;
    this.volume = bars.volume;
    this.quoteVolume = bars.quoteVolume ?? nanColumn();
    this.trades = bars.trades ?? nanColumn();
    this.takerBuyVolume = bars.takerBuyVolume ?? nanColumn();
    this.barsPerYear = opts.barsPerYear;
    this.reference = opts.reference;
    this.pool = opts.pool;
  }

  /** A scratch column of n rows (contents undefined), returned to the pool after the current feature. */
  scratch(): Float64Array {
    const a = this.pool.pop() ?? new Float64Array(this.n);
    this.taken.push(a);
    return a;
  }

  /** A column computed once per call under `key` and shared by every feature that asks for it. */
  once(key: string, make: () => Float64Array): Float64Array {
    const v = this.shared.get(key);
    if (v) return v;
    return this.keep(key, make());
  }

  private keep(key: string, column: Float64Array): Float64Array {
    this.shared.set(key, column);
    this.sharedSet.add(column);
    return column;
  }

  /** Ends the current feature: its scratch columns go back to the pool, shared ones stay. */
  endFeature(): void {
    for (const a of this.taken) if (!this.sharedSet.has(a)) this.pool.push(a);
    this.taken.length = 0;
  }

  /** Ends the call: shared columns go back to the pool too. */
  endCall(): void {
    this.endFeature();
    for (const a of this.sharedSet) this.pool.push(a);
    this.shared.clear();
    this.sharedSet.clear();
  }

  logOf(which: 'open' | 'high' | 'low' | 'close'): Float64Array {
    return this.once(`log_${which}`, () => {
      const src = this[which];
      const out = this.scratch();
      for (let i = 0; i < this.n; i++) out[i] = Math.log(src[i] as number);
      return out;
    });
  }

  /** ln C_t - ln C_{t-k} from the shared log closes (one log per row for every horizon). */
  logReturn(k: number, out: Float64Array = this.scratch()): Float64Array {
    const lc = this.logOf('close');
    for (let i = 0; i < this.n; i++) out[i] = i >= k ? (lc[i] as number) - (lc[i - k] as number) : Number.NaN;
    return out;
  }

  return1(): Float64Array {
    return this.once('ret1', () => this.logReturn(1));
  }

  referenceLog(): Float64Array | null {
    const ref = this.reference;
    if (!ref) return null;
    return this.once('reflog', () => {
      const out = this.scratch();
      for (let i = 0; i < this.n; i++) out[i] = Math.log(ref[i] as number);
      return out;
    });
  }

  referenceReturn1(): Float64Array | null {
    const lr = this.referenceLog();
    if (!lr) return null;
    return this.once('refret1', () => {
      const out = this.scratch();
      for (let i = 0; i < this.n; i++) out[i] = i >= 1 ? (lr[i] as number) - (lr[i - 1] as number) : Number.NaN;
      return out;
    });
  }

  /** Sample variance of the reference's 1-bar returns over `w` rows. */
  referenceVariance(w: number): Float64Array | null {
    const rr = this.referenceReturn1();
    if (!rr) return null;
    return this.once(`refvar${w}`, () => rollingCov(rr, rr, w, this.scratch()));
  }

  /** Sample variance of the 1-bar log returns over `w` rows. */
  returnVariance(w: number): Float64Array {
    return this.once(`var${w}`, () => {
      const r = this.return1();
      return rollingCov(r, r, w, this.scratch());
    });
  }

  /** Sample covariance of the 1-bar log returns with the reference's over `w` rows. */
  referenceCovariance(w: number): Float64Array | null {
    const rr = this.referenceReturn1();
    if (!rr) return null;
    return this.once(`refcov${w}`, () => rollingCov(this.return1(), rr, w, this.scratch()));
  }

  /** Realised volatility: sample SD of the 1-bar log returns over `w` rows, annualised. */
  realisedVolatility(w: number): Float64Array {
    return this.once(`rv${w}`, () => {
      const v = this.returnVariance(w);
      const out = this.scratch();
      const k = Math.sqrt(this.barsPerYear);
      // A variance rounded below zero is a flat window.
      for (let i = 0; i < this.n; i++) out[i] = Math.sqrt(Math.max(0, v[i] as number)) * k;
      return out;
    });
  }

  /** Quote volume, or volume x close where the source has none. */
  dollarVolume(): Float64Array {
    return this.once('dvol', () => {
      const d = this.scratch();
      for (let i = 0; i < this.n; i++) {
        const q = this.quoteVolume[i] as number;
        d[i] = !Number.isNaN(q) ? q : (this.volume[i] as number) * (this.close[i] as number);
      }
      return d;
    });
  }

  ema(period: number): Float64Array {
    return this.once(`ema${period}`, () => emaColumn(this.close, period, this.scratch()));
  }

  adx(period: number): Float64Array {
    return this.once(`adx${period}`, () => adxColumn(this.bars, period, this.scratch()));
  }

  volumeSum(w: number): Float64Array {
    return this.once(`sumv${w}`, () => windowSumColumn(this.volume, w, this.scratch()));
  }

  /** MACD(12, 26, 9) of the closes: its line and histogram. */
  macd(): { macd: Float64Array; histogram: Float64Array } {
    if (!this.shared.has('macd')) {
      const r = macdColumns(this.close, 12, 26, 9, this.scratch(), this.scratch());
      this.keep('macd', r.macd);
      this.keep('macd_hist', r.histogram);
    }
    return { macd: this.shared.get('macd') as Float64Array, histogram: this.shared.get('macd_hist') as Float64Array };
  }

  /** Donchian channel of `w` bars: highest high and lowest low. */
  donchian(w: number): { upper: Float64Array; lower: Float64Array } {
    const up = `donchian${w}_upper`;
    const lo = `donchian${w}_lower`;
    if (!this.shared.has(up)) {
      const r = donchianColumns(this.bars, w, this.scratch(), this.scratch());
      this.keep(up, r.upper);
      this.keep(lo, r.lower);
    }
    return { upper: this.shared.get(up) as Float64Array, lower: this.shared.get(lo) as Float64Array };
  }
}
