import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { dataFile, HAS_SHARED_DATA, noteSkip, REPO_ROOT } from '../../../test-support/shared.ts';
import { readBarsFile } from '../src/csv.ts';
import { type FullSeries, toFullSeries } from '../src/schema.ts';

export { dataFile, HAS_SHARED_DATA, noteSkip };
export const FIXTURES = path.join(REPO_ROOT, 'fixtures', 'data');

const cache = new Map<string, FullSeries>();
/** A shared real data file as a full series (cached per test file). */
export function real(name: string): FullSeries {
  let s = cache.get(name);
  if (!s) {
    s = toFullSeries(readBarsFile(dataFile(name)).series);
    cache.set(name, s);
  }
  return s;
}

export function tempDir(prefix = 'keel-data-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export const BTC_1M = 'binance_BTCUSDT_1m_2024-01.csv.gz';
export const ETH_1M = 'binance_ETHUSDT_1m_2024-01.csv.gz';
export const BNB_1M = 'binance_BNBUSDT_1m_2024-01.csv.gz';
export const BTC_1H = 'binance_BTCUSDT_1h_2022-01-01_2025-12-02.csv.gz';
export const ETH_1H = 'binance_ETHUSDT_1h_2022-01-01_2025-12-02.csv.gz';
export const BTC_1D = 'binance_BTCUSDT_1d_2017-08-17_2026-01-05.csv.gz';
export const LINK_FUT = 'binance-futures-um_LINKUSDT_1m_2023-02.csv.gz';

/** First index where two columns differ (Object.is, so NaN equals NaN), or -1; fast on large arrays. */
export function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}
