import type { BarSeries, Timeframe } from '@keel/core';
import { assertNever, isoUtc, timeframeEnd, timeframeMs, timeframeStart } from '@keel/core';
import { KNOWN_MAINTENANCE, type MaintenanceWindow, maintenanceFor } from './maintenance.ts';
import { allocSeries, DataError, type FullSeries, type MarketType, SERIES_COLUMNS, toFullSeries } from './schema.ts';

/**
 * Quality control for one batch of bars. Rows that break a rule are quarantined with the rule and
 * never silently dropped or fixed; suspicious-but-real rows (outliers, stale runs) are kept and
 * flagged; gaps are reported, and filled only when an explicit policy asks for it (recorded).
 */

/** Rules that quarantine a row (the row is not stored). */
export const QUARANTINE_RULES = [
  'non-finite',
  'non-positive-price',
  'negative-volume',
  'ohlc-inconsistent',
  'misaligned-timestamp',
  'non-monotonic',
  'duplicate-identical',
  'duplicate-conflicting',
] as const;
export type QuarantineRule = (typeof QUARANTINE_RULES)[number];

/** Flags on kept rows (reported, not removed). */
export const FLAG_RULES = ['outlier-return', 'outlier-range', 'stale-run', 'zero-volume'] as const;
export type FlagRule = (typeof FLAG_RULES)[number];

export interface QuarantinedBar {
  /** Row index in the validated input batch (-1 for rows refused while parsing the file). */
  readonly row: number;
  readonly rule: QuarantineRule | string;
  readonly message: string;
  readonly time: number;
  readonly values: readonly number[];
  /** Source file and line, when the batch came from a file. */
  readonly file?: string;
  readonly line?: number;
  /** 1-based data row as the user counts it in the file (header and blank lines not counted). */
  readonly dataRow?: number;
  /** The field at fault: time, open, high, low, close, volume, or row (the row as a whole). */
  readonly field?: string;
}

export interface Gap {
  /** Open time of the first missing bar. */
  readonly from: number;
  /** Open time of the next present bar (exclusive end). */
  readonly to: number;
  readonly missingBars: number;
  readonly kind: 'missing' | 'maintenance';
  readonly note?: string;
}

export type FillPolicy = 'none' | 'flat-previous-close';

export interface QcReport {
  readonly timeframe: Timeframe;
  readonly source?: string;
  readonly rowsIn: number;
  readonly rowsKept: number;
  readonly quarantined: Readonly<Record<string, number>>;
  readonly flags: Readonly<Record<FlagRule, number>>;
  readonly first: number | null;
  readonly last: number | null;
  readonly expectedBars: number;
  readonly missingBars: number;
  readonly maintenanceBars: number;
  /** rowsKept (real bars) / (expected bars - bars inside known maintenance windows), 0..1. */
  readonly coverage: number;
  readonly gaps: readonly Gap[];
  readonly fill: { readonly policy: FillPolicy; readonly filledBars: number };
  /** A few examples per flag (time in ISO) so a reader can check them. */
  readonly flagSamples: Readonly<Partial<Record<FlagRule, readonly string[]>>>;
  readonly quarantineSamples: readonly QuarantinedBar[];
}

export interface QcOptions {
  readonly timeframe: Timeframe;
  readonly exchange?: string;
  readonly marketType?: MarketType;
  readonly source?: string;
  readonly maintenance?: readonly MaintenanceWindow[];
  /** Robust z-score threshold for return and range outliers (default 12). */
  readonly outlierZ?: number;
  /** Minimum run of identical consecutive bars reported as stale (default 5). */
  readonly staleRun?: number;
  readonly fill?: FillPolicy;
  /**
   * Flag outliers, stale runs and zero volume (default true); 'outliers' flags the return and range
   * outliers only (the backtest's gate: a 100x spike must not pass unseen, while stale runs and
   * zero volume are common in real minute bars and would only be noise there).
   */
  readonly flags?: boolean | 'outliers';
  /** Quarantine rows from an earlier stage (e.g. CSV parsing) to merge into the report. */
  readonly priorQuarantine?: readonly QuarantinedBar[];
  readonly priorRowsIn?: number;
  /** Line number of each input row, when known (to name file and line in quarantine records). */
  readonly lines?: Int32Array;
  /** 1-based data row of each input row in its file, when known (else the 1-based row of the batch). */
  readonly rows?: Int32Array;
  readonly file?: string;
}

