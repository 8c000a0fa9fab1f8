import { promisify } from 'node:util';
import {
  type BrotliOptions,
  brotliCompress,
  brotliDecompressSync,
  createBrotliCompress,
  gunzipSync,
  constants as zlibConstants,
} from 'node:zlib';
import type { BacktestResult, BarSeries, Metrics, PlotColumn } from '@keel/core';
import { barSeries, isoUtc, riskConfigInput } from '@keel/core';
import {
  formatMetric,
  METRIC_KEYS,
  METRIC_SPECS,
  metricsToJson,
  pairToJson,
  resultFromJson,
  resultJsonChunks,
} from '@keel/report';
import { type BacktestRecord, DEFAULT_STORE_URL, type NewBacktest, openStore, type Store } from '@keel/store';

/**
 * Backtest runs kept in the store: every `keel backtest` saves one, `keel backtests` lists, shows
 * and compares them. Plain functions over a Store (a server calls the same ones); the CLI only
 * parses flags and prints.
 */

/** How a run was set up, as saved with it (what `show` prints beside the summary). */
export interface BacktestSettings {
  readonly cash: number;
  readonly fee: number;
  readonly makerFee?: number;
  readonly slippageBps?: number;
  readonly participation?: number;
  readonly latencyBars?: number;
  readonly from?: number;
  readonly to?: number;
  readonly maxOpenTrades?: number;
  /** Each market and where its bars came from (a file, or the store's series). */
  readonly data: readonly { readonly symbol: string; readonly source: string }[];
}

export interface BacktestRun {
  readonly result: BacktestResult;
  /** The primary market's bars, as run (the report's price chart; kept with the plots and the benchmark's curve). */
  readonly bars: BarSeries;
  readonly settings: BacktestSettings;
  /** The summary as the terminal showed it. */
  readonly summary: string;
}

/**
 * How a run's result and chart are compressed in the store: Brotli at quality 1, behind one byte
 * that says so. Against gzip level 1 (what runs saved before it hold, told apart by gzip's own
 * first bytes) it is about a third faster and a quarter smaller on a result's JSON.
 */
const BROTLI = 0x42; // 'B'

const BROTLI_FAST: BrotliOptions = { params: { [zlibConstants.BROTLI_PARAM_QUALITY]: 1 } };

/** The bytes a run saved in either form holds. */
function unpack(bytes: Uint8Array): Buffer {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return gunzipSync(bytes);
  if (bytes[0] === BROTLI) return brotliDecompressSync(bytes.subarray(1));
  throw new Error(`a saved backtest artifact in an unknown format (first byte ${bytes[0]})`);
}

const brotliAsync = promisify(brotliCompress);

async function pack(bytes: Uint8Array): Promise<Uint8Array> {
  const z = await brotliAsync(bytes, {
    ...BROTLI_FAST,
    params: { ...BROTLI_FAST.params, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  });
  const out = new Uint8Array(z.length + 1);
  out[0] = BROTLI;
  out.set(z, 1);
  return out;
}

/**
 * Compression (pack's) of bytes given chunk by chunk: the result JSON as it streams (to stdout,
 * say), so that a run printed with --json is serialised once for both. zlib compresses on a pool
 * thread while the producer makes the next chunk; `push` resolves at once unless more than QUEUED
 * bytes wait for it, so the producer never runs far ahead (a million-bar result is 111 MB of JSON;
 * queued whole, it tripled the run's memory) and never waits for each chunk (which left it idle
 * half the time). The chunks are gathered into blocks of BLOCK bytes before they reach zlib: a
 * write per 64 KiB chunk cost the producer's thread about twice the stream and pool overhead.
 */
class Compressor {
  static readonly QUEUED = 4 << 20;
  static readonly BLOCK = 1 << 20;
  // zlib passes stream options on to its Transform (the typings list only zlib's own).
  private readonly z = createBrotliCompress({
    ...BROTLI_FAST,
    writableHighWaterMark: Compressor.QUEUED,
  } as BrotliOptions);
  private readonly out: Buffer[] = [Buffer.of(BROTLI)];
  /** The block being filled, and how much of it is. */
  private block = Buffer.allocUnsafe(Compressor.BLOCK);
  private filled = 0;
  private readonly ended: Promise<void>;
  private failed: Error | undefined;

  constructor() {
    this.z.on('data', (c: Buffer) => this.out.push(c));
    this.ended = new Promise<void>((resolve, reject) => {
      this.z.on('end', resolve);
      this.z.on('error', (e) => {
        this.failed = e;
        reject(e);
      });
    });
    // Seen by done(); a push waiting for 'drain' is released by its own error listener.
    this.ended.catch(() => {});
  }

  /** Takes a copy: the chunk may be a view of a buffer its producer reuses. */
  push(chunk: Uint8Array): Promise<void> {
    if (this.failed !== undefined) return Promise.reject(this.failed);
    let ready = true;
    for (let from = 0; from < chunk.length; ) {
      const n = Math.min(chunk.length - from, this.block.length - this.filled);
      this.block.set(chunk.subarray(from, from + n), this.filled);
      this.filled += n;
      from += n;
      if (this.filled === this.block.length) ready = this.flush() && ready;
    }
    if (ready) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const done = (e?: Error) => {
        this.z.off('drain', done);
        this.z.off('error', done);
        if (e) reject(e);
        else resolve();
      };
      this.z.on('drain', done);
      this.z.on('error', done);
    });
  }

  /** Hands the filled part of the block to zlib (which keeps it); false when zlib's queue is full. */
  private flush(): boolean {
    const full = this.block.subarray(0, this.filled);
    this.block = Buffer.allocUnsafe(Compressor.BLOCK);
    this.filled = 0;
    return this.z.write(full);
  }

  async done(): Promise<Uint8Array> {
    if (this.filled > 0) this.flush();
    this.z.end();
    await this.ended;
    return new Uint8Array(Buffer.concat(this.out));
  }
}

