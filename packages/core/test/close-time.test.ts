import { describe, expect, it } from 'vitest';
import { defineStrategy, type Fill, runBacktest } from '../src/index.ts';
import { bars, T0 } from './helpers.ts';

const anyParams = { safeParse: (x: unknown) => ({ success: true as const, data: x }) };
const MIN = 60_000;

/**
 * Two markets, one strategy: at the first close it buys 10 BBB (a market order, filling at BBB's
 * next open); at the second close it targets half the equity in AAA. On the exchange the BBB buy
 * has filled (at the open of BBB's second bar) by the time AAA's second bar closes, so the AAA
 * entry sizes on an equity that holds it.
 */
/** What each onBar saw, of the last run. */
let seen: string[] = [];
const strategy = defineStrategy({
  name: 'two-markets',
  params: anyParams,
  warmup: 'none',
  onStart(ctx) {
    ctx.subscribe({ symbol: 'BBB/USDT' });
    seen = [];
    return { seen };
  },
  onBar(ctx, s, bar, feed) {
    const closes = bar.time + MIN;
    s.seen.push(`${feed.symbol} ${(closes - T0) / MIN} ${ctx.portfolio.cash} ${ctx.portfolio.equity}`);
    if (feed.symbol === 'BBB/USDT' && closes === T0 + MIN) ctx.buy(10, { symbol: 'BBB/USDT' });
    if (feed.symbol === 'AAA/USDT' && closes === T0 + 2 * MIN) ctx.orderTargetPercent(0.5, { symbol: 'AAA/USDT' });
  },
});

const run = () =>
  runBacktest({
    strategy,
    data: [
      // AAA stays at 100.
      {
        symbol: 'AAA/USDT',
        timeframe: '1m',
        series: bars([
          [100, 100, 100, 100],
          [100, 100, 100, 100],
          [100, 100, 100, 100],
        ]),
      },
      // BBB opens its second bar at 50 and closes it at 60.
      {
        symbol: 'BBB/USDT',
        timeframe: '1m',
        series: bars([
          [50, 50, 50, 50],
          [50, 60, 50, 60],
          [60, 60, 60, 60],
        ]),
      },
    ],
    cash: 10_000,
    fee: 0.001,
  });

describe('a close time with several markets: every market fills first, then the strategies decide', () => {
  it('an entry on AAA sizes on an equity that has the BBB fill of the same close (worked by hand)', () => {
    const r = run();
    const [bbb, aaa] = r.fills as [Fill, Fill];
    // The BBB buy fills at the open of BBB's second bar (50), stamped with its close (T0 + 2 min):
    //   cash = 10,000 - 10 * 50 - 0.001 * 10 * 50 = 10,000 - 500 - 0.5 = 9,499.5
    expect([bbb.symbol, bbb.time, bbb.price, bbb.amount, bbb.fee]).toEqual(['BBB/USDT', T0 + 2 * MIN, 50, 10, 0.5]);
    // At that close AAA's strategy decides on BBB marked at 60:
    //   equity = 9,499.5 + 10 * 60 = 10,099.5
    //   size   = 0.5 * 10,099.5 / 100 = 50.4975     (the close of AAA's bar is 100)
    // Handling AAA's bar before BBB's (a market at a time) sized on 10,000: 0.5 * 10,000 / 100 = 50.
    // It fills at the open of AAA's third bar (100): fee 0.001 * 50.4975 * 100 = 5.04975.
    expect(aaa.symbol).toBe('AAA/USDT');
    expect(aaa.time).toBe(T0 + 3 * MIN);
    expect(aaa.price).toBe(100);
    expect(aaa.amount).toBeCloseTo(50.4975, 12);
    expect(aaa.fee).toBeCloseTo(5.04975, 12);
    // Equity at the last close: cash 9,499.5 - 5,049.75 - 5.04975, AAA 50.4975 * 100, BBB 10 * 60.
    expect(r.finalValue).toBeCloseTo(9_499.5 - 5_049.75 - 5.04975 + 5_049.75 + 600, 9);
  });

  it("each strategy, in feed order, sees every market's fills and marks of the close time", () => {
    const r = run();
    // "<market> <close, minutes after T0> <cash> <equity>", as each strategy saw them.
    expect(r.errors).toEqual([]);
    expect(seen).toEqual([
      'AAA/USDT 1 10000 10000',
      'BBB/USDT 1 10000 10000',
      // BBB's buy filled at 50 (cash 9,499.5) and BBB marked at 60 before AAA's strategy ran.
      'AAA/USDT 2 9499.5 10099.5',
      'BBB/USDT 2 9499.5 10099.5',
      // AAA's entry filled at 100: 9,499.5 - 5,049.75 - 5.04975 = 4,444.70025 (binary rounding).
      `AAA/USDT 3 ${9_499.5 - 50.4975 * 100 - 0.001 * 50.4975 * 100} ${9_499.5 - 0.001 * 50.4975 * 100 + 600}`,
      `BBB/USDT 3 ${9_499.5 - 50.4975 * 100 - 0.001 * 50.4975 * 100} ${9_499.5 - 0.001 * 50.4975 * 100 + 600}`,
    ]);
  });
});
