/**
 * Hedge position mode in the engine: a long and a short position of one perpetual side by side,
 * each order naming its side. Oracles: Binance's formulas worked by hand in each test
 * (docs/futures.md, "Hedge mode"), and the rules of the strategy API (a side where it is needed,
 * never where it is not).
 */
import { describe, expect, it } from 'vitest';
import {
  Account,
  defineInstrument,
  type EngineEvent,
  FuturesBook,
  type FuturesMarketSettings,
  fundingRateSeries,
  type MarginMode,
  runBacktest,
  type StrategyContext,
} from '../../src/index.ts';
import { bars, scripted, T0 } from '../helpers.ts';

const SYMBOL = 'LINK/USDT:USDT';
const MIN = 60_000;
const inst = defineInstrument({ symbol: SYMBOL });

function hedge(
  leverage: number,
  marginMode: MarginMode,
  funding: FuturesMarketSettings['funding'] = null,
): () => FuturesMarketSettings {
  return () => ({ leverage, marginMode, funding, positionMode: 'hedge' });
}

describe('hedge mode: the book', () => {
  it("Binance's hedge example: cross, 1,000 USDT wallet, LONG 1,000 @ 7 and SHORT 400 @ 7.2: one liquidation price, 5.2801", () => {
    const acc = new Account('USDT', 1000);
    const book = new FuturesBook(acc, [inst], hedge(10, 'cross'));
    book.beforeFill(SYMBOL, 1000, 7, 'long');
    acc.applyFill(inst, 'buy', 7, 1000, 0, 'USDT', undefined, 'long');
    book.beforeFill(SYMBOL, -400, 7.2, 'short');
    acc.applyFill(inst, 'sell', 7.2, 400, 0, 'USDT', undefined, 'short');
    // (1,000 - 7,000 + 2,880) / (6.5 + 2.6 - 1,000 + 400) = -3,120 / -590.9 = 5.28008...
    const lp = -3120 / -590.9;
    expect(book.liquidationPrice(SYMBOL, 'long')).toBeCloseTo(lp, 12);
    expect(book.liquidationPrice(SYMBOL, 'short')).toBeCloseTo(lp, 12);
    expect(Number(lp.toFixed(4))).toBe(5.2801);
    // Two positions in the account, apart: the long 1,000 @ 7, the short -400 @ 7.2.
    expect(acc.find(SYMBOL, 'long')).toMatchObject({ size: 1000, avgPrice: 7 });
    expect(acc.find(SYMBOL, 'short')).toMatchObject({ size: -400, avgPrice: 7.2 });
    expect(acc.find(SYMBOL)).toBeUndefined();
    // Margin balance at a mark of 6: 1,000 + 1,000 x (6 - 7) - 400 x (6 - 7.2) = 480; maintenance
    // (6,000 + 2,400) x 0.65 % = 54.6.
    book.onBar(SYMBOL, { time: T0, open: 6, high: 6, low: 6, close: 6, volume: 1 } as never, T0 + MIN);
    expect(book.marginBalance(SYMBOL, 'long')).toBeCloseTo(480, 9);
    expect(book.maintenance(SYMBOL, 'short')).toBeCloseTo(54.6, 9);
    expect(acc.equity()).toBeCloseTo(480, 9);
    expect(book.liquidations).toHaveLength(0);
  });

  it('isolated hedge: each side has its own wallet and its own liquidation price', () => {
    const acc = new Account('USDT', 10_000);
    const book = new FuturesBook(acc, [inst], hedge(5, 'isolated'));
    book.beforeFill(SYMBOL, 1000, 7, 'long');
    acc.applyFill(inst, 'buy', 7, 1000, 0, 'USDT', undefined, 'long');
    book.beforeFill(SYMBOL, -1000, 7, 'short');
    acc.applyFill(inst, 'sell', 7, 1000, 0, 'USDT', undefined, 'short');
    // Each side's wallet is 7,000 / 5 = 1,400; the worked one-way examples apply to each side:
    // the long (1,400 - 7,000) / (6.5 - 1,000) = 5.6366, the short (1,400 + 7,000) / (6.5 + 1,000) = 8.3458.
    expect(book.isolatedWallet(SYMBOL, 'long')).toBe(1400);
    expect(book.isolatedWallet(SYMBOL, 'short')).toBe(1400);
    expect(book.isolatedWallet(SYMBOL)).toBe(2800);
    expect(book.liquidationPrice(SYMBOL, 'long')).toBeCloseTo(-5600 / -993.5, 12);
    expect(book.liquidationPrice(SYMBOL, 'short')).toBeCloseTo(8400 / 1006.5, 12);
    // A bar whose high crosses the short's price (8.3458) and whose low stays above the long's:
    // only the short is liquidated, at 8400 / 1006.5 = 8.34575... (no tick), losing its 1,400.
    const r = book.onBar(SYMBOL, { time: T0, open: 7, high: 8.4, low: 6, close: 8 } as never, T0 + MIN);
    expect(r?.positionSide).toBe('short');
    expect(book.liquidations).toHaveLength(1);
    expect(acc.find(SYMBOL, 'short')?.size).toBe(0);
    expect(acc.find(SYMBOL, 'long')?.size).toBe(1000);
    expect(book.isolatedWallet(SYMBOL, 'short')).toBe(0);
    expect(book.isolatedWallet(SYMBOL, 'long')).toBe(1400);
    // realised -1,000 x (8.34575 - 7) = -1,345.75; left 54.25; clearance min(1.25 % x 8,345.75, 54.25).
    const lp = 8400 / 1006.5;
    expect(r?.realizedPnl).toBeCloseTo(-1000 * (lp - 7), 9);
    expect(r?.clearanceFee).toBeCloseTo(1400 - 1000 * (lp - 7), 9);
    expect(acc.cash).toBeCloseTo(10_000 - 1400, 9);
  });
});

