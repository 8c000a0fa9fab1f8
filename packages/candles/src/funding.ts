/**
 * Funding-rate series from files and from ccxt, into core's `FundingRateSeries`:
 *
 * - Binance Data Vision's USD-M archive, `calc_time,funding_interval_hours,last_funding_rate`
 *   (`<SYMBOL>-fundingRate-<YYYY-MM>.csv`, plain or .gz);
 * - a CSV with a time column (`fundingTime`, `timestamp`, `time`, `datetime`, ...) and a rate
 *   column (`fundingRate`, `rate`, `last_funding_rate`), e.g. ccxt's rows written out;
 * - JSON: an array of ccxt `fetchFundingRateHistory` rows (`{ symbol, fundingRate, timestamp }`)
 *   or of Binance `/fapi/v1/fundingRate` rows (`{ symbol, fundingRate, fundingTime }`).
 *
 * A funding file is small and every row is a payment: a row that cannot be read is an error that
 * names the file, line and field (never dropped), and so are duplicate or out-of-order times.
 *
 * It lives beside the candle reader (and is re-exported by @keel/data) so that the exchange
 * simulator, which applies funding series, reads them without pulling in DuckDB.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { type FundingRateSeries, FundingSeriesError, fundingRateSeries } from '@keel/core';
import { CsvFormatError } from './csv.ts';
import { parseTimestamp } from './timestamp.ts';

/** One row of ccxt's `fetchFundingRateHistory` (the fields the series needs). */
export interface CcxtFundingRateRow {
  readonly symbol?: string | undefined;
  readonly fundingRate: number | string | undefined;
  readonly timestamp: number | string | undefined;
}

export type FundingLayout = 'binance-archive' | 'csv-header' | 'ccxt-json' | 'binance-json';

export interface ParsedFundingRates {
  readonly series: FundingRateSeries;
  readonly layout: FundingLayout;
  readonly file: string;
}

const HOUR_MS = 3_600_000;
/** Binance's schedule when a source gives no interval and has a single row. */
const DEFAULT_INTERVAL_HOURS = 8;

const TIME_COLUMNS = ['calc_time', 'fundingtime', 'funding_time', 'timestamp', 'time', 'datetime', 'date'];
const RATE_COLUMNS = ['last_funding_rate', 'fundingrate', 'funding_rate', 'rate'];
const INTERVAL_COLUMNS = ['funding_interval_hours', 'fundingintervalhours', 'interval_hours'];

/** Reads a funding-rate file (.csv, .csv.gz or .json), detecting its layout. */
export function readFundingRateFile(file: string, opts: { symbol?: string } = {}): ParsedFundingRates {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new CsvFormatError(file, `cannot read the funding file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch {
      throw new CsvFormatError(file, 'looks gzip-compressed but could not be decompressed (truncated or corrupt .gz)');
    }
  }
  let text = buf.toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const first = text.trimStart()[0];
  if (first === '[' || first === '{') return parseFundingRateJson(text, file, opts);
  return parseFundingRateCsv(text, file, opts);
}

/** Parses funding-rate CSV text (Binance's archive layout or a header naming time and rate). */
export function parseFundingRateCsv(text: string, file = '<csv>', opts: { symbol?: string } = {}): ParsedFundingRates {
  const lines = text.split('\n');
  let headerLine = -1;
  for (let i = 0; i < lines.length; i++) {
    if ((lines[i] ?? '').trim() !== '') {
      headerLine = i;
      break;
    }
  }
  if (headerLine < 0) throw new CsvFormatError(file, 'the funding file is empty: no header and no rows');
  const header = splitCells(lines[headerLine] ?? '').map((c) => c.toLowerCase());
  const timeCol = header.findIndex((c) => TIME_COLUMNS.includes(c));
  const rateCol = header.findIndex((c) => RATE_COLUMNS.includes(c));
  const intervalCol = header.findIndex((c) => INTERVAL_COLUMNS.includes(c));
  if (timeCol < 0 || rateCol < 0)
    throw new CsvFormatError(
      file,
      `line ${headerLine + 1}: header "${lines[headerLine]?.trim()}" needs a time column (${TIME_COLUMNS.join(', ')}) and a rate column (${RATE_COLUMNS.join(', ')})`,
    );
  const layout: FundingLayout =
    header[0] === 'calc_time' && header[1] === 'funding_interval_hours' && header[2] === 'last_funding_rate'
      ? 'binance-archive'
      : 'csv-header';
  const times: number[] = [];
  const rates: number[] = [];
  const intervals: number[] = [];
  for (let i = headerLine + 1; i < lines.length; i++) {
    const raw = (lines[i] ?? '').replace(/\r$/, '');
    if (raw.trim() === '') continue;
    const cells = splitCells(raw);
    const where = `line ${i + 1}`;
    const timeText = cells[timeCol];
    const rateText = cells[rateCol];
    if (timeText === undefined || rateText === undefined)
      throw new CsvFormatError(file, `${where}: expected ${header.length} columns, found ${cells.length}: "${raw}"`);
    const t = parseTimestamp(timeText);
    if (!Number.isFinite(t)) throw new CsvFormatError(file, `${where}: cannot read funding time "${timeText}"`);
    const r = parseRate(rateText);
    if (!Number.isFinite(r)) throw new CsvFormatError(file, `${where}: funding rate "${rateText}" is not a number`);
    times.push(t);
    rates.push(r);
    if (intervalCol >= 0) {
      const h = Number(cells[intervalCol]);
      if (!(h > 0))
        throw new CsvFormatError(file, `${where}: funding interval "${cells[intervalCol]}" h is not a positive number`);
      intervals.push(h);
    }
  }
  return {
    series: build(file, opts.symbol, times, rates, intervalCol >= 0 ? intervals : inferIntervals(times)),
    layout,
    file,
  };
}

/** Parses a JSON array of ccxt `fetchFundingRateHistory` rows or of Binance `/fapi/v1/fundingRate` rows. */
export function parseFundingRateJson(
  text: string,
  file = '<json>',
  opts: { symbol?: string } = {},
): ParsedFundingRates {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new CsvFormatError(file, `is not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(data))
    throw new CsvFormatError(file, 'expected a JSON array of funding rows ({ fundingRate, timestamp | fundingTime })');
  const binance = data.length > 0 && isRecord(data[0]) && 'fundingTime' in data[0] && !('timestamp' in data[0]);
  const rows: CcxtFundingRateRow[] = data.map((row: unknown, i) => {
    if (!isRecord(row)) throw new CsvFormatError(file, `row ${i}: expected an object, got ${JSON.stringify(row)}`);
    return {
      symbol: typeof row.symbol === 'string' ? row.symbol : undefined,
      fundingRate: row.fundingRate as number | string | undefined,
      timestamp: (binance ? row.fundingTime : row.timestamp) as number | string | undefined,
    };
  });
  const series = fundingSeriesFromCcxt(rows, { ...opts, source: file });
  return { series, layout: binance ? 'binance-json' : 'ccxt-json', file };
}

