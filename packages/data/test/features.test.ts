import { createRequire } from 'node:module';
import {
  ADX,
  ATR,
  Donchian,
  EMA,
  emptyBar,
  MACD,
  MFI,
  OBV,
  ROC,
  RSI,
  readBar,
  SMA,
  SmaCore,
  VWAP,
  ZScore,
} from '@keel/core';
import { describe, expect, it } from 'vitest';
import {
  computeFeatures,
  FEATURE_DEFS,
  FEATURE_FAMILIES,
  FeatureWorkspace,
  featureQc,
  normaliseFeatures,
  periodsPerYear,
  rollingExtreme,
} from '../src/features/index.ts';
import { sliceFull } from '../src/schema.ts';
import { BTC_1M, ETH_1H, ETH_1M, HAS_SHARED_DATA, LINK_FUT, noteSkip, real } from './helpers.ts';

interface TalibResult {
  begIndex: number;
  result: Record<string, number[]>;
}
const talib = createRequire(import.meta.url)('talib') as { execute(o: Record<string, unknown>): TalibResult };

const col = (f: ReturnType<typeof computeFeatures>, name: string): Float64Array => {
  const k = f.defs.findIndex((d) => d.name === name);
  if (k < 0) throw new Error(`no feature ${name}`);
  return f.columns[k] as Float64Array;
};

describe('feature catalogue', () => {
  it('has at least 42 uniquely named features in all 9 families, each with a formula', () => {
    expect(FEATURE_DEFS.length).toBeGreaterThanOrEqual(42);
    expect(new Set(FEATURE_DEFS.map((d) => d.name)).size).toBe(FEATURE_DEFS.length);
    for (const fam of FEATURE_FAMILIES)
      expect(FEATURE_DEFS.filter((d) => d.family === fam).length, fam).toBeGreaterThanOrEqual(3);
    for (const d of FEATURE_DEFS) expect(d.formula.length, d.name).toBeGreaterThan(5);
    for (const n of [
      'parkinson_20',
      'garman_klass_20',
      'rv_20',
      'amihud_20',
      'beta_ref_60',
      'corr_ref_60',
      'rs_ref_20',
      'taker_buy_ratio',
      'roll_spread_20',
      'trend_regime',
      'vol_regime',
      'drawdown',
      'cs_spread_20',
    ]) {
      expect(
        FEATURE_DEFS.some((d) => d.name === n),
        n,
      ).toBe(true);
    }
  });

  it('annualises volatility by the bars in a 365.25-day year of the timeframe', () => {
    expect(periodsPerYear('1m')).toBe(525_960);
    expect(periodsPerYear('1h')).toBe(8766);
    expect(periodsPerYear('1d')).toBe(365.25);
  });

  it('rolling max by monotonic deque equals the naive window max', () => {
    const x = Float64Array.from({ length: 500 }, (_, i) => Math.sin(i * 0.37) * 10 + (i % 7));
    const m = rollingExtreme(x, 13, 1);
    const n = rollingExtreme(x, 13, -1);
    for (let i = 12; i < x.length; i++) {
      const w = Array.from(x.subarray(i - 12, i + 1));
      expect(m[i]).toBe(Math.max(...w));
      expect(n[i]).toBe(Math.min(...w));
    }
  });
});

