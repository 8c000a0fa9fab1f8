// `--strategy <file>`: a user's strategy file in a folder with no node_modules, run by the real
// bin. Oracle: the built-in sma-cross run on the same bars (the file is the same strategy), and
// for paper, the backtest of the same bars.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip, REPO_ROOT } from '../../../test-support/shared.ts';
import { runKeel } from './run-keel.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-strategy-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const keel = (...args: string[]) => runKeel(dir, args);
const write = (name: string, text: string) => writeFileSync(path.join(dir, name), text);

const DATA = dataFile('binance_BTCUSDT_1m_2024-01.csv.gz');
if (!HAS_SHARED_DATA) noteSkip('strategy-file');

/** sma-cross as a user would write it (same params, same logic), under another name. */
const SMA_CROSS_TS = `import { CrossOver, defineStrategy, SMA } from '@keel/core';
import { z } from 'zod';

export default defineStrategy({
  name: 'my-cross',
  params: z
    .object({
      fast: z.number().int().min(1).default(10),
      slow: z.number().int().min(2).default(30),
      allocation: z.number().gt(0).max(1).default(0.95),
    })
    .strict()
    .refine((p) => p.fast < p.slow, { message: 'fast must be smaller than slow', path: ['fast'] }),
  onStart(ctx) {
    const fast = ctx.indicator(new SMA(ctx.params.fast));
    const slow = ctx.indicator(new SMA(ctx.params.slow));
    return { fast, slow, cross: new CrossOver() };
  },
  onBar(ctx, s) {
    const c: number = s.cross.update(s.fast.value, s.slow.value);
    if (ctx.position().size === 0) {
      if (c > 0) ctx.orderTargetPercent(ctx.params.allocation);
    } else if (c < 0) ctx.close();
  },
});
`;

/** The result JSON without what names the strategy, which is all that may differ. */
function resultOf(out: string): unknown {
  const j = JSON.parse(out) as Record<string, unknown>;
  delete j.strategy;
  // The built-ins also take direction (long by default); the file's strategy is long-only.
  const { direction: _, ...params } = j.params as Record<string, unknown>;
  j.params = params;
  return j;
}

describe.skipIf(!HAS_SHARED_DATA)('keel backtest --strategy <file>', () => {
  it('runs a .ts, a .mjs and a .js file from a folder without node_modules, trade for trade the built-in sma-cross', () => {
    write('my-cross.ts', SMA_CROSS_TS);
    write('my-cross.mjs', SMA_CROSS_TS.replace(': number', ''));
    write('my-cross.js', SMA_CROSS_TS.replace(': number', ''));
    expect(existsSync(path.join(dir, 'node_modules'))).toBe(false);
    const builtin = keel('backtest', '--strategy', 'sma-cross', '--data', DATA, '--json', '--param', 'fast=7');
    expect(builtin.code, builtin.err).toBe(0);
    const oracle = resultOf(builtin.out);
    expect((oracle as { trades: unknown[] }).trades.length).toBeGreaterThan(50);
    for (const f of ['./my-cross.ts', './my-cross.mjs', './my-cross.js']) {
      const r = keel('backtest', '--strategy', f, '--data', DATA, '--json', '--param', 'fast=7');
      expect(r.code, `${f}: ${r.err}`).toBe(0);
      expect(JSON.parse(r.out).strategy, f).toBe('my-cross');
      expect(resultOf(r.out), f).toEqual(oracle);
    }
  });

  it("gets the engine's own @keel/core and zod (the bundle's keel-core and keel-zod entries)", () => {
    write(
      'where.mjs',
      "console.error('core=' + import.meta.resolve('@keel/core') + ' zod=' + import.meta.resolve('zod') + ' v4=' + import.meta.resolve('zod/v4'));\nexport { default } from './my-cross.mjs';\n",
    );
    write('my-cross.mjs', SMA_CROSS_TS.replace(': number', ''));
    const r = keel('backtest', '--strategy', './where.mjs', '--data', DATA);
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(`core=${pathToFileURL(path.join(REPO_ROOT, 'apps/cli/dist/keel-core.js')).href} `);
    const zod = pathToFileURL(path.join(REPO_ROOT, 'apps/cli/dist/keel-zod.js')).href;
    expect(r.err).toContain(`zod=${zod} v4=${zod}`);
  });

  it('runs the file named by an absolute path from another folder', () => {
    write('abs.ts', SMA_CROSS_TS);
    const r = runKeel(REPO_ROOT, ['backtest', '--strategy', path.join(dir, 'abs.ts'), '--data', DATA]);
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/44,641 bars/);
  });
});

