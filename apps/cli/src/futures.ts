import path from 'node:path';
import {
  type FuturesMarketSettings,
  futuresFromFlags,
  type Timeframe,
  timeframeEnd,
  timeframeMs,
  USDM_DEFAULT_FEES,
} from '@keel/core';
import { readFundingRateFile } from '@keel/data/csv';
import type { LoadedFeed } from '@keel/data/feeds';
import { UsageError } from './errors.ts';

/** What `--market futures` makes of a backtest's feeds: each market as a perpetual, with its settings. */
export interface FuturesRun {
  /** Each feed's perpetual symbol, in feed order. */
  readonly symbols: readonly string[];
  readonly settings: (symbol: string) => FuturesMarketSettings;
  readonly takerFee: number;
  readonly makerFee: number;
}

/** `keel backtest`'s futures flags (core's FUTURES_FLAGS) over its feeds, or undefined for spot. */
export function futuresRun(
  values: Readonly<Record<string, unknown>>,
  feeds: readonly Pick<LoadedFeed, 'symbol' | 'series' | 'timeframe'>[],
): FuturesRun | undefined {
  if (values.funding !== undefined && feeds.length > 1)
    throw new UsageError(
      "--funding reads one market's funding file: with several markets, run them one at a time or use --funding-rate",
      'backtest',
    );
  const bySymbol = new Map<string, FuturesMarketSettings>();
  const symbols: string[] = [];
  for (const f of feeds) {
    const s = f.series;
    const first = s.length > 0 ? (s.time[0] as number) : 0;
    const lastOpen = s.length > 0 ? (s.time[s.length - 1] as number) : 0;
    const tf: Timeframe = f.timeframe;
    const to = tf === '1M' ? timeframeEnd('1M', lastOpen) : lastOpen + timeframeMs(tf);
    const r = futuresFromFlags(values, f.symbol, { from: first, to }, (file, perp) => ({
      series: readFundingRateFile(file, { symbol: perp }).series,
      source: path.basename(file),
    }));
    if (!r.ok) throw new UsageError(r.message, 'backtest');
    if (r.futures === undefined) return undefined;
    symbols.push(r.futures.symbol);
    bySymbol.set(r.futures.symbol, r.futures.settings);
  }
  return {
    symbols,
    settings: (symbol) => {
      const s = bySymbol.get(symbol);
      if (s === undefined) throw new Error(`no futures settings for ${symbol}`);
      return s;
    },
    takerFee: USDM_DEFAULT_FEES.taker,
    makerFee: USDM_DEFAULT_FEES.maker,
  };
}