describe.skipIf(!HAS_SHARED_DATA)('features on real 1m data', () => {
  if (!HAS_SHARED_DATA) noteSkip('features');
  const eth = real(ETH_1M);
  const btc = real(BTC_1M);
  const full = computeFeatures(eth, { timeframe: '1m', reference: btc });

  it('no leakage: features on a prefix equal the same rows computed on all the data (raw and normalised)', () => {
    const cut = 20_000;
    const pre = computeFeatures(sliceFull(eth, 0, cut), { timeframe: '1m', reference: sliceFull(btc, 0, cut) });
    const bad: string[] = [];
    full.defs.forEach((d, k) => {
      const a = full.columns[k] as Float64Array;
      const b = pre.columns[k] as Float64Array;
      for (let i = 0; i < cut; i++)
        if (!Object.is(a[i], b[i])) {
          bad.push(`${d.name} row ${i}: ${a[i]} vs ${b[i]}`);
          break;
        }
    });
    expect(bad).toEqual([]);
    const nf = normaliseFeatures(full, { window: 500, clip: 4 });
    const np = normaliseFeatures(pre, { window: 500, clip: 4 });
    nf.defs.forEach((d, k) => {
      const a = nf.columns[k] as Float64Array;
      const b = np.columns[k] as Float64Array;
      for (let i = 0; i < cut; i++)
        if (!Object.is(a[i], b[i])) {
          bad.push(`normalised ${d.name} row ${i}`);
          break;
        }
    });
    expect(bad).toEqual([]);
  });

  it('a reused workspace gives the same values as a fresh computation', () => {
    const ws = new FeatureWorkspace(eth.length);
    computeFeatures(eth, { timeframe: '1m', reference: btc, workspace: ws });
    const again = computeFeatures(eth, { timeframe: '1m', reference: btc, workspace: ws });
    full.defs.forEach((d, k) => {
      const a = full.columns[k] as Float64Array;
      const b = again.columns[k] as Float64Array;
      let diff = -1;
      for (let i = 0; i < a.length; i++)
        if (!Object.is(a[i], b[i])) {
          diff = i;
          break;
        }
      expect(diff, d.name).toBe(-1);
    });
  });

  it('RSI, ATR, MFI, ADX, EMA and MACD features match TA-Lib from their first value', () => {
    const n = 5000;
    const h = Array.from(eth.high.subarray(0, n));
    const l = Array.from(eth.low.subarray(0, n));
    const c = Array.from(eth.close.subarray(0, n));
    const v = Array.from(eth.volume.subarray(0, n));
    const f = computeFeatures(sliceFull(eth, 0, n), { timeframe: '1m' });
    const check = (
      name: string,
      fn: string,
      opts: Record<string, unknown>,
      ours: (i: number) => number,
      from: number,
      tol: number,
    ) => {
      const r = talib.execute({
        name: fn,
        startIdx: 0,
        endIdx: n - 1,
        high: h,
        low: l,
        close: c,
        inReal: c,
        volume: v,
        ...opts,
      });
      const out = Object.values(r.result)[0] as number[];
      let worst = 0;
      for (let j = 0; j < out.length; j++) {
        const i = j + r.begIndex;
        if (i < from) continue;
        worst = Math.max(worst, Math.abs(ours(i) - (out[j] as number)) / Math.max(1e-12, Math.abs(out[j] as number)));
      }
      expect(worst, `${name} vs TA-Lib ${fn}`).toBeLessThan(tol);
    };
    check('rsi_14', 'RSI', { optInTimePeriod: 14 }, (i) => col(f, 'rsi_14')[i] as number, 0, 1e-9);
    check('atr_14', 'ATR', { optInTimePeriod: 14 }, (i) => (col(f, 'atr_14')[i] as number) * (c[i] as number), 0, 1e-9);
    check('mfi_14', 'MFI', { optInTimePeriod: 14 }, (i) => col(f, 'mfi_14')[i] as number, 0, 1e-9);
    check('adx_14', 'ADX', { optInTimePeriod: 14 }, (i) => col(f, 'adx_14')[i] as number, 0, 1e-9);
    const ema = (k: number) => (i: number) => (c[i] as number) / ((col(f, `ema_ratio_${k}`)[i] as number) + 1);
    check('ema_ratio_12', 'EMA', { optInTimePeriod: 12 }, ema(12), 0, 1e-9);
    check('ema_ratio_48', 'EMA', { optInTimePeriod: 48 }, ema(48), 0, 1e-9);
    const macd = { optInFastPeriod: 12, optInSlowPeriod: 26, optInSignalPeriod: 9 };
    check('macd', 'MACD', macd, (i) => (col(f, 'macd')[i] as number) * (c[i] as number), 0, 1e-9);
    const hist = talib.execute({ name: 'MACD', startIdx: 0, endIdx: n - 1, inReal: c, ...macd });
    const ours = col(f, 'macd_hist');
    expect(hist.begIndex).toBe(33);
    hist.result.outMACDHist?.forEach((h, j) => {
      const got = (ours[j + hist.begIndex] as number) * (c[j + hist.begIndex] as number);
      expect(Math.abs(got - h), `macd_hist row ${j + hist.begIndex}`).toBeLessThan(1e-9 * Math.max(1, Math.abs(h)));
    });
  });

  it('indicator features equal core streaming indicators fed the same bars one by one (bit for bit)', () => {
    // ETHUSDT 1m for the month, and ETHUSDT 1h over 2023-03 with its zero-volume halt bar.
    const eth1h = real(ETH_1H);
    const from = eth1h.time.findIndex((t) => t >= Date.UTC(2023, 2, 1));
    for (const [label, s] of [
      ['ETHUSDT 1m 2024-01', eth],
      ['ETHUSDT 1h from 2023-03-01', sliceFull(eth1h, from, from + 3000)],
    ] as const) {
      const f = computeFeatures(s, { timeframe: '1m' });
      const n = s.length;
      const bar = emptyBar();
      const volumeBar = emptyBar();
      const inds = {
        ema12: new EMA(12),
        ema48: new EMA(48),
        macd: new MACD(12, 26, 9),
        rsi: new RSI(14),
        roc: new ROC(20),
        adx: new ADX(14),
        sma20: new SMA(20),
        z20: new ZScore(20),
        z100: new ZScore(100),
        dc14: new Donchian(14),
        dc60: new Donchian(60),
        vwap: new VWAP('rolling', 20),
        atr: new ATR(14),
        obv: new OBV(),
        mfi: new MFI(14),
        volZ: new ZScore(20),
        volSum: new SmaCore(20),
      };
      const want: Record<string, number[]> = {};
      const put = (k: string, v: number) => (want[k] ??= []).push(v);
      const smaHist: number[] = [];
      const obvHist: number[] = [];
      for (let i = 0; i < n; i++) {
        readBar(s, i, bar);
        const c = bar.close;
        for (const ind of Object.values(inds)) if (!(ind instanceof SmaCore) && ind !== inds.volZ) ind.update(bar);
        volumeBar.close = Math.log1p(bar.volume);
        inds.volZ.update(volumeBar);
        inds.volSum.push(bar.volume);
        smaHist.push(inds.sma20.value);
        obvHist.push(inds.obv.value);
        put('ema_ratio_12', c / inds.ema12.value - 1);
        put('ema_ratio_48', c / inds.ema48.value - 1);
        put('macd', inds.macd.macd / c);
        put('macd_hist', inds.macd.histogram / c);
        put('rsi_14', inds.rsi.value);
        put('roc_20', inds.roc.value / 100);
        put('adx_14', inds.adx.value);
        put('sma_slope_20', i >= 5 ? (smaHist[i] as number) / (smaHist[i - 5] as number) - 1 : Number.NaN);
        put('zscore_20', inds.z20.value);
        put('zscore_100', inds.z100.value);
        const r14 = inds.dc14.upper - inds.dc14.lower;
        put('stoch_k_14', r14 > 0 ? (100 * (c - inds.dc14.lower)) / r14 : r14 === 0 ? 50 : Number.NaN);
        const r60 = inds.dc60.upper - inds.dc60.lower;
        put('range_pos_60', r60 > 0 ? (c - inds.dc60.lower) / r60 : r60 === 0 ? 0.5 : Number.NaN);
        put('drawdown_60', c / inds.dc60.upper - 1);
        put('dist_vwap_20', c / inds.vwap.value - 1);
        put('atr_14', inds.atr.value / c);
        put('vol_z_20', inds.volZ.value);
        const mean = inds.volSum.sum / 20;
        put('vol_ratio_20', mean > 0 ? bar.volume / mean : Number.NaN);
        const sum = inds.volSum.sum;
        put('obv_flow_20', i < 20 ? Number.NaN : sum > 0 ? (inds.obv.value - (obvHist[i - 20] as number)) / sum : 0);
        put('mfi_14', inds.mfi.value);
      }
      const bad: string[] = [];
      for (const [name, values] of Object.entries(want)) {
        const got = col(f, name);
        const i = values.findIndex((v, k) => !Object.is(v, got[k]));
        if (i >= 0) bad.push(`${label} ${name} row ${i}: feature ${got[i]}, indicator ${values[i]}`);
      }
      expect(bad).toEqual([]);
      // trend_regime is built from the same EMA12, EMA48 and ADX14.
      const e12 = want.ema_ratio_12 as number[];
      const e48 = want.ema_ratio_48 as number[];
      const adx = want.adx_14 as number[];
      const regime = col(f, 'trend_regime');
      for (let i = 0; i < n; i++) {
        const c = s.close[i] as number;
        const slow = c / ((e48[i] as number) + 1);
        const fast = c / ((e12[i] as number) + 1);
        const strong = (adx[i] as number) > 20;
        const expected = Number.isNaN(e48[i] as number)
          ? Number.NaN
          : strong && c > slow && fast > slow
            ? 1
            : strong && c < slow && fast < slow
              ? -1
              : 0;
        if (!Object.is(regime[i], expected)) bad.push(`${label} trend_regime row ${i}: ${regime[i]} vs ${expected}`);
        if (bad.length > 3) break;
      }
      expect(bad).toEqual([]);
    }
  });

  it('volatility, liquidity and cross-asset values match naive window formulas (independent re-computation)', () => {
    const rv = col(full, 'rv_20');
    const pk = col(full, 'parkinson_20');
    const am = col(full, 'amihud_20');
    const beta = col(full, 'beta_ref_60');
    const corr = col(full, 'corr_ref_60');
    const dd = col(full, 'drawdown');
    const lr = (s: Float64Array, i: number) => Math.log((s[i] as number) / (s[i - 1] as number));
    let peak = 0;
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.max(1e-300, Math.abs(b));
    for (let i = 0; i < eth.length; i++) {
      peak = Math.max(peak, eth.close[i] as number);
      if (i % 977 !== 0 || i < 100) continue;
      const r = Array.from({ length: 20 }, (_, k) => lr(eth.close, i - 19 + k));
      const m = r.reduce((a, b) => a + b, 0) / 20;
      const sd = Math.sqrt(r.reduce((a, b) => a + (b - m) ** 2, 0) / 19);
      expect(rel(rv[i] as number, sd * Math.sqrt(525_960)), `rv_20 row ${i}`).toBeLessThan(1e-6);
      const p =
        Array.from(
          { length: 20 },
          (_, k) => Math.log((eth.high[i - 19 + k] as number) / (eth.low[i - 19 + k] as number)) ** 2,
        ).reduce((a, b) => a + b, 0) / 20;
      expect(rel(pk[i] as number, Math.sqrt((p / (4 * Math.LN2)) * 525_960)), `parkinson row ${i}`).toBeLessThan(1e-9);
      const a =
        Array.from(
          { length: 20 },
          (_, k) =>
            (1e6 * Math.abs(lr(eth.close, i - 19 + k))) /
            ((eth.volume[i - 19 + k] as number) * (eth.close[i - 19 + k] as number)),
        ).reduce((x, y) => x + y, 0) / 20;
      expect(rel(am[i] as number, a), `amihud row ${i}`).toBeLessThan(1e-6);
      const x = Array.from({ length: 60 }, (_, k) => lr(btc.close, i - 59 + k));
      const y = Array.from({ length: 60 }, (_, k) => lr(eth.close, i - 59 + k));
      const mx = x.reduce((s, q) => s + q, 0) / 60;
      const my = y.reduce((s, q) => s + q, 0) / 60;
      const cxy = x.reduce((s, q, k) => s + (q - mx) * ((y[k] as number) - my), 0);
      const cxx = x.reduce((s, q) => s + (q - mx) ** 2, 0);
      const cyy = y.reduce((s, q) => s + (q - my) ** 2, 0);
      expect(rel(beta[i] as number, cxy / cxx), `beta row ${i}`).toBeLessThan(1e-6);
      expect(Math.abs((corr[i] as number) - cxy / Math.sqrt(cxx * cyy)), `corr row ${i}`).toBeLessThan(1e-6);
      expect(dd[i]).toBe((eth.close[i] as number) / peak - 1);
    }
  });

  it('realised volatility scales with the timeframe: the same bars read as 1h give sqrt(60) less', () => {
    const s = sliceFull(eth, 0, 2000);
    const a = col(computeFeatures(s, { timeframe: '1m' }), 'rv_20');
    const b = col(computeFeatures(s, { timeframe: '1h' }), 'rv_20');
    expect((a[1999] as number) / (b[1999] as number)).toBeCloseTo(Math.sqrt(60), 9);
  });

  it('feature QC: no NaN after warm-up with a reference and full klines; constant columns and correlated pairs reported', () => {
    const link = real(LINK_FUT);
    const f = computeFeatures(link, { timeframe: '1m', reference: link });
    const q = featureQc(f);
    const nanCols = Object.entries(q.nanShareAfterWarmup)
      .filter(([, s]) => s > 0)
      .map(([n]) => n);
    expect(nanCols).toEqual([]);
    expect(q.features).toBe(FEATURE_DEFS.length);
    // With itself as the reference beta and correlation are exactly 1 and relative strength 0.
    expect(q.constantColumns).toEqual(expect.arrayContaining(['beta_ref_60', 'corr_ref_60', 'rs_ref_20']));
    expect(q.correlatedPairs.some((p) => p.a === 'parkinson_20' && p.b === 'garman_klass_20')).toBe(true);
    const spot = featureQc(full);
    expect(spot.nanShareAfterWarmup.taker_buy_ratio).toBe(1); // the spot 1m files have no taker volumes
    expect(spot.constantColumns).toEqual([]);
  });
});
