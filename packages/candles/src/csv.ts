import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { type BarSeries, barSeries, isoUtc, type Timeframe } from '@keel/core';
import { resolveTimeColumn, type TimeIs } from './close-time.ts';
import { parseTimestamp } from './timestamp.ts';

/** A row that could not be used, kept with the rule that caught it (never silently dropped). */
export interface QuarantinedRow {
  /** 1-based line in the file. */
  readonly line: number;
  /** 1-based data row (the header and blank lines not counted). */
  readonly row: number;
  readonly rule: string;
  /** The field at fault: time, open, high, low, close, volume, or row (the row as a whole). */
  readonly field: string;
  readonly message: string;
  readonly text: string;
}

export interface CsvLayout {
  /** How the columns were recognised, for messages and reports. */
  readonly kind: 'binance-klines' | 'ohlcv-header' | 'ohlcv-headerless';
  readonly hasHeader: boolean;
  readonly columns: Readonly<Record<ColumnName, number>>;
  /** The time column as the user sees it: its header name, or "column 1" without a header. */
  readonly timeColumn: string;
  /** Set when the header itself says the time column is a close time (close_time, close_datetime...). */
  readonly timeIs?: TimeIs;
}

export type ColumnName =
  | 'time'
  | 'open'
  | 'high'
  | 'low'
  | 'close'
  | 'volume'
  | 'quoteVolume'
  | 'trades'
  | 'takerBuyVolume';

export interface ParsedCsv {
  readonly series: BarSeries;
  readonly layout: CsvLayout;
  readonly rowsIn: number;
  readonly quarantined: readonly QuarantinedRow[];
  /** 1-based source line of each kept row (to name file and line in later QC messages). */
  readonly lines: Int32Array;
  /** 1-based data row of each kept row: blank lines and the header are not counted. */
  readonly rows: Int32Array;
  /** How the time column was read: open or close times, against which bar timeframe. */
  readonly time: { readonly column: string; readonly is: TimeIs; readonly timeframe: Timeframe | null };
  /** Things the caller should show the user (e.g. close times converted to open times). */
  readonly notes: readonly string[];
}

export class CsvFormatError extends Error {
  constructor(
    readonly file: string,
    message: string,
    /** Required columns the header lacks, when that is the problem. */
    readonly missingColumns: readonly ColumnName[] = [],
  ) {
    super(`${file}: ${message}`);
    this.name = 'CsvFormatError';
  }
}

/** Header names of a bar's close time: used as the time column (read as close times) when no open time is named. */
const CLOSE_TIME_ALIASES = ['close_time', 'closetime', 'close time', 'close_datetime', 'close_timestamp', 'close_date'];

const ALIASES: Record<ColumnName, readonly string[]> = {
  time: ['datetime', 'timestamp', 'time', 'date', 'open_time', 'opentime', 'open time', 'ts', 'date_time'],
  open: ['open', 'o'],
  high: ['high', 'h'],
  low: ['low', 'l'],
  close: ['close', 'c'],
  volume: ['volume', 'vol', 'v', 'base_volume'],
  quoteVolume: ['quote_volume', 'quote_asset_volume', 'quotevolume', 'quote volume', 'quote_av'],
  trades: ['trades', 'count', 'number_of_trades', 'num_trades', 'trade_count'],
  takerBuyVolume: [
    'taker_buy_volume',
    'taker_buy_base_asset_volume',
    'taker_buy_base_volume',
    'taker_base_vol',
    'tb_base_av',
  ],
};

/** Binance's 12 kline columns: open_time,o,h,l,c,v,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore */
const BINANCE_COLUMNS: Record<ColumnName, number> = {
  time: 0,
  open: 1,
  high: 2,
  low: 3,
  close: 4,
  volume: 5,
  quoteVolume: 7,
  trades: 8,
  takerBuyVolume: 9,
};

/** time, open, high, low, close, volume without a header: Binance's first six columns, no extras. */
const OHLCV_COLUMNS: Record<ColumnName, number> = {
  ...BINANCE_COLUMNS,
  quoteVolume: -1,
  trades: -1,
  takerBuyVolume: -1,
};

