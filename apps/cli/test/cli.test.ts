import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runBacktest, syntheticBars } from '@keel/core';
import { readBarsFile } from '@keel/data/csv';
import { resultToJson } from '@keel/report';
import { getStrategy } from '@keel/strategies';
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

/** The environment of a shell that did not start keel through npm (npm sets npm_command for its children). */
function shellEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const e = { ...process.env, ...extra };
  if (!('npm_command' in extra)) delete e.npm_command;
  return e;
}

/** A labelled synthetic 1m candle file of n bars. */
function candleFile(name: string, n: number): string {
  const s = syntheticBars(n);
  let text = 'time,open,high,low,close,volume\n';
  for (let i = 0; i < n; i++)
    text += `${s.time[i]},${s.open[i]},${s.high[i]},${s.low[i]},${s.close[i]},${s.volume[i]}\n`;
  const f = path.join(tmp, name);
  writeFileSync(f, text);
  return f;
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
    expect(u.err).not.toMatch(/Did you mean/);
    const typo = keel('backtest', '--strategy', 'sma-crss', '--data', f, '--symbol', 'BTC/USDT');
    expect(typo.code).toBe(1);
    expect(typo.err).toMatch(/Unknown strategy "sma-crss". Available: .*\. Did you mean "sma-cross"\?/);
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
    expect(r.code, 'the data-quality gate refuses it').toBe(1);
    expect(r.err).toMatch(/bad-number: 1 row, first at .*bad\.csv row 2 \(line 3\), field open/);
    const d = keel(
      'backtest',
      '--strategy',
      'rsi-reversion',
      '--data',
      f,
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '1m',
      '--allow-bad-data',
    );
    expect(d.code, d.err).toBe(0);
    expect(d.out).toMatch(/1 bad rows dropped \(bad-number 1\)/);
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
      // The streamed output is the in-memory JSON of the same run, byte for byte.
      const same = runBacktest({
        strategy: getStrategy('sma-cross'),
        params: { fast: 10, slow: 30 },
        data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: readBarsFile(file).series }],
        cash: 10_000,
        fee: 0.001,
      });
      const expected = `${JSON.stringify(resultToJson(same), null, 1)}\n`;
      expect(r.out === expected, 'keel backtest --json equals JSON.stringify(resultToJson(result), null, 1)').toBe(
        true,
      );
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

  it('--help documents the exit codes and the commands', () => {
    const r = keel('--help');
    expect(r.out).toMatch(/Exit codes:\n {2}0 {2}success\n {2}1 {2}failure[^\n]*\n {2}2 {2}usage/);
    expect(keel('help', 'backtest').out, 'keel help <command> is <command> --help').toMatch(
      /Usage: .*backtest --strategy/,
    );
  });

  it('a mistyped command suggests the right one (exit 2); one that resembles nothing gets the pointer to --help', () => {
    for (const [typed, meant] of [
      ['bakctest', 'backtest'],
      ['stratgies', 'strategies'],
      ['back', 'backtest'],
      ['exchange', 'exchange-sim'],
      ['lvie', 'live'],
    ]) {
      const r = keel(typed as string);
      expect(r.code, typed).toBe(2);
      expect(r.err, typed).toMatch(new RegExp(`unknown command "${typed}". Did you mean '.*keel(\\.js)? ${meant}'\\?`));
    }
    const none = keel('frobnicate');
    expect(none.code).toBe(2);
    expect(none.err).toMatch(/unknown command "frobnicate"\nRun '.*--help' for usage/);
    expect(none.err).not.toMatch(/Did you mean/);
  });

  it('hints name the command as the user typed it: npx keel under npm, keel through the installed link, else the file', () => {
    const run = (cmd: string, argv: string[], env: NodeJS.ProcessEnv) =>
      spawnSync(cmd, argv, { cwd: tmp, encoding: 'utf8', env, timeout: 60_000 }).stderr;
    const args = ['backtest', '--bogus'];
    expect(run(process.execPath, [BIN, ...args], shellEnv({ npm_command: 'exec' }))).toContain(
      "Run 'npx keel backtest --help' for usage.",
    );
    // The bot, bots, keys and backtests commands too (their own parsers wrote `keel`).
    for (const [cmd, hint] of [
      [['paper', '--catch-up', 'soon'], 'paper'],
      [['bots', 'status'], 'bots'],
      [['backtests', 'show'], 'backtests'],
    ] as const)
      expect(run(process.execPath, [BIN, ...cmd], shellEnv({ npm_command: 'exec' })), hint).toContain(
        `Run 'npx keel ${hint} --help' for usage.`,
      );
    const asFile = spawnSync(process.execPath, ['apps/cli/bin/keel.js', ...args], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: shellEnv(),
      timeout: 60_000,
    });
    expect(asFile.stderr).toContain("Run 'node apps/cli/bin/keel.js backtest --help' for usage.");
    const named = path.join(tmp, 'keel');
    if (!existsSync(named)) symlinkSync(BIN, named);
    expect(run(named, args, shellEnv())).toContain("Run 'keel backtest --help' for usage.");
    const demo = spawnSync(process.execPath, [BIN, 'demo', '--out', path.join(tmp, 'demo-hint')], {
      cwd: tmp,
      encoding: 'utf8',
      env: shellEnv({ npm_command: 'start' }),
      timeout: 120_000,
    });
    expect(demo.stdout).toContain('Next: npx keel backtest --help, npx keel strategies');
  });

  it('a data error is a failure (exit 1) that names the file and row, with no --help hint', () => {
    const unsorted = path.join(tmp, 'unsorted.csv');
    writeFileSync(
      unsorted,
      // Not newest first either (that is read in time order): out of order.
      'timestamp,open,high,low,close,volume\n2024-01-01 00:01:00,1,2,0.5,1.5,10\n2024-01-01 00:00:00,1.5,2,1,1.2,10\n2024-01-01 00:02:00,1.5,2,1,1.2,10\n',
    );
    const u = keel(
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      unsorted,
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '1m',
    );
    expect(u.code).toBe(1);
    expect(u.err).toMatch(/non-monotonic: 1 row, first at .*unsorted\.csv row 2 \(line 3\), field time/);
    expect(u.err).not.toMatch(/--help/);
    const empty = path.join(tmp, 'empty-rows.csv');
    writeFileSync(empty, 'timestamp,open,high,low,close,volume\n2024-01-01 00:00:00,x,2,0.5,1.5,10\n');
    const e = keel('backtest', '--strategy', 'sma-cross', '--data', empty, '--symbol', 'BTC/USDT', '--timeframe', '1m');
    expect(e.code).toBe(1);
    expect(e.err).toMatch(/empty-rows\.csv: .*no row is left/);
    expect(e.err).not.toMatch(/--help/);
  });

  it('keel backtest --json | head ends quietly: exit 0, nothing on stderr', () => {
    // A name that gives the timeframe: no note on stderr.
    const f = candleFile('pipe_1m.csv', 30_000);
    const cmd = `"${process.execPath}" "${BIN}" backtest --strategy sma-cross --data "${f}" --symbol BTC/USDT --json 2>"${tmp}/pipe.err" | head -c 100 >/dev/null; echo "\${PIPESTATUS[0]}"`;
    const r = spawnSync('bash', ['-c', cmd], { encoding: 'utf8', env: shellEnv(), timeout: 120_000 });
    expect(readFileSync(path.join(tmp, 'pipe.err'), 'utf8'), 'no EPIPE stack trace').toBe('');
    expect(r.stdout.trim(), "keel's exit code").toBe('0');
    const help = spawnSync('bash', ['-c', `"${process.execPath}" "${BIN}" --help 2>&1 | head -1`], {
      encoding: 'utf8',
    });
    expect(help.stdout).toMatch(/^keel — /);
  });

  it('demo runs on a fresh checkout and writes a report', () => {
    const r = keel('demo', '--out', path.join(tmp, 'demo'));
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(HAS_SHARED_DATA ? /real Binance BTC\/USDT/ : /SYNTHETIC/);
    expect(existsSync(path.join(tmp, 'demo', 'report.html'))).toBe(true);
  });
});