describe('keel paper --strategy <file>', () => {
  it('replays bars through a strategy file: the same trades and equity as the backtest of those bars; parity with the file', () => {
    write('paper-cross.ts', SMA_CROSS_TS);
    // 600 rising-and-falling bars: enough crosses for several round trips.
    let csv = 'time,open,high,low,close,volume\n';
    for (let i = 0; i < 600; i++) {
      const c = 100 + 10 * Math.sin(i / 15) + i * 0.01;
      csv += `${1704067200000 + i * 60_000},${c - 0.1},${c + 0.5},${c - 0.5},${c},${10 + (i % 7)}\n`;
    }
    write('bars.csv', csv);
    const bt = keel(
      'backtest',
      '--strategy',
      './paper-cross.ts',
      '--data',
      'bars.csv',
      '--symbol',
      'BTC/USDT',
      '--json',
    );
    expect(bt.code, bt.err).toBe(0);
    const result = JSON.parse(bt.out) as { trades: unknown[]; finalValue: number };
    expect(result.trades.length).toBeGreaterThan(3);
    const p = keel(
      'paper',
      '--strategy',
      './paper-cross.ts',
      '--symbol',
      'BTC/USDT',
      '--replay',
      'bars.csv',
      '--store',
      `sqlite:${path.join(dir, 'paper.db')}`,
      '--store-sync',
      'normal',
    );
    expect(p.code, p.err).toBe(0);
    const report = JSON.parse(p.out) as { botId: string; trades: number; equity: number };
    expect(report.botId).toBe('my-cross-BTCUSDT-paper');
    expect(report.trades).toBe(result.trades.length);
    expect(report.equity).toBe(result.finalValue);
    // keel bots parity replays the bot's bars through the same file: no difference.
    const store = `sqlite:${path.join(dir, 'paper.db')}`;
    const parity = keel('bots', 'parity', report.botId, '--store', store, '--strategy', './paper-cross.ts', '--json');
    expect(parity.code, parity.err).toBe(0);
    const pr = JSON.parse(parity.out) as { differences: unknown[]; orders: { bot: number; matched: number } };
    expect(pr.differences).toEqual([]);
    expect(pr.orders.matched).toBe(pr.orders.bot);
    expect(pr.orders.bot).toBeGreaterThanOrEqual(2 * result.trades.length);
    const without = keel('bots', 'parity', report.botId, '--store', store);
    expect(without.code).toBe(1);
    expect(without.err).toMatch(
      /the bot ran strategy "my-cross", which is not built in: give its file with --strategy/,
    );
  });
});

