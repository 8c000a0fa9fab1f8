/**
 * The data-quality gate (dataQualityGate) on hand-made files whose every problem is worked out by
 * hand (file, 1-based data row, line, field, rule), and on real Binance files (the shared data's
 * README QC numbers are the oracle).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { barSeries } from '@keel/core';
import { describe, expect, it } from 'vitest';
import { KNOWN_MAINTENANCE } from '../src/maintenance.ts';
import { concatBatches } from '../src/pipeline.ts';
import { dataQualityGate, formatDataGate } from '../src/qc.ts';
import { readFileBatch } from '../src/sources/files.ts';
import { BTC_1H, dataFile, FIXTURES, HAS_SHARED_DATA, noteSkip, real } from './helpers.ts';

const M = 60_000;
const T0 = Date.UTC(2024, 0, 1);
const tmp = mkdtempSync(path.join(tmpdir(), 'keel-gate-'));

async function gateOf(
  file: string,
  mode: 'refuse' | 'drop' = 'refuse',
  opts: Parameters<typeof readFileBatch>[1] = {},
) {
  const all = concatBatches([await readFileBatch(file, opts)]);
  return dataQualityGate(all.series, {
    source: file,
    timeframe: '1m',
    mode,
    priorQuarantine: all.quarantined,
    priorRowsIn: all.quarantined.length,
    ...(all.lines ? { lines: all.lines } : {}),
    ...(all.rows ? { rows: all.rows } : {}),
  });
}

describe('data-quality gate on fixtures/data/qc-bad-rows.csv', () => {
  const file = path.join(FIXTURES, 'qc-bad-rows.csv');

  it('refuses the file and names every bad row by file, data row, line, field and rule', async () => {
    const g = await gateOf(file);
    expect(g.ok).toBe(false);
    expect(g.problems.map((p) => [p.source, p.row, p.line, p.field, p.rule])).toEqual([
      [file, 3, 4, 'high', 'ohlc-inconsistent'],
      [file, 4, 5, 'low', 'non-positive-price'],
      [file, 5, 6, 'volume', 'negative-volume'],
      [file, 6, 7, 'time', 'misaligned-timestamp'],
      [file, 8, 9, 'time', 'duplicate-identical'],
      [file, 10, 11, 'time', 'duplicate-conflicting'],
      [file, 11, 12, 'time', 'non-monotonic'],
      [file, 12, 13, 'time', 'bad-timestamp'],
      [file, 13, 14, 'open', 'bad-number'],
    ]);
    expect(g.problems[0]?.message).toMatch(/^high 100 < open 101/);
    expect(g.reasons).toEqual([expect.stringMatching(/^9 of 14 rows break a data rule \(/)]);
    // Kept 00:00, 00:01, 00:05, 00:06, 00:10: two gaps of 3 bars; the first is the longest.
    expect(g.gaps).toEqual({
      count: 2,
      missingBars: 6,
      maintenanceBars: 0,
      longest: { start: T0 + 2 * M, end: T0 + 5 * M, missingBars: 3 },
    });
    const text = formatDataGate(g);
    expect(text.split('\n')[0]).toBe(`data-quality gate FAILED: ${file}: ${g.reasons[0]}`);
    expect(text).toContain(
      `  ohlc-inconsistent: 1 row, first at ${file} row 3 (line 4), field high: high 100 < open 101`,
    );
    expect(text).toContain('  gaps: 2 (6 bars missing), longest 2024-01-01T00:02:00Z .. 2024-01-01T00:05:00Z (3 bars)');
  });

  it('in drop mode drops the bad rows, counts them per rule and keeps the rest', async () => {
    const g = await gateOf(file, 'drop');
    expect(g.ok).toBe(true);
    expect(g.rowsIn).toBe(14);
    expect(g.rowsKept).toBe(5);
    expect(Array.from(g.bars.time)).toEqual([0, 1, 5, 6, 10].map((m) => T0 + m * M));
    expect(g.rowsByRule).toEqual({
      'bad-timestamp': 1,
      'bad-number': 1,
      'ohlc-inconsistent': 1,
      'non-positive-price': 1,
      'negative-volume': 1,
      'misaligned-timestamp': 1,
      'duplicate-identical': 1,
      'duplicate-conflicting': 1,
      'non-monotonic': 1,
    });
    expect(formatDataGate(g)).toContain('  non-monotonic: 1 row dropped, first at');
  });
});

describe('data-quality gate: invariants', () => {
  it('a file that keeps no row is not ok, in either mode', async () => {
    const f = path.join(tmp, 'all-bad.csv');
    writeFileSync(
      f,
      'datetime,open,high,low,close,volume\n2024-01-01 00:00:00,0,1,0,1,1\n2024-01-01 00:01:00,2,1,1,1,1\n',
    );
    for (const mode of ['refuse', 'drop'] as const) {
      const g = await gateOf(f, mode);
      expect(g.ok, mode).toBe(false);
      expect(g.rowsKept).toBe(0);
      expect(g.reasons).toContain('no row is left: all 2 rows break a data rule');
    }
  });

  it('a series from memory names its rows 1-based, and high < low is reported on high', () => {
    const s = barSeries({
      time: [T0, T0 + M, T0 + M, T0 + 3 * M],
      open: [10, 10, 10, 10],
      high: [11, 9, 11, 11],
      low: [9, 9.5, 9, 9],
      close: [10, 10, 10, 10],
      volume: [1, 1, 1, 1],
    });
    const g = dataQualityGate(s, { source: 'BTC/USDT 1m (store)', timeframe: '1m' });
    expect(g.problems.map((p) => [p.row, p.line, p.field, p.rule])).toEqual([
      [2, undefined, 'high', 'ohlc-inconsistent'],
    ]);
    expect(g.problems[0]?.message).toMatch(/^high 9 < low 9.5/);
    // Row 2 is refused, so row 3 (same time) is the 00:01 bar and only 00:02 is missing.
    expect(Array.from(g.bars.time)).toEqual([T0, T0 + M, T0 + 3 * M]);
    expect(g.gaps.longest).toEqual({ start: T0 + 2 * M, end: T0 + 3 * M, missingBars: 1 });
  });

  it('close times in a foreign zone are converted before the gate (never taken as opens); called opens, the file is refused', async () => {
    const f = path.join(tmp, 'close-times.csv');
    writeFileSync(
      f,
      'datetime,open,high,low,close,volume\n2024-12-01 00:00:59.999000+01:00,1,2,0.5,1.5,10\n2024-12-01 00:01:59.999000+01:00,1.5,2,1,1.2,11\n',
    );
    const g = await gateOf(f);
    expect(g.ok).toBe(true);
    expect(Array.from(g.bars.time)).toEqual([Date.UTC(2024, 10, 30, 23, 0), Date.UTC(2024, 10, 30, 23, 1)]);
    expect((await readFileBatch(f)).notes?.join('')).toMatch(/holds bar close times/);
    await expect(gateOf(f, 'refuse', { timeIs: 'open' })).rejects.toThrow(/was given as bar open times/);
  });
});

describe.skipIf(!HAS_SHARED_DATA)('data-quality gate on real Binance files', () => {
  if (!HAS_SHARED_DATA) noteSkip('gate on real data');
  it('BTC 1h passes; its one gap (2023-03-24 13:00, in the listed Binance halt) is counted as the longest', () => {
    const g = dataQualityGate(real(BTC_1H), {
      source: dataFile(BTC_1H),
      timeframe: '1h',
      exchange: 'binance',
      marketType: 'spot',
      maintenance: KNOWN_MAINTENANCE,
    });
    expect(g.ok).toBe(true);
    expect(g.problems).toEqual([]);
    expect(g.gaps).toEqual({
      count: 1,
      missingBars: 1,
      maintenanceBars: 1,
      longest: { start: Date.UTC(2023, 2, 24, 13), end: Date.UTC(2023, 2, 24, 14), missingBars: 1 },
    });
  });

  it('every listed maintenance window names its source', () => {
    for (const w of KNOWN_MAINTENANCE) {
      expect(w.source).toMatch(/^https:\/\/www\.binance\.com\//);
      expect(w.to).toBeGreaterThan(w.from);
    }
  });
});
