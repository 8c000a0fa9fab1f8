import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { TIMEFRAMES, timeframeMs } from '@keel/core';
import type { SimBar } from './types.ts';

/** Thrown when a candle file cannot be read; the message names the file and the line. */
export class BarFileError extends Error {
  override name = 'BarFileError';
}

const TIME_COLUMNS = ['datetime', 'timestamp', 'open_time', 'time', 'date', 'opentime'];

/**
 * Reads a CSV or CSV.GZ candle file. Accepted layouts (see /work/shared/data/README.md):
 * a header naming a time column (`datetime`, `timestamp`, `open_time`, ...) plus open, high, low,
 * close, volume, with UTC text times (`YYYY-MM-DD HH:MM:SS`) or epoch times (ms, or s); or the
 * headerless Binance 12-column kline layout (open_time ms first).
 */
export function readBarsFile(file: string): SimBar[] {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (e) {
    throw new BarFileError(`cannot read candle file ${file}: ${(e as Error).message}`);
  }
  const text = (file.endsWith('.gz') || (raw[0] === 0x1f && raw[1] === 0x8b) ? gunzipSync(raw) : raw).toString('utf8');
  return parseBarsCsv(text, file);
}

export function parseBarsCsv(text: string, name = 'csv'): SimBar[] {
  const lines = text.split(/\r?\n/);
  const first = lines[0]?.trim() ?? '';
  const firstCells = first.split(',').map((c) => c.trim().toLowerCase());
  let col = { time: 0, open: 1, high: 2, low: 3, close: 4, volume: 5 };
  let start = 0;
  if (firstCells.length > 0 && !/^\d/.test(firstCells[0] ?? '')) {
    const idx = (n: string): number => firstCells.indexOf(n);
    const time = firstCells.findIndex((c) => TIME_COLUMNS.includes(c));
    col = { time, open: idx('open'), high: idx('high'), low: idx('low'), close: idx('close'), volume: idx('volume') };
    const missing = Object.entries(col).filter(([, v]) => v < 0);
    if (missing.length > 0) {
      throw new BarFileError(`${name}: header "${first}" lacks column(s) ${missing.map(([k]) => k).join(', ')}`);
    }
    start = 1;
  }
  const bars: SimBar[] = [];
  for (let i = start; i < lines.length; i++) {
    const line = lines[i]?.trim();
    if (!line) continue;
    const cells = line.split(',');
    const time = parseTime(cells[col.time] ?? '');
    const bar: SimBar = {
      time,
      open: Number(cells[col.open]),
      high: Number(cells[col.high]),
      low: Number(cells[col.low]),
      close: Number(cells[col.close]),
      volume: Number(cells[col.volume]),
    };
    if (!Number.isFinite(time) || ![bar.open, bar.high, bar.low, bar.close, bar.volume].every(Number.isFinite)) {
      throw new BarFileError(`${name}:${i + 1}: cannot parse candle "${line}"`);
    }
    bars.push(bar);
  }
  checkBars(bars, name);
  return bars;
}

function parseTime(cell: string): number {
  const s = cell.trim().replace(/^"|"$/g, '');
  if (/^\d+(\.\d+)?$/.test(s)) {
    const n = Number(s);
    return n < 1e11 ? n * 1000 : n; // epoch seconds vs ms
  }
  // Text times in the shared data are UTC without a zone suffix.
  const iso = s.includes('T') ? s : s.replace(' ', 'T');
  return Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : `${iso}${iso.length <= 10 ? 'T00:00:00' : ''}Z`);
}

/** Bars must be strictly increasing in time with high >= max(open, close) and low <= min(open, close). */
export function checkBars(bars: readonly SimBar[], name: string): void {
  for (let i = 0; i < bars.length; i++) {
    const b = bars[i]!;
    if (i > 0 && b.time <= bars[i - 1]!.time) {
      throw new BarFileError(`${name}: bar ${i} at ${new Date(b.time).toISOString()} is not after the one before`);
    }
    if (b.high < Math.max(b.open, b.close) || b.low > Math.min(b.open, b.close) || b.low <= 0) {
      throw new BarFileError(`${name}: bar ${i} at ${new Date(b.time).toISOString()} has inconsistent OHLC`);
    }
  }
}

/** The bar interval: the smallest gap between consecutive bars (gaps are missing bars). */
export function inferIntervalMs(bars: readonly SimBar[]): number {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 1; i < bars.length; i++) best = Math.min(best, bars[i]!.time - bars[i - 1]!.time);
  return Number.isFinite(best) ? best : 60_000;
}

/** Binance kline intervals (spot), in ms: core's timeframes. Months are not supported by the sim. */
export const INTERVAL_MS: Readonly<Record<string, number>> = Object.fromEntries(
  TIMEFRAMES.filter((tf) => tf !== '1M').map((tf) => [tf, timeframeMs(tf)]),
);

/** Open time of the interval bucket holding t. Weeks start on Monday as on Binance. */
export function bucketStart(t: number, intervalMs: number): number {
  const offset = intervalMs === 604_800_000 ? 345_600_000 : 0; // 1970-01-01 was a Thursday
  return Math.floor((t - offset) / intervalMs) * intervalMs + offset;
}

/**
 * Seeded synthetic 1m candles (a random walk with 0.1% steps) for a market given no data: the
 * same seed always gives the same bars.
 */
export function syntheticBars(opts: {
  start: number;
  count?: number;
  price?: number;
  seed?: number;
  intervalMs?: number;
}): SimBar[] {
  const n = opts.count ?? 1440;
  const iv = opts.intervalMs ?? 60_000;
  let state = (opts.seed ?? 1) >>> 0;
  const rnd = (): number => {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const r2 = (x: number): number => Math.round(x * 100) / 100;
  const bars: SimBar[] = [];
  let price = opts.price ?? 100;
  for (let i = 0; i < n; i++) {
    const open = r2(price);
    const close = r2(Math.max(0.01, open * (1 + (rnd() - 0.5) * 0.002)));
    const high = r2(Math.max(open, close) * (1 + rnd() * 0.0005));
    const low = r2(Math.max(0.01, Math.min(open, close) * (1 - rnd() * 0.0005)));
    bars.push({ time: opts.start + i * iv, open, high, low, close, volume: r2(5 + rnd() * 10) });
    price = close;
  }
  return bars;
}
