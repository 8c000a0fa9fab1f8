import path from 'node:path';
import { barSeries } from '@keel/core';
import { describe, expect, it } from 'vitest';
import { concatBatches } from '../src/pipeline.ts';
import { assertQuality, findGaps, formatQcReport, median, qualityGate, validateBars } from '../src/qc.ts';
import { readFileBatch } from '../src/sources/files.ts';
import { BTC_1H, BTC_1M, FIXTURES, HAS_SHARED_DATA, noteSkip, real } from './helpers.ts';

const M = 60_000;
const T0 = Date.UTC(2024, 0, 1);

describe('QC rules on a hand-made file (fixtures/data/qc-bad-rows.csv)', async () => {
  const file = path.join(FIXTURES, 'qc-bad-rows.csv');
  const b = await readFileBatch(file);
  const all = concatBatches([b]);
  const qc = validateBars(all.series, {
    timeframe: '1m',
    file,
    priorQuarantine: all.quarantined,
    priorRowsIn: all.quarantined.length,
    ...(all.lines ? { lines: all.lines } : {}),
  });

  it('quarantines each bad row with its rule, file and line; nothing is dropped silently', () => {
    const byRule = Object.fromEntries(qc.quarantined.map((q) => [q.rule, q.line]));
    expect(byRule).toEqual({
      'bad-timestamp': 13,
      'bad-number': 14,
      'ohlc-inconsistent': 4,
      'non-positive-price': 5,
      'negative-volume': 6,
      'misaligned-timestamp': 7,
      'duplicate-identical': 9,
      'duplicate-conflicting': 11,
      'non-monotonic': 12,
    });
    expect(qc.quarantined.every((q) => q.file === file)).toBe(true);
    expect(qc.report.rowsIn).toBe(14);
    expect(qc.report.rowsKept + qc.quarantined.length).toBe(qc.report.rowsIn);
  });

  it('keeps the first copy of a duplicate and reports the gaps and coverage', () => {
    expect(Array.from(qc.kept.time)).toEqual([0, 1, 5, 6, 10].map((m) => T0 + m * M));
    expect(qc.kept.high[3]).toBe(101); // first 00:06 copy, not the conflicting one
    expect(qc.report.gaps.map((g) => [g.from - T0, g.to - T0, g.missingBars, g.kind])).toEqual([
      [2 * M, 5 * M, 3, 'missing'],
      [7 * M, 10 * M, 3, 'missing'],
    ]);
    expect(qc.report.expectedBars).toBe(11);
    expect(qc.report.coverage).toBeCloseTo(5 / 11, 12);
    const text = formatQcReport(qc.report);
    expect(text).toContain('qc-bad-rows.csv:4 rule ohlc-inconsistent');
  });

  it('fills gaps only under an explicit policy, recorded in the report and marked per row', () => {
    const f = validateBars(qc.kept, { timeframe: '1m', fill: 'flat-previous-close' });
    expect(f.report.fill).toEqual({ policy: 'flat-previous-close', filledBars: 6 });
    expect(f.kept.length).toBe(11);
    expect(Array.from(f.filled)).toEqual([0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0]);
    expect(f.kept.close[2]).toBe(qc.kept.close[1]);
    expect(f.kept.volume[2]).toBe(0);
    const none = validateBars(qc.kept, { timeframe: '1m' });
    expect(none.kept.length).toBe(5);
    expect(none.report.fill.policy).toBe('none');
  });
});

