// docs/strategies.md runs as written: its files (code blocks named after the language, e.g.
// ```ts breakout.ts) are written to an empty folder, backtested by the real bin on real data, and
// the tutorial's own test is run with Node's test runner. Its listings are the CLI's output.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { INDICATORS } from '@keel/core';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip, REPO_ROOT } from '../../../test-support/shared.ts';
import { BIN, runKeel } from './run-keel.ts';

const DOC = readFileSync(path.join(REPO_ROOT, 'docs/strategies.md'), 'utf8');
const dir = mkdtempSync(path.join(tmpdir(), 'keel-strategies-doc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The doc's named files: ```<lang> <file> ... ``` */
const files = new Map([...DOC.matchAll(/^```\w+ ([\w.-]+)\n([\s\S]*?)^```$/gm)].map((m) => [m[1]!, m[2]!]));
for (const [name, text] of files) writeFileSync(path.join(dir, name), text);

const DATA = dataFile('binance_BTCUSDT_1h_2022-01-01_2025-12-02.csv.gz');
if (!HAS_SHARED_DATA) noteSkip('strategies-doc');

describe('docs/strategies.md', () => {
  it('names the tutorial files', () => {
    expect([...files.keys()].sort()).toEqual(['breakout.test.mjs', 'breakout.ts', 'first.ts']);
  });

  it.skipIf(!HAS_SHARED_DATA)('each strategy file backtests as written on real data, without errors', () => {
    for (const f of ['first.ts', 'breakout.ts']) {
      const r = runKeel(dir, ['backtest', '--strategy', `./${f}`, '--data', DATA, '--json']);
      expect(r.code, `${f}: ${r.err}`).toBe(0);
      const j = JSON.parse(r.out) as { strategy: string; fills: unknown[]; errors: unknown[] };
      expect(j.strategy).toBe('breakout');
      expect(j.fills.length, f).toBeGreaterThan(0);
      expect(j.errors, f).toEqual([]);
    }
  });

  it("the tutorial's own test passes (node --test, hand-computed entry and take-profit)", () => {
    const r = spawnSync(process.execPath, ['--test', 'breakout.test.mjs'], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, KEEL_BIN: BIN },
      timeout: 120_000,
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^# pass 1$/m);
  });

  it('the parameter listing shown is what keel strategies prints for the file', () => {
    const shown = /^```text\n(breakout {2}\(\.\/breakout\.ts\)\n[\s\S]*?)^```$/m.exec(DOC)?.[1];
    expect(shown).toBeDefined();
    const r = runKeel(dir, ['strategies', './breakout.ts']);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toBe(shown);
  });

  it('the parameter error shown is the one a bad --param gets', () => {
    const r = runKeel(dir, ['backtest', '--strategy', './breakout.ts', '--param', 'target=1', '--data', DATA]);
    expect(r.code).toBe(1);
    const line = r.err.trim().replace(/^keel backtest: /, '');
    expect(DOC).toContain(`\`${line}\``);
  });

  it('lists every indicator of the registry with its defaults and outputs', () => {
    for (const [name, f] of Object.entries(INDICATORS)) {
      const row = DOC.split('\n').find((l) => l.startsWith(`| \`new ${name}(`));
      expect(row, name).toBeDefined();
      for (const o of f.outputs) expect(row, `${name}.${o}`).toContain(`\`${o}\``);
      for (const [k, v] of Object.entries(f.defaults))
        expect(row, `${name} ${k}`).toContain(`${k}=${typeof v === 'string' ? `'${v}'` : v}`);
    }
  });
});
