import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CsvFormatError, fileNameFacts, fileSymbolConflict, inferTimeframe, type TimeIs } from '@keel/candles';
import type { Timeframe } from '@keel/core';
import { isoUtc, parseTimeframe, timeframeMs } from '@keel/core';
import { FEATURE_DEFS } from './features/index.ts';
import type { Io } from './io.ts';
import { maintenanceFor } from './maintenance.ts';
import { buildFeatures, concatBatches, download, ingest, resampleStored } from './pipeline.ts';
import { Progress } from './progress.ts';
import { dataQualityGate, type FillPolicy, formatDataGate, formatQcReport, type QcReport, ruleCounts } from './qc.ts';
import { DataError, type SeriesKey, seriesId, seriesKey } from './schema.ts';
import { BinanceArchiveSource } from './sources/binance-archive.ts';
import { type CcxtEndpoint, CcxtSource } from './sources/ccxt.ts';
import { type ColumnMapping, fileTimeframe, parseColumnMapping, parseTimeIs, readFileBatch } from './sources/files.ts';
import type { BarBatch, BarSource } from './sources/port.ts';
import { SourceError } from './sources/retry.ts';
import { DataStore, defaultDataDir } from './store.ts';

class UsageError extends Error {}

const COMMON = `Common options:
  --data-dir DIR   data folder (default: $KEEL_DATA_DIR or ./.keel/data)
  --json           machine-readable output on stdout
  --progress       draw progress bars on stderr even when it is not a terminal
  --help           this text`;

const SERIES_OPTS = `  --exchange ID    exchange id (default binance)
  --market TYPE    spot | usdm | coinm (default spot)
  --symbol SYM     e.g. BTCUSDT or BTC/USDT
  --timeframe TF   1m, 5m, 1h, 1d, ... (default 1m)`;

