/**
 * Oracle: TA-Lib (the `talib` npm addon, TA-Lib's C code). Every indicator TA-Lib has is compared
 * value for value on real Binance bars, warm-up included: our first defined index must equal
 * TA-Lib's begIndex, everything before it must be NaN, and from there on values must agree to
 * 1e-9 relative (absolute near zero).
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import {
  AD,
  ADOSC,
  ADX,
  APO,
  Aroon,
  ATR,
  BOP,
  Bollinger,
  CCI,
  CMO,
  DEMA,
  EMA,
  type Indicator,
  KAMA,
  LinRegSlope,
  MACD,
  MFI,
  Momentum,
  NATR,
  OBV,
  PPO,
  ROC,
  RSI,
  SAR,
  SMA,
  StdDev,
  Stochastic,
  StochRSI,
  TEMA,
  TRIX,
  TrueRange,
  ULTOSC,
  WilliamsR,
  WMA,
} from '../../src/indicators/index.ts';
import type { Bar } from '../../src/model/bar.ts';
import { BTC_1D, BTC_1M, type Columns, ETH_1H, HAS_SHARED_DATA, loadBars, noteSkip } from './load.ts';

interface TalibResult {
  begIndex: number;
  nbElement: number;
  result: Record<string, number[]>;
}
interface TalibInput {
  name: string;
  type: 'price' | 'real' | 'integer';
  flags?: Record<string, string>;
}
interface Talib {
  execute(params: Record<string, unknown>): TalibResult;
  explain(name: string): { inputs: TalibInput[] };
}

const talib = createRequire(import.meta.url)('talib') as Talib;

/** Runs TA-Lib function `fn` over the data, feeding the inputs its description asks for. */
function talibRun(fn: string, opts: Record<string, number>, d: Columns): TalibResult {
  const params: Record<string, unknown> = { name: fn, startIdx: 0, endIdx: d.length - 1, ...opts };
  for (const input of talib.explain(fn).inputs) {
    if (input.type === 'price') {
      for (const f of Object.values(input.flags ?? {}))
        params[f] = d[f as 'open' | 'high' | 'low' | 'close' | 'volume'];
    } else {
      params[input.name] = d.close;
    }
  }
  return talib.execute(params);
}

interface Check {
  /** Field of our indicator ('value' for the primary). */
  field: string;
  fn: string;
  opts?: Record<string, number>;
  out?: string;
}
interface Case {
  label: string;
  make: () => Indicator;
  checks: Check[];
  /** Why this case is not compared on perfectly flat bars (a documented deviation), if it is not. */
  notOnFlat?: string;
}

const c = (label: string, make: () => Indicator, ...checks: Check[]): Case => ({ label, make, checks });
const p = (n: number) => ({ optInTimePeriod: n });

