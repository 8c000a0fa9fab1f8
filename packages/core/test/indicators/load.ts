/** Test-only loader for the shared real-data CSVs (gzip, header row). */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { BACKTRADER_DIR, DATA_DIR, dataFile, HAS_SHARED_DATA, noteSkip } from '../../../../test-support/shared.ts';
import type { Bar } from '../../src/model/bar.ts';

export { BACKTRADER_DIR, DATA_DIR, HAS_SHARED_DATA, noteSkip };

export interface Columns {
  readonly length: number;
  readonly time: number[];
  readonly open: number[];
  readonly high: number[];
  readonly low: number[];
  readonly close: number[];
  readonly volume: number[];
  readonly bars: Bar[];
}

/** Parses a CSV text with a header into columns by name. `limit` caps the number of data rows. */
export function readCsv(text: string, limit = Number.POSITIVE_INFINITY): Map<string, string[]> {
  const lines = text.split('\n');
  const header = (lines[0] ?? '').trim().split(',');
  const cols = header.map(() => [] as string[]);
  for (let i = 1; i < lines.length && i <= limit; i++) {
    const line = lines[i]?.trim();
    if (!line) continue;
    const cells = line.split(',');
    for (let j = 0; j < cols.length; j++) cols[j]!.push(cells[j] ?? '');
  }
  return new Map(header.map((h, j) => [h, cols[j]!]));
}

export function readGz(file: string): string {
  return gunzipSync(readFileSync(file)).toString('utf8');
}

const cache = new Map<string, Columns>();

/**
 * Loads OHLCV bars from a shared data file (families A, B and C: `datetime`/`timestamp` text
 * column in UTC, or `open_time` in ms).
 */
export function loadBars(name: string, limit = Number.POSITIVE_INFINITY): Columns {
  const key = `${name}:${limit}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const csv = readCsv(readGz(dataFile(name)), limit);
  const num = (k: string): number[] => {
    const c = csv.get(k);
    if (!c) throw new Error(`${name}: no column ${k}`);
    return c.map(Number);
  };
  const textTime = csv.get('datetime') ?? csv.get('timestamp');
  const time = textTime ? textTime.map((s) => Date.parse(`${s.replace(' ', 'T')}Z`)) : num('open_time');
  const open = num('open');
  const high = num('high');
  const low = num('low');
  const close = num('close');
  const volume = num('volume');
  const bars: Bar[] = time.map((t, i) => ({
    time: t,
    open: open[i]!,
    high: high[i]!,
    low: low[i]!,
    close: close[i]!,
    volume: volume[i]!,
    quoteVolume: Number.NaN,
    trades: Number.NaN,
    takerBuyVolume: Number.NaN,
  }));
  const out: Columns = { length: time.length, time, open, high, low, close, volume, bars };
  cache.set(key, out);
  return out;
}

export const BTC_1M = 'binance_BTCUSDT_1m_2024-01.csv.gz';
export const BTC_1D = 'binance_BTCUSDT_1d_2017-08-17_2026-01-05.csv.gz';
export const ETH_1H = 'binance_ETHUSDT_1h_2022-01-01_2025-12-02.csv.gz';
