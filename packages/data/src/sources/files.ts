import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type ColumnName, candleFileBytes, parseBarsCsv, type TimeIs } from '@keel/candles';
import type { Timeframe } from '@keel/core';
import type { QuarantinedBar } from '../qc.ts';
import { DataError, type FullSeries, SERIES_COLUMNS, toFullSeries } from '../schema.ts';
import type { BarBatch, BarSource, FetchRequest } from './port.ts';

export type ColumnMapping = Partial<Record<ColumnName, string>>;

/** Every column a file can name: the store's columns. */
const MAPPABLE: readonly ColumnName[] = SERIES_COLUMNS;

/** `time=ts,open=o,...` (the `--map` flag of every command that reads candle files) as a mapping. */
export function parseColumnMapping(spec: string): ColumnMapping {
  const out: Record<string, string> = {};
  for (const part of spec.split(',')) {
    const [k, v] = part.split('=');
    if (!k || !v) throw new DataError('bad-argument', `--map "${part}" must be field=column`);
    const key = k.trim();
    if (!(MAPPABLE as readonly string[]).includes(key))
      throw new DataError('bad-argument', `--map: unknown field "${key}" (${MAPPABLE.join(', ')})`);
    out[key] = v.trim();
  }
  return out as ColumnMapping;
}

/** `open` or `close` (the `--time-is` flag): what a file's time column holds. */
export function parseTimeIs(s: string): TimeIs {
  if (s !== 'open' && s !== 'close') throw new DataError('bad-argument', `--time-is "${s}": expected open or close`);
  return s;
}

export interface FileSourceOptions {
  /** Column names for a generic OHLCV CSV or Parquet file (auto-detected when omitted). */
  readonly mapping?: ColumnMapping;
  /** Whether a CSV's time column holds bar open or close times (detected when omitted; see @keel/candles). */
  readonly timeIs?: TimeIs;
  /** The bar timeframe, when the caller knows it (close times are checked against its grid). */
  readonly timeframe?: Timeframe;
  /** Reads a Parquet file into bars (DuckDB; DataStore.readParquetFile). Required for .parquet. */
  readonly readParquet?: (file: string, mapping: ColumnMapping) => Promise<FullSeries>;
}

/**
 * The timeframe of a file's bars, from the spacing of their times and from the file's name
 * (binance_BTCUSDT_1h_...): the spacing is what the bars are, so it wins, with a note, when the
 * name says otherwise; the name serves when the spacing cannot tell (one row, no common step). A
 * timeframe read from the spacing alone is said too: a 1m file with two rows in three missing is
 * spaced 3m, and would otherwise run as 3m bars with no gaps unseen.
 */
export function fileTimeframe(
  file: string,
  spacing: Timeframe | null | undefined,
  name: Timeframe | undefined,
): { timeframe: Timeframe | undefined; notes: string[] } {
  if (spacing && name && spacing !== name)
    return {
      timeframe: spacing,
      notes: [`${file}: the name says ${name} but the bars are ${spacing} apart; read as ${spacing}`],
    };
  if (spacing && name === undefined)
    return {
      timeframe: spacing,
      notes: [`${file}: timeframe ${spacing} read from the spacing of the times (give --timeframe to say otherwise)`],
    };
  return { timeframe: spacing ?? name, notes: [] };
}

/** Reads one local file into a batch: Binance kline CSV, generic OHLCV CSV (.csv/.csv.gz) or Parquet. */
export async function readFileBatch(file: string, opts: FileSourceOptions = {}): Promise<BarBatch> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new DataError(
      'file-unreadable',
      `${file}: cannot read the file (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
  const name = path.basename(file);
  const raw = { bytes, url: `file://${path.resolve(file)}`, name };
  if (/\.parquet$/i.test(file)) {
    if (!opts.readParquet) throw new DataError('bad-argument', `${file}: Parquet needs a reader (open a DataStore)`);
    const series = await opts.readParquet(path.resolve(file), opts.mapping ?? {});
    return { raw, series, rowsIn: series.length, quarantined: [], servedBy: 'file', file };
  }
  const text = candleFileBytes(file, bytes);
  const parsed = parseBarsCsv(Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8'), file, {
    ...(opts.mapping ? { mapping: opts.mapping } : {}),
    ...(opts.timeIs ? { timeIs: opts.timeIs } : {}),
    ...(opts.timeframe ? { timeframe: opts.timeframe } : {}),
  });
  const quarantined: QuarantinedBar[] = parsed.quarantined.map((q) => ({
    row: -1,
    rule: q.rule,
    message: q.message,
    time: Number.NaN,
    values: [],
    file,
    line: q.line,
    dataRow: q.row,
    field: q.field,
  }));
  return {
    raw,
    series: toFullSeries(parsed.series),
    rowsIn: parsed.rowsIn,
    quarantined,
    servedBy: 'file',
    file,
    lines: parsed.lines,
    rows: parsed.rows,
    timeframe: parsed.time.timeframe,
    notes: parsed.notes,
  };
}

/** Local files as a source (the request's range is not used to filter: a file is imported whole). */
export class FileSource implements BarSource {
  readonly kind = 'file' as const;
  readonly name: string;
  constructor(
    private readonly files: readonly string[],
    private readonly opts: FileSourceOptions = {},
  ) {
    this.name = `files(${files.length})`;
  }
  async *fetch(_req: FetchRequest): AsyncIterable<BarBatch> {
    for (const f of this.files) yield await readFileBatch(f, this.opts);
  }
}
