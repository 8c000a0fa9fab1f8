import type { Timeframe } from '@keel/core';
import { timeframeEnd } from '@keel/core';
import {
  computeFeatures,
  type FeatureFrame,
  type FeatureQcReport,
  featureQc,
  type NormaliseOptions,
  normaliseFeatures,
} from './features/index.ts';
import type { FillPolicy, GateMode, QuarantinedBar } from './qc.ts';
import { resampleBars } from './resample.ts';
import { allocSeries, DataError, type FullSeries, SERIES_COLUMNS, type SeriesKey, seriesId } from './schema.ts';
import type { BarBatch, BarSource, SourceHooks } from './sources/port.ts';
import { completeBars, type DataStore, type ImportResult, type RawSpan, type StoredRead } from './store.ts';

/** Concatenates batches in order (QC sorts nothing: out-of-order rows are quarantined). */
export function concatBatches(batches: readonly BarBatch[]): {
  series: FullSeries;
  lines?: Int32Array;
  rows?: Int32Array;
  quarantined: QuarantinedBar[];
  rowsIn: number;
} {
  const n = batches.reduce((a, b) => a + b.series.length, 0);
  if (batches.length === 1) {
    const b = batches[0] as BarBatch;
    return {
      series: b.series,
      ...(b.lines ? { lines: b.lines } : {}),
      ...(b.rows ? { rows: b.rows } : {}),
      quarantined: [...b.quarantined],
      rowsIn: b.rowsIn - b.quarantined.length,
    };
  }
  const out = allocSeries(n);
  let at = 0;
  const quarantined: QuarantinedBar[] = [];
  let rowsIn = 0;
  for (const b of batches) {
    for (const c of SERIES_COLUMNS) out[c].set(b.series[c], at);
    at += b.series.length;
    quarantined.push(...b.quarantined);
    rowsIn += b.rowsIn - b.quarantined.length;
  }
  return { series: out, quarantined, rowsIn };
}

export interface IngestOptions {
  readonly fill?: FillPolicy;
  readonly hooks?: SourceHooks;
  /** Label for reports (default: the source name). */
  readonly label?: string;
  /** refuse: a row that breaks a data rule refuses the import (ImportOptions.badData; default drop). */
  readonly badData?: GateMode;
}

export interface IngestResult extends ImportResult {
  readonly raw: readonly { sha256: string; url: string; rows: number; servedBy: string }[];
  readonly servedBy: readonly string[];
}

/**
 * Source -> raw zone -> QC -> processed zone, as one import (one QC report). Every batch's bytes
 * are stored unmodified first; lineage records which raw objects fed which month partitions.
 */
export async function ingest(
  store: DataStore,
  key: SeriesKey,
  source: BarSource,
  range: { since: number; until: number },
  opts: IngestOptions = {},
): Promise<IngestResult> {
  const batches: BarBatch[] = [];
  const spans: RawSpan[] = [];
  const raws: { sha256: string; url: string; rows: number; servedBy: string }[] = [];
  for await (const b of source.fetch(
    { market: key, timeframe: key.timeframe, since: range.since, until: range.until },
    opts.hooks,
  )) {
    const rec = store.putRaw(b.raw.bytes, {
      source: `${source.kind}:${b.servedBy}`,
      url: b.raw.url,
      name: b.raw.name,
      rows: b.rowsIn,
    });
    const t = b.series.time;
    spans.push({
      sha256: rec.sha256,
      first: t.length > 0 ? (t[0] as number) : Number.POSITIVE_INFINITY,
      last: t.length > 0 ? (t[t.length - 1] as number) : Number.NEGATIVE_INFINITY,
    });
    raws.push({ sha256: rec.sha256, url: b.raw.url, rows: b.rowsIn, servedBy: b.servedBy });
    batches.push(b);
  }
  if (batches.length === 0) {
    throw new DataError('no-data', `${source.name} returned no bars for ${seriesId(key)} in the requested range`);
  }
  const all = concatBatches(batches);
  const file = batches.length === 1 ? batches[0]?.file : undefined;
  const res = store.importBars(key, all.series, {
    sourceKind: source.kind,
    rawInputs: spans,
    source: opts.label ?? source.name,
    priorQuarantine: all.quarantined,
    priorRowsIn: all.quarantined.length,
    ...(all.lines ? { lines: all.lines } : {}),
    ...(all.rows ? { rows: all.rows } : {}),
    ...(file !== undefined ? { file } : {}),
    ...(opts.fill ? { fill: opts.fill } : {}),
    ...(opts.badData ? { badData: opts.badData } : {}),
  });
  return { ...res, raw: raws, servedBy: [...new Set(batches.map((b) => b.servedBy))] };
}

