/**
 * Futures backtests on Binance's LINKUSDT USD-M 1m candles of February 2023 with Binance's own
 * funding archive for the month (../shared/data, groups D and E). The oracle is arithmetic done by
 * hand below from the candles and the funding rows (docs/futures.md): a 3x short, a 5x long, and
 * one forced liquidation. Fees: Binance USD-M VIP 0 taker, 0.05 %.
 */
import {
  type AnyStrategy,
  type BacktestResult,
  type BarSeries,
  defineStrategy,
  type FundingRateSeries,
  type HedgeSide,
  type MarginMode,
  type PositionMode,
  runBacktest,
} from '@keel/core';
import { readBarsFile, readFundingRateFile } from '@keel/data/csv';
import { describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';

const BARS = 'binance-futures-um_LINKUSDT_1m_2023-02.csv.gz';
const FUNDING = 'binance-futures-um_LINKUSDT_fundingRate_2023-02.csv.gz';
const SYMBOL = 'LINK/USDT:USDT';
const TAKER = 0.0005;
const T = (d: number, h: number, m = 0): number => Date.UTC(2023, 1, d, h, m);

if (!HAS_SHARED_DATA) noteSkip('futures-backtest.test.ts', BARS);

let data: { bars: BarSeries; funding: FundingRateSeries } | undefined;
function load(): { bars: BarSeries; funding: FundingRateSeries } {
  data ??= {
    bars: readBarsFile(dataFile(BARS)).series,
    funding: readFundingRateFile(dataFile(FUNDING), { symbol: SYMBOL }).series,
  };
  return data;
}

function bar(t: number): { open: number; high: number; low: number; close: number } {
  const b = load().bars;
  const i = b.time.indexOf(t);
  return { open: b.open[i] as number, high: b.high[i] as number, low: b.low[i] as number, close: b.close[i] as number };
}

const anyParams = { safeParse: (x: unknown) => ({ success: true as const, data: x }) };

/** Acts at given decision times (a bar's close): a signed amount to trade, or 'close'. */
function at(actions: Record<number, number | 'close'>): AnyStrategy {
  return defineStrategy({
    name: 'at-times',
    params: anyParams,
    warmup: 'none',
    onStart: () => ({}),
    onBar(ctx) {
      const a = actions[ctx.time];
      if (a === undefined) return;
      if (a === 'close') ctx.close();
      else if (a > 0) ctx.buy(a);
      else ctx.sell(-a);
    },
  });
}

/** Hedge mode: at given decision times, orders on named sides (`qty` signed: > 0 buys), or closes. */
function hedgeAt(actions: Record<number, readonly (readonly [HedgeSide, number | 'close'])[]>): AnyStrategy {
  return defineStrategy({
    name: 'hedge-at-times',
    params: anyParams,
    warmup: 'none',
    onStart: () => ({}),
    onBar(ctx) {
      for (const [positionSide, a] of actions[ctx.time] ?? []) {
        if (a === 'close') ctx.close({ positionSide });
        else if (a > 0) ctx.buy(a, { positionSide });
        else ctx.sell(-a, { positionSide });
      }
    },
  });
}

function run(
  strategy: AnyStrategy,
  cash: number,
  leverage: number,
  marginMode: MarginMode,
  clearanceRate?: number,
  positionMode?: PositionMode,
): BacktestResult {
  const { bars, funding } = load();
  return runBacktest({
    strategy,
    data: [{ symbol: SYMBOL, timeframe: '1m', series: bars, instrument: { tickSize: 0.001, stepSize: 0.01 } }],
    cash,
    fee: TAKER,
    futures: () => ({
      leverage,
      marginMode,
      funding,
      ...(clearanceRate !== undefined ? { clearanceRate } : {}),
      ...(positionMode !== undefined ? { positionMode } : {}),
    }),
  });
}

describe.skipIf(!HAS_SHARED_DATA)('futures backtest on LINKUSDT 2023-02 with its real funding (hand-computed)', () => {
  it('a 3x isolated short: PnL, fees and four funding payments received', () => {
    // Decided at 05:59's close (06:00), sold 1,000 at 06:00's open; bought back at 2023-02-02
    // 10:00's open (decided at 09:59's close).
    expect(bar(T(1, 6)).open).toBe(6.907);
    expect(bar(T(2, 10)).open).toBe(7.293);
    const r = run(at({ [T(1, 6)]: -1000, [T(2, 10)]: 'close' }), 10_000, 3, 'isolated');
    const f = r.futures!;
    // Funding rows while short (archive: time, rate) and the mark, the open of the bar holding it:
    //   02-01 08:00:00.000  0.0001      6.859   receives 1,000 x 6.859 x 0.0001     = 0.6859
    //   02-01 16:00:00.012  0.0001      6.760   receives                            = 0.6760
    //   02-02 00:00:00.004  0.0001      7.221   receives                            = 0.7221
    //   02-02 08:00:00.023  0.00048855  7.242   receives 1,000 x 7.242 x 0.00048855 = 3.5380791
    expect([T(1, 8), T(1, 16), T(2, 0), T(2, 8)].map((t) => bar(t).open)).toEqual([6.859, 6.76, 7.221, 7.242]);
    expect(f.payments.map((p) => [p.time, p.rate, p.markPrice, p.size])).toEqual([
      [T(1, 8), 0.0001, 6.859, -1000],
      [T(1, 16) + 12, 0.0001, 6.76, -1000],
      [T(2, 0) + 4, 0.0001, 7.221, -1000],
      [T(2, 8) + 23, 0.00048855, 7.242, -1000],
    ]);
    const funding = 0.6859 + 0.676 + 0.7221 + 3.5380791;
    expect(f.funding).toBeCloseTo(funding, 9); // 5.6220791
    expect(f.fundingPaid).toBe(0);
    // Fees: 1,000 x 6.907 x 0.05 % = 3.4535 and 1,000 x 7.293 x 0.05 % = 3.6465.
    expect(r.portfolio.feesPaid).toBeCloseTo(3.4535 + 3.6465, 9);
    // PnL: 1,000 x (6.907 - 7.293) = -386.
    expect(r.portfolio.realizedPnl).toBeCloseTo(-386, 9);
    expect(r.trades).toHaveLength(1);
    expect(r.trades[0]!.pnlGross).toBeCloseTo(-386, 9);
    // Final: 10,000 - 386 - 7.1 + 5.6220791 = 9,612.5220791. No liquidation: the isolated wallet
    // 6,907 / 3 = 2,302.33 puts it near 9.15, far above the period's highs.
    expect(r.finalCash).toBeCloseTo(9612.5220791, 8);
    expect(r.finalValue).toBeCloseTo(9612.5220791, 8);
    expect(f.liquidations).toHaveLength(0);
    expect(f.warnings).toEqual([]);
  });

  it('a 5x cross long: PnL, fees and four funding payments paid', () => {
    // Bought 1,000 at 2023-02-14 12:00's open 6.621, sold at 2023-02-15 20:00's open 7.070.
    expect(bar(T(14, 12)).open).toBe(6.621);
    expect(bar(T(15, 20)).open).toBe(7.07);
    const r = run(at({ [T(14, 12)]: 1000, [T(15, 20)]: 'close' }), 10_000, 5, 'cross');
    const f = r.futures!;
    //   02-14 16:00:00.016  0.0001  6.744   pays 1,000 x 6.744 x 0.0001 = 0.6744
    //   02-15 00:00:00.011  0.0001  6.804   pays                        = 0.6804
    //   02-15 08:00:00.000  0.0001  6.767   pays                        = 0.6767
    //   02-15 16:00:00.005  0.0001  6.911   pays                        = 0.6911
    expect(f.payments.map((p) => [p.time, p.markPrice, p.payment])).toEqual([
      [T(14, 16) + 16, 6.744, expect.closeTo(-0.6744, 12)],
      [T(15, 0) + 11, 6.804, expect.closeTo(-0.6804, 12)],
      [T(15, 8), 6.767, expect.closeTo(-0.6767, 12)],
      [T(15, 16) + 5, 6.911, expect.closeTo(-0.6911, 12)],
    ]);
    expect(f.funding).toBeCloseTo(-2.7226, 9);
    expect(f.fundingPaid).toBeCloseTo(2.7226, 9);
    // Fees 3.3105 + 3.535; PnL 1,000 x (7.07 - 6.621) = 449.
    expect(r.portfolio.feesPaid).toBeCloseTo(3.3105 + 3.535, 9);
    expect(r.portfolio.realizedPnl).toBeCloseTo(449, 9);
    // 10,000 + 449 - 6.8455 - 2.7226 = 10,439.4319.
    expect(r.finalCash).toBeCloseTo(10439.4319, 8);
    expect(f.liquidations).toHaveLength(0);
  });

  it('a forced liquidation: 50x isolated long of 100 LINK, closed at its liquidation price with the clearance fee', () => {
    const r = run(at({ [T(1, 6)]: 100 }), 1_000, 50, 'isolated');
    const f = r.futures!;
    // Bought 100 at 6.907: commission 0.34535; isolated wallet 690.7 / 50 = 13.814.
    // LP = (13.814 - 690.7) / (100 x 0.0065 - 100) = 6.8131454 (notional 681: tier 1).
    const lp = (13.814 - 690.7) / (0.65 - 100);
    // 07:00's low 6.817 is above it; 07:01 (low 6.790) is the first bar to reach it.
    expect(bar(T(1, 7)).low).toBe(6.817);
    expect(bar(T(1, 7, 1)).low).toBe(6.79);
    expect(f.liquidations).toHaveLength(1);
    const l = f.liquidations[0]!;
    expect(l.time).toBe(T(1, 7, 2)); // the close of the 07:01 bar
    expect(l.liquidationPrice).toBeCloseTo(lp, 9);
    // Closed at the tick, 6.813: realised 100 x (6.813 - 6.907) = -9.4; margin left 13.814 - 9.4 =
    // 4.414; clearance min(1.25 % x 681.3 = 8.51625, 4.414) = 4.414: the whole margin is lost.
    expect(l.price).toBe(6.813);
    expect(l.realizedPnl).toBeCloseTo(-9.4, 9);
    expect(l.clearanceFee).toBeCloseTo(4.414, 9);
    expect(f.liquidationFees).toBeCloseTo(4.414, 9);
    // Trading fees, funding and the clearance fee apart: no funding was due before 07:01.
    expect(r.portfolio.feesPaid).toBeCloseTo(0.34535, 12);
    expect(f.fundingEvents).toBe(0);
    // 1,000 - 0.34535 - 9.4 - 4.414 = 985.84065 = 1,000 - commission - isolated margin.
    expect(r.finalCash).toBeCloseTo(985.84065, 9);
    expect(r.portfolio.positions[0]!.size).toBe(0);
  });
});

describe.skipIf(!HAS_SHARED_DATA)('hedge mode on LINKUSDT 2023-02 with its real funding (hand-computed)', () => {
  it('a 5x cross hedge: LONG 1,000 and SHORT 400 held apart, funding on each side, both closed', () => {
    expect([bar(T(1, 6)).open, bar(T(1, 7)).open, bar(T(1, 12)).open, bar(T(2, 10)).open]).toEqual([
      6.907, 6.833, 6.843, 7.293,
    ]);
    const r = run(
      hedgeAt({
        [T(1, 6)]: [['long', 1000]],
        [T(1, 7)]: [['short', -400]],
        [T(1, 12)]: [['short', 'close']],
        [T(2, 10)]: [['long', 'close']],
      }),
      10_000,
      5,
      'cross',
      undefined,
      'hedge',
    );
    expect(r.errors).toEqual([]);
    const f = r.futures!;
    // Funding on each side held, at the mark (the open of the bar holding the funding time):
    //   02-01 08:00:00.000  0.0001      6.859  LONG pays 1,000 x 6.859 x 0.0001 = 0.6859
    //                                          SHORT receives 400 x 6.859 x 0.0001 = 0.27436
    //   02-01 16:00:00.012  0.0001      6.760  LONG pays 0.676 (the short was closed at 12:00)
    //   02-02 00:00:00.004  0.0001      7.221  LONG pays 0.7221
    //   02-02 08:00:00.023  0.00048855  7.242  LONG pays 1,000 x 7.242 x 0.00048855 = 3.5380791
    expect(f.payments.map((p) => [p.time, p.positionSide, p.size, p.markPrice, p.payment])).toEqual([
      [T(1, 8), 'long', 1000, 6.859, expect.closeTo(-0.6859, 12)],
      [T(1, 8), 'short', -400, 6.859, expect.closeTo(0.27436, 12)],
      [T(1, 16) + 12, 'long', 1000, 6.76, expect.closeTo(-0.676, 12)],
      [T(2, 0) + 4, 'long', 1000, 7.221, expect.closeTo(-0.7221, 12)],
      [T(2, 8) + 23, 'long', 1000, 7.242, expect.closeTo(-3.5380791, 12)],
    ]);
    const funding = -0.6859 + 0.27436 - 0.676 - 0.7221 - 3.5380791; // -5.3477191
    expect(f.funding).toBeCloseTo(funding, 9);
    // Margin balance = wallet + the unrealised PnL of both sides: at the 08:00 bar's close 6.846,
    // wallet 10,000 - 3.4535 - 1.3666 (fees) - 0.6859 + 0.27436 = 9,994.76836; unrealised
    // LONG 1,000 x (6.846 - 6.907) = -61, SHORT -400 x (6.846 - 6.833) = -5.2: 9,928.56836.
    expect(bar(T(1, 8)).close).toBe(6.846);
    const k = r.equity.times.indexOf(T(1, 8, 1));
    expect(r.equity.values[k]).toBeCloseTo(9928.56836, 8);
    // Fees 1,000 x 6.907, 400 x 6.833, 400 x 6.843, 1,000 x 7.293, each x 0.05 %:
    // 3.4535 + 1.3666 + 1.3686 + 3.6465 = 9.8352.
    expect(r.portfolio.feesPaid).toBeCloseTo(9.8352, 9);
    // Realised: SHORT 400 x (6.833 - 6.843) = -4; LONG 1,000 x (7.293 - 6.907) = 386. Each side is
    // its own round trip.
    expect(r.trades.map((t) => [t.direction, t.size, t.entryPrice, t.exitPrice])).toEqual([
      ['short', 400, expect.closeTo(6.833, 12), 6.843],
      ['long', 1000, expect.closeTo(6.907, 12), 7.293],
    ]);
    expect(r.trades[0]!.pnlGross).toBeCloseTo(-4, 9);
    expect(r.trades[1]!.pnlGross).toBeCloseTo(386, 9);
    // 10,000 + 382 - 9.8352 - 5.3477191 = 10,366.8170809.
    expect(r.finalCash).toBeCloseTo(10366.8170809, 8);
    expect(r.portfolio.positions.map((p) => [p.positionSide, p.size])).toEqual([
      ['long', 0],
      ['short', 0],
    ]);
    expect(f.liquidations).toHaveLength(0);
    expect(f.warnings).toEqual([]);
  });

  it('a 50x cross hedge liquidated: both sides closed at their one liquidation price, clearance fees in turn', () => {
    // 2023-02-09 16:00: LONG 100 and SHORT 40 both at the open 7.606 on a 25 USDT wallet.
    expect(bar(T(9, 16)).open).toBe(7.606);
    const r = run(
      hedgeAt({
        [T(9, 16)]: [
          ['long', 100],
          ['short', -40],
        ],
      }),
      25,
      50,
      'cross',
      0.005,
      'hedge',
    );
    const f = r.futures!;
    // Fees 100 x 7.606 x 0.05 % = 0.3803 and 40 x 7.606 x 0.05 % = 0.15212. The 16:00:00.001
    // funding is charged on what is held at that instant, before the orders decided on 15:59's
    // close fill at 16:00's open (as the exchange does): neither side pays it. WB = 25 - 0.53242
    // = 24.46758, and no funding comes before the liquidation (the next is at 00:00).
    expect(f.payments).toEqual([]);
    // Hedge cross LP = (WB - LONG x EP_L + SHORT x EP_S) / (LONG x MMR + SHORT x MMR - LONG + SHORT)
    //   = (24.46758 - 760.6 + 304.24) / (0.65 + 0.26 - 100 + 40) = -431.89242 / -59.09 = 7.309061...
    const lp = -431.89242 / -59.09;
    // 19:24 (low 7.294) is the first bar whose low reaches it (19:23's low is 7.372).
    expect(bar(T(9, 19, 24)).low).toBe(7.294);
    expect(bar(T(9, 19, 23)).low).toBe(7.372);
    expect(f.liquidations.map((l) => [l.time, l.positionSide, l.size, l.price])).toEqual([
      [T(9, 19, 25), 'long', 100, 7.309],
      [T(9, 19, 25), 'short', -40, 7.309],
    ]);
    for (const l of f.liquidations) expect(l.liquidationPrice).toBeCloseTo(lp, 9);
    // Closed at the tick 7.309: LONG 100 x (7.309 - 7.606) = -29.7, SHORT 40 x (7.606 - 7.309) = 11.88;
    // left 24.46758 - 29.7 + 11.88 = 6.64758; clearance (0.5 %) LONG min(3.6545, 6.64758) = 3.6545,
    // then SHORT min(1.4618, 2.99308) = 1.4618; the wallet keeps 1.53128.
    expect(f.liquidations.map((l) => l.realizedPnl)).toEqual([expect.closeTo(-29.7, 9), expect.closeTo(11.88, 9)]);
    expect(f.liquidations.map((l) => l.clearanceFee)).toEqual([expect.closeTo(3.6545, 9), expect.closeTo(1.4618, 9)]);
    expect(r.finalCash).toBeCloseTo(1.53128, 9);
    expect(r.finalValue).toBeCloseTo(1.53128, 9);
  });
});
