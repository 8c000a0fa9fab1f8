import { describe, expect, it } from 'vitest';
import {
  applyPositionFill,
  availableBalance,
  BracketError,
  bracketFor,
  constantFundingSeries,
  DEFAULT_USDM_BRACKETS,
  defineBrackets,
  FundingSeriesError,
  fundingGaps,
  fundingIndexAfter,
  fundingPayment,
  fundingRateSeries,
  initialMargin,
  isLiquidatable,
  liquidationClearanceFee,
  liquidationInputs,
  liquidationPrice,
  liquidationPriceFormula,
  maintenanceMargin,
  marginBalance,
  marginRatio,
  maxNotionalAtLeverage,
  type PositionState,
  positionNotional,
  unrealizedPnl,
} from '../../src/index.ts';
import { BTCUSDT_2021, ETHUSDT_2021 } from './schedules.ts';

// Oracle: hand-computed worked examples, each written out below, and Binance's own worked example
// for its liquidation-price formula (FAQ "How to Calculate Liquidation Price of USDⓈ-M Futures
// Contracts", https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93; the
// example account is also reproduced in freqtrade's test suite, tests/exchange/test_binance.py).

describe('notional brackets', () => {
  it("derives each tier's maintenance amount by Binance's rule (its FAQ: level 3 = 250,000 x (1% - 0.5%) + 50 = 1,300)", () => {
    expect(BTCUSDT_2021.map((b) => b.cum)).toEqual([0, 50, 1_300, 16_300, 266_300]);
    // 2,000,000 x (10% - 5%) + 35,365 = 135,365: the cum Binance's example uses for ETHUSDT.
    expect(ETHUSDT_2021[5]?.cum).toBe(135_365);
    expect(DEFAULT_USDM_BRACKETS.map((b) => b.cum)).toEqual([0, 35, 535, 8_035, 58_035, 108_035, 233_035, 1_233_035]);
  });

  it('refuses a table whose cum does not follow the rule, or with a hole between tiers', () => {
    expect(() =>
      defineBrackets([
        { notionalFloor: 0, notionalCap: 10_000, maxLeverage: 75, maintMarginRate: 0.0065 },
        { notionalFloor: 10_000, notionalCap: 50_000, maxLeverage: 50, maintMarginRate: 0.01, cum: 40 },
      ]),
    ).toThrow(/cum 40 differs .* = 35/);
    expect(() =>
      defineBrackets([
        { notionalFloor: 0, notionalCap: 10_000, maxLeverage: 75, maintMarginRate: 0.0065 },
        { notionalFloor: 20_000, notionalCap: 50_000, maxLeverage: 50, maintMarginRate: 0.01 },
      ]),
    ).toThrow(BracketError);
  });

  it('puts a notional on a floor in the upper tier, and caps leverage by notional', () => {
    expect(bracketFor(DEFAULT_USDM_BRACKETS, 9_999.99).bracket).toBe(1);
    expect(bracketFor(DEFAULT_USDM_BRACKETS, 10_000).bracket).toBe(2);
    expect(maxNotionalAtLeverage(DEFAULT_USDM_BRACKETS, 75)).toBe(10_000);
    expect(maxNotionalAtLeverage(DEFAULT_USDM_BRACKETS, 20)).toBe(250_000);
    expect(maxNotionalAtLeverage(DEFAULT_USDM_BRACKETS, 100)).toBe(0);
  });

  it('maintenance margin is continuous at a tier boundary (the point of cum)', () => {
    // 10,000 x 0.65% - 0 = 65 just below; 10,000 x 1% - 35 = 65 on the floor of tier 2.
    expect(maintenanceMargin(10_000 - 1e-9, DEFAULT_USDM_BRACKETS)).toBeCloseTo(65, 9);
    expect(maintenanceMargin(10_000, DEFAULT_USDM_BRACKETS)).toBeCloseTo(65, 12);
  });
});

