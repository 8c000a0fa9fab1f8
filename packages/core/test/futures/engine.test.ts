/**
 * Perpetuals in the engine (FuturesBook through runBacktest): margin on arrival, isolated and
 * cross margin, funding on the series' schedule, liquidation at the documented price with the
 * clearance fee. Every expectation is computed by hand in the test (docs/futures.md).
 */
import { describe, expect, it } from 'vitest';
import {
  type EngineEvent,
  type FuturesMarketSettings,
  fundingRateSeries,
  type MarginMode,
  runBacktest,
} from '../../src/index.ts';
import { bars, scripted, T0 } from '../helpers.ts';

const SYMBOL = 'LINK/USDT:USDT';
const MIN = 60_000;

function settings(
  leverage: number,
  marginMode: MarginMode,
  funding: FuturesMarketSettings['funding'],
): () => FuturesMarketSettings {
  return () => ({ leverage, marginMode, funding });
}

/** One funding event at bar i's open (with Binance's 13 ms of jitter). */
function fundingAt(i: number, rate: number) {
  return fundingRateSeries({ time: [T0 + i * MIN + 13], rate: [rate], intervalHours: 8 });
}

describe('futures in the engine', () => {
  it('isolated 5x long: funding paid, then liquidated at the liquidation price with the clearance fee', () => {
    const events: EngineEvent[] = [];
    const r = runBacktest({
      strategy: scripted({ 0: (ctx) => void ctx.buy(1000) }),
      data: [
        {
          symbol: SYMBOL,
          timeframe: '1m',
          instrument: { tickSize: 0.001, stepSize: 1 },
          series: bars([
            [7, 7, 7, 7],
            [7, 7.1, 6.9, 7],
            [7, 7, 5.7, 5.8],
            [5.8, 5.8, 5.6, 5.7],
            [5.7, 5.8, 5.6, 5.7],
          ]),
        },
      ],
      cash: 10_000,
      futures: settings(5, 'isolated', fundingAt(2, 0.0001)),
      onEvent: (e) => events.push(e),
    });
    const f = r.futures!;
    // Bought 1,000 at bar 1's open, 7: isolated wallet 7,000 / 5 = 1,400.
    // Bar 2: funding at its open 7: the long pays 1,000 x 7 x 0.0001 = 0.7 (from its isolated wallet: 1,399.3).
    expect(f.fundingEvents).toBe(1);
    expect(f.funding).toBeCloseTo(-0.7, 12);
    expect(f.fundingPaid).toBeCloseTo(0.7, 12);
    // LP = (1,399.3 - 7,000) / (1,000 x 0.0065 - 1,000) = 5.637343...: bar 2's low 5.7 is above it,
    // bar 3's low 5.6 crosses it. Close at 5.637 (the tick): realised 1,000 x (5.637 - 7) = -1,363;
    // margin left 1,399.3 - 1,363 = 36.3; clearance min(1.25 % x 5,637 = 70.46, 36.3) = 36.3.
    expect(f.liquidations).toHaveLength(1);
    const l = f.liquidations[0]!;
    expect(l.time).toBe(T0 + 4 * MIN);
    expect(l.liquidationPrice).toBeCloseTo(5600.7 / 993.5, 12);
    expect(l.price).toBe(5.637);
    expect(l.realizedPnl).toBeCloseTo(-1363, 9);
    expect(l.clearanceFee).toBeCloseTo(36.3, 9);
    expect(f.liquidationFees).toBeCloseTo(36.3, 9);
    // The user loses exactly the isolated margin (the funding came out of it): 10,000 - 0.7 - 1,363
    // - 36.3 = 10,000 - 1,400.
    expect(r.finalCash).toBeCloseTo(8600, 9);
    expect(r.finalValue).toBeCloseTo(8600, 9);
    expect(r.portfolio.positions[0]!.size).toBe(0);
    expect(events.filter((e) => e.type === 'futures.liquidation')).toHaveLength(1);
    // The forced close is a closed trade (its fee is the clearance fee).
    expect(r.trades).toHaveLength(1);
  });

  it('cross 3x short with fees: funding received, closed at a profit', () => {
    const r = runBacktest({
      strategy: scripted({ 0: (ctx) => void ctx.sell(300), 3: (ctx) => void ctx.close() }),
      data: [
        {
          symbol: SYMBOL,
          timeframe: '1m',
          series: bars([
            [7, 7, 7, 7],
            [7, 7.1, 6.9, 7],
            [6.9, 7, 6.8, 6.9],
            [6.8, 6.8, 6.5, 6.6],
            [6.5, 6.6, 6.4, 6.5],
          ]),
        },
      ],
      cash: 1000,
      fee: 0.0005,
      futures: settings(3, 'cross', fundingAt(2, 0.0002)),
    });
    const f = r.futures!;
    // Sold 300 at 7: fee 300 x 7 x 0.0005 = 1.05. Funding at bar 2's open 6.9: the short receives
    // 300 x 6.9 x 0.0002 = 0.414. Bought back at bar 4's open 6.5: realised 300 x 0.5 = 150, fee 0.975.
    expect(f.funding).toBeCloseTo(0.414, 12);
    expect(f.fundingReceived).toBeCloseTo(0.414, 12);
    expect(r.portfolio.feesPaid).toBeCloseTo(1.05 + 0.975, 12);
    expect(r.portfolio.realizedPnl).toBeCloseTo(150, 12);
    expect(r.finalCash).toBeCloseTo(1000 - 1.05 + 0.414 + 150 - 0.975, 9);
    expect(f.liquidations).toHaveLength(0);
  });

  it('funding stamped at a bar open is charged before that open fills: a close decided on the bar before still pays it, an open does not', () => {
    // Binance charges the positions held at the funding instant (here bar 2's open + 13 ms); an
    // order decided as bar 1 closes reaches the exchange after that, and fills at bar 2's open.
    const run = (script: Parameters<typeof scripted>[0]) =>
      runBacktest({
        strategy: scripted(script),
        data: [
          {
            symbol: SYMBOL,
            timeframe: '1m',
            series: bars([
              [7, 7, 7, 7],
              [7, 7.1, 6.9, 7],
              [6.9, 7, 6.8, 6.9],
              [6.8, 6.8, 6.5, 6.6],
            ]),
          },
        ],
        cash: 1000,
        futures: settings(3, 'cross', fundingAt(2, 0.0002)),
      }).futures!;
    // Long 100 bought at bar 1's open 7, closed on bar 1's signal at bar 2's open 6.9: held at the
    // funding instant, it pays 100 x 6.9 x 0.0002 = 0.138.
    const closed = run({ 0: (ctx) => void ctx.buy(100), 1: (ctx) => void ctx.close() });
    expect(closed.payments.map((p) => [p.time, p.size, p.markPrice, p.payment])).toEqual([
      [T0 + 2 * MIN + 13, 100, 6.9, expect.closeTo(-0.138, 12)],
    ]);
    // Bought on bar 1's signal at bar 2's open: not held at the funding instant, so nothing.
    const opened = run({ 1: (ctx) => void ctx.buy(100) });
    expect(opened.payments).toEqual([]);
    expect(opened.fundingEvents).toBe(0);
  });

  it('cross 10x short: liquidated at the liquidation price, the wallet ends at zero, never below', () => {
    const r = runBacktest({
      strategy: scripted({ 0: (ctx) => void ctx.sell(1000) }),
      data: [
        {
          symbol: SYMBOL,
          timeframe: '1m',
          instrument: { tickSize: 0.001 },
          series: bars([
            [7, 7, 7, 7],
            [7, 7.5, 6.9, 7.4],
            [7.4, 8.5, 7.4, 8.4],
            [8.4, 8.5, 8.3, 8.4],
          ]),
        },
      ],
      cash: 1000,
      futures: settings(10, 'cross', fundingRateSeries({ time: [], rate: [], intervalHours: 8 })),
    });
    const f = r.futures!;
    // LP = (1,000 + 1,000 x 7) / (1,000 x 0.0065 + 1,000) = 7.94834 (notional 7,948: tier 1). Bar 2's
    // high 8.5 crosses it: close at 7.948; realised 1,000 x (7 - 7.948) = -948; left 52; clearance
    // min(1.25 % x 7,948 = 99.35, 52) = 52: the wallet ends at 0.
    expect(f.liquidations).toHaveLength(1);
    expect(f.liquidations[0]!.price).toBe(7.948);
    expect(f.liquidations[0]!.clearanceFee).toBeCloseTo(52, 9);
    expect(r.finalCash).toBeCloseTo(0, 9);
    expect(r.finalCash).toBeGreaterThanOrEqual(0);
    expect(f.warnings.some((w) => w.includes('below zero'))).toBe(false);
  });

  it('an order whose initial margin the account cannot cover is rejected, with the numbers', () => {
    const r = runBacktest({
      strategy: scripted({ 0: (ctx) => void ctx.buy(1000) }),
      data: [
        {
          symbol: SYMBOL,
          timeframe: '1m',
          series: bars([
            [7, 7, 7, 7],
            [7, 7, 7, 7],
          ]),
        },
      ],
      cash: 100,
      futures: settings(5, 'cross', null),
    });
    expect(r.orders[0]!.status).toBe('rejected');
    expect(r.orders[0]!.reason).toContain('insufficient margin');
    expect(r.orders[0]!.reason).toContain('needs 1400');
    // No funding data is a warning, never a silent zero.
    expect(r.futures!.warnings.join('\n')).toContain('no funding data');
  });

  it('close() on a perpetual is reduce-only: when a stop closes the position first, the close is cancelled, never a short', () => {
    const r = runBacktest({
      strategy: scripted({
        0: (ctx) => void ctx.buy(100),
        // A plain stop at the open's level fills first (submitted first), then the close has nothing left.
        1: (ctx) => {
          ctx.submit({ type: 'stop-market', side: 'sell', amount: 100, stopPrice: 7 });
          ctx.close();
        },
      }),
      data: [
        {
          symbol: SYMBOL,
          timeframe: '1m',
          series: bars([
            [7, 7, 7, 7],
            [7, 7.1, 6.9, 7],
            [7, 7.1, 6.9, 7],
            [7, 7.1, 6.9, 7],
          ]),
        },
      ],
      cash: 10_000,
      futures: settings(3, 'cross', null),
    });
    const close = r.orders[2]!;
    expect(close.request.reduceOnly).toBe(true);
    expect(close.status).toBe('cancelled');
    expect(close.reason).toBe('reduce-only order would open a position: nothing to reduce');
    expect(r.portfolio.positions[0]!.size).toBe(0);
  });

  it('orderTargetPercent on a perpetual targets fraction x equity x leverage as notional', () => {
    const r = runBacktest({
      strategy: scripted({ 0: (ctx) => void ctx.orderTargetPercent(-0.5) }),
      data: [
        {
          symbol: SYMBOL,
          timeframe: '1m',
          series: bars([
            [10, 10, 10, 10],
            [10, 10, 10, 10],
          ]),
        },
      ],
      cash: 1000,
      futures: settings(3, 'isolated', null),
    });
    // 1,000 x 0.5 x 3 = 1,500 of notional at 10: short 150.
    expect(r.portfolio.positions[0]!.size).toBe(-150);
  });

  it('missing funding slots in the run are warnings naming the gap', () => {
    const r = runBacktest({
      strategy: scripted({}),
      data: [
        {
          symbol: SYMBOL,
          timeframe: '8h',
          series: bars(
            [
              [7, 7, 7, 7],
              [7, 7, 7, 7],
              [7, 7, 7, 7],
            ],
            8 * 3_600_000,
          ),
        },
      ],
      futures: settings(2, 'cross', fundingAt(0, 0.0001)),
    });
    expect(r.futures!.warnings.join('\n')).toMatch(/no funding data for 2 funding time\(s\)/);
  });
});
