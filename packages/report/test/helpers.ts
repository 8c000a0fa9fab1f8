import { existsSync } from 'node:fs';
import {
  type BacktestResult,
  type BarSeries,
  syntheticBars as coreSyntheticBars,
  defineStrategy,
  parseRiskConfig,
  runBacktest,
  SMA,
  seriesFromRows,
} from '@keel/core';
import { readBarsFile } from '@keel/data';
import { getStrategy } from '@keel/strategies';
import { dataFile, noteSkip } from '../../../test-support/shared.ts';

export const BTC_1M = dataFile('binance_BTCUSDT_1m_2024-01.csv.gz');

/**
 * Seeded synthetic 1m bars from core's generator (the one the CLI demo and the simulator use),
 * in the positional form these tests call. Labelled synthetic wherever it is used.
 */
export function syntheticBars(n: number, seed = 7, start = Date.UTC(2024, 0, 1), stepMs = 60_000): BarSeries {
  return coreSyntheticBars(n, { seed, start, intervalMs: stepMs });
}

let cached: { result: BacktestResult; bars: BarSeries; source: string } | undefined;

/** sma-cross 10/30 on real BTC/USDT 1m (January 2024) when the shared data is there, else on synthetic bars. */
export function realRun(): { result: BacktestResult; bars: BarSeries; source: string } {
  if (cached) return cached;
  const real = existsSync(BTC_1M);
  if (!real) noteSkip('report (real data)', BTC_1M);
  const bars = real ? readBarsFile(BTC_1M).series : syntheticBars(44_641);
  const result = runBacktest({
    strategy: getStrategy('sma-cross'),
    params: { fast: 10, slow: 30 },
    data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: bars }],
    cash: 10_000,
    fee: 0.001,
  });
  cached = { result, bars, source: real ? BTC_1M : 'synthetic' };
  return cached;
}

let riskCached: { result: BacktestResult; bars: BarSeries } | undefined;

/** The same run as realRun under `--risk max-drawdown=0.05 --risk cooldown=2h --stop-loss 1%`: halts, locks and denials. */
export function riskRun(): { result: BacktestResult; bars: BarSeries } {
  if (riskCached) return riskCached;
  const { bars } = realRun();
  const p = parseRiskConfig({ risk: ['max-drawdown=0.05', 'cooldown=2h'], exits: { 'stop-loss': '1%' } });
  if (!p.ok) throw new Error(p.error.message);
  const result = runBacktest({
    strategy: getStrategy('sma-cross'),
    params: { fast: 10, slow: 30 },
    data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: bars }],
    cash: 10_000,
    fee: 0.001,
    risk: p.config,
  });
  riskCached = { result, bars };
  return riskCached;
}

export const HOSTILE = '</script><img src=x onerror="alert(1)"> & \'quoted\', "comma"';

/**
 * A strategy built to stress the report: alternates long and short with tags full of HTML and CSV
 * metacharacters, throws from onBar now and then with a hostile message, and ends with a position open.
 */
export const hostileStrategy = defineStrategy<{ every: number; note: string }, { n: number }>({
  name: 'hostile-test',
  params: { safeParse: (x) => ({ success: true, data: { every: 25, note: HOSTILE, ...(x as object) } }) },
  warmup: 'none',
  onStart: () => ({ n: 0 }),
  onBar(ctx, s) {
    s.n++;
    if (s.n % 97 === 0) throw new Error(`boom ${s.n}: ${HOSTILE}`);
    if (s.n % ctx.params.every !== 0) return;
    const size = ctx.position().size;
    const tag = `tag ${HOSTILE}`;
    if (size === 0) ctx.buy(0.01, { tag });
    else if (size > 0) ctx.sell(0.02, { tag });
    else ctx.buy(0.02, { tag });
  },
});

export function hostileRun(n = 3_000): { result: BacktestResult; bars: BarSeries } {
  const bars = syntheticBars(n, 11);
  const result = runBacktest({
    strategy: hostileStrategy,
    params: {},
    data: [{ symbol: 'SYN/USDT', timeframe: '1m', series: bars }],
    cash: 10_000,
    fee: 0.001,
    allowShortSpot: true,
  });
  return { result, bars };
}

/**
 * A tiny hand-made run whose every number is worked out by hand in analysis.test.ts: six daily
 * bars across the end of January 2024, 1,000 USDT, fee 0.1 %. The strategy buys 1 at the bar-0
 * close (filled at the bar-1 open, 100), sells at the bar-2 open (110), buys 1 at 99, sells at
 * 121, then buys 2 at 110 and holds them to the end. It plots a 2-bar SMA over the candles and
 * the close-to-close change in a pane of its own.
 */
