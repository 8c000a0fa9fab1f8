// The configuration layers as plain functions: defaults < keel.yaml < KEEL_* < flags. Oracle: the
// lines and values of the hand-written file below.
import { describe, expect, it } from 'vitest';
import {
  ConfigError,
  envName,
  readConfigFile,
  resolveSettings,
  SETTINGS,
  type Setting,
  settingsArgv,
} from '../src/config.ts';

const TEXT = `# comment
strategy: sma-cross
params:
  fast: 12
  slow: 40

backtest:
  cash: 5000
  fee: 0.00075
  json: true
  params:
    slow: 50
  risk:
    max-drawdown: 0.25
    symbols: [BTC/USDT, ETH/USDT]
  sizing:
    kelly: 0.5
    cap: 0.2
  roi: { 0: 0.05, 60: 0.02 }
exits:
  stop-loss: 2%
paper:
  symbol: BTC/USDT
`;

const read = (text: string) => readConfigFile('/x/keel.yaml', { text, display: 'keel.yaml' });
const byKey = (s: readonly Setting[]) => new Map(s.map((x) => [x.key, x]));

describe('resolveSettings', () => {
  it('gives each setting its value and origin: file line, environment variable, flag or default', async () => {
    const file = await read(TEXT);
    const s = byKey(
      resolveSettings({
        section: 'backtest',
        file,
        fileDisplay: 'keel.yaml',
        env: { KEEL_FEE: '0.002', KEEL_JSON: 'false', KEEL_CASH: '' },
        argv: ['--param', 'fast=7', '--data', 'bars.csv'],
      }),
    );
    expect(s.get('strategy')).toEqual({
      key: 'strategy',
      value: 'sma-cross',
      origin: { kind: 'file', file: 'keel.yaml', line: 2, key: 'strategy' },
    });
    expect(s.get('param.fast')).toEqual({ key: 'param.fast', value: undefined, origin: { kind: 'flag' } });
    expect(s.get('param.slow')).toMatchObject({ value: 50, origin: { line: 12, key: 'backtest.params.slow' } });
    expect(s.get('cash')).toMatchObject({ value: 5000, origin: { kind: 'file', line: 8 } }); // empty env = unset
    expect(s.get('fee')).toEqual({ key: 'fee', value: 0.002, origin: { kind: 'env', name: 'KEEL_FEE' } });
    expect(s.get('json')).toMatchObject({ value: false, origin: { kind: 'env' } });
    expect(s.get('data')).toMatchObject({ origin: { kind: 'flag' } });
    expect(s.get('latency-bars')).toEqual({ key: 'latency-bars', value: 1, origin: { kind: 'default' } });
    expect(s.get('maker-fee')).toMatchObject({ value: undefined, origin: { kind: 'default' } });
    expect(s.get('risk.max-drawdown')).toMatchObject({ value: 0.25, origin: { line: 14 } });
    expect(s.get('risk.symbols')).toMatchObject({ value: 'BTC/USDT,ETH/USDT', origin: { line: 15 } });
    expect(s.get('roi')).toMatchObject({ value: '0=0.05,60=0.02', origin: { line: 19 } });
    expect(s.get('stop-loss')).toMatchObject({ value: '2%', origin: { line: 21, key: 'exits.stop-loss' } });
  });

  it('turns the settings the command line lacks into its flags, and leaves the ones it has', async () => {
    const file = await read(TEXT);
    const argv = ['--param', 'fast=7', '--sizing', 'percent=0.5', '--', 'rest'];
    const out = settingsArgv(resolveSettings({ section: 'backtest', file, env: { KEEL_FEE: '0.002' }, argv }), argv);
    expect(out).toEqual([
      '--param',
      'fast=7',
      '--sizing',
      'percent=0.5',
      '--strategy',
      'sma-cross',
      '--param',
      'slow=50',
      '--cash',
      '5000',
      '--fee',
      '0.002',
      '--json',
      '--risk',
      'max-drawdown=0.25',
      '--risk',
      'symbols=BTC/USDT,ETH/USDT',
      '--stop-loss',
      '2%',
      '--roi',
      '0=0.05,60=0.02',
      '--',
      'rest',
    ]);
  });

  it("a section's sizing replaces the top level's: one model with its options", async () => {
    const file = await read('sizing:\n  percent: 0.3\nbacktest:\n  sizing:\n    kelly: 0.5\n    cap: 0.2\n');
    const s = resolveSettings({ section: 'backtest', file }).filter((x) => x.key.startsWith('sizing.'));
    expect(s.map((x) => [x.key, x.value])).toEqual([
      ['sizing.kelly', 0.5],
      ['sizing.cap', 0.2],
    ]);
  });

  it('refuses a value from the environment by the same rule as from the file, naming the variable', () => {
    expect(() => resolveSettings({ section: 'backtest', env: { KEEL_FEE: '2' } })).toThrow(
      'KEEL_FEE: fee: must be < 1 (a fraction: 0.001 is 0.1 %), got "2"',
    );
    expect(() => resolveSettings({ section: 'paper', env: { KEEL_FLATTEN: 'maybe' } })).toThrow(
      'KEEL_FLATTEN: flatten: must be true or false (1/0, yes/no), got "maybe"',
    );
    expect(envName('maker-fee')).toBe('KEEL_MAKER_FEE');
  });

  it('top-level risk settings reach every command that takes the risk flags, not data', async () => {
    const file = await read('risk:\n  max-drawdown: 0.2\nexits:\n  stop-loss: 2%\n');
    for (const section of ['backtest', 'paper', 'live'] as const) {
      const s = byKey(resolveSettings({ section, file }));
      expect(s.get('risk.max-drawdown')?.value, section).toBe(0.2);
      expect(s.get('stop-loss')?.value, section).toBe('2%');
    }
    expect(resolveSettings({ section: 'data', file }).some((x) => x.key.startsWith('risk'))).toBe(false);
  });

  it('several markets: a list of --data files and a list of symbols', async () => {
    const file = await read('backtest:\n  data: [a.csv, b.csv]\n  symbol: [BTC/USDT, ETH/USDT]\n');
    expect(settingsArgv(resolveSettings({ section: 'backtest', file }), [])).toEqual([
      '--data',
      'a.csv',
      '--data',
      'b.csv',
      '--symbol',
      'BTC/USDT,ETH/USDT',
    ]);
    const one = await read('backtest:\n  data: a.csv\n  symbol: BTC/USDT,ETH/USDT\n');
    expect(settingsArgv(resolveSettings({ section: 'backtest', file: one }), [])).toEqual([
      '--data',
      'a.csv',
      '--symbol',
      'BTC/USDT,ETH/USDT',
    ]);
  });

  it('a switch and its opposite: the higher layer wins (save / no-save), one layer with both stays an error', async () => {
    const file = await read('backtest:\n  save: true\n');
    const run = (argv: string[], env: Record<string, string> = {}) =>
      settingsArgv(resolveSettings({ section: 'backtest', file, env, argv }), argv);
    expect(run([])).toEqual(['--save']);
    expect(run(['--no-save'])).toEqual(['--no-save']);
    expect(run([], { KEEL_NO_SAVE: 'true' })).toEqual(['--no-save']);
    const both = await read('backtest:\n  save: true\n  no-save: true\n');
    expect(settingsArgv(resolveSettings({ section: 'backtest', file: both }), [])).toEqual(['--no-save', '--save']);
  });

  it('knows only flags the commands have (paper: no --keys; live: no --replay)', () => {
    expect(Object.keys(SETTINGS.paper)).not.toContain('keys');
    expect(Object.keys(SETTINGS.live)).not.toContain('replay');
    for (const s of Object.values(SETTINGS)) {
      expect(Object.keys(s)).not.toContain('confirm-live');
      expect(Object.keys(s)).not.toContain('help');
    }
  });
});