export interface QcResult {
  /** Kept rows (plus filled rows when a fill policy is set; filled rows are listed in `filled`). */
  readonly kept: FullSeries;
  /** 1 where the kept row was synthesised by the fill policy. */
  readonly filled: Uint8Array;
  readonly quarantined: readonly QuarantinedBar[];
  readonly report: QcReport;
}

const MAX_SAMPLES = 5;

export function validateBars(input: BarSeries, opts: QcOptions): QcResult {
  const s = toFullSeries(input);
  const n = s.length;
  const tf = opts.timeframe;
  const tfMs = tf === '1w' || tf === '1M' ? 0 : timeframeMs(tf);
  const { time, open, high, low, close, volume } = s;
  const keep = new Uint8Array(n);
  const quarantined: QuarantinedBar[] = [...(opts.priorQuarantine ?? [])];
  const counts: Record<string, number> = {};
  for (const q of quarantined) counts[q.rule] = (counts[q.rule] ?? 0) + 1;
  const quarantine = (i: number, rule: QuarantineRule, message: string): void => {
    counts[rule] = (counts[rule] ?? 0) + 1;
    const line = opts.lines?.[i];
    quarantined.push({
      row: i,
      dataRow: opts.rows?.[i] ?? i + 1,
      field: faultyField(s, i, rule),
      rule,
      message,
      time: time[i] as number,
      values: [
        time[i] as number,
        open[i] as number,
        high[i] as number,
        low[i] as number,
        close[i] as number,
        volume[i] as number,
      ],
      ...(opts.file !== undefined ? { file: opts.file } : {}),
      ...(line !== undefined ? { line } : {}),
    });
  };
  const kept = scanRows(s, tf, tfMs, keep, quarantine);
  let clean: FullSeries;
  if (kept === n) clean = s;
  else {
    clean = allocSeries(kept);
    let k = 0;
    for (let i = 0; i < n; i++) {
      if (keep[i] === 0) continue;
      clean.time[k] = time[i] as number;
      clean.open[k] = open[i] as number;
      clean.high[k] = high[i] as number;
      clean.low[k] = low[i] as number;
      clean.close[k] = close[i] as number;
      clean.volume[k] = volume[i] as number;
      clean.quoteVolume[k] = s.quoteVolume[i] as number;
      clean.trades[k] = s.trades[i] as number;
      clean.takerBuyVolume[k] = s.takerBuyVolume[i] as number;
      k++;
    }
  }

  const ct = clean.time;
  const {
    gaps,
    missingBars: missing,
    maintenanceBars,
  } = findGaps(ct, tf, maintenanceFor(opts.maintenance ?? KNOWN_MAINTENANCE, opts.exchange, opts.marketType));

  const flags: Record<FlagRule, number> = { 'outlier-return': 0, 'outlier-range': 0, 'stale-run': 0, 'zero-volume': 0 };
  const samples: Partial<Record<FlagRule, string[]>> = {};
  const flag = (rule: FlagRule, t: number): void => {
    flags[rule]++;
    const arr = (samples[rule] ??= []);
    if (arr.length < MAX_SAMPLES) arr.push(isoUtc(t));
  };
  if (opts.flags !== false) {
    if (kept > 2) flagOutliers(clean, opts.outlierZ ?? 12, flag);
    if (opts.flags !== 'outliers') flagRuns(clean, opts.staleRun ?? 5, flag);
  }

  // Optional fill: only by explicit policy, recorded in the report; filled rows are marked.
  const policy = opts.fill ?? 'none';
  let out = clean;
  let filled = new Uint8Array(kept);
  let filledBars = 0;
  if (policy === 'flat-previous-close' && gaps.length > 0) {
    const total = kept + missing + maintenanceBars;
    out = allocSeries(total);
    filled = new Uint8Array(total);
    let k = 0;
    for (let i = 0; i < kept; i++) {
      if (i > 0) {
        let t = timeframeEnd(tf, ct[i - 1] as number);
        const pc = clean.close[i - 1] as number;
        while (t < (ct[i] as number)) {
          out.time[k] = t;
          out.open[k] = pc;
          out.high[k] = pc;
          out.low[k] = pc;
          out.close[k] = pc;
          out.volume[k] = 0;
          out.quoteVolume[k] = 0;
          out.trades[k] = 0;
          out.takerBuyVolume[k] = 0;
          filled[k] = 1;
          filledBars++;
          k++;
          t = timeframeEnd(tf, t);
        }
      }
      for (const c of SERIES_COLUMNS) out[c][k] = clean[c][i] as number;
      k++;
    }
  }

  const expected = kept === 0 ? 0 : kept + missing + maintenanceBars;
  const denom = expected - maintenanceBars;
  const rowsIn = (opts.priorRowsIn ?? 0) + n;
  const report: QcReport = {
    timeframe: tf,
    ...(opts.source !== undefined ? { source: opts.source } : {}),
    rowsIn,
    rowsKept: kept,
    quarantined: counts,
    flags,
    first: kept > 0 ? (ct[0] as number) : null,
    last: kept > 0 ? (ct[kept - 1] as number) : null,
    expectedBars: expected,
    missingBars: missing,
    maintenanceBars,
    coverage: denom > 0 ? kept / denom : 0,
    gaps,
    fill: { policy, filledBars },
    flagSamples: samples,
    quarantineSamples: quarantined.slice(0, 20),
  };
  return { kept: out, filled, quarantined, report };
}