const BAR_COLUMNS = ['time', 'open', 'high', 'low', 'close', 'volume'] as const;

/**
 * What the report draws that the result JSON leaves out: the bars, the benchmark's curve, the
 * plots. Kept as this header (one line of JSON) followed by the columns' float64 bytes, in the
 * header's order, each as long as it says: the numbers as they are, with no text to make or parse.
 * (Runs saved before it hold the columns as base64 text inside one JSON document: ChartJsonV1.)
 */
interface ChartHeader {
  readonly format: 'keel.chart';
  readonly version: 2;
  /** Byte order of the columns (the machine's: every platform Node runs on is little-endian). */
  readonly endian: 'LE';
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

/** The chart as bytes (ChartHeader): one buffer, made without a pass over the numbers but one copy. */
function chartBytes(r: BacktestResult, s: BarSeries): Buffer {
  const n = s.length;
  const plots = r.plots ?? [];
  const header: ChartHeader = {
    format: 'keel.chart',
    version: 2,
    endian: 'LE',
    bars: n,
    benchmark: r.benchmark !== undefined ? r.benchmark.values.length : null,
    plots: plots.map((p) => ({ name: p.name, panel: p.panel, symbol: p.symbol, length: p.values.length })),
  };
  const columns: Float64Array[] = [
    ...BAR_COLUMNS.map((c) => s[c].subarray(0, n)),
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
  readonly bars: { readonly [K in (typeof BAR_COLUMNS)[number]]: string };
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

interface Chart {
  bars: BarSeries;
  benchmark?: Float64Array;
  plots: PlotColumn[];
}

function chartFrom(bytes: Buffer): Chart {
  const nl = bytes.indexOf(10);
  if (nl < 0) return chartFromV1(JSON.parse(bytes.toString('utf8')) as ChartJsonV1);
  const h = JSON.parse(bytes.toString('latin1', 0, nl)) as ChartHeader;
  if (h.format !== 'keel.chart' || h.version !== 2 || h.endian !== 'LE')
    throw new Error(`a saved chart in an unknown format (${bytes.toString('latin1', 0, Math.min(nl, 80))})`);
  let at = Math.ceil((nl + 1) / 8) * 8;
  const next = (length: number): Float64Array => {
    const c = new Float64Array(bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + length * 8));
    at += length * 8;
    return c;
  };
  const [time, open, high, low, close, volume] = BAR_COLUMNS.map(() => next(h.bars)) as [
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
    Float64Array,
  ];
  const benchmark = h.benchmark !== null ? next(h.benchmark) : undefined;
  const plots = h.plots.map((p) => ({ name: p.name, panel: p.panel, symbol: p.symbol, values: next(p.length) }));
  if (at !== bytes.length) throw new Error(`a saved chart of ${bytes.length} bytes where its header says ${at}`);
  return {
    bars: barSeries({ time, open, high, low, close, volume }),
    ...(benchmark !== undefined ? { benchmark } : {}),
    plots,
  };
}

function chartFromV1(c: ChartJsonV1): Chart {
  const col = (k: (typeof BAR_COLUMNS)[number]) => fromF64(c.bars[k]);
  return {
    bars: barSeries({
      time: col('time'),
      open: col('open'),
      high: col('high'),
      low: col('low'),
      close: col('close'),
      volume: col('volume'),
    }),
    ...(c.benchmark !== null ? { benchmark: fromF64(c.benchmark) } : {}),
    plots: c.plots.map((p) => ({ name: p.name, panel: p.panel, symbol: p.symbol, values: fromF64(p.values) })),
  };
}

/**
 * A run on its way to the store. Made as soon as the run is done: its chart compresses on a pool
 * thread meanwhile, and the caller that prints the result JSON (`keel backtest --json`) passes the
 * chunks through `push`, so the result is serialised once for both; `save` waits for both and
 * writes the run (serialising the result itself when nothing was pushed).
 */
export class PendingBacktest {
  private readonly chart: Promise<Uint8Array>;
  private result: Compressor | undefined;

  constructor(readonly run: BacktestRun) {
    this.chart = pack(chartBytes(run.result, run.bars));
    // Awaited in save(); a run that fails before it must not end as an unhandled rejection.
    this.chart.catch(() => {});
  }

  /** One chunk of the result JSON (resultJsonChunks), in order: every chunk, or none. */
  push(chunk: Uint8Array): Promise<void> {
    this.result ??= new Compressor();
    return this.result.push(chunk);
  }

  async save(store: Store): Promise<BacktestRecord> {
    const result = this.result ?? new Compressor();
    if (this.result === undefined)
      for (const chunk of resultJsonChunks(this.run.result, { reuseBuffer: true })) await result.push(chunk);
    return store.backtests.save({ ...describeRun(this.run), result: await result.done(), chart: await this.chart });
  }

  /**
   * Opens the store at `url` (default the CLI's), saves the run, closes it; returns the run's id.
   * SQLite's commit is not fsynced on its own (`synchronous=NORMAL`, docs/store.md): the next
   * checkpoint syncs it, which the close right after it runs when no other process has the store
   * open. A power cut before then loses that run, never the store: a kept run is not an order.
   */
  async saveAt(url: string | undefined): Promise<number> {
    const store = await openStore({ url: url ?? DEFAULT_STORE_URL, synchronous: 'NORMAL' });
    try {
      return (await this.save(store)).id;
    } finally {
      await store.close();
    }
  }
}

/** A run's record as listed, shown and compared. */
function describeRun(run: BacktestRun): Omit<NewBacktest, 'result' | 'chart'> {
  const r = run.result;
  const feed = r.feeds[0];
  const risk = r.risk === null ? null : riskConfigInput(r.risk);
  return {
    strategy: r.strategy,
    params: r.params,
    symbols: r.pairs.map((p) => p.symbol),
    timeframe: feed?.timeframe ?? '',
    firstBar: feed?.first ?? Number.NaN,
    lastBar: feed?.last ?? Number.NaN,
    settings: { ...run.settings, ...(risk !== null ? { risk } : {}) },
    metrics: metricsToJson(r.metrics),
    pairs: r.pairs.map(pairToJson),
    summary: run.summary,
  };
}

/** Saves a run; returns its record (its id is what `keel backtests show` takes). */
export function saveBacktest(store: Store, run: BacktestRun): Promise<BacktestRecord> {
  return new PendingBacktest(run).save(store);
}

export class BacktestNotFoundError extends Error {
  constructor(readonly id: string) {
    super(`no backtest ${id} in the store (keel backtests list shows them)`);
    this.name = 'BacktestNotFoundError';
  }
}

/** A run id as the user typed it: a whole number >= 1. */
export function backtestId(text: string): number {
  const id = Number(text);
  if (!(Number.isInteger(id) && id >= 1)) throw new Error(`"${text}" is not a backtest id (1, 2, ...)`);
  return id;
}

export async function getBacktest(store: Store, id: number): Promise<BacktestRecord> {
  const r = await store.backtests.get(id);
  if (r === undefined) throw new BacktestNotFoundError(String(id));
  return r;
}

export function listBacktests(store: Store, opts: { readonly limit?: number } = {}): Promise<BacktestRecord[]> {
  return store.backtests.list(opts);
}

/** The run's result JSON, as `keel backtest --json` printed it. */
export async function backtestResultJson(store: Store, id: number): Promise<Uint8Array> {
  const a = await store.backtests.artifacts(id);
  if (a === undefined) throw new BacktestNotFoundError(String(id));
  return new Uint8Array(unpack(a.result));
}

/** The run read back: its record, its result (see resultFromJson) and the bars it charts. */
export async function loadBacktest(
  store: Store,
  id: number,
): Promise<{ record: BacktestRecord; result: BacktestResult; bars: BarSeries }> {
  const record = await getBacktest(store, id);
  const a = await store.backtests.artifacts(id);
  if (a === undefined) throw new BacktestNotFoundError(String(id));
  const { bars, benchmark, plots } = chartFrom(unpack(a.chart));
  const result = resultFromJson(JSON.parse(unpack(a.result).toString('utf8')), {
    ...(benchmark !== undefined ? { benchmarkValues: benchmark } : {}),
    plots,
  });
  return { record, result, bars };
}

const SPAN = (r: BacktestRecord) =>
  Number.isFinite(r.firstBar) ? `${isoUtc(r.firstBar).slice(0, 16)} .. ${isoUtc(r.lastBar).slice(0, 16)}` : '(no bars)';

const show = (k: keyof Metrics, v: number): string => formatMetric(METRIC_SPECS[k].kind, v);

const metric = (r: BacktestRecord, k: keyof Metrics): number => {
  const v = (r.metrics as Record<string, number | null> | null)?.[k];
  return v === null || v === undefined ? Number.NaN : v;
};

/** The runs as a table: id, when, strategy, markets, timeframe, span, return, trades. */
export function formatBacktestList(runs: readonly BacktestRecord[]): string {
  if (runs.length === 0) return 'no backtests saved yet (every keel backtest saves one)';
  const head = ['id', 'saved (UTC)', 'strategy', 'markets', 'tf', 'bars from .. to', 'return', 'trades'];
  const rows = runs.map((r) => [
    String(r.id),
    isoUtc(r.createdAt).slice(0, 16).replace('T', ' '),
    r.strategy,
    r.symbols.join(','),
    r.timeframe,
    SPAN(r),
    show('totalReturn', metric(r, 'totalReturn')),
    show('tradeCount', metric(r, 'tradeCount')),
  ]);
  return table(head, rows, [0, 6, 7]);
}

/** `show`: how the run was set up, then its summary as the terminal showed it. */
export function formatBacktestShow(r: BacktestRecord): string {
  const s = r.settings as Partial<BacktestSettings> & { risk?: { risk: string[]; sizing: string[] } };
  const lines = [
    `backtest ${r.id}, saved ${isoUtc(r.createdAt)}`,
    `strategy ${r.strategy}, params ${JSON.stringify(r.params)}`,
    `markets ${r.symbols.join(', ')} ${r.timeframe}, ${SPAN(r)}`,
  ];
  if (s?.data) for (const d of s.data) lines.push(`  ${d.symbol}: ${d.source}`);
  const set: string[] = [];
  if (s?.cash !== undefined) set.push(`cash ${s.cash}`);
  if (s?.fee !== undefined) set.push(`fee ${s.fee}`);
  if (s?.makerFee !== undefined) set.push(`maker fee ${s.makerFee}`);
  if (s?.slippageBps !== undefined) set.push(`slippage ${s.slippageBps} bps`);
  if (s?.participation !== undefined) set.push(`participation ${s.participation}`);
  if (s?.latencyBars !== undefined) set.push(`latency ${s.latencyBars} bars`);
  if (s?.maxOpenTrades !== undefined) set.push(`max open trades ${s.maxOpenTrades}`);
  if (s?.from !== undefined) set.push(`from ${isoUtc(s.from)}`);
  if (s?.to !== undefined) set.push(`to ${isoUtc(s.to)}`);
  if (set.length > 0) lines.push(`settings: ${set.join(', ')}`);
  return `${lines.join('\n')}\n\n${r.summary}`;
}

/** One row per metric (the report's order), one column per run. */
export interface BacktestComparison {
  readonly ids: readonly number[];
  readonly rows: readonly {
    readonly metric: keyof Metrics;
    readonly label: string;
    readonly values: readonly number[];
  }[];
}

export function compareBacktests(runs: readonly BacktestRecord[]): BacktestComparison {
  return {
    ids: runs.map((r) => r.id),
    rows: METRIC_KEYS.map((k) => ({ metric: k, label: METRIC_SPECS[k].label, values: runs.map((r) => metric(r, k)) })),
  };
}

export function formatComparison(runs: readonly BacktestRecord[]): string {
  const c = compareBacktests(runs);
  const head = ['', ...runs.map((r) => `#${r.id} ${r.strategy}`)];
  const about = [
    ['markets', ...runs.map((r) => `${r.symbols.join(',')} ${r.timeframe}`)],
    ['bars from .. to', ...runs.map(SPAN)],
    ['params', ...runs.map((r) => JSON.stringify(r.params))],
  ];
  const rows = c.rows.map((row) => [row.label, ...row.values.map((v) => show(row.metric, v))]);
  return table(
    head,
    [...about, ...rows],
    runs.map((_, i) => i + 1),
  );
}

function table(head: readonly string[], rows: readonly (readonly string[])[], right: readonly number[]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    r
      .map((c, i) => (right.includes(i) ? c.padStart(w[i] as number) : c.padEnd(w[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