describe('QC flags on synthetic series (invariants)', () => {
  it('flags stale runs of identical bars and zero-volume bars without removing them', () => {
    const n = 20;
    const t = Array.from({ length: n }, (_, i) => T0 + i * M);
    const c = t.map((_, i) => (i >= 5 && i < 12 ? 100 : 100 + (i % 3)));
    const s = barSeries({
      time: t,
      open: c,
      high: c.map((x) => x + 1),
      low: c.map((x) => x - 1),
      close: c,
      volume: t.map((_, i) => (i >= 5 && i < 12 ? 0 : 1)),
    });
    const r = validateBars(s, { timeframe: '1m', staleRun: 5 });
    expect(r.report.rowsKept).toBe(n);
    expect(r.report.flags['stale-run']).toBe(7);
    expect(r.report.flags['zero-volume']).toBe(7);
  });

  it('robust z-score flags a single huge return and range (median/MAD)', () => {
    const n = 200;
    const t = Array.from({ length: n }, (_, i) => T0 + i * M);
    const c = t.map((_, i) => 100 * (1 + 0.001 * Math.sin(i)) * (i >= 100 ? 1.2 : 1));
    const s = barSeries({
      time: t,
      open: c,
      high: c.map((x, i) => x * (i === 100 ? 1.3 : 1.001)),
      low: c.map((x, i) => x * (0.999 - 0.0002 * (i % 5))),
      close: c,
      volume: t.map(() => 1),
    });
    const r = validateBars(s, { timeframe: '1m' });
    expect(r.report.flags['outlier-return']).toBe(1);
    expect(r.report.flagSamples['outlier-return']).toEqual(['2024-01-01T01:40:00Z']);
    expect(r.report.flags['outlier-range']).toBe(1);
  });

  it('median by quickselect equals the sorted median', () => {
    for (const n of [1, 2, 3, 10, 101]) {
      const a = Float64Array.from({ length: n }, (_, i) => Math.sin(i * 7.3) * 100);
      const s = [...a].sort((x, y) => x - y);
      const m = n % 2 ? (s[(n - 1) / 2] as number) : ((s[n / 2 - 1] as number) + (s[n / 2] as number)) / 2;
      expect(median(a)).toBe(m);
    }
  });

  it('calendar-month gaps count months, not 31-day units', () => {
    const t = Float64Array.from([Date.UTC(2024, 0, 1), Date.UTC(2024, 3, 1)]);
    const g = findGaps(t, '1M', []);
    expect(g.missingBars).toBe(2);
  });

  it('the quality gate refuses data below the coverage threshold with a readable reason', () => {
    expect(qualityGate({ coverage: 0.995 }, { minCoverage: 0.99 }).ok).toBe(true);
    const g = qualityGate(
      { coverage: 0.9, rowsIn: 100, rowsKept: 90 },
      { minCoverage: 0.99, maxQuarantinedShare: 0.05 },
    );
    expect(g.ok).toBe(false);
    expect(g.reasons).toHaveLength(2);
    expect(() => assertQuality({ coverage: 0.5 }, { minCoverage: 0.99 }, 'BTCUSDT 1m')).toThrow(
      /BTCUSDT 1m refused by the quality gate: coverage 50.000% is below the required 99.000%/,
    );
  });
});

describe.skipIf(!HAS_SHARED_DATA)('QC on real Binance data (README numbers are the oracle)', () => {
  if (!HAS_SHARED_DATA) noteSkip('qc real data');

  it('BTC 1h: the 2023-03-24 13:00 gap is reported as the known spot maintenance window, coverage 100%', () => {
    const r = validateBars(real(BTC_1H), { timeframe: '1h', exchange: 'binance', marketType: 'spot' });
    expect(r.report.rowsKept).toBe(34_349);
    expect(r.report.gaps).toHaveLength(1);
    expect(r.report.gaps[0]).toMatchObject({
      from: Date.UTC(2023, 2, 24, 13),
      to: Date.UTC(2023, 2, 24, 14),
      missingBars: 1,
      kind: 'maintenance',
    });
    expect(r.report.missingBars).toBe(0);
    expect(r.report.coverage).toBe(1);
    expect(r.report.flags['zero-volume']).toBe(1); // the flat 12:00 bar, kept
    // Without the maintenance list the same hour is an ordinary missing bar.
    const plain = validateBars(real(BTC_1H), { timeframe: '1h', maintenance: [] });
    expect(plain.report.gaps[0]?.kind).toBe('missing');
    expect(plain.report.coverage).toBeCloseTo(34_349 / 34_350, 12);
  });

  it('BTC 1m 2024-01: nothing quarantined, the 2024-01-03 12:09 3.3% range is flagged as an outlier (kept)', () => {
    const r = validateBars(real(BTC_1M), { timeframe: '1m' });
    expect(r.report.rowsKept).toBe(44_641);
    expect(r.report.quarantined).toEqual({});
    expect(r.report.gaps).toEqual([]);
    const ranges = validateBars(real(BTC_1M), { timeframe: '1m', outlierZ: 60 });
    expect(ranges.report.flagSamples['outlier-range']).toContain('2024-01-03T12:09:00Z');
  });
});