function detectLayout(file: string, firstLine: string, mapping?: Partial<Record<ColumnName, string>>): CsvLayout {
  const cells = splitCsvLine(firstLine).map((c) => c.trim().toLowerCase());
  const first = cells[0] ?? '';
  // A header cell starts with a letter; data starts with a digit (an epoch or a date) or a minus.
  const headerless = /^-?\d/.test(first);
  if (headerless) {
    if (cells.length >= 11)
      return { kind: 'binance-klines', hasHeader: false, columns: BINANCE_COLUMNS, timeColumn: 'column 1 (open_time)' };
    if (cells.length >= 6) {
      return { kind: 'ohlcv-headerless', hasHeader: false, timeColumn: 'column 1', columns: OHLCV_COLUMNS };
    }
    throw new CsvFormatError(
      file,
      `line 1 has ${cells.length} columns and no header; expected at least 6 (time,open,high,low,close,volume) or Binance's 12 kline columns`,
    );
  }
  const columns = {} as Record<ColumnName, number>;
  for (const name of Object.keys(ALIASES) as ColumnName[]) {
    const wanted = mapping?.[name]?.toLowerCase();
    const idx = wanted !== undefined ? cells.indexOf(wanted) : cells.findIndex((c) => ALIASES[name].includes(c));
    if (wanted !== undefined && idx < 0)
      throw new CsvFormatError(
        file,
        `column "${mapping?.[name]}" mapped to ${name} is not in the header: ${cells.join(',')}`,
      );
    columns[name] = idx;
  }
  // A day in one column and the time of day in another: taking the date alone as the time would
  // stamp every bar of a day at midnight.
  if (mapping?.time === undefined && cells.includes('date') && cells.includes('time'))
    throw new CsvFormatError(
      file,
      `the header has separate date and time columns (${cells.join(',')}): join them into one column of date and time (YYYY-MM-DD HH:MM:SS), or name one column with --map time=...`,
    );
  let timeIs: TimeIs | undefined;
  if (columns.time < 0 && mapping?.time === undefined) {
    columns.time = cells.findIndex((c) => CLOSE_TIME_ALIASES.includes(c));
    if (columns.time >= 0) timeIs = 'close';
  }
  const missing = (['time', 'open', 'high', 'low', 'close', 'volume'] as const).filter((k) => columns[k] < 0);
  if (missing.length > 0) {
    throw new CsvFormatError(
      file,
      `header has no ${missing.join(', ')} column (header: ${cells.join(',')}); name them or pass a column mapping`,
      missing,
    );
  }
  const isBinance = cells[0] === 'open_time' && cells.includes('close_time') && cells.includes('taker_buy_volume');
  return {
    kind: isBinance ? 'binance-klines' : 'ohlcv-header',
    hasHeader: true,
    columns,
    timeColumn: cells[columns.time] as string,
    ...(timeIs ? { timeIs } : {}),
  };
}

export interface ReadCsvOptions {
  /** Explicit column names for the generic layout (`--map time=close_datetime,open=o,...`). */
  readonly mapping?: Partial<Record<ColumnName, string>>;
  /**
   * Whether the time column holds bar open or close times. Not given: read from the header (a
   * close_time column) or from the values (times that sit 1 ms or 1 s before the timeframe's grid
   * are close times: converted to open times, with a note). Given as 'open' while the values are
   * close times: a CsvFormatError. Close times are never taken as open times.
   */
  readonly timeIs?: TimeIs;
  /** The bar timeframe (the grid close times are checked against); inferred from the times when not given. */
  readonly timeframe?: Timeframe;
}

/** Reads a .csv, .csv.gz or .zip candle file into columns. Bad rows are quarantined with their rule. */
export function readBarsFile(file: string, opts: ReadCsvOptions = {}): ParsedCsv {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new CsvFormatError(file, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  const text = candleFileBytes(file, buf);
  return parseBarsCsv(Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8'), file, opts);
}

/**
 * A candle file's bytes as text bytes: a .gz (gzip's magic bytes) is gunzipped, a .zip (a local
 * file header, as Binance's data.binance.vision serves them) is unzipped to its one CSV, anything
 * else is taken as it is. The one way `keel backtest --data`, `keel data import` and the other
 * readers open a compressed candle file; an archive that cannot be read names the file.
 */
export function candleFileBytes(file: string, bytes: Uint8Array): Uint8Array {
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      return gunzipSync(bytes);
    } catch {
      throw new CsvFormatError(file, 'looks gzip-compressed but could not be decompressed (truncated or corrupt .gz)');
    }
  }
  if (bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04)
    return unzipOneCsv(file, bytes);
  return bytes;
}

