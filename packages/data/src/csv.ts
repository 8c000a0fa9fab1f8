import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { type BarSeries, barSeries } from '@keel/core';

/** A row that could not be used, kept with the rule that caught it (never silently dropped). */
export interface QuarantinedRow {
  readonly line: number;
  readonly rule: string;
  readonly message: string;
  readonly text: string;
}

export interface CsvLayout {
  /** How the columns were recognised, for messages and reports. */
  readonly kind: 'binance-klines' | 'ohlcv-header' | 'ohlcv-headerless';
  readonly hasHeader: boolean;
  readonly columns: Readonly<Record<ColumnName, number>>;
}

export type ColumnName = 'time' | 'open' | 'high' | 'low' | 'close' | 'volume' | 'quoteVolume' | 'trades' | 'takerBuyVolume';

export interface ParsedCsv {
  readonly series: BarSeries;
  readonly layout: CsvLayout;
  readonly rowsIn: number;
  readonly quarantined: readonly QuarantinedRow[];
}

export class CsvFormatError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'CsvFormatError';
  }
}

const ALIASES: Record<ColumnName, readonly string[]> = {
  time: ['datetime', 'timestamp', 'time', 'date', 'open_time', 'opentime', 'open time', 'ts', 'date_time'],
  open: ['open', 'o'],
  high: ['high', 'h'],
  low: ['low', 'l'],
  close: ['close', 'c'],
  volume: ['volume', 'vol', 'v', 'base_volume'],
  quoteVolume: ['quote_volume', 'quote_asset_volume', 'quotevolume', 'quote volume', 'quote_av'],
  trades: ['trades', 'count', 'number_of_trades', 'num_trades', 'trade_count'],
  takerBuyVolume: ['taker_buy_volume', 'taker_buy_base_asset_volume', 'taker_buy_base_volume', 'taker_base_vol', 'tb_base_av'],
};

/** Binance's 12 kline columns: open_time,o,h,l,c,v,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore */
const BINANCE_COLUMNS: Record<ColumnName, number> = {
  time: 0, open: 1, high: 2, low: 3, close: 4, volume: 5, quoteVolume: 7, trades: 8, takerBuyVolume: 9,
};

function detectLayout(file: string, firstLine: string, mapping?: Partial<Record<ColumnName, string>>): CsvLayout {
  const cells = firstLine.split(',').map((c) => c.trim().replace(/^"|"$/g, '').toLowerCase());
  const first = cells[0] ?? '';
  const headerless = /^-?\d/.test(first) && !/^\d{4}-\d{2}-\d{2}/.test(first) ? true : /^\d{4}-\d{2}-\d{2}/.test(first);
  if (headerless) {
    if (cells.length >= 11) return { kind: 'binance-klines', hasHeader: false, columns: BINANCE_COLUMNS };
    if (cells.length >= 6) {
      return { kind: 'ohlcv-headerless', hasHeader: false, columns: { time: 0, open: 1, high: 2, low: 3, close: 4, volume: 5, quoteVolume: -1, trades: -1, takerBuyVolume: -1 } };
    }
    throw new CsvFormatError(file, `line 1 has ${cells.length} columns and no header; expected at least 6 (time,open,high,low,close,volume) or Binance's 12 kline columns`);
  }
  const columns = {} as Record<ColumnName, number>;
  for (const name of Object.keys(ALIASES) as ColumnName[]) {
    const wanted = mapping?.[name]?.toLowerCase();
    const idx = wanted !== undefined ? cells.indexOf(wanted) : cells.findIndex((c) => ALIASES[name].includes(c));
    if (wanted !== undefined && idx < 0) throw new CsvFormatError(file, `column "${mapping?.[name]}" mapped to ${name} is not in the header: ${cells.join(',')}`);
    columns[name] = idx;
  }
  const missing = (['time', 'open', 'high', 'low', 'close', 'volume'] as const).filter((k) => columns[k] < 0);
  if (missing.length > 0) {
    throw new CsvFormatError(file, `header has no ${missing.join(', ')} column (header: ${cells.join(',')}); name them or pass a column mapping`);
  }
  const isBinance = cells[0] === 'open_time' && cells.includes('close_time') && cells.includes('taker_buy_volume');
  return { kind: isBinance ? 'binance-klines' : 'ohlcv-header', hasHeader: true, columns };
}

/**
 * Timestamp text or number to UTC epoch ms. Numbers: seconds, ms or us by magnitude. Text: ISO
 * date-time with or without a zone; no zone means UTC (Binance's convention, see shared/data).
 */
