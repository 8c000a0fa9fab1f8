import { createGzip, gunzipSync } from 'node:zlib';
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
import { type BacktestRecord, DEFAULT_STORE_URL, openStore, type Store } from '@keel/store';

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
 * Gzip of bytes given chunk by chunk: the result JSON as it streams (to stdout, say), so that a
 * run printed with --json is serialised once for both. `push` resolves once zlib has taken the
 * chunk: a producer that awaits it never queues more than a chunk ahead (a million-bar result is
 * 111 MB of JSON; queued whole, it tripled the run's memory).
 */
export class Compressor {
  // Level 1: a few times faster than the default for a little more room; the run waits for it.
  private readonly z = createGzip({ level: 1 });
  private readonly out: Buffer[] = [];
  private readonly ended: Promise<void>;

  constructor() {
    this.z.on('data', (c: Buffer) => this.out.push(c));
    this.ended = new Promise<void>((resolve, reject) => {
      this.z.on('end', resolve);
      this.z.on('error', reject);
    });
  }

  /** Takes a copy: the chunk may be a view of a buffer its producer reuses. */
  push(chunk: Uint8Array): Promise<void> {
    return new Promise<void>((resolve, reject) => this.z.write(Buffer.from(chunk), (e) => (e ? reject(e) : resolve())));
  }

  async done(): Promise<Uint8Array> {
    this.z.end();
    await this.ended;
    return new Uint8Array(Buffer.concat(this.out));
  }
}

async function gzipChunks(chunks: Iterable<Uint8Array>): Promise<Uint8Array> {
  const c = new Compressor();
  for (const chunk of chunks) await c.push(chunk);
  return c.done();
}

const BAR_COLUMNS = ['time', 'open', 'high', 'low', 'close', 'volume'] as const;

const f64 = (a: Float64Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const fromF64 = (b64: string): Float64Array => {
  const b = Buffer.from(b64, 'base64');
  return new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

/** What the report draws that the result JSON leaves out: the bars, the benchmark's curve, the plots. */
interface ChartJson {
  readonly bars: { readonly [K in (typeof BAR_COLUMNS)[number]]: string };
  readonly benchmark: string | null;
  readonly plots: readonly {
    readonly name: string;
    readonly panel: string;
    readonly symbol: string;
    readonly values: string;
  }[];
}

/**
 * The chart as JSON text (ChartJson), given a piece at a time: one column's base64 at once, never
 * the whole (a million bars are 64 MB of base64 text).
 */
function* chartChunks(r: BacktestResult, s: BarSeries): Generator<Uint8Array> {
  const n = s.length;
  const text = (t: string) => Buffer.from(t, 'utf8');
  yield text('{"bars":{');
  for (const [i, c] of BAR_COLUMNS.entries()) {
    yield text(`${i > 0 ? ',' : ''}${JSON.stringify(c)}:"`);
    yield text(f64(s[c].subarray(0, n)));
    yield text('"');
  }
  yield text('},"benchmark":');
  yield text(r.benchmark !== undefined ? `"${f64(r.benchmark.values)}"` : 'null');
  yield text(',"plots":[');
  for (const [i, p] of (r.plots ?? []).entries()) {
    const head = JSON.stringify({ name: p.name, panel: p.panel, symbol: p.symbol }).slice(0, -1);
    yield text(`${i > 0 ? ',' : ''}${head},"values":"`);
    yield text(f64(p.values));
    yield text('"}');
  }
  yield text(']}');
}

function chartFrom(bytes: Uint8Array): { bars: BarSeries; benchmark?: Float64Array; plots: PlotColumn[] } {
  const c = JSON.parse(Buffer.from(bytes).toString('utf8')) as ChartJson;
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
 * Saves a run; returns its record (its id is what `keel backtests show` takes). `resultGz`: the
 * result JSON already compressed (a Compressor fed the chunks the caller printed), else it is
 * serialised here.
 */
export async function saveBacktest(store: Store, run: BacktestRun, resultGz?: Uint8Array): Promise<BacktestRecord> {
  const r = run.result;
  const feed = r.feeds[0];
  const risk = r.risk === null ? null : riskConfigInput(r.risk);
  return store.backtests.save({
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
    result: resultGz ?? (await gzipChunks(resultJsonChunks(r, { reuseBuffer: true }))),
    chart: await gzipChunks(chartChunks(r, run.bars)),
  });
}

/** Opens the store at `url` (default the CLI's), saves the run, closes it; returns the run's id. */
export async function saveBacktestAt(
  url: string | undefined,
  run: BacktestRun,
  resultGz?: Uint8Array,
): Promise<number> {
  const store = await openStore({ url: url ?? DEFAULT_STORE_URL });
  try {
    return (await saveBacktest(store, run, resultGz)).id;
  } finally {
    await store.close();
  }
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
  return new Uint8Array(gunzipSync(a.result));
}

/** The run read back: its record, its result (see resultFromJson) and the bars it charts. */
export async function loadBacktest(
  store: Store,
  id: number,
): Promise<{ record: BacktestRecord; result: BacktestResult; bars: BarSeries }> {
  const record = await getBacktest(store, id);
  const a = await store.backtests.artifacts(id);
  if (a === undefined) throw new BacktestNotFoundError(String(id));
  const { bars, benchmark, plots } = chartFrom(new Uint8Array(gunzipSync(a.chart)));
  const result = resultFromJson(JSON.parse(gunzipSync(a.result).toString('utf8')), {
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
