import { checkFilters, type Instrument, roundAmount } from '../model/instrument.ts';
import type { ExitDistance, SizingSpec } from './config.ts';
import type { RiskDenial } from './events.ts';
import { num, pct } from './text.ts';

/** Closed round trips of the run, as the Kelly model needs them (net returns as fractions). */
export interface TradeStats {
  count: number;
  wins: number;
  /** Sum of the winning trades' net returns (> 0). */
  winSum: number;
  /** Sum of the losing trades' net returns, as a positive number. */
  lossSum: number;
}

export interface SizingInput {
  readonly equity: number;
  /** Reference price of the entry (the signal bar's close, or the order's limit or stop price). */
  readonly price: number;
  readonly side: 'buy' | 'sell';
  readonly instrument: Instrument;
  /** ATR of the symbol's execution bars now (NaN until it is defined), and how many bars it has seen. */
  readonly atr: number;
  readonly atrPeriod: number;
  readonly atrBars: number;
  /** Annualised volatility of the symbol's log returns (NaN until `lookback` returns are in). */
  readonly volatility: number;
  readonly volatilityBars: number;
  readonly stopLoss: ExitDistance | undefined;
  readonly trades: TradeStats;
  /** Largest notional as a multiple of equity (the max-leverage rule; 1 without it). */
  readonly maxLeverage: number;
  /** Cash the entry may spend (a spot buy: cash less the working buys); Infinity otherwise. */
  readonly freeCash: number;
}

/**
 * The share of the free cash a sized spot buy may spend: the rest pays the fee (Freqtrade's
 * `tradable_balance_ratio` default). Without it a buy sized to all the cash is refused for the fee.
 */
export const SPOT_CASH_RATIO = 0.99;

export type SizingResult = { readonly amount: number } | { readonly zero: RiskDenial };

function zero(limit: number, actual: number, message: string): SizingResult {
  return { zero: { rule: 'sizing', limit, actual, message: `sizing: ${message}` } };
}

/** The distance from `price` to the stop-loss an entry at `price` would get, or NaN (with why). */
export function stopDistance(
  d: ExitDistance,
  price: number,
  side: 'buy' | 'sell',
  atr: number,
): { distance: number; why: string } {
  switch (d.kind) {
    case 'percent':
      return { distance: price * d.value, why: '' };
    case 'atr':
      return Number.isFinite(atr)
        ? { distance: d.multiple * atr, why: '' }
        : { distance: Number.NaN, why: 'the ATR is not defined yet' };
    case 'price': {
      const dist = side === 'buy' ? price - d.price : d.price - price;
      return dist > 0
        ? { distance: dist, why: '' }
        : {
            distance: Number.NaN,
            why: `the stop level ${num(d.price)} is not on the losing side of the entry price ${num(price)}`,
          };
    }
  }
}

/**
 * The size of an entry under a sizing model, rounded down to the market's step and checked
 * against its minimum amount and notional; or why it is zero. A size is in base units (contracts).
 */
