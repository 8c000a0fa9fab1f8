import { readFileSync } from 'node:fs';
import { isTimeframe, MARKET_SYMBOL, MAX_SLIPPAGE_BPS, parseRiskConfig, type RiskInput } from '@keel/core';
import { z } from 'zod';
import { CONFIG_FILE_NAME } from './config-sources.ts';

/**
 * The configuration file (`keel.yaml`) and the environment (`KEEL_*`), layered under the command
 * line: defaults < file < environment < flags. The file uses the flags' own names, grouped by
 * command, plus `strategy`/`params` and the risk maps (`risk:`, `sizing:`, `exits:`, docs/risk.md)
 * at the top for every command that takes them. Plain functions over values (no process, no
 * printing): the CLI turns the result into its flags, and tests call them directly.
 */

/**
 * A command the file configures (`features` reads the `data:` section; `bots:` is read by
 * `keel bots` and `keel portfolio`, which operate the bots over their store; `backtests:` by
 * `keel backtests`, which reads the runs `keel backtest` kept in its store).
 */
export type Section = 'backtest' | 'paper' | 'live' | 'data' | 'bots' | 'backtests';
export const SECTIONS: readonly Section[] = ['backtest', 'paper', 'live', 'data', 'bots', 'backtests'];

export { CONFIG_FILE_NAME, findConfigFile } from './config-sources.ts';

/** Where a value came from. */
export type Origin =
  | { readonly kind: 'default' }
  | { readonly kind: 'file'; readonly file: string; readonly line: number | undefined; readonly key: string }
  | { readonly kind: 'env'; readonly name: string }
  | { readonly kind: 'flag' };

/** One effective setting: a flag's name (`fee`), or `param.fast`, `risk.max-drawdown`, `sizing.kelly`. */
export interface Setting {
  readonly key: string;
  /** Undefined when nothing sets it: the command decides (its --help says how). */
  readonly value: string | number | boolean | readonly string[] | undefined;
  readonly origin: Origin;
}

/** A mistake in the file or the environment: where it is, the setting and the rule it breaks. */
export class ConfigError extends Error {
  constructor(
    /** `keel.yaml:12`, `KEEL_FEE`. */
    readonly where: string,
    /** `backtest.fee`, `risk.max-drawdown`. */
    readonly setting: string,
    readonly rule: string,
  ) {
    super(`${where}: ${setting ? `${setting}: ` : ''}${rule}`);
    this.name = 'ConfigError';
  }
}

/**
 * How a setting is written: one value; a path; `paths`, a repeatable flag (several `--data`
 * files: a list in the file); `list`, one flag holding a comma-separated list (`--symbol
 * BTC/USDT,ETH/USDT`: a list or that text in the file); `pairs`, a repeatable `key=value` flag
 * (`--param`, `--risk`, `--sizing`: a map in the file).
 */
type Kind = 'string' | 'number' | 'boolean' | 'path' | 'paths' | 'list' | 'pairs';

interface KeySpec {
  readonly kind: Kind;
  /** The rule a value must meet, on the value already of its kind. */
  readonly rule?: z.ZodType;
  /** What the command does when nothing sets it, as its --help says (shown by `keel config show`). */
  readonly default?: string | number | boolean;
  /**
   * Other sections' settings of the same name that give this one when the file's own section
   * does not: `bots.store` is the store the bots run with (`live.store`, `paper.store`),
   * `backtests.store` the one backtests are kept in (`backtest.store`). When they
   * give different values the file is refused: the command cannot tell which one is meant.
   */
  readonly from?: readonly Section[];
}

const fraction01 = z.number().min(0, 'must be >= 0').lt(1, 'must be < 1 (a fraction: 0.001 is 0.1 %)');
const positive = z.number().gt(0, 'must be > 0');
const nonNegative = z.number().min(0, 'must be >= 0');
const count = (min: number) => z.number().int('must be a whole number').min(min, `must be >= ${min}`);
const oneOf = (...v: [string, ...string[]]) => z.enum(v, { error: `must be one of ${v.join(', ')}` });
const timeframe = z.string().refine(isTimeframe, 'must be a timeframe: 1m, 5m, 15m, 1h, 4h, 1d, ...');
const time = z.union([z.string().min(1), z.number().int().min(0)], {
  error: 'must be an ISO date/time (2024-01-01) or epoch ms',
});

