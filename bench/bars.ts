import { readdirSync } from 'node:fs';
import path from 'node:path';
import { type BarSeries, barSeries } from '@keel/core';
import { readBarsFile } from '../packages/data/src/csv.ts';
import { DATA_DIR, HAS_SHARED_DATA } from '../test-support/shared.ts';

/**
 * N real 1m bars: every 1m spot file in shared/data, concatenated (repeating as needed) with
 * timestamps shifted so the series is one contiguous minute grid. Prices jump at file borders,
 * which a strategy sees as a gap; that is fine for throughput measurement.
 */
export function realMinuteBars(n: number): BarSeries {
  if (!HAS_SHARED_DATA) throw new Error(`benchmarks need the real data in ${DATA_DIR}`);
  const files = readdirSync(DATA_DIR)
    .filter((f) => /^binance_[A-Z]+USDT_1m_.*\.csv\.gz$/.test(f))
    .sort();
  const parts = files.map((f) => readBarsFile(path.join(DATA_DIR, f)).series);
  const cols = {
    time: new Float64Array(n),
    open: new Float64Array(n),
    high: new Float64Array(n),
    low: new Float64Array(n),
    close: new Float64Array(n),
    volume: new Float64Array(n),
  };
  let k = 0;
  const t0 = (parts[0] as BarSeries).time[0] as number;
  while (k < n) {
    for (const p of parts) {
      const take = Math.min(p.length, n - k);
      cols.open.set(p.open.subarray(0, take), k);
      cols.high.set(p.high.subarray(0, take), k);
      cols.low.set(p.low.subarray(0, take), k);
      cols.close.set(p.close.subarray(0, take), k);
      cols.volume.set(p.volume.subarray(0, take), k);
      for (let i = 0; i < take; i++) cols.time[k + i] = t0 + (k + i) * 60_000;
      k += take;
      if (k >= n) break;
    }
  }
  return barSeries(cols);
}
