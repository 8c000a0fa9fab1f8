import type { BarSeries, Timeframe } from '@keel/core';
import { isoUtc, timeframeEnd, timeframeMs, timeframeStart } from '@keel/core';
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

export interface MaintenanceWindow {
  readonly exchange: string;
  /** Omitted: all market types of the exchange. */
  readonly marketType?: MarketType;
  /** [from, to) UTC ms. */
  readonly from: number;
  readonly to: number;
  readonly note: string;
}

/** Exchange maintenance windows known to produce missing bars (gaps inside are reported as such). */
export const KNOWN_MAINTENANCE: readonly MaintenanceWindow[] = [
  {
    exchange: 'binance',
    marketType: 'spot',
    from: Date.UTC(2023, 2, 24, 12, 0),
    to: Date.UTC(2023, 2, 24, 14, 0),
    note: 'Binance spot trading halt 2023-03-24 12:00-14:00 UTC (matching engine issue)',
  },
];

export interface QuarantinedBar {
  /** Row index in the validated input batch. */
  readonly row: number;
  readonly rule: QuarantineRule | string;
  readonly message: string;
  readonly time: number;
  readonly values: readonly number[];
  /** Source file and line, when the batch came from a file. */
  readonly file?: string;
  readonly line?: number;
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
  /** Quarantine rows from an earlier stage (e.g. CSV parsing) to merge into the report. */
  readonly priorQuarantine?: readonly QuarantinedBar[];
  readonly priorRowsIn?: number;
  /** Line number of each input row, when known (to name file and line in quarantine records). */
  readonly lines?: Int32Array;
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
  if (kept > 2) flagOutliers(clean, opts.outlierZ ?? 12, flag);
  flagRuns(clean, opts.staleRun ?? 5, flag);

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

export function maintenanceFor(
  all: readonly MaintenanceWindow[],
  exchange?: string,
  marketType?: MarketType,
): MaintenanceWindow[] {
  return all.filter(
    (w) =>
      exchange === undefined ||
      (w.exchange === exchange &&
        (w.marketType === undefined || marketType === undefined || w.marketType === marketType)),
  );
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
      quarantine(i, 'ohlc-inconsistent', `need low <= open,close <= high (${ohlcText(s, i)})`);
      continue;
    }
    if (tfMs > 0 ? Math.floor(t / tfMs) * tfMs !== t : timeframeStart(tf, t) !== t) {
      quarantine(i, 'misaligned-timestamp', `${isoUtc(s.time[i] as number)} is not on the ${tf} grid`);
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
  const n = s.length;
  const ret = new Float64Array(n - 1);
  const rng = new Float64Array(n);
  for (let i = 1; i < n; i++) ret[i - 1] = Math.log((s.close[i] as number) / (s.close[i - 1] as number));
  for (let i = 0; i < n; i++) rng[i] = Math.log((s.high[i] as number) / (s.low[i] as number));
  const check = (x: Float64Array, rule: FlagRule, offset: number): void => {
    // Median and MAD from at most ~200k evenly spaced values: deterministic, and robust statistics
    // of a million returns do not move at the precision a z-score threshold needs.
    const step = Math.max(1, Math.floor(x.length / 200_000));
    const sample =
      step === 1 ? x : Float64Array.from({ length: Math.floor(x.length / step) }, (_, i) => x[i * step] as number);
    const med = median(sample);
    const dev = new Float64Array(sample.length);
    for (let i = 0; i < sample.length; i++) dev[i] = Math.abs((sample[i] as number) - med);
    const mad = median(dev);
    if (!(mad > 0)) return;
    const k = 0.6745 / mad;
    for (let i = 0; i < x.length; i++)
      if (Math.abs(((x[i] as number) - med) * k) > z) flag(rule, s.time[i + offset] as number);
  };
  check(ret, 'outlier-return', 1);
  check(rng, 'outlier-range', 0);
}

/** Median by quickselect on a copy: O(n) expected. */
export function median(x: Float64Array): number {
  const n = x.length;
  if (n === 0) return Number.NaN;
  const a = x.slice();
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