const HELP: Record<string, string> = {
  data: `keel data <command>

Market data: download, import, validate, list, resample, export.

Commands:
  download   fetch bars from an exchange (ccxt REST) or Binance's public archives, incrementally
  import     import local files (Binance kline CSV, generic OHLCV CSV, Parquet)
  validate   run quality control on files (nothing stored) or on the stored zone (--stored)
  list       the catalog: per market and timeframe, first/last bar, rows, gaps, coverage
  resample   aggregate a stored series to coarser timeframes and store them
  export     write a stored range at any timeframe as CSV or JSON

Run \`keel data <command> --help\` for the options of each.
${COMMON}`,
  download: `keel data download --symbol SYM[,SYM...] [options]

Downloads bars into the store, starting after the last stored bar (incremental). Several markets
(--symbol BTC/USDT,ETH/USDT) are downloaded in turn, each into its own series.
${SERIES_OPTS}
  --source S       ccxt | archive (default ccxt)
  --since DATE     first bar to fetch when nothing is stored (ISO date or ms; default 30 days ago)
  --until DATE     exclusive end (default now)
  --failover IDS   comma-separated ccxt exchange ids to use when the first one is down
  --ccxt-config J  JSON merged into the ccxt constructor options of every exchange
  --base-url URL   archive base URL (default https://data.binance.vision)
  --fill POLICY    none | flat-previous-close (default none; recorded in the QC report)
${COMMON}`,
  import: `keel data import FILE... [options]

Imports local files: Binance kline CSV (with or without header), generic OHLCV CSV with a header
(.csv or .csv.gz) and Parquet. Symbol, timeframe and market are taken from Binance-style file names
(BTCUSDT-1m-2024-01.csv, binance_BTCUSDT_1m_2024-01.csv.gz) unless given.
${SERIES_OPTS}
  --map SPEC       column mapping for generic files: time=ts,open=o,high=h,low=l,close=c,volume=v
  --time-is WHAT   open | close: what the time column holds (default: read from the header and the
                   values; times 1 ms before the grid are close times, converted with a note)
  --fill POLICY    none | flat-previous-close (default none): filled bars are synthetic, counted
                   by keel data list and in a backtest's data summary
  --allow-bad-data store the rows that pass quality control and quarantine the rest (recorded:
                   keel data list and a backtest's data summary show it); without it a file with a
                   row that breaks a data rule is refused and nothing is stored (as a backtest refuses it)
The timeframe is what the bars are: their spacing (else the file name; said so when they differ).
A --timeframe the spacing contradicts is refused: import stores the bars a file holds, and coarser
timeframes are read from them (resampled on the fly) or stored by keel data resample.
${COMMON}`,
  validate: `keel data validate FILE... [options]
keel data validate --stored

Runs quality control and the data-quality gate on files without storing anything, or checks the
stored processed zone through DuckDB (--stored). A file is not ok (exit code 1) when a row breaks a
data rule (non-positive price, high < low or a body outside the range, duplicate or unsorted time,
time off the timeframe grid, unreadable row), when no row is left, or when its coverage is below
--min-coverage; the output says why, one line per rule with its count and first row.
${SERIES_OPTS}
  --map SPEC       column mapping for generic files
  --time-is WHAT   open | close: what the time column holds (default: detected, with a note)
  --min-coverage X coverage gate, 0..1 (default 0: gaps are reported, not refused)
${COMMON}`,
  list: `keel data list [options]

Prints the catalog: per market and timeframe, first and last bar, rows, gaps and coverage.
  --symbol SYM     only this symbol
${COMMON}`,
  resample: `keel data resample --symbol SYM --to TF[,TF...] [options]

Aggregates a stored series (default 1m) to coarser timeframes with UTC alignment (weeks start
Monday, calendar months) and stores the complete bars; partial bars are counted, not stored.
${SERIES_OPTS}
  --to TFS         target timeframes, e.g. 5m,1h,1d or "all"
${COMMON}`,
  export: `keel data export --symbol SYM --timeframe TF [options]

Writes stored bars at any timeframe (resampled from a finer stored series when needed) as CSV or JSON.
${SERIES_OPTS}
  --from DATE      inclusive start (default: first stored bar)
  --to DATE        exclusive end (default: after the last stored bar)
  --format F       csv | json (default csv)
  --out FILE       write here instead of stdout
${COMMON}`,
  features: `keel features build --symbol SYM [options]

Computes ${FEATURE_DEFS.length} features in 9 families for a stored series and writes them to the
features zone, with a feature QC report (NaN share after warm-up, constant columns, correlated pairs).
${SERIES_OPTS}
  --ref SYM        reference symbol for the cross-asset family (default BTCUSDT when available)
  --set NAME       feature set name (default "default")
  --normalize N    trailing z-score + winsorisation window in rows (default: raw features)
  --clip K         winsorisation at +-K trailing SD (default 4)
${COMMON}`,
};

const OPTIONS = {
  'data-dir': { type: 'string' },
  json: { type: 'boolean' },
  progress: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  exchange: { type: 'string' },
  market: { type: 'string' },
  symbol: { type: 'string' },
  timeframe: { type: 'string' },
  source: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  failover: { type: 'string' },
  'ccxt-config': { type: 'string' },
  'base-url': { type: 'string' },
  fill: { type: 'string' },
  'allow-bad-data': { type: 'boolean' },
  map: { type: 'string' },
  'time-is': { type: 'string' },
  'min-coverage': { type: 'string' },
  stored: { type: 'boolean' },
  to: { type: 'string' },
  from: { type: 'string' },
  format: { type: 'string' },
  out: { type: 'string' },
  ref: { type: 'string' },
  set: { type: 'string' },
  normalize: { type: 'string' },
  clip: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>['values'];

function parseTime(s: string, what: string): number {
  if (/^\d+$/.test(s)) return Number(s);
  const t = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(s) || s.length <= 10 ? s : `${s}Z`);
  if (!Number.isFinite(t))
    throw new UsageError(`--${what} "${s}" is not a date (use 2024-01-31, 2024-01-31T12:00 or epoch ms)`);
  return t;
}

