import { type BarSeries, emptyBar, SeriesCursor } from '../model/bar.ts';
import { ExactRollingSum } from '../util/exact-sum.ts';
import { requirePeriod } from './base.ts';
import { Bollinger } from './bollinger.ts';
import { EmaCore, rateOfChange } from './cores.ts';
import { MACD } from './momentum.ts';
import { RSI } from './rsi.ts';
import { ADX } from './trend.ts';
import { ATR, ZScore } from './volatility.ts';
import { MFI, OBV, VWAP } from './volume.ts';

/**
 * Column-at-a-time forms of the streaming indicators, for batch work over whole series (features,
 * charts). Each function drives the streaming indicator itself (or the kernel it is built on) row
 * by row, so a column equals what the indicator gives bar by bar, bit for bit: there is one
 * definition of each indicator, and the TA-Lib and backtrader oracle tests check that one.
 * `out[i]` uses rows <= i only.
 *
 * Each function names one indicator class, so its update call stays monomorphic and is inlined;
 * values reach a scalar indicator through one reused Bar, so no double crosses a call.
 *
 * NaN inputs (derived columns have NaN warm-ups):
 * - recursive indicators (EMA, RSI, MACD) skip a NaN row: it is not fed and its output is NaN;
 * - window indicators (SMA, window sum, z-score, Bollinger, ROC, rolling max and min) give NaN
 *   while a NaN row is inside the window and recover after it. Leading NaN rows are not fed; a
 *   later NaN row feeds 0, which leaves the window again with it, so the kernel's rows stay
 *   aligned with the column's.
 * Bar-series functions (ATR, ADX, MFI, OBV, VWAP, Donchian) expect validated bars.
 */

function column(n: number, out: Float64Array | undefined): Float64Array {
  return out ?? new Float64Array(n);
}

/** Index of the first non-NaN value (x.length when there is none); rows before it are set to NaN in `out`. */
function leadingNaN(x: Float64Array, outs: readonly Float64Array[]): number {
  let i = 0;
  while (i < x.length && Number.isNaN(x[i] as number)) i++;
  for (const o of outs) o.fill(Number.NaN, 0, i);
  return i;
}

/**
 * EMA(period), k = 2 / (period + 1), seeded with the mean of the first `period` inputs: the EMA
 * indicator's own kernel (EmaCore), whose value the EMA publishes as is.
 */
export function emaColumn(x: Float64Array, period: number, out?: Float64Array): Float64Array {
  const o = column(x.length, out);
  requirePeriod('EMA', period);
  const ema = new EmaCore(period);
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    if (Number.isNaN(v)) {
      o[i] = Number.NaN;
      continue;
    }
    ema.push(v);
    o[i] = ema.value;
  }
  return o;
}

/** Wilder's RSI(period) (see RSI). */
export function rsiColumn(x: Float64Array, period: number, out?: Float64Array): Float64Array {
  const o = column(x.length, out);
  const rsi = new RSI(period);
  const bar = emptyBar();
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    if (Number.isNaN(v)) {
      o[i] = Number.NaN;
      continue;
    }
    bar.close = v;
    rsi.update(bar);
    o[i] = rsi.value;
  }
  return o;
}

/** MACD(fast, slow, signal) with TA-Lib's seeding (see MACD): the MACD line and the histogram. */
export function macdColumns(
  x: Float64Array,
  fast: number,
  slow: number,
  signal: number,
  macdOut?: Float64Array,
  histogramOut?: Float64Array,
): { macd: Float64Array; histogram: Float64Array } {
  const m = column(x.length, macdOut);
  const h = column(x.length, histogramOut);
  const macd = new MACD(fast, slow, signal);
  const bar = emptyBar();
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    if (Number.isNaN(v)) {
      m[i] = Number.NaN;
      h[i] = Number.NaN;
      continue;
    }
    bar.close = v;
    macd.update(bar);
    m[i] = macd.macd;
    h[i] = macd.histogram;
  }
  return { macd: m, histogram: h };
}