/** Gaps between consecutive sorted open times on the timeframe grid, classified by maintenance windows. */
export function findGaps(
  time: Float64Array,
  tf: Timeframe,
  windows: readonly MaintenanceWindow[],
): { gaps: Gap[]; missingBars: number; maintenanceBars: number } {
  const tfMs = timeframeMs(tf);
  const gaps: Gap[] = [];
  let missing = 0;
  let maintenanceBars = 0;
  for (let i = 1; i < time.length; i++) {
    const prev = time[i - 1] as number;
    const cur = time[i] as number;
    const next = tf === '1M' ? timeframeEnd(tf, prev) : prev + tfMs;
    if (cur === next) continue;
    const bars = tf === '1M' ? countMonths(next, cur) : Math.round((cur - next) / tfMs);
    const w = windows.find((m) => next >= m.from && cur <= m.to);
    if (w) {
      maintenanceBars += bars;
      gaps.push({ from: next, to: cur, missingBars: bars, kind: 'maintenance', note: w.note });
    } else {
      missing += bars;
      gaps.push({ from: next, to: cur, missingBars: bars, kind: 'missing' });
    }
  }
  return { gaps, missingBars: missing, maintenanceBars };
}

/**
 * The per-row rules, in a small function of its own so V8 optimises the hot loop reliably (the
 * rare quarantine path is a callback). Marks kept rows in `keep`, returns how many.
 */