describe('hedge mode: the engine', () => {
  it('both sides held apart: fills, funding on each side, margin balance = wallet + unrealised of both', () => {
    const events: EngineEvent[] = [];
    // One funding event at bar 2's open, rate 0.001.
    const funding = fundingRateSeries({ time: [T0 + 2 * MIN + 13], rate: [0.001], intervalHours: 8 });
    const r = runBacktest({
      strategy: scripted({
        0: (ctx) => {
          ctx.buy(100, { positionSide: 'long' });
          ctx.sell(40, { positionSide: 'short' });
        },
        2: (ctx) => {
          const l = ctx.position(SYMBOL, 'long');
          const s = ctx.position(SYMBOL, 'short');
          ctx.log(
            `long ${l.size} @ ${l.avgPrice} upnl ${l.unrealizedPnl}; short ${s.size} @ ${s.avgPrice} upnl ${s.unrealizedPnl}`,
          );
          // Close the short with more than it holds: clipped to the 40 held, the long untouched.
          ctx.buy(100, { positionSide: 'short' });
        },
        4: (ctx) => void ctx.close({ positionSide: 'long' }),
      }),
      data: [
        {
          symbol: SYMBOL,
          timeframe: '1m',
          series: bars([
            [10, 10, 10, 10],
            [10, 10, 10, 10],
            [11, 11, 11, 11],
            [12, 12, 12, 12],
            [9, 9, 9, 9],
            [8, 8, 8, 8],
          ]),
        },
      ],
      cash: 1000,
      fee: 0,
      futures: hedge(10, 'cross', funding),
      onEvent: (e) => events.push(e),
    });
    expect(r.errors).toEqual([]);
    // Bar 1 open 10: long 100 @ 10, short -40 @ 10. Bar 2 (open 11): funding at the mark 11:
    // the long pays 100 x 11 x 0.001 = 1.1, the short receives 40 x 11 x 0.001 = 0.44.
    const f = r.futures!;
    expect(f.payments.map((p) => [p.positionSide, p.size, p.markPrice, p.payment])).toEqual([
      ['long', 100, 11, expect.closeTo(-1.1, 12)],
      ['short', -40, 11, expect.closeTo(0.44, 12)],
    ]);
    // At bar 2's close (11): wallet 1,000 - 1.1 + 0.44 = 999.34; unrealised 100 x 1 - 40 x 1 = 60.
    expect(r.equity.values[2]).toBeCloseTo(1059.34, 9);
    const log = events.find((e) => e.type === 'strategy.log');
    expect(log).toMatchObject({ message: 'long 100 @ 10 upnl 100; short -40 @ 10 upnl -40' });
    // Bar 3 open 12: the short's buy is clipped to 40, realised 40 x (10 - 12) = -80.
    // Bar 5 open 8: the long closes, realised 100 x (8 - 10) = -200.
    expect(r.fills.map((x) => [x.positionSide, x.side, x.amount, x.price])).toEqual([
      ['long', 'buy', 100, 10],
      ['short', 'sell', 40, 10],
      ['short', 'buy', 40, 12],
      ['long', 'sell', 100, 8],
    ]);
    expect(r.finalCash).toBeCloseTo(999.34 - 80 - 200, 9);
    // Two round trips, one per side.
    expect(r.trades.map((t) => [t.direction, t.size, t.pnlGross])).toEqual([
      ['short', 40, -80],
      ['long', 100, -200],
    ]);
    expect(f.markets[0]).toMatchObject({
      positionMode: 'hedge',
      sides: [
        { positionSide: 'long', size: 0 },
        { positionSide: 'short', size: 0 },
      ],
    });
  });

  it('positionSide in one-way mode, or none in hedge mode, denies the order with the reason; position() throws', () => {
    const run = (positionMode: 'one-way' | 'hedge', act: (ctx: StrategyContext) => void) =>
      runBacktest({
        strategy: scripted({ 0: act }),
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
        futures: () => ({ leverage: 2, marginMode: 'cross', funding: null, positionMode }),
      });
    const a = run('one-way', (ctx) => void ctx.buy(1, { positionSide: 'long' }));
    expect(a.orders[0]).toMatchObject({
      status: 'denied',
      reason: "positionSide 'long' is for a hedge-mode perpetual; LINK/USDT:USDT is in one-way mode",
    });
    const b = run('hedge', (ctx) => void ctx.buy(1));
    expect(b.orders[0]).toMatchObject({
      status: 'denied',
      reason: "LINK/USDT:USDT is in hedge mode: an order must name its positionSide ('long' or 'short')",
    });
    const c = run('hedge', (ctx) => void ctx.position());
    expect(c.errors.map((e) => e.message)).toEqual([
      `position("LINK/USDT:USDT"): LINK/USDT:USDT is in hedge mode: name the side, position(symbol, 'long' | 'short')`,
    ]);
    const d = run('one-way', (ctx) => void ctx.position(SYMBOL, 'short'));
    expect(d.errors.map((e) => e.message)).toEqual([
      `position("LINK/USDT:USDT", 'short'): positionSide 'short' is for a hedge-mode perpetual; LINK/USDT:USDT is in one-way mode`,
    ]);
    const e = run('hedge', (ctx) => void ctx.orderTargetPercent(0.5, { positionSide: 'short' }));
    expect(e.errors.map((x) => x.message)).toEqual([
      'orderTargetPercent(0.5) on the short side: the fraction is <= 0 there',
    ]);
  });

  it("per market (perPair): each market's context reads and trades its own sides", () => {
    const series = bars([
      [10, 10, 10, 10],
      [10, 10, 10, 10],
      [11, 11, 11, 11],
    ]);
    const r = runBacktest({
      strategy: scripted({
        0: (ctx) => {
          if (ctx.position(undefined, 'long').size === 0) ctx.buy(1, { positionSide: 'long' });
          ctx.sell(2, { positionSide: 'short' });
        },
      }),
      data: [
        { symbol: SYMBOL, timeframe: '1m', series },
        { symbol: 'BTC/USDT:USDT', timeframe: '1m', series },
      ],
      perPair: {},
      cash: 1000,
      futures: hedge(2, 'cross'),
    });
    expect(r.errors).toEqual([]);
    expect(r.portfolio.positions.map((p) => [p.symbol, p.positionSide, p.size])).toEqual([
      [SYMBOL, 'long', 1],
      [SYMBOL, 'short', -2],
      ['BTC/USDT:USDT', 'long', 1],
      ['BTC/USDT:USDT', 'short', -2],
    ]);
  });

  it('orderTargetPercent and close name a side: each side reaches its own target, the other is untouched', () => {
    const ids: (string | null)[] = [];
    const r = runBacktest({
      strategy: scripted({
        0: (ctx) => {
          // Equity 1,000 at 2x: 0.5 of it is a notional of 1,000 (100 at 10), -0.25 one of -500 (50).
          ids.push(ctx.orderTargetPercent(0.5, { positionSide: 'long' }));
          ids.push(ctx.orderTargetPercent(-0.25, { positionSide: 'short' }));
        },
        1: (ctx) => {
          // On target (no fees, price unchanged): nothing to send on either side.
          ids.push(ctx.orderTargetPercent(0.5, { positionSide: 'long' }));
          ids.push(ctx.orderTargetPercent(-0.25, { positionSide: 'short' }));
          ids.push(ctx.close({ positionSide: 'short' }));
        },
      }),
      data: [
        {
          symbol: SYMBOL,
          timeframe: '1m',
          series: bars([
            [10, 10, 10, 10],
            [10, 10, 10, 10],
            [10, 10, 10, 10],
          ]),
        },
      ],
      cash: 1000,
      fee: 0,
      futures: hedge(2, 'cross'),
    });
    expect(r.errors).toEqual([]);
    expect(ids.map((x) => x !== null)).toEqual([true, true, false, false, true]);
    expect(r.fills.map((f) => [f.positionSide, f.side, f.amount])).toEqual([
      ['long', 'buy', 100],
      ['short', 'sell', 50],
      ['short', 'buy', 50],
    ]);
    expect(r.portfolio.positions.map((p) => [p.positionSide, p.size])).toEqual([
      ['long', 100],
      ['short', 0],
    ]);
  });

  it('a bracket on a side: its exits reduce that side only (the short held beside it stays)', () => {
    const r = runBacktest({
      strategy: scripted({
        0: (ctx) => {
          ctx.sell(5, { positionSide: 'short' });
          ctx.bracket({ side: 'buy', amount: 10, takeProfit: 12, stopLoss: 8, positionSide: 'long' });
        },
      }),
      data: [
        {
          symbol: SYMBOL,
          timeframe: '1m',
          series: bars([
            [10, 10, 10, 10],
            [10, 10, 10, 10],
            [10, 12.5, 10, 12],
            [12, 12, 12, 12],
          ]),
        },
      ],
      cash: 1000,
      fee: 0,
      futures: hedge(2, 'cross'),
    });
    expect(r.errors).toEqual([]);
    // Entry 10 @ 10 at bar 1's open; bar 2's high reaches the take-profit 12 (a sell on the long side).
    expect(r.fills.map((f) => [f.positionSide, f.side, f.amount, f.price, f.tag])).toEqual([
      ['short', 'sell', 5, 10, undefined],
      ['long', 'buy', 10, 10, 'entry'],
      ['long', 'sell', 10, 12, 'take-profit'],
    ]);
    expect(r.orders.find((o) => o.request.tag === 'stop-loss')?.status).toBe('cancelled');
    expect(r.portfolio.positions.map((p) => [p.positionSide, p.size])).toEqual([
      ['long', 0],
      ['short', -5],
    ]);
  });
});
