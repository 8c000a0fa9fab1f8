import { describe, expect, it } from 'vitest';
import { buyAndHold, defineInstrument, defineStrategy, percentFee, runBacktest, SMA } from '../src/index.ts';
import { bars, T0 } from './helpers.ts';

// Open 100; closes 110, 99, 121 (worked by hand below).
const series = bars([
  [100, 112, 98, 110],
  [110, 111, 95, 99],
  [99, 125, 99, 121],
]);
const inst = defineInstrument({ symbol: 'BTC/USDT' });
const closes = (s: typeof series, p0 = 0, p1 = s.length) =>
  Float64Array.from({ length: p1 - p0 }, (_, i) => (s.time[p0 + i] as number) + 60_000);
const hold = (p0: number, p1: number, instrument = inst) => [{ series, timeframe: '1m' as const, p0, p1, instrument }];

describe('buyAndHold (hand-computed oracle)', () => {
  it('buys with all the cash at the first open, fee in the quote, and values the coins at each close', () => {
    const b = buyAndHold(hold(0, 3), closes(series), 1000, percentFee(0.001));
    // amount * 100 * 1.001 = 1000 -> amount = 1000 / 100.1; fee = amount * 0.1.
    const amount = 1000 / 100.1;
    expect(b.markets[0]?.amount).toBeCloseTo(amount, 12);
    expect(b.markets[0]?.fee).toBeCloseTo(0.999000999000999, 12);
    expect(b.markets[0]?.cash).toBeCloseTo(0, 9);
    expect(b.markets[0]?.firstOpen).toBe(100);
    expect(b.markets[0]?.lastClose).toBe(121);
    expect(b.marketChange).toBeCloseTo(0.21, 12);
    expect(Array.from(b.values).map((v) => Number(v.toFixed(6)))).toEqual([1098.901099, 989.010989, 1208.791209]);
    expect(b.finalValue).toBeCloseTo(1208.791208791209, 9);
    expect(b.totalReturn).toBeCloseTo(0.208791208791209, 12);
    // The 1098.90 peak to 989.01: the fall of the close from 110 to 99.
    expect(b.maxDrawdown).toBeCloseTo(0.1, 12);
  });

  it('rounds the amount down to the step and keeps what is left as cash', () => {
    const b = buyAndHold(
      hold(0, 3, defineInstrument({ symbol: 'BTC/USDT', stepSize: 0.01 })),
      closes(series),
      1000,
      percentFee(0.001),
    );
    expect(b.markets[0]?.amount).toBe(9.99);
    expect(b.markets[0]?.fee).toBeCloseTo(0.999, 12);
    expect(b.markets[0]?.cash).toBeCloseTo(0.001, 9);
    expect(b.finalValue).toBeCloseTo(0.001 + 9.99 * 121, 9);
  });

  it('takes a fee charged in the coin bought from the coins (Binance spot)', () => {
    const b = buyAndHold(hold(0, 3), closes(series), 1000, percentFee(0.001, { asset: 'received' }));
    expect(b.markets[0]?.amount).toBeCloseTo(9.99, 12);
    expect(b.markets[0]?.fee).toBeCloseTo(1, 12);
    expect(b.markets[0]?.cash).toBe(0);
    expect(b.finalValue).toBeCloseTo(1208.79, 9);
  });

  it('over part of a series starts at the first replayed bar; over none it holds the cash', () => {
    const b = buyAndHold(hold(1, 3), closes(series, 1), 1000, percentFee(0));
    expect(b.markets[0]?.firstOpen).toBe(110);
    expect(b.values.length).toBe(2);
    expect(b.finalValue).toBeCloseTo((1000 / 110) * 121, 9);
    const none = buyAndHold(hold(2, 2), closes(series, 2, 2), 1000, percentFee(0));
    expect(none.values.length).toBe(0);
    expect(none.finalValue).toBe(1000);
    expect(Number.isNaN(none.marketChange)).toBe(true);
  });
  it("over two markets: half the cash in each, valued at each market's last close by then", () => {
    // ETH: one 3-minute bar opening with BTC's bar 0, so closing with BTC's bar 2, at 20.
    const eth = bars([[10, 21, 10, 20]], 180_000);
    const b = buyAndHold(
      [
        { series, timeframe: '1m', p0: 0, p1: 3, instrument: inst },
        { series: eth, timeframe: '3m', p0: 0, p1: 1, instrument: defineInstrument({ symbol: 'ETH/USDT' }) },
      ],
      closes(series),
      1000,
      percentFee(0),
    );
    // 500 buys 5 BTC at 100 and 50 ETH at 10; until ETH's bar closes, its share counts as 500.
    expect(Array.from(b.values)).toEqual([5 * 110 + 500, 5 * 99 + 500, 5 * 121 + 50 * 20]);
    expect(b.markets.map((m) => [m.symbol, m.amount, m.marketChange])).toEqual([
      ['BTC/USDT', 5, 0.20999999999999996],
      ['ETH/USDT', 50, 1],
    ]);
    // The mean of the two markets' moves: (21 % + 100 %) / 2.
    expect(b.marketChange).toBeCloseTo(0.605, 12);
  });
});

