import type { BarSeries } from '../model/bar.ts';
import { type Instrument, roundAmount } from '../model/instrument.ts';
import { type FeeModel, feeInBase } from '../venue/models.ts';

/**
 * What simply holding the market would have done over the same bars: the yardstick a strategy's
 * return is read against (Freqtrade's "market change").
 *
 * The model, stated so the numbers can be checked by hand: the whole start value buys the
 * primary market at the first bar's open as one taker market order, with the run's fee model
 * (fee in the quote, or taken from the coins received) and the amount rounded down to the
 * market's step; no slippage. The position is then valued at each primary bar's close, like an
 * open position in the strategy's equity: no exit fee.
 */
export interface Benchmark {
  readonly kind: 'buy-and-hold';
  readonly symbol: string;
  /** Open of the first primary bar replayed and close of the last. */
  readonly firstOpen: number;
  readonly lastClose: number;
  /** lastClose / firstOpen - 1: the market's own move over the run, before fees. */
  readonly marketChange: number;
  /** Held from the first open on (after a fee taken in the coin). */
  readonly amount: number;
  /** The entry fee, in the account currency. */
  readonly fee: number;
  /** Cash left after the entry (what step rounding leaves over). */
  readonly cash: number;
  readonly startValue: number;
  readonly finalValue: number;
  /** finalValue / startValue - 1. */
  readonly totalReturn: number;
  /** Largest fall from a running peak of `values` (start value included), as a fraction. */
  readonly maxDrawdown: number;
  /** Value at each primary bar's close: aligned with the result's equity curve. */
  readonly values: Float64Array;
}

/** Buy-and-hold of rows [p0, p1) of the primary series (see Benchmark for the model). */
export function buyAndHold(
  series: BarSeries,
  p0: number,
  p1: number,
  inst: Instrument,
  startValue: number,
  fees: FeeModel,
): Benchmark {
  const n = Math.max(0, p1 - p0);
  const values = new Float64Array(n);
  if (n === 0) {
    return {
      kind: 'buy-and-hold',
      symbol: inst.symbol,
      firstOpen: Number.NaN,
      lastClose: Number.NaN,
      marketChange: Number.NaN,
      amount: 0,
      fee: 0,
      cash: startValue,
      startValue,
      finalValue: startValue,
      totalReturn: 0,
      maxDrawdown: 0,
      values,
    };
  }
  const price = series.open[p0] as number;
  let amount: number;
  let fee: number;
  let cash: number;
  if (feeInBase(fees.asset, 'buy')) {
    const bought = roundAmount(inst, startValue / price);
    const feeBase = fees.fee('buy', price, bought, 'taker');
    amount = bought - feeBase;
    fee = feeBase * price;
    cash = startValue - bought * price;
  } else {
    // Cash pays the price and the fee: for a proportional fee, amount * (price + fee of one unit).
    const perUnit = fees.fee('buy', price, 1, 'taker');
    amount = roundAmount(inst, startValue / (price + perUnit));
    fee = fees.fee('buy', price, amount, 'taker');
    cash = startValue - amount * price - fee;
  }
  let peak = startValue;
  let maxDd = 0;
  for (let i = 0; i < n; i++) {
    const v = cash + amount * (series.close[p0 + i] as number);
    values[i] = v;
    if (v > peak) peak = v;
    else if (peak > 0 && 1 - v / peak > maxDd) maxDd = 1 - v / peak;
  }
  const lastClose = series.close[p1 - 1] as number;
  const finalValue = values[n - 1] as number;
  return {
    kind: 'buy-and-hold',
    symbol: inst.symbol,
    firstOpen: price,
    lastClose,
    marketChange: lastClose / price - 1,
    amount,
    fee,
    cash,
    startValue,
    finalValue,
    totalReturn: finalValue / startValue - 1,
    maxDrawdown: maxDd,
    values,
  };
}
