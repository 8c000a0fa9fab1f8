import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fundingGaps } from '@keel/core';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { CsvFormatError, fundingSeriesFromCcxt, parseFundingRateCsv, readFundingRateFile } from '../src/index.ts';

const LINK_FUNDING = 'binance-futures-um_LINKUSDT_fundingRate_2023-02.csv.gz';
const tmp = { dir: mkdtempSync(path.join(tmpdir(), 'keel-funding-')) };
afterAll(() => rmSync(tmp.dir, { recursive: true, force: true }));

describe.skipIf(!HAS_SHARED_DATA)(
  "Binance's LINKUSDT funding archive, 2023-02 (oracle: ../shared/data/README.md)",
  () => {
    if (!HAS_SHARED_DATA) noteSkip('funding archive');
    const parsed = HAS_SHARED_DATA
      ? readFundingRateFile(dataFile(LINK_FUNDING), { symbol: 'LINK/USDT:USDT' })
      : undefined;

    it('reads all 84 rows, 00:00 / 08:00 / 16:00 UTC with the exchange jitter kept, every interval 8 h', () => {
      const s = parsed?.series;
      if (!s) throw new Error('no series');
      expect(parsed?.layout).toBe('binance-archive');
      expect(s.length).toBe(84);
      expect(s.symbol).toBe('LINK/USDT:USDT');
      expect(s.time[0]).toBe(1_675_209_600_013); // 2023-02-01 00:00:00.013
      expect(new Date(s.time[83] as number).toISOString().slice(0, 16)).toBe('2023-02-28T16:00');
      expect([...s.intervalHours].every((h) => h === 8)).toBe(true);
      expect(s.rate[0]).toBe(0.0001);
    });

    it('has the README numbers: 75 rows exactly 0.0001, the rest from -0.00005015 to +0.00048855', () => {
      const rates = [...(parsed?.series.rate ?? [])];
      expect(rates.filter((r) => r === 0.0001)).toHaveLength(75);
      expect(Math.min(...rates)).toBe(-0.00005015);
      expect(Math.max(...rates)).toBe(0.00048855);
    });

    it('covers the month without a gap (fundingGaps finds none), and finds the hole when a row is cut', () => {
      const s = parsed?.series;
      if (!s) throw new Error('no series');
      const from = Date.UTC(2023, 1, 1);
      const to = Date.UTC(2023, 1, 28, 23, 59);
      expect(fundingGaps(s, from, to)).toEqual([]);
      const lines = ['calc_time,funding_interval_hours,last_funding_rate'];
      for (let i = 0; i < s.length; i++) if (i !== 10) lines.push(`${s.time[i]},8,${s.rate[i]}`);
      const cut = parseFundingRateCsv(lines.join('\n'), 'cut.csv').series;
      expect(fundingGaps(cut, from, to)).toEqual([{ after: s.time[9], before: s.time[11], missing: 1 }]);
      // A run reaching past the data is missing the slots after the last row.
      expect(fundingGaps(s, from, Date.UTC(2023, 2, 1, 12))).toEqual([
        { after: s.time[83], before: Date.UTC(2023, 2, 1, 12), missing: 2 },
      ]);
    });

    it("equals the same rows in ccxt's fetchFundingRateHistory shape, and in Binance's /fapi/v1/fundingRate JSON", () => {
      const s = parsed?.series;
      if (!s) throw new Error('no series');
      const ccxtRows = [...s.time].map((t, i) => ({
        info: { symbol: 'LINKUSDT', fundingTime: String(t), fundingRate: String(s.rate[i]) },
        symbol: 'LINK/USDT:USDT',
        fundingRate: s.rate[i] as number,
        timestamp: t,
        datetime: new Date(t).toISOString(),
      }));
      const fromCcxt = fundingSeriesFromCcxt(ccxtRows);
      expect(fromCcxt.symbol).toBe('LINK/USDT:USDT');
      expect([...fromCcxt.time]).toEqual([...s.time]);
      expect([...fromCcxt.rate]).toEqual([...s.rate]);
      expect([...fromCcxt.intervalHours]).toEqual([...s.intervalHours]);
      const json = path.join(tmp.dir, 'ccxt.json');
      writeFileSync(json, JSON.stringify(ccxtRows));
      expect(readFundingRateFile(json).layout).toBe('ccxt-json');
      expect([...readFundingRateFile(json).series.rate]).toEqual([...s.rate]);
      const binance = path.join(tmp.dir, 'binance.json');
      writeFileSync(binance, JSON.stringify(ccxtRows.map((r) => r.info)));
      const b = readFundingRateFile(binance);
      expect(b.layout).toBe('binance-json');
      expect([...b.series.time]).toEqual([...s.time]);
      expect(b.series.symbol).toBe('LINKUSDT');
    });
  },
);

describe('bad funding input names the file, the line and the field', () => {
  it('refuses an unreadable rate, an unreadable time, a duplicate time and an unknown header', () => {
    const head = 'calc_time,funding_interval_hours,last_funding_rate';
    expect(() => parseFundingRateCsv(`${head}\n1675209600013,8,abc`, 'f.csv')).toThrow(
      /f\.csv: line 2: funding rate "abc" is not a number/,
    );
    expect(() => parseFundingRateCsv(`${head}\n1675209600013,8,`, 'f.csv')).toThrow(/line 2: funding rate ""/);
    expect(() => parseFundingRateCsv(`${head}\nyesterday,8,0.0001`, 'f.csv')).toThrow(
      /line 2: cannot read funding time/,
    );
    expect(() => parseFundingRateCsv(`${head}\n1675209600013,8,0.0001\n1675209600013,8,0.0001`, 'f.csv')).toThrow(
      /f\.csv: row 1: funding time .* is not after the previous one/,
    );
    expect(() => parseFundingRateCsv('a,b\n1,2', 'f.csv')).toThrow(CsvFormatError);
    expect(() => fundingSeriesFromCcxt([{ fundingRate: undefined, timestamp: 1 }])).toThrow(/row 0: fundingRate/);
    expect(() =>
      fundingSeriesFromCcxt([
        { symbol: 'A/USDT:USDT', fundingRate: 0.0001, timestamp: 1 },
        { symbol: 'B/USDT:USDT', fundingRate: 0.0001, timestamp: 2 },
      ]),
    ).toThrow(/one contract's/);
  });

  it('reads a ccxt-style CSV with an ISO datetime and infers the interval from the gaps', () => {
    const s = parseFundingRateCsv(
      'symbol,fundingRate,datetime\nX,0.0001,2024-01-01T00:00:00Z\nX,0.0002,2024-01-01T04:00:00Z\nX,-0.0001,2024-01-01T08:00:00Z',
      'x.csv',
    ).series;
    expect([...s.rate]).toEqual([0.0001, 0.0002, -0.0001]);
    expect([...s.intervalHours]).toEqual([4, 4, 4]);
    expect(s.time[0]).toBe(Date.UTC(2024, 0, 1));
  });
});