/** Incremental download: starts after the last stored bar (or at `since` when nothing is stored). */
export async function download(
  store: DataStore,
  key: SeriesKey,
  source: BarSource,
  range: { since: number; until: number },
  opts: IngestOptions = {},
): Promise<IngestResult | null> {
  const last = store.lastBarTime(key);
  const since = last !== null && last >= range.since ? timeframeEnd(key.timeframe, last) : range.since;
  if (since >= range.until) return null;
  return ingest(store, key, source, { since, until: range.until }, opts);
}

/**
 * Resamples a stored series to a coarser timeframe and stores it (source rank 'derived').
 * Partial bars (period not fully covered by the stored span) are not stored; they are counted.
 */
export function resampleStored(
  store: DataStore,
  base: SeriesKey,
  to: Timeframe,
): { result: ImportResult | null; bars: number; partialSkipped: number } {
  const s = store.readBars(base);
  const r = resampleBars(s, base.timeframe, to);
  const keep: number[] = [];
  for (let i = 0; i < r.series.length; i++) if (r.partial[i] === 0) keep.push(i);
  const out = allocSeries(keep.length);
  for (const c of SERIES_COLUMNS)
    for (let k = 0; k < keep.length; k++) out[c][k] = r.series[c][keep[k] as number] as number;
  const inputs = store.partitions(base).map((p) => `processed:${p.file}`);
  if (out.length === 0) return { result: null, bars: 0, partialSkipped: r.series.length };
  const result = store.importBars({ ...base, timeframe: to }, out, {
    sourceKind: 'derived',
    rawInputs: inputs,
    source: `resample ${seriesId(base)} -> ${to}`,
  });
  return { result, bars: out.length, partialSkipped: r.series.length - keep.length };
}

export interface BuildFeaturesOptions {
  readonly set?: string;
  readonly reference?: SeriesKey;
  readonly normalise?: NormaliseOptions;
  readonly range?: { from?: number; to?: number };
}

/** Computes the feature set for a stored series and writes it to the features zone. */
export function buildFeatures(
  store: DataStore,
  key: SeriesKey,
  opts: BuildFeaturesOptions = {},
): { frame: FeatureFrame; qc: FeatureQcReport; months: string[] } {
  const read = store.readBarsAt(key, opts.range ?? {});
  const refRead = opts.reference ? store.readBarsAt(opts.reference, opts.range ?? {}) : undefined;
  const s = completeBars(read);
  const ref = refRead ? completeBars(refRead) : undefined;
  let frame = computeFeatures(s, { timeframe: key.timeframe, ...(ref ? { reference: ref } : {}) });
  if (opts.normalise) frame = normaliseFeatures(frame, opts.normalise);
  const qc = featureQc(frame);
  const used = (k: SeriesKey, r: StoredRead) =>
    r.sources.flatMap((x) => store.partitions({ ...k, timeframe: x.timeframe }));
  const inputs = [...used(key, read), ...(opts.reference && refRead ? used(opts.reference, refRead) : [])].map(
    (p) => `processed:${p.file}`,
  );
  const months = store.writeFeatures(
    key,
    opts.set ?? 'default',
    frame.time,
    frame.defs.map((d, k) => ({ name: d.name, values: frame.columns[k] as Float64Array })),
    inputs,
  );
  return { frame, qc, months };
}
