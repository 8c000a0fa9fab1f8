/**
 * Invariants of the engine's futures book (FuturesBook with the Account, and through runBacktest),
 * against the definitions in docs/futures.md recomputed independently in each test: the margin
 * balance is the wallet plus the unrealised PnL; a position is liquidated on a bar exactly when its
 * margin balance at the bar's adverse extreme has fallen to its maintenance margin; funding sums
 * to the series applied to the positions held at each funding time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Account,
  type Bar,
  bracketFor,
  DEFAULT_USDM_BRACKETS,
  defineInstrument,
  FUNDING_AT_OPEN_MS,
  FuturesBook,
  fundingRateSeries,
  type MarginMode,
  runBacktest,
} from '../../src/index.ts';
import { bars, scripted, T0 } from '../helpers.ts';

const SYMBOL = 'LINK/USDT:USDT';
const inst = defineInstrument({ symbol: SYMBOL });
const HOUR = 3_600_000;

function ohlc(time: number, open: number, high: number, low: number, close: number): Bar {
  return {
    time,
    open,
    high,
    low,
    close,
    volume: 1,
    quoteVolume: Number.NaN,
    trades: Number.NaN,
    takerBuyVolume: Number.NaN,
  };
}

function flatBar(time: number, price: number): Bar {
  return ohlc(time, price, price, price, price);
}

const modeArb = fc.constantFrom<MarginMode>('cross', 'isolated');

describe('futures book invariants', () => {
  it('margin balance = wallet + unrealised PnL at the mark, after any fills (equity is the margin balance)', () => {
    const fill = fc.record({
      qty: fc.integer({ min: -500, max: 500 }).filter((q) => q !== 0),
      // Prices and marks within 6 % of each other and at most 10x: no position can be liquidated.
      price: fc.integer({ min: 6_800, max: 7_200 }),
      mark: fc.integer({ min: 6_800, max: 7_200 }),
    });
    fc.assert(
      fc.property(
        fc.array(fill, { minLength: 1, maxLength: 30 }),
        modeArb,
        fc.integer({ min: 1, max: 10 }),
        (fs, mode, lev) => {
          const acc = new Account('USDT', 1e9);
          const book = new FuturesBook(acc, [inst], () => ({ leverage: lev, marginMode: mode, funding: null }));
          let t = T0;
          for (const f of fs) {
            const price = f.price / 1000;
            const mark = f.mark / 1000;
            const fee = Math.abs(f.qty) * price * 0.0005;
            book.beforeFill(SYMBOL, f.qty, price);
            acc.applyFill(inst, f.qty > 0 ? 'buy' : 'sell', price, Math.abs(f.qty), fee, 'USDT');
            book.onBar(SYMBOL, flatBar(t, mark), t + 60_000);
            t += 60_000;
            const p = acc.position(inst);
            const upnl = p.size === 0 ? 0 : p.size * (mark - p.avgPrice);
            expect(acc.equity()).toBeCloseTo(acc.cash + upnl, 6);
            const iw = book.isolatedWallet(SYMBOL);
            if (mode === 'cross') {
              expect(iw).toBe(0);
              expect(book.marginBalance(SYMBOL)).toBeCloseTo(acc.cash + upnl, 6);
            } else {
              // Isolated: the position's margin is its own wallet; the wallet balance holds it.
              expect(book.marginBalance(SYMBOL)).toBeCloseTo(iw + upnl, 6);
              expect(book.crossWallet() + iw).toBeCloseTo(acc.cash, 6);
              if (p.size === 0) expect(iw).toBe(0);
              else expect(iw).toBeCloseTo((Math.abs(p.size) * p.avgPrice) / lev, 6);
            }
          }
          expect(book.liquidations).toHaveLength(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('liquidated on a bar exactly when the margin balance at its adverse extreme is at or below maintenance', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5_000 }),
        fc.boolean(),
        fc.integer({ min: 2, max: 75 }),
        modeArb,
        fc.integer({ min: 0, max: 2_000 }),
        fc.integer({ min: 1, max: 400 }),
        (qty, long, lev, mode, extraWallet, movePermille) => {
          const entry = 7;
          const size = long ? qty : -qty;
          const notional = qty * entry;
          // Cross: the position's initial margin plus some extra; isolated: any wallet (the
          // position's wallet is its initial margin).
          const cash = notional / lev + (mode === 'cross' ? extraWallet : 1e6);
          const acc = new Account('USDT', cash);
          const book = new FuturesBook(acc, [inst], () => ({ leverage: lev, marginMode: mode, funding: null }));
          book.beforeFill(SYMBOL, size, entry);
          acc.applyFill(inst, long ? 'buy' : 'sell', entry, qty, 0, 'USDT');
          const move = (entry * movePermille) / 1000;
          const extreme = long ? entry - move : entry + move;
          const bar = long ? ohlc(T0, entry, entry, extreme, entry) : ohlc(T0, entry, extreme, entry, entry);
          if (!(extreme > 0)) return;
          // The oracle: the definitions at the extreme.
          const wallet = mode === 'isolated' ? notional / lev : cash;
          const mb = wallet + size * (extreme - entry);
          const n = qty * extreme;
          const t = bracketFor(DEFAULT_USDM_BRACKETS, n);
          const mm = n * t.maintMarginRate - t.cum;
          const expected = mb <= mm;
          const cashBefore = acc.cash;
          const liq = book.onBar(SYMBOL, bar, T0 + 60_000);
          expect(liq !== null, `mb ${mb} mm ${mm}`).toBe(expected);
          if (liq !== null) {
            // Closed at the liquidation price: there the margin balance meets the maintenance.
            const p = liq.price;
            const tp = bracketFor(DEFAULT_USDM_BRACKETS, qty * p);
            const mbAt = wallet + size * (p - entry);
            expect(Math.abs(mbAt - (qty * p * tp.maintMarginRate - tp.cum))).toBeLessThan(1e-6 * qty * p);
            expect(acc.position(inst).size).toBe(0);
            // Never below zero: the clearance fee takes at most what is left.
            expect(acc.cash).toBeGreaterThanOrEqual(cashBefore - wallet - 1e-9);
            expect(acc.cash).toBeGreaterThanOrEqual(-1e-9);
          }
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('funding sums to the series applied to the positions held at each funding time, at the mark (the bar open)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: -50, max: 50 }), { minLength: 24, maxLength: 24 }),
        fc.array(fc.integer({ min: 6_000, max: 8_000 }), { minLength: 24, maxLength: 24 }),
        fc.uniqueArray(
          // Half of them on an hour (a bar's open, as Binance's funding is), the rest anywhere.
          fc.oneof(
            fc.integer({ min: 0, max: 23 }).map((h) => h * HOUR),
            fc.integer({ min: 0, max: 24 * HOUR - 1 }),
          ),
          { minLength: 1, maxLength: 10 },
        ),
        fc.array(fc.integer({ min: -30, max: 30 }), { minLength: 10, maxLength: 10 }),
        (orders, opens, offsets, rates) => {
          const times = [...offsets].sort((a, b) => a - b).map((o) => T0 + o);
          const rateOf = times.map((_, i) => (rates[i] as number) / 100_000);
          const series = bars(
            opens.map((o) => [o / 1000, o / 1000 + 0.01, o / 1000 - 0.01, o / 1000 + 0.005]),
            HOUR,
          );
          const script: Record<number, (ctx: Parameters<Parameters<typeof scripted>[0][number]>[0]) => void> = {};
          orders.forEach((q, i) => {
            if (q > 0) script[i] = (ctx) => void ctx.buy(q);
            else if (q < 0) script[i] = (ctx) => void ctx.sell(-q);
          });
          const r = runBacktest({
            strategy: scripted(script),
            data: [{ symbol: SYMBOL, timeframe: '1h', series }],
            cash: 1e9,
            futures: () => ({
              leverage: 1,
              marginMode: 'cross',
              funding: fundingRateSeries({ time: times, rate: rateOf, intervalHours: 8 }),
            }),
          });
          // The oracle: an order decided on bar i fills at bar i + 1's open. Funding stamped at bar
          // k's open (within FUNDING_AT_OPEN_MS) is charged on what was held before that bar's
          // fills; later in bar k, on what is held after them; at bar k's open price either way.
          let expected = 0;
          times.forEach((t, j) => {
            const k = Math.floor((t - T0) / HOUR);
            const atOpen = t - (T0 + k * HOUR) < FUNDING_AT_OPEN_MS;
            let held = 0;
            for (let i = 0; i + 1 <= (atOpen ? k - 1 : k); i++) held += orders[i] as number;
            const open = (opens[k] as number) / 1000;
            expected += -held * open * (rateOf[j] as number);
          });
          expect(r.futures!.funding).toBeCloseTo(expected, 9);
          let sum = 0;
          for (const p of r.futures!.payments) sum += p.payment;
          expect(sum).toBeCloseTo(expected, 9);
          // A long and the opposite short sum to zero: the rate's sign decides who pays.
          for (const p of r.futures!.payments) expect(Math.sign(p.payment)).toBe(-Math.sign(p.size * p.rate));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('hedge: margin balance = wallet + unrealised PnL of both sides, after any fills on either side', () => {
    const fill = fc.record({
      long: fc.boolean(),
      qty: fc.integer({ min: -500, max: 500 }).filter((q) => q !== 0),
      price: fc.integer({ min: 6_800, max: 7_200 }),
      mark: fc.integer({ min: 6_800, max: 7_200 }),
    });
    fc.assert(
      fc.property(
        fc.array(fill, { minLength: 1, maxLength: 30 }),
        modeArb,
        fc.integer({ min: 1, max: 10 }),
        (fs, mode, lev) => {
          const acc = new Account('USDT', 1e9);
          const book = new FuturesBook(acc, [inst], () => ({
            leverage: lev,
            marginMode: mode,
            funding: null,
            positionMode: 'hedge',
          }));
          let t = T0;
          for (const f of fs) {
            const side = f.long ? 'long' : 'short';
            const held = acc.position(inst, side).size;
            // What reduces a side is clipped to what it holds (as the venue does): never through zero.
            const reducing = f.long ? f.qty < 0 : f.qty > 0;
            const qty = reducing ? Math.sign(f.qty) * Math.min(Math.abs(f.qty), Math.abs(held)) : f.qty;
            const price = f.price / 1000;
            const mark = f.mark / 1000;
            if (qty !== 0) {
              const fee = Math.abs(qty) * price * 0.0005;
              book.beforeFill(SYMBOL, qty, price, side);
              acc.applyFill(inst, qty > 0 ? 'buy' : 'sell', price, Math.abs(qty), fee, 'USDT', undefined, side);
            }
            book.onBar(SYMBOL, flatBar(t, mark), t + 60_000);
            t += 60_000;
            const l = acc.position(inst, 'long');
            const sh = acc.position(inst, 'short');
            expect(l.size).toBeGreaterThanOrEqual(0);
            expect(sh.size).toBeLessThanOrEqual(0);
            const upL = l.size === 0 ? 0 : l.size * (mark - l.avgPrice);
            const upS = sh.size === 0 ? 0 : sh.size * (mark - sh.avgPrice);
            expect(acc.equity()).toBeCloseTo(acc.cash + upL + upS, 6);
            const iwL = book.isolatedWallet(SYMBOL, 'long');
            const iwS = book.isolatedWallet(SYMBOL, 'short');
            if (mode === 'cross') {
              expect(iwL + iwS).toBe(0);
              expect(book.marginBalance(SYMBOL, 'long')).toBeCloseTo(acc.cash + upL + upS, 6);
              expect(book.marginBalance(SYMBOL, 'short')).toBeCloseTo(acc.cash + upL + upS, 6);
            } else {
              expect(book.marginBalance(SYMBOL, 'long')).toBeCloseTo(iwL + upL, 6);
              expect(book.marginBalance(SYMBOL, 'short')).toBeCloseTo(iwS + upS, 6);
              expect(book.crossWallet() + iwL + iwS).toBeCloseTo(acc.cash, 6);
              if (l.size === 0) expect(iwL).toBe(0);
              else expect(iwL).toBeCloseTo((l.size * l.avgPrice) / lev, 6);
              if (sh.size === 0) expect(iwS).toBe(0);
              else expect(iwS).toBeCloseTo((-sh.size * sh.avgPrice) / lev, 6);
            }
          }
          expect(book.liquidations).toHaveLength(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('hedge: liquidated on a bar exactly when the margin balance at an extreme is at or below maintenance, and there at the price where they meet', () => {
    const mmAt = (notional: number) => {
      if (notional <= 0) return 0;
      const t = bracketFor(DEFAULT_USDM_BRACKETS, notional);
      return notional * t.maintMarginRate - t.cum;
    };
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5_000 }),
        fc.integer({ min: 0, max: 5_000 }),
        fc.integer({ min: 6_500, max: 7_500 }),
        fc.integer({ min: 2, max: 50 }),
        modeArb,
        fc.integer({ min: 0, max: 2_000 }),
        fc.integer({ min: 0, max: 400 }),
        fc.integer({ min: 0, max: 400 }),
        (qL, qS, shortEntry, lev, mode, extraWallet, downPermille, upPermille) => {
          if (qL + qS === 0) return;
          const eL = 7;
          const eS = shortEntry / 1000;
          const cash = (qL * eL + qS * eS) / lev + (mode === 'cross' ? extraWallet : 1e6);
          const acc = new Account('USDT', cash);
          const book = new FuturesBook(acc, [inst], () => ({
            leverage: lev,
            marginMode: mode,
            funding: null,
            positionMode: 'hedge',
          }));
          if (qL > 0) {
            book.beforeFill(SYMBOL, qL, eL, 'long');
            acc.applyFill(inst, 'buy', eL, qL, 0, 'USDT', undefined, 'long');
          }
          if (qS > 0) {
            book.beforeFill(SYMBOL, -qS, eS, 'short');
            acc.applyFill(inst, 'sell', eS, qS, 0, 'USDT', undefined, 'short');
          }
          const low = 7 - (7 * downPermille) / 1000;
          const high = 7 + (7 * upPermille) / 1000;
          if (!(low > 0)) return;
          // The oracle: the definitions at each extreme, with each side's own tier.
          const wL = (qL * eL) / lev;
          const wS = (qS * eS) / lev;
          const headroomCross = (p: number) => cash + qL * (p - eL) - qS * (p - eS) - mmAt(qL * p) - mmAt(qS * p);
          const liqL = qL > 0 && wL + qL * (low - eL) <= mmAt(qL * low);
          const liqS = qS > 0 && wS - qS * (high - eS) <= mmAt(qS * high);
          // Safe at the open (7): a case already liquidatable before the bar moves is not this test's.
          if (mode === 'cross' && headroomCross(7) <= 0) return;
          if (mode === 'isolated' && ((qL > 0 && wL <= mmAt(qL * 7)) || (qS > 0 && wS + qS * (7 - eS) <= mmAt(qS * 7))))
            return;
          const expectedSides =
            mode === 'cross'
              ? headroomCross(low) <= 0 || headroomCross(high) <= 0
                ? [qL > 0 ? 'long' : undefined, qS > 0 ? 'short' : undefined].filter((x) => x !== undefined)
                : []
              : [liqL ? 'long' : undefined, liqS ? 'short' : undefined].filter((x) => x !== undefined);
          book.onBar(SYMBOL, ohlc(T0, 7, high, low, 7), T0 + 60_000);
          expect(book.liquidations.map((l) => l.positionSide)).toEqual(expectedSides);
          for (const l of book.liquidations) {
            if (!(l.liquidationPrice > 0)) continue;
            const p = l.price;
            // At the close price the margin balance meets the maintenance margin.
            const gap =
              mode === 'cross'
                ? headroomCross(p)
                : l.positionSide === 'long'
                  ? wL + qL * (p - eL) - mmAt(qL * p)
                  : wS - qS * (p - eS) - mmAt(qS * p);
            expect(Math.abs(gap)).toBeLessThan(1e-6 * (qL + qS) * p);
          }
          expect(acc.find(SYMBOL, 'long')?.size ?? 0).toBe(expectedSides.includes('long') ? 0 : qL);
          expect(acc.cash).toBeGreaterThanOrEqual(-1e-9);
        },
      ),
      { numRuns: 1_000 },
    );
  });

  it('hedge: funding sums to the series applied to both sides held at each funding time', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: -50, max: 50 }), fc.integer({ min: -50, max: 50 })), {
          minLength: 24,
          maxLength: 24,
        }),
        fc.array(fc.integer({ min: 6_000, max: 8_000 }), { minLength: 24, maxLength: 24 }),
        fc.uniqueArray(
          // Half of them on an hour (a bar's open, as Binance's funding is), the rest anywhere.
          fc.oneof(
            fc.integer({ min: 0, max: 23 }).map((h) => h * HOUR),
            fc.integer({ min: 0, max: 24 * HOUR - 1 }),
          ),
          { minLength: 1, maxLength: 10 },
        ),
        fc.array(fc.integer({ min: -30, max: 30 }), { minLength: 10, maxLength: 10 }),
        (orders, opens, offsets, rates) => {
          const times = [...offsets].sort((a, b) => a - b).map((o) => T0 + o);
          const rateOf = times.map((_, i) => (rates[i] as number) / 100_000);
          const series = bars(
            opens.map((o) => [o / 1000, o / 1000 + 0.01, o / 1000 - 0.01, o / 1000 + 0.005]),
            HOUR,
          );
          // Bar i: [long side qty, short side qty], signed as buys (> 0) and sells (< 0).
          const script: Record<number, (ctx: Parameters<Parameters<typeof scripted>[0][number]>[0]) => void> = {};
          orders.forEach(([ql, qs], i) => {
            script[i] = (ctx) => {
              if (ql > 0) ctx.buy(ql, { positionSide: 'long' });
              else if (ql < 0) ctx.sell(-ql, { positionSide: 'long' });
              if (qs > 0) ctx.buy(qs, { positionSide: 'short' });
              else if (qs < 0) ctx.sell(-qs, { positionSide: 'short' });
            };
          });
          const r = runBacktest({
            strategy: scripted(script),
            data: [{ symbol: SYMBOL, timeframe: '1h', series }],
            cash: 1e9,
            futures: () => ({
              leverage: 1,
              marginMode: 'cross',
              positionMode: 'hedge',
              funding: fundingRateSeries({ time: times, rate: rateOf, intervalHours: 8 }),
            }),
          });
          expect(r.errors).toEqual([]);
          // The oracle: each side held after bar k's fills (an order decided on bar i fills at bar
          // i + 1's open; what reduces a side is clipped to what it holds), charged at bar k's open
          // price; funding stamped at the open itself on what was held before those fills.
          const heldAfter: [number, number][] = [];
          let long = 0;
          let short = 0;
          for (let k = 0; k < 24; k++) {
            if (k >= 1) {
              const [ql, qs] = orders[k - 1] as [number, number];
              long = ql >= 0 ? long + ql : long - Math.min(-ql, long);
              short = qs <= 0 ? short + qs : short + Math.min(qs, -short);
            }
            heldAfter.push([long, short]);
          }
          let expected = 0;
          times.forEach((t, j) => {
            const k = Math.floor((t - T0) / HOUR);
            // Funding stamped at the bar's open (within FUNDING_AT_OPEN_MS) is charged on what was
            // held before its fills (FuturesBook.onOpen); later in the bar, on what is held after.
            const atOpen = t - (T0 + k * HOUR) < FUNDING_AT_OPEN_MS;
            const [l, sh] = (atOpen ? (k > 0 ? heldAfter[k - 1] : [0, 0]) : heldAfter[k]) as [number, number];
            const open = (opens[k] as number) / 1000;
            expected += -(l + sh) * open * (rateOf[j] as number);
          });
          expect(r.futures!.funding).toBeCloseTo(expected, 9);
          for (const p of r.futures!.payments) {
            expect(p.positionSide === 'long' ? p.size > 0 : p.size < 0).toBe(true);
            expect(Math.sign(p.payment)).toBe(-Math.sign(p.size * p.rate));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
