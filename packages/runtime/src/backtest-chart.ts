import { createHash } from 'node:crypto';
import type { BacktestResult, BarSeries, PlotColumn } from '@keel/core';
import { barSeries } from '@keel/core';

/**
 * What a kept run's report draws that its result JSON leaves out, as stored: the run's bars (apart,
 * once per content: `barColumns`, `barsHash`) and its chart (the benchmark's curve and the plots:
 * `chartBytes`). `chartFrom` reads every format a build has saved.
 */

const BAR_COLUMNS = ['time', 'open', 'high', 'low', 'close', 'volume'] as const;
type BarColumn = (typeof BAR_COLUMNS)[number];

/** A run's bars as stored: the six float64 columns (BAR_COLUMNS order, little-endian), back to back. */
export function barColumns(s: BarSeries): Buffer {
  const n = s.length;
  const out = Buffer.allocUnsafe(n * 8 * BAR_COLUMNS.length);
  let at = 0;
  for (const c of BAR_COLUMNS) {
    const col = s[c].subarray(0, n);
    out.set(new Uint8Array(col.buffer, col.byteOffset, col.byteLength), at);
    at += col.byteLength;
  }
  return out;
}

/** The name bars are stored under: SHA-256 of their columns (hex). Equal bars, equal name. */
export function barsHash(columns: Uint8Array): string {
  return createHash('sha256').update(columns).digest('hex');
}

/**
 * The chart: this header (one line of JSON) followed by the columns' float64 bytes, in the header's
 * order, each as long as it says: the numbers as they are, with no text to make or parse. Version 3
 * holds the benchmark and the plots, the bars being stored apart; version 2 held the bars' columns
 * first; runs saved before either hold the columns as base64 text inside one JSON document
 * (ChartJsonV1). Every version reads.
 */
interface ChartHeader {
  readonly format: 'keel.chart';
  readonly version: 2 | 3;
  /** Byte order of the columns (the machine's: every platform Node runs on is little-endian). */
  readonly endian: 'LE';
  /** How many bars the run drew (version 2: their columns follow; 3: stored apart). */
  readonly bars: number;
  /** Length of the benchmark's curve, null without one. */
  readonly benchmark: number | null;
  readonly plots: readonly {
    readonly name: string;
    readonly panel: string;
    readonly symbol: string;
    readonly length: number;
  }[];
}

/** The chart as bytes (ChartHeader version 3): one buffer, made without a pass over the numbers but one copy. */
export function chartBytes(r: BacktestResult, bars: number): Buffer {
  const plots = r.plots ?? [];
  const header: ChartHeader = {
    format: 'keel.chart',
    version: 3,
    endian: 'LE',
    bars,
    benchmark: r.benchmark !== undefined ? r.benchmark.values.length : null,
    plots: plots.map((p) => ({ name: p.name, panel: p.panel, symbol: p.symbol, length: p.values.length })),
  };
  const columns: Float64Array[] = [
    ...(r.benchmark !== undefined ? [r.benchmark.values] : []),
    ...plots.map((p) => p.values),
  ];
  // The columns start on a multiple of 8 bytes (spaces pad the header line).
  let head = `${JSON.stringify(header)}\n`;
  head = head.padEnd(Math.ceil(head.length / 8) * 8, ' ');
  const out = Buffer.allocUnsafe(head.length + columns.reduce((a, c) => a + c.byteLength, 0));
  let at = out.write(head, 0, 'latin1');
  for (const c of columns) {
    out.set(new Uint8Array(c.buffer, c.byteOffset, c.byteLength), at);
    at += c.byteLength;
  }
  return out;
}

/** The chart of runs saved before ChartHeader: JSON, each column's float64 bytes as base64. */
interface ChartJsonV1 {
  readonly bars: { readonly [K in BarColumn]: string };
  readonly benchmark: string | null;
  readonly plots: readonly {
    readonly name: string;
    readonly panel: string;
    readonly symbol: string;
    readonly values: string;
  }[];
}

const fromF64 = (b64: string): Float64Array => {
  const b = Buffer.from(b64, 'base64');
  return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

export interface Chart {
  bars: BarSeries;
  benchmark?: Float64Array;
  plots: PlotColumn[];
}

/** Float64 columns read one after another from `bytes`, from `at` (copied: aligned, and the bytes may be a view). */
function reader(bytes: Buffer, at: number) {
  return {
    next(length: number): Float64Array {
      const c = new Float64Array(bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + length * 8));
      at += length * 8;
      return c;
    },
    get at() {
      return at;
    },
  };
}

/** A series from its columns, asked for in BAR_COLUMNS order. */
function seriesOf(col: (k: BarColumn) => Float64Array): BarSeries {
  const [time, open, high, low, close, volume] = BAR_COLUMNS.map(col) as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  return barSeries({ time, open, high, low, close, volume });
}

/**
 * A stored chart read back. `bars` are the run's bar columns (`barColumns`) for a chart that does
 * not hold them (version 3); they are refused with one that does.
 */
export function chartFrom(bytes: Buffer, bars?: Buffer): Chart {
  const nl = bytes.indexOf(10);
  if (nl < 0) {
    if (bars !== undefined) throw new Error('a saved chart that holds its bars, given bars stored apart');
    return chartFromV1(JSON.parse(bytes.toString('utf8')) as ChartJsonV1);
  }
  const h = JSON.parse(bytes.toString('latin1', 0, nl)) as ChartHeader;
  if (h.format !== 'keel.chart' || (h.version !== 2 && h.version !== 3) || h.endian !== 'LE')
    throw new Error(`a saved chart in an unknown format (${bytes.toString('latin1', 0, Math.min(nl, 80))})`);
  const r = reader(bytes, Math.ceil((nl + 1) / 8) * 8);
  let series: BarSeries;
  if (h.version === 2) {
    if (bars !== undefined) throw new Error('a saved chart that holds its bars, given bars stored apart');
    series = seriesOf(() => r.next(h.bars));
  } else {
    if (bars === undefined) throw new Error('a saved chart whose bars are stored apart, read without them');
    if (bars.length !== h.bars * 8 * BAR_COLUMNS.length)
      throw new Error(`stored bars of ${bars.length} bytes for a chart of ${h.bars} bars`);
    const b = reader(bars, 0);
    series = seriesOf(() => b.next(h.bars));
  }
  const benchmark = h.benchmark !== null ? r.next(h.benchmark) : undefined;
  const plots = h.plots.map((p) => ({ name: p.name, panel: p.panel, symbol: p.symbol, values: r.next(p.length) }));
  if (r.at !== bytes.length) throw new Error(`a saved chart of ${bytes.length} bytes where its header says ${r.at}`);
  return { bars: series, ...(benchmark !== undefined ? { benchmark } : {}), plots };
}

function chartFromV1(c: ChartJsonV1): Chart {
  return {
    bars: seriesOf((k) => fromF64(c.bars[k])),
    ...(c.benchmark !== null ? { benchmark: fromF64(c.benchmark) } : {}),
    plots: c.plots.map((p) => ({ name: p.name, panel: p.panel, symbol: p.symbol, values: fromF64(p.values) })),
  };
}
