import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type ColumnName, CsvFormatError, parseBarsCsv } from '@keel/candles';
import type { QuarantinedBar } from '../qc.ts';
import { DataError, type FullSeries, toFullSeries } from '../schema.ts';
import type { BarBatch, BarSource, FetchRequest } from './port.ts';

export type ColumnMapping = Partial<Record<ColumnName, string>>;

export interface FileSourceOptions {
  /** Column names for a generic OHLCV CSV or Parquet file (auto-detected when omitted). */
  readonly mapping?: ColumnMapping;
  /** Reads a Parquet file into bars (DuckDB; DataStore.readParquetFile). Required for .parquet. */
  readonly readParquet?: (file: string, mapping: ColumnMapping) => Promise<FullSeries>;
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
  let text: Uint8Array = bytes;
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      text = gunzipSync(bytes);
    } catch {
      throw new CsvFormatError(file, 'looks gzip-compressed but could not be decompressed (truncated or corrupt .gz)');
    }
  }
  const parsed = parseBarsCsv(
    Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8'),
    file,
    opts.mapping ? { mapping: opts.mapping } : {},
  );
  const quarantined: QuarantinedBar[] = parsed.quarantined.map((q) => ({
    row: -1,
    rule: q.rule,
    message: q.message,
    time: Number.NaN,
    values: [],
    file,
    line: q.line,
  }));
  return {
    raw,
    series: toFullSeries(parsed.series),
    rowsIn: parsed.rowsIn,
    quarantined,
    servedBy: 'file',
    file,
    ...(parsed.lines ? { lines: parsed.lines } : {}),
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