describe('errors in a strategy file: file and line, no stack, exit 1', () => {
  const bars = () => {
    if (!existsSync(path.join(dir, 'tiny.csv'))) {
      let csv = 'time,open,high,low,close,volume\n';
      for (let i = 0; i < 50; i++) csv += `${1704067200000 + i * 60_000},100,101,99,100,1\n`;
      write('tiny.csv', csv);
    }
    return 'tiny.csv';
  };
  const run = (file: string, ...extra: string[]) =>
    keel('backtest', '--strategy', file, '--data', bars(), '--symbol', 'BTC/USDT', ...extra);
  const expectFailure = (r: { code: number | null; err: string }, message: RegExp) => {
    expect(r.err).toMatch(message);
    expect(r.err).not.toMatch(/^\s+at /m);
    expect(r.code).toBe(1);
  };

  it('a TypeScript syntax error', () => {
    write('syntax.ts', "import { defineStrategy } from '@keel/core';\n\nconst x: number = ;\nexport default x;\n");
    expectFailure(run('./syntax.ts'), /^keel backtest: \.\/syntax\.ts:3:19: syntax error: Unexpected ";"$/m);
  });

  it('a JavaScript syntax error in a .mjs', () => {
    write('syntax.mjs', "import { defineStrategy } from '@keel/core';\n\nexport default {;\n");
    expectFailure(run('./syntax.mjs'), /^keel backtest: \.\/syntax\.mjs:3:17: syntax error: /m);
  });

  it('no strategy exported: the exports are named, at the export line', () => {
    write(
      'noexp.ts',
      "import { SMA } from '@keel/core';\n\nexport const period = 10;\nexport const make = () => new SMA(period);\n",
    );
    expectFailure(
      run('./noexp.ts'),
      /^keel backtest: \.\/noexp\.ts:3: no strategy exported: the file exports .*make \(a function.*period \(a number/m,
    );
  });

  it('a default export that is not a strategy says what it lacks', () => {
    write(
      'half.mjs',
      "import { z } from 'zod';\n\nexport default { name: 'half', params: z.object({}), onStart() {} };\n",
    );
    expectFailure(
      run('./half.mjs'),
      /^keel backtest: \.\/half\.mjs:3: the default export is not a strategy: it has no onBar/m,
    );
  });

  it('a throw while the file loads (defineStrategy refusing the name) points at the call', () => {
    write(
      'badname.mjs',
      "import { defineStrategy } from '@keel/core';\nimport { z } from 'zod';\n\nexport default defineStrategy({\n  name: 'Bad Name',\n  params: z.object({}),\n  onStart() { return {}; },\n  onBar() {},\n});\n",
    );
    expectFailure(
      run('./badname.mjs'),
      /^keel backtest: \.\/badname\.mjs:4:\d+: Strategy name "Bad Name" must be kebab-case/m,
    );
  });

  it('a parameter failing its schema is reported at the line that declares it', () => {
    write('params.ts', SMA_CROSS_TS);
    expectFailure(
      run('./params.ts', '--param', 'slow=1'),
      /^keel backtest: \.\/params\.ts:9: Invalid parameters for strategy "my-cross": slow: Too small/m,
    );
    expectFailure(
      run('./params.ts', '--param', 'fast=40'),
      /^keel backtest: \.\/params\.ts:8: .*fast: fast must be smaller than slow/m,
    );
  });

  it('an import Keel does not provide names the package and the line', () => {
    write('imp.ts', "import { defineStrategy } from '@keel/core';\nimport pad from 'left-pad';\nexport default pad;\n");
    expectFailure(run('./imp.ts'), /^keel backtest: \.\/imp\.ts:2: Cannot find package 'left-pad'/m);
  });

  it('a throw in onBar: the run goes on and is shown, its error line and result.errors say file:line:column; exit 1', () => {
    write(
      'boom.ts',
      "import { defineStrategy } from '@keel/core';\nimport { z } from 'zod';\n\ntype S = { n: number };\n\nexport default defineStrategy({\n  name: 'boom',\n  params: z.object({}),\n  onStart: (): S => ({ n: 0 }),\n  onBar(_ctx, s: S) {\n    s.n++;\n    if (s.n === 5) throw new Error('kaboom');\n  },\n});\n",
    );
    const r = run('./boom.ts');
    expect(r.code, r.err).toBe(1);
    expect(r.out).toContain('Final value');
    expect(r.err).toMatch(
      /^error: the strategy raised 1 error\(s\); first: onBar: \.\/boom\.ts:12:26: kaboom \(the results above include the bars it failed on: exit 1\)$/m,
    );
    const j = JSON.parse(run('./boom.ts', '--json').out) as { errors: { hook: string; message: string }[] };
    expect(j.errors.map((e) => [e.hook, e.message])).toEqual([['onBar', './boom.ts:12:26: kaboom']]);
  });

  it('a throw in onStart stops the run (exit 1) at its line', () => {
    write(
      'start.mjs',
      "import { defineStrategy, SMA } from '@keel/core';\nimport { z } from 'zod';\n\nexport default defineStrategy({\n  name: 'start',\n  params: z.object({}),\n  onStart() {\n    return { sma: new SMA(10).missing.value };\n  },\n  onBar() {},\n});\n",
    );
    expectFailure(run('./start.mjs'), /^keel backtest: \.\/start\.mjs:8:\d+: .*Cannot read properties of undefined/m);
  });

  it('a CommonJS file', () => {
    write('old.cjs', "module.exports = require('@keel/core');\n");
    expectFailure(run('./old.cjs'), /^keel backtest: \.\/old\.cjs: a strategy file is an ES module/m);
  });

  it('a missing file', () => {
    expectFailure(run('./nope.ts'), /^keel backtest: --strategy: no such file: \.\/nope\.ts$/m);
  });
});

describe('keel new strategy', () => {
  it.skipIf(!HAS_SHARED_DATA)('writes a commented starter that backtests as written on real data', () => {
    const w = keel('new', 'strategy', 'trend-rider');
    expect(w.code, w.err).toBe(0);
    expect(w.out).toMatch(/wrote trend-rider\.ts/);
    const text = readFileSync(path.join(dir, 'trend-rider.ts'), 'utf8');
    expect(text).toMatch(/name: 'trend-rider'/);
    expect(text.split('\n').filter((l) => l.trim().startsWith('//')).length).toBeGreaterThan(10);
    const r = keel('backtest', '--strategy', './trend-rider.ts', '--data', DATA, '--json');
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out) as { strategy: string; trades: unknown[]; errors: unknown[] };
    expect(j.strategy).toBe('trend-rider');
    expect(j.trades.length).toBeGreaterThan(10);
    expect(j.errors).toEqual([]);
    const again = keel('new', 'strategy', 'trend-rider');
    expect(again.code).toBe(1);
    expect(again.err).toMatch(/trend-rider\.ts exists already/);
  });

  it('refuses a name that is not kebab-case (usage, exit 2)', () => {
    const r = keel('new', 'strategy', 'Trend Rider');
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/kebab-case/);
  });
});