/** The one .csv of a zip archive (fflate, loaded only for a zip: most runs never read one). */
function unzipOneCsv(file: string, bytes: Uint8Array): Uint8Array {
  const { unzipSync } = createRequire(import.meta.url)('fflate') as {
    unzipSync(data: Uint8Array): Record<string, Uint8Array>;
  };
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (e) {
    throw new CsvFormatError(file, `looks like a zip archive but could not be read (${(e as Error).message})`);
  }
  const names = Object.keys(entries).filter((n) => !n.endsWith('/') && !n.startsWith('__MACOSX/'));
  const csv = names.filter((n) => /\.csv$/i.test(n));
  if (csv.length !== 1)
    throw new CsvFormatError(
      file,
      csv.length === 0
        ? `the zip archive holds no .csv file (it holds: ${names.join(', ') || 'nothing'})`
        : `the zip archive holds ${csv.length} .csv files (${csv.join(', ')}): give one file at a time`,
    );
  return entries[csv[0] as string] as Uint8Array;
}

export function parseBarsCsv(text: string, file = '<csv>', opts: ReadCsvOptions = {}): ParsedCsv {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let pos = 0;
  const nextLine = (): string | null => {
    if (pos >= text.length) return null;
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    let line = text.slice(pos, end);
    if (line.charCodeAt(line.length - 1) === 13) line = line.slice(0, -1);
    pos = end + 1;
    return line;
  };
  let firstStart = pos;
  let first = nextLine();
  let lineNo = 1;
  while (first !== null && first.trim() === '') {
    firstStart = pos;
    first = nextLine();
    lineNo++;
  }
  if (first === null) throw new CsvFormatError(file, 'the file is empty: no header and no rows');
  const layout = detectLayout(file, first, opts.mapping);
  const cols = layout.columns;
  // Capacity = the number of lines left (one memchr-speed pass): the columns are not oversized
  // (a byte-count guess was ~3x too big for Binance's long rows, and the series keeps them).
  let cap = 1;
  for (let i = text.indexOf('\n', pos); i >= 0; i = text.indexOf('\n', i + 1)) cap++;
  let time: Float64Array = new Float64Array(cap);
  let open: Float64Array = new Float64Array(cap);
  let high: Float64Array = new Float64Array(cap);
  let low: Float64Array = new Float64Array(cap);
  let close: Float64Array = new Float64Array(cap);
  let volume: Float64Array = new Float64Array(cap);
  let qv: Float64Array | undefined = cols.quoteVolume >= 0 ? new Float64Array(cap) : undefined;
  let tr: Float64Array | undefined = cols.trades >= 0 ? new Float64Array(cap) : undefined;
  let tb: Float64Array | undefined = cols.takerBuyVolume >= 0 ? new Float64Array(cap) : undefined;
  const grow = (a: Float64Array): Float64Array => {
    const b = new Float64Array(cap);
    b.set(a);
    return b;
  };
  let lines: Int32Array = new Int32Array(cap);
  let rows: Int32Array = new Int32Array(cap);
  const quarantined: QuarantinedRow[] = [];
  let n = 0;
  let rowsIn = 0;
  // Column index -> slot (0 time, 1..5 o h l c v, 6 qv, 7 trades, 8 taker buy); -1 = unused.
  const slotCols = [
    cols.time,
    cols.open,
    cols.high,
    cols.low,
    cols.close,
    cols.volume,
    cols.quoteVolume,
    cols.trades,
    cols.takerBuyVolume,
  ];
  const need = Math.max(...slotCols);
  const slotOf = new Int8Array(need + 1).fill(-1);
  slotCols.forEach((c, k) => {
    if (c >= 0) slotOf[c] = k;
  });
  const vals = new Float64Array(9);
  const cells: string[] = [];
  if (layout.hasHeader) lineNo++;
  else pos = firstStart;
  const len = text.length;
  // Hot loop: fields are scanned with charCodeAt and numbers parsed in place (no per-row strings).
  while (pos < len) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = len;
    const lineStart = pos;
    let lineEnd = end;
    if (lineEnd > lineStart && text.charCodeAt(lineEnd - 1) === 13) lineEnd--;
    pos = end + 1;
    const thisLine = lineNo++;
    if (lineEnd === lineStart) continue;
    const c0 = text.charCodeAt(lineStart);
    if ((c0 === 32 || c0 === 9) && isBlank(text, lineStart, lineEnd)) continue;
    rowsIn++;
    let field = 0;
    let a = lineStart;
    let bad: 'time' | 'num' | null = null;
    // Only the columns up to the last one used are scanned (close_time, ignore... are skipped).
    while (field <= need) {
      const slot = slotOf[field] as number;
      let b: number;
      if (slot > 0) {
        // The value goes straight into `vals`: a double returned from a call would be boxed.
        if (!scanNumber(text, a, lineEnd, vals, slot)) vals[slot] = slowNumber(text, a, lineEnd);
        b = scanEnd;
      } else {
        b = a;
        if (text.charCodeAt(a) === 34) b = quotedEnd(text, a, lineEnd);
        else while (b < lineEnd && text.charCodeAt(b) !== 44) b++;
        if (slot === 0) {
          if (fastInt(text, a, b, vals)) {
            const t = vals[0] as number;
            if (t >= 1e14) vals[0] = Math.floor(t / 1000);
            else if (t < 1e11) vals[0] = t * 1000;
          } else {
            const f = text.slice(a, b);
            let t = parseTimestamp(f);
            if (Number.isNaN(t)) t = parseTimestamp(unquote(f).trim());
            if (!Number.isFinite(t) && bad === null) bad = 'time';
            vals[0] = t;
          }
        }
      }
      field++;
      if (b >= lineEnd) break;
      a = b + 1;
    }
    if (field <= need) {
      const line = text.slice(lineStart, lineEnd);
      quarantined.push({
        line: thisLine,
        row: rowsIn,
        rule: 'column-count',
        field: 'row',
        message: `expected at least ${need + 1} columns, found ${field}`,
        text: line,
      });
      continue;
    }
    if (bad === 'time') {
      const line = text.slice(lineStart, lineEnd);
      splitCells(line, cells);
      quarantined.push({
        line: thisLine,
        row: rowsIn,
        rule: 'bad-timestamp',
        field: 'time',
        message: timestampProblem(cells[cols.time] ?? ''),
        text: line,
      });
      continue;
    }
    if (
      !(
        Number.isFinite(vals[1]) &&
        Number.isFinite(vals[2]) &&
        Number.isFinite(vals[3]) &&
        Number.isFinite(vals[4]) &&
        Number.isFinite(vals[5])
      )
    ) {
      const line = text.slice(lineStart, lineEnd);
      splitCells(line, cells);
      const slot = [1, 2, 3, 4, 5].find((k) => !Number.isFinite(vals[k])) as number;
      const name = SLOT_NAMES[slot] as string;
      const cell = (cells[slotCols[slot] as number] ?? '').trim();
      const empty = isMissing(cell);
      quarantined.push({
        line: thisLine,
        row: rowsIn,
        rule: empty ? 'empty-cell' : 'bad-number',
        field: name,
        message: empty
          ? `${name} is empty${cell === '' ? '' : ` ("${cell}", a missing value)`}`
          : `${name} "${cell}" is not a number`,
        text: line,
      });
      continue;
    }
    if (n === cap) {
      cap *= 2;
      time = grow(time);
      open = grow(open);
      high = grow(high);
      low = grow(low);
      close = grow(close);
      volume = grow(volume);
      if (qv) qv = grow(qv);
      if (tr) tr = grow(tr);
      if (tb) tb = grow(tb);
      const l2 = new Int32Array(cap);
      l2.set(lines);
      lines = l2;
      const r2 = new Int32Array(cap);
      r2.set(rows);
      rows = r2;
    }
    time[n] = vals[0] as number;
    open[n] = vals[1] as number;
    high[n] = vals[2] as number;
    low[n] = vals[3] as number;
    close[n] = vals[4] as number;
    volume[n] = vals[5] as number;
    if (qv) qv[n] = vals[6] as number;
    if (tr) tr[n] = vals[7] as number;
    if (tb) tb[n] = vals[8] as number;
    lines[n] = thisLine;
    rows[n] = rowsIn;
    n++;
  }
  const notes: string[] = [];
  // Newest first (some exports write it so): a strictly descending file is read in time order, with a
  // note. Anything less ordered is left for the quality gate to refuse (unsorted rows).
  if (n >= 2 && (time[0] as number) > (time[n - 1] as number) && strictlyDescending(time, n)) {
    for (const c of [time, open, high, low, close, volume, qv, tr, tb]) c?.subarray(0, n).reverse();
    lines.subarray(0, n).reverse();
    rows.subarray(0, n).reverse();
    notes.push(`${file}: the rows are newest first (every time before the one above it): read in time order`);
  }
  // Open or close times: read from the header, the caller or the values; close times become open times.
  let timeRead: ReturnType<typeof resolveTimeColumn>;
  const timeIs = opts.timeIs ?? layout.timeIs;
  try {
    timeRead = resolveTimeColumn(time.subarray(0, n), {
      ...(timeIs ? { timeIs } : {}),
      ...(opts.timeframe ? { timeframe: opts.timeframe } : {}),
      column: layout.timeColumn,
      file,
    });
  } catch (e) {
    throw new CsvFormatError(file, (e as Error).message.replace(`${file}: `, ''));
  }
  if (timeRead.offGrid.length > 0) {
    const drop = new Set(timeRead.offGrid);
    const texts = linesText(
      text,
      timeRead.offGrid.map((i) => lines[i] as number),
    );
    let k = 0;
    let d = 0;
    for (let i = 0; i < n; i++) {
      if (drop.has(i)) {
        quarantined.push({
          line: lines[i] as number,
          row: rows[i] as number,
          rule: 'misaligned-close-time',
          field: 'time',
          message: `close time ${isoOf(time[i] as number)} is not 1 ms (or 1 s) before the ${timeRead.timeframe} grid, so it closes no bar`,
          text: texts[d++] ?? '',
        });
        continue;
      }
      for (const c of [time, open, high, low, close, volume, qv, tr, tb]) if (c) c[k] = c[i] as number;
      lines[k] = lines[i] as number;
      rows[k] = rows[i] as number;
      k++;
    }
    quarantined.sort((a, b) => a.line - b.line);
    n = k;
  }
  const series = barSeries({
    time: time.subarray(0, n),
    open: open.subarray(0, n),
    high: high.subarray(0, n),
    low: low.subarray(0, n),
    close: close.subarray(0, n),
    volume: volume.subarray(0, n),
    quoteVolume: qv?.subarray(0, n),
    trades: tr?.subarray(0, n),
    takerBuyVolume: tb?.subarray(0, n),
  });
  return {
    series,
    layout,
    rowsIn,
    quarantined,
    lines: lines.subarray(0, n),
    rows: rows.subarray(0, n),
    time: { column: layout.timeColumn, is: timeRead.is, timeframe: timeRead.timeframe },
    notes: [...notes, ...timeRead.notes],
  };
}