const CASES: Case[] = [
  c('SMA(10)', () => new SMA(10), { field: 'value', fn: 'SMA', opts: p(10) }),
  c('SMA(30)', () => new SMA(30), { field: 'value', fn: 'SMA', opts: p(30) }),
  c('EMA(20)', () => new EMA(20), { field: 'value', fn: 'EMA', opts: p(20) }),
  c('EMA(9)', () => new EMA(9), { field: 'value', fn: 'EMA', opts: p(9) }),
  c('WMA(20)', () => new WMA(20), { field: 'value', fn: 'WMA', opts: p(20) }),
  c('WMA(7)', () => new WMA(7), { field: 'value', fn: 'WMA', opts: p(7) }),
  c('DEMA(20)', () => new DEMA(20), { field: 'value', fn: 'DEMA', opts: p(20) }),
  c('TEMA(20)', () => new TEMA(20), { field: 'value', fn: 'TEMA', opts: p(20) }),
  c('KAMA(30)', () => new KAMA(30), { field: 'value', fn: 'KAMA', opts: p(30) }),
  c('KAMA(10)', () => new KAMA(10), { field: 'value', fn: 'KAMA', opts: p(10) }),
  c('TRIX(30)', () => new TRIX(30), { field: 'value', fn: 'TRIX', opts: p(30) }),
  c('TRIX(15)', () => new TRIX(15), { field: 'value', fn: 'TRIX', opts: p(15) }),
  c('RSI(14)', () => new RSI(14), { field: 'value', fn: 'RSI', opts: p(14) }),
  {
    ...c('RSI(2)', () => new RSI(2), { field: 'value', fn: 'RSI', opts: p(2) }),
    notOnFlat: "RSI keeps backtrader's arithmetic: once gain + loss < 1e-14 TA-Lib says 0, we keep the ratio",
  },
  c(
    'Stochastic(14,3,3)',
    () => new Stochastic(14, 3, 3),
    ...(['k', 'd'] as const).map((field) => ({
      field,
      fn: 'STOCH',
      opts: {
        optInFastK_Period: 14,
        optInSlowK_Period: 3,
        optInSlowK_MAType: 0,
        optInSlowD_Period: 3,
        optInSlowD_MAType: 0,
      },
      out: field === 'k' ? 'outSlowK' : 'outSlowD',
    })),
  ),
  c(
    'Stochastic(5,3,4)',
    () => new Stochastic(5, 3, 4),
    ...(['k', 'd'] as const).map((field) => ({
      field,
      fn: 'STOCH',
      opts: {
        optInFastK_Period: 5,
        optInSlowK_Period: 3,
        optInSlowK_MAType: 0,
        optInSlowD_Period: 4,
        optInSlowD_MAType: 0,
      },
      out: field === 'k' ? 'outSlowK' : 'outSlowD',
    })),
  ),
  c(
    'StochRSI(14,5,3)',
    () => new StochRSI(14, 5, 3),
    ...(['k', 'd'] as const).map((field) => ({
      field,
      fn: 'STOCHRSI',
      opts: { optInTimePeriod: 14, optInFastK_Period: 5, optInFastD_Period: 3, optInFastD_MAType: 0 },
      out: field === 'k' ? 'outFastK' : 'outFastD',
    })),
  ),
  c(
    'StochRSI(14,14,3)',
    () => new StochRSI(14, 14, 3),
    ...(['k', 'd'] as const).map((field) => ({
      field,
      fn: 'STOCHRSI',
      opts: { optInTimePeriod: 14, optInFastK_Period: 14, optInFastD_Period: 3, optInFastD_MAType: 0 },
      out: field === 'k' ? 'outFastK' : 'outFastD',
    })),
  ),
  ...[
    [12, 26, 9],
    [5, 35, 5],
    [26, 12, 9],
  ].map(([f, s, g]) =>
    c(
      `MACD(${f},${s},${g})`,
      () => new MACD(f!, s!, g!),
      ...(
        [
          ['macd', 'outMACD'],
          ['signal', 'outMACDSignal'],
          ['histogram', 'outMACDHist'],
        ] as const
      ).map(([field, out]) => ({
        field,
        fn: 'MACD',
        opts: { optInFastPeriod: f!, optInSlowPeriod: s!, optInSignalPeriod: g! },
        out,
      })),
    ),
  ),
  c('PPO(12,26)', () => new PPO(12, 26), {
    field: 'value',
    fn: 'PPO',
    opts: { optInFastPeriod: 12, optInSlowPeriod: 26, optInMAType: 0 },
  }),
  c('APO(12,26)', () => new APO(12, 26), {
    field: 'value',
    fn: 'APO',
    opts: { optInFastPeriod: 12, optInSlowPeriod: 26, optInMAType: 0 },
  }),
  c('CCI(20)', () => new CCI(20), { field: 'value', fn: 'CCI', opts: p(20) }),
  c('CCI(14)', () => new CCI(14), { field: 'value', fn: 'CCI', opts: p(14) }),
  c('MFI(14)', () => new MFI(14), { field: 'value', fn: 'MFI', opts: p(14) }),
  c('ROC(10)', () => new ROC(10), { field: 'value', fn: 'ROC', opts: p(10) }),
  c('Momentum(10)', () => new Momentum(10), { field: 'value', fn: 'MOM', opts: p(10) }),
  c('CMO(14)', () => new CMO(14), { field: 'value', fn: 'CMO', opts: p(14) }),
  c('WilliamsR(14)', () => new WilliamsR(14), { field: 'value', fn: 'WILLR', opts: p(14) }),
  c('ULTOSC(7,14,28)', () => new ULTOSC(7, 14, 28), {
    field: 'value',
    fn: 'ULTOSC',
    opts: { optInTimePeriod1: 7, optInTimePeriod2: 14, optInTimePeriod3: 28 },
  }),
  c('ULTOSC(20,5,10)', () => new ULTOSC(20, 5, 10), {
    field: 'value',
    fn: 'ULTOSC',
    opts: { optInTimePeriod1: 20, optInTimePeriod2: 5, optInTimePeriod3: 10 },
  }),
  c('BOP', () => new BOP(), { field: 'value', fn: 'BOP' }),
  c('LinRegSlope(14)', () => new LinRegSlope(14), { field: 'value', fn: 'LINEARREG_SLOPE', opts: p(14) }),
  ...[14, 5].map((n) =>
    c(
      `ADX(${n})`,
      () => new ADX(n),
      { field: 'value', fn: 'ADX', opts: p(n) },
      { field: 'adx', fn: 'ADX', opts: p(n) },
      { field: 'plusDI', fn: 'PLUS_DI', opts: p(n) },
      { field: 'minusDI', fn: 'MINUS_DI', opts: p(n) },
    ),
  ),
  ...[14, 25].map((n) =>
    c(
      `Aroon(${n})`,
      () => new Aroon(n),
      { field: 'value', fn: 'AROONOSC', opts: p(n) },
      { field: 'up', fn: 'AROON', opts: p(n), out: 'outAroonUp' },
      { field: 'down', fn: 'AROON', opts: p(n), out: 'outAroonDown' },
    ),
  ),
  c('SAR(0.02,0.2)', () => new SAR(0.02, 0.2), {
    field: 'value',
    fn: 'SAR',
    opts: { optInAcceleration: 0.02, optInMaximum: 0.2 },
  }),
  c('SAR(0.01,0.1)', () => new SAR(0.01, 0.1), {
    field: 'value',
    fn: 'SAR',
    opts: { optInAcceleration: 0.01, optInMaximum: 0.1 },
  }),
  {
    ...c(
      'Bollinger(20,2)',
      () => new Bollinger(20, 2),
      ...(
        [
          ['value', 'outRealMiddleBand'],
          ['upper', 'outRealUpperBand'],
          ['lower', 'outRealLowerBand'],
        ] as const
      ).map(([field, out]) => ({
        field,
        fn: 'BBANDS',
        opts: { optInTimePeriod: 20, optInNbDevUp: 2, optInNbDevDn: 2, optInMAType: 0 },
        out,
      })),
    ),
    notOnFlat:
      "Bollinger keeps backtrader's σ = sqrt(|E[x²] − E[x]²|): rounding noise (~5e-4) on a flat window, where TA-Lib says 0",
  },
  c('ATR(14)', () => new ATR(14), { field: 'value', fn: 'ATR', opts: p(14) }),
  c('ATR(1)', () => new ATR(1), { field: 'value', fn: 'ATR', opts: p(1) }),
  c('NATR(14)', () => new NATR(14), { field: 'value', fn: 'NATR', opts: p(14) }),
  c('TrueRange', () => new TrueRange(), { field: 'value', fn: 'TRANGE' }),
  c('StdDev(20,1)', () => new StdDev(20, 1), {
    field: 'value',
    fn: 'STDDEV',
    opts: { optInTimePeriod: 20, optInNbDev: 1 },
  }),
  c('StdDev(5,2)', () => new StdDev(5, 2), {
    field: 'value',
    fn: 'STDDEV',
    opts: { optInTimePeriod: 5, optInNbDev: 2 },
  }),
  c('OBV', () => new OBV(), { field: 'value', fn: 'OBV' }),
  c('AD', () => new AD(), { field: 'value', fn: 'AD' }),
  c('ADOSC(3,10)', () => new ADOSC(3, 10), {
    field: 'value',
    fn: 'ADOSC',
    opts: { optInFastPeriod: 3, optInSlowPeriod: 10 },
  }),
];

