import { parseDuration } from '../model/duration.ts';
import { MARKET_SYMBOL } from '../model/instrument.ts';
import type {
  ExitDistance,
  ExitSpec,
  HaltAction,
  HaltUntil,
  RiskConfig,
  RiskRuleId,
  RiskRuleSpec,
  RoiStep,
  SizingSpec,
} from './config.ts';

/**
 * The one parser of risk settings, for every command (`--risk`, `--sizing`, `--stop-loss`, ...)
 * and for the config file's `risk:`, `sizing:` and `exits:` maps: the same keys and the same
 * value grammar (docs/risk.md). A value is a string in that grammar, or, from a config file, a
 * number where the grammar is a number (and a list for `symbols`).
 */
export interface RiskInput {
  /** `--risk key=value` entries, or a config file's `risk:` map. */
  readonly risk?: readonly string[] | Readonly<Record<string, unknown>>;
  /** `--sizing model=value` entries (one model, then its options), or a `sizing:` map. */
  readonly sizing?: readonly string[] | Readonly<Record<string, unknown>>;
  /**
   * Exits by their flag name without dashes (`stop-loss`, `take-profit`, `trailing`, `break-even`,
   * `time-exit`, `roi`, `atr-period`): the CLI's flags, or a config file's `exits:` map.
   */
  readonly exits?: Readonly<Record<string, unknown>>;
}

/** Why a setting was refused: the key, the value as given, and the form the key takes. */
export interface RiskConfigIssue {
  readonly key: string;
  readonly value: string;
  /** The expected form, e.g. `<fraction> in (0, 1), e.g. 0.2 or 20%`. */
  readonly rule: string;
  readonly message: string;
}

export type RiskParseResult =
  | { readonly ok: true; readonly config: RiskConfig }
  | { readonly ok: false; readonly error: RiskConfigIssue };

class Fail extends Error {}

const FRACTION = '<fraction> (0.2 or 20%)';
const HALT_TAIL = 'then optional :freeze or :flatten, and :resume (default) or :<duration>';

/** The form each key takes, quoted in every error about that key. */
export const RISK_RULE_FORMS: Readonly<Record<RiskRuleId, string>> = {
  'max-position': `${FRACTION} of equity, > 0 (the notional of one symbol's position)`,
  'max-position-size': '<amount> > 0 in base units (contracts), e.g. 0.5',
  'max-notional': '<amount> > 0 in the account currency, e.g. 5000',
  'max-gross': '<amount> > 0 in the account currency, e.g. 20000',
  'max-net': '<amount> > 0 in the account currency, e.g. 10000',
  'max-leverage': '<ratio> > 0 of gross exposure to equity, e.g. 1 or 3',
  'max-open-orders': '<integer> >= 1, e.g. 4',
  'max-open-trades': '<integer> >= 1 markets open at once, e.g. 3',
  'order-rate': '<count>/<duration>, e.g. 10/1m',
  'cash-reserve': `${FRACTION} of equity in [0, 1)`,
  'min-cash': '<amount> >= 0 in the account currency, e.g. 500',
  symbols: 'a comma-separated list of markets, e.g. BTC/USDT,ETH/USDT',
  sides: 'long, short or both',
  'daily-loss': `${FRACTION} in (0, 1), then optional :start=<duration> after 00:00 UTC, :freeze or :flatten, and :next-day (default), :resume or :<duration>`,
  'max-drawdown': `${FRACTION} in (0, 1), ${HALT_TAIL}`,
  'stoploss-guard': '<count>/<window>:<lock>, e.g. 3/6h:12h',
  cooldown: '<duration>, e.g. 30m',
  'low-profit': '<trades>/<window>:<lock>[:min=<fraction>], e.g. 3/1d:12h or 3/1d:12h:min=0.01',
  'max-losses': `<count> >= 1 losing trades in a row, ${HALT_TAIL}`,
};

export const SIZING_FORMS = {
  quantity: 'quantity=<amount> > 0 in base units',
  notional: 'notional=<amount> > 0 in the account currency',
  percent: `percent=${FRACTION} of equity, > 0`,
  risk: `risk=${FRACTION} of equity in (0, 1) lost at the stop (needs --stop-loss)`,
  volatility: 'volatility=<annualised volatility target> > 0, e.g. 0.5 [lookback=<bars>, default 30]',
  kelly:
    'kelly=<multiplier> in (0, 1] of the Kelly fraction [cap=<fraction>, default 0.25] [min-trades=<n>, default 20] [fallback=<fraction>, default 0.05]',
} as const;