describe("liquidation price: Binance's worked example", () => {
  // Cross account, wallet 1,535,443.01 USDT, two longs:
  //   BTCUSDT 109.488 @ 32,481.98, mark 31,967.27; ETHUSDT 3,683.979 @ 1,456.84, mark 1,335.18.
  const WB = 1_535_443.01;
  const btcNotional = 109.488 * 31_967.27; // 3,500,032.45776 -> tier 4 (2.5 %, cum 16,300)
  const ethNotional = 3_683.979 * 1_335.18; // 4,918,775.08122 -> tier 6 (10 %, cum 135,365)
  const btcMM = btcNotional * 0.025 - 16_300; // 71,200.81144
  const ethMM = ethNotional * 0.1 - 135_365; // 356,512.508122
  const btcUpnl = 109.488 * (31_967.27 - 32_481.98); // -56,354.57
  const ethUpnl = 3_683.979 * (1_335.18 - 1_456.84); // -448,192.89

  it('ETHUSDT cross = 1,153.26', () => {
    const x = liquidationInputs();
    x.walletBalance = WB;
    x.otherMaintenance = btcMM;
    x.otherUnrealizedPnl = btcUpnl;
    x.bothSize = 3_683.979;
    x.bothEntry = 1_456.84;
    expect(maintenanceMargin(btcNotional, BTCUSDT_2021)).toBeCloseTo(71_200.81144, 5);
    // (WB - TMM1 + UPNL1 + cumB - 1 x 3,683.979 x 1,456.84) / (3,683.979 x 0.10 - 1 x 3,683.979)
    const byHand = (WB - btcMM + btcUpnl + 135_365 - 3_683.979 * 1_456.84) / (3_683.979 * 0.1 - 3_683.979);
    expect(liquidationPriceFormula(x, 0.1, 135_365, 0, 0, 0, 0)).toBeCloseTo(byHand, 9);
    expect(liquidationPrice(x, ETHUSDT_2021)).toBeCloseTo(1_153.26, 2);
  });

  it('BTCUSDT cross = 26,316.89', () => {
    const x = liquidationInputs();
    x.walletBalance = WB;
    x.otherMaintenance = ethMM;
    x.otherUnrealizedPnl = ethUpnl;
    x.bothSize = 109.488;
    x.bothEntry = 32_481.98;
    expect(liquidationPrice(x, BTCUSDT_2021)).toBeCloseTo(26_316.89, 2);
  });

  it('isolated (TMM = UPNL = 0): ETHUSDT 1,114.78, BTCUSDT 18,778.73', () => {
    const x = liquidationInputs();
    x.walletBalance = WB;
    x.bothSize = 3_683.979;
    x.bothEntry = 1_456.84;
    expect(liquidationPrice(x, ETHUSDT_2021)).toBeCloseTo(1_114.78, 2);
    x.bothSize = 109.488;
    x.bothEntry = 32_481.98;
    // (1,535,443.01 + 16,300 - 109.488 x 32,481.98) / (109.488 x 0.025 - 109.488)
    expect(liquidationPrice(x, BTCUSDT_2021)).toBeCloseTo(18_778.73, 2);
  });
});