function parseMapping(spec: string | undefined): ColumnMapping | undefined {
  if (!spec) return undefined;
  try {
    return parseColumnMapping(spec);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function parseTimeIsFlag(s: string | undefined): TimeIs | undefined {
  if (s === undefined) return undefined;
  try {
    return parseTimeIs(s);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/**
 * Reads one file for validate or import. The timeframe is what the bars are: their spacing (the
 * name's when the spacing cannot tell, with a note when the two differ). A --timeframe the spacing
 * contradicts is refused: stored under it, 1m bars would keep one bar an hour and quarantine the
 * rest; an import stores the bars a file holds, and any coarser timeframe is read from them.
 */
async function readInput(
  store: DataStore,
  v: Values,
  f: string,
): Promise<{ key: SeriesKey; batch: BarBatch; notes: string[] }> {
  const inferred = inferFromFileName(f);
  // A --symbol the file's name contradicts would store (or validate) one market's bars as another's.
  const conflict = v.symbol !== undefined ? fileSymbolConflict(f, v.symbol) : undefined;
  if (conflict !== undefined) throw new DataError('symbol-mismatch', conflict);
  let flag: Timeframe | undefined;
  if (v.timeframe !== undefined) {
    try {
      flag = parseTimeframe(v.timeframe);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const mapping = parseMapping(v.map);
  const timeIs = parseTimeIsFlag(v['time-is']);
  const batch = await readFileBatch(f, {
    ...(mapping ? { mapping } : {}),
    ...(timeIs ? { timeIs } : {}),
    ...(flag ? { timeframe: flag } : {}),
    readParquet: (file, m) => store.readParquetFile(file, m),
  });
  const spacing = inferTimeframe(batch.series.time);
  const nameTf = fileNameFacts(f).timeframe;
  if (flag !== undefined && spacing !== null && spacing !== flag)
    throw new DataError(
      'timeframe-mismatch',
      `${f}: the bars are ${spacing} apart${nameTf !== undefined ? ` (the name says ${nameTf})` : ''}, not the --timeframe ${flag} given: an import stores the bars a file holds; give --timeframe ${spacing} or leave it out${timeframeMs(flag) > timeframeMs(spacing) ? `, and read ${flag} from them (keel backtest --timeframe ${flag} and keel data export resample on the fly; keel data resample --to ${flag} stores them)` : ` (${spacing} bars cannot be split into ${flag})`}`,
    );
  const read = flag !== undefined ? { timeframe: flag, notes: [] } : fileTimeframe(f, spacing, nameTf);
  const notes = [...(batch.notes ?? []), ...read.notes];
  let timeframe = read.timeframe;
  if (timeframe === undefined) {
    timeframe = '1m';
    notes.push(`${f}: the timeframe could not be told from the file; assumed 1m (give --timeframe)`);
  }
  return { key: keyFrom({ ...v, timeframe }, inferred), batch, notes };
}

function parseFill(s: string | undefined): FillPolicy | undefined {
  if (s === undefined) return undefined;
  if (s !== 'none' && s !== 'flat-previous-close')
    throw new UsageError(`--fill "${s}": expected none or flat-previous-close`);
  return s;
}

/** Symbol (as the name writes it), timeframe and market from a file's name (`fileNameFacts`). */
export function inferFromFileName(file: string): { symbol?: string; timeframe?: string; market?: string } {
  const { pair, timeframe, market } = fileNameFacts(file);
  return { ...(pair ? { symbol: pair } : {}), ...(timeframe ? { timeframe } : {}), ...(market ? { market } : {}) };
}

function keyFrom(v: Values, inferred: { symbol?: string; timeframe?: string; market?: string } = {}): SeriesKey {
  const symbol = v.symbol ?? inferred.symbol;
  if (!symbol) throw new UsageError('--symbol is required (it could not be inferred from a file name)');
  try {
    return seriesKey(
      v.exchange ?? 'binance',
      v.market ?? inferred.market ?? 'spot',
      symbol,
      v.timeframe ?? inferred.timeframe ?? '1m',
    );
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function json(io: Io, x: unknown): void {
  io.stdout.write(`${JSON.stringify(x, null, 2)}\n`);
}

function summary(io: Io, r: QcReport, title: string): void {
  io.stdout.write(`${formatQcReport(r, title)}\n`);
}

/** Entry point for `keel data ...` and `keel features ...`; returns the exit code. */
export async function runDataCli(argv: string[], io: Io): Promise<number> {
  const [group, cmd, ...rest] = argv;
  if (group !== 'data' && group !== 'features') {
    io.stderr.write(`keel: expected "data" or "features", got "${group ?? ''}"\n`);
    return 2;
  }
  const sub = group === 'features' ? (cmd === undefined || cmd.startsWith('-') ? undefined : cmd) : cmd;
  const args = group === 'features' && sub === undefined ? (cmd === undefined ? [] : [cmd, ...rest]) : rest;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.stdout.write(`${HELP[group === 'features' ? 'features' : 'data']}\n`);
    return sub === undefined && group === 'data' ? 2 : 0;
  }
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (e) {
    io.stderr.write(`keel ${group} ${sub}: ${(e as Error).message}\nRun \`keel ${group} ${sub} --help\`.\n`);
    return 2;
  }
  const helpKey = group === 'features' ? 'features' : sub;
  if (values.help) {
    const h = HELP[helpKey];
    if (!h) {
      io.stderr.write(`keel ${group}: unknown command "${sub}"\n`);
      return 2;
    }
    io.stdout.write(`${h}\n`);
    return 0;
  }
  const store = new DataStore(path.resolve(values['data-dir'] ?? defaultDataDir()));
  const progress = (label: string) => Progress.on(label, io.stderr, Boolean(values.progress));
  try {
    if (group === 'features') {
      if (sub !== 'build') throw new UsageError(`unknown command "features ${sub}" (expected: features build)`);
      return featuresBuild(store, values, io);
    }
    switch (sub) {
      case 'download':
        return await dataDownload(store, values, io, progress);
      case 'import':
        return await dataImport(store, values, positionals, io, progress);
      case 'validate':
        return await dataValidate(store, values, positionals, io);
      case 'list':
        return dataList(store, values, io);
      case 'resample':
        return dataResample(store, values, io, progress);
      case 'export':
        return dataExport(store, values, io);
      default:
        throw new UsageError(`unknown command "data ${sub}"; run \`keel data --help\``);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.stderr.write(`keel ${group} ${sub}: ${e.message}\n`);
      return 2;
    }
    if (e instanceof DataError || e instanceof CsvFormatError || e instanceof SourceError) {
      const code = e instanceof DataError ? e.code : 'csv-format';
      if (values.json) json(io, { ok: false, error: { code, message: e.message } });
      io.stderr.write(`error [${code}]: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    store.close();
  }
}

/**
 * `--symbol A,B,...`: each market downloaded in turn, as one would one by one (a failure stops the
 * rest, naming its market); `--json` prints `{ ok, downloads: [...] }` with each market's own answer.
 */
async function dataDownload(store: DataStore, v: Values, io: Io, progress: (l: string) => Progress): Promise<number> {
  const list = (v.symbol ?? '').split(',').map((x) => x.trim());
  if (list.length < 2) return downloadOne(store, v, io, progress);
  if (list.some((x) => x === '')) throw new UsageError(`--symbol "${v.symbol}": an entry is empty (a stray comma?)`);
  // With --json each market's answer goes into the one printed at the end.
  const answers: unknown[] = [];
  for (const symbol of list) await downloadOne(store, { ...v, symbol }, io, progress, (x) => answers.push(x));
  if (v.json) json(io, { ok: true, downloads: answers });
  return 0;
}

/** One market's download; with --json its answer goes to `answer` (printed as it is by default). */
async function downloadOne(
  store: DataStore,
  v: Values,
  io: Io,
  progress: (l: string) => Progress,
  answer: (x: unknown) => void = (x) => json(io, x),
): Promise<number> {
  const key = keyFrom(v);
  const now = Date.now();
  const since = v.since ? parseTime(v.since, 'since') : now - 30 * 86_400_000;
  const until = v.until ? parseTime(v.until, 'until') : now;
  if (!(since < until))
    throw new UsageError(
      `--since ${isoUtc(since)} is not before --until ${isoUtc(until)}${v.until === undefined ? ' (now)' : ''}: the range to download is empty`,
    );
  let extra: Record<string, unknown> = {};
  if (v['ccxt-config']) {
    try {
      extra = JSON.parse(v['ccxt-config']) as Record<string, unknown>;
    } catch {
      throw new UsageError('--ccxt-config must be JSON');
    }
  }
  let source: BarSource;
  const kind = v.source ?? 'ccxt';
  if (kind === 'archive') {
    source = new BinanceArchiveSource(v['base-url'] ? { baseUrl: v['base-url'] } : {});
  } else if (kind === 'ccxt') {
    const ids = [key.exchange, ...(v.failover ? v.failover.split(',').map((s) => s.trim()) : [])];
    const endpoints: CcxtEndpoint[] = ids.map((id) => ({ id, config: extra }));
    source = new CcxtSource({ endpoints });
  } else throw new UsageError(`--source "${kind}": expected ccxt or archive`);
  const bar = progress(`download ${seriesId(key)}`);
  const fill = parseFill(v.fill);
  try {
    const r = await download(
      store,
      key,
      source,
      { since, until },
      {
        ...(fill ? { fill } : {}),
        hooks: {
          onProgress: (d, t) => bar.update(d, t),
          onNote: (m) => (v.json ? undefined : io.stderr.write(`${m}\n`)),
        },
      },
    );
    if (!r) {
      if (v.json) answer({ ok: true, upToDate: true, series: seriesId(key), last: store.lastBarTime(key) });
      else io.stdout.write(`${seriesId(key)} is up to date (last bar ${isoUtc(store.lastBarTime(key) ?? 0)})\n`);
      return 0;
    }
    if (v.json) answer({ ok: true, series: seriesId(key), ...r, quarantined: r.quarantined.length });
    else {
      summary(io, r.report, `download ${seriesId(key)} via ${r.servedBy.join(', ')}`);
      io.stdout.write(
        `  raw objects ${r.raw.length}; partitions written ${r.partitionsWritten.length}, unchanged ${r.partitionsUnchanged.length}; bars added ${r.barsAdded}, replaced ${r.barsReplaced}\n`,
      );
    }
    return 0;
  } finally {
    if (source instanceof CcxtSource) await source.close();
  }
}

async function dataImport(
  store: DataStore,
  v: Values,
  files: string[],
  io: Io,
  progress: (l: string) => Progress,
): Promise<number> {
  if (files.length === 0)
    throw new UsageError('no files given; usage: keel data import FILE... [--symbol SYM --timeframe TF]');
  const fill = parseFill(v.fill);
  const results = [];
  const bar = progress('import');
  let failed = 0;
  let k = 0;
  for (const f of files) {
    const { key, batch, notes } = await readInput(store, v, f);
    const src: BarSource = {
      kind: 'file',
      name: f,
      async *fetch() {
        yield batch;
      },
    };
    const r = await ingest(
      store,
      key,
      src,
      { since: 0, until: Number.MAX_SAFE_INTEGER },
      { label: f, ...(fill ? { fill } : {}), badData: v['allow-bad-data'] ? 'drop' : 'refuse' },
    );
    const ok = r.report.rowsKept > 0;
    if (!ok) failed++;
    results.push({
      file: f,
      series: seriesId(key),
      ok,
      notes,
      importId: r.importId,
      report: r.report,
      partitionsWritten: r.partitionsWritten,
      partitionsUnchanged: r.partitionsUnchanged,
      barsAdded: r.barsAdded,
      barsReplaced: r.barsReplaced,
      barsKeptExisting: r.barsKeptExisting,
      raw: r.raw,
    });
    bar.update(++k, files.length, ' files');
    if (!v.json) {
      for (const n of notes) io.stdout.write(`note: ${n}\n`);
      summary(io, r.report, `import ${f} -> ${seriesId(key)}`);
      io.stdout.write(
        `  partitions written ${r.partitionsWritten.length}, unchanged ${r.partitionsUnchanged.length}; bars added ${r.barsAdded}, replaced ${r.barsReplaced}, kept existing ${r.barsKeptExisting}\n`,
      );
      const bad = r.report.rowsIn - r.report.rowsKept;
      if (ok && bad > 0)
        io.stdout.write(
          `  QUARANTINED ${bad.toLocaleString('en-US')} of ${r.report.rowsIn.toLocaleString('en-US')} rows (${(
            (100 * bad) / r.report.rowsIn
          ).toFixed(1)}%, --allow-bad-data): stored without them; recorded for keel data list and backtests\n`,
        );
      if (r.report.fill.filledBars > 0)
        io.stdout.write(
          `  FILLED ${r.report.fill.filledBars.toLocaleString('en-US')} missing bars with synthetic ones (${r.report.fill.policy}): counted by keel data list and backtests\n`,
        );
      if (!ok) io.stdout.write(`  NOT IMPORTED: no row of ${f} passed quality control\n`);
    }
  }
  if (v.json) json(io, { ok: failed === 0, imports: results });
  return failed === 0 ? 0 : 1;
}

async function dataValidate(store: DataStore, v: Values, files: string[], io: Io): Promise<number> {
  if (v.stored) {
    const rows = await store.verify();
    const bad = rows.filter((r) => r.rows !== r.catalogRows || r.duplicates > 0 || r.badOhlc > 0);
    if (v.json) json(io, { ok: bad.length === 0, series: rows });
    else {
      for (const r of rows)
        io.stdout.write(
          `${r.id}: ${r.rows} rows (catalog ${r.catalogRows}), duplicates ${r.duplicates}, OHLC violations ${r.badOhlc}\n`,
        );
      io.stdout.write(bad.length === 0 ? 'stored zone OK (checked by DuckDB)\n' : `${bad.length} series FAILED\n`);
    }
    return bad.length === 0 ? 0 : 1;
  }
  if (files.length === 0) throw new UsageError('no files given; usage: keel data validate FILE... or --stored');
  const min = v['min-coverage'] !== undefined ? Number(v['min-coverage']) : 0;
  if (!(min >= 0 && min <= 1)) throw new UsageError('--min-coverage must be between 0 and 1');
  const out = [];
  let failed = 0;
  for (const f of files) {
    const { key, batch, notes } = await readInput(store, v, f);
    const all = concatBatches([batch]);
    const gate = dataQualityGate(all.series, {
      source: f,
      timeframe: key.timeframe,
      exchange: key.exchange,
      marketType: key.marketType,
      maintenance: maintenanceFor(store.maintenance, key.exchange, key.marketType),
      priorQuarantine: all.quarantined,
      priorRowsIn: all.quarantined.length,
      ...(all.lines ? { lines: all.lines } : {}),
      ...(all.rows ? { rows: all.rows } : {}),
    });
    const report = gate.report;
    const reasons = [...gate.reasons];
    if (report.coverage < min)
      reasons.push(`coverage ${(report.coverage * 100).toFixed(3)}% is below --min-coverage ${min}`);
    const ok = reasons.length === 0;
    if (!ok) failed++;
    out.push({
      file: f,
      series: seriesId(key),
      ok,
      reasons,
      notes,
      rowsByRule: gate.rowsByRule,
      gaps: gate.gaps,
      problems: gate.problems.slice(0, MAX_PROBLEMS_SHOWN),
      problemsOmitted: Math.max(0, gate.problems.length - MAX_PROBLEMS_SHOWN),
      report,
    });
    if (!v.json) {
      for (const n of notes) io.stdout.write(`note: ${n}\n`);
      summary(io, report, `validate ${f}`);
      io.stdout.write(`${formatDataGate(gate)}\n`);
      if (report.coverage < min) io.stdout.write(`  REFUSED: coverage below ${min}\n`);
      io.stdout.write(ok ? `OK: ${f}\n` : `NOT OK: ${f}: ${reasons.join('; ')}\n`);
    }
  }
  if (v.json) json(io, { ok: failed === 0, files: out });
  return failed === 0 ? 0 : 1;
}

/** Problems listed per file in --json (the per-rule counts always cover all of them). */
const MAX_PROBLEMS_SHOWN = 1000;

function dataList(store: DataStore, v: Values, io: Io): number {
  const entries = store.catalog(v.symbol ? { symbol: v.symbol.replace(/[^A-Za-z0-9]/g, '').toUpperCase() } : undefined);
  if (v.json) {
    json(io, { ok: true, series: entries, features: store.featureSets() });
    return 0;
  }
  if (entries.length === 0) {
    io.stdout.write(`no data in ${store.dir}\n`);
    return 0;
  }
  io.stdout.write(
    `${'series'.padEnd(34)} ${'first'.padEnd(20)} ${'last'.padEnd(20)} ${'rows'.padStart(10)} ${'gaps'.padStart(5)} ${'filled'.padStart(7)} ${'quarant.'.padStart(8)} coverage\n`,
  );
  for (const e of entries) {
    const quarantined = Object.values(e.quarantined).reduce((a, n) => a + n, 0);
    // A filled gap is still a gap of the market's data: counted, and listed as filled.
    io.stdout.write(
      `${e.id.padEnd(34)} ${(e.first !== null ? isoUtc(e.first) : '-').padEnd(20)} ${(e.last !== null ? isoUtc(e.last) : '-').padEnd(20)} ${String(e.rows).padStart(10)} ${String(e.gaps.length + e.filled.length).padStart(5)} ${String(e.filledBars).padStart(7)} ${String(quarantined).padStart(8)} ${(e.coverage * 100).toFixed(3)}%\n`,
    );
    for (const g of [...e.gaps, ...e.filled].sort((a, b) => a.from - b.from).slice(0, 5))
      io.stdout.write(
        `    gap ${isoUtc(g.from)} .. ${isoUtc(g.to)} ${g.missingBars} bar(s) ${g.kind}${g.note ? ` (${g.note})` : ''}\n`,
      );
    if (quarantined > 0)
      io.stdout.write(
        `    quarantined at import: ${ruleCounts(e.quarantined)} (rows not stored; reports/ has each row)\n`,
      );
  }
  for (const f of store.featureSets())
    io.stdout.write(`features ${seriesId(f.key)}/${f.set}: ${f.columns.length} columns, ${f.rows} rows\n`);
  return 0;
}

function dataResample(store: DataStore, v: Values, io: Io, progress: (l: string) => Progress): number {
  const base = keyFrom(v);
  if (!v.to) throw new UsageError('--to is required, e.g. --to 1h,1d or --to all');
  const targets: Timeframe[] =
    v.to === 'all'
      ? ['3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M']
      : v.to.split(',').map((s) => {
          try {
            return parseTimeframe(s.trim());
          } catch (e) {
            throw new UsageError((e as Error).message);
          }
        });
  const bar = progress(`resample ${seriesId(base)}`);
  const out = [];
  let k = 0;
  for (const tf of targets) {
    const r = resampleStored(store, base, tf);
    out.push({
      timeframe: tf,
      bars: r.bars,
      partialSkipped: r.partialSkipped,
      partitionsWritten: r.result?.partitionsWritten.length ?? 0,
    });
    bar.update(++k, targets.length, ' timeframes');
    if (!v.json)
      io.stdout.write(
        `${seriesId(base)} -> ${tf}: ${r.bars} bars stored, ${r.partialSkipped} partial skipped, ${r.result?.partitionsWritten.length ?? 0} partitions written\n`,
      );
  }
  if (v.json) json(io, { ok: true, base: seriesId(base), results: out });
  return 0;
}

function dataExport(store: DataStore, v: Values, io: Io): number {
  const key = keyFrom(v);
  const range = {
    ...(v.from ? { from: parseTime(v.from, 'from') } : {}),
    ...(v.to ? { to: parseTime(v.to, 'to') } : {}),
  };
  if (range.from !== undefined && range.to !== undefined && !(range.from < range.to))
    throw new UsageError(
      `--from ${isoUtc(range.from)} is not before --to ${isoUtc(range.to)}: the range to export is empty`,
    );
  const { series: s, partial, from, sources } = store.readBarsAt(key, range);
  const format = v.format ?? 'csv';
  let text: string;
  if (format === 'csv') {
    const lines = ['open_time,open,high,low,close,volume,quote_volume,trades,taker_buy_volume,partial'];
    const f = (x: number) => (Number.isNaN(x) ? '' : String(x));
    for (let i = 0; i < s.length; i++) {
      lines.push(
        `${s.time[i]},${s.open[i]},${s.high[i]},${s.low[i]},${s.close[i]},${s.volume[i]},${f(s.quoteVolume[i] as number)},${f(s.trades[i] as number)},${f(s.takerBuyVolume[i] as number)},${partial[i] ? 1 : 0}`,
      );
    }
    text = `${lines.join('\n')}\n`;
  } else if (format === 'json') {
    const bars = [];
    const f = (x: number) => (Number.isNaN(x) ? null : x);
    for (let i = 0; i < s.length; i++) {
      bars.push({
        time: s.time[i],
        open: s.open[i],
        high: s.high[i],
        low: s.low[i],
        close: s.close[i],
        volume: s.volume[i],
        quoteVolume: f(s.quoteVolume[i] as number),
        trades: f(s.trades[i] as number),
        takerBuyVolume: f(s.takerBuyVolume[i] as number),
        partial: partial[i] === 1,
      });
    }
    text = `${JSON.stringify({ series: seriesId(key), resampledFrom: from === key.timeframe ? null : from, bars })}\n`;
  } else throw new UsageError(`--format "${format}": expected csv or json`);
  if (v.out) {
    writeFileSync(v.out, text);
    if (v.json)
      json(io, {
        ok: true,
        series: seriesId(key),
        rows: s.length,
        out: v.out,
        resampledFrom: from === key.timeframe ? null : from,
        sources,
      });
    else io.stdout.write(`wrote ${s.length} bars of ${seriesId(key)} to ${v.out}\n`);
  } else io.stdout.write(text);
  return 0;
}

function featuresBuild(store: DataStore, v: Values, io: Io): number {
  const key = keyFrom(v);
  let reference: SeriesKey | undefined;
  const refSym = v.ref ?? (key.symbol !== 'BTCUSDT' ? 'BTCUSDT' : undefined);
  if (refSym) {
    const rk = seriesKey(key.exchange, key.marketType, refSym, key.timeframe);
    if (store.partitions(rk).length > 0) reference = rk;
    else if (v.ref) throw new DataError('series-not-found', `reference ${seriesId(rk)} is not stored`);
  }
  const normalise = v.normalize ? { window: Number(v.normalize), clip: v.clip ? Number(v.clip) : 4 } : undefined;
  if (normalise && !(normalise.window >= 2)) throw new UsageError('--normalize must be a window of at least 2 rows');
  const t0 = performance.now();
  const r = buildFeatures(store, key, {
    ...(v.set ? { set: v.set } : {}),
    ...(reference ? { reference } : {}),
    ...(normalise ? { normalise } : {}),
  });
  const ms = performance.now() - t0;
  if (v.json) {
    json(io, {
      ok: true,
      series: seriesId(key),
      set: v.set ?? 'default',
      reference: reference ? seriesId(reference) : null,
      rows: r.frame.time.length,
      features: r.frame.defs,
      months: r.months,
      qc: r.qc,
    });
    return 0;
  }
  io.stdout.write(
    `features ${seriesId(key)}/${v.set ?? 'default'}: ${r.frame.defs.length} features x ${r.frame.time.length} rows in ${ms.toFixed(0)} ms${reference ? `, reference ${seriesId(reference)}` : ' (no reference: cross-asset columns are NaN)'}\n`,
  );
  io.stdout.write(
    `  families: ${Object.entries(r.qc.families)
      .map(([f, n]) => `${f} ${n}`)
      .join(', ')}\n`,
  );
  const worst = Object.entries(r.qc.nanShareAfterWarmup)
    .filter(([, s]) => s > 0)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5);
  io.stdout.write(
    `  NaN after warm-up: ${worst.length === 0 ? 'none' : worst.map(([n, s]) => `${n} ${(s * 100).toFixed(2)}%`).join(', ')}\n`,
  );
  io.stdout.write(
    `  constant columns: ${r.qc.constantColumns.length === 0 ? 'none' : r.qc.constantColumns.join(', ')}\n`,
  );
  io.stdout.write(
    `  |corr| > ${r.qc.correlationThreshold}: ${r.qc.correlatedPairs.length === 0 ? 'none' : r.qc.correlatedPairs.map((p) => `${p.a}~${p.b} ${p.corr.toFixed(3)}`).join(', ')}\n`,
  );
  return 0;
}
