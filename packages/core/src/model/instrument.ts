import type { MarketSymbol } from '../util/brand.ts';

export type MarketKind = 'spot' | 'perpetual';

/**
 * A tradable market with the exchange's filters. Prices and amounts are numbers inside Keel and
 * are rounded to tick and step explicitly at the order boundary (see roundPrice / roundAmount).
 */
export interface Instrument {
  readonly symbol: MarketSymbol;
  readonly base: string;
  readonly quote: string;
  readonly kind: MarketKind;
  /** Smallest price increment. 0 means unrestricted (backtest research mode). */
  readonly tickSize: number;
  /** Smallest amount increment. 0 means unrestricted (fractional sizes, as backtrader). */
  readonly stepSize: number;
  readonly minAmount: number;
  readonly minNotional: number;
  /** Contract multiplier for derivatives; 1 for spot. */
  readonly contractSize: number;
  /** The asset fees and PnL settle in (quote for spot and linear perpetuals). */
  readonly settle: string;
}

export interface InstrumentSpec {
  symbol: string;
  kind?: MarketKind;
  tickSize?: number;
  stepSize?: number;
  minAmount?: number;
  minNotional?: number;
  contractSize?: number;
}

/**
 * A market symbol as Keel writes it: `BASE/QUOTE`, or `BASE/QUOTE:SETTLE` for a perpetual, each
 * part letters and digits (`BTC/USDT`, `1000SHIB/USDT`, `LINK/USDT:USDT`).
 */
export const MARKET_SYMBOL = /^[A-Z0-9]+\/[A-Z0-9]+(:[A-Z0-9]+)?$/i;

/**
 * Why `symbol` is not one market, or undefined when it is. A list (`BTC/USDT,ETH/USDT`) is named
 * as one: taken as one market it would trade under a made-up quote currency (`USDT,ETH`).
 */
export function symbolProblem(symbol: string): string | undefined {
  if (MARKET_SYMBOL.test(symbol)) return undefined;
  if (symbol.includes(','))
    return `"${symbol}" is a list of markets, not one market: give each market on its own (--symbol BTC/USDT,ETH/USDT runs one strategy instance per market)`;
  return `"${symbol}" is not a market: expected BASE/QUOTE (letters and digits), e.g. BTC/USDT, or BASE/QUOTE:SETTLE for a perpetual (BTCUSDT is read as BTC/USDT when a known quote asset ends it: ${QUOTE_ASSETS.join(', ')})`;
}

/**
 * Quote assets a pair written Binance's way (BTCUSDT) can end with. A longer one that ends with a
 * shorter one comes first (FDUSD, BUSD and TUSD before USD), so the split is never in doubt.
 */
export const QUOTE_ASSETS = [
  'USDT',
  'USDC',
  'FDUSD',
  'BUSD',
  'TUSD',
  'BTC',
  'ETH',
  'BNB',
  'EUR',
  'USD',
  'TRY',
] as const;

/** BASE/QUOTE of a pair written without a slash (BTCUSDT -> BTC/USDT), or undefined when no known quote ends it. */
export function splitPair(pair: string): string | undefined {
  const p = pair.toUpperCase();
  if (!/^[A-Z0-9]+$/.test(p)) return undefined;
  for (const q of QUOTE_ASSETS) if (p.length > q.length + 1 && p.endsWith(q)) return `${p.slice(0, -q.length)}/${q}`;
  return undefined;
}

/**
 * One market as a user writes it, in Keel's form: `BTC/USDT`, `BTC/USDT:USDT`, or Binance's
 * `BTCUSDT` when a known quote asset ends it (BTC/USDT); upper case. Every command reads --symbol
 * with it, so one spelling is taken or refused alike everywhere. Throws with `symbolProblem`'s words.
 */
export function parseSymbol(text: string): string {
  const s = text.trim();
  if (MARKET_SYMBOL.test(s)) return s.toUpperCase();
  const split = s.includes('/') ? undefined : splitPair(s);
  if (split !== undefined) return split;
  throw new Error(symbolProblem(s) ?? `"${s}" is not a market`);
}