const s = (rule?: z.ZodType, def?: string): KeySpec => ({
  kind: 'string',
  ...(rule ? { rule } : {}),
  ...(def !== undefined ? { default: def } : {}),
});
const n = (rule: z.ZodType, def?: number): KeySpec => ({
  kind: 'number',
  rule,
  ...(def !== undefined ? { default: def } : {}),
});
const b = (def = false): KeySpec => ({ kind: 'boolean', default: def });
const p = (): KeySpec => ({ kind: 'path' });
const pairs: KeySpec = { kind: 'pairs' };
const symbols: KeySpec = {
  kind: 'list',
  rule: z.string().regex(MARKET_SYMBOL, 'must look like BTC/USDT'),
};

/** The risk flags (RISK_FLAGS): the same keys as the file's `risk:`, `sizing:` and `exits:` maps. */
const EXIT_KEYS = ['stop-loss', 'take-profit', 'trailing', 'break-even', 'time-exit', 'roi', 'atr-period'] as const;
const RISK: Record<string, KeySpec> = {
  risk: pairs,
  sizing: pairs,
  ...Object.fromEntries(EXIT_KEYS.map((k) => [k, k === 'atr-period' ? n(count(1), 14) : s()])),
};

/** The futures flags (FUTURES_FLAGS): `market` is spot or futures there. */
const FUTURES: Record<string, KeySpec> = {
  market: s(oneOf('spot', 'futures'), 'spot'),
  leverage: n(z.number().min(1, 'must be >= 1'), 1),
  margin: s(oneOf('isolated', 'cross'), 'cross'),
  'position-mode': s(oneOf('one-way', 'hedge'), 'one-way'),
  funding: p(),
  'funding-rate': n(z.number()),
  mark: p(),
};

const BOT: Record<string, KeySpec> = {
  strategy: s(z.string().min(1)),
  param: pairs,
  symbol: symbols,
  'max-open-trades': n(count(1)),
  'bot-id': s(),
  store: s(z.string().min(1), 'sqlite:.keel/keel.db'),
  'store-sync': s(oneOf('full', 'normal'), 'full'),
  exchange: s(z.string().min(1), 'binance'),
  'exchange-url': s(z.string().url('must be a URL, e.g. http://127.0.0.1:8900')),
  'on-shutdown': s(oneOf('cancel', 'keep'), 'cancel'),
  flatten: b(),
  'max-signal-age': s(undefined, '1'),
  'catch-up': s(oneOf('none', 'last'), 'none'),
  'warmup-bars': n(count(0).max(1000, "must be <= 1000 (one request of the exchange's candles)"), 500),
  'log-format': s(oneOf('text', 'json'), 'text'),
  ...RISK,
  ...FUTURES,
};

/**
 * Each section's settings: the command's flags, less the ones that must be typed each time
 * (`--confirm-live`, `--reconfigure`) or are one-off (`--help`).
 */
