import { isoUtc, TIMEFRAMES, type Timeframe, timeframeEnd, timeframeMs, timeframeStart } from '@keel/core';

/** Whether a file's time column holds each bar's open time or its close time. */
export type TimeIs = 'open' | 'close';

/**
 * How far before the next grid point a close time sits: exchanges stamp a bar's close as
 * open + interval - 1 ms (Binance's close_time), some exports truncate it to the second.
 */
const CLOSE_OFFSETS_MS = [1, 1000] as const;

export interface TimeColumnResult {
  /** What the column was read as (after detection). */
  readonly is: TimeIs;
  /** The bar timeframe used for the grid, given or inferred from the spacing of the times. */
  readonly timeframe: Timeframe | null;
  /** Rows (indices into `times`) whose time is not on the grid the column was read against. */
  readonly offGrid: readonly number[];
  /** What a person should be told about how the time column was read (empty when nothing notable). */
  readonly notes: readonly string[];
}

/** The timeframe whose bar interval the times are spaced by (the most common positive step), or null. */
export function inferTimeframe(times: Float64Array): Timeframe | null {
  const counts = new Map<number, number>();
  const n = Math.min(times.length, 5001);
  for (let i = 1; i < n; i++) {
    const d = (times[i] as number) - (times[i - 1] as number);
    if (d > 0) counts.set(d, (counts.get(d) ?? 0) + 1);
  }
  let best = 0;
  let bestCount = 0;
  for (const [d, c] of counts) if (c > bestCount || (c === bestCount && d < best)) [best, bestCount] = [d, c];
  if (bestCount === 0) return null;
  for (const tf of TIMEFRAMES) if (tf !== '1M' && timeframeMs(tf) === best) return tf;
  // Calendar months are 28 to 31 days apart.
  if (best >= 28 * 86_400_000 && best <= 31 * 86_400_000) return '1M';
  return null;
}

function onGrid(tf: Timeframe, t: number): boolean {
  return timeframeStart(tf, t) === t;
}

/** The offset (ms) by which t sits before a grid point, if it is one of the close offsets. */
function closeOffset(tf: Timeframe, t: number): number {
  for (const off of CLOSE_OFFSETS_MS) if (onGrid(tf, t + off) && !onGrid(tf, t)) return off;
  return 0;
}

/**
 * Reads a time column as open or close times and converts close times to open times in place
 * (open = the grid point the close time sits just before, minus one interval).
 *
 * - `timeIs: 'close'`: every time must sit 1 ms (or 1 s) before the grid; those that do not are
 *   listed in `offGrid` (the caller quarantines them), never taken as open times.
 * - `timeIs: 'open'`: a column where most times sit 1 ms (or 1 s) before the grid is refused with
 *   an error (the caller's words say open, the data says close).
 * - not given: a column where close times outnumber grid-aligned times is read as close times
 *   (converted, with a note); otherwise as open times (off-grid rows are QC's business).
 */
export function resolveTimeColumn(
  times: Float64Array,
  opts: { readonly timeIs?: TimeIs; readonly timeframe?: Timeframe; readonly column: string; readonly file: string },
): TimeColumnResult {
  const n = times.length;
  const tf = opts.timeframe ?? inferTimeframe(times);
  if (tf === null) {
    if (opts.timeIs === 'close' && n > 0)
      throw new Error(
        `${opts.file}: cannot tell the bar interval from the times in column "${opts.column}" to turn close times into open times; give the timeframe`,
      );
    return { is: opts.timeIs ?? 'open', timeframe: null, offGrid: [], notes: [] };
  }
  let open = 0;
  let close = 0;
  let firstClose = -1;
  for (let i = 0; i < n; i++) {
    const t = times[i] as number;
    if (onGrid(tf, t)) open++;
    else if (closeOffset(tf, t) > 0) {
      close++;
      if (firstClose < 0) firstClose = i;
    }
  }
  const readAsClose = opts.timeIs === 'close' || (opts.timeIs === undefined && close > open);
  if (!readAsClose) {
    if (opts.timeIs === 'open' && close > open)
      throw new Error(
        `${opts.file}: column "${opts.column}" was given as bar open times, but ${close} of ${n} times sit just before the ${tf} grid (e.g. ${isoUtc(times[firstClose] as number)}), which is how bar close times look; read it as close times (timeIs 'close', --time-is close) or map the open-time column`,
      );
    return { is: 'open', timeframe: tf, offGrid: [], notes: [] };
  }
  const example = times[firstClose];
  const offGrid: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = times[i] as number;
    const off = closeOffset(tf, t);
    if (off === 0) {
      offGrid.push(i);
      continue;
    }
    const next = t + off;
    // The open is one bar before the grid point that closes it (calendar-aware for 1w and 1M).
    let openTime = timeframeStart(tf, next - 1);
    if (timeframeEnd(tf, openTime) !== next) openTime = Number.NaN;
    times[i] = openTime;
  }
  const notes =
    opts.timeIs === 'close' || example === undefined
      ? []
      : [
          `${opts.file}: column "${opts.column}" holds bar close times (${close} of ${n} sit just before the ${tf} grid, e.g. ${isoUtc(example)}); read as close times and converted to bar open times`,
        ];
  return { is: 'close', timeframe: tf, offGrid, notes };
}