/**
 * A comma-separated list of markets (`--symbol BTC/USDT,ETH/USDT`), upper case, in order (each
 * read by `parseSymbol`). Throws naming the entry that is not a market, a market given twice, or an
 * empty list.
 */
export function parseSymbolList(text: string): string[] {
  const list = text.split(',').map((s) => s.trim());
  if (list.every((s) => s === '')) throw new Error('no market given: give one like BTC/USDT');
  const upper: string[] = [];
  for (const [i, s] of list.entries()) {
    if (s === '') throw new Error(`"${text}": entry ${i + 1} is empty (a stray comma?)`);
    upper.push(parseSymbol(s));
  }
  const dup = upper.find((s, i) => upper.indexOf(s) !== i);
  if (dup !== undefined) throw new Error(`${dup} is listed twice`);
  return upper;
}

export function defineInstrument(spec: InstrumentSpec): Instrument {
  const why = symbolProblem(spec.symbol);
  if (why !== undefined) throw new Error(`Invalid symbol: ${why}`);
  const [pair, settleRaw] = spec.symbol.split(':');
  const [base, quote] = (pair ?? '').split('/') as [string, string];
  const kind = spec.kind ?? (settleRaw ? 'perpetual' : 'spot');
  for (const k of ['tickSize', 'stepSize', 'minAmount', 'minNotional'] as const) {
    const v = spec[k];
    if (v !== undefined && !(v >= 0 && Number.isFinite(v))) {
      throw new Error(`Invalid instrument ${spec.symbol}: ${k} must be a finite number >= 0, got ${v}`);
    }
  }
  return {
    symbol: spec.symbol as MarketSymbol,
    base,
    quote,
    kind,
    tickSize: spec.tickSize ?? 0,
    stepSize: spec.stepSize ?? 0,
    minAmount: spec.minAmount ?? 0,
    minNotional: spec.minNotional ?? 0,
    contractSize: spec.contractSize ?? 1,
    settle: settleRaw ?? quote,
  };
}

export type RoundingMode = 'nearest' | 'down' | 'up';

const DECIMALS = new Map<number, number>();

/** Decimal places of an increment like 0.001 -> 3 (used to strip binary noise after rounding). */
export function decimalsOf(step: number): number {
  if (step <= 0) return 0;
  let d = DECIMALS.get(step); // a market has two steps: no string work on every order
  if (d !== undefined) return d;
  const s = step.toExponential();
  const [mant, expStr] = s.split('e');
  const exp = Number(expStr);
  const frac = (mant ?? '').split('.')[1]?.length ?? 0;
  d = Math.max(0, frac - exp);
  if (DECIMALS.size < 10_000) DECIMALS.set(step, d);
  return d;
}

/**
 * A value already rounded to `step` as the decimal string an exchange takes: the step's decimals,
 * never an exponent, no trailing zeros (0.5 at step 0.001 -> "0.5", 1e-7 at 1e-8 -> "0.0000001").
 */