function scanRows(
  s: FullSeries,
  tf: Timeframe,
  tfMs: number,
  keep: Uint8Array,
  quarantine: (i: number, rule: QuarantineRule, message: string) => void,
): number {
  const { time, open, high, low, close, volume } = s;
  const n = s.length;
  let lastT = Number.NEGATIVE_INFINITY;
  let lastI = -1;
  let kept = 0;
  for (let i = 0; i < n; i++) {
    const t = time[i] as number;
    const o = open[i] as number;
    const h = high[i] as number;
    const l = low[i] as number;
    const c = close[i] as number;
    const v = volume[i] as number;
    if (
      !(
        Number.isFinite(t) &&
        Number.isFinite(o) &&
        Number.isFinite(h) &&
        Number.isFinite(l) &&
        Number.isFinite(c) &&
        Number.isFinite(v)
      )
    ) {
      quarantine(i, 'non-finite', 'time, open, high, low, close and volume must be finite numbers');
      continue;
    }
    if (!(o > 0 && h > 0 && l > 0 && c > 0)) {
      quarantine(i, 'non-positive-price', `prices must be > 0 (${ohlcText(s, i)})`);
      continue;
    }
    if (v < 0) {
      quarantine(i, 'negative-volume', `volume ${s.volume[i]} < 0`);
      continue;
    }
    if (h < l || h < o || h < c || l > o || l > c) {
      quarantine(i, 'ohlc-inconsistent', ohlcMessage(s, i));
      continue;
    }
    if (tfMs > 0 ? Math.floor(t / tfMs) * tfMs !== t : timeframeStart(tf, t) !== t) {
      quarantine(i, 'misaligned-timestamp', misalignedMessage(s, i, tf));
      continue;
    }
    if (t < lastT) {
      quarantine(i, 'non-monotonic', `${isoUtc(s.time[i] as number)} comes after ${isoUtc(s.time[lastI] as number)}`);
      continue;
    }
    if (t === lastT) {
      const j = lastI;
      const same =
        o === open[j] &&
        h === high[j] &&
        l === low[j] &&
        c === close[j] &&
        v === volume[j] &&
        sameOrNaN(s.quoteVolume[i] as number, s.quoteVolume[j] as number) &&
        sameOrNaN(s.trades[i] as number, s.trades[j] as number) &&
        sameOrNaN(s.takerBuyVolume[i] as number, s.takerBuyVolume[j] as number);
      if (same)
        quarantine(
          i,
          'duplicate-identical',
          `${isoUtc(s.time[i] as number)} repeats the previous row exactly (first copy kept)`,
        );
      else
        quarantine(
          i,
          'duplicate-conflicting',
          `${isoUtc(s.time[i] as number)} appears twice with different values (first copy kept)`,
        );
      continue;
    }
    keep[i] = 1;
    lastT = t;
    lastI = i;
    kept++;
  }
  return kept;
}

const PRICE_FIELDS = ['open', 'high', 'low', 'close'] as const;

/** The field a quarantine rule found at fault in row i (cold path: only for quarantined rows). */
function faultyField(s: FullSeries, i: number, rule: QuarantineRule): string {
  switch (rule) {
    case 'non-finite':
      return (['time', ...PRICE_FIELDS, 'volume'] as const).find((f) => !Number.isFinite(s[f][i] as number)) ?? 'row';
    case 'non-positive-price':
      return PRICE_FIELDS.find((f) => !((s[f][i] as number) > 0)) ?? 'row';
    case 'negative-volume':
      return 'volume';
    case 'ohlc-inconsistent': {
      const h = s.high[i] as number;
      return h < (s.low[i] as number) || h < (s.open[i] as number) || h < (s.close[i] as number) ? 'high' : 'low';
    }
    case 'misaligned-timestamp':
    case 'non-monotonic':
    case 'duplicate-identical':
    case 'duplicate-conflicting':
      return 'time';
    default:
      return assertNever(rule, 'quarantine rule');
  }
}

/** Which bound a bar breaks: high below low first (the bar is impossible), then the body outside the range. */
function ohlcMessage(s: FullSeries, i: number): string {
  const o = s.open[i] as number;
  const h = s.high[i] as number;
  const l = s.low[i] as number;
  const c = s.close[i] as number;
  const what =
    h < l
      ? `high ${h} < low ${l}`
      : h < Math.max(o, c)
        ? `high ${h} < ${o >= c ? `open ${o}` : `close ${c}`}`
        : `low ${l} > ${o <= c ? `open ${o}` : `close ${c}`}`;
  return `${what}: need low <= open, close <= high (${ohlcText(s, i)})`;
}

/** Off-grid times; one that sits 1 ms or 1 s before the grid is named as the close time it is. */
function misalignedMessage(s: FullSeries, i: number, tf: Timeframe): string {
  const t = s.time[i] as number;
  const close = [1, 1000].some((d) => timeframeStart(tf, t + d) === t + d);
  return close
    ? `${isoUtc(t)} is not on the ${tf} grid: it sits just before it, as a bar's close time does (read the file with timeIs 'close', --time-is close)`
    : `${isoUtc(t)} is not on the ${tf} grid`;
}

/**
 * Message text reads the columns again instead of reusing the loop's locals: a double local used in
 * a string on a cold path makes V8 box it on every iteration (measured: 10x slower on real prices).
 */
function ohlcText(s: FullSeries, i: number): string {
  return `o=${s.open[i]} h=${s.high[i]} l=${s.low[i]} c=${s.close[i]}`;
}

