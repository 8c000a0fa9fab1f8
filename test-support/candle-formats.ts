/**
 * One table of candle-file formats, run against every reader of candle files: @keel/candles
 * directly (packages/candles/test) and the exchange simulator's readBarsFile/parseBarsCsv, which
 * must read exactly the same bars (packages/exchange-sim/test). Each case is a small hand-made file
 * in a layout found in the wild (the shared data's README lists the real ones) and the bars a
 * person reading it would expect, worked out by hand: open time in UTC ms and OHLCV.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

/** [open time UTC ms, open, high, low, close, volume] */
export type ExpectedBar = readonly [number, number, number, number, number, number];

export interface CandleFormatCase {
  readonly name: string;
  readonly text: string;
  /** Write it gzip-compressed (read through the file path). */
  readonly gzip?: boolean;
  readonly options?: {
    readonly timeIs?: 'open' | 'close';
    readonly timeframe?: '1m' | '1h' | '1d';
    readonly mapping?: Readonly<Record<string, string>>;
  };
  /** The bars kept, in file order. */
  readonly bars?: readonly ExpectedBar[];
  /** Rows refused, by 1-based file line and rule. */
  readonly quarantined?: readonly { readonly line: number; readonly rule: string }[];
  /** The whole file is refused with an error matching this. */
  readonly error?: RegExp;
  /** A note the reader must give the user (e.g. close times converted). */
  readonly note?: RegExp;
}

const T = Date.UTC(2024, 0, 1);
const M = 60_000;
const H = 3_600_000;
const D = 86_400_000;
const b = (t: number, o: number, h: number, l: number, c: number, v: number): ExpectedBar => [t, o, h, l, c, v];
const two = [b(T, 1, 2, 0.5, 1.5, 10), b(T + M, 1.5, 2, 1, 1.2, 11)];