/** Streams the bars through a fresh indicator and records the requested fields after every bar. */
function stream(make: () => Indicator, d: Columns, fields: readonly string[]): Map<string, Float64Array> {
  const ind = make();
  const out = new Map(fields.map((f) => [f, new Float64Array(d.length)]));
  const rec = ind as unknown as Record<string, number>;
  for (let i = 0; i < d.length; i++) {
    ind.update(d.bars[i]!);
    for (const [f, arr] of out) arr[i] = rec[f] as number;
  }
  return out;
}

/** Index of the first mismatch, as a readable message, or null. */
function compare(ours: Float64Array, ref: TalibResult, out: string): string | null {
  const vals = ref.result[out];
  if (!vals) return `TA-Lib returned no output ${out}`;
  const beg = ref.begIndex;
  for (let i = 0; i < beg; i++)
    if (!Number.isNaN(ours[i])) return `index ${i} is ${ours[i]}, expected NaN (TA-Lib begIndex ${beg})`;
  for (let j = 0; j < ref.nbElement; j++) {
    const a = ours[beg + j] as number;
    const b = vals[j] as number;
    if (!(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b))))
      return `index ${beg + j}: ours ${a}, TA-Lib ${b} (diff ${a - b})`;
  }
  if (beg + ref.nbElement !== ours.length)
    return `TA-Lib produced ${ref.nbElement} values from ${beg}, we have ${ours.length - beg}`;
  return null;
}