/**
 * ccxt's `fetchFundingRateHistory` result into a series. The interval is not in ccxt's rows: it is
 * taken from the gap to the neighbouring funding, in whole hours (8 for a single row). Rows of
 * more than one symbol are refused: a series is one contract's.
 */
export function fundingSeriesFromCcxt(
  rows: readonly CcxtFundingRateRow[],
  opts: { symbol?: string; source?: string } = {},
): FundingRateSeries {
  const source = opts.source ?? 'ccxt fetchFundingRateHistory';
  const times: number[] = [];
  const rates: number[] = [];
  let symbol = opts.symbol;
  rows.forEach((row, i) => {
    if (row.symbol !== undefined) {
      if (symbol === undefined) symbol = row.symbol;
      else if (opts.symbol === undefined && row.symbol !== symbol)
        throw new CsvFormatError(
          source,
          `row ${i}: symbol ${row.symbol} differs from ${symbol}; a series is one contract's`,
        );
    }
    const t = typeof row.timestamp === 'string' ? parseTimestamp(row.timestamp) : Number(row.timestamp);
    if (row.timestamp === undefined || !Number.isFinite(t))
      throw new CsvFormatError(source, `row ${i}: timestamp ${JSON.stringify(row.timestamp)} is not a time`);
    const r = typeof row.fundingRate === 'string' ? parseRate(row.fundingRate) : Number(row.fundingRate);
    if (row.fundingRate === undefined || row.fundingRate === null || !Number.isFinite(r))
      throw new CsvFormatError(source, `row ${i}: fundingRate ${JSON.stringify(row.fundingRate)} is not a number`);
    times.push(t);
    rates.push(r);
  });
  return build(source, symbol, times, rates, inferIntervals(times));
}

function build(
  file: string,
  symbol: string | undefined,
  time: number[],
  rate: number[],
  intervalHours: number[],
): FundingRateSeries {
  try {
    return fundingRateSeries({ symbol, time, rate, intervalHours });
  } catch (e) {
    if (e instanceof FundingSeriesError) throw new CsvFormatError(file, e.message);
    throw e;
  }
}

/** Whole hours to the neighbouring funding (the next one; the last row takes the previous gap). */
function inferIntervals(times: readonly number[]): number[] {
  return times.map((t, i) => {
    const next = times[i + 1];
    const prev = times[i - 1];
    const gap = next !== undefined ? next - t : prev !== undefined ? t - prev : Number.NaN;
    const hours = Math.round(gap / HOUR_MS);
    return hours > 0 ? hours : DEFAULT_INTERVAL_HOURS;
  });
}

/** A plain decimal (or exponent) rate; empty text is NaN, not 0. */
function parseRate(s: string): number {
  const t = s.trim().replace(/^"|"$/g, '');
  return t === '' ? Number.NaN : Number(t);
}

function splitCells(line: string): string[] {
  return line.split(',').map((c) => c.trim().replace(/^"|"$/g, ''));
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
