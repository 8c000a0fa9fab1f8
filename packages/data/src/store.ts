import { createHash } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  writeFileSync,
  writevSync,
} from 'node:fs';
import path from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { BarSeries, Clock, Timeframe } from '@keel/core';
import { isoUtc, timeframeEnd, timeframeMs, timeframeStart } from '@keel/core';
import { KNOWN_MAINTENANCE, type MaintenanceWindow, maintenanceFor } from './maintenance.ts';
import { type ColumnLocation, readColumn, writeParquet } from './parquet.ts';
import {
  type FillPolicy,
  findGaps,
  formatDataGate,
  type Gap,
  type GateMode,
  gateOf,
  type QcReport,
  type QcResult,
  type QuarantinedBar,
  validateBars,
} from './qc.ts';
import { resampleBars } from './resample.ts';
import {
  allocSeries,
  copyRows,
  DataError,
  type FullSeries,
  PROCESSED_COLUMNS,
  PROCESSED_SCHEMA_VERSION,
  SERIES_COLUMNS,
  type SeriesKey,
  SOURCE_RANK,
  type SourceKind,
  seriesId,
  sliceFull,
} from './schema.ts';

/**
 * The market-data store: three zones under one folder.
 *
 *   raw/objects/<sha256[0:2]>/<sha256>-<name>   downloaded bytes, never modified (content-addressed)
 *   raw/manifest.jsonl                          one line per raw object: source, URL, sha256, fetched at, rows
 *   processed/exchange=<e>/market=<m>/symbol=<s>/timeframe=<tf>/month=<YYYY-MM>/part-v<NNNN>.parquet
 *   processed/_catalog.json                     partitions, versions, row counts and lineage (raw sha256s)
 *   history/...                                 superseded processed/features versions (same layout)
 *   features/exchange=.../timeframe=<tf>/set=<name>/month=<YYYY-MM>/part-v<NNNN>.parquet
 *   reports/<import id>.json                    the QC report of each import
 *
 * Processed files hold the canonical schema (schema.ts); a glob over processed/** sees exactly the
 * current version of every partition, so DuckDB can query the zone directly with hive_partitioning.
 */

export interface RawRecord {
  readonly sha256: string;
  readonly source: string;
  readonly url: string;
  readonly name: string;
  /** Path relative to the data folder. */
  readonly path: string;
  readonly fetchedAt: string;
  readonly bytes: number;
  readonly rows: number | null;
}

export interface PartitionEntry {
  readonly month: string;
  readonly file: string;
  readonly version: number;
  readonly rows: number;
  readonly first: number;
  readonly last: number;
  readonly bytes: number;
  readonly columns: readonly ColumnLocation[];
  /** sha256 of every raw object whose bars are in this partition (lineage). */
  readonly inputs: readonly string[];
  readonly writtenAt: string;
  readonly schemaVersion: number;
}

/** Bars of a market at one timeframe, as readBarsAt resolved them from the stored series. */
export interface StoredRead {
  readonly series: FullSeries;
  /** 1 where the bar is partial: resampled from a finer series that does not cover its whole period. */
  readonly partial: Uint8Array;
  /** 1 where the bar was synthesised by a gap-fill policy at import, or resampled from such bars. */
  readonly filled: Uint8Array;
  /** The stored series used (the timeframe itself first, then finer ones resampled), with the bars each gave. */
  readonly sources: readonly { readonly timeframe: Timeframe; readonly bars: number }[];
  /** The finest timeframe read (the asked one when only its own series was used). */
  readonly from: Timeframe;
  /** Rows refused at import (per rule) by the imports of the series used whose span meets the range. */
  readonly quarantined: Readonly<Record<string, number>>;
}

/** The bars of a store read without its partial ones (a period its source does not fully cover). */
export function completeBars(r: StoredRead): FullSeries {
  const keep: number[] = [];
  for (let i = 0; i < r.series.length; i++) if (r.partial[i] === 0) keep.push(i);
  return keep.length === r.series.length ? r.series : copyRows(r.series, keep);
}

/** Rows an import quarantined, kept in the catalog so every later read of the span can say so. */
export interface QuarantineRecord {
  readonly source: string;
  readonly rules: Readonly<Record<string, number>>;
  /** Open times of the first and last row of the import (the span it covers; null when no time was readable: every range). */
  readonly first: number | null;
  readonly last: number | null;
}

interface SeriesCatalog {
  key: SeriesKey;
  partitions: Record<string, PartitionEntry>;
  /** By import (hash of its raw inputs): rows it quarantined. */
  quarantine?: Record<string, QuarantineRecord>;
}

interface CatalogFile {
  schemaVersion: number;
  series: Record<string, SeriesCatalog>;
  features: Record<string, FeatureSetCatalog>;
}

interface FeatureSetCatalog {
  key: SeriesKey;
  set: string;
  columns: string[];
  partitions: Record<string, PartitionEntry>;
}

export interface CatalogEntry {
  readonly key: SeriesKey;
  readonly id: string;
  readonly first: number | null;
  readonly last: number | null;
  readonly rows: number;
  readonly partitions: number;
  readonly expectedBars: number;
  readonly coverage: number;
  readonly gaps: readonly Gap[];
  /** Bars synthesised by a gap-fill policy (source rank 0): stored, but not market data. */
  readonly filledBars: number;
  /** Runs of filled bars: the gaps the policy filled. */
  readonly filled: readonly Gap[];
  /** Rows the imports of this series quarantined, per rule. */
  readonly quarantined: Readonly<Record<string, number>>;
  readonly inputs: number;
}

export interface ImportOptions {
  readonly sourceKind: SourceKind;
  /** Raw objects the bars came from (sha256, optionally with the open-time span they cover), for lineage. */
  readonly rawInputs?: readonly (string | RawSpan)[];
  readonly source?: string;
  readonly fill?: FillPolicy;
  readonly outlierZ?: number;
  readonly staleRun?: number;
  readonly priorQuarantine?: readonly QuarantinedBar[];
  readonly priorRowsIn?: number;
  readonly lines?: Int32Array;
  /** 1-based data row of each row in its file (named in quarantine records). */
  readonly rows?: Int32Array;
  readonly file?: string;
  /** Keep the QC report on disk under reports/ (default true). */
  readonly saveReport?: boolean;
  /**
   * drop (default): rows that break a data rule are quarantined and the rest stored (the quarantine
   * is recorded in the catalog); refuse: any such row refuses the whole batch, nothing stored (the
   * backtest's data-quality gate).
   */
  readonly badData?: GateMode;
}

