import {
  CsvFormatError,
  type ParsedCsv,
  parseBarsCsv as parseCandleCsv,
  type ReadCsvOptions,
  readBarsFile as readCandleFile,
} from '@keel/candles';
import { type BarSeries, syntheticBars as coreSyntheticBars, TIMEFRAMES, timeframeMs } from '@keel/core';
import type { SimBar } from './types.ts';

/**
 * Candle files are read by @keel/candles, the same reader as the data pipeline's, not by a reader
 * of the simulator's own: a second reader would accept a different set of layouts, epochs and zones
 * and drift from the first (one did: it read neither microsecond epochs, a BOM, zoned ISO times nor
 * close-time columns). @keel/candles depends on Node's built-ins and @keel/core only, so the
 * simulator does not pull in DuckDB or ccxt. The format table in test-support/candle-formats.ts is
 * run against it from both packages. The simulator is stricter than an import: a row the reader
 * quarantines is an error here (a replay with a silently missing bar would be a different market).
 */

/** Thrown when a candle file cannot be read; the message names the file and the line. */
export class BarFileError extends Error {
  override name = 'BarFileError';
}

/** Reads a CSV or CSV.GZ candle file (every layout @keel/candles reads) into bars. */
export function readBarsFile(file: string, opts: ReadCsvOptions = {}): SimBar[] {
  return simBars(() => readCandleFile(file, opts), file);
}

export function parseBarsCsv(text: string, name = 'csv', opts: ReadCsvOptions = {}): SimBar[] {
  return simBars(() => parseCandleCsv(text, name, opts), name);
}

function simBars(read: () => ParsedCsv, name: string): SimBar[] {
  let parsed: ParsedCsv;
  try {
    parsed = read();
  } catch (e) {
    if (!(e instanceof CsvFormatError)) throw e;
    const lacks = e.missingColumns.length > 0 ? ` (the header lacks column(s) ${e.missingColumns.join(', ')})` : '';
    throw new BarFileError(`cannot read candle file ${e.message}${lacks}`);
  }
  const bad = parsed.quarantined[0];
  if (bad !== undefined) {
    const more = parsed.quarantined.length > 1 ? ` (and ${parsed.quarantined.length - 1} more bad rows)` : '';
    throw new BarFileError(`${name}:${bad.line}: ${bad.rule}: ${bad.message}: "${bad.text}"${more}`);
  }
  const bars = toSimBars(parsed.series);
  checkBars(bars, name);
  return bars;
}

function toSimBars(s: BarSeries): SimBar[] {
  return Array.from({ length: s.length }, (_, i) => ({
    time: s.time[i] as number,
    open: s.open[i] as number,
    high: s.high[i] as number,
    low: s.low[i] as number,
    close: s.close[i] as number,
    volume: s.volume[i] as number,
  }));
}

/** Bars must be strictly increasing in time with high >= max(open, close) and low <= min(open, close). */
export function checkBars(bars: readonly SimBar[], name: string): void {
  for (let i = 0; i < bars.length; i++) {
    const b = bars[i] as SimBar;
    if (i > 0 && b.time <= (bars[i - 1] as SimBar).time) {
      throw new BarFileError(`${name}: bar ${i} at ${new Date(b.time).toISOString()} is not after the one before`);
    }
    if (b.high < Math.max(b.open, b.close) || b.low > Math.min(b.open, b.close) || b.low <= 0) {
      throw new BarFileError(`${name}: bar ${i} at ${new Date(b.time).toISOString()} has inconsistent OHLC`);
    }
  }
}

/** The bar interval: the smallest gap between consecutive bars (gaps are missing bars). */
export function inferIntervalMs(bars: readonly SimBar[]): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 1; i < bars.length; i++) best = Math.min(best, (bars[i] as SimBar).time - (bars[i - 1] as SimBar).time);
  return Number.isFinite(best) ? best : 60_000;
}

/** Binance kline intervals (spot), in ms: core's timeframes. Months are not supported by the sim. */
export const INTERVAL_MS: Readonly<Record<string, number>> = Object.fromEntries(
  TIMEFRAMES.filter((tf) => tf !== '1M').map((tf) => [tf, timeframeMs(tf)]),
);

/** Open time of the interval bucket holding t. Weeks start on Monday as on Binance. */
export function bucketStart(t: number, intervalMs: number): number {
  const offset = intervalMs === 604_800_000 ? 345_600_000 : 0; // 1970-01-01 was a Thursday
  return Math.floor((t - offset) / intervalMs) * intervalMs + offset;
}

/**
 * Seeded synthetic candles for a market given no data: core's synthetic market (the one the CLI
 * demo and the tests use) from a price of 100; the same seed always gives the same bars.
 */
export function syntheticBars(opts: {
  start: number;
  count?: number;
  price?: number;
  seed?: number;
  intervalMs?: number;
}): SimBar[] {
  return toSimBars(
    coreSyntheticBars(opts.count ?? 1440, {
      start: opts.start,
      seed: opts.seed ?? 1,
      price: opts.price ?? 100,
      intervalMs: opts.intervalMs ?? 60_000,
    }),
  );
}
