import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../test-support/shared.ts';

const CLI = path.join(REPO_ROOT, 'apps/cli');
const BIN = path.join(CLI, 'bin/keel.js');
const tmp = mkdtempSync(path.join(tmpdir(), 'keel-cli-build-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const { staleness, MANIFEST } = (await import(pathToFileURL(path.join(CLI, 'bin/fresh.js')).href)) as {
  staleness: (distDir: string, root: string) => string | undefined;
  MANIFEST: string;
};

/**
 * A checkout in miniature: the real bin and freshness check, a "compiled" main that says so, a
 * "source" main that says so, and the repository's node_modules (for tsx).
 */
function miniCheckout(name: string): { root: string; run: () => { code: number | null; out: string; err: string } } {
  const root = path.join(tmp, name);
  mkdirSync(path.join(root, 'apps/cli/bin'), { recursive: true });
  mkdirSync(path.join(root, 'apps/cli/src'), { recursive: true });
  mkdirSync(path.join(root, 'apps/cli/dist'), { recursive: true });
  for (const f of ['keel.js', 'fresh.js']) copyFileSync(path.join(CLI, 'bin', f), path.join(root, 'apps/cli/bin', f));
  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(root, 'node_modules'));
  writeFileSync(path.join(root, 'package.json'), '{"type":"module"}\n');
  writeFileSync(
    path.join(root, 'apps/cli/src/main.ts'),
    "export async function main(argv: string[]): Promise<number> { process.stdout.write('sources ' + argv.join(' ') + '\\n'); return 3; }\n",
  );
  writeFileSync(
    path.join(root, 'apps/cli/dist/main.js'),
    "export async function main(argv) { process.stdout.write('compiled ' + argv.join(' ') + '\\n'); return 4; }\n",
  );
  const src = 'apps/cli/src/main.ts';
  writeFileSync(
    path.join(root, 'apps/cli/dist', MANIFEST),
    JSON.stringify({ inputs: [[src, statSync(path.join(root, src)).mtimeMs]] }),
  );
  const run = () => {
    const r = spawnSync(process.execPath, [path.join(root, 'apps/cli/bin/keel.js'), 'x', 'y'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    return { code: r.status, out: r.stdout, err: r.stderr };
  };
  return { root, run };
}

describe('the bin runs the compiled CLI only while it is current', () => {
  it('runs the bundle when the manifest matches the sources', () => {
    const m = miniCheckout('fresh');
    const r = m.run();
    expect(r.out).toBe('compiled x y\n');
    expect(r.code, 'the exit code is what main returned').toBe(4);
    expect(r.err).toBe('');
  });

  it('runs the sources, and says so, when a source changed after the build', () => {
    const m = miniCheckout('stale');
    const src = path.join(m.root, 'apps/cli/src/main.ts');
    const later = new Date(statSync(src).mtimeMs + 5_000);
    utimesSync(src, later, later);
    const r = m.run();
    expect(r.out, 'old compiled code must not run').toBe('sources x y\n');
    expect(r.code).toBe(3);
    expect(r.err).toMatch(
      /apps\/cli\/src\/main\.ts changed after the CLI was compiled; running the TypeScript sources/,
    );
    expect(r.err).toMatch(/npm run build/);
  });

  it('runs the sources, and says so, when the build is missing or a source is gone', () => {
    const m = miniCheckout('missing');
    rmSync(path.join(m.root, 'apps/cli/dist'), { recursive: true });
    const r = m.run();
    expect(r.out).toBe('sources x y\n');
    expect(r.err).toMatch(/the compiled CLI \(apps\/cli\/dist\) is missing/);
    const g = miniCheckout('gone');
    writeFileSync(
      path.join(g.root, 'apps/cli/dist', MANIFEST),
      JSON.stringify({ inputs: [['apps/cli/src/deleted.ts', 1]] }),
    );
    expect(g.run().err).toMatch(/apps\/cli\/src\/deleted\.ts is gone since the CLI was compiled/);
  });
});

describe('the real build', () => {
  it('is current (the test setup builds it) and lists every workspace source it was built from', () => {
    expect(staleness(path.join(CLI, 'dist'), REPO_ROOT)).toBeUndefined();
    const manifest = JSON.parse(readFileSync(path.join(CLI, 'dist', MANIFEST), 'utf8')) as {
      inputs: [string, number][];
    };
    const inputs = manifest.inputs.map(([p]) => p);
    for (const p of [
      'apps/cli/src/main.ts',
      'apps/cli/src/backtest.ts',
      'packages/core/src/engine/backtest.ts',
      'packages/report/src/json-stream.ts',
      'packages/data/package.json',
      'apps/cli/build.mjs',
    ])
      expect(inputs, p).toContain(p);
    expect(
      inputs.filter((p) => p.includes('node_modules')),
      'dependencies are not bundled, but for kysely and zod (build.mjs: BUNDLED), which stand in the manifest by their package.json',
    ).toEqual(['node_modules/kysely/package.json', 'node_modules/zod/package.json']);
  });

  it('loads no dependency for --help, and for backtest only the SQLite driver, to keep the run (no ccxt, DuckDB, PostgreSQL, ws; kysely and zod are in the bundle)', () => {
    const loaded = (...args: string[]) => {
      const file = path.join(tmp, `imports-${args[0]}.txt`);
      writeFileSync(file, '');
      const probe = pathToFileURL(path.join(CLI, 'test/fixtures/record-imports.mjs')).href;
      const r = spawnSync(process.execPath, [BIN, ...args], {
        encoding: 'utf8',
        cwd: tmp,
        timeout: 60_000,
        env: { ...process.env, NODE_OPTIONS: `--import=${probe}`, KEEL_TEST_IMPORTS: file },
      });
      expect(r.status, r.stderr).toBe(0);
      const pkgs = readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((u) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u)?.[1]);
      return [...new Set(pkgs)].sort();
    };
    expect(loaded('--help')).toEqual([]);
    const csv = path.join(tmp, 'bars.csv');
    let text = 'time,open,high,low,close,volume\n';
    for (let i = 0; i < 200; i++)
      text += `${1_704_067_200_000 + i * 60_000},${100 + (i % 7)},${108},${99},${100 + (i % 5)},1\n`;
    writeFileSync(csv, text);
    const bt = loaded('backtest', '--strategy', 'sma-cross', '--data', csv, '--symbol', 'BTC/USDT', '--json');
    expect(bt).toEqual(['better-sqlite3']);
    const unsaved = loaded('backtest', '--strategy', 'sma-cross', '--data', csv, '--symbol', 'BTC/USDT', '--no-save');
    expect(unsaved).toEqual([]);
  });

  it('keeps each module at its source location (assets beside a source file resolve from the bundle)', () => {
    const out = path.join(tmp, 'demo');
    const r = spawnSync(process.execPath, [BIN, 'demo', '--out', out], {
      encoding: 'utf8',
      timeout: 120_000,
      cwd: tmp,
    });
    expect(r.status, r.stderr).toBe(0);
    const html = readFileSync(path.join(out, 'report.html'), 'utf8');
    const css = readFileSync(path.join(REPO_ROOT, 'packages/report/src/assets/report.css'), 'utf8');
    expect(html, 'the report inlines its stylesheet, read next to html.ts').toContain(css.slice(0, 200));
    expect(existsSync(path.join(CLI, 'dist/assets')), 'no asset is copied into dist').toBe(false);
  });
});