/** Real bars followed by 80 flat zero-volume bars (a halted market): exercises every zero guard. */
function withHalt(d: Columns): Columns {
  const last = d.bars[d.length - 1]!;
  const c = last.close;
  const flat: Bar[] = Array.from({ length: 80 }, (_, i) => ({
    time: last.time + (i + 1) * 60_000,
    open: c,
    high: c,
    low: c,
    close: c,
    volume: 0,
    quoteVolume: Number.NaN,
    trades: Number.NaN,
    takerBuyVolume: Number.NaN,
  }));
  const bars = [...d.bars, ...flat];
  const col = (k: 'time' | 'open' | 'high' | 'low' | 'close' | 'volume') => bars.map((b) => b[k]);
  return {
    length: bars.length,
    time: col('time'),
    open: col('open'),
    high: col('high'),
    low: col('low'),
    close: col('close'),
    volume: col('volume'),
    bars,
  };
}

const DATASETS: { label: string; load: () => Columns; flat?: true }[] = [
  { label: 'BTCUSDT 1m 2024-01 (first 8000 bars)', load: () => loadBars(BTC_1M, 8000) },
  {
    label: 'BTCUSDT 1m (first 3000 bars) then 80 flat zero-volume bars',
    load: () => withHalt(loadBars(BTC_1M, 3000)),
    flat: true,
  },
  { label: 'BTCUSDT 1d 2017-2026', load: () => loadBars(BTC_1D) },
  {
    label: 'ETHUSDT 1h 2022-2023 (first 12000 bars, incl. the zero-volume halt bar)',
    load: () => loadBars(ETH_1H, 12000),
  },
];

if (!HAS_SHARED_DATA) noteSkip('indicators match TA-Lib');

describe.skipIf(!HAS_SHARED_DATA)('indicators match TA-Lib (talib npm addon) on real bars', () => {
  for (const ds of DATASETS) {
    describe(ds.label, () => {
      for (const k of CASES) {
        if (ds.flat && k.notOnFlat) {
          it.skip(`${k.label}: not compared on flat bars (${k.notOnFlat})`, () => {});
          continue;
        }
        it(`${k.label} matches TA-Lib ${[...new Set(k.checks.map((x) => x.fn))].join('/')}`, () => {
          const d = ds.load();
          const fields = k.checks.map((x) => x.field);
          const ours = stream(k.make, d, fields);
          const problems: string[] = [];
          for (const check of k.checks) {
            const ref = talibRun(check.fn, check.opts ?? {}, d);
            const msg = compare(ours.get(check.field)!, ref, check.out ?? 'outReal');
            if (msg) problems.push(`${check.field} vs ${check.fn}.${check.out ?? 'outReal'}: ${msg}`);
          }
          // lookback is TA-Lib's lookback for the primary output.
          const primary = k.checks[0]!;
          const ref = talibRun(primary.fn, primary.opts ?? {}, d);
          if (k.make().lookback !== ref.begIndex)
            problems.push(`lookback ${k.make().lookback}, TA-Lib begIndex ${ref.begIndex}`);
          expect(problems).toEqual([]);
        });
      }
    });
  }
});
