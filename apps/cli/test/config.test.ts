// keel.yaml and KEEL_* through the real bin. Oracle: a run configured by the file (and the
// environment) is byte-identical to the run given the same settings as flags.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Setting } from '@keel/runtime/config';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip, REPO_ROOT } from '../../../test-support/shared.ts';
import { BIN } from './run-keel.ts';

const root = mkdtempSync(path.join(tmpdir(), 'keel-config-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** An empty working folder, with a keel.yaml when given. */
function folder(yaml?: string): string {
  const dir = path.join(root, `w${n++}`);
  mkdirSync(dir);
  if (yaml !== undefined) writeFileSync(path.join(dir, 'keel.yaml'), yaml);
  return dir;
}

/** The bin in `cwd` with exactly these KEEL_* variables (the test runner's own are removed). */
function keel(cwd: string, args: string[], env: Record<string, string> = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KEEL_')));
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...clean, ...env },
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 256 << 20,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** 600 synthetic 1m bars that cross often (several SMA crosses, fees matter). */
const barsCsv = (phase: number) => {
  let csv = 'time,open,high,low,close,volume\n';
  for (let i = 0; i < 600; i++) {
    const c = 100 + 8 * Math.sin(i / 12 + phase) + 3 * Math.sin(i / 3.7);
    csv += `${1704067200000 + i * 60_000},${(c - 0.2).toFixed(4)},${(c + 0.6).toFixed(4)},${(c - 0.6).toFixed(4)},${c.toFixed(4)},${10 + (i % 5)}\n`;
  }
  return csv;
};
const BARS = barsCsv(0);
const barsIn = (dir: string) => writeFileSync(path.join(dir, 'bars.csv'), BARS);

const BASE = ['backtest', '--strategy', 'sma-cross', '--data', 'bars.csv', '--symbol', 'BTC/USDT', '--json'];

describe('keel.yaml and KEEL_* layered under the flags', () => {
  const yaml = `strategy: sma-cross
params:
  fast: 5
  slow: 20
backtest:
  data: bars.csv
  symbol: BTC/USDT
  json: true
  cash: 5000
  fee: 0.0005
  params:
    slow: 25
`;
  const flags = (...extra: string[]) => {
    const plain = folder();
    barsIn(plain);
    const r = keel(plain, [...BASE, '--param', 'fast=5', '--param', 'slow=25', '--cash', '5000', ...extra]);
    expect(r.code, r.err).toBe(0);
    return r.out;
  };

  it('the file alone: the same run as its settings as flags (the section wins over the top level)', () => {
    const dir = folder(yaml);
    barsIn(dir);
    const r = keel(dir, ['backtest']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).params).toEqual({ fast: 5, slow: 25, allocation: 0.95, direction: 'long' });
    expect(r.out).toBe(flags('--fee', '0.0005'));
  });

  it('the environment over the file, a flag over both, and a flag param over the file key by key', () => {
    const dir = folder(yaml);
    barsIn(dir);
    const env = keel(dir, ['backtest'], { KEEL_FEE: '0.002' });
    expect(env.code, env.err).toBe(0);
    expect(env.out).toBe(flags('--fee', '0.002'));
    const flag = keel(dir, ['backtest', '--fee', '0.001', '--param', 'fast=3'], { KEEL_FEE: '0.002' });
    expect(flag.code, flag.err).toBe(0);
    expect(JSON.parse(flag.out).params).toEqual({ fast: 3, slow: 25, allocation: 0.95, direction: 'long' });
    expect(flag.out).not.toBe(env.out);
  });

  it('KEEL_JSON=false turns off the file’s json: true', () => {
    const dir = folder(yaml);
    barsIn(dir);
    const r = keel(dir, ['backtest'], { KEEL_JSON: 'false' });
    expect(r.code, r.err).toBe(0);
    expect(r.out).toMatch(/^sma-cross on BTC\/USDT 1m/);
  });

  it('several markets: a list of data files and symbols, the same run as repeated --data flags', () => {
    const dir = folder(
      'strategy: sma-cross\nparams:\n  fast: 5\n  slow: 20\nbacktest:\n  data: [bars.csv, eth.csv]\n  symbol: [BTC/USDT, ETH/USDT]\n  json: true\n',
    );
    barsIn(dir);
    writeFileSync(path.join(dir, 'eth.csv'), barsCsv(1));
    const viaFile = keel(dir, ['backtest']);
    expect(viaFile.code, viaFile.err).toBe(0);
    const viaFlags = keel(folder(), [
      ...['backtest', '--strategy', 'sma-cross', '--param', 'fast=5', '--param', 'slow=20', '--json'],
      ...['--data', path.join(dir, 'bars.csv'), '--data', path.join(dir, 'eth.csv'), '--symbol', 'BTC/USDT,ETH/USDT'],
    ]);
    expect(viaFlags.code, viaFlags.err).toBe(0);
    expect(JSON.parse(viaFile.out).feeds.map((f: { symbol: string }) => f.symbol)).toEqual(['BTC/USDT', 'ETH/USDT']);
    expect(viaFile.out).toBe(viaFlags.out);
  });

  it('top-level risk settings reach a paper bot as its risk flags', () => {
    const dir = folder('strategy: sma-cross\nrisk:\n  max-drawdown: 0.2\nexits:\n  stop-loss: 2%\n');
    const r = keel(dir, ['config', 'show', 'paper', '--json']);
    expect(r.code, r.err).toBe(0);
    const by = new Map(
      (JSON.parse(r.out).sections.paper as { key: string; value: unknown }[]).map((x) => [x.key, x.value]),
    );
    expect(by.get('risk.max-drawdown')).toBe(0.2);
    expect(by.get('stop-loss')).toBe('2%');
  });

  it('--config <file> from another folder; the data section reaches keel data', () => {
    const dir = folder();
    barsIn(dir);
    writeFileSync(path.join(root, 'other.yaml'), 'data:\n  data-dir: store-here\n  exchange: binance\n');
    const r = keel(dir, [
      'data',
      'import',
      'bars.csv',
      '--symbol',
      'BTC/USDT',
      '--config',
      path.join(root, 'other.yaml'),
    ]);
    expect(r.code, r.err).toBe(0);
    expect(existsSync(path.join(dir, 'store-here', 'processed'))).toBe(true);
    expect(existsSync(path.join(dir, '.keel'))).toBe(false);
  });
});

describe('a wrong setting is refused at start with its place, setting and rule (exit 1, no stack)', () => {
  const refused = (r: { code: number | null; err: string }, line: string) => {
    expect(r.err).toBe(`${line}\n`);
    expect(r.code).toBe(1);
  };

  it('in the file', () => {
    const dir = folder('strategy: sma-cross\nbacktest:\n  cash: 100\n  fee: 2\n');
    refused(
      keel(dir, ['backtest']),
      'keel backtest: keel.yaml:4: backtest.fee: must be < 1 (a fraction: 0.001 is 0.1 %), got 2',
    );
    const typo = folder('backtest:\n  fees: 0.1\n');
    expect(keel(typo, ['backtest']).err).toMatch(
      /^keel backtest: keel\.yaml:2: backtest\.fees: unknown setting \(did you mean fee\?\)/,
    );
  });

  it('in a risk map, by the risk parser', () => {
    const dir = folder('backtest:\n  risk:\n    max-drawdown: 1.5\n');
    expect(keel(dir, ['backtest']).err).toMatch(
      /^keel backtest: keel\.yaml:3: backtest\.risk\.max-drawdown: max-drawdown=1\.5: the drawdown must be in \(0, 1\)/,
    );
  });

  it('in the environment', () => {
    refused(
      keel(folder(), ['backtest'], { KEEL_CASH: 'abc' }),
      'keel backtest: KEEL_CASH: cash: must be a number, got "abc"',
    );
  });

  it('--help is shown whatever the file holds; a missing --config is an error', () => {
    const dir = folder('backtest:\n  fee: [\n');
    const h = keel(dir, ['backtest', '--help']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/^Usage: /);
    refused(keel(folder(), ['backtest', '--config', 'nope.yaml']), 'keel backtest: --config: no such file: nope.yaml');
  });
});

describe('keel config show', () => {
  it('prints each effective setting and where it comes from', () => {
    const dir = folder('strategy: sma-cross\nbacktest:\n  cash: 5000\n  params:\n    fast: 7\n');
    const j = keel(dir, ['config', 'show', 'backtest', '--json'], { KEEL_FEE: '0.002' });
    expect(j.code, j.err).toBe(0);
    const s = JSON.parse(j.out) as {
      file: string;
      sections: { backtest: { key: string; value: unknown; origin: unknown }[] };
    };
    expect(s.file).toBe(path.join(dir, 'keel.yaml'));
    const by = new Map(s.sections.backtest.map((x) => [x.key, x]));
    expect(by.get('strategy')).toEqual({
      key: 'strategy',
      value: 'sma-cross',
      origin: { kind: 'file', file: 'keel.yaml', line: 1, key: 'strategy' },
    });
    expect(by.get('param.fast')?.origin).toEqual({
      kind: 'file',
      file: 'keel.yaml',
      line: 5,
      key: 'backtest.params.fast',
    });
    expect(by.get('fee')).toEqual({ key: 'fee', value: 0.002, origin: { kind: 'env', name: 'KEEL_FEE' } });
    expect(by.get('latency-bars')).toEqual({ key: 'latency-bars', value: 1, origin: { kind: 'default' } });
    const t = keel(dir, ['config', 'show', 'backtest'], { KEEL_FEE: '0.002' });
    expect(t.out).toMatch(/^configuration file: keel\.yaml$/m);
    expect(t.out).toMatch(/^ {2}cash +5000 +keel\.yaml:3 \(backtest\.cash\)$/m);
    expect(t.out).toMatch(/^ {2}fee +0\.002 +env KEEL_FEE$/m);
  });
});

describe('keel bots and keel portfolio read the store the bots run with from keel.yaml', () => {
  it('a paper bot run on the file’s paper.store is the one keel bots and keel portfolio show, with no --store', () => {
    const dir = folder(
      'strategy: sma-cross\npaper:\n  symbol: BTC/USDT\n  replay: bars.csv\n  store: sqlite:.keel/mine.db\n  bot-id: cfgbot\n',
    );
    barsIn(dir);
    const run = keel(dir, ['paper']);
    expect(run.code, run.err).toBe(0);
    expect(existsSync(path.join(dir, '.keel/mine.db'))).toBe(true);
    expect(existsSync(path.join(dir, '.keel/keel.db')), 'nothing was written to the default store').toBe(false);
    const list = keel(dir, ['bots', 'list', '--json']);
    expect(list.code, list.err).toBe(0);
    expect((JSON.parse(list.out) as { id: string }[]).map((b) => b.id)).toEqual(['cfgbot']);
    const status = keel(dir, ['bots', 'status', 'cfgbot']);
    expect(status.code, status.err).toBe(0);
    const portfolio = keel(dir, ['portfolio', '--json']);
    expect(portfolio.code, portfolio.err).toBe(0);
    expect((JSON.parse(portfolio.out) as { bots: { id: string }[] }).bots.map((b) => b.id)).toEqual(['cfgbot']);
    // A flag and KEEL_STORE still win: another store has no such bot.
    expect(keel(dir, ['bots', 'status', 'cfgbot'], { KEEL_STORE: 'sqlite:.keel/mine.db' }).code).toBe(0);
    const other = keel(dir, ['bots', 'list', '--store', 'sqlite:.keel/other.db']);
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/no store at .*other\.db/);
    const shown = keel(dir, ['config', 'show', 'bots', '--json']);
    expect(shown.code, shown.err).toBe(0);
    expect((JSON.parse(shown.out) as { sections: { bots: Setting[] } }).sections.bots).toEqual([
      {
        key: 'store',
        value: 'sqlite:.keel/mine.db',
        origin: { kind: 'file', file: 'keel.yaml', line: 5, key: 'paper.store' },
      },
    ]);
  });

  it('paper and live on different stores: keel bots says so and how to choose, instead of reading the default', () => {
    const dir = folder('paper:\n  store: sqlite:p.db\nlive:\n  store: sqlite:l.db\n');
    const r = keel(dir, ['bots', 'list']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('keel.yaml:2: paper.store: live.store is "sqlite:l.db" and paper.store is "sqlite:p.db"');
    expect(r.err).toContain('set bots.store, or give --store');
    expect(r.err).not.toMatch(/^\s+at /m);
  });
});

describe('keel backtests reads the store keel backtest keeps its runs in', () => {
  it('a run saved to the file’s backtest.store is the one keel backtests list, show and compare find, with no --store', () => {
    const dir = folder('strategy: sma-cross\nbacktest:\n  data: bars.csv\n  symbol: BTC/USDT\n  store: sqlite:x.db\n');
    barsIn(dir);
    const run = keel(dir, ['backtest']);
    expect(run.code, run.err).toBe(0);
    expect(run.err).toContain('saved as backtest 1');
    expect(existsSync(path.join(dir, 'x.db'))).toBe(true);
    expect(existsSync(path.join(dir, '.keel/keel.db')), 'nothing was written to the default store').toBe(false);
    const list = keel(dir, ['backtests', 'list', '--json']);
    expect(list.code, list.err).toBe(0);
    expect((JSON.parse(list.out) as { id: number; strategy: string }[]).map((r) => [r.id, r.strategy])).toEqual([
      [1, 'sma-cross'],
    ]);
    const show = keel(dir, ['backtests', 'show', '1']);
    expect(show.code, show.err).toBe(0);
    expect(keel(dir, ['backtests', 'compare', '1', '1']).code).toBe(0);
    // KEEL_STORE and a flag still win: another store has no runs.
    const other = keel(dir, ['backtests', 'list'], { KEEL_STORE: 'sqlite:other.db' });
    expect(other.code).toBe(1);
    expect(other.err).toMatch(/no store at .*other\.db/);
    expect(keel(dir, ['backtests', 'list', '--store', 'sqlite:y.db']).err).toMatch(/no store at .*y\.db/);
    // backtests.store settles it in the file; keel config show says where the store comes from.
    const shown = keel(dir, ['config', 'show', 'backtests', '--json']);
    expect(shown.code, shown.err).toBe(0);
    expect((JSON.parse(shown.out) as { sections: { backtests: Setting[] } }).sections.backtests).toEqual([
      {
        key: 'store',
        value: 'sqlite:x.db',
        origin: { kind: 'file', file: 'keel.yaml', line: 5, key: 'backtest.store' },
      },
    ]);
  });
});

describe.skipIf(!HAS_SHARED_DATA)('docs/config.md', () => {
  const doc = readFileSync(path.join(REPO_ROOT, 'docs/config.md'), 'utf8');
  const example = /^```yaml keel\.yaml\n([\s\S]*?)^```$/m.exec(doc)?.[1];

  it('its complete example runs as written: the same backtest as its settings given as flags', () => {
    expect(example).toBeDefined();
    const file = path.join(root, 'doc-keel.yaml');
    writeFileSync(file, example!);
    for (const section of ['backtest', 'paper', 'live', 'data']) {
      const s = keel(REPO_ROOT, ['config', 'show', section, '--config', file]);
      expect(s.code, `${section}: ${s.err}`).toBe(0);
    }
    const viaFile = keel(REPO_ROOT, ['backtest', '--config', file, '--json']);
    expect(viaFile.code, viaFile.err).toBe(0);
    const viaFlags = keel(REPO_ROOT, [
      'backtest',
      '--strategy',
      'sma-cross',
      '--data',
      '../shared/data/binance_BTCUSDT_1m_2024-01.csv.gz',
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '1m',
      '--cash',
      '10000',
      '--fee',
      '0.001',
      '--maker-fee',
      '0.0008',
      '--slippage-bps',
      '2',
      '--param',
      'fast=10',
      '--param',
      'slow=40',
      '--risk',
      'max-drawdown=0.2',
      '--risk',
      'daily-loss=3%',
      '--risk',
      'symbols=BTC/USDT',
      '--sizing',
      'percent=0.5',
      '--stop-loss',
      '2%',
      '--roi',
      '0=0.05,60=0.02,180=0',
      '--json',
    ]);
    expect(viaFlags.code, viaFlags.err).toBe(0);
    expect(viaFile.out.length).toBeGreaterThan(100_000);
    expect(viaFile.out === viaFlags.out).toBe(true);
  });
});

if (!HAS_SHARED_DATA) noteSkip('config docs example');

/**
 * Flags a section leaves out on purpose: typed for the one run they are meant for, or another
 * mode's (the bots' help is shared by paper and live), or named in a description only.
 */
const BOTS_NOT_SETTINGS = [
  'help',
  'json',
  'on-shutdown',
  'no-wait',
  'timeout',
  'keys',
  'exchange-url',
  'report',
  'fee',
  'fee-asset',
  'slippage-bps',
  'strategy',
  'currency',
];
const NOT_SETTINGS: Record<string, readonly string[]> = {
  backtest: ['help'],
  paper: ['help', 'confirm-live', 'reconfigure', 'clock', 'unknown-orders', 'keys', 'speed'],
  live: ['help', 'confirm-live', 'reconfigure', 'replay', 'replay-delay-ms', 'allow-bad-data', 'cash', 'fee', 'speed'],
  data: ['help'],
  // keel bots and keel portfolio: the store is where the bots are; the rest is per question asked.
  bots: BOTS_NOT_SETTINGS,
  // keel backtests: the store is where the runs are; the rest is per question asked (what prune
  // deletes is said on its command line, never by a file it may not know it reads).
  backtests: ['help', 'json', 'limit', 'report', 'keep', 'older-than', 'dry-run', 'vacuum'],
};

describe('the settings are the commands’ own flags', () => {
  it('every setting of a section is a flag its command documents, with the default its --help states', async () => {
    const { SETTINGS } = await import('@keel/runtime/config');
    const help = (args: string[]) => {
      const r = keel(root, [...args, '--help']);
      expect(r.code, `${args.join(' ')}: ${r.err}`).toBe(0);
      return r.out;
    };
    const helps = {
      backtest: help(['backtest']),
      paper: help(['paper']),
      live: help(['live']),
      data: ['download', 'import', 'validate', 'list', 'resample', 'export'].map((s) => help(['data', s])).join('\n'),
      bots: [help(['bots']), help(['portfolio'])].join('\n'),
      backtests: help(['backtests']),
    };
    for (const [section, specs] of Object.entries(SETTINGS)) {
      const text = helps[section as keyof typeof helps];
      for (const [key, spec] of Object.entries(specs)) {
        const line = text.split('\n').find((l) => new RegExp(`(^|\\s)--${key}\\b`).test(l));
        expect(line, `${section}.${key} is not a flag of keel ${section}`).toBeDefined();
        const stated = /\(default:? ([^\s);,]+)/.exec(line!)?.[1]?.replace(/:$/, '');
        if (stated !== undefined && spec.kind !== 'boolean' && spec.default !== undefined && !stated.startsWith('$'))
          expect(String(spec.default), `${section}.${key}: --help says default ${stated}`).toBe(stated);
      }
      // And the other way: a flag the command gains is a setting too, or is left out above on purpose.
      const flags = new Set([...text.matchAll(/(?:^|\s)--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!));
      const missing = [...flags].filter((f) => !(f in specs) && f !== 'param' && !NOT_SETTINGS[section]!.includes(f));
      expect(missing, `flags of keel ${section} that keel.yaml cannot set (add them to SETTINGS)`).toEqual([]);
    }
  });
});