describe('liquidation price: LINKUSDT worked examples (docs/futures.md)', () => {
  it('5x isolated long, 1,000 LINK @ 7.000: LP = (1,400 - 7,000) / (6.5 - 1,000) = 5.6366', () => {
    const x = liquidationInputs();
    x.walletBalance = initialMargin(positionNotional(1_000, 7), 5); // 7,000 / 5 = 1,400
    expect(x.walletBalance).toBe(1_400);
    x.bothSize = 1_000;
    x.bothEntry = 7;
    const lp = liquidationPrice(x, DEFAULT_USDM_BRACKETS);
    expect(lp).toBeCloseTo((1_400 - 7_000) / (1_000 * 0.0065 - 1_000), 12); // 5.636638...
    // At the LP the margin balance equals the maintenance margin: 36.638...
    const mb = marginBalance(1_400, unrealizedPnl(1_000, 7, lp));
    const mm = maintenanceMargin(positionNotional(1_000, lp), DEFAULT_USDM_BRACKETS);
    expect(mb).toBeCloseTo(mm, 9);
    expect(mm).toBeCloseTo(36.6381, 4);
  });

  it('3x isolated short, 1,000 LINK @ 7.000: LP = (2,333.33 + 7,000) / (6.5 + 1,000) = 9.2731', () => {
    const x = liquidationInputs();
    x.walletBalance = 7_000 / 3;
    x.bothSize = -1_000;
    x.bothEntry = 7;
    expect(liquidationPrice(x, DEFAULT_USDM_BRACKETS)).toBeCloseTo((7_000 / 3 + 7_000) / 1_006.5, 12);
  });

  it('recomputes with the tier at the liquidation price: a cross short on a 10,000 USDT wallet', () => {
    const x = liquidationInputs();
    x.walletBalance = 10_000;
    x.bothSize = -1_000;
    x.bothEntry = 7;
    // Tier 1 would give 17,000 / 1,006.5 = 16.890, a notional of 16,890: tier 2, not 1. Tier 2
    // (1 %, cum 35): (10,000 + 35 + 7,000) / (10 + 1,000) = 16.8663, notional 16,866 -> tier 2.
    expect(liquidationPriceFormula(x, 0.0065, 0, 0, 0, 0, 0)).toBeCloseTo(17_000 / 1_006.5, 12);
    expect(liquidationPrice(x, DEFAULT_USDM_BRACKETS)).toBeCloseTo(17_035 / 1_010, 12);
  });

  it('hedge mode cross: LONG and SHORT of one symbol share one price', () => {
    const x = liquidationInputs();
    x.walletBalance = 1_000;
    x.longSize = 1_000;
    x.longEntry = 7;
    x.shortSize = 400;
    x.shortEntry = 7.2;
    // (1,000 + 0 + 0 - 1,000 x 7 + 400 x 7.2) / (1,000 x 0.0065 + 400 x 0.0065 - 1,000 + 400)
    expect(liquidationPrice(x, DEFAULT_USDM_BRACKETS)).toBeCloseTo((1_000 - 7_000 + 2_880) / (6.5 + 2.6 - 600), 12);
  });

  it('is 0 when no fall can liquidate (a fully collateralised 1x long) or there is no position', () => {
    const x = liquidationInputs();
    x.walletBalance = 7_000;
    x.bothSize = 1_000;
    x.bothEntry = 7;
    expect(liquidationPrice(x, DEFAULT_USDM_BRACKETS)).toBe(0);
    expect(liquidationPrice(liquidationInputs(), DEFAULT_USDM_BRACKETS)).toBe(0);
  });
});

