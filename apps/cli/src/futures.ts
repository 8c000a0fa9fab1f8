import path from 'node:path';
import {
  type BarSeries,
  type FuturesFlags,
  futuresFromFlags,
  type Timeframe,
  timeframeEnd,
  timeframeMs,
  USDM_DEFAULT_FEES,
} from '@keel/core';
import { readBarsFile, readFundingRateFile } from '@keel/data/csv';
import { UsageError } from './errors.ts';

/** `keel backtest`'s futures flags (core's FUTURES_FLAGS) as the perpetual's settings, or undefined for spot. */
export function futuresRun(
  values: Readonly<Record<string, unknown>>,
  symbol: string,
  series: BarSeries,
  timeframe: Timeframe,
): (FuturesFlags & { takerFee: number; makerFee: number }) | undefined {
  const first = series.length > 0 ? (series.time[0] as number) : 0;
  const lastOpen = series.length > 0 ? (series.time[series.length - 1] as number) : 0;
  const to = timeframe === '1M' ? timeframeEnd('1M', lastOpen) : lastOpen + timeframeMs(timeframe);
  const r = futuresFromFlags(
    values,
    symbol,
    { from: first, to },
    {
      funding: (file, perp) => ({
        series: readFundingRateFile(file, { symbol: perp }).series,
        source: path.basename(file),
      }),
      mark: (file) => ({ series: readMarkFile(file, timeframe), source: path.basename(file) }),
    },
  );
  if (!r.ok) throw new UsageError(r.message, 'backtest');
  if (r.futures === undefined) return undefined;
  return { ...r.futures, takerFee: USDM_DEFAULT_FEES.taker, makerFee: USDM_DEFAULT_FEES.maker };
}

/**
 * Mark-price bars (Binance's markPriceKlines archive: the 12 columns of its klines) on the run's
 * timeframe: a row that cannot be read, or bars of another timeframe (a 1m mark bar is not an
 * hour's mark), is an error naming the file.
 */
export function readMarkFile(file: string, timeframe: Timeframe): BarSeries {
  const parsed = readBarsFile(file);
  const bad = parsed.quarantined[0];
  if (bad !== undefined)
    throw new UsageError(`--mark ${file}: line ${bad.line}: ${bad.field}: ${bad.message}`, 'backtest');
  const tf = parsed.time.timeframe;
  if (tf !== null && tf !== timeframe)
    throw new UsageError(
      `--mark ${file} holds ${tf} bars but the run is on ${timeframe} bars: give the mark bars of the traded timeframe`,
      'backtest',
    );
  return parsed.series;
}
