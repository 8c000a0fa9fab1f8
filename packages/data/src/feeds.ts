import { readBarsFile, type TimeIs } from '@keel/candles';
import type { BarSeries, Timeframe } from '@keel/core';
import { isoUtc, sliceSeries, timeframeEnd, timeframeMs, timeframeStart } from '@keel/core';
import { maintenanceFor } from './maintenance.ts';
import {
  type DataGateResult,
  dataQualityGate,
  formatDataGate,
  type GapSummary,
  type GateMode,
  problemOf,
  problemPlace,
  type QuarantinedBar,
  ruleCounts,
} from './qc.ts';
import { resampleBars } from './resample.ts';
import { DataError, type FullSeries, type MarketType, seriesId, seriesKey, sliceFull } from './schema.ts';
import { type ColumnMapping, fileTimeframe, readFileBatch } from './sources/files.ts';
import { completeBars, type DataStore, rangeText } from './store.ts';

export { type FileNameFacts, fileNameFacts, fileSymbolConflict, runMarket } from '@keel/candles';
export { parseColumnMapping, parseTimeIs } from './sources/files.ts';

/**
 * The bars a backtest runs on, one market at a time: read from a candle file or from the store,
 * checked by the data-quality gate, and brought to the run's timeframe (resampled from a finer one,
 * never from a coarser one). Everything a person should know about the data comes back as values
 * (notes, the gate's counts and gaps) for the caller to show: nothing is dropped or changed silently.
 */

/** Where a market's bars come from. */
export type FeedOrigin =
  | {
      readonly kind: 'file';
      readonly file: string;
      readonly mapping?: ColumnMapping;
      readonly timeIs?: TimeIs;
      /** The timeframe the file's name gives (binance_BTCUSDT_1h_...), used when the spacing cannot tell. */
      readonly nameTimeframe?: Timeframe;
    }
  | {
      readonly kind: 'store';
      readonly store: DataStore;
      readonly exchange: string;
      readonly marketType: MarketType;
    };

export interface FeedLoadOptions {
  /** The market (BTC/USDT). */
  readonly symbol: string;
  readonly origin: FeedOrigin;
  /** The run's timeframe; default: the data's own (required for the store). */
  readonly timeframe?: Timeframe;
  /**
   * The run's range. The store reads only it; a file is read (and checked) whole. Bars resampled to
   * a coarser timeframe are made from the finer bars in the range only (from the start of the
   * coarse bar holding `from`), so that no bar holds data from after `to`, as from the store.
   */
  readonly from?: number;
  readonly to?: number;
  /** refuse (default): bad rows fail the load; drop: they are dropped and counted. */
  readonly badData?: GateMode;
}

/** What the gate found, for the summary. */
export interface FeedQuality {
  readonly rowsIn: number;
  readonly rowsKept: number;
  /** Rows dropped, by rule (drop mode; empty otherwise). */
  readonly dropped: Readonly<Record<string, number>>;
  readonly gaps: GapSummary;
  /** The timeframe the gate ran at (the gaps' bars). */
  readonly timeframe: Timeframe;
  /** Bars synthesised by a gap-fill policy at import (or resampled from such bars): present, not market data. */
  readonly filledBars: number;
  /** Rows the store's imports of the span read quarantined, per rule (the store only). */
  readonly quarantinedAtImport: Readonly<Record<string, number>>;
  /** What the gate read: a file whole (whatever the run's range), or the range read from the store. */
  readonly scope: 'whole file' | 'range read';
  /**
   * Bars whose return or range is an outlier (robust z > 12, the rule of `keel data validate`):
   * kept, and shown as a warning (a 100x print is more often a bad row than a market).
   */
  readonly outliers: {
    readonly returns: number;
    readonly ranges: number;
    /** The largest close-to-close move (close / previous close) and its bar's time: whether it is a market or a bad print. */
    readonly largest: { readonly ratio: number; readonly time: number } | null;
  };
}

export interface LoadedFeed {
  readonly symbol: string;
  /** The run's timeframe (the bars' after any resampling). */
  readonly timeframe: Timeframe;
  /** The timeframe the data was read at (finer than `timeframe` when resampled). */
  readonly dataTimeframe: Timeframe;
  readonly series: BarSeries;
  /** The file, or the store's series and folder. */
  readonly source: string;
  /** What a person should be told about how the data was read, resampled or cut. */
  readonly notes: readonly string[];
  readonly quality: FeedQuality;
}