export interface RawSpan {
  readonly sha256: string;
  readonly first: number;
  readonly last: number;
}

export interface ImportResult {
  readonly importId: string;
  readonly report: QcReport;
  readonly partitionsWritten: readonly string[];
  readonly partitionsUnchanged: readonly string[];
  /** Bars that were new timestamps. */
  readonly barsAdded: number;
  /** Existing bars replaced by a higher-or-equal precedence bar with different values. */
  readonly barsReplaced: number;
  /** Incoming bars not stored because a stored bar had higher precedence. */
  readonly barsKeptExisting: number;
  readonly quarantined: readonly QuarantinedBar[];
}

export interface StoreOptions {
  readonly clock?: Clock;
  readonly maintenance?: readonly MaintenanceWindow[];
}

const SYSTEM_CLOCK: Clock = { now: () => Date.now() };

export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.KEEL_DATA_DIR ?? './.keel/data');
}

export class DataStore {
  private catalogCache: CatalogFile | null = null;
  private duck: { inst: DuckDBInstance; con: DuckDBConnection } | null = null;
  private readonly clock: Clock;
  readonly maintenance: readonly MaintenanceWindow[];

  constructor(
    readonly dir: string,
    opts: StoreOptions = {},
  ) {
    this.clock = opts.clock ?? SYSTEM_CLOCK;
    this.maintenance = opts.maintenance ?? KNOWN_MAINTENANCE;
  }

  // ---------------- raw zone ----------------

  /** Stores downloaded bytes unmodified; the same bytes twice give the same record (no new entry). */
  putRaw(
    bytes: Uint8Array,
    meta: { source: string; url: string; name: string; rows?: number | null; fetchedAt?: number },
  ): RawRecord {
    const sha = createHash('sha256').update(bytes).digest('hex');
    const existing = this.rawRecords().find((r) => r.sha256 === sha);
    if (existing) return existing;
    const safe = meta.name.replace(/[^A-Za-z0-9._-]/g, '_').slice(-120);
    const rel = path.posix.join('raw', 'objects', sha.slice(0, 2), `${sha}-${safe}`);
    const abs = path.join(this.dir, rel);
    mkdirSync(path.dirname(abs), { recursive: true });
    writeFileSync(abs, bytes, { flag: 'w' });
    const rec: RawRecord = {
      sha256: sha,
      source: meta.source,
      url: meta.url,
      name: meta.name,
      path: rel,
      fetchedAt: new Date(meta.fetchedAt ?? this.clock.now()).toISOString(),
      bytes: bytes.length,
      rows: meta.rows ?? null,
    };
    appendFileSync(path.join(this.dir, 'raw', 'manifest.jsonl'), `${JSON.stringify(rec)}\n`);
    this.rawCache = null;
    return rec;
  }