describe('keel strategies', () => {
  it('lists every built-in with its parameters, defaults, constraints and cross-parameter rules', () => {
    const r = keel('strategies', '--json');
    expect(r.code, r.err).toBe(0);
    const list = JSON.parse(r.out).strategies as {
      name: string;
      source: string;
      params: { name: string; type: string; default?: unknown; constraints: string[] }[];
      rules: string[];
    }[];
    expect(list.map((s) => s.name)).toContain('rsi-reversion');
    const sma = list.find((s) => s.name === 'sma-cross')!;
    expect(sma.source).toBe('built-in');
    // As written in packages/strategies/src/sma-cross.ts and common.ts.
    expect(sma.params).toEqual([
      { name: 'fast', type: 'integer', required: false, default: 10, constraints: ['>= 1'] },
      { name: 'slow', type: 'integer', required: false, default: 30, constraints: ['>= 2'] },
      { name: 'allocation', type: 'number', required: false, default: 0.95, constraints: ['> 0', '<= 1'] },
      {
        name: 'direction',
        type: 'enum',
        required: false,
        default: 'long',
        constraints: ['one of long, short, both'],
      },
    ]);
    expect(sma.rules).toEqual(['fast must be smaller than slow']);
    const text = keel('strategies');
    expect(text.out).toMatch(/^sma-cross\n.*\n {2}fast {8}integer {2}default 10 +>= 1$/m);
    expect(text.out).toMatch(/^ {2}rule: fast must be smaller than slow$/m);
  });

  it('describes a strategy file', () => {
    write('listed.ts', SMA_CROSS_TS);
    const r = keel('strategies', './listed.ts');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^my-cross {2}\(\.\/listed\.ts\)$/m);
    expect(r.out).toMatch(/^ {2}allocation {2}number {3}default 0\.95 {2}> 0, <= 1$/m);
  });
});