export const SETTINGS: Readonly<Record<Section, Readonly<Record<string, KeySpec>>>> = {
  backtest: {
    strategy: s(z.string().min(1)),
    param: pairs,
    data: { kind: 'paths' },
    symbol: symbols,
    timeframe: s(timeframe),
    cash: n(positive, 10_000),
    fee: n(fraction01, 0.001),
    'maker-fee': n(fraction01),
    'slippage-bps': n(
      nonNegative.lt(MAX_SLIPPAGE_BPS, `must be below ${MAX_SLIPPAGE_BPS} (100 % would sell at a price of 0)`),
      0,
    ),
    participation: n(z.number().gt(0, 'must be > 0').max(1, 'must be <= 1')),
    'latency-bars': n(count(1), 1),
    from: s(time),
    to: s(time),
    report: p(),
    json: b(),
    progress: b(),
    'max-open-trades': n(count(1)),
    exchange: s(z.string().min(1), 'binance'),
    'data-dir': { kind: 'path', default: './.keel/data' },
    map: s(),
    'time-is': s(oneOf('open', 'close')),
    'allow-bad-data': b(),
    store: s(z.string().min(1), 'sqlite:.keel/keel.db'),
    'no-save': b(),
    save: b(),
    ...RISK,
    ...FUTURES,
  },
  paper: {
    ...BOT,
    // Unset: a replay's own timeframe, else 1m.
    timeframe: s(timeframe),
    replay: { kind: 'paths' },
    'replay-delay-ms': n(nonNegative, 0),
    'allow-bad-data': b(),
    cash: n(positive, 10_000),
    fee: n(fraction01, 0.001),
  },
  live: {
    ...BOT,
    timeframe: s(timeframe, '1m'),
    keys: s(z.string().min(1)),
    clock: s(oneOf('local', 'exchange'), 'local'),
    'unknown-orders': s(oneOf('flag', 'adopt', 'cancel'), 'flag'),
  },
  bots: {
    store: { ...s(z.string().min(1), 'sqlite:.keel/keel.db'), from: ['live', 'paper'] },
  },
  backtests: {
    store: { ...s(z.string().min(1), 'sqlite:.keel/keel.db'), from: ['backtest'] },
  },
  data: {
    'data-dir': { kind: 'path', default: './.keel/data' },
    exchange: s(z.string().min(1), 'binance'),
    market: s(oneOf('spot', 'usdm', 'coinm'), 'spot'),
    symbol: s(z.string().min(1)),
    timeframe: s(timeframe, '1m'),
    source: s(oneOf('ccxt', 'archive'), 'ccxt'),
    failover: s(),
    'ccxt-config': p(),
    'base-url': s(z.string().url('must be a URL')),
    'min-coverage': n(z.number().min(0, 'must be >= 0').max(1, 'must be <= 1'), 0),
    since: s(time),
    until: s(time),
    from: s(time),
    to: s(time),
    fill: s(oneOf('none', 'flat-previous-close'), 'none'),
    'allow-bad-data': b(),
    map: s(),
    'time-is': s(oneOf('open', 'close')),
    stored: b(),
    format: s(oneOf('csv', 'json'), 'csv'),
    out: p(),
    json: b(),
    progress: b(),
  },
};

/** Top-level keys: shared by every section that has the flag. */
const TOP = ['strategy', 'params', 'risk', 'sizing', 'exits'] as const;

/** A parsed, validated configuration file. */
export interface ConfigFile {
  readonly path: string;
  /** As read (maps are plain objects); only keys SETTINGS knows. */
  readonly data: Readonly<Record<string, unknown>>;
  /** The line of a key path (`backtest.fee`, `params.fast`), when the file has it. */
  lineOf(keyPath: readonly (string | number)[]): number | undefined;
}

/**
 * Reads and validates a configuration file. Every error names the file and line, the setting
 * (`backtest.fee`) and the rule; an unknown key gets the closest known one suggested.
 */