function dropped(gate: DataGateResult): Record<string, number> {
  if (gate.mode !== 'drop') return {};
  const out: Record<string, number> = {};
  for (const [rule, n] of Object.entries(gate.rowsByRule)) if (n > 0) out[rule] = n;
  return out;
}

/** The gate's verdict as an error a person can act on (file, row, field, rule, and the way out). */
function refused(gate: DataGateResult): DataError {
  return new DataError(
    'quality-gate',
    gate.rowsKept === 0
      ? formatDataGate(gate)
      : `${formatDataGate(gate)}\nKeel refuses data that breaks a rule; --allow-bad-data drops those rows and counts them in the summary`,
  );
}

function outliers(gate: DataGateResult): FeedQuality['outliers'] {
  const f = gate.report.flags;
  const returns = f['outlier-return'];
  const ranges = f['outlier-range'];
  if (returns + ranges === 0) return { returns, ranges, largest: null };
  const { close, time } = gate.bars;
  // The largest move either way: the ratio furthest from 1 on a log scale (x100 up or x100 down).
  let up = 1;
  let down = 1;
  let iu = -1;
  let id = -1;
  for (let i = 1; i < close.length; i++) {
    const r = (close[i] as number) / (close[i - 1] as number);
    if (r > up) [up, iu] = [r, i];
    else if (r < down) [down, id] = [r, i];
  }
  const k = up * down >= 1 ? iu : id;
  const largest = k < 0 ? null : { ratio: (close[k] as number) / (close[k - 1] as number), time: time[k] as number };
  return { returns, ranges, largest };
}

/** Resampled bars without the partial ones at the edges (a period the input does not fully cover). */
function withoutPartialEdges(series: FullSeries, partial: Uint8Array): { series: FullSeries; cut: number } {
  let a = 0;
  let b = series.length;
  while (a < b && partial[a] === 1) a++;
  while (b > a && partial[b - 1] === 1) b--;
  return { series: a === 0 && b === series.length ? series : sliceFull(series, a, b), cut: a + (series.length - b) };
}

function partialNote(cut: number): string {
  return cut > 0 ? `; ${cut} partial bar${cut === 1 ? '' : 's'} at the edges left out` : '';
}

/**
 * Bars resampled to a coarser timeframe from the finer bars in [start of the coarse bar holding
 * `range.from`, `range.to`), as the store reads them, without the partial bars at the edges: a
 * coarse bar reaching past `to` would carry prices from after the run's end into it.
 */
function coarser(
  series: FullSeries,
  from: Timeframe,
  to: Timeframe,
  source: string,
  range: { readonly from?: number; readonly to?: number },
): { series: FullSeries; note: string } {
  const t = series.time;
  let a = 0;
  let b = series.length;
  if (range.from !== undefined) {
    const start = timeframeStart(to, range.from);
    while (a < b && (t[a] as number) < start) a++;
  }
  if (range.to !== undefined) while (b > a && (t[b - 1] as number) >= range.to) b--;
  const input = a === 0 && b === series.length ? series : sliceFull(series, a, b);
  const r = resampleBars(input, from, to);
  const kept = withoutPartialEdges(r.series, r.partial);
  return {
    series: kept.series,
    note: `${source}: ${from} bars resampled to ${to} (${input.length.toLocaleString('en-US')} -> ${kept.series.length.toLocaleString('en-US')} bars${partialNote(kept.cut)})`,
  };
}

/** Rows the reader could not read, as the error to show before anything that needs the rows. */
function unreadRows(file: string, rowsIn: number, bad: readonly QuarantinedBar[]): DataError {
  const byRule: Record<string, number> = {};
  for (const q of bad) byRule[q.rule] = (byRule[q.rule] ?? 0) + 1;
  const first = problemOf(bad[0] as QuarantinedBar, file);
  return new DataError(
    'quality-gate',
    `data-quality gate FAILED: ${bad.length} of ${rowsIn} rows cannot be read (${ruleCounts(byRule)}); first at ${problemPlace(first)}: ${first.message}`,
  );
}

function timeframeOrder(finer: Timeframe, coarse: Timeframe, source: string): void {
  if (timeframeMs(finer) > timeframeMs(coarse))
    throw new DataError(
      'timeframe-finer-than-data',
      `${source}: the data is ${finer} bars, --timeframe ${coarse} is finer: bars cannot be split (give --timeframe ${finer} or coarser)`,
    );
}

