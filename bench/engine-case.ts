// One benchmark case in its own process, so peak memory (maxRSS) belongs to this case alone.
import v8 from 'node:v8';
import vm from 'node:vm';
import { defineStrategy, runBacktest } from '@keel/core';
import { getStrategy } from '@keel/strategies';
import { bareLoop } from './bare.ts';
import { realMinuteBars } from './bars.ts';

const [strategy = 'sma-cross', nStr = '1000000'] = process.argv.slice(2);
const n = Number(nStr);
const series = realMinuteBars(n);
const rssAfterLoad = process.memoryUsage().rss / 1048576;
// Parsing the CSV files leaves tens of MB of dead text and buffers that V8 collects whenever it
// likes; one full GC here (outside any timing) starts the backtests from a heap that holds only
// the bars. The load's own peak still counts: maxRSS is the whole process.
v8.setFlagsFromString('--expose-gc');
(vm.runInNewContext('gc') as () => void)();
const params =
  strategy === 'sma-cross'
    ? { fast: 10, slow: 30 }
    : strategy === 'rsi-reversion'
      ? { period: 14 }
      : { period: 20, stddev: 2 };
const run = () =>
  runBacktest({
    strategy: getStrategy(strategy),
    params,
    data: [{ symbol: 'BTC/USDT', timeframe: '1m', series }],
    cash: 10_000,
    fee: 0.001,
  });
// Best of `reps` timed calls. Only a small summary of each result is kept (outside the timing), so
// one run's result is not still held while the next runs: peak memory is that of one backtest.
const best = <T, S>(f: () => T, reps: number, summary: (out: T) => S) => {
  let b = Number.POSITIVE_INFINITY;
  let out: S | undefined;
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    const r = f();
    b = Math.min(b, performance.now() - t);
    out = summary(r);
  }
  return { ms: b, out: out as S };
};
const backtestSummary = (r: ReturnType<typeof run>) => ({ trades: r.metrics.tradeCount, finalValue: r.finalValue });
run(); // warm-up (JIT)
const eng = best(run, 3, backtestSummary);
// Peak memory of the backtests themselves, before the bare loop and the no-op runs below.
const maxRssMb = process.resourceUsage().maxRSS / 1024;
bareLoop(strategy, series);
const bare = best(
  () => bareLoop(strategy, series),
  3,
  (x) => x,
);
// The same engine, venue and metrics with a strategy that does nothing: the cost of the bar path
// alone, so the difference to the case above is the strategy's indicators and its orders.
const noop = defineStrategy({
  name: 'noop',
  params: { safeParse: (x: unknown) => ({ success: true as const, data: x }) },
  warmup: 'none',
  onStart: () => ({}),
  onBar() {},
});
const runNoop = () =>
  runBacktest({ strategy: noop, data: [{ symbol: 'BTC/USDT', timeframe: '1m', series }], cash: 10_000, fee: 0.001 });
runNoop();
const empty = best(runNoop, 3, backtestSummary);
const r = eng.out;
const b = bare.out;
process.stdout.write(
  JSON.stringify({
    strategy,
    bars: n,
    engineBarsPerSec: (n / eng.ms) * 1000,
    bareBarsPerSec: (n / bare.ms) * 1000,
    noopBarsPerSec: (n / empty.ms) * 1000,
    engineTrades: r.trades,
    bareTrades: b.trades,
    engineFinal: r.finalValue,
    bareFinal: b.finalValue,
    maxRssMb,
    rssAfterLoadMb: rssAfterLoad,
  }),
);