/** Zero-volume bars and runs of at least `staleMin` identical consecutive bars. */
function flagRuns(s: FullSeries, staleMin: number, flag: (rule: FlagRule, t: number) => void): void {
  const { time, open, high, low, close, volume } = s;
  const n = s.length;
  let run = 1;
  for (let i = 0; i < n; i++) {
    if ((volume[i] as number) === 0) flag('zero-volume', time[i] as number);
    if (i === 0) continue;
    const same =
      open[i] === open[i - 1] &&
      high[i] === high[i - 1] &&
      low[i] === low[i - 1] &&
      close[i] === close[i - 1] &&
      volume[i] === volume[i - 1];
    run = same ? run + 1 : 1;
    if (run === staleMin) for (let j = i - staleMin + 1; j <= i; j++) flag('stale-run', time[j] as number);
    else if (run > staleMin) flag('stale-run', time[i] as number);
  }
}

function sameOrNaN(a: number, b: number): boolean {
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}

function countMonths(from: number, to: number): number {
  let k = 0;
  for (let t = from; t < to; t = timeframeEnd('1M', t)) k++;
  return k;
}

/** Robust z = 0.6745 (x - median) / MAD for log returns and log ranges; flags |z| above the threshold. */
function flagOutliers(s: FullSeries, z: number, flag: (rule: FlagRule, t: number) => void): void {
  const { close, high, low, time } = s;
  const n = s.length;
  // |log r - med| * 0.6745 / mad > z  <=>  r outside [exp(med - w), exp(med + w)], w = z * mad / 0.6745:
  // the logs are taken of the sample only, and every bar is checked against two bounds (the
  // backtest's gate runs this on every load: a million logs cost more than the rest of the gate).
  // The sample is the function's own: selected in place, then turned into the deviations (their
  // median does not depend on the order), so a million bars allocate one sample per statistic.
  const bounds = (sample: Float64Array): [number, number] | null => {
    const med = selectMedian(sample);
    for (let i = 0; i < sample.length; i++) sample[i] = Math.abs((sample[i] as number) - med);
    const mad = selectMedian(sample);
    if (!(mad > 0)) return null;
    const w = (z * mad) / 0.6745;
    return [Math.exp(med - w), Math.exp(med + w)];
  };
  // Median and MAD from at most ~200k evenly spaced values: deterministic, and robust statistics
  // of a million returns do not move at the precision a z-score threshold needs.
  const sampled = (len: number, ratio: (i: number) => number): Float64Array => {
    const step = Math.max(1, Math.floor(len / 200_000));
    const out = new Float64Array(step === 1 ? len : Math.floor(len / step));
    for (let i = 0; i < out.length; i++) out[i] = Math.log(ratio(i * step));
    return out;
  };
  const ret = bounds(sampled(n - 1, (i) => (close[i + 1] as number) / (close[i] as number)));
  if (ret !== null) {
    const [lo, hi] = ret;
    for (let i = 1; i < n; i++) {
      const r = (close[i] as number) / (close[i - 1] as number);
      if (r < lo || r > hi) flag('outlier-return', time[i] as number);
    }
  }
  const rng = bounds(sampled(n, (i) => (high[i] as number) / (low[i] as number)));
  if (rng !== null) {
    const [lo, hi] = rng;
    for (let i = 0; i < n; i++) {
      const r = (high[i] as number) / (low[i] as number);
      if (r < lo || r > hi) flag('outlier-range', time[i] as number);
    }
  }
}

/** Median by quickselect on a copy: O(n) expected. */
export function median(x: Float64Array): number {
  return selectMedian(x.slice());
}

/** The median of `a`, reordering `a` (quickselect). */
function selectMedian(a: Float64Array): number {
  const n = a.length;
  if (n === 0) return Number.NaN;
  const kth = (k: number): number => {
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const pivot = a[(lo + hi) >> 1] as number;
      let i = lo;
      let j = hi;
      while (i <= j) {
        while ((a[i] as number) < pivot) i++;
        while ((a[j] as number) > pivot) j--;
        if (i <= j) {
          const t = a[i] as number;
          a[i] = a[j] as number;
          a[j] = t;
          i++;
          j--;
        }
      }
      if (k <= j) hi = j;
      else if (k >= i) lo = i;
      else return a[k] as number;
    }
    return a[k] as number;
  };
  if (n % 2 === 1) return kth(n >> 1);
  const hiMid = kth(n >> 1);
  // the lower middle is the max of the left part after selection
  let loMid = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n >> 1; i++) if ((a[i] as number) > loMid) loMid = a[i] as number;
  return (loMid + hiMid) / 2;
}

