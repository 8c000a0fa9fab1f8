import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyPositionFill,
  DEFAULT_USDM_BRACKETS,
  fundingIndexAfter,
  fundingPayment,
  fundingRateSeries,
  isLiquidatable,
  type LiquidationInputs,
  liquidationInputs,
  liquidationPrice,
  maintenanceMargin,
  marginBalance,
  type NotionalBracket,
  type PositionState,
  unrealizedPnl,
} from '../../src/index.ts';
import { BTCUSDT_2021 } from './schedules.ts';

// Invariants with no oracle but the definitions: the books add up, the liquidation price sits
// exactly where the margin balance meets the maintenance margin, and funding is the series applied
// to the positions held.

const SCHEDULES: readonly (readonly NotionalBracket[])[] = [DEFAULT_USDM_BRACKETS, BTCUSDT_2021];

describe('margin balance = wallet + unrealised PnL', () => {
  it('equals the start wallet minus fees plus every fill marked to market, after any fill sequence', () => {
    const fill = fc.record({
      qty: fc.integer({ min: -5_000, max: 5_000 }).filter((q) => q !== 0),
      price: fc.integer({ min: 1_000, max: 20_000 }),
    });
    fc.assert(
      fc.property(
        fc.array(fill, { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 500, max: 30_000 }),
        (fills, markMilli) => {
          const wallet0 = 1_000_000;
          const rate = 0.0004;
          const pos: PositionState = { size: 0, entryPrice: 0 };
          let wallet = wallet0;
          let fees = 0;
          let marked = 0;
          const mark = markMilli / 1_000;
          for (const f of fills) {
            const qty = f.qty / 100;
            const price = f.price / 1_000;
            const fee = Math.abs(qty) * price * rate;
            wallet += applyPositionFill(pos, qty, price) - fee;
            fees += fee;
            marked += qty * (mark - price);
          }
          const mb = marginBalance(wallet, unrealizedPnl(pos.size, pos.entryPrice, mark));
          expect(mb).toBeCloseTo(wallet0 - fees + marked, 6);
        },
      ),
      { numRuns: 500 },
    );
  });
});

/** Margin balance minus maintenance margin of the contract's positions at mark P, from the definitions. */
function headroom(x: LiquidationInputs, brackets: readonly NotionalBracket[], p: number): number {
  const mb =
    x.walletBalance +
    x.otherUnrealizedPnl +
    unrealizedPnl(x.bothSize, x.bothEntry, p) +
    unrealizedPnl(x.longSize, x.longEntry, p) +
    unrealizedPnl(-x.shortSize, x.shortEntry, p);
  const mm =
    x.otherMaintenance +
    maintenanceMargin(Math.abs(x.bothSize) * p, brackets) +
    maintenanceMargin(x.longSize * p, brackets) +
    maintenanceMargin(x.shortSize * p, brackets);
  return marginBalance(mb, 0) - mm;
}

const scenario = fc.record({
  schedule: fc.integer({ min: 0, max: SCHEDULES.length - 1 }),
  mode: fc.constantFrom('isolated-long', 'isolated-short', 'cross-both', 'cross-hedge'),
  size: fc.double({ min: 0.01, max: 200_000, noNaN: true }),
  entry: fc.double({ min: 0.05, max: 60_000, noNaN: true }),
  leverage: fc.integer({ min: 1, max: 75 }),
  extraWallet: fc.double({ min: 0, max: 3, noNaN: true }),
  otherMM: fc.double({ min: 0, max: 0.2, noNaN: true }),
  otherUpnl: fc.double({ min: -0.3, max: 0.3, noNaN: true }),
  hedgeShare: fc.double({ min: 0, max: 0.33, noNaN: true }),
  hedgeEntryMove: fc.double({ min: -0.1, max: 0.1, noNaN: true }),
  short: fc.boolean(),
});