const SIZING_OPTIONS: Readonly<Record<string, readonly (keyof typeof SIZING_FORMS)[]>> = {
  lookback: ['volatility'],
  cap: ['kelly'],
  'min-trades': ['kelly'],
  fallback: ['kelly'],
};

export const EXIT_FORMS = {
  'stop-loss': `${FRACTION} of the entry price in (0, 1), <k>atr (k times the ATR at entry, e.g. 2atr), or @<price>`,
  'take-profit': `${FRACTION} of the entry price, > 0, <k>atr, or @<price>`,
  trailing: `${FRACTION} in (0, 1) or <k>atr`,
  'break-even': '<trigger fraction>[:<offset fraction>], e.g. 1% or 1%:0.1%',
  'time-exit': '<duration>, e.g. 4h',
  roi: '"<minutes>=<fraction>,...", e.g. "0=0.05,60=0.02,180=0"',
  'atr-period': '<integer> >= 1 (default 14)',
} as const;

type ExitKey = keyof typeof EXIT_FORMS;

function text(v: unknown): string {
  if (typeof v === 'string') return v.trim();
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map(text).join(',');
  throw new Fail(`expected a value, got ${v === null ? 'null' : typeof v}`);
}

function number(s: string): number {
  const x = /^[+-]?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?$/i.test(s) ? Number(s) : Number.NaN;
  if (!Number.isFinite(x)) throw new Fail(`"${s}" is not a number`);
  return x;
}

/** `0.2` or `20%`. */
function fraction(s: string): number {
  return s.endsWith('%') ? number(s.slice(0, -1).trim()) / 100 : number(s);
}

function positive(x: number, what = 'the value'): number {
  if (!(x > 0)) throw new Fail(`${what} must be > 0, got ${x}`);
  return x;
}

function below1(x: number, what = 'the value'): number {
  if (!(x > 0 && x < 1)) throw new Fail(`${what} must be in (0, 1), got ${x}`);
  return x;
}

function integer(s: string, min: number, what = 'the value'): number {
  const x = number(s);
  if (!Number.isInteger(x) || x < min) throw new Fail(`${what} must be an integer >= ${min}, got ${s}`);
  return x;
}

function duration(s: string, what = 'the duration'): number {
  const ms = parseDuration(s);
  if (ms === null || ms <= 0) throw new Fail(`${what} "${s}" is not a duration like 30m, 6h or 1d`);
  return ms;
}

/** `<count>/<duration>`. */
function perWindow(s: string): { count: number; windowMs: number } {
  const [c, w, ...rest] = s.split('/');
  if (c === undefined || w === undefined || rest.length > 0) throw new Fail(`"${s}" is not <count>/<duration>`);
  return { count: integer(c.trim(), 1, 'the count'), windowMs: duration(w.trim(), 'the window') };
}

/** The halt options after the value: `:freeze|:flatten`, `:resume|:next-day|:<duration>`. */
function haltTail(
  tokens: readonly string[],
  defaults: { action: HaltAction; until: HaltUntil },
  allowNextDay: boolean,
  named: Record<string, (v: string) => void> = {},
): { action: HaltAction; until: HaltUntil } {
  let { action, until } = defaults;
  let seenAction = false;
  let seenUntil = false;
  for (const raw of tokens) {
    const t = raw.trim();
    const eq = t.indexOf('=');
    if (eq > 0) {
      const f = named[t.slice(0, eq)];
      if (!f) throw new Fail(`unknown option "${t.slice(0, eq)}"`);
      f(t.slice(eq + 1).trim());
      continue;
    }
    if (t === 'freeze' || t === 'flatten') {
      if (seenAction) throw new Fail('the action is given twice');
      seenAction = true;
      action = t;
      continue;
    }
    if (seenUntil) throw new Fail(`"${t}": how long the halt lasts is given twice`);
    seenUntil = true;
    if (t === 'resume') until = { kind: 'resume' };
    else if (t === 'next-day' && allowNextDay) until = { kind: 'next-day' };
    else {
      const ms = parseDuration(t);
      if (ms === null || ms <= 0)
        throw new Fail(
          `"${t}" is neither freeze, flatten, resume${allowNextDay ? ', next-day' : ''} nor a duration like 12h`,
        );
      until = { kind: 'duration', ms };
    }
  }
  return { action, until };
}

