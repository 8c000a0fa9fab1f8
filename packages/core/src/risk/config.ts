/**
 * The run-level risk configuration: pre-trade limits, protections, a sizing model and exits,
 * applied by the engine around any strategy (docs/risk.md). Plain values: the CLI flags and a
 * config file build it with one parser (`parseRiskConfig`), and a bot stores it as JSON.
 */

/** What a halt does besides denying new entries. */
export type HaltAction = 'freeze' | 'flatten';

/**
 * How long a halt lasts: until `resumeTrading()` (`resume`), until the next day boundary of the
 * daily-loss rule (`next-day`), or a fixed time (`ms`).
 */
export type HaltUntil =
  | { readonly kind: 'resume' }
  | { readonly kind: 'next-day' }
  | { readonly kind: 'duration'; readonly ms: number };

/** One rule, discriminated on `rule` (its key on the command line and in the config file). */
export type RiskRuleSpec =
  // ---- pre-trade limits (entries only) ----
  /** Notional of one symbol's position, after the order, as a fraction of equity. */
  | { readonly rule: 'max-position'; readonly limit: number }
  /** Size of one symbol's position after the order, in base units (contracts). */
  | { readonly rule: 'max-position-size'; readonly limit: number }
  /** Notional of one symbol's position after the order, in the account currency. */
  | { readonly rule: 'max-notional'; readonly limit: number }
  /** Sum of |notional| over all positions after the order, in the account currency. */
  | { readonly rule: 'max-gross'; readonly limit: number }
  /** |Sum of signed notional| over all positions after the order, in the account currency. */
  | { readonly rule: 'max-net'; readonly limit: number }
  /** Gross exposure after the order divided by equity. */
  | { readonly rule: 'max-leverage'; readonly limit: number }
  /** Orders working at once, counting the new one. */
  | { readonly rule: 'max-open-orders'; readonly limit: number }
  /**
   * Markets with a position or a working entry at once (Freqtrade's `max_open_trades`): an entry
   * that would open one more is denied; adding to a market already open is not.
   */
  | { readonly rule: 'max-open-trades'; readonly limit: number }
  /** Orders sent within a sliding window, counting the new one. */
  | { readonly rule: 'order-rate'; readonly limit: number; readonly windowMs: number }
  /** Cash left after a buy (and the buys already working), as a fraction of equity. */
  | { readonly rule: 'cash-reserve'; readonly limit: number }
  /** Cash left after a buy (and the buys already working), in the account currency. */
  | { readonly rule: 'min-cash'; readonly limit: number }
  | { readonly rule: 'symbols'; readonly allowed: readonly string[] }
  /** The direction positions may take: `long` denies entries that open or add to a short. */
  | { readonly rule: 'sides'; readonly allowed: 'long' | 'short' }
  // ---- protections ----
  /** Loss since the start of the day (UTC + `dayStartMs`) as a fraction of that day's start equity. */
  | {
      readonly rule: 'daily-loss';
      readonly limit: number;
      readonly dayStartMs: number;
      readonly action: HaltAction;
      readonly until: HaltUntil;
    }
  /** Fall from the equity peak as a fraction of the peak. */
  | { readonly rule: 'max-drawdown'; readonly limit: number; readonly action: HaltAction; readonly until: HaltUntil }
  /** `count` losing stop-outs within `windowMs` lock all entries for `lockMs`. */
  | { readonly rule: 'stoploss-guard'; readonly count: number; readonly windowMs: number; readonly lockMs: number }
  /** A losing round trip locks entries on its symbol for `lockMs` from its exit. */
  | { readonly rule: 'cooldown'; readonly lockMs: number }
  /**
   * A symbol whose last `trades` round trips within `windowMs` returned less than `minProfit` in
   * sum (net of fees, as fractions) is locked for `lockMs`.
   */
  | {
      readonly rule: 'low-profit';
      readonly trades: number;
      readonly windowMs: number;
      readonly minProfit: number;
      readonly lockMs: number;
    }
  /** `limit` losing round trips in a row (account-wide) halt entries. */
  | { readonly rule: 'max-losses'; readonly limit: number; readonly action: HaltAction; readonly until: HaltUntil };

export type RiskRuleId = RiskRuleSpec['rule'];

/** The rules that act through halts and locks (the others are pre-trade limits). */
export const PROTECTION_RULES: ReadonlySet<RiskRuleId> = new Set<RiskRuleId>([
  'daily-loss',
  'max-drawdown',
  'stoploss-guard',
  'cooldown',
  'low-profit',
  'max-losses',
]);

/** How far from the entry an exit sits. */
export type ExitDistance =
  /** A fraction of the entry price (0.02 = 2 %). */
  | { readonly kind: 'percent'; readonly value: number }
  /** A multiple of the ATR at the entry fill. */
  | { readonly kind: 'atr'; readonly multiple: number }
  /** A fixed price level. */
  | { readonly kind: 'price'; readonly price: number };

export interface RoiStep {
  /** Trade age from which this step applies, in ms. */
  readonly ageMs: number;
  /** Minimum gain over the entry price that exits, as a fraction (0 = at the entry price). */
  readonly profit: number;
}

export interface ExitSpec {
  readonly stopLoss?: ExitDistance;
  readonly takeProfit?: ExitDistance;
  readonly trailing?: Extract<ExitDistance, { kind: 'percent' | 'atr' }>;
  /** Once the close is `trigger` above the entry, the stop moves to the entry plus `offset`. */
  readonly breakEven?: { readonly trigger: number; readonly offset: number };
  /** A position older than this is closed at market. */
  readonly timeExitMs?: number;
  /** Freqtrade's `minimal_roi`: steps sorted by age, the first at age 0 or later. */
  readonly roi?: readonly RoiStep[];
  /** ATR period for ATR distances and ATR-based sizing (default 14), on the execution bars. */
  readonly atrPeriod: number;
}

export type SizingSpec =
  | { readonly model: 'quantity'; readonly quantity: number }
  | { readonly model: 'notional'; readonly notional: number }
  | { readonly model: 'percent'; readonly fraction: number }
  /** Loses `fraction` of equity if the stop-loss is hit (the stop-loss exit is required). */
  | { readonly model: 'risk'; readonly fraction: number }
  /** Notional = equity · target / (annualised volatility of `lookback` bars' log returns). */
  | { readonly model: 'volatility'; readonly target: number; readonly lookback: number }
  /**
   * Fraction of equity = clamp(multiplier · Kelly fraction, 0, cap), Kelly from the run's closed
   * round trips; `fallback` until `minTrades` have closed.
   */
  | {
      readonly model: 'kelly';
      readonly multiplier: number;
      readonly cap: number;
      readonly minTrades: number;
      readonly fallback: number;
    };

export type SizingModel = SizingSpec['model'];

export interface RiskConfig {
  readonly rules: readonly RiskRuleSpec[];
  readonly sizing?: SizingSpec;
  readonly exits?: ExitSpec;
}

/** True when the configuration does nothing (the engine then runs without a risk engine). */
export function isEmptyRiskConfig(c: RiskConfig): boolean {
  if (c.rules.length > 0 || c.sizing !== undefined) return false;
  const x = c.exits;
  return (
    x === undefined ||
    (x.stopLoss === undefined &&
      x.takeProfit === undefined &&
      x.trailing === undefined &&
      x.breakEven === undefined &&
      x.timeExitMs === undefined &&
      x.roi === undefined)
  );
}
