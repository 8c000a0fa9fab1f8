import type { Indicator, Source } from './base.ts';
import { Bollinger } from './bollinger.ts';
import { DEMA, EMA, HMA, KAMA, TEMA, TRIX, WMA } from './ma.ts';
import {
  APO,
  BOP,
  CCI,
  CMO,
  LinRegSlope,
  MACD,
  Momentum,
  PPO,
  ROC,
  Stochastic,
  StochRSI,
  ULTOSC,
  WilliamsR,
} from './momentum.ts';
import { RSI } from './rsi.ts';
import { SMA } from './sma.ts';
import { ADX, Aroon, Ichimoku, SAR, SuperTrend } from './trend.ts';
import { ATR, Donchian, Keltner, NATR, StdDev, TrueRange, ZScore } from './volatility.ts';
import { AD, ADOSC, CMF, MFI, OBV, VWAP, type VWAPAnchor, VWMA } from './volume.ts';

export * from './base.ts';
export * from './bollinger.ts';
export * from './columnar.ts';
export * from './cores.ts';
export * from './crossover.ts';
export * from './ma.ts';
export * from './momentum.ts';
export * from './rsi.ts';
export * from './sma.ts';
export * from './trend.ts';
export * from './volatility.ts';
export * from './volume.ts';

export type ParamValue = number | string;
export type IndicatorParams = Readonly<Record<string, ParamValue>>;

/** Builds an indicator from (partial) params; carries its defaults and output field names for a CLI/UI. */
export interface IndicatorFactory {
  (params?: IndicatorParams): Indicator;
  readonly defaults: IndicatorParams;
  /** Numeric fields of the instance; the first is `value`, the primary output. */
  readonly outputs: readonly string[];
  readonly description: string;
  /** The TA-Lib function this indicator reproduces, if any. */
  readonly talib: string | null;
}

const SOURCES: ReadonlySet<string> = new Set<Source>([
  'open',
  'high',
  'low',
  'close',
  'volume',
  'hl2',
  'hlc3',
  'ohlc4',
]);

function def<const D extends Record<string, ParamValue>>(
  name: string,
  spec: { description: string; talib: string | null; defaults: D; outputs: readonly string[] },
  make: (p: D) => Indicator,
): IndicatorFactory {
  const factory = (params: IndicatorParams = {}): Indicator => {
    const merged: Record<string, ParamValue> = { ...spec.defaults };
    for (const [k, v] of Object.entries(params)) {
      const d = spec.defaults[k];
      if (d === undefined)
        throw new Error(
          `${name}: unknown parameter "${k}" (known: ${Object.keys(spec.defaults).join(', ') || 'none'})`,
        );
      if (typeof v !== typeof d)
        throw new Error(`${name}: parameter "${k}" must be a ${typeof d}, got ${JSON.stringify(v)}`);
      if (k === 'source' && !SOURCES.has(v as string))
        throw new Error(`${name}: source must be one of ${[...SOURCES].join(', ')}, got "${String(v)}"`);
      merged[k] = v;
    }
    return make(merged as D);
  };
  return Object.assign(factory, {
    defaults: spec.defaults,
    outputs: spec.outputs,
    description: spec.description,
    talib: spec.talib,
  });
}

const src = (p: { source: string }): Source => p.source as Source;

