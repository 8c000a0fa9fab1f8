import type { BarSeries, Timeframe } from '@keel/core';
import { TIMEFRAMES, timeframeEnd, timeframeMs, timeframeStart } from '@keel/core';
import { allocSeries, type FullSeries, toFullSeries } from './schema.ts';

/** Every timeframe above 1m: what 1m bars can be resampled to. */
export const RESAMPLE_TARGETS: readonly Timeframe[] = TIMEFRAMES.slice(TIMEFRAMES.indexOf('3m'));

export interface Resampled {
  readonly series: FullSeries;
  /**
   * 1 where the bar is partial: its period is not fully covered by the input span (the input starts
   * after the period opens or ends before it closes). Internal missing source bars do not make a bar
   * partial (the exchange's own candle has the same hole); they are counted in `sourceBars`.
   */
  readonly partial: Uint8Array;
  /** Number of source bars aggregated into each output bar. */
  readonly sourceBars: Float64Array;
}

/**
 * Aggregates bars to a coarser timeframe with UTC alignment (weeks open Monday 00:00, months on the
 * calendar, 3d on Binance's epoch grid). O = first open, H = max, L = min, C = last close, volumes,
 * quote volume, trades and taker-buy volume summed (compensated summation). Input must be sorted.
 */
export function resampleBars(input: BarSeries, from: Timeframe, to: Timeframe): Resampled {
  const s = toFullSeries(input);
  const n = s.length;
  if (from !== to && !(timeframeMs(to) > timeframeMs(from)))
    throw new Error(`Cannot resample ${from} to the finer timeframe ${to}`);
  if (to !== '1M' && to !== '1w' && timeframeMs(to) % timeframeMs(from) !== 0)
    throw new Error(`${to} is not a whole multiple of ${from}`);
  // Upper bound on output bars: one per input bar.
  const out = allocSeries(n);
  const partial = new Uint8Array(n);
  const counts = new Float64Array(n);
  let k = -1;
  let bucketEnd = Number.NEGATIVE_INFINITY;
  let v = 0;
  let vc = 0;
  let q = 0;
  let qc = 0;
  let tr = 0;
  let tb = 0;
  let tbc = 0;
  const flush = (): void => {
    if (k < 0) return;
    out.volume[k] = v;
    out.quoteVolume[k] = q;
    out.trades[k] = tr;
    out.takerBuyVolume[k] = tb;
  };
  for (let i = 0; i < n; i++) {
    const t = s.time[i] as number;
    if (t >= bucketEnd) {
      flush();
      k++;
      const start = timeframeStart(to, t);
      bucketEnd = timeframeEnd(to, start);
      out.time[k] = start;
      out.open[k] = s.open[i] as number;
      out.high[k] = s.high[i] as number;
      out.low[k] = s.low[i] as number;
      v = 0;
      vc = 0;
      q = 0;
      qc = 0;
      tr = 0;
      tb = 0;
      tbc = 0;
      if (k === 0 && start < t) partial[k] = 1;
    }
    const h = s.high[i] as number;
    const l = s.low[i] as number;
    if (h > (out.high[k] as number)) out.high[k] = h;
    if (l < (out.low[k] as number)) out.low[k] = l;
    out.close[k] = s.close[i] as number;
    // Kahan-Babuska sums: volumes of a month of 1m bars stay within 1e-15 relative.
    let x = (s.volume[i] as number) - vc;
    let y = v + x;
    vc = y - v - x;
    v = y;
    x = (s.quoteVolume[i] as number) - qc;
    y = q + x;
    qc = y - q - x;
    q = y;
    tr += s.trades[i] as number;
    x = (s.takerBuyVolume[i] as number) - tbc;
    y = tb + x;
    tbc = y - tb - x;
    tb = y;
    counts[k] = (counts[k] as number) + 1;
  }
  flush();
  const m = k + 1;
  if (m > 0 && n > 0 && timeframeEnd(from, s.time[n - 1] as number) < timeframeEnd(to, out.time[m - 1] as number))
    partial[m - 1] = 1;
  const trim = <T extends Float64Array | Uint8Array>(a: T): T => a.slice(0, m) as T;
  return {
    series: {
      length: m,
      time: trim(out.time),
      open: trim(out.open),
      high: trim(out.high),
      low: trim(out.low),
      close: trim(out.close),
      volume: trim(out.volume),
      quoteVolume: trim(out.quoteVolume),
      trades: trim(out.trades),
      takerBuyVolume: trim(out.takerBuyVolume),
    },
    partial: trim(partial),
    sourceBars: trim(counts),
  };
}