export interface QualityGateOptions {
  /** Minimum coverage, 0..1 (default 0.99). */
  readonly minCoverage?: number;
  /** Maximum share of input rows quarantined, 0..1 (default: no limit). */
  readonly maxQuarantinedShare?: number;
}

export interface GateInput {
  readonly coverage: number;
  readonly rowsIn?: number;
  readonly rowsKept?: number;
}

export interface GateResult {
  readonly ok: boolean;
  readonly reasons: readonly string[];
}

/** Quality gate: a backtest calls this to refuse data below a coverage threshold. */
export function qualityGate(r: GateInput, opts: QualityGateOptions = {}): GateResult {
  const reasons: string[] = [];
  const min = opts.minCoverage ?? 0.99;
  if (!(r.coverage >= min))
    reasons.push(`coverage ${(r.coverage * 100).toFixed(3)}% is below the required ${(min * 100).toFixed(3)}%`);
  if (opts.maxQuarantinedShare !== undefined && r.rowsIn !== undefined && r.rowsKept !== undefined && r.rowsIn > 0) {
    const share = (r.rowsIn - r.rowsKept) / r.rowsIn;
    if (share > opts.maxQuarantinedShare)
      reasons.push(
        `${(share * 100).toFixed(3)}% of rows were quarantined, above ${(opts.maxQuarantinedShare * 100).toFixed(3)}%`,
      );
  }
  return { ok: reasons.length === 0, reasons };
}

/** Throws DataError('quality-gate') when the gate refuses the data. */
export function assertQuality(r: GateInput, opts: QualityGateOptions = {}, what = 'data'): void {
  const g = qualityGate(r, opts);
  if (!g.ok) throw new DataError('quality-gate', `${what} refused by the quality gate: ${g.reasons.join('; ')}`);
}

export type GateMode = 'refuse' | 'drop';

/** One bad row, named as the user finds it: source, 1-based data row (and file line), field and rule. */
export interface DataProblem {
  readonly source: string;
  /** 1-based data row in the file (header and blank lines not counted), or in the series. */
  readonly row: number;
  /** 1-based line in the file, when the data came from a file. */
  readonly line?: number;
  readonly field: string;
  readonly rule: string;
  /** The row's open time (NaN when it could not be read). */
  readonly time: number;
  readonly message: string;
}

export interface GapSummary {
  /** Gap events (runs of missing bars), maintenance windows included. */
  readonly count: number;
  readonly missingBars: number;
  /** Of missingBars, those inside known exchange maintenance windows. */
  readonly maintenanceBars: number;
  /** The longest gap: open time of its first missing bar, of the next present bar, and bars missing. */
  readonly longest: { readonly start: number; readonly end: number; readonly missingBars: number } | null;
}

export interface DataGateResult {
  readonly source: string;
  readonly timeframe: Timeframe;
  readonly mode: GateMode;
  /**
   * refuse: true when no row breaks a rule. drop: true when the bad rows were dropped and counted.
   * Never true when no row is left.
   */
  readonly ok: boolean;
  /** Why not ok, one line each (empty when ok). */
  readonly reasons: readonly string[];
  readonly rowsIn: number;
  readonly rowsKept: number;
  /** Every bad row, in file order. */
  readonly problems: readonly DataProblem[];
  /** Bad rows per rule (refused, or dropped in drop mode). */
  readonly rowsByRule: Readonly<Record<string, number>>;
  readonly gaps: GapSummary;
  /** The rows that pass every rule: the data to use in drop mode. */
  readonly bars: FullSeries;
  readonly report: QcReport;
}