function isoOf(t: number): string {
  return Number.isFinite(t) ? isoUtc(t) : String(t);
}

/** The texts of the given 1-based lines (ascending), in one pass: only on the rare bad-row path. */
function linesText(text: string, wanted: readonly number[]): string[] {
  const out: string[] = [];
  let pos = 0;
  let line = 1;
  for (const w of wanted) {
    while (line < w && pos <= text.length) {
      const nl = text.indexOf('\n', pos);
      pos = nl < 0 ? text.length + 1 : nl + 1;
      line++;
    }
    const end = text.indexOf('\n', pos);
    out.push(text.slice(pos, end < 0 ? text.length : end).replace(/\r$/, ''));
  }
  return out;
}
function isBlank(s: string, a: number, b: number): boolean {
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 13) return false;
  }
  return true;
}

function splitCells(line: string, cells: string[]): void {
  cells.length = 0;
  cells.push(...splitCsvLine(line));
}

/**
 * One CSV line's cells as RFC 4180 reads them: a cell in double quotes may hold commas, and a
 * doubled quote inside it is one quote (a quoted 42,5 is the text 42,5). Used off the hot
 * path (the header, and the cells of a row named in a message).
 */
export function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let a = 0;
  for (;;) {
    const b = line.charCodeAt(a) === 34 ? quotedEnd(line, a, line.length) : plainEnd(line, a, line.length);
    out.push(unquote(line.slice(a, b)));
    if (b >= line.length) return out;
    a = b + 1;
  }
}