/** Mean of the last `period` rows over the exact window sum: the SMA (see SMA, SmaCore). */
export function smaColumn(x: Float64Array, period: number, out?: Float64Array): Float64Array {
  requirePeriod('SMA', period);
  return exactWindow(x, period, column(x.length, out), true);
}

/** Exact (correctly rounded) sum of the last `period` rows: the SMA's own window sum (SmaCore.sum). */
export function windowSumColumn(x: Float64Array, period: number, out?: Float64Array): Float64Array {
  requirePeriod('window sum', period);
  return exactWindow(x, period, column(x.length, out), false);
}

/**
 * SmaCore's arithmetic over a column: the same exact sum, entering and leaving values replaced in
 * one step, mean = sum / period. The value leaving the window is read from the column itself, so
 * SmaCore's ring of past inputs is not needed (the results are the same bits; columnar.test.ts).
 */
function exactWindow(x: Float64Array, period: number, o: Float64Array, mean: boolean): Float64Array {
  const sum = new ExactRollingSum();
  const from = leadingNaN(x, [o]);
  let run = 0;
  for (let i = from; i < x.length; i++) {
    const v = x[i] as number;
    const ok = !Number.isNaN(v);
    run = ok ? run + 1 : 0;
    if (i - from >= period) {
      const old = x[i - period] as number;
      sum.replace(ok ? v : 0, Number.isNaN(old) ? 0 : old);
    } else sum.add(ok ? v : 0);
    o[i] = run < period ? Number.NaN : mean ? sum.value / period : sum.value;
  }
  return o;
}

/** (x - mean) / population sigma over the last `period` rows, 0 on a flat window (see ZScore). */
export function zscoreColumn(x: Float64Array, period: number, out?: Float64Array): Float64Array {
  const o = column(x.length, out);
  const z = new ZScore(period);
  const bar = emptyBar();
  let run = 0;
  for (let i = leadingNaN(x, [o]); i < x.length; i++) {
    const v = x[i] as number;
    const ok = !Number.isNaN(v);
    run = ok ? run + 1 : 0;
    bar.close = ok ? v : 0;
    z.update(bar);
    o[i] = run >= period ? z.value : Number.NaN;
  }
  return o;
}

/** Bollinger bands (population sigma, exact sums; see Bollinger): the upper and lower band. */
export function bollingerColumns(
  x: Float64Array,
  period: number,
  k: number,
  upperOut?: Float64Array,
  lowerOut?: Float64Array,
): { upper: Float64Array; lower: Float64Array } {
  const up = column(x.length, upperOut);
  const lo = column(x.length, lowerOut);
  const bb = new Bollinger(period, k);
  const bar = emptyBar();
  let run = 0;
  for (let i = leadingNaN(x, [up, lo]); i < x.length; i++) {
    const v = x[i] as number;
    const ok = !Number.isNaN(v);
    run = ok ? run + 1 : 0;
    bar.close = ok ? v : 0;
    bb.update(bar);
    const clean = run >= period;
    up[i] = clean ? bb.upper : Number.NaN;
    lo[i] = clean ? bb.lower : Number.NaN;
  }
  return { upper: up, lower: lo };
}

/** Rate of change over `period` rows, in percent; 0 when the old value is 0 (see ROC). */
export function rocColumn(x: Float64Array, period: number, out?: Float64Array): Float64Array {
  const o = column(x.length, out);
  let run = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number;
    run = Number.isNaN(v) ? 0 : run + 1;
    o[i] = run > period ? rateOfChange(v, x[i - period] as number) : Number.NaN;
  }
  return o;
}

/**
 * Highest (`which` = 'max') or lowest value of the last `period` rows. The streaming indicators
 * keep a ring-buffered two-sided deque (RollingRange) because they never see the column; here the
 * column is at hand, so the deque holds row indices into it, one side only. A window's extreme is
 * exact, so the values are RollingRange's bit for bit (held equal in columnar.test.ts), at a
 * fraction of the cost.
 */