/** Every streaming indicator by name, with default params. */
export const INDICATORS: Readonly<Record<string, IndicatorFactory>> = {
  SMA: def(
    'SMA',
    {
      description: 'Simple moving average',
      talib: 'SMA',
      defaults: { period: 20, source: 'close' },
      outputs: ['value'],
    },
    (p) => new SMA(p.period, src(p)),
  ),
  EMA: def(
    'EMA',
    {
      description: 'Exponential moving average (SMA-seeded)',
      talib: 'EMA',
      defaults: { period: 20, source: 'close' },
      outputs: ['value'],
    },
    (p) => new EMA(p.period, src(p)),
  ),
  WMA: def(
    'WMA',
    {
      description: 'Linearly weighted moving average',
      talib: 'WMA',
      defaults: { period: 20, source: 'close' },
      outputs: ['value'],
    },
    (p) => new WMA(p.period, src(p)),
  ),
  DEMA: def(
    'DEMA',
    {
      description: 'Double exponential moving average',
      talib: 'DEMA',
      defaults: { period: 20, source: 'close' },
      outputs: ['value'],
    },
    (p) => new DEMA(p.period, src(p)),
  ),
  TEMA: def(
    'TEMA',
    {
      description: 'Triple exponential moving average',
      talib: 'TEMA',
      defaults: { period: 20, source: 'close' },
      outputs: ['value'],
    },
    (p) => new TEMA(p.period, src(p)),
  ),
  HMA: def(
    'HMA',
    { description: 'Hull moving average', talib: null, defaults: { period: 20, source: 'close' }, outputs: ['value'] },
    (p) => new HMA(p.period, src(p)),
  ),
  KAMA: def(
    'KAMA',
    {
      description: 'Kaufman adaptive moving average',
      talib: 'KAMA',
      defaults: { period: 30, source: 'close' },
      outputs: ['value'],
    },
    (p) => new KAMA(p.period, src(p)),
  ),
  TRIX: def(
    'TRIX',
    {
      description: '1-bar ROC of a triple EMA, percent',
      talib: 'TRIX',
      defaults: { period: 30, source: 'close' },
      outputs: ['value'],
    },
    (p) => new TRIX(p.period, src(p)),
  ),
  VWMA: def(
    'VWMA',
    {
      description: 'Volume-weighted moving average',
      talib: null,
      defaults: { period: 20, source: 'close' },
      outputs: ['value'],
    },
    (p) => new VWMA(p.period, src(p)),
  ),
  VWAP: def(
    'VWAP',
    {
      description: "Volume-weighted average price, anchored at each UTC day or rolling over 'period' bars",
      talib: null,
      defaults: { anchor: 'day', period: 0 },
      outputs: ['value'],
    },
    (p) => {
      if (p.anchor !== 'day' && p.anchor !== 'rolling')
        throw new Error(`VWAP: anchor must be "day" or "rolling", got "${p.anchor}"`);
      return new VWAP(p.anchor as VWAPAnchor, p.period);
    },
  ),
  RSI: def(
    'RSI',
    {
      description: "Wilder's relative strength index",
      talib: 'RSI',
      defaults: { period: 14, source: 'close' },
      outputs: ['value'],
    },
    (p) => new RSI(p.period, src(p)),
  ),
  Stochastic: def(
    'Stochastic',
    {
      description: 'Slow stochastic %K/%D (SMA smoothing)',
      talib: 'STOCH',
      defaults: { kPeriod: 14, kSmooth: 3, dPeriod: 3 },
      outputs: ['k', 'd'],
    },
    (p) => new Stochastic(p.kPeriod, p.kSmooth, p.dPeriod),
  ),
  StochRSI: def(
    'StochRSI',
    {
      description: 'Fast stochastic of RSI',
      talib: 'STOCHRSI',
      defaults: { period: 14, kPeriod: 5, dPeriod: 3, source: 'close' },
      outputs: ['k', 'd'],
    },
    (p) => new StochRSI(p.period, p.kPeriod, p.dPeriod, src(p)),
  ),
  MACD: def(
    'MACD',
    {
      description: 'Moving average convergence/divergence',
      talib: 'MACD',
      defaults: { fast: 12, slow: 26, signal: 9, source: 'close' },
      outputs: ['macd', 'signal', 'histogram'],
    },
    (p) => new MACD(p.fast, p.slow, p.signal, src(p)),
  ),
  PPO: def(
    'PPO',
    {
      description: 'Percentage price oscillator (SMA)',
      talib: 'PPO',
      defaults: { fast: 12, slow: 26, source: 'close' },
      outputs: ['value'],
    },
    (p) => new PPO(p.fast, p.slow, src(p)),
  ),
  APO: def(
    'APO',
    {
      description: 'Absolute price oscillator (SMA)',
      talib: 'APO',
      defaults: { fast: 12, slow: 26, source: 'close' },
      outputs: ['value'],
    },
    (p) => new APO(p.fast, p.slow, src(p)),
  ),
  CCI: def(
    'CCI',
    { description: 'Commodity channel index', talib: 'CCI', defaults: { period: 20 }, outputs: ['value'] },
    (p) => new CCI(p.period),
  ),
  MFI: def(
    'MFI',
    { description: 'Money flow index', talib: 'MFI', defaults: { period: 14 }, outputs: ['value'] },
    (p) => new MFI(p.period),
  ),
  ROC: def(
    'ROC',
    {
      description: 'Rate of change, percent',
      talib: 'ROC',
      defaults: { period: 10, source: 'close' },
      outputs: ['value'],
    },
    (p) => new ROC(p.period, src(p)),
  ),
  Momentum: def(
    'Momentum',
    {
      description: 'Price difference over n bars',
      talib: 'MOM',
      defaults: { period: 10, source: 'close' },
      outputs: ['value'],
    },
    (p) => new Momentum(p.period, src(p)),
  ),
  CMO: def(
    'CMO',
    {
      description: 'Chande momentum oscillator (Wilder smoothing, as TA-Lib)',
      talib: 'CMO',
      defaults: { period: 14, source: 'close' },
      outputs: ['value'],
    },
    (p) => new CMO(p.period, src(p)),
  ),
  WilliamsR: def(
    'WilliamsR',
    { description: 'Williams %R', talib: 'WILLR', defaults: { period: 14 }, outputs: ['value'] },
    (p) => new WilliamsR(p.period),
  ),
  ULTOSC: def(
    'ULTOSC',
    {
      description: 'Ultimate oscillator',
      talib: 'ULTOSC',
      defaults: { period1: 7, period2: 14, period3: 28 },
      outputs: ['value'],
    },
    (p) => new ULTOSC(p.period1, p.period2, p.period3),
  ),
  BOP: def('BOP', { description: 'Balance of power', talib: 'BOP', defaults: {}, outputs: ['value'] }, () => new BOP()),
  LinRegSlope: def(
    'LinRegSlope',
    {
      description: 'Least-squares slope per bar',
      talib: 'LINEARREG_SLOPE',
      defaults: { period: 14, source: 'close' },
      outputs: ['value'],
    },
    (p) => new LinRegSlope(p.period, src(p)),
  ),
  ADX: def(
    'ADX',
    {
      description: 'Average directional index with +DI/-DI',
      talib: 'ADX',
      defaults: { period: 14 },
      outputs: ['adx', 'plusDI', 'minusDI'],
    },
    (p) => new ADX(p.period),
  ),
  Aroon: def(
    'Aroon',
    {
      description: 'Aroon up/down and oscillator',
      talib: 'AROON',
      defaults: { period: 14 },
      outputs: ['oscillator', 'up', 'down'],
    },
    (p) => new Aroon(p.period),
  ),
  SAR: def(
    'SAR',
    { description: 'Parabolic SAR', talib: 'SAR', defaults: { acceleration: 0.02, maximum: 0.2 }, outputs: ['value'] },
    (p) => new SAR(p.acceleration, p.maximum),
  ),
  SuperTrend: def(
    'SuperTrend',
    {
      description: 'SuperTrend (hl2 ± multiplier·ATR)',
      talib: null,
      defaults: { period: 10, multiplier: 3 },
      outputs: ['value', 'direction', 'upper', 'lower'],
    },
    (p) => new SuperTrend(p.period, p.multiplier),
  ),
  Ichimoku: def(
    'Ichimoku',
    {
      description: 'Ichimoku kinko hyo (no lookahead: senkou as computed now, cloud as computed displacement bars ago)',
      talib: null,
      defaults: { tenkan: 9, kijun: 26, senkou: 52, displacement: 26 },
      outputs: ['kijun', 'tenkan', 'senkouA', 'senkouB', 'cloudA', 'cloudB', 'chikou'],
    },
    (p) => new Ichimoku(p.tenkan, p.kijun, p.senkou, p.displacement),
  ),
  Bollinger: def(
    'Bollinger',
    {
      description: 'Bollinger bands (population σ)',
      talib: 'BBANDS',
      defaults: { period: 20, k: 2, source: 'close' },
      outputs: ['middle', 'upper', 'lower', 'stddev'],
    },
    (p) => new Bollinger(p.period, p.k, src(p)),
  ),
  Keltner: def(
    'Keltner',
    {
      description: 'Keltner channel (EMA ± multiplier·ATR)',
      talib: null,
      defaults: { period: 20, multiplier: 2, atrPeriod: 10 },
      outputs: ['middle', 'upper', 'lower'],
    },
    (p) => new Keltner(p.period, p.multiplier, p.atrPeriod),
  ),
  Donchian: def(
    'Donchian',
    { description: 'Donchian channel', talib: null, defaults: { period: 20 }, outputs: ['middle', 'upper', 'lower'] },
    (p) => new Donchian(p.period),
  ),
  ATR: def(
    'ATR',
    { description: 'Average true range (Wilder)', talib: 'ATR', defaults: { period: 14 }, outputs: ['value'] },
    (p) => new ATR(p.period),
  ),
  NATR: def(
    'NATR',
    { description: 'ATR as percent of close', talib: 'NATR', defaults: { period: 14 }, outputs: ['value'] },
    (p) => new NATR(p.period),
  ),
  TrueRange: def(
    'TrueRange',
    { description: 'True range', talib: 'TRANGE', defaults: {}, outputs: ['value'] },
    () => new TrueRange(),
  ),
  StdDev: def(
    'StdDev',
    {
      description: 'Population standard deviation',
      talib: 'STDDEV',
      defaults: { period: 20, nbDev: 1, source: 'close' },
      outputs: ['value'],
    },
    (p) => new StdDev(p.period, p.nbDev, src(p)),
  ),
  ZScore: def(
    'ZScore',
    {
      description: 'Z-score against the rolling mean and population σ',
      talib: null,
      defaults: { period: 20, source: 'close' },
      outputs: ['value'],
    },
    (p) => new ZScore(p.period, src(p)),
  ),
  OBV: def(
    'OBV',
    { description: 'On-balance volume', talib: 'OBV', defaults: {}, outputs: ['value'] },
    () => new OBV(),
  ),
  AD: def(
    'AD',
    { description: 'Chaikin accumulation/distribution line', talib: 'AD', defaults: {}, outputs: ['value'] },
    () => new AD(),
  ),
  ADOSC: def(
    'ADOSC',
    { description: 'Chaikin A/D oscillator', talib: 'ADOSC', defaults: { fast: 3, slow: 10 }, outputs: ['value'] },
    (p) => new ADOSC(p.fast, p.slow),
  ),
  CMF: def(
    'CMF',
    { description: 'Chaikin money flow', talib: null, defaults: { period: 20 }, outputs: ['value'] },
    (p) => new CMF(p.period),
  ),
};
