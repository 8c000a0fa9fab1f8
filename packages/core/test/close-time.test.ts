import { describe, expect, it } from 'vitest';
import {
  type Bar,
  defineStrategy,
  emptyBar,
  type Fill,
  runBacktest,
  SMA,
  seriesFromRows,
  syntheticBars,
} from '../src/index.ts';
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

describe('several timeframes of one market', () => {
  // 1m bars and their 5m aggregate (every 5m bar the exchange's own candle of its five 1m bars).
  const m1 = syntheticBars(600, { seed: 7, start: T0, intervalMs: MIN });
  const m5 = (() => {
    const rows: Bar[] = [];
    for (let i = 0; i + 5 <= m1.length; i += 5) {
      let high = -Infinity;
      let low = Infinity;
      let volume = 0;
      for (let k = i; k < i + 5; k++) {
        high = Math.max(high, m1.high[k] as number);
        low = Math.min(low, m1.low[k] as number);
        volume += m1.volume[k] as number;
      }
      const open = m1.open[i] as number;
      const close = m1.close[i + 4] as number;
      rows.push({ ...emptyBar(), time: m1.time[i] as number, open, high, low, close, volume });
    }
    return seriesFromRows(rows);
  })();
  /** Resting limit entries on the 1m bars, filtered by an SMA of the 5m bars; the onBar calls it saw. */
  const probe = (calls: string[]) =>
    defineStrategy({
      name: 'mtf',
      params: anyParams,
      onStart: (ctx) => {
        ctx.subscribe({ timeframe: '5m' });
        return { fast: ctx.indicator(new SMA(5)), trend: ctx.indicator(new SMA(3), { timeframe: '5m' }) };
      },
      onBar(ctx, s, bar, feed) {
        calls.push(`${feed.timeframe}@${bar.time} ${ctx.portfolio.cash}`);
        if (feed.timeframe !== '1m') return;
        const size = ctx.position().size;
        if (size === 0 && s.fast.value > s.trend.value) {
          ctx.cancelAll();
          ctx.submit({ type: 'limit', side: 'buy', amount: 1, price: bar.close * 0.999 });
        } else if (size > 0 && s.fast.value < s.trend.value) ctx.close();
      },
    });

  it('a 5m feed supplied beside the 1m runs as the 5m feed the engine builds from the 1m bars', () => {
    const supplied: string[] = [];
    const built: string[] = [];
    const a = runBacktest({
      strategy: probe(supplied),
      data: [
        { symbol: 'AAA/USDT', timeframe: '1m', series: m1 },
        { symbol: 'AAA/USDT', timeframe: '5m', series: m5 },
      ],
      cash: 100_000,
      fee: 0.001,
    });
    const b = runBacktest({
      strategy: probe(built),
      data: [{ symbol: 'AAA/USDT', timeframe: '1m', series: m1 }],
      cash: 100_000,
      fee: 0.001,
    });
    expect(b.fills.length).toBeGreaterThan(10);
    expect(a.fills).toEqual(b.fills);
    expect(built.filter((c) => c.startsWith('5m')).length).toBeGreaterThan(100);
    expect(supplied).toEqual(built);
  });
});
