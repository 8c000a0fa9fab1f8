import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { syntheticBars } from '@keel/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { keelIn } from './in-process.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'keel-backtests-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const STORE = ['--store', `sqlite:${path.join(tmp, 'keel.db')}`];

const BTC = dataFile('binance_BTCUSDT_1h_2022-01-01_2025-12-02.csv.gz');
const ETH = dataFile('binance_ETHUSDT_1h_2022-01-01_2025-12-02.csv.gz');
const SPAN = ['--from', '2024-01-01', '--to', '2024-07-01'];

describe.skipIf(!HAS_SHARED_DATA)('keel backtests: every run is kept in the store', () => {
  const runs: { out: string; err: string }[] = [];
  beforeAll(async () => {
    for (const args of [
      ['--strategy', 'sma-cross', '--data', BTC, '--data', ETH, '--json'],
      ['--strategy', 'rsi-reversion', '--data', BTC, '--report', path.join(tmp, 'run2')],
      ['--strategy', 'rsi-reversion', '--data', BTC, '--fee', '0.002', '--stop-loss', '2%'],
    ]) {
      const r = await keelIn(['backtest', ...args, ...SPAN, ...STORE]);
      expect(r.code, r.err).toBe(0);
      runs.push(r);
    }
  }, 120_000);

  it('each run says its id; list shows them newest first', async () => {
    expect(runs[0]?.err).toMatch(/saved as backtest 1 \(keel backtests show 1\)/);
    expect(runs[1]?.err).toMatch(/saved as backtest 2 /);
    const l = await keelIn(['backtests', 'list', ...STORE]);
    expect(l.code, l.err).toBe(0);
    const lines = l.out.trim().split('\n');
    expect(lines[2]).toMatch(/^ 2 .* rsi-reversion +BTC\/USDT +1h +2024-01-01T00:00 \.\. 2024-06-30T23:00/);
    expect(lines[3]).toMatch(/^ 1 .* sma-cross +BTC\/USDT,ETH\/USDT +1h/);
    const j = JSON.parse((await keelIn(['backtests', 'list', '--json', '--limit', '1', ...STORE])).out);
    expect(j.map((r: { id: number }) => r.id)).toEqual([3]);
  });

  it('show --json is the run’s --json output, byte for byte; show prints the summary as it was printed', async () => {
    const s = await keelIn(['backtests', 'show', '1', '--json', ...STORE]);
    expect(s.code, s.err).toBe(0);
    expect(s.out === runs[0]?.out, 'same bytes as keel backtest --json').toBe(true);
    const t = await keelIn(['backtests', 'show', '2', ...STORE]);
    const printed = runs[1]?.out ?? '';
    // The summary as printed, less the timing line.
    expect(t.out).toContain(printed.slice(0, printed.lastIndexOf('\n', printed.length - 2)));
    expect(t.out).toMatch(/settings: cash 10000, fee 0.001, from 2024-01-01T00:00:00Z, to 2024-07-01T00:00:00Z/);
  });

  it('show --report writes the report again: result.json and the CSVs equal those the run wrote', async () => {
    const dir = path.join(tmp, 'again');
    const s = await keelIn(['backtests', 'show', '2', '--report', dir, ...STORE]);
    expect(s.code, s.err).toBe(0);
    for (const f of ['result.json', 'trades.csv', 'fills.csv', 'equity.csv'])
      expect(readFileSync(path.join(dir, f)).equals(readFileSync(path.join(tmp, 'run2', f))), f).toBe(true);
    expect(existsSync(path.join(dir, 'report.html'))).toBe(true);
    // A path named like the page is refused, as by keel backtest: it would become a folder so named.
    const html = path.join(tmp, 'page', 'report.html');
    const p = await keelIn(['backtests', 'show', '2', '--report', html, ...STORE]);
    expect(p.code).toBe(2);
    expect(p.err).toContain(`--report takes a folder`);
    expect(existsSync(html)).toBe(false);
  });

  it('compare puts the metrics side by side, each as the run reported it', async () => {
    const c = await keelIn(['backtests', 'compare', '1', '2', '--json', ...STORE]);
    expect(c.code, c.err).toBe(0);
    const j = JSON.parse(c.out);
    expect(j.ids).toEqual([1, 2]);
    const total = j.rows.find((r: { metric: string }) => r.metric === 'totalReturn');
    expect(total.values[0]).toBe(JSON.parse(runs[0]?.out ?? '').metrics.totalReturn);
    const text = await keelIn(['backtests', 'compare', '1', '2', ...STORE]);
    expect(text.out).toMatch(/^Total return +-?[\d.]+ % +-?[\d.]+ %$/m);
    // Two runs that differ only in their settings are told apart by them.
    const two = await keelIn(['backtests', 'compare', '2', '3', ...STORE]);
    expect(two.out).toMatch(/^fee +0\.001 +0\.002$/m);
    expect(two.out).toMatch(/^risk +- +stop-loss=0\.02 atr-period=14$/m);
    const twoJson = JSON.parse((await keelIn(['backtests', 'compare', '2', '3', '--json', ...STORE])).out);
    expect(twoJson.settings).toContainEqual({ name: 'fee', values: ['0.001', '0.002'] });
  });

  it('an unknown id is an error naming it; --no-save keeps nothing', async () => {
    const u = await keelIn(['backtests', 'show', '9', ...STORE]);
    expect(u.code).toBe(1);
    expect(u.err).toMatch(/no backtest 9 in the store/);
    const bad = await keelIn(['backtests', 'show', 'x', ...STORE]);
    expect(bad.code).toBe(2);
    const n = await keelIn(['backtest', '--strategy', 'sma-cross', '--data', BTC, ...SPAN, ...STORE, '--no-save']);
    expect(n.err).not.toMatch(/saved as/);
    expect(JSON.parse((await keelIn(['backtests', 'list', '--json', ...STORE])).out)).toHaveLength(3);
  });

  it('a run over 200,000 bars is kept only with --save, and the summary line says why not', async () => {
    const n = 200_001;
    const b = syntheticBars(n, { seed: 7 });
    const rows = ['time,open,high,low,close,volume'];
    for (let i = 0; i < n; i++)
      rows.push(`${b.time[i]},${b.open[i]},${b.high[i]},${b.low[i]},${b.close[i]},${b.volume[i]}`);
    const big = path.join(tmp, 'big_1m.csv');
    writeFileSync(big, `${rows.join('\n')}\n`);
    const run = ['backtest', '--strategy', 'sma-cross', '--data', big, '--symbol', 'BTC/USDT', ...STORE];
    const skipped = await keelIn(run);
    expect(skipped.code, skipped.err).toBe(0);
    expect(skipped.err).toContain('not kept in the store: 200,001 bars is over 200,000');
    expect(skipped.err).not.toMatch(/saved as/);
    const kept = await keelIn([...run, '--save']);
    expect(kept.err).toMatch(/saved as backtest 4 /);
    const both = await keelIn([...run, '--save', '--no-save']);
    expect(both.code).toBe(2);
  }, 120_000);
});