export async function readConfigFile(
  file: string,
  opts: {
    text?: string;
    display?: string;
    suggest?: (name: string, names: readonly string[]) => string | undefined;
  } = {},
): Promise<ConfigFile> {
  // Loaded here only: a command run without a configuration file never loads the YAML parser.
  const { isMap, isScalar, LineCounter, parseDocument } = await import('yaml');
  const shown = opts.display ?? file;
  const counter = new LineCounter();
  const doc = parseDocument(opts.text ?? readFileSync(file, 'utf8'), { lineCounter: counter, uniqueKeys: true });
  const lineAt = (offset: number | undefined) => (offset === undefined ? undefined : counter.linePos(offset).line);
  const firstError = doc.errors[0];
  if (firstError)
    throw new ConfigError(
      `${shown}:${lineAt(firstError.pos[0]) ?? 1}`,
      'yaml',
      (firstError.message.split('\n')[0] as string).replace(/ at line \d+, column \d+:?$/, ''),
    );
  const lineOf = (keyPath: readonly (string | number)[]): number | undefined => {
    // The key's own line (a map's value starts on the next line).
    const parent = keyPath.length > 1 ? doc.getIn(keyPath.slice(0, -1), true) : doc.contents;
    if (isMap(parent)) {
      const pair = parent.items.find((i) => isScalar(i.key) && String(i.key.value) === String(keyPath.at(-1)));
      if (pair && isScalar(pair.key)) return lineAt(pair.key.range?.[0]);
    }
    const node = doc.getIn(keyPath, true) as { range?: [number, number, number] } | undefined;
    return lineAt(node?.range?.[0]);
  };
  const fail = (keyPath: readonly (string | number)[], rule: string): never => {
    throw new ConfigError(`${shown}:${lineOf(keyPath) ?? 1}`, keyPath.join('.'), rule);
  };
  const data = doc.toJS() as unknown;
  if (data === null || data === undefined) return { path: file, data: {}, lineOf };
  if (!isPlainObject(data)) return fail([], 'the file must be a map of settings (backtest:, paper:, strategy:, ...)');
  const unknown = (keyPath: (string | number)[], names: readonly string[]) => {
    const name = String(keyPath.at(-1));
    const guess = opts.suggest?.(name, names);
    return fail(keyPath, `unknown setting${guess ? ` (did you mean ${guess}?)` : ''}; known: ${names.join(', ')}`);
  };
  for (const [k, v] of Object.entries(data)) {
    if ((SECTIONS as readonly string[]).includes(k)) {
      if (v === null) continue;
      if (!isPlainObject(v)) fail([k], `must be a map of ${k} settings (the flags of keel ${k})`);
      const specs = SETTINGS[k as Section];
      for (const [key, value] of Object.entries(v as Record<string, unknown>)) {
        const name = key === 'params' ? 'param' : key;
        const spec = specs[name];
        if (!spec || key === 'param')
          unknown(
            [k, key],
            Object.keys(specs).map((x) => (x === 'param' ? 'params' : x)),
          );
        else checkValue(spec, value, [k, key], fail);
      }
    } else if ((TOP as readonly string[]).includes(k)) {
      if (k === 'strategy') checkValue(SETTINGS.backtest.strategy as KeySpec, v, [k], fail);
      else if (k === 'exits') {
        if (!isPlainObject(v)) fail([k], 'must be a map: stop-loss, take-profit, trailing, ... (docs/risk.md)');
        for (const [key, value] of Object.entries(v as Record<string, unknown>))
          if (!(EXIT_KEYS as readonly string[]).includes(key)) unknown([k, key], EXIT_KEYS);
          else checkValue(RISK[key] as KeySpec, value, [k, key], fail);
      } else checkValue(pairs, v, [k], fail);
    } else unknown([k], [...TOP, ...SECTIONS]);
  }
  const config: ConfigFile = { path: file, data, lineOf };
  // The risk maps as a whole, by the one risk parser: the rule a value breaks, at its line.
  for (const section of SECTIONS) {
    if (!('risk' in SETTINGS[section])) continue;
    const input = riskInput(config, section);
    const r = parseRiskConfig(input);
    if (!r.ok) {
      const at = riskKeyPath(config, section, r.error.key);
      throw new ConfigError(
        `${shown}:${(at && lineOf(at)) ?? 1}`,
        at ? at.join('.') : `${section} risk`,
        r.error.message,
      );
    }
  }
  return config;
}