  private rawCache: RawRecord[] | null = null;
  rawRecords(): readonly RawRecord[] {
    if (this.rawCache) return this.rawCache;
    const f = path.join(this.dir, 'raw', 'manifest.jsonl');
    this.rawCache = existsSync(f)
      ? readFileSync(f, 'utf8')
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => JSON.parse(l) as RawRecord)
      : [];
    return this.rawCache;
  }

  readRaw(sha256: string): Uint8Array {
    const r = this.rawRecords().find((x) => x.sha256 === sha256);
    if (!r) throw new DataError('raw-not-found', `no raw object ${sha256} in ${this.dir}`);
    return readFileSync(path.join(this.dir, r.path));
  }

  // ---------------- catalog ----------------

  private catalogFile(): CatalogFile {
    if (this.catalogCache) return this.catalogCache;
    const f = path.join(this.dir, 'processed', '_catalog.json');
    this.catalogCache = existsSync(f)
      ? (JSON.parse(readFileSync(f, 'utf8')) as CatalogFile)
      : { schemaVersion: PROCESSED_SCHEMA_VERSION, series: {}, features: {} };
    this.catalogCache.features ??= {};
    return this.catalogCache;
  }

  private saveCatalog(): void {
    const f = path.join(this.dir, 'processed', '_catalog.json');
    mkdirSync(path.dirname(f), { recursive: true });
    const tmp = `${f}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.catalogFile()));
    renameSync(tmp, f);
  }

  seriesKeys(): SeriesKey[] {
    return Object.values(this.catalogFile().series).map((s) => s.key);
  }

  partitions(key: SeriesKey): PartitionEntry[] {
    const s = this.catalogFile().series[seriesId(key)];
    return s ? Object.values(s.partitions).sort((a, b) => a.first - b.first) : [];
  }

  /** Per market and timeframe: first/last bar, rows, gaps, coverage. */
  catalog(filter?: Partial<SeriesKey>): CatalogEntry[] {
    const out: CatalogEntry[] = [];
    for (const s of Object.values(this.catalogFile().series)) {
      const k = s.key;
      if (
        filter &&
        (Object.keys(filter) as (keyof SeriesKey)[]).some((f) => filter[f] !== undefined && filter[f] !== k[f])
      )
        continue;
      const parts = this.partitions(k);
      const rows = parts.reduce((a, p) => a + p.rows, 0);
      const time = this.readColumnAll(k, 'open_time', parts);
      const g = findGaps(time, k.timeframe, maintenanceFor(this.maintenance, k.exchange, k.marketType));
      const expected = rows === 0 ? 0 : rows + g.missingBars + g.maintenanceBars;
      const inputs = new Set(parts.flatMap((p) => p.inputs));
      const filled = filledRuns(time, this.readColumnAll(k, 'source_rank', parts), k.timeframe);
      const filledBars = filled.reduce((a, r) => a + r.missingBars, 0);
      const quarantined: Record<string, number> = {};
      for (const q of Object.values(s.quarantine ?? {}))
        for (const [rule, n] of Object.entries(q.rules)) quarantined[rule] = (quarantined[rule] ?? 0) + n;
      out.push({
        key: k,
        id: seriesId(k),
        first: parts[0]?.first ?? null,
        last: parts[parts.length - 1]?.last ?? null,
        rows,
        partitions: parts.length,
        expectedBars: expected,
        // Filled bars hold no market data: they are not coverage.
        coverage: expected - g.maintenanceBars > 0 ? (rows - filledBars) / (expected - g.maintenanceBars) : 0,
        gaps: g.gaps,
        filledBars,
        filled,
        quarantined,
        inputs: inputs.size,
      });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  /** Open time of the last stored bar, or null (for incremental downloads). */
  lastBarTime(key: SeriesKey): number | null {
    const parts = this.partitions(key);
    return parts.length > 0 ? (parts[parts.length - 1] as PartitionEntry).last : null;
  }

  /**
   * Coverage of [from, to) at the key's timeframe by the bars readBarsAt gives (stored or resampled
   * from a finer series); partial and gap-filled bars do not cover, maintenance windows are not expected.
   */
  coverage(key: SeriesKey, from: number, to: number): { coverage: number; rows: number; expectedBars: number } {
    let r: StoredRead | null = null;
    try {
      r = this.resolve(key, { from, to });
    } catch (e) {
      if (!(e instanceof DataError && e.code === 'series-not-found')) throw e;
    }
    const present = new Set<number>();
    if (r)
      for (let i = 0; i < r.series.length; i++)
        if (!r.partial[i] && !r.filled[i]) present.add(r.series.time[i] as number);
    let expected = 0;
    for (let t = timeframeStart(key.timeframe, from); t < to; t = timeframeEnd(key.timeframe, t)) {
      if (
        !this.maintenance.some(
          (w) =>
            w.exchange === key.exchange &&
            (w.marketType === undefined || w.marketType === key.marketType) &&
            t >= w.from &&
            t < w.to,
        )
      )
        expected++;
      else if (present.has(t)) expected++;
    }
    return { coverage: expected > 0 ? present.size / expected : 0, rows: present.size, expectedBars: expected };
  }

  // ---------------- import ----------------

  /**
   * Validates a batch (QC), then merges it into the processed zone month by month.
   * Precedence on equal timestamps: the higher source rank wins (archive 4 > rest 3 > file 2 > derived 1 >
   * filled 0); on equal rank the incoming (newer) bar wins. Identical bars change nothing, and a
   * partition whose merged content equals what is stored is not rewritten (idempotent imports).
   */
  importBars(key: SeriesKey, bars: BarSeries, opts: ImportOptions): ImportResult {
    const qc = validateBars(bars, {
      timeframe: key.timeframe,
      exchange: key.exchange,
      marketType: key.marketType,
      maintenance: this.maintenance,
      ...(opts.source !== undefined ? { source: opts.source } : {}),
      ...(opts.fill !== undefined ? { fill: opts.fill } : {}),
      ...(opts.outlierZ !== undefined ? { outlierZ: opts.outlierZ } : {}),
      ...(opts.staleRun !== undefined ? { staleRun: opts.staleRun } : {}),
      ...(opts.priorQuarantine !== undefined ? { priorQuarantine: opts.priorQuarantine } : {}),
      ...(opts.priorRowsIn !== undefined ? { priorRowsIn: opts.priorRowsIn } : {}),
      ...(opts.lines !== undefined ? { lines: opts.lines } : {}),
      ...(opts.rows !== undefined ? { rows: opts.rows } : {}),
      ...(opts.file !== undefined ? { file: opts.file } : {}),
    });
    const label = opts.source ?? opts.file ?? seriesId(key);
    if (opts.badData === 'refuse' && qc.quarantined.length > 0)
      throw new DataError(
        'quality-gate',
        `${formatDataGate(gateOf(qc, label, key.timeframe, 'refuse'))}\nnothing was imported (the processed zone is unchanged): an import refuses data that breaks a rule, as a backtest does; --allow-bad-data stores the other rows and records the quarantine`,
      );
    const rank = SOURCE_RANK[opts.sourceKind];
    const spans = (opts.rawInputs ?? []).map((r) =>
      typeof r === 'string' ? { sha256: r, first: Number.NEGATIVE_INFINITY, last: Number.POSITIVE_INFINITY } : r,
    );
    const inputs = [...new Set(spans.map((r) => r.sha256))];
    const written: string[] = [];
    const unchanged: string[] = [];
    let added = 0;
    let replaced = 0;
    let keptExisting = 0;
    const s = qc.kept;
    const n = s.length;
    const cat = this.catalogFile();
    const id = seriesId(key);
    const entry = (cat.series[id] ??= { key, partitions: {} });
    let i = 0;
    while (i < n) {
      const monthStart = timeframeStart('1M', s.time[i] as number);
      const monthEnd = timeframeEnd('1M', monthStart);
      let j = i;
      while (j < n && (s.time[j] as number) < monthEnd) j++;
      const month = isoUtc(monthStart).slice(0, 7);
      const incoming = sliceFull(s, i, j);
      const inRank = new Float64Array(j - i);
      for (let r = 0; r < j - i; r++) inRank[r] = qc.filled[i + r] === 1 ? 0 : rank;
      const old = entry.partitions[month];
      const monthInputs = [
        ...new Set(spans.filter((r) => r.last >= monthStart && r.first < monthEnd).map((r) => r.sha256)),
      ];
      const cur = old ? this.readPartition(old) : null;
      const merged = mergeByPrecedence(cur, incoming, inRank);
      added += merged.added;
      replaced += merged.replaced;
      keptExisting += merged.keptExisting;
      if (old && !merged.changed) {
        unchanged.push(month);
        // The same bars arriving from another raw object still count as inputs (lineage).
        const more = monthInputs.filter((x) => !old.inputs.includes(x));
        if (more.length > 0) entry.partitions[month] = { ...old, inputs: [...old.inputs, ...more] };
      } else {
        entry.partitions[month] = this.writePartition(
          'processed',
          processedDir(key, month),
          month,
          merged.series,
          merged.rank,
          old,
          [...new Set([...(old?.inputs ?? []), ...monthInputs])],
        );
        written.push(month);
      }
      i = j;
    }
    recordQuarantine(entry, inputs.length > 0 ? inputs : [label], label, qc);
    this.saveCatalog();
    const importId = `${isoUtc(this.clock.now()).replace(/[:.]/g, '-')}-${id.replace(/\//g, '_')}-${createHash('sha1')
      .update(`${inputs.join(',')}${n}${Math.random()}`)
      .digest('hex')
      .slice(0, 8)}`;
    if (opts.saveReport !== false) {
      const f = path.join(this.dir, 'reports', `${importId}.json`);
      mkdirSync(path.dirname(f), { recursive: true });
      writeFileSync(
        f,
        JSON.stringify(
          {
            importId,
            series: id,
            inputs,
            report: qc.report,
            partitionsWritten: written,
            partitionsUnchanged: unchanged,
          },
          null,
          2,
        ),
      );
    }
    return {
      importId,
      report: qc.report,
      partitionsWritten: written,
      partitionsUnchanged: unchanged,
      barsAdded: added,
      barsReplaced: replaced,
      barsKeptExisting: keptExisting,
      quarantined: qc.quarantined,
    };
  }

  private writePartition(
    zone: 'processed' | 'features',
    relDir: string,
    month: string,
    s:
      | { time: Float64Array; columns: readonly { name: string; type: 'int64' | 'double'; values: Float64Array }[] }
      | FullSeries,
    rank: Float64Array | null,
    old: PartitionEntry | undefined,
    inputs: string[],
  ): PartitionEntry {
    const version = (old?.version ?? 0) + 1;
    const columns =
      'columns' in s
        ? [{ name: 'open_time', type: 'int64' as const, values: s.time }, ...s.columns]
        : PROCESSED_COLUMNS.map((c, idx) => ({
            name: c.name,
            type: c.type,
            values:
              c.name === 'source_rank'
                ? (rank as Float64Array)
                : (s[SERIES_COLUMNS[idx] as (typeof SERIES_COLUMNS)[number]] as Float64Array),
          }));
    const w = writeParquet(columns, {
      'keel.zone': zone,
      'keel.schema_version': String(PROCESSED_SCHEMA_VERSION),
      'keel.inputs': inputs.join(','),
    });
    const rel = path.posix.join(zone, relDir, `part-v${String(version).padStart(4, '0')}.parquet`);
    const abs = path.join(this.dir, rel);
    mkdirSync(path.dirname(abs), { recursive: true });
    const tmp = `${abs}.tmp`;
    const fd = openSync(tmp, 'w');
    try {
      writevSync(fd, w.parts as Uint8Array[]);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, abs);
    if (old) {
      // Superseded versions move out of the queried zone, kept for lineage and rollback.
      const hist = path.join(this.dir, 'history', old.file);
      mkdirSync(path.dirname(hist), { recursive: true });
      if (existsSync(path.join(this.dir, old.file))) renameSync(path.join(this.dir, old.file), hist);
    }
    const time = (columns[0] as (typeof columns)[number]).values;
    return {
      month,
      file: rel,
      version,
      rows: w.rows,
      first: time[0] as number,
      last: time[w.rows - 1] as number,
      bytes: w.size,
      columns: w.columns,
      inputs,
      writtenAt: new Date(this.clock.now()).toISOString(),
      schemaVersion: PROCESSED_SCHEMA_VERSION,
    };
  }

  // ---------------- reads ----------------

  private readFileChecked(p: PartitionEntry): Uint8Array {
    const abs = path.join(this.dir, p.file);
    let buf: Buffer;
    try {
      buf = readFileSync(abs);
    } catch {
      throw new DataError(
        'partition-missing',
        `catalog lists ${p.file} but it cannot be read; run \`keel data validate\` or re-import`,
      );
    }
    if (buf.length !== p.bytes)
      throw new DataError(
        'partition-changed',
        `${p.file} has ${buf.length} bytes, the catalog recorded ${p.bytes}: the file was changed outside Keel`,
      );
    return buf;
  }

  private readPartition(p: PartitionEntry): { series: FullSeries; rank: Float64Array } {
    const buf = this.readFileChecked(p);
    const s = allocSeries(p.rows);
    const rank = new Float64Array(p.rows);
    for (let c = 0; c < PROCESSED_COLUMNS.length; c++) {
      const loc = p.columns[c] as ColumnLocation;
      const dst = c < SERIES_COLUMNS.length ? s[SERIES_COLUMNS[c] as (typeof SERIES_COLUMNS)[number]] : rank;
      readColumn(buf, loc, p.rows, dst, 0);
    }
    return { series: s, rank };
  }

  private readColumnAll(key: SeriesKey, name: string, parts = this.partitions(key)): Float64Array {
    const total = parts.reduce((a, p) => a + p.rows, 0);
    const out = new Float64Array(total);
    let at = 0;
    for (const p of parts) {
      const loc = p.columns.find((c) => c.name === name);
      if (!loc) throw new DataError('column-missing', `${p.file} has no column ${name}`);
      readColumn(this.readFileChecked(p), loc, p.rows, out, at);
      at += p.rows;
    }
    return out;
  }

  /**
   * Bars of one stored series for [from, to) as columnar typed arrays (the engine's BarSeries).
   * Reads the Parquet column pages directly (offsets recorded at write time), no per-row work.
   */
  readBars(key: SeriesKey, range: { from?: number; to?: number } = {}): FullSeries {
    return this.readRange(key, range, false).series;
  }

  /** readBars with each bar's source rank (0 = synthesised by a gap-fill policy). */
  private readRange(
    key: SeriesKey,
    range: { from?: number; to?: number },
    withRank: boolean,
  ): { series: FullSeries; rank: Float64Array } {
    const from = range.from ?? Number.NEGATIVE_INFINITY;
    const to = range.to ?? Number.POSITIVE_INFINITY;
    const parts = this.partitions(key).filter((p) => p.last >= from && p.first < to);
    const total = parts.reduce((a, p) => a + p.rows, 0);
    const out = allocSeries(total);
    const rank = new Float64Array(withRank ? total : 0);
    const ncol = withRank ? PROCESSED_COLUMNS.length : SERIES_COLUMNS.length;
    let at = 0;
    for (const p of parts) {
      const buf = this.readFileChecked(p);
      for (let c = 0; c < ncol; c++) {
        const dst = c < SERIES_COLUMNS.length ? out[SERIES_COLUMNS[c] as (typeof SERIES_COLUMNS)[number]] : rank;
        readColumn(buf, p.columns[c] as ColumnLocation, p.rows, dst, at);
      }
      at += p.rows;
    }
    const lo = lowerBound(out.time, from);
    const hi = lowerBound(out.time, to);
    if (lo === 0 && hi === total) return { series: out, rank };
    return { series: sliceFull(out, lo, hi), rank: withRank ? rank.subarray(lo, hi) : rank };
  }

  /**
   * Bars of a market at any timeframe for [from, to): the one way the store answers "these bars at
   * this timeframe" (backtest, export, features, coverage). Every stored series of the market that
   * can give them is used: the series of that timeframe itself, and each finer series whose
   * timeframe divides it, resampled on the fly. Where they hold the same bar, the store's precedence
   * decides: the exchange's or a file's own bar (rank file and up) wins; a bar Keel derived or
   * filled is re-derived from finer data that covers its period (so a stored resample never hides
   * finer bars imported after it); between two resamplings the finer source wins; a partial bar
   * (its period not fully covered by its source) only where nothing else is. Throws DataError
   * `series-not-found` when no stored series can give the timeframe and `no-bars-in-range` when
   * none has a bar in the range, naming what the store holds (and a coarser series covering it).
   */
  readBarsAt(key: SeriesKey, range: { from?: number; to?: number; label?: string } = {}): StoredRead {
    const r = this.resolve(key, range);
    if (r.series.length === 0) throw new DataError('no-bars-in-range', this.noBarsMessage(key, range));
    return r;
  }

  private resolve(key: SeriesKey, range: { from?: number; to?: number; label?: string }): StoredRead {
    const market = this.seriesKeys().filter(
      (k) => k.exchange === key.exchange && k.marketType === key.marketType && k.symbol === key.symbol,
    );
    const own = market.find((k) => k.timeframe === key.timeframe && this.partitions(k).length > 0);
    // Coarsest first: a later (finer) layer wins ties.
    const finer = market
      .filter((k) => divides(k.timeframe, key.timeframe))
      .sort((a, b) => timeframeMs(b.timeframe) - timeframeMs(a.timeframe));
    if (!own && finer.length === 0) {
      const label = range.label ?? key.symbol;
      throw new DataError(
        'series-not-found',
        market.length === 0
          ? `the store at ${this.dir} has no ${key.exchange} ${key.marketType} ${label} bars: keel data download or keel data import them first (--data-dir names another store)`
          : `the store at ${this.dir} has ${label} only as ${this.heldText(market)}: none is ${key.timeframe} or finer and dividing it`,
      );
    }
    const sources: { timeframe: Timeframe; bars: number }[] = [];
    let acc: ReadLayer | null = null;
    if (own) {
      const { series, rank } = this.readRange(own, range, true);
      const filled = new Uint8Array(series.length);
      for (let i = 0; i < series.length; i++) if (rank[i] === 0) filled[i] = 1;
      acc = { series, rank, partial: new Uint8Array(series.length), filled, src: new Uint8Array(series.length) };
      sources.push({ timeframe: key.timeframe, bars: 0 });
    }
    const fromAligned = range.from !== undefined ? timeframeStart(key.timeframe, range.from) : undefined;
    for (const base of finer) {
      const { series, rank } = this.readRange(
        base,
        {
          ...(fromAligned !== undefined ? { from: fromAligned } : {}),
          ...(range.to !== undefined ? { to: range.to } : {}),
        },
        true,
      );
      if (series.length === 0) continue;
      const layer = resampledLayer(series, rank, base.timeframe, key.timeframe, sources.length);
      sources.push({ timeframe: base.timeframe, bars: 0 });
      acc = acc === null ? layer : mergeLayers(acc, layer);
    }
    const out = acc ?? emptyLayer();
    for (let i = 0; i < out.series.length; i++) (sources[out.src[i] as number] as { bars: number }).bars++;
    const used = sources.filter((s) => s.bars > 0);
    const quarantined: Record<string, number> = {};
    for (const s of used)
      for (const q of Object.values(
        this.catalogFile().series[seriesId({ ...key, timeframe: s.timeframe })]?.quarantine ?? {},
      ))
        if (
          (range.to === undefined || q.first === null || q.first < range.to) &&
          (range.from === undefined || q.last === null || q.last >= range.from)
        )
          for (const [rule, n] of Object.entries(q.rules)) quarantined[rule] = (quarantined[rule] ?? 0) + n;
    return {
      series: out.series,
      partial: out.partial,
      filled: out.filled,
      sources: used,
      from: used.length > 0 ? (used[used.length - 1] as { timeframe: Timeframe }).timeframe : key.timeframe,
      quarantined,
    };
  }

  /** What the store holds of a market, per timeframe (from the catalog, no data read). */
  private heldText(keys: readonly SeriesKey[]): string {
    return keys
      .map((k) => {
        const parts = this.partitions(k);
        const first = parts[0]?.first;
        const last = parts[parts.length - 1]?.last;
        return `${k.timeframe} ${first !== undefined ? isoUtc(first) : '?'} .. ${last !== undefined ? isoUtc(last) : '?'}`;
      })
      .join(', ');
  }

  private noBarsMessage(key: SeriesKey, range: { from?: number; to?: number; label?: string }): string {
    const label = range.label ?? key.symbol;
    const market = this.seriesKeys().filter(
      (k) => k.exchange === key.exchange && k.marketType === key.marketType && k.symbol === key.symbol,
    );
    const span = rangeText(range.from, range.to);
    // A coarser series with bars in the range: the asked timeframe is finer than what covers it.
    const coarser = market.filter(
      (k) => timeframeMs(k.timeframe) > timeframeMs(key.timeframe) && this.readBars(k, range).length > 0,
    );
    if (coarser.length > 0)
      return `the store at ${this.dir} holds ${label} in ${span} only as ${coarser.map((k) => k.timeframe).join(', ')} bars, coarser than the ${key.timeframe} asked: bars cannot be split (give --timeframe ${(coarser[0] as SeriesKey).timeframe} or coarser, or import ${key.timeframe} or finer bars for that range); stored: ${this.heldText(market)}`;
    return `the store at ${this.dir} has no ${label} bars in ${span}; stored: ${this.heldText(market)}`;
  }

  // ---------------- features zone ----------------

  writeFeatures(
    key: SeriesKey,
    set: string,
    time: Float64Array,
    columns: readonly { name: string; values: Float64Array }[],
    inputs: string[],
  ): string[] {
    if (!/^[a-z0-9_-]+$/i.test(set))
      throw new DataError('bad-argument', `feature set name "${set}" must be letters, digits, - or _`);
    const cat = this.catalogFile();
    const id = `${seriesId(key)}/${set}`;
    const entry = (cat.features[id] ??= { key, set, columns: columns.map((c) => c.name), partitions: {} });
    entry.columns = columns.map((c) => c.name);
    const written: string[] = [];
    let i = 0;
    const n = time.length;
    while (i < n) {
      const monthStart = timeframeStart('1M', time[i] as number);
      const monthEnd = timeframeEnd('1M', monthStart);
      let j = i;
      while (j < n && (time[j] as number) < monthEnd) j++;
      const month = isoUtc(monthStart).slice(0, 7);
      const old = entry.partitions[month];
      entry.partitions[month] = this.writePartition(
        'features',
        `${hive(key)}/set=${set}/month=${month}`,
        month,
        {
          time: time.subarray(i, j),
          columns: columns.map((c) => ({ name: c.name, type: 'double' as const, values: c.values.subarray(i, j) })),
        },
        null,
        old,
        inputs,
      );
      written.push(month);
      i = j;
    }
    this.saveCatalog();
    return written;
  }

  featureSets(): { key: SeriesKey; set: string; columns: string[]; rows: number; inputs: string[] }[] {
    return Object.values(this.catalogFile().features).map((f) => ({
      key: f.key,
      set: f.set,
      columns: f.columns,
      rows: Object.values(f.partitions).reduce((a, p) => a + p.rows, 0),
      inputs: [...new Set(Object.values(f.partitions).flatMap((p) => p.inputs))],
    }));
  }

  readFeatures(key: SeriesKey, set: string): { time: Float64Array; columns: Record<string, Float64Array> } {
    const f = this.catalogFile().features[`${seriesId(key)}/${set}`];
    if (!f) throw new DataError('features-not-found', `no feature set ${set} for ${seriesId(key)}`);
    const parts = Object.values(f.partitions).sort((a, b) => a.first - b.first);
    const total = parts.reduce((a, p) => a + p.rows, 0);
    const time = new Float64Array(total);
    const cols: Record<string, Float64Array> = {};
    for (const c of f.columns) cols[c] = new Float64Array(total);
    let at = 0;
    for (const p of parts) {
      const buf = this.readFileChecked(p);
      for (const loc of p.columns)
        readColumn(buf, loc, p.rows, loc.name === 'open_time' ? time : (cols[loc.name] as Float64Array), at);
      at += p.rows;
    }
    return { time, columns: cols };
  }

  // ---------------- DuckDB ----------------

  /** A DuckDB connection for ad-hoc queries over the zones (opened on first use). */
  async duckdb(): Promise<DuckDBConnection> {
    if (this.duck) return this.duck.con;
    const { DuckDBInstance } = await import('@duckdb/node-api');
    const inst = await DuckDBInstance.create(':memory:', { threads: '2' });
    const con = await inst.connect();
    this.duck = { inst, con };
    return con;
  }

  /** SQL text naming the current processed files of a series, for read_parquet([...]). */
  processedFilesSql(key: SeriesKey): string {
    const files = this.partitions(key).map((p) => `'${path.join(this.dir, p.file).replace(/'/g, "''")}'`);
    if (files.length === 0) throw new DataError('series-not-found', `no stored bars for ${seriesId(key)}`);
    return `read_parquet([${files.join(', ')}], hive_partitioning = true)`;
  }

  /**
   * Independent check of the processed zone through DuckDB: row counts, time order, duplicates
   * and OHLC consistency per series, computed by SQL over the Parquet files.
   */
  async verify(): Promise<
    {
      id: string;
      rows: number;
      catalogRows: number;
      duplicates: number;
      badOhlc: number;
      first: number | null;
      last: number | null;
    }[]
  > {
    const con = await this.duckdb();
    const out = [];
    for (const k of this.seriesKeys()) {
      const parts = this.partitions(k);
      if (parts.length === 0) continue;
      for (const p of parts) {
        const abs = path.join(this.dir, p.file);
        if (!existsSync(abs) || statSync(abs).size !== p.bytes)
          throw new DataError('partition-changed', `${p.file} is missing or was changed outside Keel`);
      }
      const r = await con.runAndReadAll(
        `SELECT count(*)::DOUBLE, (count(*) - count(DISTINCT open_time))::DOUBLE,
                count(*) FILTER (WHERE high < greatest(open, close) OR low > least(open, close) OR low <= 0 OR volume < 0)::DOUBLE,
                min(open_time)::DOUBLE, max(open_time)::DOUBLE
         FROM ${this.processedFilesSql(k)}`,
      );
      const row = r.getRows()[0] as number[];
      out.push({
        id: seriesId(k),
        rows: row[0] as number,
        catalogRows: parts.reduce((a, p) => a + p.rows, 0),
        duplicates: row[1] as number,
        badOhlc: row[2] as number,
        first: row[3] ?? null,
        last: row[4] ?? null,
      });
    }
    return out;
  }

  /** Reads bars from any Parquet file(s) through DuckDB (external files; column names mapped). */
  async readParquetFile(
    file: string,
    mapping: Partial<Record<(typeof SERIES_COLUMNS)[number], string>> = {},
  ): Promise<FullSeries> {
    const con = await this.duckdb();
    const desc = await con.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet('${file.replace(/'/g, "''")}')`);
    const names = desc.getRows().map((r) => String(r[0]));
    const lower = names.map((x) => x.toLowerCase());
    const pick = (col: (typeof SERIES_COLUMNS)[number], aliases: string[]): string | null => {
      const m = mapping[col];
      if (m !== undefined) {
        if (!names.includes(m))
          throw new DataError(
            'bad-mapping',
            `${file}: column "${m}" mapped to ${col} is not in the file (columns: ${names.join(', ')})`,
          );
        return m;
      }
      const i = lower.findIndex((x) => aliases.includes(x));
      return i >= 0 ? (names[i] as string) : null;
    };
    const cols = {
      time: pick('time', ['open_time', 'time', 'timestamp', 'datetime', 'date', 'ts']),
      open: pick('open', ['open', 'o']),
      high: pick('high', ['high', 'h']),
      low: pick('low', ['low', 'l']),
      close: pick('close', ['close', 'c']),
      volume: pick('volume', ['volume', 'vol', 'v']),
      quoteVolume: pick('quoteVolume', ['quote_volume', 'quote_asset_volume']),
      trades: pick('trades', ['trades', 'count', 'number_of_trades']),
      takerBuyVolume: pick('takerBuyVolume', ['taker_buy_volume', 'taker_buy_base_asset_volume']),
    };
    const missing = (['time', 'open', 'high', 'low', 'close', 'volume'] as const).filter((c) => cols[c] === null);
    if (missing.length > 0)
      throw new DataError(
        'bad-mapping',
        `${file}: no column for ${missing.join(', ')} (columns: ${names.join(', ')}); pass a mapping`,
      );
    const q = (c: string | null) => (c === null ? 'NULL::DOUBLE' : `"${c.replace(/"/g, '""')}"`);
    const timeCol = q(cols.time);
    const timeType = String(desc.getRows()[names.indexOf(cols.time as string)]?.[1] ?? '');
    const timeExpr = /TIMESTAMP|DATE/i.test(timeType)
      ? `epoch_ms(${timeCol}::TIMESTAMP)::DOUBLE`
      : `${timeCol}::DOUBLE`;
    const sql = `SELECT ${timeExpr}, ${['open', 'high', 'low', 'close', 'volume', 'quoteVolume', 'trades', 'takerBuyVolume'].map((c) => `${q(cols[c as keyof typeof cols])}::DOUBLE`).join(', ')} FROM read_parquet('${file.replace(/'/g, "''")}') ORDER BY 1`;
    const r = await con.runAndReadAll(sql);
    const n = r.currentRowCount;
    const s = allocSeries(n);
    const data = r.getColumns();
    for (let c = 0; c < SERIES_COLUMNS.length; c++) {
      const src = data[c] as (number | null)[];
      const dst = s[SERIES_COLUMNS[c] as (typeof SERIES_COLUMNS)[number]];
      for (let i = 0; i < n; i++) dst[i] = src[i] ?? Number.NaN;
    }
    // Timestamps in seconds or microseconds become ms, as in the CSV reader.
    for (let i = 0; i < n; i++) {
      const t = s.time[i] as number;
      if (t >= 1e14) s.time[i] = Math.floor(t / 1000);
      else if (t < 1e11) s.time[i] = t * 1000;
    }
    return s;
  }

  close(): void {
    if (this.duck) {
      this.duck.con.closeSync();
      this.duck.inst.closeSync();
      this.duck = null;
    }
  }
}

