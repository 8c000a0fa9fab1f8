import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { runKeel } from './run-keel.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'keel-cli-risk-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const keel = (...args: string[]) => runKeel(tmp, args);

describe('keel backtest risk flags (the real bin)', () => {
  it('--help documents the risk flags', () => {
    const r = keel('backtest', '--help');
    expect(r.code).toBe(0);
    for (const f of [
      '--risk <rule>=<value>',
      '--sizing',
      '--stop-loss',
      '--take-profit',
      '--trailing',
      '--roi',
      '--time-exit',
    ])
      expect(r.out).toContain(f);
  });

  it('keel paper and keel live take the same flags: documented, and read by the same parser (the same usage errors)', () => {
    for (const mode of ['paper', 'live']) {
      const h = keel(mode, '--help');
      expect(h.code).toBe(0);
      for (const f of ['--risk <rule>=<value>', '--sizing', '--stop-loss', '--take-profit', '--trailing', '--roi'])
        expect(h.out, `${mode} --help`).toContain(f);
      const bad = keel(
        mode,
        '--strategy',
        'sma-cross',
        '--symbol',
        'BTC/USDT',
        '--confirm-live',
        '--risk',
        'max-drawdown=2',
      );
      expect(bad.code, bad.err).toBe(2);
      expect(bad.err).toMatch(
        new RegExp(`keel ${mode}: max-drawdown=2: the drawdown must be in \\(0, 1\\), got 2 \\(expected <fraction>`),
      );
    }
  });

  it('a bad setting is a usage error naming the key, the value and the form', () => {
    const f = dataFile('binance_BTCUSDT_1m_2024-01.csv.gz');
    const a = keel('backtest', '--strategy', 'sma-cross', '--data', f, '--risk', 'max-drawdown=2');
    expect(a.code).toBe(2);
    expect(a.err).toMatch(
      /keel backtest: max-drawdown=2: the drawdown must be in \(0, 1\), got 2 \(expected <fraction>/,
    );
    const b = keel('backtest', '--strategy', 'sma-cross', '--data', f, '--stop-loss', '150');
    expect(b.code).toBe(2);
    expect(b.err).toMatch(/stop-loss=150: the distance must be in \(0, 1\)/);
    const c = keel('backtest', '--strategy', 'sma-cross', '--data', f, '--risk', 'maxdrawdown=0.2');
    expect(c.code).toBe(2);
    expect(c.err).toMatch(/unknown risk rule "maxdrawdown" \(known: max-position/);
    // --max-open-trades is the rule max-open-trades: both given name both flags.
    for (const [mode, input] of [
      ['backtest', ['--data', f]],
      ['paper', ['--replay', f, '--symbol', 'BTC/USDT']],
    ] as const) {
      const d = keel(
        mode,
        '--strategy',
        'sma-cross',
        ...input,
        '--max-open-trades',
        '1',
        '--risk',
        'max-open-trades=2',
      );
      expect(d.code, d.err).toBe(2);
      expect(d.err).toContain(
        `keel ${mode}: --max-open-trades 1 and --risk max-open-trades=2 are the same rule: give it once`,
      );
    }
  });

  it.skipIf(!HAS_SHARED_DATA)(
    '--risk max-drawdown=0.2: the summary shows the halt and the denials, --json the events',
    () => {
      const f = dataFile('binance_BTCUSDT_1m_2024-01.csv.gz');
      const t = keel('backtest', '--strategy', 'sma-cross', '--data', f, '--risk', 'max-drawdown=0.2');
      expect(t.code, t.err).toBe(0);
      expect(t.out).toContain('risk:   --risk max-drawdown=0.2:flatten:resume');
      expect(t.out).toMatch(
        /halts: {2}1 \(max-drawdown 1\)\n {2}2024-01-05 01:17 max-drawdown \(flatten, until resumed\): max-drawdown: equity 8021\.7694 is 20\.019469 % below the peak 10029\.653, limit 20 %/,
      );
      expect(t.out).toMatch(/denied: \d+ orders \(max-drawdown \d+\)/);
      expect(t.out).toMatch(/Final value +8,021\.77 USDT/);
      const j = keel('backtest', '--strategy', 'sma-cross', '--data', f, '--risk', 'max-drawdown=0.2', '--json');
      expect(j.code, j.err).toBe(0);
      const json = JSON.parse(j.out);
      expect(json.risk).toEqual({ risk: ['max-drawdown=0.2:flatten:resume'], sizing: [], exits: {} });
      expect(json.riskEvents[0]).toMatchObject({
        type: 'halt',
        timeIso: '2024-01-05T01:17:00Z',
        rule: 'max-drawdown',
        action: 'flatten',
        until: null,
        limit: 0.2,
      });
      expect(json.riskCounts.halts).toEqual({ 'max-drawdown': 1 });
      expect(json.riskCounts.denied['max-drawdown']).toBe(json.riskEvents.length - 1);
    },
  );
});