function checkValue(
  spec: KeySpec,
  value: unknown,
  keyPath: readonly (string | number)[],
  fail: (keyPath: readonly (string | number)[], rule: string) => never,
): void {
  const got = `got ${JSON.stringify(value)}`;
  switch (spec.kind) {
    case 'pairs': {
      if (!isPlainObject(value)) fail(keyPath, `must be a map of name: value, ${got}`);
      // Risk values may be a list (symbols) or a table; a strategy parameter is one value.
      const listsAllowed = keyPath.at(-1) !== 'params';
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        const scalar = ['string', 'number', 'boolean'].includes(typeof v);
        const list = Array.isArray(v) && v.every((x) => typeof x === 'string');
        const table = isPlainObject(v) && Object.values(v).every((x) => typeof x === 'number' || typeof x === 'string');
        if (!(scalar || ((list || table) && listsAllowed)))
          fail([...keyPath, k], `must be a number, a string or true/false, got ${JSON.stringify(v)}`);
      }
      return;
    }
    case 'boolean':
      if (typeof value !== 'boolean') fail(keyPath, `must be true or false, ${got}`);
      return;
    case 'number':
      if (typeof value !== 'number') fail(keyPath, `must be a number, ${got}`);
      break;
    case 'path':
      if (typeof value !== 'string' || value === '') fail(keyPath, `must be a path, ${got}`);
      return;
    case 'paths':
      if (
        !(typeof value === 'string' && value !== '') &&
        !(Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === 'string' && x !== ''))
      )
        fail(keyPath, `must be a path or a list of paths, ${got}`);
      return;
    case 'list': {
      const items = Array.isArray(value) ? value : typeof value === 'string' ? value.split(',') : undefined;
      if (!items || items.length === 0 || !items.every((x) => typeof x === 'string'))
        fail(keyPath, `must be a value or a list of values, ${got}`);
      for (const item of items as string[]) {
        const r = spec.rule?.safeParse(item.trim());
        if (r && !r.success) fail(keyPath, `${r.error.issues[0]?.message ?? 'invalid'}, got ${JSON.stringify(item)}`);
      }
      return;
    }
    case 'string':
      // roi takes a table: { 0: 0.05, 60: 0.02 } as in docs/risk.md.
      if (keyPath.at(-1) === 'roi' && isPlainObject(value)) return;
      if (typeof value !== 'string' && typeof value !== 'number') fail(keyPath, `must be a text value, ${got}`);
      break;
  }
  if (!spec.rule) return;
  const r = spec.rule.safeParse(
    spec.kind === 'string' && typeof value === 'number' && !isTimeRule(spec) ? String(value) : value,
  );
  if (!r.success) fail(keyPath, `${r.error.issues[0]?.message ?? 'invalid'}, ${got}`);
}

function isTimeRule(spec: KeySpec): boolean {
  return spec.rule === time;
}

/** The file's risk maps for a section: the top level's, then the section's own, key by key. */
function riskInput(config: ConfigFile, section: Section): RiskInput {
  const d = config.data;
  const sec = (d[section] ?? {}) as Record<string, unknown>;
  const merge = (a: unknown, b: unknown) => ({ ...(a as object | undefined), ...(b as object | undefined) });
  const exits: Record<string, unknown> = { ...(d.exits as object | undefined) };
  for (const k of EXIT_KEYS) if (sec[k] !== undefined) exits[k] = sec[k];
  const sizing = sec.sizing ?? d.sizing;
  return {
    risk: merge(d.risk, sec.risk),
    ...(sizing !== undefined ? { sizing: sizing as Record<string, unknown> } : {}),
    exits,
  };
}

/** Where in the file a risk key is set (the section's own setting first). */
function riskKeyPath(config: ConfigFile, section: Section, key: string): string[] | undefined {
  const d = config.data;
  const sec = (d[section] ?? {}) as Record<string, Record<string, unknown> | undefined>;
  for (const [map, at] of [
    [sec.risk, [section, 'risk', key]],
    [sec.sizing, [section, 'sizing', key]],
    [sec as Record<string, unknown>, [section, key]],
    [d.risk, ['risk', key]],
    [d.sizing, ['sizing', key]],
    [d.exits, ['exits', key]],
  ] as const) {
    if (isPlainObject(map) && (map as Record<string, unknown>)[key] !== undefined) return [...at];
  }
  return undefined;
}

/** An environment variable's name for a flag: `maker-fee` -> `KEEL_MAKER_FEE`. */
export function envName(flag: string): string {
  return `KEEL_${flag.toUpperCase().replaceAll('-', '_')}`;
}

/** The flags given on a command line, by name; for repeatable ones (`--param`), the keys given. */
export function flagsGiven(argv: readonly string[], section: Section): Map<string, Set<string> | true> {
  const specs = SETTINGS[section];
  const out = new Map<string, Set<string> | true>();
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i] as string;
    if (t === '--') break;
    if (!t.startsWith('--')) continue;
    const eq = t.indexOf('=');
    const name = t.slice(2, eq < 0 ? undefined : eq);
    const spec = specs[name];
    if (!spec) continue;
    if (spec.kind === 'boolean') {
      out.set(name, true);
      continue;
    }
    const value = eq < 0 ? argv[++i] : t.slice(eq + 1);
    if (spec.kind !== 'pairs') {
      out.set(name, true);
      continue;
    }
    const keys = out.get(name);
    const set = keys instanceof Set ? keys : new Set<string>();
    const k = value?.split('=')[0]?.trim();
    if (k) set.add(k);
    out.set(name, set);
  }
  return out;
}