export function sizeEntry(spec: SizingSpec, s: SizingInput): SizingResult {
  const inst = s.instrument;
  const unit = s.price * inst.contractSize; // the notional of one unit
  if (!(unit > 0)) return zero(0, s.price, `no price to size at (${s.price})`);
  if (!(s.equity > 0) && spec.model !== 'quantity' && spec.model !== 'notional')
    return zero(0, s.equity, `equity is ${num(s.equity)}: nothing to size a fraction of`);
  // The formula models (risk, volatility) can ask for more than the account holds: they are capped
  // at the leverage and, for a spot buy, at what the cash can pay with room for the fee.
  const byCash = s.freeCash * SPOT_CASH_RATIO;
  const maxNotional = Math.min(s.equity * s.maxLeverage, byCash);
  const capText =
    maxNotional === byCash
      ? `capped at ${pct(SPOT_CASH_RATIO)} of the free cash ${num(s.freeCash)}`
      : `capped at ${num(s.maxLeverage)}x equity`;
  let raw: number;
  let what: string;
  switch (spec.model) {
    case 'quantity':
      raw = spec.quantity;
      what = `quantity ${num(spec.quantity)}`;
      break;
    case 'notional':
      raw = spec.notional / unit;
      what = `notional ${num(spec.notional)}`;
      break;
    case 'percent':
      raw = (spec.fraction * s.equity) / unit;
      what = `${pct(spec.fraction)} of equity ${num(s.equity)}`;
      break;
    case 'risk': {
      if (s.stopLoss === undefined) return zero(0, 0, 'risk sizing needs a stop-loss exit');
      const { distance, why } = stopDistance(s.stopLoss, s.price, s.side, s.atr);
      if (!(distance > 0))
        return s.stopLoss.kind === 'atr' && !Number.isFinite(s.atr)
          ? zero(
              s.atrPeriod + 1,
              s.atrBars,
              `risk sizing with an ATR stop needs ATR(${s.atrPeriod}): ${s.atrBars} of ${s.atrPeriod + 1} bars seen`,
            )
          : zero(0, distance, `no stop distance: ${why}`);
      const atRisk = spec.fraction * s.equity;
      raw = atRisk / (distance * inst.contractSize);
      what = `risking ${num(atRisk)} (${pct(spec.fraction)} of equity) over a stop ${num(distance)} away`;
      if (raw * unit > maxNotional) {
        raw = maxNotional / unit;
        what += `, ${capText}`;
      }
      break;
    }
    case 'volatility': {
      if (!(s.volatility > 0))
        return s.volatilityBars < spec.lookback
          ? zero(
              spec.lookback,
              s.volatilityBars,
              `volatility targeting needs ${spec.lookback} returns: ${s.volatilityBars} seen`,
            )
          : zero(0, s.volatility, `the volatility of the last ${spec.lookback} returns is ${num(s.volatility)}`);
      let notional = (s.equity * spec.target) / s.volatility;
      what = `target volatility ${pct(spec.target)} over realised ${pct(s.volatility)}`;
      if (notional > maxNotional) {
        notional = maxNotional;
        what += `, ${capText}`;
      }
      raw = notional / unit;
      break;
    }
    case 'kelly': {
      const t = s.trades;
      let f: number;
      if (t.count < spec.minTrades) {
        if (!(spec.fallback > 0))
          return zero(spec.minTrades, t.count, `Kelly needs ${spec.minTrades} closed trades, has ${t.count}`);
        f = spec.fallback;
        what = `Kelly fallback ${pct(f)} (${t.count} of ${spec.minTrades} trades closed)`;
      } else {
        const w = t.wins / t.count;
        const losses = t.count - t.wins;
        const avgWin = t.wins > 0 ? t.winSum / t.wins : 0;
        const avgLoss = losses > 0 ? t.lossSum / losses : 0;
        // With no losing trade the payoff ratio is unbounded and the Kelly fraction is the win rate.
        const kelly = avgLoss > 0 ? w - (1 - w) / (avgWin / avgLoss) : w;
        if (!(kelly > 0))
          return zero(
            0,
            kelly,
            `no edge: the Kelly fraction is ${num(kelly)} (win rate ${pct(w)}, average win ${pct(avgWin)}, average loss ${pct(avgLoss)} over ${t.count} trades)`,
          );
        f = Math.min(spec.multiplier * kelly, spec.cap);
        what = `${num(spec.multiplier)} x Kelly ${num(kelly)}${spec.multiplier * kelly > spec.cap ? `, capped at ${pct(spec.cap)}` : ''}`;
      }
      raw = (f * s.equity) / unit;
      break;
    }
  }
  const amount = roundAmount(inst, raw);
  if (!(amount > 0))
    return zero(
      inst.stepSize,
      raw,
      `${what} gives ${num(raw)} ${inst.base}, which rounds to 0 at the step ${num(inst.stepSize)}`,
    );
  const f = checkFilters(inst, amount, s.price);
  if (f !== null)
    return zero(
      f.rule === 'min-amount' ? inst.minAmount : inst.minNotional,
      f.rule === 'min-amount' ? amount : amount * unit,
      `${what} gives ${num(amount)} ${inst.base}: ${f.message}`,
    );
  return { amount };
}
