import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { syntheticBars } from '@keel/core';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKeel } from './run-keel.ts';

const tmp = mkdtempSync(path.join(tmpdir(), 'keel-backtests-delete-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const DB = path.join(tmp, 'keel.db');
const STORE = ['--store', `sqlite:${DB}`];
const keel = (...args: string[]) => runKeel(tmp, [...args, ...STORE]);

/** Bars as a CSV file: `n` synthetic 1m bars (seed picks which). */
function csv(name: string, n: number, seed: number): string {
  const b = syntheticBars(n, { seed });
  const rows = ['time,open,high,low,close,volume'];
  for (let i = 0; i < n; i++)
    rows.push(`${b.time[i]},${b.open[i]},${b.high[i]},${b.low[i]},${b.close[i]},${b.volume[i]}`);
  const file = path.join(tmp, name);
  writeFileSync(file, `${rows.join('\n')}\n`);
  return file;
}

/** The store's rows, read straight from the file: how many bar sets, and the runs' ids. */
function rows(): { barSets: number; ids: number[] } {
  const db = new Database(DB, { readonly: true });
  try {
    const barSets = (db.prepare('select count(*) as n from backtest_bars').get() as { n: number }).n;
    const ids = (db.prepare('select id from backtests order by id').all() as { id: number }[]).map((r) => r.id);
    return { barSets, ids };
  } finally {
    db.close();
  }
}

const files = (dir: string) =>
  Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(path.join(dir, f)).toString('base64')]));

describe('keel backtests delete and prune (the real bin)', () => {
  let A: string;
  let B: string;
  const backtest = (data: string, fast: number, ...more: string[]) => {
    const r = keel(
      'backtest',
      '--strategy',
      'sma-cross',
      '--param',
      `fast=${fast}`,
      '--data',
      data,
      '--symbol',
      'BTC/USDT',
      ...more,
    );
    expect(r.code, r.err).toBe(0);
    return Number(/saved as backtest (\d+)/.exec(r.err)?.[1]);
  };
  beforeAll(() => {
    A = csv('a_1m.csv', 20_000, 1);
    B = csv('b_1m.csv', 3_000, 2);
  });

  it('--help lists delete and prune with their flags', () => {
    const h = keel('backtests', '--help');
    for (const s of ['delete <id>...', 'prune', '--keep <n>', '--older-than <duration>', '--dry-run', '--vacuum'])
      expect(h.out).toContain(s);
  });

  it('two runs on the same bars store them once; deleting one keeps them and its report reads back the same', () => {
    expect(backtest(A, 10, '--report', path.join(tmp, 'r1'))).toBe(1);
    expect(backtest(A, 12, '--report', path.join(tmp, 'r2'))).toBe(2);
    expect(rows()).toEqual({ barSets: 1, ids: [1, 2] });
    const show = (dir: string) => {
      const s = keel('backtests', 'show', '2', '--report', path.join(tmp, dir));
      expect(s.code, s.err).toBe(0);
      return files(path.join(tmp, dir));
    };
    const shown = show('shown');
    const d = keel('backtests', 'delete', '1');
    expect(d.code, d.err).toBe(0);
    expect(d.out).toMatch(/^deleted 1 backtest run \(1\): about [\d.]+ MB$/m);
    expect(d.out).toMatch(/^store .*keel\.db: [\d.]+ MB$/m);
    expect(rows()).toEqual({ barSets: 1, ids: [2] });
    const again = show('again');
    const run = files(path.join(tmp, 'r2'));
    for (const f of ['result.json', 'trades.csv', 'fills.csv', 'equity.csv', 'report.html']) {
      expect(again[f] === shown[f], `${f} as shown before the delete`).toBe(true);
      // (the run's own page is drawn from the result, show's from its JSON: they differ in bytes)
      if (f !== 'report.html') expect(again[f] === run[f], `${f} as the run wrote it`).toBe(true);
    }
  });

  it('the newest run deleted, the next run does not get its id', () => {
    expect(backtest(B, 10)).toBe(3);
    expect(keel('backtests', 'delete', '3').code).toBe(0);
    expect(backtest(B, 10), 'not 3 again').toBe(4);
    expect(rows()).toEqual({ barSets: 2, ids: [2, 4] });
  });

  it('a delete naming a missing id is an error naming it, and deletes nothing', () => {
    const d = keel('backtests', 'delete', '2', '3', '99');
    expect(d.code).toBe(1);
    expect(d.err).toMatch(/no backtests 3, 99 in the store/);
    expect(rows().ids).toEqual([2, 4]);
    expect(keel('backtests', 'delete').code, 'no id: a usage error').toBe(2);
    expect(keel('backtests', 'prune').code, 'prune without --keep or --older-than').toBe(2);
    expect(keel('backtests', 'prune', '--older-than', '30x').err).toMatch(/not a duration/);
  });

  it('prune: --dry-run says what would go and deletes nothing; --keep, --older-than; bars go with their last run', () => {
    expect(backtest(A, 14)).toBe(5);
    expect(backtest(B, 14)).toBe(6);
    // Runs 2 and 4 were saved 40 days ago.
    const db = new Database(DB);
    db.prepare('update backtests set created_at = ? where id in (2, 4)').run(Date.now() - 40 * 86_400_000);
    db.close();
    const dry = keel('backtests', 'prune', '--keep', '1', '--dry-run');
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toMatch(/^would delete 3 backtest runs \(2, 4-5\), with 1 set of bars no other run uses: about/m);
    expect(rows().ids).toEqual([2, 4, 5, 6]);
    const old = keel('backtests', 'prune', '--older-than', '30d', '--json');
    expect(old.code, old.err).toBe(0);
    expect(JSON.parse(old.out)).toMatchObject({
      ids: [2, 4],
      barSets: 0,
      dryRun: false,
      space: { kind: 'sqlite-file' },
    });
    expect(rows()).toEqual({ barSets: 2, ids: [5, 6] });
    const keep = keel('backtests', 'prune', '--keep', '1');
    expect(keep.out).toMatch(/^deleted 1 backtest run \(5\), with 1 set of bars no other run uses/m);
    expect(rows()).toEqual({ barSets: 1, ids: [6] });
    const none = keel('backtests', 'prune', '--keep', '1');
    expect(none.out).toMatch(/^deleted nothing: no run matches$/m);
  });

  it('the room is given back: the file shrinks when runs are deleted', () => {
    for (const fast of [3, 4, 5]) backtest(csv(`c${fast}_1m.csv`, 20_000, 100 + fast), fast);
    const full = statSync(DB).size;
    const p = keel('backtests', 'prune', '--keep', '1');
    expect(p.code, p.err).toBe(0);
    const size = Number(/store .*keel\.db: ([\d.]+) MB/.exec(p.out)?.[1]) * 2 ** 20;
    expect(size, 'the size printed is the file after').toBeLessThan(full - 2 ** 20);
    expect(statSync(DB).size).toBeLessThan(full - 2 ** 20);
  });
});