/** What `resolveSettings` needs: the section, the file (if any), the environment and the flags. */
export interface SettingsInput {
  readonly section: Section;
  readonly file?: ConfigFile;
  /** The file as the user knows it, for origins (`keel.yaml`). */
  readonly fileDisplay?: string;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The command line after the command's name: its flags win over everything. */
  readonly argv?: readonly string[];
}

/**
 * The effective settings of a section, each with its origin: every key of the section (a default,
 * or unset), then the `param.*`, `risk.*` and `sizing.*` entries that are set. Values from the
 * environment are validated by the same rules as the file's (`KEEL_FEE=2` is an error).
 */
export function resolveSettings(input: SettingsInput): Setting[] {
  const { section, file } = input;
  const specs = SETTINGS[section];
  const env = input.env ?? {};
  const given = flagsGiven(input.argv ?? [], section);
  const data = file?.data ?? {};
  const sec = (data[section] ?? {}) as Record<string, unknown>;
  const shown = input.fileDisplay ?? file?.path ?? CONFIG_FILE_NAME;
  const fromFile = (keyPath: string[]): Origin => ({
    kind: 'file',
    file: shown,
    line: file?.lineOf(keyPath),
    key: keyPath.join('.'),
  });
  const out: Setting[] = [];
  for (const [key, spec] of Object.entries(specs)) {
    if (spec.kind === 'pairs') {
      const top = key === 'param' ? data.params : data[key];
      const own = key === 'param' ? sec.params : sec[key];
      const flagged = given.get(key);
      const layers: [unknown, string[]][] = [
        [top, [key === 'param' ? 'params' : key]],
        [own, [section, key === 'param' ? 'params' : key]],
      ];
      // Sizing is one model with its options: the highest layer that gives it replaces the rest.
      const sizingLayers = key === 'sizing' ? layers.filter(([m]) => m !== undefined).slice(-1) : layers;
      const merged = new Map<string, Setting>();
      for (const [map, at] of sizingLayers) {
        if (!isPlainObject(map)) continue;
        for (const [k, v] of Object.entries(map as Record<string, unknown>))
          merged.set(k, { key: `${key}.${k}`, value: pairValue(v), origin: fromFile([...at, k]) });
      }
      for (const [k, st] of merged) {
        if (flagged === true || (flagged instanceof Set && (key === 'sizing' || flagged.has(k)))) continue;
        out.push(st);
      }
      if (flagged instanceof Set)
        for (const k of flagged) out.push({ key: `${key}.${k}`, value: undefined, origin: { kind: 'flag' } });
      continue;
    }
    if (given.has(key)) {
      out.push({ key, value: undefined, origin: { kind: 'flag' } });
      continue;
    }
    const name = envName(key);
    const ev = env[name];
    if (ev !== undefined && ev !== '') {
      out.push({ key, value: envValue(spec, ev, name, key), origin: { kind: 'env', name } });
      continue;
    }
    const exitTop = (EXIT_KEYS as readonly string[]).includes(key)
      ? (data.exits as Record<string, unknown> | undefined)?.[key]
      : undefined;
    const borrowed =
      sec[key] === undefined && spec.from ? fromSections(file, shown, section, key, spec.from) : undefined;
    const topValue = key === 'strategy' ? data.strategy : (borrowed?.value ?? exitTop);
    const topPath = key === 'strategy' ? ['strategy'] : (borrowed?.at ?? ['exits', key]);
    const value = sec[key] !== undefined ? sec[key] : topValue;
    if (value !== undefined) {
      out.push({
        key,
        value:
          key === 'roi' || spec.kind === 'list'
            ? pairValue(value)
            : spec.kind === 'paths' && typeof value === 'string'
              ? [value]
              : (value as Setting['value']),
        origin: fromFile(sec[key] !== undefined ? [section, key] : topPath),
      });
      continue;
    }
    out.push({ key, value: spec.default, origin: { kind: 'default' } });
  }
  return out;
}

/** Who reads a section that takes settings from others (named when those disagree). */
const READERS: Partial<Record<Section, string>> = {
  bots: 'commands that read every bot (keel bots, keel portfolio)',
};

