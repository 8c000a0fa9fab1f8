import ccxt, { type OHLCV } from 'ccxt';
import { describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import {
  BarFileError,
  ccxtConfigFor,
  parseBarsCsv,
  readBarsFile,
  type SimBar,
  startExchangeSim,
} from '../src/index.ts';
import { KEY, watchUntil } from './helpers.ts';

describe('candle files', () => {
  it('reads the text-time layout and the headerless Binance 12-column layout to the same bars', () => {
    const text = parseBarsCsv(
      'datetime,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,0.5,1.5,10\n2024-01-01 00:01:00,1.5,2,1,1.2,11\n',
    );
    const raw = parseBarsCsv(
      '1704067200000,1,2,0.5,1.5,10,1704067259999,15,3,5,7,0\n1704067260000,1.5,2,1,1.2,11,1704067319999,15,3,5,7,0\n',
    );
    expect(text).toEqual(raw);
    expect(text[0]).toEqual({ time: Date.UTC(2024, 0, 1), open: 1, high: 2, low: 0.5, close: 1.5, volume: 10 });
  });

  it('names the file and line of a broken row, and rejects unordered bars', () => {
    expect(() =>
      parseBarsCsv('timestamp,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,x,1,1\n', 'f.csv'),
    ).toThrow(/f\.csv:2/);
    expect(() =>
      parseBarsCsv(
        // Neither ascending nor strictly newest first (which is read in time order, with a note).
        'timestamp,open,high,low,close,volume\n2024-01-01 00:01:00,1,2,1,1,1\n2024-01-01 00:00:00,1,2,1,1,1\n2024-01-01 00:02:00,1,2,1,1,1\n',
        'g.csv',
      ),
    ).toThrow(BarFileError);
    expect(() => parseBarsCsv('when,open\n1,2\n', 'h.csv')).toThrow(/lacks column/);
  });
});

const FILE_1M = dataFile('binance_BTCUSDT_1m_2024-01.csv.gz');
const FILE_1H = dataFile('binance_BTCUSDT_1h_2022-01-01_2025-12-02.csv.gz');

describe.skipIf(!HAS_SHARED_DATA)('real Binance candles (shared data)', () => {
  if (!HAS_SHARED_DATA) noteSkip('exchange-sim real-data replay');

  it('reads every shared layout: SysTB text times, Binance 12-column futures, etna 1d with symbol columns', () => {
    expect(readBarsFile(FILE_1M)).toHaveLength(44_641);
    const link = readBarsFile(dataFile('binance-futures-um_LINKUSDT_1m_2023-02.csv.gz'));
    expect(link[0]).toEqual({
      time: 1675209600000,
      open: 6.949,
      high: 6.959,
      low: 6.947,
      close: 6.957,
      volume: 30020.25,
    });
    const daily = readBarsFile(dataFile('binance_BTCUSDT_1d_2017-08-17_2026-01-05.csv.gz'));
    expect(daily[0]).toEqual({
      time: 1502928000000,
      open: 4261.48,
      high: 4485.39,
      low: 4200.74,
      close: 4285.08,
      volume: 795.150377,
    });
  });

  it('klines over ccxt match the file bar for bar, and 1h klines resampled from 1m match Binance own 1h candles', async () => {
    const bars = readBarsFile(FILE_1M);
    const hourly = readBarsFile(FILE_1H);
    const start = bars[1500]!.time; // 2024-01-02 01:00 UTC, on an hour boundary
    const sim = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars, tickSize: 0.01, stepSize: 0.00001 }],
      accounts: [{ ...KEY, balances: { USDT: 100_000 } }],
      startTime: start,
    });
    const ex = new ccxt.binance(ccxtConfigFor(sim, KEY));
    try {
      const got = await ex.fetchOHLCV('BTC/USDT', '1m', bars[1400]!.time, 100);
      const row = (b: SimBar) => [b.time, b.open, b.high, b.low, b.close, b.volume];
      expect(got).toEqual(bars.slice(1400, 1500).map(row));
      sim.step(3);
      const after = await ex.fetchOHLCV('BTC/USDT', '1m', bars[1500]!.time, 3);
      expect(after).toEqual(bars.slice(1500, 1503).map(row));
      // Oracle: Binance's own 1h candles (a different file) for the 24 hours of 2024-01-01.
      const h1 = await ex.fetchOHLCV('BTC/USDT', '1h', Date.UTC(2024, 0, 1), 24);
      const ref = hourly.filter((b) => b.time >= Date.UTC(2024, 0, 1) && b.time < Date.UTC(2024, 0, 2));
      expect(h1).toHaveLength(24);
      h1.forEach((c, i) => {
        const r = ref[i]!;
        expect(c.slice(0, 5)).toEqual([r.time, r.open, r.high, r.low, r.close]);
        expect(c[5]).toBeCloseTo(r.volume, 4);
      });
      // A market buy fills near the replayed price and within the current bar's range.
      const o = await ex.createOrder('BTC/USDT', 'market', 'buy', 0.01);
      const bar = bars[1503]!;
      expect(o.status).toBe('closed');
      expect(o.average).toBeGreaterThanOrEqual(bar.open);
      expect(o.average).toBeLessThanOrEqual(bar.open + 0.05);
    } finally {
      await ex.close();
      await sim.close();
    }
  });

  it('watchOHLCV on a real file: the closed candle equals the file row', async () => {
    const bars = readBarsFile(FILE_1M).slice(0, 300);
    const sim = await startExchangeSim({ markets: [{ symbol: 'BTC/USDT', bars }], startTime: bars[100]!.time });
    const pro = new ccxt.pro.binance(ccxtConfigFor(sim));
    try {
      const seen: OHLCV[] = [];
      const first = pro.watchOHLCV('BTC/USDT', '1m');
      await sim.waitForSubscription('btcusdt@kline_1m');
      sim.step();
      seen.push(...(await first));
      await watchUntil(
        () => pro.watchOHLCV('BTC/USDT', '1m'),
        (cs) => {
          seen.push(...cs);
          return seen.some((c) => c[0] === bars[102]!.time);
        },
        { kick: () => void sim.step() },
      );
      const b = bars[101]!;
      expect(seen.filter((c) => c[0] === b.time).at(-1)).toEqual([b.time, b.open, b.high, b.low, b.close, b.volume]);
    } finally {
      await pro.close();
      await sim.close();
    }
  });
});
