/**
 * Notional brackets (Binance's "leverage & margin" tiers) of a USDⓈ-M contract: for each band of
 * position notional, the highest leverage allowed, the maintenance margin rate and the maintenance
 * amount `cum`. Lookups walk a short readonly array and allocate nothing (the engine's hot path).
 *
 * Binance's rule for the maintenance amount of tier n (its FAQ "How to Calculate Liquidation Price
 * of USDⓈ-M Futures Contracts", https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93):
 *   cum_n = floor_n x (mmr_n - mmr_(n-1)) + cum_(n-1),   cum_1 = 0
 * which makes the maintenance margin `notional x mmr - cum` continuous across tier boundaries.
 */

/** One tier, as `GET /fapi/v1/leverageBracket` lists it. */
export interface NotionalBracket {
  /** 1-based tier number. */
  readonly bracket: number;
  /** Lowest position notional (quote units) in this tier, inclusive. */
  readonly notionalFloor: number;
  /** Highest position notional in this tier, exclusive (the last tier's cap is the largest position allowed). */
  readonly notionalCap: number;
  /** Highest leverage allowed for a position in this tier (`initialLeverage`). */
  readonly maxLeverage: number;
  /** Maintenance margin rate (`maintMarginRatio`). */
  readonly maintMarginRate: number;
  /** Maintenance amount (`cum`), quote units. */
  readonly cum: number;
}

/** A tier as written by hand or read from an exchange; `cum` is derived when omitted. */
export interface BracketSpec {
  readonly notionalFloor: number;
  readonly notionalCap: number;
  readonly maxLeverage: number;
  readonly maintMarginRate: number;
  readonly cum?: number;
}

export class BracketError extends Error {
  override name = 'BracketError';
}

/**
 * Checks a tier table and fills in `cum` by Binance's rule. Tiers must start at notional 0, be
 * contiguous (each floor is the previous cap), have rising maintenance rates and falling leverage;
 * a given `cum` must equal the derived one (to a cent), or the table is not Binance-consistent.
 */
export function defineBrackets(specs: readonly BracketSpec[], name = 'brackets'): readonly NotionalBracket[] {
  if (specs.length === 0) throw new BracketError(`${name}: at least one tier is required`);
  const out: NotionalBracket[] = [];
  let prev: NotionalBracket | undefined;
  for (let i = 0; i < specs.length; i++) {
    const s = specs[i] as BracketSpec;
    const where = `${name} tier ${i + 1}`;
    for (const k of ['notionalFloor', 'notionalCap', 'maxLeverage', 'maintMarginRate'] as const) {
      if (!Number.isFinite(s[k])) throw new BracketError(`${where}: ${k} must be a finite number, got ${s[k]}`);
    }
    if (!(s.notionalCap > s.notionalFloor))
      throw new BracketError(`${where}: notionalCap ${s.notionalCap} must be above notionalFloor ${s.notionalFloor}`);
    if (!(s.maintMarginRate > 0 && s.maintMarginRate < 1))
      throw new BracketError(`${where}: maintMarginRate ${s.maintMarginRate} must be in (0, 1)`);
    if (!(s.maxLeverage >= 1)) throw new BracketError(`${where}: maxLeverage ${s.maxLeverage} must be >= 1`);
    if (prev === undefined) {
      if (s.notionalFloor !== 0) throw new BracketError(`${where}: the first tier must start at notional 0`);
    } else {
      if (s.notionalFloor !== prev.notionalCap)
        throw new BracketError(
          `${where}: notionalFloor ${s.notionalFloor} must equal the previous tier's notionalCap ${prev.notionalCap}`,
        );
      if (!(s.maintMarginRate > prev.maintMarginRate))
        throw new BracketError(`${where}: maintMarginRate must rise from tier to tier`);
      if (s.maxLeverage > prev.maxLeverage) throw new BracketError(`${where}: maxLeverage must not rise`);
    }
    const derived = prev === undefined ? 0 : s.notionalFloor * (s.maintMarginRate - prev.maintMarginRate) + prev.cum;
    const cum = s.cum ?? roundCents(derived);
    if (Math.abs(cum - derived) > 0.01)
      throw new BracketError(
        `${where}: cum ${cum} differs from Binance's rule floor x (mmr - previous mmr) + previous cum = ${roundCents(derived)}`,
      );
    const b: NotionalBracket = {
      bracket: i + 1,
      notionalFloor: s.notionalFloor,
      notionalCap: s.notionalCap,
      maxLeverage: s.maxLeverage,
      maintMarginRate: s.maintMarginRate,
      cum,
    };
    out.push(b);
    prev = b;
  }
  return out;
}

function roundCents(x: number): number {
  return Math.round(x * 100) / 100;
}

/**
 * The tier schedule Binance published for its 75x USDⓈ-M contracts (LINKUSDT among them) in 2021:
 * the default when no exchange brackets are given. Live trading reads the current ones from
 * `/fapi/v1/leverageBracket`; they change from time to time.
 */
export const DEFAULT_USDM_BRACKETS: readonly NotionalBracket[] = defineBrackets(
  [
    { notionalFloor: 0, notionalCap: 10_000, maxLeverage: 75, maintMarginRate: 0.0065, cum: 0 },
    { notionalFloor: 10_000, notionalCap: 50_000, maxLeverage: 50, maintMarginRate: 0.01, cum: 35 },
    { notionalFloor: 50_000, notionalCap: 250_000, maxLeverage: 25, maintMarginRate: 0.02, cum: 535 },
    { notionalFloor: 250_000, notionalCap: 1_000_000, maxLeverage: 10, maintMarginRate: 0.05, cum: 8_035 },
    { notionalFloor: 1_000_000, notionalCap: 2_000_000, maxLeverage: 5, maintMarginRate: 0.1, cum: 58_035 },
    { notionalFloor: 2_000_000, notionalCap: 5_000_000, maxLeverage: 4, maintMarginRate: 0.125, cum: 108_035 },
    { notionalFloor: 5_000_000, notionalCap: 10_000_000, maxLeverage: 3, maintMarginRate: 0.15, cum: 233_035 },
    { notionalFloor: 10_000_000, notionalCap: 5_000_000_000, maxLeverage: 2, maintMarginRate: 0.25, cum: 1_233_035 },
  ],
  'DEFAULT_USDM_BRACKETS',
);

/** Index of the tier holding `notional` (>= 0): the last tier whose floor is at or below it. */
export function bracketIndex(brackets: readonly NotionalBracket[], notional: number): number {
  let i = 0;
  const n = brackets.length;
  while (i + 1 < n && (brackets[i + 1] as NotionalBracket).notionalFloor <= notional) i++;
  return i;
}

/** The tier holding `notional`. */
export function bracketFor(brackets: readonly NotionalBracket[], notional: number): NotionalBracket {
  return brackets[bracketIndex(brackets, notional)] as NotionalBracket;
}

/** The highest leverage the schedule allows at all (tier 1's). */
export function maxLeverageOf(brackets: readonly NotionalBracket[]): number {
  return (brackets[0] as NotionalBracket).maxLeverage;
}

/**
 * The largest position notional allowed at `leverage` (Binance's `maxNotionalValue`): the cap of
 * the last tier whose max leverage is at or above it; 0 when the leverage is above every tier's.
 */
export function maxNotionalAtLeverage(brackets: readonly NotionalBracket[], leverage: number): number {
  let cap = 0;
  for (let i = 0; i < brackets.length; i++) {
    const b = brackets[i] as NotionalBracket;
    if (b.maxLeverage >= leverage) cap = b.notionalCap;
  }
  return cap;
}