describe('bots.store: the store keel bots and keel portfolio read', () => {
  const store = async (text: string, env: Record<string, string> = {}, argv: string[] = []) =>
    byKey(resolveSettings({ section: 'bots', file: await read(text), fileDisplay: 'keel.yaml', env, argv })).get(
      'store',
    );

  it('is the store the bots run with: live.store or paper.store, at its line', async () => {
    expect(await store('live:\n  symbol: BTC/USDT\n  store: sqlite:x.db\n')).toEqual({
      key: 'store',
      value: 'sqlite:x.db',
      origin: { kind: 'file', file: 'keel.yaml', line: 3, key: 'live.store' },
    });
    expect((await store('paper:\n  store: sqlite:p.db\n'))?.origin).toMatchObject({ line: 2, key: 'paper.store' });
    expect((await store('paper:\n  store: sqlite:s.db\nlive:\n  store: sqlite:s.db\n'))?.value).toBe('sqlite:s.db');
    expect(await store('backtest:\n  store: sqlite:b.db\n')).toEqual({
      key: 'store',
      value: 'sqlite:.keel/keel.db',
      origin: { kind: 'default' },
    });
  });

  it('its own bots.store, KEEL_STORE and --store win, in that order upwards', async () => {
    const text = 'bots:\n  store: sqlite:own.db\nlive:\n  store: sqlite:x.db\n';
    expect(await store(text)).toMatchObject({ value: 'sqlite:own.db', origin: { key: 'bots.store', line: 2 } });
    expect(await store(text, { KEEL_STORE: 'sqlite:env.db' })).toMatchObject({
      value: 'sqlite:env.db',
      origin: { kind: 'env', name: 'KEEL_STORE' },
    });
    expect(await store(text, { KEEL_STORE: 'sqlite:env.db' }, ['list', '--store', 'sqlite:f.db'])).toMatchObject({
      origin: { kind: 'flag' },
    });
  });

  it('paper and live on different stores: refused, naming both, unless bots.store, KEEL_STORE or --store says', async () => {
    const text = 'paper:\n  store: sqlite:p.db\nlive:\n  store: sqlite:l.db\n';
    await expect(store(text)).rejects.toThrow(
      'keel.yaml:2: paper.store: live.store is "sqlite:l.db" and paper.store is "sqlite:p.db": commands that read every bot (keel bots, keel portfolio) cannot tell which store is meant; set bots.store, or give --store',
    );
    expect((await store(`${text}bots:\n  store: sqlite:l.db\n`))?.value).toBe('sqlite:l.db');
    expect((await store(text, { KEEL_STORE: 'sqlite:e.db' }))?.value).toBe('sqlite:e.db');
    expect((await store(text, {}, ['--store', 'sqlite:f.db']))?.origin).toEqual({ kind: 'flag' });
  });
});