describe('the liquidation price is exactly where margin balance reaches maintenance margin', () => {
  it('headroom is 0 at the price, > 0 on the safe side and < 0 past it (isolated, cross, one-way, hedge)', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        const brackets = SCHEDULES[s.schedule] as readonly NotionalBracket[];
        const notional = s.size * s.entry;
        const x = liquidationInputs();
        x.walletBalance = notional / s.leverage;
        let netLong: boolean;
        switch (s.mode) {
          case 'isolated-long':
            x.bothSize = s.size;
            x.bothEntry = s.entry;
            netLong = true;
            break;
          case 'isolated-short':
            x.bothSize = -s.size;
            x.bothEntry = s.entry;
            netLong = false;
            break;
          case 'cross-both':
            x.walletBalance += notional * s.extraWallet;
            x.otherMaintenance = notional * s.otherMM * 0.1;
            x.otherUnrealizedPnl = notional * s.otherUpnl;
            x.bothSize = s.short ? -s.size : s.size;
            x.bothEntry = s.entry;
            netLong = !s.short;
            break;
          case 'cross-hedge': {
            x.walletBalance += notional * s.extraWallet;
            const big = s.size;
            const small = s.size * s.hedgeShare;
            const hedgeEntry = s.entry * (1 + s.hedgeEntryMove);
            if (s.short) {
              x.shortSize = big;
              x.shortEntry = s.entry;
              x.longSize = small;
              x.longEntry = hedgeEntry;
            } else {
              x.longSize = big;
              x.longEntry = s.entry;
              x.shortSize = small;
              x.shortEntry = hedgeEntry;
            }
            netLong = !s.short;
            break;
          }
        }
        const lp = liquidationPrice(x, brackets);
        const scale = x.walletBalance + notional + Math.abs(x.otherUnrealizedPnl) + x.otherMaintenance;
        if (lp === 0) {
          // No liquidation price: only a long can have none, and then no fall to 0 liquidates it.
          expect(netLong).toBe(true);
          expect(headroom(x, brackets, 1e-9)).toBeGreaterThanOrEqual(-1e-9 * scale);
          return;
        }
        expect(Math.abs(headroom(x, brackets, lp))).toBeLessThanOrEqual(1e-9 * scale);
        // A 1e-6 move of a price within rounding of 0 (a fully backed long beside a maintenance of
        // 1e-20) changes the PnL by less than a double can tell from the wallet: no side to test.
        if (s.size * lp * 1e-6 < 1e-12 * scale) return;
        const safe = netLong ? lp * (1 + 1e-6) : lp * (1 - 1e-6);
        const past = netLong ? lp * (1 - 1e-6) : lp * (1 + 1e-6);
        expect(headroom(x, brackets, safe)).toBeGreaterThan(0);
        expect(headroom(x, brackets, past)).toBeLessThan(0);
        // The same two sides through the predicate the engine and the simulator use.
        const mbAt = (p: number): number => headroom(x, brackets, p) + maintenanceAt(x, brackets, p);
        expect(isLiquidatable(mbAt(safe), maintenanceAt(x, brackets, safe))).toBe(false);
        expect(isLiquidatable(mbAt(past), maintenanceAt(x, brackets, past))).toBe(true);
      }),
      { numRuns: 3_000 },
    );
  });
});

function maintenanceAt(x: LiquidationInputs, brackets: readonly NotionalBracket[], p: number): number {
  return (
    x.otherMaintenance +
    maintenanceMargin(Math.abs(x.bothSize) * p, brackets) +
    maintenanceMargin(x.longSize * p, brackets) +
    maintenanceMargin(x.shortSize * p, brackets)
  );
}

describe('funding sums to the series applied to the positions held', () => {
  const HOUR = 3_600_000;
  const T0 = Date.UTC(2023, 1, 1);
  const world = fc.record({
    rates: fc.array(fc.integer({ min: -50, max: 500 }), { minLength: 1, maxLength: 30 }),
    jitter: fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 30, maxLength: 30 }),
    // Position size in force from each hour on (one value per hour of the run).
    sizes: fc.array(fc.integer({ min: -300, max: 300 }), { minLength: 30 * 8 + 8, maxLength: 30 * 8 + 8 }),
    closes: fc.array(fc.integer({ min: 5_000, max: 9_000 }), { minLength: 30 * 8 + 8, maxLength: 30 * 8 + 8 }),
  });

  it('a bar-by-bar cursor charges exactly rate x mark x size at every funding time, and longs pay what shorts receive', () => {
    fc.assert(
      fc.property(world, (w) => {
        const n = w.rates.length;
        const series = fundingRateSeries({
          time: w.rates.map((_, i) => T0 + (i + 1) * 8 * HOUR + (w.jitter[i] as number)),
          rate: w.rates.map((r) => r / 1_000_000),
          intervalHours: 8,
        });
        const hours = n * 8 + 8;
        // Oracle: the dot product over funding events of the size held and the mark at that time.
        let expected = 0;
        for (let j = 0; j < n; j++) {
          const h = Math.floor(((series.time[j] as number) - T0) / HOUR); // the hourly bar it falls in
          expected += -(w.sizes[h] as number) * ((w.closes[h] as number) / 1_000) * (series.rate[j] as number);
        }
        // The engine's way: walk hourly bars, charge the fundings that fall in each bar on the
        // position held through it, at that bar's close as the mark.
        let cursor = fundingIndexAfter(series, T0 - 1);
        let charged = 0;
        let mirrored = 0;
        for (let h = 0; h < hours; h++) {
          const barEnd = T0 + (h + 1) * HOUR;
          const size = w.sizes[h] as number;
          const mark = (w.closes[h] as number) / 1_000;
          while (cursor < series.length && (series.time[cursor] as number) < barEnd) {
            charged += fundingPayment(size, mark, series.rate[cursor] as number);
            mirrored += fundingPayment(-size, mark, series.rate[cursor] as number);
            cursor++;
          }
        }
        expect(cursor).toBe(series.length);
        expect(charged).toBeCloseTo(expected, 9);
        expect(charged + mirrored).toBeCloseTo(0, 9);
      }),
      { numRuns: 500 },
    );
  });
});