export interface DataGateOptions
  extends Pick<
    QcOptions,
    | 'timeframe'
    | 'exchange'
    | 'marketType'
    | 'maintenance'
    | 'priorQuarantine'
    | 'priorRowsIn'
    | 'lines'
    | 'rows'
    | 'flags'
  > {
  /** The file (or series name) the bars came from: every problem names it. */
  readonly source: string;
  /** refuse (default): any bad row fails the gate; drop: bad rows are dropped and counted. */
  readonly mode?: GateMode;
}

/**
 * The data-quality gate a backtest (or `keel data validate`) runs before it uses bars: the QC rules
 * above (non-positive prices, high < low or a body outside the range, duplicate or unsorted times,
 * times off the timeframe grid, and the reader's parse rules) applied to a bar series, with every
 * problem named by source, data row, field and rule. In `refuse` mode any bad row fails the gate;
 * in `drop` mode the bad rows are dropped and counted per rule. Gaps never fail it; they are
 * counted, with the longest, so a summary can show them. Pure: no I/O, no clock.
 */
export function dataQualityGate(series: BarSeries, opts: DataGateOptions): DataGateResult {
  const mode = opts.mode ?? 'refuse';
  const qc = validateBars(series, {
    timeframe: opts.timeframe,
    source: opts.source,
    file: opts.source,
    ...(opts.exchange !== undefined ? { exchange: opts.exchange } : {}),
    ...(opts.marketType !== undefined ? { marketType: opts.marketType } : {}),
    ...(opts.maintenance !== undefined ? { maintenance: opts.maintenance } : {}),
    ...(opts.priorQuarantine !== undefined ? { priorQuarantine: opts.priorQuarantine } : {}),
    ...(opts.priorRowsIn !== undefined ? { priorRowsIn: opts.priorRowsIn } : {}),
    ...(opts.lines !== undefined ? { lines: opts.lines } : {}),
    ...(opts.rows !== undefined ? { rows: opts.rows } : {}),
    ...(opts.flags !== undefined ? { flags: opts.flags } : {}),
  });
  return gateOf(qc, opts.source, opts.timeframe, mode);
}

/** The gate's verdict on rows already validated (validateBars): what dataQualityGate and an import's refusal say. */
export function gateOf(qc: QcResult, source: string, timeframe: Timeframe, mode: GateMode): DataGateResult {
  const problems: DataProblem[] = qc.quarantined.map((q) => problemOf(q, source));
  problems.sort((a, b) => a.row - b.row);
  const r = qc.report;
  let longest: GapSummary['longest'] = null;
  for (const g of r.gaps)
    if (longest === null || g.missingBars > longest.missingBars)
      longest = { start: g.from, end: g.to, missingBars: g.missingBars };
  const reasons: string[] = [];
  if (mode === 'refuse' && problems.length > 0)
    reasons.push(`${problems.length} of ${r.rowsIn} rows break a data rule (${ruleCounts(r.quarantined)})`);
  if (r.rowsKept === 0)
    reasons.push(r.rowsIn === 0 ? 'the data has no rows' : `no row is left: all ${r.rowsIn} rows break a data rule`);
  return {
    source,
    timeframe,
    mode,
    ok: reasons.length === 0,
    reasons,
    rowsIn: r.rowsIn,
    rowsKept: r.rowsKept,
    problems,
    rowsByRule: r.quarantined,
    gaps: {
      count: r.gaps.length,
      missingBars: r.missingBars + r.maintenanceBars,
      maintenanceBars: r.maintenanceBars,
      longest,
    },
    bars: qc.kept,
    report: r,
  };
}

/** A quarantined row as the gate lists it: where the user finds it (`source` when it names no file). */
export function problemOf(q: QuarantinedBar, source: string): DataProblem {
  return {
    source: q.file ?? source,
    row: q.dataRow ?? q.row + 1,
    ...(q.line !== undefined ? { line: q.line } : {}),
    field: q.field ?? 'row',
    rule: q.rule,
    time: q.time,
    message: q.message,
  };
}

/** `rule n, rule n` for the rules with rows. */
export function ruleCounts(byRule: Readonly<Record<string, number>>): string {
  return Object.entries(byRule)
    .filter(([, n]) => n > 0)
    .map(([rule, n]) => `${rule} ${n.toLocaleString('en-US')}`)
    .join(', ');
}

