/**
 * The candle reader on the shared table of formats (test-support/candle-formats.ts): oracle, the
 * bars worked out by hand for each layout. The exchange simulator runs the same table.
 */
import { describe, expect, it } from 'vitest';
import { CANDLE_FORMATS, readFormatCase, writeCandleFormatFiles } from '../../../test-support/candle-formats.ts';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { type ParsedCsv, parseBarsCsv, parseTimestamp, readBarsFile, runMarket } from '../src/index.ts';

const files = writeCandleFormatFiles();

function rows(p: ParsedCsv): number[][] {
  const s = p.series;
  return Array.from({ length: s.length }, (_, i) =>
    [s.time, s.open, s.high, s.low, s.close, s.volume].map((c) => c[i] as number),
  );
}

describe('@keel/candles reads every format in the shared table', () => {
  for (const c of CANDLE_FORMATS) {
    it(c.name, () => {
      const read = () => readFormatCase(c, files, { file: readBarsFile, text: parseBarsCsv });
      if (c.error) {
        expect(read).toThrow(c.error);
        return;
      }
      const p = read();
      expect(rows(p)).toEqual(c.bars?.map((b) => [...b]));
      expect(p.quarantined.map((q) => ({ line: q.line, rule: q.rule }))).toEqual(c.quarantined ?? []);
      if (c.note) expect(p.notes.join('\n')).toMatch(c.note);
      else expect(p.notes).toEqual([]);
    });
  }
});

describe('what a cell that cannot be read is called', () => {
  it('an empty price is "close is empty" (not a price of 0), a day-first date names the cause, both with row and line', () => {
    const p = parseBarsCsv(
      'datetime,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,0.5,,10\n2024-01-01 00:01:00,1,2,0.5,nan,10\n02/01/2024 00:02,1,2,0.5,1,10\n"2024-01-01 00:03:00","1,5",2,1,1.2,1\n',
      'f.csv',
    );
    expect(p.quarantined.map((q) => [q.row, q.line, q.field, q.message])).toEqual([
      [1, 2, 'close', 'close is empty'],
      [2, 3, 'close', 'close is empty ("nan", a missing value)'],
      [
        3,
        4,
        'time',
        'cannot read timestamp "02/01/2024 00:02" (day and month order cannot be told from dd/mm/yyyy or mm/dd/yyyy: write dates as YYYY-MM-DD)',
      ],
      [4, 5, 'open', 'open "1,5" is not a number'],
    ]);
  });

  it('a file that is not strictly newest first is left in its order (the quality gate refuses unsorted rows)', () => {
    const t0 = Date.UTC(2024, 0, 1);
    const p = parseBarsCsv(
      'datetime,open,high,low,close,volume\n2024-01-01 00:02:00,1,2,0.5,1,1\n2024-01-01 00:00:00,1,2,0.5,1,1\n2024-01-01 00:01:00,1,2,0.5,1,1\n',
      'f.csv',
    );
    expect(Array.from(p.series.time)).toEqual([t0 + 120_000, t0, t0 + 60_000]);
    expect(p.notes.join()).not.toMatch(/newest first/);
  });
});