function plainEnd(s: string, a: number, end: number): number {
  let b = a;
  while (b < end && s.charCodeAt(b) !== 44) b++;
  return b;
}

/** The comma (or `end`) after a quoted cell starting at `a`: commas inside the quotes are the cell's. */
function quotedEnd(s: string, a: number, end: number): number {
  let i = a + 1;
  while (i < end) {
    if (s.charCodeAt(i) === 34) {
      if (s.charCodeAt(i + 1) === 34 && i + 1 < end) i += 2;
      else break;
    } else i++;
  }
  // Text after the closing quote (not RFC 4180) stays in the cell, which then fails to parse.
  return plainEnd(s, i, end);
}

/** A cell's text without its quotes (a doubled quote inside is one); unquoted text as it is. */
function unquote(cell: string): string {
  const t = cell.trim();
  if (t.length >= 2 && t.charCodeAt(0) === 34 && t.charCodeAt(t.length - 1) === 34)
    return t.slice(1, -1).replaceAll('""', '"');
  return cell;
}

/** A number the fast scan could not read: a quoted cell, an exponent, spaces; NaN for an empty cell. */
function slowNumber(s: string, a: number, end: number): number {
  if (s.charCodeAt(a) === 34) scanEnd = quotedEnd(s, a, end);
  const cell = unquote(s.slice(a, scanEnd)).trim();
  // Number('') is 0: an empty cell would read as a price or volume of 0.
  return cell === '' ? Number.NaN : Number(cell);
}