function parseRule(key: string, value: unknown): RiskRuleSpec | null {
  const s = text(value);
  if (s === '') throw new Fail('the value is empty');
  const [head = '', ...tail] = s.split(':');
  const noTail = () => {
    if (tail.length > 0) throw new Fail(`unexpected ":${tail.join(':')}"`);
  };
  switch (key as RiskRuleId) {
    case 'max-position':
      noTail();
      return { rule: 'max-position', limit: positive(fraction(head)) };
    case 'max-position-size':
    case 'max-notional':
    case 'max-gross':
    case 'max-net':
    case 'max-leverage':
      noTail();
      return { rule: key as 'max-notional', limit: positive(number(head)) };
    case 'max-open-orders':
    case 'max-open-trades':
      noTail();
      return { rule: key as 'max-open-orders', limit: integer(head, 1) };
    case 'order-rate': {
      noTail();
      const { count, windowMs } = perWindow(head);
      return { rule: 'order-rate', limit: count, windowMs };
    }
    case 'cash-reserve': {
      noTail();
      const x = fraction(head);
      if (!(x >= 0 && x < 1)) throw new Fail(`the reserve must be in [0, 1), got ${x}`);
      return { rule: 'cash-reserve', limit: x };
    }
    case 'min-cash': {
      noTail();
      const x = number(head);
      if (!(x >= 0)) throw new Fail(`the amount must be >= 0, got ${x}`);
      return { rule: 'min-cash', limit: x };
    }
    case 'symbols': {
      const list = s
        .split(',')
        .map((x) => x.trim().toUpperCase())
        .filter((x) => x !== '');
      if (list.length === 0) throw new Fail('the list is empty');
      for (const m of list) if (!MARKET_SYMBOL.test(m)) throw new Fail(`"${m}" is not a market like BTC/USDT`);
      return { rule: 'symbols', allowed: [...new Set(list)].sort() };
    }
    case 'sides':
      noTail();
      if (head === 'both') return null;
      if (head === 'long' || head === 'short') return { rule: 'sides', allowed: head };
      throw new Fail(`"${head}" is not long, short or both`);
    case 'daily-loss': {
      const limit = below1(fraction(head), 'the loss');
      let dayStartMs = 0;
      const h = haltTail(tail, { action: 'freeze', until: { kind: 'next-day' } }, true, {
        start: (v) => {
          const ms = parseDuration(v);
          if (ms === null || ms >= 86_400_000) throw new Fail(`start=${v}: not a duration under 24h, e.g. 8h`);
          dayStartMs = ms;
        },
      });
      return { rule: 'daily-loss', limit, dayStartMs, ...h };
    }
    case 'max-drawdown': {
      const limit = below1(fraction(head), 'the drawdown');
      return {
        rule: 'max-drawdown',
        limit,
        ...haltTail(tail, { action: 'flatten', until: { kind: 'resume' } }, false),
      };
    }
    case 'stoploss-guard': {
      if (tail.length !== 1) throw new Fail(`"${s}" is not <count>/<window>:<lock>`);
      const { count, windowMs } = perWindow(head);
      return { rule: 'stoploss-guard', count, windowMs, lockMs: duration(tail[0] as string, 'the lock') };
    }
    case 'cooldown':
      noTail();
      return { rule: 'cooldown', lockMs: duration(head) };
    case 'low-profit': {
      if (tail.length < 1 || tail.length > 2) throw new Fail(`"${s}" is not <trades>/<window>:<lock>[:min=<fraction>]`);
      const { count, windowMs } = perWindow(head);
      let minProfit = 0;
      if (tail.length === 2) {
        const m = /^min=(.+)$/.exec((tail[1] as string).trim());
        if (!m) throw new Fail(`"${tail[1]}" is not min=<fraction>`);
        minProfit = fraction((m[1] as string).trim());
      }
      return {
        rule: 'low-profit',
        trades: count,
        windowMs,
        minProfit,
        lockMs: duration(tail[0] as string, 'the lock'),
      };
    }
    case 'max-losses': {
      const limit = integer(head, 1);
      return { rule: 'max-losses', limit, ...haltTail(tail, { action: 'freeze', until: { kind: 'resume' } }, false) };
    }
    default:
      throw new UnknownKey();
  }
}

class UnknownKey extends Error {}

function entries(input: readonly string[] | Readonly<Record<string, unknown>>, flag: string): [string, unknown][] {
  if (!Array.isArray(input)) return Object.entries(input as Record<string, unknown>);
  return (input as readonly string[]).map((p) => {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new Issue(p, p, 'key=value', `--${flag} "${p}": expected key=value, e.g. max-drawdown=0.2`);
    return [p.slice(0, eq).trim(), p.slice(eq + 1).trim()];
  });
}

class Issue extends Error {
  constructor(
    readonly key: string,
    readonly value: string,
    readonly rule: string,
    message: string,
  ) {
    super(message);
  }
}

