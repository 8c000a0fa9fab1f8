import {
  type BrotliOptions,
  brotliDecompressSync,
  createBrotliCompress,
  gunzipSync,
  constants as zlibConstants,
} from 'node:zlib';
import type { BacktestResult, BarSeries, Metrics } from '@keel/core';
import { assertNever, isoUtc, riskConfigInput } from '@keel/core';
import {
  formatMetric,
  METRIC_KEYS,
  METRIC_SPECS,
  metricsToJson,
  pairToJson,
  resultFromJson,
  resultJsonChunks,
} from '@keel/report';
import {
  type BacktestRecord,
  type BacktestsRemoved,
  BarsNotStoredError,
  DEFAULT_STORE_URL,
  type NewBacktest,
  openStore,
  type Store,
  type StoreSpace,
} from '@keel/store';
import { barColumns, barsHash, chartBytes, chartFrom } from './backtest-chart.ts';

/**
 * Backtest runs kept in the store: every `keel backtest` saves one, `keel backtests` lists, shows,
 * compares and deletes them. Plain functions over a Store (a server calls the same ones); the CLI only
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
  /** A perpetual's run: its leverage, margin and position mode, and where funding and mark came from. */
  readonly futures?: {
    readonly leverage: number;
    readonly marginMode: string;
    readonly positionMode?: string;
    readonly funding?: string;
    readonly mark?: string;
  };
  /** Each market and where its bars came from (a file, or the store's series). */
  readonly data: readonly { readonly symbol: string; readonly source: string }[];
}

export interface BacktestRun {
  readonly result: BacktestResult;
  /** The primary market's bars, as run (the report's price chart; kept once per content, apart from the run). */
  readonly bars: BarSeries;
  readonly settings: BacktestSettings;
  /** The summary as the terminal showed it. */
  readonly summary: string;
}

/**
 * How a run's result, chart and bars are compressed in the store: Brotli at quality 1, behind one byte
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

/** Bytes on their way through pack: `packed` once done; `cancel` stops the work (`packed` then never settles). */
interface Packing {
  readonly packed: Promise<Uint8Array>;
  cancel(): void;
}

