import { readdirSync } from 'node:fs';
import path from 'node:path';
import { type BarSeries, barSeries } from '@keel/core';
import { readBarsFile } from '../packages/data/src/csv.ts';
import { DATA_DIR, HAS_SHARED_DATA } from '../test-support/shared.ts';

const COLUMNS = ['open', 'high', 'low', 'close', 'volume'] as const;

/**
 * N real 1m bars: the 1m spot files in shared/data in name order, concatenated (repeating as
 * needed) with timestamps shifted so the series is one contiguous minute grid. Prices jump at file
 * borders, which a strategy sees as a gap; that is fine for throughput measurement.
 *
 * Memory: each file is parsed, copied into the output columns and dropped before the next one is
 * read, and only as many files as N needs are read; the repeats copy the output onto itself. So
 * the process holds the N bars and one file being parsed, not every file at once.
 */
export function realMinuteBars(n: number): BarSeries {
  if (!HAS_SHARED_DATA) throw new Error(`benchmarks need the real data in ${DATA_DIR}`);
  const files = readdirSync(DATA_DIR)
    .filter((f) => /^binance_[A-Z]+USDT_1m_.*\.csv\.gz$/.test(f))
    .sort();
  const cols = {
    time: new Float64Array(n),
    open: new Float64Array(n),
    high: new Float64Array(n),
    low: new Float64Array(n),
    close: new Float64Array(n),
    volume: new Float64Array(n),
  };
  let k = 0;
  let t0 = Number.NaN;
  for (const f of files) {
    if (k >= n) break;
    const p = readBarsFile(path.join(DATA_DIR, f)).series;
    if (k === 0) t0 = p.time[0] as number;
    const take = Math.min(p.length, n - k);
    for (const c of COLUMNS) cols[c].set(p[c].subarray(0, take), k);
    k += take;
  }
  if (k === 0) throw new Error(`no 1m candle files in ${DATA_DIR}`);
  // Fewer bars on disk than asked: repeat what was read, in the same order.
  for (let have = k; k < n; ) {
    const take = Math.min(have, n - k);
    for (const c of COLUMNS) cols[c].copyWithin(k, 0, take);
    k += take;
  }
  for (let i = 0; i < n; i++) cols.time[i] = t0 + i * 60_000;
  return barSeries(cols);
}