/** Where a problem is, as the user looks for it: `file row 3 (line 4), field high`. */
export function problemPlace(p: DataProblem): string {
  return `${p.source} row ${p.row}${p.line !== undefined ? ` (line ${p.line})` : ''}, field ${p.field}`;
}

/**
 * The gate's verdict for a person: one line saying ok or why not, one line per rule with its count
 * and its first row, and one line on gaps with the longest.
 */
export function formatDataGate(g: DataGateResult): string {
  const f = (n: number) => n.toLocaleString('en-US');
  const bad = g.problems.length;
  const lines: string[] = [];
  if (g.ok)
    lines.push(
      bad === 0
        ? `data-quality gate passed: ${g.source}, ${f(g.rowsKept)} rows`
        : `data-quality gate passed after dropping ${f(bad)} bad rows of ${f(g.rowsIn)}: ${g.source}`,
    );
  else lines.push(`data-quality gate FAILED: ${g.source}: ${g.reasons.join('; ')}`);
  for (const [rule, n] of Object.entries(g.rowsByRule)) {
    if (n === 0) continue;
    const first = g.problems.find((p) => p.rule === rule);
    lines.push(
      `  ${rule}: ${f(n)} row${n === 1 ? '' : 's'}${g.mode === 'drop' ? ' dropped' : ''}${first ? `, first at ${problemPlace(first)}: ${first.message}` : ''}`,
    );
  }
  const gp = g.gaps;
  lines.push(
    gp.count === 0
      ? '  gaps: none'
      : `  gaps: ${f(gp.count)} (${f(gp.missingBars)} bars missing${gp.maintenanceBars > 0 ? `, ${f(gp.maintenanceBars)} in exchange maintenance` : ''}), longest ${isoUtc(gp.longest?.start ?? 0)} .. ${isoUtc(gp.longest?.end ?? 0)} (${f(gp.longest?.missingBars ?? 0)} bars)`,
  );
  return lines.join('\n');
}

/** A readable summary of a QC report (the JSON form is the report object itself). */
export function formatQcReport(r: QcReport, title = 'QC report'): string {
  const lines: string[] = [];
  const f = (n: number) => n.toLocaleString('en-US');
  lines.push(`${title}${r.source ? ` (${r.source})` : ''}, timeframe ${r.timeframe}`);
  lines.push(`  rows in ${f(r.rowsIn)}, kept ${f(r.rowsKept)}, quarantined ${f(r.rowsIn - r.rowsKept)}`);
  if (r.first !== null && r.last !== null)
    lines.push(`  span ${isoUtc(r.first)} .. ${isoUtc(r.last)} (${f(r.expectedBars)} bars expected)`);
  lines.push(
    `  coverage ${(r.coverage * 100).toFixed(4)}% (missing ${f(r.missingBars)}, in maintenance windows ${f(r.maintenanceBars)})`,
  );
  const q = Object.entries(r.quarantined).filter(([, v]) => v > 0);
  lines.push(`  quarantined by rule: ${q.length === 0 ? 'none' : q.map(([k, v]) => `${k} ${f(v)}`).join(', ')}`);
  lines.push(
    `  flags: ${Object.entries(r.flags)
      .map(([k, v]) => `${k} ${f(v)}`)
      .join(', ')}`,
  );
  lines.push(
    `  gaps: ${r.gaps.length}${r.fill.policy !== 'none' ? ` (filled ${f(r.fill.filledBars)} bars by policy ${r.fill.policy})` : ''}`,
  );
  for (const g of r.gaps.slice(0, 10)) {
    lines.push(
      `    ${isoUtc(g.from)} .. ${isoUtc(g.to)}: ${f(g.missingBars)} bar(s) ${g.kind === 'maintenance' ? `maintenance (${g.note})` : 'missing'}`,
    );
  }
  if (r.gaps.length > 10) lines.push(`    ... ${r.gaps.length - 10} more`);
  for (const s of r.quarantineSamples.slice(0, 5)) {
    lines.push(
      `  quarantined: ${s.file ?? ''}${s.line !== undefined ? `:${s.line}` : ` row ${s.row}`} rule ${s.rule}: ${s.message}`,
    );
  }
  return lines.join('\n');
}
