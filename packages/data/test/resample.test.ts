import { barSeries, timeframeEnd, timeframeStart } from '@keel/core';
import { describe, expect, it } from 'vitest';
import { RESAMPLE_TARGETS, resampleBars } from '../src/resample.ts';
import type { FullSeries } from '../src/schema.ts';
import { BTC_1D, BTC_1H, BTC_1M, ETH_1M, HAS_SHARED_DATA, noteSkip, real } from './helpers.ts';

/** Compares aggregated bars with the exchange's own candles at the same open times; returns mismatches. */
function compare(
  ours: FullSeries,
  theirs: FullSeries,
  from: number,
  to: number,
): { compared: number; maxVolRel: number; mismatches: string[] } {
  const idx = new Map<number, number>();
  for (let i = 0; i < theirs.length; i++) idx.set(theirs.time[i] as number, i);
  let compared = 0;
  let maxVolRel = 0;
  const mismatches: string[] = [];
  for (let i = 0; i < ours.length; i++) {
    const t = ours.time[i] as number;
    if (t < from || t >= to) continue;
    const at = new Date(t).toISOString();
    const k = idx.get(t);
    if (k === undefined) {
      mismatches.push(`${at}: the exchange has no candle`);
      continue;
    }
    for (const c of ['open', 'high', 'low', 'close'] as const) {
      if (ours[c][i] !== theirs[c][k]) mismatches.push(`${at} ${c}: ours ${ours[c][i]} exchange ${theirs[c][k]}`);
    }
    const rel = Math.abs((ours.volume[i] as number) - (theirs.volume[k] as number)) / (theirs.volume[k] as number);
    maxVolRel = Math.max(maxVolRel, rel);
    compared++;
  }
  return { compared, maxVolRel, mismatches };
}

describe.skipIf(!HAS_SHARED_DATA)("resampling matches the exchange's own higher-timeframe candles", () => {
  if (!HAS_SHARED_DATA) noteSkip('resample oracle');

  it("BTC and ETH 1m 2024-01 -> 1h equal Binance's 1h candles for all 744 hours (OHLC exact, volume 1e-9)", () => {
    for (const [m1, sym] of [
      [BTC_1M, 'BTC'],
      [ETH_1M, 'ETH'],
    ] as const) {
      const r = resampleBars(real(m1), '1m', '1h');
      const h1 = real(sym === 'BTC' ? BTC_1H : 'binance_ETHUSDT_1h_2022-01-01_2025-12-02.csv.gz');
      const { compared, maxVolRel, mismatches } = compare(r.series, h1, Date.UTC(2024, 0, 1), Date.UTC(2024, 1, 1));
      expect(mismatches).toEqual([]);
      expect(compared).toBe(744);
      expect(maxVolRel).toBeLessThan(1e-9);
      // The lone 2024-02-01 00:00 bar makes a partial last hour, flagged.
      expect(r.partial[r.series.length - 1]).toBe(1);
      expect(r.partial.subarray(0, -1).every((p) => p === 0)).toBe(true);
    }
  });

  it("BTC 1h -> 1d equals Binance's 1d candles for every complete day 2022-01-01..2025-12-01", () => {
    const r = resampleBars(real(BTC_1H), '1h', '1d');
    const { compared, maxVolRel, mismatches } = compare(
      r.series,
      real(BTC_1D),
      Date.UTC(2022, 0, 1),
      Date.UTC(2025, 11, 2),
    );
    expect(mismatches).toEqual([]);
    // The README counts 1,430 complete days; the maintenance day 2023-03-24 (23 hourly bars) matches too.
    expect(compared).toBe(1431);
    expect(maxVolRel).toBeLessThan(1e-9);
    // 2023-03-24 has 23 hourly bars (maintenance), yet it is a complete day and equals the exchange's.
    const i = Array.from(r.series.time).indexOf(Date.UTC(2023, 2, 24));
    expect(r.sourceBars[i]).toBe(23);
    expect(r.partial[i]).toBe(0);
    // The file ends at 2025-12-02 05:00 (README quirk 3): that day is partial.
    expect(r.partial[r.series.length - 1]).toBe(1);
  });

  it("BTC 1m 2024-01 -> 1d equals Binance's 1d candles for all 31 days", () => {
    const r = resampleBars(real(BTC_1M), '1m', '1d');
    const { compared, maxVolRel, mismatches } = compare(
      r.series,
      real(BTC_1D),
      Date.UTC(2024, 0, 1),
      Date.UTC(2024, 1, 1),
    );
    expect(mismatches).toEqual([]);
    expect(compared).toBe(31);
    expect(maxVolRel).toBeLessThan(1e-9);
  });

  it('every target timeframe: UTC-aligned open times, weeks on Monday, OHLCV invariants, counts add up', () => {
    const s = real(BTC_1M);
    for (const tf of RESAMPLE_TARGETS) {
      const r = resampleBars(s, '1m', tf);
      let total = 0;
      const bad: string[] = [];
      for (let i = 0; i < r.series.length; i++) {
        const t = r.series.time[i] as number;
        const at = `${tf} ${new Date(t).toISOString()}`;
        if (timeframeStart(tf, t) !== t) bad.push(`${at} not aligned`);
        if (tf === '1w' && new Date(t).getUTCDay() !== 1) bad.push(`${at} not a Monday`);
        if (tf === '1M' && new Date(t).getUTCDate() !== 1) bad.push(`${at} not the 1st`);
        if ((r.series.high[i] as number) < Math.max(r.series.open[i] as number, r.series.close[i] as number))
          bad.push(`${at} high`);
        if ((r.series.low[i] as number) > Math.min(r.series.open[i] as number, r.series.close[i] as number))
          bad.push(`${at} low`);
        total += r.sourceBars[i] as number;
        const complete = (timeframeEnd(tf, t) - t) / 60_000 === r.sourceBars[i];
        if (r.partial[i] === 0 && !complete) bad.push(`${at} not partial but incomplete`);
      }
      expect(bad).toEqual([]);
      expect(total).toBe(s.length);
    }
  });
});

describe('resampling edge cases', () => {
  it('a series starting mid-period marks the first bar partial; the 3d grid counts from the epoch', () => {
    const t0 = Date.UTC(2024, 0, 1, 0, 30);
    const n = 90;
    const t = Array.from({ length: n }, (_, i) => t0 + i * 60_000);
    const one = t.map(() => 1);
    const r = resampleBars(barSeries({ time: t, open: one, high: one, low: one, close: one, volume: one }), '1m', '1h');
    expect(Array.from(r.partial)).toEqual([1, 0]);
    expect(Array.from(r.sourceBars)).toEqual([30, 60]);
    expect(timeframeStart('3d', Date.UTC(2024, 0, 1))).toBe(Date.UTC(2023, 11, 31));
  });

  it('refuses finer or non-multiple targets', () => {
    const s = barSeries({ time: [0], open: [1], high: [1], low: [1], close: [1], volume: [1] });
    expect(() => resampleBars(s, '1h', '1m')).toThrow(/finer/);
    expect(() => resampleBars(s, '2h', '3d')).not.toThrow();
    expect(() => resampleBars(s, '8h', '12h')).toThrow(/multiple/);
  });
});