describe('margin, PnL, funding, clearance', () => {
  it('margin balance, ratio and the liquidation test', () => {
    // 1,000 LINK long @ 7.000, 5x isolated (1,400), mark 6.000: UPNL -1,000, MB 400, MM 39, ratio 9.75 %.
    const upnl = unrealizedPnl(1_000, 7, 6);
    expect(upnl).toBe(-1_000);
    const mb = marginBalance(1_400, upnl);
    const mm = maintenanceMargin(positionNotional(1_000, 6), DEFAULT_USDM_BRACKETS);
    expect(mm).toBeCloseTo(39, 12);
    expect(marginRatio(mm, mb)).toBeCloseTo(39 / 400, 12);
    expect(isLiquidatable(mb, mm)).toBe(false);
    expect(isLiquidatable(39, 39)).toBe(true);
    expect(marginRatio(10, 0)).toBe(Number.POSITIVE_INFINITY);
    expect(availableBalance(10_000, -200, 1_400, 100)).toBe(8_300);
    expect(availableBalance(100, -200, 0, 0)).toBe(0);
  });

  it('funding: longs pay a positive rate, shorts receive it; a negative rate reverses both', () => {
    // 1,000 LINK at mark 7.000, rate 0.01 %: 1,000 x 7 x 0.0001 = 0.70 USDT.
    expect(fundingPayment(1_000, 7, 0.0001)).toBeCloseTo(-0.7, 12);
    expect(fundingPayment(-1_000, 7, 0.0001)).toBeCloseTo(0.7, 12);
    expect(fundingPayment(1_000, 7, -0.00005015)).toBeCloseTo(0.35105, 12);
    expect(Object.is(fundingPayment(0, 7, 0.0001), 0)).toBe(true);
  });

  it('position fills: average entry on adds, realised PnL on reduces, a flip reopens at the fill price', () => {
    const p: PositionState = { size: 0, entryPrice: 0 };
    expect(applyPositionFill(p, 100, 7)).toBe(0);
    expect(applyPositionFill(p, 100, 8)).toBe(0);
    expect(p).toEqual({ size: 200, entryPrice: 7.5 }); // (100 x 7 + 100 x 8) / 200
    expect(applyPositionFill(p, -50, 9)).toBeCloseTo(75, 12); // 50 x (9 - 7.5)
    expect(p).toEqual({ size: 150, entryPrice: 7.5 });
    expect(applyPositionFill(p, -200, 6)).toBeCloseTo(-225, 12); // 150 x (6 - 7.5), then 50 short @ 6
    expect(p).toEqual({ size: -50, entryPrice: 6 });
    expect(applyPositionFill(p, 50, 5)).toBeCloseTo(50, 12); // short 50 x (6 - 5)
    expect(p).toEqual({ size: 0, entryPrice: 0 });
    // 0.1 + 0.2 closes a 0.3 position exactly despite binary noise.
    const q: PositionState = { size: 0, entryPrice: 0 };
    applyPositionFill(q, 0.1, 7);
    applyPositionFill(q, 0.2, 7);
    applyPositionFill(q, -0.3, 7);
    expect(q).toEqual({ size: 0, entryPrice: 0 });
  });

  it('the clearance fee is rate x notional, capped by what margin is left, never negative', () => {
    // 1,000 LINK liquidated at 5.6366 with a 1.25 % clearance rate: 70.46, but only 36.64 is left.
    expect(liquidationClearanceFee(5_636.638, 0.0125, 1_000)).toBeCloseTo(70.457975, 9);
    expect(liquidationClearanceFee(5_636.638, 0.0125, 36.638)).toBe(36.638);
    expect(liquidationClearanceFee(5_636.638, 0.0125, -3)).toBe(0);
  });
});

describe('funding series', () => {
  it('a constant rate lands on the 00:00 / 08:00 / 16:00 UTC schedule', () => {
    const from = Date.UTC(2023, 1, 1, 3);
    const s = constantFundingSeries(0.0001, from, Date.UTC(2023, 1, 2, 8));
    expect([...s.time].map((t) => new Date(t).toISOString().slice(0, 16))).toEqual([
      '2023-02-01T08:00',
      '2023-02-01T16:00',
      '2023-02-02T00:00',
      '2023-02-02T08:00',
    ]);
    expect([...s.rate]).toEqual([0.0001, 0.0001, 0.0001, 0.0001]);
    expect(fundingIndexAfter(s, Date.UTC(2023, 1, 1, 16))).toBe(2);
    expect(fundingIndexAfter(s, 0)).toBe(0);
  });

  it('refuses times out of order and rates that are not numbers', () => {
    expect(() => fundingRateSeries({ time: [2, 1], rate: [0, 0], intervalHours: 8 })).toThrow(FundingSeriesError);
    expect(() => fundingRateSeries({ time: [1], rate: [Number.NaN], intervalHours: 8 })).toThrow(/row 0/);
  });

  it('counts the schedule slots with no funding event as gaps', () => {
    const H = 3_600_000;
    const t0 = Date.UTC(2023, 1, 1);
    const s = fundingRateSeries({ time: [t0 + 8 * H + 5, t0 + 32 * H + 3], rate: [0.0001, 0.0001], intervalHours: 8 });
    expect(fundingGaps(s, t0, t0 + 40 * H)).toEqual([
      { after: t0, before: t0 + 8 * H + 5, missing: 1 }, // 00:00
      { after: t0 + 8 * H + 5, before: t0 + 32 * H + 3, missing: 2 }, // 16:00, 00:00
      { after: t0 + 32 * H + 3, before: t0 + 40 * H, missing: 1 }, // 16:00
    ]);
    expect(fundingGaps(constantFundingSeries(0.0001, t0, t0 + 40 * H), t0, t0 + 40 * H)).toEqual([]);
  });
});