export function formatToStep(x: number, step: number): string {
  const s = x.toFixed(Math.min(decimalsOf(step), 20));
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

/**
 * How far `x / step` may be from a whole number of steps and still be that number: binary noise,
 * 0.3/0.1 = 2.9999999999999996, and 416.58889/0.00001 = 41658888.99999999. The division's error
 * grows with the quotient, so the tolerance does too (a few units in the last place), with a floor
 * of 1e-9 steps for small quotients.
 */
export function stepTolerance(q: number): number {
  return Math.max(1e-9, Math.abs(q) * 16 * Number.EPSILON);
}

/** Round to a multiple of `step` (0 = no rounding), then to the step's decimals so 0.1+0.2 noise is gone. */
export function roundToStep(x: number, step: number, mode: RoundingMode): number {
  if (step <= 0) return x;
  const q = x / step;
  // A whole number of steps up to binary noise is that number, whichever way it rounds.
  const eps = stepTolerance(q);
  const n = mode === 'down' ? Math.floor(q + eps) : mode === 'up' ? Math.ceil(q - eps) : Math.round(q);
  const d = decimalsOf(step);
  return Number((n * step).toFixed(Math.min(d, 20)));
}

/** Buy limit prices round down and sell limit prices up would be "worse"; Keel rounds to nearest tick. */
export function roundPrice(inst: Instrument, price: number, mode: RoundingMode = 'nearest'): number {
  return roundToStep(price, inst.tickSize, mode);
}

/** Amounts always round down: never buy or sell more than the strategy asked for. */
export function roundAmount(inst: Instrument, amount: number): number {
  return roundToStep(amount, inst.stepSize, 'down');
}

export type FilterViolation =
  | { readonly rule: 'min-amount'; readonly message: string }
  | { readonly rule: 'min-notional'; readonly message: string }
  | { readonly rule: 'non-positive'; readonly message: string };

/** Checks an order against the exchange filters after rounding; null when it passes. */
export function checkFilters(inst: Instrument, amount: number, price: number): FilterViolation | null {
  if (!(amount > 0))
    return {
      rule: 'non-positive',
      message: `amount ${amount} is not positive after rounding to step ${inst.stepSize}`,
    };
  if (amount < inst.minAmount) {
    return {
      rule: 'min-amount',
      message: `amount ${amount} is below the minimum ${inst.minAmount} for ${inst.symbol}`,
    };
  }
  const notional = amount * price * inst.contractSize;
  if (notional < inst.minNotional) {
    return {
      rule: 'min-notional',
      message: `notional ${notional} is below the minimum ${inst.minNotional} ${inst.quote} for ${inst.symbol}`,
    };
  }
  return null;
}

/**
 * What of a holding of `amount` (≥ 0) can be traded at `price`: rounded down to the step, or 0
 * when that is below the market's minimum amount or minimum notional. The one definition of
 * dust: a position whose tradable amount is 0 is flat for strategies (see `isDust`), and an exit
 * sells this much. A NaN price (no bar seen yet) skips the notional rule.
 */
export function tradableAmount(inst: Instrument, amount: number, price: number): number {
  if (!(amount > 0)) return 0;
  return tradableOnStep(inst, inst.stepSize > 0 ? roundToStep(amount, inst.stepSize, 'down') : amount, price);
}

/**
 * `tradableAmount` of an amount already rounded down to the step: the minimum amount and notional
 * rules alone (the engine keeps the rounded amount between fills: rounding builds a string).
 */
export function tradableOnStep(inst: Instrument, amount: number, price: number): number {
  if (!(amount > 0) || amount < inst.minAmount) return 0;
  return amount * price * inst.contractSize < inst.minNotional ? 0 : amount;
}

/**
 * True when a non-zero position cannot be traded at `price` (smaller than the step, the minimum
 * amount or the minimum notional): dust, which strategies see as flat and no order can sell. A
 * market without filters (stepSize, minAmount and minNotional all 0) has no dust.
 */
export function isDust(inst: Instrument, size: number, price: number): boolean {
  return size !== 0 && tradableAmount(inst, Math.abs(size), price) === 0;
}

/**
 * True when a fill of `qty` (absolute) closes a position of `size` (absolute) exactly, up to the
 * binary noise of adding up partial fills: an exit's fills summed in another grouping than the
 * entry's miss its size by a few ulps (6.9e-18 BTC), which must neither leave a long nor open a
 * short. 1e-12 of the size is far above that noise and far below any amount a market trades.
 */
export function closesExactly(size: number, qty: number): boolean {
  return Math.abs(qty - size) <= FLAT_TOLERANCE * size;
}

/** Relative tolerance of `closesExactly`. */
export const FLAT_TOLERANCE = 1e-12;

/** True when the market has a filter that can leave dust (step, minimum amount or notional). */
export function hasFilters(inst: Instrument): boolean {
  return inst.stepSize > 0 || inst.minAmount > 0 || inst.minNotional > 0;
}