describe('runBacktest: the benchmark and the strategy plots in the result', () => {
  const plotted = defineStrategy({
    name: 'plotted',
    params: { safeParse: () => ({ success: true as const, data: {} }) },
    warmup: 'none',
    onStart: (ctx) => ({ sma: ctx.indicator(new SMA(2)), n: 0 }),
    onBar(_ctx, s) {
      s.n++;
    },
    plot: {
      'SMA 2': { panel: 'price', value: (s) => s.sma.value },
      bars: { panel: 'count', value: (s) => s.n },
      broken: {
        panel: 'price',
        value: (s) => {
          if (s.n >= 2) throw new Error('no value');
          return 1;
        },
      },
    },
  });

  it('records each plot line at every primary bar close, and a line that throws once as one error', () => {
    const r = runBacktest({
      strategy: plotted,
      data: [{ symbol: 'BTC/USDT', timeframe: '1m', series }],
      cash: 1000,
      fee: 0.001,
    });
    expect(r.plots?.map((p) => [p.name, p.panel])).toEqual([
      ['SMA 2', 'price'],
      ['bars', 'count'],
      ['broken', 'price'],
    ]);
    const [sma, count, broken] = r.plots ?? [];
    expect(Array.from(sma?.values ?? [])).toEqual([Number.NaN, (110 + 99) / 2, (99 + 121) / 2]);
    expect(Array.from(count?.values ?? [])).toEqual([1, 2, 3]);
    expect(Array.from(broken?.values ?? [])).toEqual([1, Number.NaN, Number.NaN]);
    expect(r.errors).toEqual([{ time: T0 + 2 * 60_000, hook: 'plot broken', message: 'no value' }]);
    expect(r.benchmark?.finalValue).toBeCloseTo(1208.791208791209, 9);
    expect(r.benchmark?.values.length).toBe(r.equity.values.length);
  });

  it('with from/to, buys at the open of the first bar replayed', () => {
    const r = runBacktest({
      strategy: plotted,
      data: [{ symbol: 'BTC/USDT', timeframe: '1m', series }],
      cash: 1000,
      from: T0 + 60_000,
    });
    expect(r.benchmark?.markets[0]?.firstOpen).toBe(110);
    expect(r.benchmark?.values.length).toBe(2);
    expect(r.plots?.[1]?.values.length).toBe(2);
  });

  it('a strategy without plot has no lines', () => {
    const r = runBacktest({
      strategy: defineStrategy({
        name: 'plain',
        params: { safeParse: () => ({ success: true as const, data: {} }) },
        onStart: () => ({}),
        onBar() {},
      }),
      data: [{ symbol: 'BTC/USDT', timeframe: '1m', series }],
    });
    expect(r.plots).toEqual([]);
  });

  it('with several feeds, reads the lines once every feed closing at that instant is in (as the equity)', () => {
    const eth = bars([
      [10, 11, 9, 10],
      [10, 12, 10, 12],
      [12, 13, 11, 13],
    ]);
    const strategy = defineStrategy({
      name: 'two-feeds',
      params: { safeParse: () => ({ success: true as const, data: {} }) },
      warmup: 'none',
      onStart: (ctx) => {
        ctx.subscribe({ symbol: 'ETH/USDT' });
        return { eth: ctx.indicator(new SMA(1), { symbol: 'ETH/USDT' }) };
      },
      onBar() {},
      plot: { 'ETH close': { panel: 'eth', value: (s) => s.eth.value } },
    });
    const r = runBacktest({
      strategy,
      data: [
        { symbol: 'BTC/USDT', timeframe: '1m', series },
        { symbol: 'ETH/USDT', timeframe: '1m', series: eth },
      ],
    });
    // ETH's bar k closes with BTC's bar k: its close is the line's value at BTC's bar k.
    expect(Array.from(r.plots?.[0]?.values ?? [])).toEqual([10, 12, 13]);
  });

  it("one instance per market (perPair): each instance's lines on its market, buy and hold of every market", () => {
    const eth = bars([
      [10, 11, 9, 10],
      [10, 12, 10, 12],
      [12, 13, 11, 13],
    ]);
    const r = runBacktest({
      strategy: plotted,
      data: [
        { symbol: 'BTC/USDT', timeframe: '1m', series },
        { symbol: 'ETH/USDT', timeframe: '1m', series: eth },
      ],
      perPair: {},
      cash: 1000,
    });
    const sma = r.plots?.filter((p) => p.name.startsWith('SMA 2'));
    expect(sma?.map((p) => [p.name, p.symbol])).toEqual([
      ['SMA 2 (BTC/USDT)', 'BTC/USDT'],
      ['SMA 2 (ETH/USDT)', 'ETH/USDT'],
    ]);
    expect(Array.from(sma?.[1]?.values ?? [])).toEqual([Number.NaN, 11, 12.5]);
    // 500 in each: 5 BTC at 100 and 50 ETH at 10, at the last closes 121 and 13.
    expect(r.benchmark?.markets.map((m) => m.symbol)).toEqual(['BTC/USDT', 'ETH/USDT']);
    expect(r.benchmark?.finalValue).toBeCloseTo(5 * 121 + 50 * 13, 9);
  });
});