async function fromFile(o: FeedLoadOptions, origin: Extract<FeedOrigin, { kind: 'file' }>): Promise<LoadedFeed> {
  const file = origin.file;
  const batch = await readFileBatch(file, {
    ...(origin.mapping ? { mapping: origin.mapping } : {}),
    ...(origin.timeIs ? { timeIs: origin.timeIs } : {}),
  });
  const read = fileTimeframe(file, batch.timeframe, origin.nameTimeframe);
  const notes = [...(batch.notes ?? []), ...read.notes];
  const dataTf = read.timeframe ?? o.timeframe;
  // Rows that cannot be read hide the spacing of the times: they are the cause to show, not the timeframe.
  if (dataTf === undefined && batch.quarantined.length > 0) throw unreadRows(file, batch.rowsIn, batch.quarantined);
  if (dataTf === undefined)
    throw new DataError(
      'timeframe-unknown',
      `${file}: cannot tell the bar timeframe from the times or the file name: give --timeframe`,
    );
  const gate = dataQualityGate(batch.series, {
    source: file,
    timeframe: dataTf,
    mode: o.badData ?? 'refuse',
    // Outliers are shown; stale runs and zero volume are not (`keel data validate` shows them).
    flags: 'outliers',
    priorQuarantine: batch.quarantined,
    priorRowsIn: batch.quarantined.length,
    ...(batch.lines ? { lines: batch.lines } : {}),
    ...(batch.rows ? { rows: batch.rows } : {}),
  });
  if (!gate.ok) throw refused(gate);
  let series = gate.bars;
  const timeframe = o.timeframe ?? dataTf;
  if (timeframe !== dataTf) {
    timeframeOrder(dataTf, timeframe, file);
    const r = coarser(series, dataTf, timeframe, file, o);
    series = r.series;
    notes.push(r.note);
  }
  return {
    symbol: o.symbol,
    timeframe,
    dataTimeframe: dataTf,
    series,
    source: file,
    notes,
    quality: {
      rowsIn: gate.rowsIn,
      rowsKept: gate.rowsKept,
      dropped: dropped(gate),
      gaps: gate.gaps,
      timeframe: dataTf,
      filledBars: 0,
      quarantinedAtImport: {},
      scope: 'whole file',
      outliers: outliers(gate),
    },
  };
}

function fromStore(o: FeedLoadOptions, origin: Extract<FeedOrigin, { kind: 'store' }>): LoadedFeed {
  if (o.timeframe === undefined)
    throw new DataError('timeframe-unknown', 'reading from the store needs the timeframe: give --timeframe');
  const store = origin.store;
  const key = seriesKey(origin.exchange, origin.marketType, o.symbol, o.timeframe);
  // The one reading of a timeframe from the store: its own series and finer ones resampled, by precedence.
  const r = store.readBarsAt(key, {
    ...(o.from !== undefined ? { from: o.from } : {}),
    ...(o.to !== undefined ? { to: o.to } : {}),
    label: o.symbol,
  });
  const source = `${r.sources.map((s) => seriesId({ ...key, timeframe: s.timeframe })).join(' + ')} in the store at ${store.dir}`;
  const notes: string[] = [];
  // A partial bar (its period not fully covered by its source) is not a bar of the run: left out, counted.
  const series = completeBars(r);
  const partial = r.series.length - series.length;
  const resampled = r.sources.filter((s) => s.timeframe !== o.timeframe);
  if (resampled.length > 0 || partial > 0)
    notes.push(
      `${source}: ${r.sources.map((s) => (s.timeframe === key.timeframe ? `${bars(s.bars, s.timeframe)} stored` : `${s.timeframe} bars resampled to ${key.timeframe} on the fly (${bars(s.bars, key.timeframe)})`)).join(', ')}${partial > 0 ? `; ${partial} partial bar${partial === 1 ? '' : 's'} left out` : ''}`,
    );
  if (series.length === 0)
    throw new DataError(
      'no-bars-in-range',
      `the store at ${store.dir} has only partial ${o.timeframe} bars of ${o.symbol} in ${rangeText(o.from, o.to)} (the finer bars do not cover a whole ${o.timeframe} period)`,
    );
  let filled = 0;
  for (let i = 0; i < r.filled.length; i++) if (r.filled[i] === 1 && r.partial[i] === 0) filled++;
  const gate = dataQualityGate(series, {
    source,
    timeframe: o.timeframe,
    mode: o.badData ?? 'refuse',
    exchange: key.exchange,
    marketType: key.marketType,
    maintenance: maintenanceFor(store.maintenance, key.exchange, key.marketType),
    flags: 'outliers',
  });
  if (!gate.ok) throw refused(gate);
  return {
    symbol: o.symbol,
    timeframe: o.timeframe,
    dataTimeframe: r.from,
    series: gate.bars,
    source,
    notes,
    quality: {
      rowsIn: gate.rowsIn,
      rowsKept: gate.rowsKept,
      dropped: dropped(gate),
      gaps: gate.gaps,
      timeframe: o.timeframe,
      filledBars: filled,
      quarantinedAtImport: r.quarantined,
      scope: 'range read',
      outliers: outliers(gate),
    },
  };
}

