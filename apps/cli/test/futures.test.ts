import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, REPO_ROOT } from '../../../test-support/shared.ts';
import { runKeel } from './run-keel.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'keel-cli-futures-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const keel = (...args: string[]) => runKeel(tmp, args);
const BARS = dataFile('binance-futures-um_LINKUSDT_1m_2023-02.csv.gz');
const FUNDING = dataFile('binance-futures-um_LINKUSDT_fundingRate_2023-02.csv.gz');
const UNNAMED = path.join(REPO_ROOT, 'fixtures', 'futures', 'LINKUSDT-1m-trades.csv');

describe('keel backtest --market futures (the real bin)', () => {
  it('--help documents the futures flags', () => {
    const r = keel('backtest', '--help');
    for (const f of [
      '--market spot|futures',
      '--leverage <n>',
      '--margin <mode>',
      '--funding <file>',
      '--funding-rate <r>',
    ])
      expect(r.out).toContain(f);
  });

  it('a futures flag without --market futures, or a bad value, is a usage error', () => {
    // A name that says no market (Binance's archive names are the same for spot and futures) is spot.
    const a = keel('backtest', '--strategy', 'sma-cross', '--data', UNNAMED, '--leverage', '3');
    expect(a.code).toBe(2);
    expect(a.err).toContain('--leverage needs --market futures');
    const b = keel('backtest', '--strategy', 'sma-cross', '--data', BARS, '--market', 'futures', '--margin', 'x');
    expect(b.code).toBe(2);
    expect(b.err).toContain('--margin must be isolated or cross, got "x"');
    const c = keel('backtest', '--strategy', 'sma-cross', '--data', BARS, '--market', 'futures', '--leverage', '200');
    expect(c.code).toBe(1);
    expect(c.err).toContain('leverage 200 must be between 1 and 75');
  });

  it.skipIf(!HAS_SHARED_DATA)('without funding data the summary warns: never a silent zero', () => {
    const r = keel('backtest', '--strategy', 'sma-cross', '--data', BARS, '--market', 'futures', '--leverage', '3');
    expect(r.code).toBe(0);
    expect(r.out).toContain('futures: LINK/USDT:USDT 3.00x cross, funding: none given');
    expect(r.out).toContain('warning: LINK/USDT:USDT: no funding data: funding was not charged');
  });

  it.skipIf(!HAS_SHARED_DATA)(
    'with the real funding file: every funding time of the month charged, --json carries it apart',
    () => {
      const r = keel(
        'backtest',
        '--strategy',
        'sma-cross',
        '--param',
        'direction=short',
        '--data',
        BARS,
        '--market',
        'futures',
        '--leverage',
        '3',
        '--margin',
        'isolated',
        '--funding',
        FUNDING,
        '--json',
        '--report',
        path.join(tmp, 'rep'),
      );
      expect(r.code, r.err).toBe(0);
      const j = JSON.parse(r.out);
      expect(j.feeds[0].symbol).toBe('LINK/USDT:USDT');
      expect(j.futures.markets).toEqual([
        {
          symbol: 'LINK/USDT:USDT',
          leverage: 3,
          marginMode: 'isolated',
          funding: 'binance-futures-um_LINKUSDT_fundingRate_2023-02.csv.gz',
          isolatedWallet: j.futures.markets[0].isolatedWallet,
        },
      ]);
      // The series covers the month: no warning.
      expect(j.futures.warnings).toEqual([]);
      expect(j.futures.fundingEvents).toBe(j.futures.fundingPayments.length);
      // Futures fees by default: 0.05 % taker.
      const fill = j.fills[0];
      expect(fill.fee).toBeCloseTo(fill.price * fill.amount * 0.0005, 9);
      // result.json is the same bytes as --json.
      expect(readFileSync(path.join(tmp, 'rep', 'result.json'), 'utf8')).toBe(r.out);
    },
  );
});