describe('readConfigFile: each mistake named with its line, setting and rule', () => {
  const cases: [string, string][] = [
    [
      'backtest:\n  cash: 100\n  fee: 2\n',
      'keel.yaml:3: backtest.fee: must be < 1 (a fraction: 0.001 is 0.1 %), got 2',
    ],
    ['backtest:\n  cash: 0\n', 'keel.yaml:2: backtest.cash: must be > 0, got 0'],
    ['backtest:\n  fees: 0.1\n', 'keel.yaml:2: backtest.fees: unknown setting'],
    ['backtest:\n  json: yes\n', 'keel.yaml:2: backtest.json: must be true or false, got "yes"'],
    ['backtest:\n  latency-bars: 1.5\n', 'keel.yaml:2: backtest.latency-bars: must be a whole number, got 1.5'],
    ['paper:\n  on-shutdown: later\n', 'keel.yaml:2: paper.on-shutdown: must be one of cancel, keep, got "later"'],
    ['live:\n  timeframe: 7q\n', 'keel.yaml:2: live.timeframe: must be a timeframe'],
    [
      'backtest:\n  symbol: [BTC/USDT, ETHUSDT]\n',
      'keel.yaml:2: backtest.symbol: must look like BTC/USDT, got "ETHUSDT"',
    ],
    ['backtest:\n  data: []\n', 'keel.yaml:2: backtest.data: must be a path or a list of paths'],
    ['paper:\n  risk:\n    max-drawdown: 2\n', 'keel.yaml:3: paper.risk.max-drawdown: max-drawdown=2'],
    ['params:\n  fast: [1, 2]\n', 'keel.yaml:2: params.fast: must be a number, a string or true/false'],
    ['x: 1\nrisk:\n  max-drawdown: 0.2\n', 'keel.yaml:1: x: unknown setting'],
    [
      '\n\nrisk:\n  max-drawdown: 1.5\n',
      'keel.yaml:4: risk.max-drawdown: max-drawdown=1.5: the drawdown must be in (0, 1)',
    ],
    [
      'backtest:\n  sizing:\n    risk: 0.01\n',
      'keel.yaml:3: backtest.sizing.risk: sizing risk=<fraction> sizes from the distance',
    ],
    ['exits:\n  stop-los: 2%\n', 'keel.yaml:2: exits.stop-los: unknown setting'],
    ['backtest:\n  cash: [1\n', 'keel.yaml:3: yaml: '],
    ['backtest:\n  cash: 1\n  cash: 2\n', 'keel.yaml:3: yaml: Map keys must be unique'],
    ['- 1\n', 'keel.yaml:1: the file must be a map of settings'],
  ];
  for (const [text, message] of cases)
    it(message, async () => {
      const e = await read(text).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ConfigError);
      expect((e as Error).message.startsWith(message), (e as Error).message).toBe(true);
    });

  it('an empty file is no settings', async () => {
    expect((await read('# nothing yet\n')).data).toEqual({});
  });
});