/** One market's bars for a backtest (see the module comment). */
export async function loadFeed(o: FeedLoadOptions): Promise<LoadedFeed> {
  checkRangeOrder(o.from, o.to);
  return o.origin.kind === 'file' ? fromFile(o, o.origin) : fromStore(o, o.origin);
}

/**
 * Checks the run's range against the data: a range that holds no bar of a market (a `from` after
 * its data ends, a `to` before it starts) is an error naming the market and its span, never a
 * table of zeros. A range the data covers only in part runs on what there is, with a note per
 * market saying which part has no bars (a run asked for December to February on January's bars
 * must not read as if it covered the three months).
 */
export function checkRange(
  feeds: readonly LoadedFeed[],
  from: number | undefined,
  to: number | undefined,
): LoadedFeed[] {
  checkRangeOrder(from, to);
  for (const f of feeds) {
    const s = f.series;
    if (s.length === 0) throw new DataError('no-bars', `${f.source}: no bars`);
    const first = s.time[0] as number;
    const last = s.time[s.length - 1] as number;
    const span = `${f.symbol} bars run from ${isoUtc(first)} to ${isoUtc(timeframeEnd(f.timeframe, last))}`;
    if (from !== undefined && from > last)
      throw new DataError('no-bars-in-range', `--from ${isoUtc(from)} is after the data ends: ${span} (${f.source})`);
    if (to !== undefined && to <= first)
      throw new DataError('no-bars-in-range', `--to ${isoUtc(to)} is before the data starts: ${span} (${f.source})`);
    let any = false;
    for (let i = 0; i < s.length && !any; i++) {
      const t = s.time[i] as number;
      if ((from === undefined || t >= from) && (to === undefined || t < to)) any = true;
    }
    if (!any)
      throw new DataError('no-bars-in-range', `no ${f.symbol} bar in ${rangeText(from, to)}: ${span} (${f.source})`);
  }
  return feeds.map((f) => {
    const short = rangeShortfall(f, from, to);
    return short.length === 0 ? f : { ...f, notes: [...f.notes, ...short] };
  });
}

/** A --from not before --to is refused before any data is read, the same for a file and the store. */
function checkRangeOrder(from: number | undefined, to: number | undefined): void {
  if (from !== undefined && to !== undefined && !(from < to))
    throw new DataError('bad-range', `--from ${isoUtc(from)} is not before --to ${isoUtc(to)}`);
}

/** The parts of the asked range, a whole bar or more, that a market's data does not reach. */
function rangeShortfall(f: LoadedFeed, from: number | undefined, to: number | undefined): string[] {
  const s = f.series;
  const first = s.time[0] as number;
  const end = timeframeEnd(f.timeframe, s.time[s.length - 1] as number);
  const bar = timeframeMs(f.timeframe);
  const out: string[] = [];
  if (from !== undefined && first - from >= bar)
    out.push(
      `${f.symbol}: --from ${isoUtc(from)} is before the data starts (${isoUtc(first)}): the run starts there, ${bars(Math.floor((first - from) / bar), f.timeframe)} short of the range asked (${f.source})`,
    );
  if (to !== undefined && to - end >= bar)
    out.push(
      `${f.symbol}: --to ${isoUtc(to)} is after the data ends (${isoUtc(end)}): the run ends there, ${bars(Math.floor((to - end) / bar), f.timeframe)} short of the range asked (${f.source})`,
    );
  return out;
}

/**
 * Markets that cover different spans, cut to the span they all cover, with a note: equity is
 * recorded on the first market's bars, so a market trading on after it ends would be missed, and
 * one starting later would enter an account the others had already moved.
 */