export const FIXTURE_T0 = Date.UTC(2024, 0, 29);
export const FIXTURE_BARS: readonly (readonly [number, number, number, number])[] = [
  [100, 101, 99, 100],
  [100, 111, 100, 110],
  [110, 111, 98, 99],
  [99, 122, 99, 121],
  [121, 122, 110, 110],
  [110, 121, 110, 121],
];

export const fixtureStrategy = defineStrategy<
  Record<string, never>,
  { sma: InstanceType<typeof SMA>; i: number; prev: number; change: number }
>({
  name: 'fixture-plotted',
  params: { safeParse: () => ({ success: true, data: {} }) },
  warmup: 'none',
  onStart: (ctx) => ({ sma: ctx.indicator(new SMA(2)), i: 0, prev: Number.NaN, change: Number.NaN }),
  onBar(ctx, s, bar) {
    s.change = bar.close - s.prev;
    s.prev = bar.close;
    const step = s.i++;
    if (step === 0 || step === 2) ctx.buy(1);
    else if (step === 1 || step === 3) ctx.sell(1);
    else if (step === 4) ctx.buy(2);
  },
  plot: {
    'SMA 2': { panel: 'price', value: (s) => s.sma.value },
    change: { panel: 'change', value: (s) => s.change },
  },
});

export function fixtureRun(): { result: BacktestResult; bars: BarSeries } {
  const bars = seriesFromRows(
    FIXTURE_BARS.map(([open, high, low, close], i) => ({
      time: FIXTURE_T0 + i * 86_400_000,
      open,
      high,
      low,
      close,
      volume: 10,
    })),
  );
  const result = runBacktest({
    strategy: fixtureStrategy,
    data: [{ symbol: 'BTC/USDT', timeframe: '1d', series: bars }],
    cash: 1000,
    fee: 0.001,
  });
  return { result, bars };
}

/** ETH/USDT beside the fixture's BTC/USDT, the same six days. */
export const FIXTURE_ETH: readonly (readonly [number, number, number, number])[] = [
  [20, 21, 19, 20],
  [20, 23, 20, 22],
  [22, 24, 21, 24],
  [24, 25, 23, 23],
  [23, 24, 20, 21],
  [21, 22, 20, 22],
];

/**
 * The fixture's BTC trades plus, on ETH/USDT, a buy of 10 at the bar-0 close (filled at the
 * bar-1 open, 20) sold at the bar-2 close (filled at the bar-3 open, 24): +40 less fees 0.2 and
 * 0.24 = 39.56 USDT, 19.78 %. ETH moved 22 / 20 - 1 = 10 %. Each market plots its 2-bar SMA.
 */
export function multiFixtureRun(): { result: BacktestResult; bars: BarSeries; eth: BarSeries } {
  const { bars } = fixtureRun();
  const eth = seriesFromRows(
    FIXTURE_ETH.map(([open, high, low, close], i) => ({
      time: FIXTURE_T0 + i * 86_400_000,
      open,
      high,
      low,
      close,
      volume: 5,
    })),
  );
  const strategy = defineStrategy<
    Record<string, never>,
    { btc: InstanceType<typeof SMA>; eth: InstanceType<typeof SMA>; i: number; j: number }
  >({
    name: 'fixture-two-markets',
    params: { safeParse: () => ({ success: true, data: {} }) },
    warmup: 'none',
    onStart: (ctx) => {
      ctx.subscribe({ symbol: 'ETH/USDT' });
      return {
        btc: ctx.indicator(new SMA(2)),
        eth: ctx.indicator(new SMA(2), { symbol: 'ETH/USDT' }),
        i: 0,
        j: 0,
      };
    },
    onBar(ctx, s, _bar, feed) {
      if (feed.symbol === 'ETH/USDT') {
        const step = s.j++;
        if (step === 0) ctx.buy(10, { symbol: 'ETH/USDT' });
        else if (step === 2) ctx.sell(10, { symbol: 'ETH/USDT' });
        return;
      }
      const step = s.i++;
      if (step === 0 || step === 2) ctx.buy(1);
      else if (step === 1 || step === 3) ctx.sell(1);
      else if (step === 4) ctx.buy(2);
    },
    plot: {
      'SMA 2': { panel: 'price', value: (s) => s.btc.value },
      'ETH SMA 2': { panel: 'price', symbol: 'ETH/USDT', value: (s) => s.eth.value },
    },
  });
  const result = runBacktest({
    strategy,
    data: [
      { symbol: 'BTC/USDT', timeframe: '1d', series: bars },
      { symbol: 'ETH/USDT', timeframe: '1d', series: eth },
    ],
    cash: 1000,
    fee: 0.001,
  });
  return { result, bars, eth };
}