export function parseTimestamp(s: string): number {
  const c0 = s.charCodeAt(0);
  if (s.length >= 19 && s.charCodeAt(4) === 45 /* - */ && s.charCodeAt(7) === 45) {
    const y = num4(s, 0);
    const mo = num2(s, 5);
    const d = num2(s, 8);
    const h = num2(s, 11);
    const mi = num2(s, 14);
    const se = num2(s, 17);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 60) return Number.NaN;
    let ms = Date.UTC(y, mo - 1, d, h, mi, se);
    let i = 19;
    if (s.charCodeAt(i) === 46 /* . */) {
      let frac = 0;
      let scale = 100;
      i++;
      while (i < s.length) {
        const c = s.charCodeAt(i) - 48;
        if (c < 0 || c > 9) break;
        frac += c * scale;
        scale /= 10;
        i++;
      }
      ms += Math.floor(frac);
    }
    if (i < s.length) {
      const z = s.slice(i).trim();
      if (z === 'Z' || z === 'z' || z === '') return ms;
      const m = /^([+-])(\d{2}):?(\d{2})$/.exec(z);
      if (!m) return Number.NaN;
      const off = (Number(m[2]) * 60 + Number(m[3])) * 60_000;
      return m[1] === '+' ? ms - off : ms + off;
    }
    return ms;
  }
  if ((c0 >= 48 && c0 <= 57) || c0 === 45) {
    const n = Number(s);
    if (!Number.isFinite(n)) return Number.NaN;
    if (n >= 1e14) return Math.floor(n / 1000); // microseconds (Binance archives since 2025)
    if (n >= 1e11) return n; // milliseconds
    return n * 1000; // seconds
  }
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return Date.UTC(num4(s, 0), num2(s, 5) - 1, num2(s, 8));
  return Number.NaN;
}

function num2(s: string, i: number): number {
  const a = s.charCodeAt(i) - 48;
  const b = s.charCodeAt(i + 1) - 48;
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1;
}
function num4(s: string, i: number): number {
  const a = num2(s, i);
  const b = num2(s, i + 2);
  return a < 0 || b < 0 ? -1 : a * 100 + b;
}

export interface ReadCsvOptions {
  /** Explicit column names for the generic layout. */
  mapping?: Partial<Record<ColumnName, string>>;
}

/** Reads a .csv or .csv.gz candle file into columns. Bad rows are quarantined with their rule. */
export function readBarsFile(file: string, opts: ReadCsvOptions = {}): ParsedCsv {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new CsvFormatError(file, `cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch {
      throw new CsvFormatError(file, 'looks gzip-compressed but could not be decompressed (truncated or corrupt .gz)');
    }
  }
  return parseBarsCsv(buf.toString('utf8'), file, opts);
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
  let first = nextLine();
  let lineNo = 1;
  while (first !== null && first.trim() === '') {
    first = nextLine();
    lineNo++;
  }
  if (first === null) throw new CsvFormatError(file, 'the file is empty: no header and no rows');
  const layout = detectLayout(file, first, opts.mapping);
  const cols = layout.columns;
  // Rough capacity from the byte count; grown if needed.
  let cap = Math.max(16, Math.ceil(text.length / 40));
  let time = new Float64Array(cap);
  let open = new Float64Array(cap);
  let high = new Float64Array(cap);
  let low = new Float64Array(cap);
  let close = new Float64Array(cap);
  let volume = new Float64Array(cap);
  let qv = cols.quoteVolume >= 0 ? new Float64Array(cap) : undefined;
  let tr = cols.trades >= 0 ? new Float64Array(cap) : undefined;
  let tb = cols.takerBuyVolume >= 0 ? new Float64Array(cap) : undefined;
  const grow = (a: Float64Array): Float64Array => {
    const b = new Float64Array(cap);
    b.set(a);
    return b;
  };
  const quarantined: QuarantinedRow[] = [];
  let n = 0;
  let rowsIn = 0;
  const need = Math.max(cols.time, cols.open, cols.high, cols.low, cols.close, cols.volume, cols.quoteVolume, cols.trades, cols.takerBuyVolume);
  let line: string | null = layout.hasHeader ? nextLine() : first;
  if (layout.hasHeader) lineNo++;
  const cells: string[] = [];
  for (; line !== null; line = nextLine(), lineNo++) {
    if (line.length === 0 || line.trim() === '') continue;
    rowsIn++;
    cells.length = 0;
    let start = 0;
    for (;;) {
      const comma = line.indexOf(',', start);
      if (comma < 0) {
        cells.push(line.slice(start));
        break;
      }
      cells.push(line.slice(start, comma));
      start = comma + 1;
    }
    if (cells.length <= need) {
      quarantined.push({ line: lineNo, rule: 'column-count', message: `expected at least ${need + 1} columns, found ${cells.length}`, text: line });
      continue;
    }
    const t = parseTimestamp((cells[cols.time] as string).trim().replace(/^"|"$/g, ''));
    if (!Number.isFinite(t)) {
      quarantined.push({ line: lineNo, rule: 'bad-timestamp', message: `cannot read timestamp "${cells[cols.time]}"`, text: line });
      continue;
    }
    const o = Number(cells[cols.open]);
    const h = Number(cells[cols.high]);
    const l = Number(cells[cols.low]);
    const c = Number(cells[cols.close]);
    const v = Number(cells[cols.volume]);
    if (!(Number.isFinite(o) && Number.isFinite(h) && Number.isFinite(l) && Number.isFinite(c) && Number.isFinite(v))) {
      quarantined.push({ line: lineNo, rule: 'bad-number', message: 'open/high/low/close/volume must be numbers', text: line });
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
    }
    time[n] = t;
    open[n] = o;
    high[n] = h;
    low[n] = l;
    close[n] = c;
    volume[n] = v;
    if (qv) qv[n] = Number(cells[cols.quoteVolume]);
    if (tr) tr[n] = Number(cells[cols.trades]);
    if (tb) tb[n] = Number(cells[cols.takerBuyVolume]);
    n++;
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
  return { series, layout, rowsIn, quarantined };
}
