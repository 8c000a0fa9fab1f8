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
import { readFundingRateFile } from '@keel/data/csv';
import { readMarkFile } from '@keel/data/feeds';
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