export function commonSpan(feeds: readonly LoadedFeed[]): LoadedFeed[] {
  if (feeds.length < 2) return [...feeds];
  const first = Math.max(...feeds.map((f) => f.series.time[0] as number));
  const last = Math.min(...feeds.map((f) => f.series.time[f.series.length - 1] as number));
  if (!(first <= last))
    throw new DataError(
      'no-common-span',
      `the markets share no time span: ${feeds.map((f) => `${f.symbol} ${isoUtc(f.series.time[0] as number)} .. ${isoUtc(f.series.time[f.series.length - 1] as number)}`).join(', ')}`,
    );
  return feeds.map((f) => {
    const t = f.series.time;
    let a = 0;
    let b = f.series.length;
    while (a < b && (t[a] as number) < first) a++;
    while (b > a && (t[b - 1] as number) > last) b--;
    if (a === 0 && b === f.series.length) return f;
    return {
      ...f,
      series: sliceSeries(f.series, a, b),
      notes: [
        ...f.notes,
        `${f.symbol}: cut to the span every market covers, ${isoUtc(first)} .. ${isoUtc(last)} (${a + (f.series.length - b)} bars left out)`,
      ],
    };
  });
}

function bars(n: number, tf: Timeframe): string {
  return `${n.toLocaleString('en-US')} ${tf} bar${n === 1 ? '' : 's'}`;
}

/** The summary lines about the data of a run: per market its source, bars, dropped rows and gaps. */
export function feedQualityLines(feeds: readonly LoadedFeed[]): string[] {
  const f = (n: number) => n.toLocaleString('en-US');
  const lines: string[] = [];
  for (const feed of feeds) {
    const q = feed.quality;
    const g = q.gaps;
    const gaps =
      g.count === 0
        ? `no gaps (${q.scope})`
        : `gaps (${q.scope}) ${f(g.count)} (${bars(g.missingBars, q.timeframe)} missing${g.maintenanceBars > 0 ? `, ${f(g.maintenanceBars)} of them in exchange maintenance` : ''}), longest ${bars(g.longest?.missingBars ?? 0, q.timeframe)} from ${isoUtc(g.longest?.start ?? 0)}`;
    const drops = Object.entries(q.dropped);
    const dropText =
      drops.length === 0 ? '' : `; ${f(q.rowsIn - q.rowsKept)} bad rows dropped (${ruleCounts(q.dropped)})`;
    const filledText =
      q.filledBars === 0
        ? ''
        : `; ${bars(q.filledBars, feed.timeframe)} gap-filled at import (synthetic, in whole or in part: not market data)`;
    const quarantined = Object.values(q.quarantinedAtImport).reduce((a, n) => a + n, 0);
    const quarantineText =
      quarantined === 0
        ? ''
        : `; ${f(quarantined)} rows quarantined at import (${ruleCounts(q.quarantinedAtImport)}; keel data list)`;
    const resampled =
      feed.timeframe !== feed.dataTimeframe ? `, ${feed.dataTimeframe} bars resampled to ${feed.timeframe}` : '';
    lines.push(`  ${feed.symbol}: ${feed.source}${resampled}, ${gaps}${filledText}${dropText}${quarantineText}`);
    const o = q.outliers;
    if (o.returns + o.ranges > 0) {
      const big = o.largest;
      const move =
        big === null
          ? ''
          : `; the largest close-to-close move is ${big.ratio >= 1 ? 'up' : 'down'} x${(big.ratio >= 1 ? big.ratio : 1 / big.ratio).toPrecision(4)} at ${isoUtc(big.time)}`;
      lines.push(
        `  warning: ${feed.symbol}: ${f(o.returns)} return and ${f(o.ranges)} high-low range outliers (robust z > 12, as keel data validate flags them; ${q.scope})${move}: kept and run; check that they are the market, not bad prints`,
      );
    }
  }
  return lines;
}

/**
 * Mark-price bars (Binance's markPriceKlines archive: the 12 columns of its klines) on the run's
 * timeframe, for `--mark` of backtest and paper: a row that cannot be read, or bars of another
 * timeframe (a 1m mark bar is not an hour's mark), is an error naming the file.
 */
export function readMarkFile(file: string, timeframe: Timeframe): BarSeries {
  const parsed = readBarsFile(file);
  const bad = parsed.quarantined[0];
  if (bad !== undefined)
    throw new DataError('mark-file', `--mark ${file}: line ${bad.line}: ${bad.field}: ${bad.message}`);
  const tf = parsed.time.timeframe;
  if (tf !== null && tf !== timeframe)
    throw new DataError(
      'mark-file',
      `--mark ${file} holds ${tf} bars but the run is on ${timeframe} bars: give the mark bars of the traded timeframe`,
    );
  return parsed.series;
}