function safeText(v: unknown): string {
  try {
    return text(v);
  } catch {
    return String(v);
  }
}

/** Runs one key's parser; a failure becomes an Issue naming the key, the value and the form. */
function guarded<T>(key: string, value: unknown, form: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof Fail)
      throw new Issue(key, safeText(value), form, `${key}=${safeText(value)}: ${e.message} (expected ${form})`);
    throw e;
  }
}

function parseRules(input: RiskInput['risk']): RiskRuleSpec[] {
  if (input === undefined) return [];
  const out = new Map<string, RiskRuleSpec>();
  for (const [key, value] of entries(input, 'risk')) {
    const form = RISK_RULE_FORMS[key as RiskRuleId];
    if (form === undefined)
      throw new Issue(
        key,
        safeText(value),
        `one of ${Object.keys(RISK_RULE_FORMS).join(', ')}`,
        `unknown risk rule "${key}" (known: ${Object.keys(RISK_RULE_FORMS).join(', ')})`,
      );
    if (out.has(key)) throw new Issue(key, safeText(value), form, `${key} is given twice: give each rule once`);
    const spec = guarded(key, value, form, () => parseRule(key, value));
    if (spec !== null) out.set(key, spec);
  }
  // A fixed order (the table's), so that equal settings give equal configs whatever the input order.
  const order = Object.keys(RISK_RULE_FORMS);
  return [...out.values()].sort((a, b) => order.indexOf(a.rule) - order.indexOf(b.rule));
}

function distance(s: string, allowPrice: boolean, percentBelow1: boolean): ExitDistance {
  if (s.startsWith('@')) {
    if (!allowPrice) throw new Fail('a price level is not allowed here');
    return { kind: 'price', price: positive(number(s.slice(1).trim()), 'the price') };
  }
  const atr = /^(.+?)\s*atr$/i.exec(s);
  if (atr) return { kind: 'atr', multiple: positive(number((atr[1] as string).trim()), 'the ATR multiple') };
  const f = fraction(s);
  return { kind: 'percent', value: percentBelow1 ? below1(f, 'the distance') : positive(f, 'the distance') };
}

function parseRoi(v: unknown): RoiStep[] {
  const pairs: [string, string][] =
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, text(x)])
      : text(v)
          .split(',')
          .filter((p) => p.trim() !== '')
          .map((p) => {
            const eq = p.indexOf('=');
            if (eq <= 0) throw new Fail(`"${p.trim()}" is not <minutes>=<fraction>`);
            return [p.slice(0, eq).trim(), p.slice(eq + 1).trim()];
          });
  if (pairs.length === 0) throw new Fail('the table is empty');
  const steps = pairs.map(([m, p]) => {
    const minutes = number(m);
    if (!(minutes >= 0)) throw new Fail(`the age ${m} must be >= 0 minutes`);
    const profit = fraction(p);
    if (!(profit > -1)) throw new Fail(`the profit ${p} must be > -1`);
    return { ageMs: Math.round(minutes * 60_000), profit };
  });
  steps.sort((a, b) => a.ageMs - b.ageMs);
  for (let i = 1; i < steps.length; i++)
    if ((steps[i] as RoiStep).ageMs === (steps[i - 1] as RoiStep).ageMs)
      throw new Fail(`the age ${(steps[i] as RoiStep).ageMs / 60_000} minutes is given twice`);
  return steps;
}

function parseExits(input: RiskInput['exits']): ExitSpec | undefined {
  if (input === undefined) return undefined;
  const x: {
    -readonly [K in keyof ExitSpec]: ExitSpec[K];
  } = { atrPeriod: 14 };
  let any = false;
  for (const [key, value] of Object.entries(input)) {
    if (value === undefined) continue;
    const form = EXIT_FORMS[key as ExitKey];
    if (form === undefined)
      throw new Issue(
        key,
        safeText(value),
        `one of ${Object.keys(EXIT_FORMS).join(', ')}`,
        `unknown exit "${key}" (known: ${Object.keys(EXIT_FORMS).join(', ')})`,
      );
    guarded(key, value, form, () => {
      switch (key as ExitKey) {
        case 'stop-loss':
          x.stopLoss = distance(text(value), true, true);
          break;
        case 'take-profit':
          x.takeProfit = distance(text(value), true, false);
          break;
        case 'trailing': {
          const d = distance(text(value), false, true);
          if (d.kind === 'price') throw new Fail('a trailing stop has no fixed price');
          x.trailing = d;
          break;
        }
        case 'break-even': {
          const [t = '', o, ...rest] = text(value).split(':');
          if (rest.length > 0) throw new Fail('too many parts');
          const trigger = positive(fraction(t.trim()), 'the trigger');
          const offset = o === undefined ? 0 : fraction(o.trim());
          if (!(offset >= 0 && offset < trigger)) throw new Fail(`the offset must be in [0, trigger), got ${offset}`);
          x.breakEven = { trigger, offset };
          break;
        }
        case 'time-exit':
          x.timeExitMs = duration(text(value));
          break;
        case 'roi':
          x.roi = parseRoi(value);
          break;
        case 'atr-period':
          x.atrPeriod = integer(text(value), 1);
          return;
      }
      any = true;
    });
  }
  return any ? x : undefined;
}