/** Compresses on Node's thread pool (Brotli quality 1, behind the BROTLI byte). */
function pack(bytes: Uint8Array): Packing {
  const z = createBrotliCompress({
    ...BROTLI_FAST,
    params: { ...BROTLI_FAST.params, [zlibConstants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  });
  const out: Buffer[] = [Buffer.of(BROTLI)];
  z.on('data', (c: Buffer) => out.push(c));
  const packed = new Promise<Uint8Array>((resolve, reject) => {
    z.on('end', () => resolve(new Uint8Array(Buffer.concat(out))));
    z.on('error', reject);
  });
  z.end(bytes);
  return { packed, cancel: () => z.destroy() };
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

/**
 * A run on its way to the store. Made as soon as the run is done: its chart and its bars compress
 * on pool threads meanwhile (the bars' compression is dropped when the store holds them already),
 * and the caller that prints the result JSON (`keel backtest --json`) passes the chunks through
 * `push`, so the result is serialised once for both; `save` waits for them and writes the run
 * (serialising the result itself when nothing was pushed).
 */
export class PendingBacktest {
  private readonly chart: Promise<Uint8Array>;
  private result: Compressor | undefined;
  /** The run's bar columns, their hash, and their compression (cancelled when the store holds them). */
  private readonly barBytes: Buffer;
  private readonly barsHash: string;
  private readonly bars: Packing;

  constructor(readonly run: BacktestRun) {
    this.chart = pack(chartBytes(run.result, run.bars.length)).packed;
    this.barBytes = barColumns(run.bars);
    this.barsHash = barsHash(this.barBytes);
    // Compressed at once, as the chart is, in case the store lacks them; cancelled when it has them
    // (a run on the same bars as an earlier one: the usual loop).
    this.bars = pack(this.barBytes);
    // Awaited in save(); a run that fails before it must not end as an unhandled rejection.
    this.chart.catch(() => {});
    this.bars.packed.catch(() => {});
  }

  /** One chunk of the result JSON (resultJsonChunks), in order: every chunk, or none. */
  push(chunk: Uint8Array): Promise<void> {
    this.result ??= new Compressor();
    return this.result.push(chunk);
  }

  async save(store: Store): Promise<BacktestRecord> {
    const bars = { hash: this.barsHash, count: this.run.bars.length };
    const stored = await store.backtests.hasBars(bars.hash);
    if (stored) this.bars.cancel();
    const result = this.result ?? new Compressor();
    if (this.result === undefined)
      for (const chunk of resultJsonChunks(this.run.result, { reuseBuffer: true })) await result.push(chunk);
    const run = { ...describeRun(this.run), result: await result.done(), chart: await this.chart };
    if (!stored) return store.backtests.save({ ...run, bars: { ...bars, data: await this.bars.packed } });
    try {
      return await store.backtests.save({ ...run, bars });
    } catch (e) {
      // The run that stored them was removed between the look and the save.
      if (!(e instanceof BarsNotStoredError)) throw e;
      return store.backtests.save({ ...run, bars: { ...bars, data: await pack(this.barBytes).packed } });
    }
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
function describeRun(run: BacktestRun): Omit<NewBacktest, 'result' | 'chart' | 'bars'> {
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
  /** `id`: the id, or several, comma-separated (`count` of them). */
  constructor(
    readonly id: string,
    count = 1,
  ) {
    super(`no backtest${count === 1 ? '' : 's'} ${id} in the store (keel backtests list shows them)`);
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
  let columns: Buffer | undefined;
  if (a.bars !== undefined) {
    columns = unpack(a.bars.data);
    if (barsHash(columns) !== a.bars.hash)
      throw new Error(`backtest ${id}: its stored bars do not match their hash ${a.bars.hash} (the store is damaged)`);
  }
  const { bars, benchmark, plots } = chartFrom(unpack(a.chart), columns);
  const result = resultFromJson(JSON.parse(unpack(a.result).toString('utf8')), {
    ...(benchmark !== undefined ? { benchmarkValues: benchmark } : {}),
    plots,
  });
  return { record, result, bars };
}

/** What a delete or prune took out (or, dry run, would), and the store's room after it. */
export interface BacktestsRemoval extends BacktestsRemoved {
  readonly space: StoreSpace;
}

export interface RemoveOptions {
  readonly dryRun?: boolean;
  /** SQLite: VACUUM the whole file after, when it frees pages only that way (see Store.reclaim). */
  readonly vacuum?: boolean;
}

async function afterRemoval(store: Store, removed: BacktestsRemoved, opts: RemoveOptions): Promise<BacktestsRemoval> {
  const space = removed.dryRun ? await store.space() : await store.reclaim({ vacuum: opts.vacuum === true });
  return { ...removed, space };
}

/**
 * Deletes the runs, and the bars no run kept refers to any more; gives their room back to the file
 * system (Store.reclaim). Any id not in the store: BacktestNotFoundError naming every such id, and
 * nothing deleted.
 */
export async function deleteBacktests(
  store: Store,
  ids: readonly number[],
  opts: RemoveOptions = {},
): Promise<BacktestsRemoval> {
  const r = await store.backtests.remove(ids, { dryRun: opts.dryRun === true });
  if (r.kind === 'missing') throw new BacktestNotFoundError(r.ids.join(', '), r.ids.length);
  return afterRemoval(store, r, opts);
}

export interface PruneOptions extends RemoveOptions {
  /** Keep the newest `keep` runs. */
  readonly keep?: number;
  /** Delete runs saved longer ago than this (ms). */
  readonly olderThanMs?: number;
}

/**
 * Deletes the runs beyond the newest `keep` and/or older than `olderThanMs` (both given: a run
 * must be both to go), as deleteBacktests does.
 */
export async function pruneBacktests(store: Store, opts: PruneOptions): Promise<BacktestsRemoval> {
  const r = await store.backtests.prune({
    ...(opts.keep !== undefined ? { keep: opts.keep } : {}),
    ...(opts.olderThanMs !== undefined ? { olderThanMs: opts.olderThanMs } : {}),
    dryRun: opts.dryRun === true,
  });
  return afterRemoval(store, r, opts);
}

const MiB = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MB`;

/** Ids as ranges: 1-3, 7, 9-12. */
export function idRanges(ids: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < ids.length; ) {
    let j = i;
    while (j + 1 < ids.length && (ids[j + 1] as number) === (ids[j] as number) + 1) j++;
    out.push(i === j ? String(ids[i]) : `${ids[i]}-${ids[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}

/** What a delete or prune did (or would do), and how big the store is after. */
export function formatRemoval(r: BacktestsRemoval): string {
  const n = r.ids.length;
  const runs = `${n} backtest run${n === 1 ? '' : 's'}`;
  const lines: string[] = [];
  if (n === 0) lines.push(r.dryRun ? 'would delete nothing: no run matches' : 'deleted nothing: no run matches');
  else {
    const bars = r.barSets > 0 ? `, with ${r.barSets} set${r.barSets === 1 ? '' : 's'} of bars no other run uses` : '';
    lines.push(`${r.dryRun ? 'would delete' : 'deleted'} ${runs} (${idRanges(r.ids)})${bars}: about ${MiB(r.bytes)}`);
  }
  const s = r.space;
  switch (s.kind) {
    case 'sqlite-file': {
      const size = `store ${s.file}: ${MiB(s.fileBytes + s.walBytes)}`;
      if (s.freeBytes === 0) lines.push(size);
      else if (s.autoVacuum === 'incremental')
        lines.push(`${size}, ${MiB(s.freeBytes)} of it free pages (given back at the next delete or prune)`);
      else
        lines.push(
          `${size}, ${MiB(s.freeBytes)} of it free pages that later saves reuse; --vacuum gives them back (rewrites the whole file once: as long as copying it, as much free disk again, and bots writing to this store wait meanwhile)`,
        );
      break;
    }
    case 'sqlite-memory':
      break;
    case 'postgres':
      lines.push(`the store's backtest tables: ${MiB(s.backtestBytes)} (PostgreSQL reuses deleted rows' room)`);
      break;
    default:
      return assertNever(s);
  }
  return lines.join('\n');
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
  const set = settingPairs(r).map(([k, v]) => `${k} ${v}`);
  if (set.length > 0) lines.push(`settings: ${set.join(', ')}`);
  return `${lines.join('\n')}\n\n${r.summary}`;
}

/**
 * A run's settings as [name, value] pairs, the ones it was given (`show`'s settings line, a row
 * each in `compare`): the fee model, the fills, the range, risk and futures settings.
 */
function settingPairs(r: BacktestRecord): [string, string][] {
  const s = r.settings as Partial<BacktestSettings> & {
    risk?: { risk?: string[]; sizing?: string[]; exits?: Record<string, string> };
  };
  const out: [string, string][] = [];
  if (s?.cash !== undefined) out.push(['cash', String(s.cash)]);
  if (s?.fee !== undefined) out.push(['fee', String(s.fee)]);
  if (s?.makerFee !== undefined) out.push(['maker fee', String(s.makerFee)]);
  if (s?.slippageBps !== undefined) out.push(['slippage', `${s.slippageBps} bps`]);
  if (s?.participation !== undefined) out.push(['participation', String(s.participation)]);
  if (s?.latencyBars !== undefined) out.push(['latency', `${s.latencyBars} bars`]);
  if (s?.maxOpenTrades !== undefined) out.push(['max open trades', String(s.maxOpenTrades)]);
  if (s?.from !== undefined) out.push(['from', isoUtc(s.from)]);
  if (s?.to !== undefined) out.push(['to', isoUtc(s.to)]);
  const risk = [
    ...(s?.risk?.risk ?? []),
    ...(s?.risk?.sizing ?? []).map((x) => `sizing ${x}`),
    ...Object.entries(s?.risk?.exits ?? {}).map(([k, v]) => `${k}=${v}`),
  ];
  if (risk.length > 0) out.push(['risk', risk.join(' ')]);
  const f = s?.futures;
  if (f !== undefined) {
    out.push(['futures', `${f.leverage}x ${f.marginMode}${f.positionMode === 'hedge' ? ' hedge' : ''}`]);
    if (f.funding !== undefined) out.push(['funding', f.funding]);
    if (f.mark !== undefined) out.push(['mark', f.mark]);
  }
  return out;
}

/** One row per metric (the report's order), one column per run. */
export interface BacktestComparison {
  readonly ids: readonly number[];
  /** Every setting any run was given, with each run's value (null: not given to that run). */
  readonly settings: readonly { readonly name: string; readonly values: readonly (string | null)[] }[];
  readonly rows: readonly {
    readonly metric: keyof Metrics;
    readonly label: string;
    readonly values: readonly number[];
  }[];
}

export function compareBacktests(runs: readonly BacktestRecord[]): BacktestComparison {
  // Every setting any of the runs was given, so that two runs that differ only in their fee or
  // their leverage are told apart.
  const pairs = runs.map((r) => new Map(settingPairs(r)));
  const names = [...new Set(pairs.flatMap((m) => [...m.keys()]))];
  return {
    ids: runs.map((r) => r.id),
    settings: names.map((name) => ({ name, values: pairs.map((m) => m.get(name) ?? null) })),
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
  for (const x of c.settings) about.push([x.name, ...x.values.map((v) => v ?? '-')]);
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