/** Keeps (or clears) what an import quarantined, under its raw inputs: the same import again replaces it. */
function recordQuarantine(entry: SeriesCatalog, inputs: readonly string[], source: string, qc: QcResult): void {
  const id = createHash('sha1')
    .update([...inputs].sort().join(','))
    .digest('hex')
    .slice(0, 16);
  if (qc.quarantined.length === 0) {
    if (entry.quarantine) delete entry.quarantine[id];
    return;
  }
  let first = qc.report.first ?? Number.POSITIVE_INFINITY;
  let last = qc.report.last ?? Number.NEGATIVE_INFINITY;
  for (const q of qc.quarantined)
    if (Number.isFinite(q.time)) {
      first = Math.min(first, q.time);
      last = Math.max(last, q.time);
    }
  const rules: Record<string, number> = {};
  for (const [rule, n] of Object.entries(qc.report.quarantined)) if (n > 0) rules[rule] = n;
  entry.quarantine ??= {};
  entry.quarantine[id] = {
    source,
    rules,
    first: Number.isFinite(first) ? first : null,
    last: Number.isFinite(last) ? last : null,
  };
}

/** Runs of bars with source rank 0 (synthesised by a gap-fill policy), as gaps that were filled. */
function filledRuns(time: Float64Array, rank: Float64Array, tf: Timeframe): Gap[] {
  const out: Gap[] = [];
  for (let i = 0; i < time.length; ) {
    if (rank[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < time.length && rank[j] === 0) j++;
    out.push({
      from: time[i] as number,
      to: timeframeEnd(tf, time[j - 1] as number),
      missingBars: j - i,
      kind: 'missing',
      note: 'filled by a gap-fill policy (synthetic bars)',
    });
    i = j;
  }
  return out;
}

/** Whether bars of `fine` can be resampled to `coarse` (a whole number of them in each period). */
function divides(fine: Timeframe, coarse: Timeframe): boolean {
  return (
    timeframeMs(fine) < timeframeMs(coarse) &&
    (coarse === '1M' || coarse === '1w' || timeframeMs(coarse) % timeframeMs(fine) === 0)
  );
}

/** `2024-01-01T00:00:00Z .. the end`: a --from/--to range as messages write it. */
export function rangeText(from: number | undefined, to: number | undefined): string {
  return `${from !== undefined ? isoUtc(from) : 'the start'} .. ${to !== undefined ? isoUtc(to) : 'the end'}`;
}

/** Bars being combined by readBarsAt, with per bar its precedence, flags and source (index). */
interface ReadLayer {
  readonly series: FullSeries;
  readonly rank: Float64Array;
  readonly partial: Uint8Array;
  readonly filled: Uint8Array;
  readonly src: Uint8Array;
}

/** Rank of a partial resampled bar: below every stored bar, used only where nothing else is. */
const PARTIAL_RANK = -1;

function emptyLayer(): ReadLayer {
  return {
    series: allocSeries(0),
    rank: new Float64Array(0),
    partial: new Uint8Array(0),
    filled: new Uint8Array(0),
    src: new Uint8Array(0),
  };
}

/**
 * A finer stored series resampled to `to`: a complete bar ranks as derived (filled, when every
 * source bar was filled), a partial one below everything; `filled` marks a bar with any filled source bar.
 */
function resampledLayer(s: FullSeries, rank: Float64Array, from: Timeframe, to: Timeframe, src: number): ReadLayer {
  const r = resampleBars(s, from, to);
  const m = r.series.length;
  const outRank = new Float64Array(m);
  const filled = new Uint8Array(m);
  let i = 0;
  for (let k = 0; k < m; k++) {
    const n = r.sourceBars[k] as number;
    let f = 0;
    for (let j = i; j < i + n; j++) if (rank[j] === 0) f++;
    i += n;
    if (f > 0) filled[k] = 1;
    outRank[k] = r.partial[k] === 1 ? PARTIAL_RANK : f === n ? 0 : SOURCE_RANK.derived;
  }
  return { series: r.series, rank: outRank, partial: r.partial, filled, src: new Uint8Array(m).fill(src) };
}

/** Two layers merged by time, one bar per time: `b`'s bar wins when its rank is at least `a`'s. */
function mergeLayers(a: ReadLayer, b: ReadLayer): ReadLayer {
  const na = a.series.length;
  const nb = b.series.length;
  const pick = new Int32Array(na + nb);
  let i = 0;
  let j = 0;
  let k = 0;
  while (i < na || j < nb) {
    const ta = i < na ? (a.series.time[i] as number) : Number.POSITIVE_INFINITY;
    const tb = j < nb ? (b.series.time[j] as number) : Number.POSITIVE_INFINITY;
    if (ta < tb) pick[k++] = i++;
    else if (tb < ta) pick[k++] = -1 - j++;
    else {
      pick[k++] = (b.rank[j] as number) >= (a.rank[i] as number) ? -1 - j : i;
      i++;
      j++;
    }
  }
  const series = allocSeries(k);
  const out: ReadLayer = {
    series,
    rank: new Float64Array(k),
    partial: new Uint8Array(k),
    filled: new Uint8Array(k),
    src: new Uint8Array(k),
  };
  for (let r = 0; r < k; r++) {
    const p = pick[r] as number;
    const from = p >= 0 ? a : b;
    const x = p >= 0 ? p : -1 - p;
    for (const c of SERIES_COLUMNS) series[c][r] = from.series[c][x] as number;
    out.rank[r] = from.rank[x] as number;
    out.partial[r] = from.partial[x] as number;
    out.filled[r] = from.filled[x] as number;
    out.src[r] = from.src[x] as number;
  }
  return out;
}

function hive(k: SeriesKey): string {
  return `exchange=${k.exchange}/market=${k.marketType}/symbol=${k.symbol}/timeframe=${k.timeframe}`;
}

function processedDir(k: SeriesKey, month: string): string {
  return `${hive(k)}/month=${month}`;
}

export function lowerBound(a: Float64Array, x: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((a[mid] as number) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Merges sorted incoming bars into sorted stored bars, one bar per timestamp, by precedence. */
export function mergeByPrecedence(
  cur: { series: FullSeries; rank: Float64Array } | null,
  inc: FullSeries,
  incRank: Float64Array,
): { series: FullSeries; rank: Float64Array; changed: boolean; added: number; replaced: number; keptExisting: number } {
  if (!cur)
    return { series: inc, rank: incRank, changed: inc.length > 0, added: inc.length, replaced: 0, keptExisting: 0 };
  const a = cur.series;
  const na = a.length;
  const nb = inc.length;
  const out = allocSeries(na + nb);
  const rank = new Float64Array(na + nb);
  let i = 0;
  let j = 0;
  let k = 0;
  let added = 0;
  let replaced = 0;
  let keptExisting = 0;
  let changed = false;
  // Column arrays indexed by number: a per-row loop over property names would be megamorphic.
  const oc = SERIES_COLUMNS.map((c) => out[c]);
  const ac = SERIES_COLUMNS.map((c) => a[c]);
  const bc = SERIES_COLUMNS.map((c) => inc[c]);
  const nc = SERIES_COLUMNS.length;
  const copy = (src: Float64Array[], r: number): void => {
    for (let c = 0; c < nc; c++) (oc[c] as Float64Array)[k] = (src[c] as Float64Array)[r] as number;
  };
  while (i < na || j < nb) {
    const ta = i < na ? (a.time[i] as number) : Number.POSITIVE_INFINITY;
    const tb = j < nb ? (inc.time[j] as number) : Number.POSITIVE_INFINITY;
    if (ta < tb) {
      copy(ac, i);
      rank[k] = cur.rank[i] as number;
      i++;
    } else if (tb < ta) {
      copy(bc, j);
      rank[k] = incRank[j] as number;
      j++;
      added++;
      changed = true;
    } else {
      const ra = cur.rank[i] as number;
      const rb = incRank[j] as number;
      if (rb >= ra) {
        let same = ra === rb;
        for (let c = 0; c < nc; c++) {
          const x = (ac[c] as Float64Array)[i] as number;
          const y = (bc[c] as Float64Array)[j] as number;
          if (!(x === y || (Number.isNaN(x) && Number.isNaN(y)))) same = false;
        }
        if (!same) {
          replaced++;
          changed = true;
        }
        copy(bc, j);
        rank[k] = rb;
      } else {
        copy(ac, i);
        rank[k] = ra;
        keptExisting++;
      }
      i++;
      j++;
    }
    k++;
  }
  return { series: sliceFull(out, 0, k), rank: rank.subarray(0, k), changed, added, replaced, keptExisting };
}