function parseSizing(input: RiskInput['sizing']): SizingSpec | undefined {
  if (input === undefined) return undefined;
  const list = entries(input, 'sizing');
  if (list.length === 0) return undefined;
  const models = list.filter(([k]) => k in SIZING_FORMS);
  const allForms = Object.values(SIZING_FORMS).join('; ');
  if (models.length !== 1) {
    const [k, v] = models[1] ?? list[0] ?? ['sizing', ''];
    throw new Issue(
      k,
      safeText(v),
      allForms,
      models.length === 0
        ? `sizing: no model among ${list.map(([key]) => key).join(', ')} (models: ${Object.keys(SIZING_FORMS).join(', ')})`
        : `sizing: one model only, got ${models.map(([key]) => key).join(' and ')}`,
    );
  }
  const [model, raw] = models[0] as [keyof typeof SIZING_FORMS, unknown];
  const form = SIZING_FORMS[model];
  const opts = new Map<string, [string, unknown]>();
  for (const [k, v] of list) {
    if (k === model) continue;
    const owners = SIZING_OPTIONS[k];
    if (owners === undefined || !owners.includes(model))
      throw new Issue(k, safeText(v), form, `sizing option "${k}" does not apply to ${model} (expected ${form})`);
    opts.set(k, [k, v]);
  }
  const opt = (k: string, def: number, parse: (s: string) => number): number => {
    const o = opts.get(k);
    return o === undefined ? def : guarded(k, o[1], form, () => parse(text(o[1])));
  };
  return guarded(model, raw, form, (): SizingSpec => {
    const s = text(raw);
    switch (model) {
      case 'quantity':
        return { model, quantity: positive(number(s)) };
      case 'notional':
        return { model, notional: positive(number(s)) };
      case 'percent':
        return { model, fraction: positive(fraction(s)) };
      case 'risk':
        return { model, fraction: below1(fraction(s)) };
      case 'volatility':
        return {
          model,
          target: positive(fraction(s)),
          lookback: opt('lookback', 30, (v) => integer(v, 2, 'lookback')),
        };
      case 'kelly': {
        const multiplier = positive(fraction(s), 'the multiplier');
        if (multiplier > 1) throw new Fail(`the multiplier must be <= 1 (full Kelly), got ${multiplier}`);
        return {
          model,
          multiplier,
          cap: opt('cap', 0.25, (v) => positive(fraction(v), 'cap')),
          minTrades: opt('min-trades', 20, (v) => integer(v, 1, 'min-trades')),
          fallback: opt('fallback', 0.05, (v) => {
            const f = fraction(v);
            if (!(f >= 0)) throw new Fail(`fallback must be >= 0, got ${f}`);
            return f;
          }),
        };
      }
    }
  });
}

/**
 * Parses risk settings into a typed configuration, or returns the first problem with the key,
 * the value and the form that key takes. Equal settings give equal configurations, whatever
 * their order.
 */
export function parseRiskConfig(input: RiskInput): RiskParseResult {
  try {
    const rules = parseRules(input.risk);
    const sizing = parseSizing(input.sizing);
    const exits = parseExits(input.exits);
    if (sizing?.model === 'risk' && exits?.stopLoss === undefined)
      throw new Issue(
        'risk',
        String(sizing.fraction),
        SIZING_FORMS.risk,
        'sizing risk=<fraction> sizes from the distance to the stop: give a stop-loss (e.g. --stop-loss 2% or --stop-loss 2atr)',
      );
    const config: RiskConfig = {
      rules,
      ...(sizing !== undefined ? { sizing } : {}),
      ...(exits !== undefined ? { exits } : {}),
    };
    return { ok: true, config };
  } catch (e) {
    if (e instanceof Issue)
      return { ok: false, error: { key: e.key, value: e.value, rule: e.rule, message: e.message } };
    throw e;
  }
}
