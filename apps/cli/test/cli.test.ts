import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BACKTRADER_DIR, dataFile, HAS_SHARED_DATA, REPO_ROOT } from '../../../test-support/shared.ts';

const BIN = path.join(REPO_ROOT, 'apps/cli/bin/keel.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'keel-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function keel(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd: tmp,
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 256 << 20,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('keel CLI (the real bin, as a user runs it)', () => {
  it('--help lists every command', () => {
    const r = keel('--help');
    expect(r.code).toBe(0);
    for (const c of ['demo', 'backtest', 'strategies', 'data', 'features', 'exchange-sim', 'paper', 'live'])
      expect(r.out).toContain(c);
  });

  it('clear errors: unknown strategy, invalid parameter (field and rule), missing file, unknown option', () => {
    const f = path.join(tmp, 'tiny.csv');
    writeFileSync(
      f,
      'timestamp,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,0.5,1.5,10\n2024-01-01 00:01:00,1.5,2,1,1.2,10\n',
    );
    const u = keel('backtest', '--strategy', 'nope', '--data', f, '--symbol', 'BTC/USDT');
    expect(u.code).toBe(1);
    expect(u.err).toMatch(/Unknown strategy "nope". Available: sma-cross/);
    const p = keel(
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      f,
      '--symbol',
      'BTC/USDT',
      '--param',
      'fast=50',
      '--param',
      'slow=20',
    );
    expect(p.code).toBe(1);
    expect(p.err).toMatch(/fast: fast must be smaller than slow/);
    const m = keel(
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      path.join(tmp, 'missing.csv'),
      '--symbol',
      'BTC/USDT',
    );
    expect(m.code, 'a missing data file is a failure, not a usage error').toBe(1);
    expect(m.err).toMatch(/no such file: .*missing\.csv/);
    expect(m.err, 'no --help hint on a data error').not.toMatch(/--help/);
    const o = keel('backtest', '--bogus');
    expect(o.code).toBe(2);
    expect(o.err).toMatch(/bogus/);
    const s = keel('paper', '--strategy', 'sma-cross', '--symbol', 'BTC/USDT', '--store-sync', 'off');
    expect(s.code).toBe(2);
    expect(s.err).toMatch(/--store-sync must be full or normal/);
    const c = keel('paper', '--strategy', 'sma-cross', '--symbol', 'BTC/USDT', '--clock', 'sundial');
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/--clock must be local or exchange/);
    const pc = keel('paper', '--strategy', 'sma-cross', '--symbol', 'BTC/USDT', '--clock', 'exchange');
    expect(pc.code).toBe(2);
    expect(pc.err).toMatch(/--clock exchange is for live mode/);
  });

  it('a bad row is quarantined and reported, not silently used', () => {
    const f = path.join(tmp, 'bad.csv');
    writeFileSync(
      f,
      'timestamp,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,0.5,1.5,10\n2024-01-01 00:01:00,abc,2,1,1.2,10\n2024-01-01 00:02:00,1.5,2,1,1.2,10\n',
    );
    const r = keel('backtest', '--strategy', 'rsi-reversion', '--data', f, '--symbol', 'BTC/USDT', '--timeframe', '1m');
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/1 of 3 rows .* quarantined .* line 3, bad-number/);
  });

  it.skipIf(!HAS_SHARED_DATA)(
    'backtest --json equals backtrader’s final value; --report writes the HTML report',
    () => {
      const file = dataFile('binance_BTCUSDT_1m_2024-01.csv.gz');
      const r = keel(
        'backtest',
        '--strategy',
        'sma-cross',
        '--data',
        file,
        '--symbol',
        'BTC/USDT',
        '--timeframe',
        '1m',
        '--param',
        'fast=10',
        '--param',
        'slow=30',
        '--cash',
        '10000',
        '--fee',
        '0.001',
        '--json',
      );
      expect(r.code, r.err).toBe(0);
      const json = JSON.parse(r.out);
      const ref = JSON.parse(
        readFileSync(path.join(BACKTRADER_DIR, 'binance_BTCUSDT_1m_2024-01', 'sma_cross.json'), 'utf8'),
      );
      expect(json.finalValue).toBe(ref.final_value);
      expect(json.trades).toHaveLength(ref.n_closed_trades);
      expect(json.trades[0]).toHaveProperty('entryTimeIso');
      const out = path.join(tmp, 'out');
      const t = keel('backtest', '--strategy', 'bollinger-reversion', '--data', file, '--report', out);
      expect(t.code, t.err).toBe(0);
      expect(t.out).toMatch(/Final value/i);
      expect(existsSync(path.join(out, 'report.html'))).toBe(true);
      expect(readFileSync(path.join(out, 'trades.csv'), 'utf8').split('\n').length).toBeGreaterThan(100);
    },
  );

  it('demo runs on a fresh checkout and writes a report', () => {
    const r = keel('demo', '--out', path.join(tmp, 'demo'));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(HAS_SHARED_DATA ? /real Binance BTC\/USDT/ : /SYNTHETIC/);
    expect(existsSync(path.join(tmp, 'demo', 'report.html'))).toBe(true);
  });
});
