import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { keelIn } from './in-process.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'keel-btdata-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const BTC_1M = dataFile('binance_BTCUSDT_1m_2024-01.csv.gz');
const BTC_1H = dataFile('binance_BTCUSDT_1h_2022-01-01_2025-12-02.csv.gz');
const ETH_1M = dataFile('binance_ETHUSDT_1m_2024-01.csv.gz');
const ETH_1H = dataFile('binance_ETHUSDT_1h_2022-01-01_2025-12-02.csv.gz');

/** A hand-made 1m candle file: `rows` as [minute, open, high, low, close]; volume 10. */
function candles(name: string, rows: readonly (readonly [number, number, number, number, number])[]): string {
  const t0 = Date.UTC(2024, 0, 1);
  let text = 'timestamp,open,high,low,close,volume\n';
  for (const [m, o, h, l, c] of rows) text += `${t0 + m * 60_000},${o},${h},${l},${c},10\n`;
  const f = path.join(tmp, name);
  writeFileSync(f, text);
  return f;
}

/** n flat-ish 1m bars from minute 0 (a slow zig-zag, every price > 0). */
function rowsOf(n: number, skip: readonly number[] = []): [number, number, number, number, number][] {
  const out: [number, number, number, number, number][] = [];
  for (let m = 0; m < n; m++) {
    if (skip.includes(m)) continue;
    const p = 100 + 5 * Math.sin(m / 7);
    out.push([m, p, p + 1, p - 1, p + 0.5]);
  }
  return out;
}

describe.skipIf(!HAS_SHARED_DATA)('keel backtest from the data store', () => {
  const dir = path.join(tmp, 'store');
  beforeAll(async () => {
    for (const f of [BTC_1M, ETH_1M]) {
      const r = await keelIn(['data', 'import', f, '--data-dir', dir]);
      expect(r.code, r.err).toBe(0);
    }
  }, 120_000);

  it("1h from stored 1m bars (resampled on the fly) equals the backtest of Binance's own 1h candles of the month", async () => {
    const span = ['--from', '2024-01-01', '--to', '2024-02-01'];
    const stored = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--exchange',
      'binance',
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '1h',
      '--data-dir',
      dir,
      ...span,
      '--json',
    ]);
    expect(stored.code, stored.err).toBe(0);
    expect(stored.err).toMatch(/1m bars resampled to 1h on the fly/);
    const file = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC_1H, ...span, '--json']);
    expect(file.code, file.err).toBe(0);
    const a = JSON.parse(stored.out);
    const b = JSON.parse(file.out);
    expect(a.trades.length).toBeGreaterThan(5);
    expect(a.trades).toEqual(b.trades);
    expect(a.fills).toEqual(b.fills);
    expect(a.finalValue).toBe(b.finalValue);
  });

  it("several markets from the store equal the same markets from Binance's 1h files", async () => {
    const span = ['--from', '2024-01-01', '--to', '2024-02-01', '--no-save', '--json'];
    const stored = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--symbol',
      'BTC/USDT,ETH/USDT',
      '--timeframe',
      '1h',
      '--data-dir',
      dir,
      ...span,
    ]);
    expect(stored.code, stored.err).toBe(0);
    const files = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC_1H, '--data', ETH_1H, ...span]);
    const a = JSON.parse(stored.out);
    const b = JSON.parse(files.out);
    expect(a.pairs.map((p: { symbol: string }) => p.symbol)).toEqual(['BTC/USDT', 'ETH/USDT']);
    expect(a.trades.filter((t: { symbol: string }) => t.symbol === 'ETH/USDT').length).toBeGreaterThan(3);
    expect(a.trades).toEqual(b.trades);
    expect(a.finalValue).toBe(b.finalValue);
  });

  it('1m from the store is the backtest of the imported file, byte for byte', async () => {
    const stored = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '1m',
      '--data-dir',
      dir,
      '--json',
    ]);
    const file = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC_1M, '--json']);
    expect(stored.code, stored.err).toBe(0);
    expect(stored.out === file.out, 'same bytes').toBe(true);
  });

  it('a market or a range the store does not hold is an error naming the store and what it holds', async () => {
    const bnb = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--symbol',
      'BNB/USDT',
      '--timeframe',
      '1h',
      '--data-dir',
      dir,
    ]);
    expect(bnb.code).toBe(1);
    expect(bnb.err).toMatch(/has no binance spot BNB\/USDT bars: keel data download or keel data import/);
    const finer = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '1s',
      '--data-dir',
      dir,
    ]);
    expect(finer.code).toBe(1);
    expect(finer.err).toMatch(
      /has BTC\/USDT only as 1m 2024-01-01T00:00:00Z \.\. 2024-02-01T00:00:00Z: none is 1s or finer/,
    );
    const late = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '1h',
      '--data-dir',
      dir,
      '--from',
      '2025-01-01',
    ]);
    expect(late.code).toBe(1);
    expect(late.err).toMatch(/no BTC\/USDT bars in 2025-01-01T00:00:00Z \.\. the end; stored: 1m 2024-01-01T00:00:00Z/);
  });
});

describe('the data-quality gate before every backtest', () => {
  it('a non-positive price is refused with file, row, field and rule; --allow-bad-data drops it and the summary counts it', async () => {
    const rows = rowsOf(120);
    rows[40] = [40, 100, 101, 99, 0];
    const f = candles('zero-close.csv', rows);
    const r = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', f, '--symbol', 'BTC/USDT']);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`non-positive-price: 1 row, first at ${f} row 41 (line 42), field close`);
    expect(r.err).toMatch(/--allow-bad-data drops those rows/);
    const d = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      f,
      '--symbol',
      'BTC/USDT',
      '--allow-bad-data',
    ]);
    expect(d.code, d.err).toBe(0);
    expect(d.out).toMatch(/1 bad rows dropped \(non-positive-price 1\)/);
    expect(d.out).toMatch(/119 bars in/);
  });

  it('gaps are shown in the summary with their count and the longest', async () => {
    const f = candles('gappy.csv', rowsOf(120, [50, 51, 52, 90]));
    const r = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', f, '--symbol', 'BTC/USDT']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/gaps \(whole file\) 2 \(4 1m bars missing\), longest 3 1m bars from 2024-01-01T00:50:00Z/);
    const clean = await keelIn([
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      candles('clean.csv', rowsOf(60)),
      '--symbol',
      'BTC/USDT',
    ]);
    expect(clean.out).toMatch(/BTC\/USDT: .*clean\.csv, no gaps \(whole file\)/);
  });
});