export const CANDLE_FORMATS: readonly CandleFormatCase[] = [
  {
    name: 'A: datetime text in UTC without a zone (SysTB 1m)',
    text: 'datetime,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,0.5,1.5,10\n2024-01-01 00:01:00,1.5,2,1,1.2,11\n',
    bars: two,
  },
  {
    name: 'B/C: timestamp text (hourly and Benicio 1m files)',
    text: 'timestamp,open,high,low,close,volume\n2024-01-01 00:00:00,42283.58,42554.57,42261.02,42475.23,1271.68108\n2024-01-01 01:00:00,42475.23,42775,42431.65,42613.56,1196.37856\n',
    bars: [
      b(T, 42283.58, 42554.57, 42261.02, 42475.23, 1271.68108),
      b(T + H, 42475.23, 42775, 42431.65, 42613.56, 1196.37856),
    ],
  },
  {
    name: 'B 1d: symbol and timeframe columns, open_time and close_time in ms (etna)',
    text: `symbol,timeframe,open_time,close_time,open,high,low,close,volume,trades\nBTCUSDT,1d,1502928000000,1503014399999,4261.48,4485.39,4200.74,4285.08,795.150377,3427\nBTCUSDT,1d,1503014400000,1503100799999,4285.08,4371.52,3938.77,4108.37,1199.888264,5233\n`,
    bars: [
      b(1502928000000, 4261.48, 4485.39, 4200.74, 4285.08, 795.150377),
      b(1502928000000 + D, 4285.08, 4371.52, 3938.77, 4108.37, 1199.888264),
    ],
  },
  {
    name: "D: Binance's 12 kline columns with its header (USD-M futures archive)",
    text: 'open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore\n1675209600000,6.949,6.959,6.947,6.957,30020.25,1675209659999,208738.74,543,17588.6,122301.8,0\n1675209660000,6.957,6.96,6.951,6.952,11009.8,1675209719999,76578.8,301,4011.1,27899.4,0\n',
    bars: [
      b(1675209600000, 6.949, 6.959, 6.947, 6.957, 30020.25),
      b(1675209660000, 6.957, 6.96, 6.951, 6.952, 11009.8),
    ],
  },
  {
    name: "Binance's 12 kline columns without a header, ms epochs (spot archives until 2024)",
    text: '1704067200000,1,2,0.5,1.5,10,1704067259999,15,3,5,7,0\n1704067260000,1.5,2,1,1.2,11,1704067319999,15,3,5,7,0\n',
    bars: two,
  },
  {
    name: "Binance's 12 kline columns without a header, microsecond epochs (spot archives since 2025)",
    text: '1704067200000000,1,2,0.5,1.5,10,1704067259999999,15,3,5,7,0\n1704067260000000,1.5,2,1,1.2,11,1704067319999999,15,3,5,7,0\n',
    bars: two,
  },
  {
    name: 'six columns without a header, epoch seconds',
    text: '1704067200,1,2,0.5,1.5,10\n1704067260,1.5,2,1,1.2,11\n',
    bars: two,
  },
  {
    name: 'ISO 8601 with T and Z, and with milliseconds',
    text: 'time,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,10\n2024-01-01T00:01:00.000Z,1.5,2,1,1.2,11\n',
    bars: two,
  },
  {
    name: 'ISO 8601 in a foreign zone (+01:00 and -0500): converted to UTC',
    text: 'date,open,high,low,close,volume\n2024-01-01 01:00:00+01:00,1,2,0.5,1.5,10\n2023-12-31T19:01:00-0500,1.5,2,1,1.2,11\n',
    bars: two,
  },
  {
    name: 'UTF-8 byte-order mark and CRLF line ends (a spreadsheet export)',
    text: '\ufeffdatetime,open,high,low,close,volume\r\n2024-01-01 00:00:00,1,2,0.5,1.5,10\r\n2024-01-01 00:01:00,1.5,2,1,1.2,11\r\n',
    bars: two,
  },
  {
    name: 'gzip-compressed',
    gzip: true,
    text: 'datetime,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,0.5,1.5,10\n2024-01-01 00:01:00,1.5,2,1,1.2,11\n',
    bars: two,
  },
  {
    name: 'short column names (ts, o, h, l, c, v), quoted times and blank lines',
    text: 'ts,o,h,l,c,v\n"2024-01-01 00:00:00",1,2,0.5,1.5,10\n\n"2024-01-01 00:01:00",1.5,2,1,1.2,11\n\n',
    bars: two,
  },
  {
    name: 'a column mapping names the columns of an unknown header',
    text: 'when,px_o,px_h,px_l,px_c,qty\n2024-01-01 00:00:00,1,2,0.5,1.5,10\n2024-01-01 00:01:00,1.5,2,1,1.2,11\n',
    options: { mapping: { time: 'when', open: 'px_o', high: 'px_h', low: 'px_l', close: 'px_c', volume: 'qty' } },
    bars: two,
  },
  {
    name: 'only a close_time column (ms, open + 59,999): read as close times',
    text: 'close_time,open,high,low,close,volume\n1704067259999,1,2,0.5,1.5,10\n1704067319999,1.5,2,1,1.2,11\n',
    bars: two,
  },
  {
    name: 'close_datetime in a foreign zone: 2024-12-01 00:00:59.999000+01:00 is the bar opening 2024-11-30 23:00 UTC',
    text: 'close_datetime,open,high,low,close,volume\n2024-12-01 00:00:59.999000+01:00,1,2,0.5,1.5,10\n2024-12-01 00:01:59.999000+01:00,1.5,2,1,1.2,11\n',
    bars: [b(Date.UTC(2024, 10, 30, 23, 0), 1, 2, 0.5, 1.5, 10), b(Date.UTC(2024, 10, 30, 23, 1), 1.5, 2, 1, 1.2, 11)],
  },
  {
    name: 'close times in a column named datetime: recognised by their values, converted, and said so',
    text: 'datetime,open,high,low,close,volume\n2024-01-01 00:59:59.999,1,2,0.5,1.5,10\n2024-01-01 01:59:59.999,1.5,2,1,1.2,11\n2024-01-01 02:59:59.999,1.2,1.3,1.1,1.25,12\n',
    bars: [b(T, 1, 2, 0.5, 1.5, 10), b(T + H, 1.5, 2, 1, 1.2, 11), b(T + 2 * H, 1.2, 1.3, 1.1, 1.25, 12)],
    note: /column "datetime" holds bar close times .* converted to bar open times/,
  },
  {
    name: 'close times truncated to the second (00:00:59) are close times too',
    text: 'datetime,open,high,low,close,volume\n2024-01-01 00:00:59,1,2,0.5,1.5,10\n2024-01-01 00:01:59,1.5,2,1,1.2,11\n',
    options: { timeframe: '1m' },
    bars: two,
    note: /close times/,
  },
  {
    name: 'close times while the caller says the column holds open times: refused, never read as opens',
    text: 'datetime,open,high,low,close,volume\n2024-01-01 00:00:59.999,1,2,0.5,1.5,10\n2024-01-01 00:01:59.999,1.5,2,1,1.2,11\n',
    options: { timeIs: 'open' },
    error: /"datetime" was given as bar open times, but 2 of 2 times sit just before the 1m grid/,
  },
  {
    name: 'timeIs close: a time that is no bar close is refused with its line',
    text: 'datetime,open,high,low,close,volume\n2024-01-01 00:00:59.999,1,2,0.5,1.5,10\n2024-01-01 00:01:30,1.5,2,1,1.2,11\n2024-01-01 00:02:59.999,1.5,2,1,1.2,11\n',
    options: { timeIs: 'close', timeframe: '1m' },
    bars: [b(T, 1, 2, 0.5, 1.5, 10), b(T + 2 * M, 1.5, 2, 1, 1.2, 11)],
    quarantined: [{ line: 3, rule: 'misaligned-close-time' }],
  },
  {
    name: 'bad rows: unreadable time, non-numeric price, too few columns (each refused with its line and rule)',
    text: 'datetime,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,0.5,1.5,10\nyesterday,1,2,0.5,1.5,10\n2024-01-01 00:02:00,1,two,0.5,1.5,10\n2024-01-01 00:03:00,1,2\n2024-01-01 00:01:00,1.5,2,1,1.2,11\n',
    bars: two,
    quarantined: [
      { line: 3, rule: 'bad-timestamp' },
      { line: 4, rule: 'bad-number' },
      { line: 5, rule: 'column-count' },
    ],
  },
  {
    name: 'every cell quoted (Excel, csv.QUOTE_ALL) as RFC 4180 writes them: a comma and a doubled quote inside a cell',
    text: '"note","datetime","open","high","low","close","volume"\n"a, ""b""","2024-01-01 00:00:00","1","2","0.5","1.5","10"\n"","2024-01-01 00:01:00","1.5","2","1","1.2","11"\n',
    bars: two,
  },
  {
    name: 'empty and NaN cells (pandas writes a missing value so): refused row by row, never read as 0',
    text: 'datetime,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,0.5,1.5,10\n2024-01-01 00:02:00,1,2,0.5,,10\n2024-01-01 00:03:00,1,2,0.5,NaN,10\n2024-01-01 00:04:00,1,2,0.5,1.5,\n2024-01-01 00:01:00,1.5,2,1,1.2,11\n',
    bars: two,
    quarantined: [
      { line: 3, rule: 'empty-cell' },
      { line: 4, rule: 'empty-cell' },
      { line: 5, rule: 'empty-cell' },
    ],
  },
  {
    name: 'newest first (every time before the one above it): read in time order, and said so',
    text: 'datetime,open,high,low,close,volume\n2024-01-01 00:01:00,1.5,2,1,1.2,11\n2024-01-01 00:00:00,1,2,0.5,1.5,10\n',
    bars: two,
    note: /newest first/,
  },
  {
    name: 'separate date and time columns: refused (the date alone would stamp a whole day at midnight)',
    text: 'date,time,open,high,low,close,volume\n2024-01-01,00:00:00,1,2,0.5,1.5,10\n',
    error: /separate date and time columns/,
  },
  {
    name: 'a header without the needed columns: refused, naming them',
    text: 'when,price\n2024-01-01 00:00:00,1\n',
    error: /header has no time, open, high, low, close, volume column/,
  },
  {
    name: 'an empty file',
    text: '',
    error: /the file is empty/,
  },
];

/**
 * Reads one case with a reader: through a temp file when the case is gzip-compressed, else from
 * its text (named f.csv, as the cases' expectations say).
 */
export function readFormatCase<T>(
  c: CandleFormatCase,
  files: ReadonlyMap<string, string>,
  reader: {
    readonly file: (path: string, opts: NonNullable<CandleFormatCase['options']>) => T;
    readonly text: (text: string, name: string, opts: NonNullable<CandleFormatCase['options']>) => T;
  },
): T {
  const opts = c.options ?? {};
  return c.gzip ? reader.file(files.get(c.name) as string, opts) : reader.text(c.text, 'f.csv', opts);
}

/** Writes each case that must be read from a path (gzip) into a temp folder; returns case name -> path. */
export function writeCandleFormatFiles(): Map<string, string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'keel-candle-formats-'));
  const out = new Map<string, string>();
  CANDLE_FORMATS.forEach((c, i) => {
    const file = path.join(dir, `case-${i}.csv${c.gzip ? '.gz' : ''}`);
    writeFileSync(file, c.gzip ? gzipSync(c.text) : c.text);
    out.set(c.name, file);
  });
  return out;
}