describe('timestamps', () => {
  it('reads epochs in s, ms, us and ns and ISO text with and without zones, to the ms', () => {
    const t = Date.UTC(2024, 0, 1, 12, 34, 56, 789);
    for (const s of [
      '1704112496.789',
      '1704112496789',
      '1704112496789000',
      '1704112496789123456',
      '2024-01-01 12:34:56.789',
      '2024-01-01T12:34:56.789Z',
      '2024-01-01T12:34:56.789999Z',
      '2024-01-01T13:34:56.789+01:00',
      '2024-01-01T13:34:56.789+0100',
      '2024-01-01T13:34:56.789+01',
      '2024-01-01T07:04:56.789-05:30',
    ])
      expect(parseTimestamp(s), s).toBe(t);
    expect(parseTimestamp('2024-01-01 12:34')).toBe(Date.UTC(2024, 0, 1, 12, 34));
    expect(parseTimestamp('2024-01-01')).toBe(Date.UTC(2024, 0, 1));
    for (const bad of [
      '2024-13-01 00:00:00',
      '2024-01-01 25:00:00',
      '2024-01-01X00:00:00',
      'soon',
      '2024-01-01 00:00:00 CET',
    ])
      expect(parseTimestamp(bad), bad).toBeNaN();
  });

  it('names the data row (header and blank lines not counted) and the file line of each kept row', () => {
    const p = parseBarsCsv(
      'datetime,open,high,low,close,volume\n\n2024-01-01 00:00:00,1,2,0.5,1.5,10\nbad,1,1,1,1,1\n2024-01-01 00:01:00,1.5,2,1,1.2,11\n',
    );
    expect(Array.from(p.lines)).toEqual([3, 5]);
    expect(Array.from(p.rows)).toEqual([1, 3]);
  });
});

describe.skipIf(!HAS_SHARED_DATA)('every shared real file', () => {
  if (!HAS_SHARED_DATA) noteSkip('candles on shared files');
  it('reads each with no row refused, no note, in its own layout and timeframe', () => {
    for (const [name, rowsExpected, tf] of [
      ['binance_BTCUSDT_1m_2024-01.csv.gz', 44_641, '1m'],
      ['binance_BTCUSDT_1h_2022-01-01_2025-12-02.csv.gz', 34_349, '1h'],
      ['binance_BTCUSDT_1d_2017-08-17_2026-01-05.csv.gz', 3_064, '1d'],
      ['binance_ETHUSDT_1m_2022-12-01_2023-01-04.csv.gz', 50_000, '1m'],
      ['binance-futures-um_LINKUSDT_1m_2023-02.csv.gz', 40_320, '1m'],
    ] as const) {
      const p = readBarsFile(dataFile(name));
      expect(p.series.length, name).toBe(rowsExpected);
      expect(p.quarantined, name).toEqual([]);
      expect(p.notes, name).toEqual([]);
      expect(p.time.timeframe, name).toBe(tf);
      expect(p.time.is, name).toBe('open');
    }
  });
});

describe('the market kind of a run, from --market, --symbol and the file names (runMarket)', () => {
  it('a perpetual symbol or a futures file name makes it futures, with a note; anything that disagrees is refused', () => {
    expect(runMarket(undefined, ['BTC/USDT:USDT'], [])).toEqual({
      ok: true,
      market: 'futures',
      note: '--symbol BTC/USDT:USDT says USD-M futures: run as a perpetual, as with --market futures',
    });
    // Binance's archive names are the same for spot and futures: they leave it to --market.
    expect(runMarket(undefined, ['BTC/USDT'], ['BTCUSDT-1m-2024-01.csv'])).toEqual({ ok: true, market: 'spot' });
    expect(runMarket('futures', ['BTC/USDT'], ['BTCUSDT-1m-2024-01.csv'])).toEqual({ ok: true, market: 'futures' });
    expect(runMarket('spot', ['BTC/USDT:USDT'], [])).toEqual({
      ok: false,
      message:
        "--market spot, but --symbol BTC/USDT:USDT says USD-M futures: give --market futures, or the spot market's symbol",
    });
    expect(runMarket(undefined, [], ['binance-futures-cm_BTCUSD_1m.csv'])).toMatchObject({ ok: false });
    // Only binance_ (whose futures files say binance-futures-um_) says spot; another prefix says nothing.
    expect(runMarket('futures', [], ['my_BTCUSDT_1m.csv'])).toEqual({ ok: true, market: 'futures' });
    expect(runMarket('futures', [], ['binance_BTCUSDT_1m.csv'])).toMatchObject({ ok: false });
    expect(runMarket('perp', [], [])).toEqual({ ok: false, message: '--market must be spot or futures, got "perp"' });
  });
});