/** The one value the file's `sections` give `key` (see KeySpec.from), with where; several differing refuse the file. */
function fromSections(
  file: ConfigFile | undefined,
  shown: string,
  target: Section,
  key: string,
  sections: readonly Section[],
): { value: unknown; at: string[] } | undefined {
  const found: { value: unknown; at: string[] }[] = [];
  for (const section of sections) {
    const v = (file?.data[section] as Record<string, unknown> | undefined)?.[key];
    if (v !== undefined) found.push({ value: v, at: [section, key] });
  }
  const first = found[0];
  const other = found.find((f) => f.value !== first?.value);
  if (first !== undefined && other !== undefined)
    throw new ConfigError(
      `${shown}:${file?.lineOf(other.at) ?? 1}`,
      other.at.join('.'),
      `${first.at.join('.')} is ${JSON.stringify(first.value)} and ${other.at.join('.')} is ${JSON.stringify(other.value)}: ${READERS[target] ?? `keel ${target}`} cannot tell which ${key} is meant; set ${target}.${key}, or give --${key}`,
    );
  return first;
}

function envValue(spec: KeySpec, raw: string, name: string, key: string): string | number | boolean {
  const fail = (rule: string): never => {
    throw new ConfigError(name, key, `${rule}, got "${raw}"`);
  };
  let v: string | number | boolean = raw;
  if (spec.kind === 'boolean') {
    const t = raw.toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(t)) v = true;
    else if (['0', 'false', 'no', 'off'].includes(t)) v = false;
    else fail('must be true or false (1/0, yes/no)');
  } else if (spec.kind === 'number') {
    v = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(v)) fail('must be a number');
  } else if (spec.kind === 'list') {
    for (const item of raw.split(',')) {
      const r = spec.rule?.safeParse(item.trim());
      if (r && !r.success) fail(r.error.issues[0]?.message ?? 'invalid');
    }
    return raw;
  }
  if (spec.rule) {
    const r = spec.rule.safeParse(v);
    if (!r.success) fail(r.error.issues[0]?.message ?? 'invalid');
  }
  return v;
}

/** A map entry as the flag's `key=value` text: lists joined by commas, a roi table as `0=0.05,60=0.02`. */
function pairValue(v: unknown): string | number | boolean {
  if (Array.isArray(v)) return v.join(',');
  if (isPlainObject(v))
    return Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${k}=${String(x)}`)
      .join(',');
  return v as string | number | boolean;
}

/** Switches that undo each other. */
const OPPOSITE_SWITCHES: Readonly<Record<string, string>> = { save: 'no-save', 'no-save': 'save' };

/**
 * The command line a command runs with: `argv`, plus a flag for each setting the file or the
 * environment gives and the command line does not. The command parses and checks its flags as
 * always, so the file and the flags can never mean different things.
 */
export function settingsArgv(settings: readonly Setting[], argv: readonly string[]): string[] {
  const extra: string[] = [];
  const rank = (key: string): number => {
    if (argv.includes(`--${key}`)) return 3;
    const st = settings.find((x) => x.key === key);
    if (st === undefined || st.value !== true) return 0;
    return st.origin.kind === 'env' ? 2 : st.origin.kind === 'file' ? 1 : 0;
  };
  for (const st of settings) {
    if (st.origin.kind !== 'file' && st.origin.kind !== 'env') continue;
    if (st.value === undefined || st.value === false) continue;
    // A switch and its opposite (`save` / `no-save`): the higher layer's wins, as for any setting
    // (a file's `save: true` gives way to `--no-save`); both in one layer stay a usage error.
    const opposite = OPPOSITE_SWITCHES[st.key];
    if (opposite !== undefined && rank(opposite) > rank(st.key)) continue;
    const dot = st.key.indexOf('.');
    if (dot > 0) extra.push(`--${st.key.slice(0, dot)}`, `${st.key.slice(dot + 1)}=${String(st.value)}`);
    else if (Array.isArray(st.value)) for (const v of st.value) extra.push(`--${st.key}`, v);
    else if (st.value === true) extra.push(`--${st.key}`);
    else extra.push(`--${st.key}`, String(st.value));
  }
  const end = argv.indexOf('--');
  return end < 0 ? [...argv, ...extra] : [...argv.slice(0, end), ...extra, ...argv.slice(end)];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
