import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { keelIn } from './in-process.ts';

// `keel paper --replay` reads its files through the backtest's data gate. Before, a replay took
// the file's parsed rows as they came: bad rows were dropped silently, an hourly file ran as 1m bars
// (the default --timeframe), and ETH bars replayed as BTC/USDT. Real BTC hourly candles, the first
// 300 rows written to this test's folder (keelIn runs in a fresh working folder).
const HOURS = 300;

function slice(name: string, edit?: (rows: string[]) => void): string {
  const lines = gunzipSync(readFileSync(dataFile('binance_BTCUSDT_1h_2022-01-01_2025-12-02.csv.gz')))
    .toString('utf8')
    .split('\n');
  const rows = lines.slice(1, 1 + HOURS);
  edit?.(rows);
  const file = path.resolve(name);
  writeFileSync(file, `${lines[0]}\n${rows.join('\n')}\n`);
  return file;
}

async function paper(file: string, ...extra: string[]) {
  const r = await keelIn([
    'paper',
    '--strategy',
    'sma-cross',
    '--symbol',
    'BTC/USDT',
    '--replay',
    file,
    '--store',
    `sqlite:${path.resolve(`${path.basename(file)}-${extra.join('')}.db`)}`,
    ...extra,
  ]);
  const report = r.code === 0 ? (JSON.parse(r.out) as { bars: number }) : undefined;
  return { ...r, report };
}

describe.skipIf(!HAS_SHARED_DATA)('keel paper --replay passes the data gate (real BTC 1h candles)', () => {
  it("runs on the file's own timeframe; a coarser --timeframe resamples, a finer one is refused", async () => {
    const file = slice('binance_BTCUSDT_1h_slice.csv');
    const own = await paper(file);
    expect(own.code, own.err).toBe(0);
    expect(own.err).toContain('paper bot started: sma-cross on BTC/USDT 1h');
    expect(own.report?.bars).toBe(HOURS);
    expect(own.err).toMatch(/data: BTC\/USDT: .*binance_BTCUSDT_1h_slice\.csv, no gaps \(whole file\)/);

    const four = await paper(file, '--timeframe', '4h');
    expect(four.code, four.err).toBe(0);
    // 300 hours from 2022-01-01 00:00: 75 whole 4h bars.
    expect(four.report?.bars).toBe(75);
    expect(four.err).toContain('1h bars resampled to 4h (300 -> 75 bars)');

    const fine = await paper(file, '--timeframe', '1m');
    expect(fine.code).toBe(1);
    expect(fine.err).toContain('the data is 1h bars, --timeframe 1m is finer');
    expect(fine.err).not.toContain('--help');
  });

  it('a bad row is refused naming its line and rule; --allow-bad-data drops it and the log counts it', async () => {
    // Row 10's close made negative (line 11 of the file, after the header).
    const file = slice('binance_BTCUSDT_1h_bad.csv', (rows) => {
      const f = (rows[9] as string).split(',');
      f[4] = `-${f[4]}`;
      rows[9] = f.join(',');
    });
    const refused = await paper(file);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(
      /non-positive-price: 1 row, first at .*binance_BTCUSDT_1h_bad\.csv row 10 \(line 11\), field close/,
    );
    const dropped = await paper(file, '--allow-bad-data');
    expect(dropped.code, dropped.err).toBe(0);
    expect(dropped.report?.bars).toBe(HOURS - 1);
    expect(dropped.err).toMatch(/data: BTC\/USDT: .*1 bad rows dropped \(non-positive-price 1\)/);
  });

  it("a --symbol the file's name contradicts is refused", async () => {
    const file = slice('binance_BTCUSDT_1h_named.csv');
    const r = await keelIn(['paper', '--strategy', 'sma-cross', '--symbol', 'ETH/USDT', '--replay', file]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("the file's name says BTC/USDT, not ETH/USDT");
  });

  it("--warmup-bars: a whole number from 0 to 1000, for the exchange's candles only; no short direction on spot", async () => {
    const file = slice('binance_BTCUSDT_1h_warm.csv');
    const big = await keelIn(['paper', '--strategy', 'sma-cross', '--symbol', 'BTC/USDT', '--warmup-bars', '1500']);
    expect(big.code).toBe(2);
    expect(big.err).toContain('--warmup-bars must be a whole number from 0 to 1000');
    const replay = await paper(file, '--warmup-bars', '100');
    expect(replay.code).toBe(2);
    expect(replay.err).toContain("--warmup-bars is for the exchange's candles");
    // A spot bot cannot sell short, as the backtest refuses it.
    const short = await paper(file, '--param', 'direction=both');
    expect(short.code).toBe(2);
    expect(short.err).toContain('direction=both sells short, which a spot market cannot');
  });
});
