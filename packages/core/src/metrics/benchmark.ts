import type { BarSeries } from '../model/bar.ts';
import { type Instrument, roundAmount } from '../model/instrument.ts';
import { type Timeframe, timeframeEnd, timeframeMs } from '../model/timeframe.ts';
import { type FeeModel, feeInBase } from '../venue/models.ts';

/**
 * What simply holding the market would have done over the same bars: the yardstick a strategy's
 * return is read against (Freqtrade's "market change").
 *
 * The model, stated so the numbers can be checked by hand: the start value is split equally over
 * the markets held (one: the primary market; a run over several markets holds each); each share
 * buys its market at the first bar's open as one taker market order, with the run's fee model (fee
 * in the quote, or taken from the coins received) and the amount rounded down to the market's
 * step; no slippage. The coins are valued at the last close of each market at each primary bar's
 * close, like an open position in the strategy's equity: no exit fee. A market whose first bar has
 * not closed yet counts as its share of cash.
 */
export interface Benchmark {
  readonly kind: 'buy-and-hold';
  /** The mean of the markets' own moves (for one market, its move). */
  readonly marketChange: number;
  /** Entry fees of all the markets, in the account currency. */
  readonly fee: number;
  readonly startValue: number;
  readonly finalValue: number;
  /** finalValue / startValue - 1. */
  readonly totalReturn: number;
  /** Largest fall from a running peak of `values` (start value included), as a fraction. */
  readonly maxDrawdown: number;
  /** The markets held, in feed order. */
  readonly markets: readonly BenchmarkMarket[];
  /** Value at each primary bar's close: aligned with the result's equity curve. */
  readonly values: Float64Array;
}

export interface BenchmarkMarket {
  readonly symbol: string;
  /** Open of the first bar replayed and close of the last (NaN without bars). */
  readonly firstOpen: number;
  readonly lastClose: number;
  /** lastClose / firstOpen - 1: the market's own move over the run, before fees. */
  readonly marketChange: number;
  /** Held from the first open on (after a fee taken in the coin). */
  readonly amount: number;
  /** The entry fee, in the account currency. */
  readonly fee: number;
  /** What is left of the market's share after the entry (step rounding). */
  readonly cash: number;
}

/** A market to hold: rows [p0, p1) of its series. */
export interface HeldMarket {
  readonly series: BarSeries;
  readonly timeframe: Timeframe;
  readonly p0: number;
  readonly p1: number;
  readonly instrument: Instrument;
}

function entry(m: HeldMarket, share: number, fees: FeeModel): BenchmarkMarket {
  const { series, p0, p1, instrument: inst } = m;
  if (p1 <= p0) {
    return {
      symbol: inst.symbol,
      firstOpen: Number.NaN,
      lastClose: Number.NaN,
      marketChange: Number.NaN,
      amount: 0,
      fee: 0,
      cash: share,
    };
  }
  const price = series.open[p0] as number;
  const lastClose = series.close[p1 - 1] as number;
  let amount: number;
  let fee: number;
  let cash: number;
  if (feeInBase(fees.asset, 'buy')) {
    const bought = roundAmount(inst, share / price);
    const feeBase = fees.fee('buy', price, bought, 'taker');
    amount = bought - feeBase;
    fee = feeBase * price;
    cash = share - bought * price;
  } else {
    // Cash pays the price and the fee: for a proportional fee, amount * (price + fee of one unit).
    const perUnit = fees.fee('buy', price, 1, 'taker');
    amount = roundAmount(inst, share / (price + perUnit));
    fee = fees.fee('buy', price, amount, 'taker');
    cash = share - amount * price - fee;
  }
  return { symbol: inst.symbol, firstOpen: price, lastClose, marketChange: lastClose / price - 1, amount, fee, cash };
}

/**
 * Buy-and-hold of `markets` (the first is the primary), valued at `times`, the primary bars'
 * close times (see Benchmark for the model).
 */
export function buyAndHold(
  markets: readonly HeldMarket[],
  times: Float64Array,
  startValue: number,
  fees: FeeModel,
): Benchmark {
  if (markets.length === 0) throw new Error('buyAndHold needs at least one market');
  const share = startValue / markets.length;
  const held = markets.map((m) => entry(m, share, fees));
  const n = times.length;
  const values = new Float64Array(n);
  const rows = markets.map((m) => m.p0);
  const last = markets.map(() => Number.NaN);
  let peak = startValue;
  let maxDd = 0;
  for (let k = 0; k < n; k++) {
    const t = times[k] as number;
    let v = 0;
    for (let j = 0; j < markets.length; j++) {
      const m = markets[j] as HeldMarket;
      const ms = m.timeframe === '1M' ? 0 : timeframeMs(m.timeframe);
      let r = rows[j] as number;
      while (r < m.p1) {
        const open = m.series.time[r] as number;
        if ((ms > 0 ? open + ms : timeframeEnd('1M', open)) > t) break;
        last[j] = m.series.close[r] as number;
        r++;
      }
      rows[j] = r;
      const h = held[j] as BenchmarkMarket;
      const close = last[j] as number;
      v += Number.isNaN(close) ? share : h.cash + h.amount * close;
    }
    values[k] = v;
    if (v > peak) peak = v;
    else if (peak > 0 && 1 - v / peak > maxDd) maxDd = 1 - v / peak;
  }
  const finalValue = n > 0 ? (values[n - 1] as number) : startValue;
  let change = 0;
  let fee = 0;
  for (const h of held) {
    change += h.marketChange;
    fee += h.fee;
  }
  return {
    kind: 'buy-and-hold',
    marketChange: change / held.length,
    fee,
    startValue,
    finalValue,
    totalReturn: finalValue / startValue - 1,
    maxDrawdown: maxDd,
    markets: held,
    values,
  };
}