export function rollingExtremeColumn(
  x: Float64Array,
  period: number,
  which: 'max' | 'min',
  out?: Float64Array,
): Float64Array {
  const o = column(x.length, out);
  requirePeriod('rolling extreme', period);
  const sign = which === 'max' ? 1 : -1;
  const dq = new Int32Array(period + 1);
  let head = 0;
  let size = 0;
  let run = 0;
  for (let i = leadingNaN(x, [o]); i < x.length; i++) {
    const v = x[i] as number;
    if (Number.isNaN(v)) {
      // A NaN row empties the window: nothing before it can be the extreme of a clean window.
      run = 0;
      size = 0;
      o[i] = Number.NaN;
      continue;
    }
    run++;
    const sv = v * sign;
    if (size > 0 && (dq[head] as number) <= i - period) {
      head = head === period ? 0 : head + 1;
      size--;
    }
    while (size > 0) {
      let t = head + size - 1;
      if (t > period) t -= period + 1;
      if ((x[dq[t] as number] as number) * sign > sv) break;
      size--;
    }
    let t = head + size;
    if (t > period) t -= period + 1;
    dq[t] = i;
    size++;
    o[i] = run >= period ? (x[dq[head] as number] as number) : Number.NaN;
  }
  return o;
}

/** Wilder's ATR(period) of a bar series (see ATR). */
export function atrColumn(s: BarSeries, period: number, out?: Float64Array): Float64Array {
  const o = column(s.length, out);
  const atr = new ATR(period);
  const bar = new SeriesCursor(s);
  for (let i = 0; i < s.length; i++) {
    bar.i = i;
    atr.update(bar);
    o[i] = atr.value;
  }
  return o;
}

/** Wilder's ADX(period) of a bar series (see ADX). */
export function adxColumn(s: BarSeries, period: number, out?: Float64Array): Float64Array {
  const o = column(s.length, out);
  const adx = new ADX(period);
  const bar = new SeriesCursor(s);
  for (let i = 0; i < s.length; i++) {
    bar.i = i;
    adx.update(bar);
    o[i] = adx.value;
  }
  return o;
}

/** Money flow index over `period` bars with TA-Lib's arithmetic (see MFI). */
export function mfiColumn(s: BarSeries, period: number, out?: Float64Array): Float64Array {
  const o = column(s.length, out);
  const mfi = new MFI(period);
  const bar = new SeriesCursor(s);
  for (let i = 0; i < s.length; i++) {
    bar.i = i;
    mfi.update(bar);
    o[i] = mfi.value;
  }
  return o;
}

/** On-balance volume from the first bar's volume (see OBV). */
export function obvColumn(s: BarSeries, out?: Float64Array): Float64Array {
  const o = column(s.length, out);
  const obv = new OBV();
  const bar = new SeriesCursor(s);
  for (let i = 0; i < s.length; i++) {
    bar.i = i;
    obv.update(bar);
    o[i] = obv.value;
  }
  return o;
}

/** VWAP of the typical price over the last `period` bars (see VWAP, anchor 'rolling'). */
export function rollingVwapColumn(s: BarSeries, period: number, out?: Float64Array): Float64Array {
  const o = column(s.length, out);
  const vwap = new VWAP('rolling', period);
  const bar = new SeriesCursor(s);
  for (let i = 0; i < s.length; i++) {
    bar.i = i;
    vwap.update(bar);
    o[i] = vwap.value;
  }
  return o;
}

/**
 * Donchian channel over `period` bars: highest high and lowest low (see Donchian), each a rolling
 * extreme of its column.
 */
export function donchianColumns(
  s: BarSeries,
  period: number,
  upperOut?: Float64Array,
  lowerOut?: Float64Array,
): { upper: Float64Array; lower: Float64Array } {
  requirePeriod('Donchian', period);
  return {
    upper: rollingExtremeColumn(s.high, period, 'max', upperOut),
    lower: rollingExtremeColumn(s.low, period, 'min', lowerOut),
  };
}
