/**
 * The simulator's candle files on the shared table of formats (test-support/candle-formats.ts),
 * the same table @keel/candles is held to: every layout gives the same bars, worked out by hand,
 * and a row the data pipeline would quarantine is an error naming the file, line and rule here.
 */
import { describe, expect, it } from 'vitest';
import { CANDLE_FORMATS, readFormatCase, writeCandleFormatFiles } from '../../../test-support/candle-formats.ts';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { BarFileError, parseBarsCsv, readBarsFile, syntheticBars } from '../src/bars.ts';

const files = writeCandleFormatFiles();

describe('exchange-sim candle files: the shared table of formats', () => {
  for (const c of CANDLE_FORMATS) {
    it(c.name, () => {
      const read = () => readFormatCase(c, files, { file: readBarsFile, text: parseBarsCsv });
      if (c.error) {
        expect(read).toThrow(BarFileError);
        expect(read).toThrow(c.error);
        return;
      }
      const first = c.quarantined?.[0];
      if (first) {
        expect(read).toThrow(new RegExp(`f\\.csv:${first.line}: ${first.rule}`));
        return;
      }
      expect(read().map((b) => [b.time, b.open, b.high, b.low, b.close, b.volume])).toEqual(c.bars?.map((b) => [...b]));
    });
  }
});

describe('synthetic bars for a market given no data', () => {
  it("are core's seeded synthetic market from 100: consistent, on the tick, one per minute, the same for the same seed", () => {
    const a = syntheticBars({ start: Date.UTC(2024, 0, 1), seed: 3 });
    expect(a).toHaveLength(1440);
    expect(a).toEqual(syntheticBars({ start: Date.UTC(2024, 0, 1), seed: 3 }));
    expect(a).not.toEqual(syntheticBars({ start: Date.UTC(2024, 0, 1), seed: 4 }));
    expect(a[0]?.open).toBe(100);
    a.forEach((b, i) => {
      expect(b.time).toBe(Date.UTC(2024, 0, 1) + i * 60_000);
      expect(b.low).toBeLessThanOrEqual(Math.min(b.open, b.close));
      expect(b.high).toBeGreaterThanOrEqual(Math.max(b.open, b.close));
      expect(b.low).toBeGreaterThan(0);
      expect(Math.round(b.close * 100) / 100).toBe(b.close);
    });
  });
});

describe.skipIf(!HAS_SHARED_DATA)('exchange-sim candle files: every shared real file', () => {
  if (!HAS_SHARED_DATA) noteSkip('exchange-sim shared files');
  it('reads each shared layout without complaint', () => {
    for (const [name, n] of [
      ['binance_BTCUSDT_1m_2024-01.csv.gz', 44_641],
      ['binance_ETHUSDT_1h_2022-01-01_2025-12-02.csv.gz', 34_349],
      ['binance_BTCUSDT_1d_2017-08-17_2026-01-05.csv.gz', 3_064],
      ['binance_BTCUSDT_1m_2024-02-12_2024-03-17.csv.gz', 50_000],
      ['binance-futures-um_LINKUSDT_1m_2023-02.csv.gz', 40_320],
    ] as const)
      expect(readBarsFile(dataFile(name)), name).toHaveLength(n);
  });
});