/** How spreadsheets and pandas write a missing value: an empty cell, NaN, NA, null. */
function isMissing(cell: string): boolean {
  return cell === '' || /^(nan|na|n\/a|null|none)$/i.test(cell);
}

function strictlyDescending(t: Float64Array, n: number): boolean {
  for (let i = 1; i < n; i++) if (!((t[i] as number) < (t[i - 1] as number))) return false;
  return true;
}

/** Why a time cell could not be read, with the forms that can. */
function timestampProblem(cell: string): string {
  const hint = /^\d{1,2}[./-]\d{1,2}[./-]\d{2,4}/.test(cell.trim())
    ? 'day and month order cannot be told from dd/mm/yyyy or mm/dd/yyyy: write dates as YYYY-MM-DD'
    : 'expected YYYY-MM-DD[ HH:MM[:SS]] with an optional zone, or epoch s, ms or us';
  return `cannot read timestamp "${cell}" (${hint})`;
}

/** Field names of the value slots the parse loop fills (0 time, 1..5 o h l c v). */
const SLOT_NAMES = ['time', 'open', 'high', 'low', 'close', 'volume'];

const POW10 = [
  1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
  1e21, 1e22,
];

/** Index of the comma (or line end) where the last scanNumber call stopped. */
let scanEnd = 0;

/**
 * Parses plain decimal text [-]digits[.digits] from `a` up to the next comma (or `end`) in the same
 * pass that finds the comma, or returns NaN when the text needs Number(). With all digits as an
 * integer m < 2^53 and k <= 22 fraction digits, m / 10^k is one correctly rounded division of two
 * exact doubles, so the result equals Number(text) bit for bit.
 */
function scanNumber(s: string, a: number, end: number, out: Float64Array, slot: number): boolean {
  let i = a;
  let neg = false;
  if (i < end && s.charCodeAt(i) === 45) {
    neg = true;
    i++;
  }
  let m = 0;
  let digits = 0;
  let frac = -1;
  let ok = true;
  for (; i < end; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      m = m * 10 + (c - 48);
      digits++;
      if (frac >= 0) frac++;
    } else if (c === 44) break;
    else if (c === 46 && frac < 0) frac = 0;
    else ok = false;
  }
  scanEnd = i;
  if (!ok || digits === 0 || m > 9007199254740991 || frac > 22) return false;
  const v = frac > 0 ? m / (POW10[frac] as number) : m;
  out[slot] = neg ? -v : v;
  return true;
}

/** Unsigned integer text (epoch timestamps) into out[0]; false when the text is anything else. */
function fastInt(s: string, a: number, b: number, out: Float64Array): boolean {
  if (a >= b || b - a > 16) return false;
  let m = 0;
  for (let i = a; i < b; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return false;
    m = m * 10 + c;
  }
  out[0] = m;
  return true;
}
