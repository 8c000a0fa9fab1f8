import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  type AnyStrategy,
  type BacktestResult,
  type BarSeries,
  FUTURES_FLAGS,
  FUTURES_FLAGS_HELP,
  fixedBpsSlippage,
  isTimeframe,
  paramsFromPairs,
  parseParams,
  RISK_FLAGS,
  RISK_FLAGS_HELP,
  runBacktest,
  type Timeframe,
  volumeShareSlippage,
} from '@keel/core';
// The CSV reader and the progress bar alone: the package's index also loads ccxt.
import { readBarsFile } from '@keel/data/csv';
import { Progress } from '@keel/data/progress';
import { formatSummary, resultJsonChunks, writeReport } from '@keel/report';
import { getStrategy, STRATEGIES } from '@keel/strategies';
import type { Cli } from './context.ts';
import { EXIT, UsageError } from './errors.ts';
import { futuresRun } from './futures.ts';
import { inferTimeframe, symbolFromFileName } from './infer.ts';
import { collectGarbage } from './memory.ts';
import { writeChunks } from './output.ts';
import { riskFromFlags } from './risk.ts';
import { closest } from './suggest.ts';

export const backtestHelp = (
  prog: string,
): string => `Usage: ${prog} backtest --strategy <name> --data <file.csv[.gz]> [options]

Runs a strategy over historical bars with the simulated venue (backtrader's conventions: a market
order decided on bar t fills at bar t+1's open; see docs/conventions.md).

Options:
  --strategy <name>      built-in strategy: ${Object.keys(STRATEGIES).join(', ')}
  --data <file>          candles: .csv or .csv.gz (Binance 12-column klines or OHLCV with a header;
                         timestamps as epoch s/ms/us or ISO text, UTC when no zone is given)
  --symbol <BASE/QUOTE>  market (default: from the file name, e.g. BTCUSDT -> BTC/USDT)
  --timeframe <tf>       bar timeframe (default: from the file name or the bar spacing)
  --param key=value      strategy parameter, repeatable (e.g. --param fast=10 --param slow=30)
  --cash <n>             starting cash in the quote currency (default 10000)
  --fee <rate>           taker fee per side, 0.001 = 0.1 % (default 0.001)
  --maker-fee <rate>     maker fee per side (default: --fee)
  --slippage-bps <n>     fixed adverse slippage on taker fills, in basis points (default 0)
  --participation <f>    volume-share fills: at most this fraction of each bar's volume (partial fills)
  --latency-bars <n>     bars between decision and fill (default 1: next bar's open)
  --from <time>          first bar (ISO date or epoch ms), --to <time> end (exclusive)
  --report <dir>         write report.html, result.json, trades.csv, equity.csv, fills.csv
  --json                 print the whole result as JSON on stdout (no table)
  --progress             force the progress bar (default: only on a terminal)
  -h, --help             this help

${FUTURES_FLAGS_HELP}
${RISK_FLAGS_HELP}`;

function num(name: string, v: string | undefined, min: number, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min)
    throw new UsageError(`--${name} must be a number >= ${min}, got "${v}"`, 'backtest');
  return n;
}

function time(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) || v.length <= 10 ? v : `${v}Z`);
  if (!Number.isFinite(n))
    throw new UsageError(`--${name} must be an ISO date/time or epoch ms, got "${v}"`, 'backtest');
  return n;
}

/** A built-in strategy by name; a mistyped name gets the closest one suggested. */
function strategyNamed(name: string): AnyStrategy {
  if (Object.hasOwn(STRATEGIES, name)) return getStrategy(name);
  const guess = closest(name, Object.keys(STRATEGIES));
  throw new Error(
    `Unknown strategy "${name}". Available: ${Object.keys(STRATEGIES).join(', ')}${guess ? `. Did you mean "${guess}"?` : ''}`,
  );
}

export async function backtestCommand(argv: string[], io: Cli): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      strategy: { type: 'string' },
      data: { type: 'string' },
      symbol: { type: 'string' },
      timeframe: { type: 'string' },
      param: { type: 'string', multiple: true },
      cash: { type: 'string' },
      fee: { type: 'string' },
      'maker-fee': { type: 'string' },
      'slippage-bps': { type: 'string' },
      participation: { type: 'string' },
      'latency-bars': { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      report: { type: 'string' },
      json: { type: 'boolean' },
      progress: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      ...RISK_FLAGS,
      ...FUTURES_FLAGS,
    },
  });
  if (values.help) {
    io.stdout.write(backtestHelp(io.prog));
    return EXIT.ok;
  }
  if (!values.strategy) throw new UsageError('--strategy is required', 'backtest');
  if (!values.data) throw new UsageError('--data is required (a .csv or .csv.gz file of candles)', 'backtest');
  const strategy = strategyNamed(values.strategy);
  const params = parseParams(strategy, paramsFromPairs(values.param ?? []));
  const risk = riskFromFlags(values, 'backtest');
  // Data errors are failures (exit 1) that name the file: --help would not help with them.
  if (!existsSync(values.data)) throw new Error(`--data: no such file: ${values.data}`);
  const parsed = readBarsFile(values.data);
  if (parsed.rowsIn >= 200_000) collectGarbage();
  const series: BarSeries = parsed.series;
  if (parsed.quarantined.length > 0) {
    const q = parsed.quarantined;
    io.stderr.write(
      `warning: ${q.length} of ${parsed.rowsIn} rows in ${values.data} were quarantined and skipped (first: line ${q[0]!.line}, ${q[0]!.rule}: ${q[0]!.message})\n`,
    );
  }
  if (series.length === 0) throw new Error(`${values.data} has no usable rows`);
  for (let i = 1; i < series.length; i++) {
    if ((series.time[i] as number) <= (series.time[i - 1] as number)) {
      throw new Error(
        `${values.data}: timestamps are not strictly increasing at data row ${i + 1} (${new Date(series.time[i] as number).toISOString()}); sort and de-duplicate the file (${io.prog} data import does this)`,
      );
    }
  }
  const symbol = values.symbol ?? symbolFromFileName(values.data);
  if (!symbol)
    throw new UsageError(
      'cannot tell the market from the file name: pass --symbol, e.g. --symbol BTC/USDT',
      'backtest',
    );
  if (!/^[A-Z0-9]+\/[A-Z0-9]+(:[A-Z0-9]+)?$/i.test(symbol))
    throw new UsageError(`--symbol must look like BTC/USDT, got "${symbol}"`, 'backtest');
  let timeframe: Timeframe | undefined;
  if (values.timeframe !== undefined) {
    if (!isTimeframe(values.timeframe))
      throw new UsageError(`--timeframe "${values.timeframe}" is not a timeframe (1m, 5m, 1h, 1d, ...)`, 'backtest');
    timeframe = values.timeframe;
  } else timeframe = inferTimeframe(values.data, series);
  if (!timeframe)
    throw new UsageError('cannot tell the timeframe from the file: pass --timeframe, e.g. --timeframe 1m', 'backtest');
  const futures = futuresRun(values, symbol.toUpperCase(), series, timeframe);
  const fee = num('fee', values.fee, 0, futures?.takerFee ?? 0.001);
  const bar = Progress.on('backtest', io.stderr, values.progress === true);
  const slippageBps = num('slippage-bps', values['slippage-bps'], 0, 0);
  const participation =
    values.participation !== undefined ? num('participation', values.participation, 0, 1) : undefined;
  const t0 = performance.now();
  const from = time('from', values.from);
  const to = time('to', values.to);
  const result: BacktestResult = runBacktest({
    strategy,
    params,
    data: [{ symbol: futures?.symbol ?? symbol.toUpperCase(), timeframe, series }],
    cash: num('cash', values.cash, 0, 10_000),
    fee,
    ...(values['maker-fee'] !== undefined
      ? { makerFee: num('maker-fee', values['maker-fee'], 0, fee) }
      : futures !== undefined && values.fee === undefined
        ? { makerFee: futures.makerFee }
        : {}),
    ...(futures !== undefined ? { futures: () => futures.settings } : {}),
    ...(participation !== undefined
      ? { slippage: volumeShareSlippage(participation) }
      : slippageBps > 0
        ? { slippage: fixedBpsSlippage(slippageBps) }
        : {}),
    ...(values['latency-bars'] !== undefined ? { latencyBars: num('latency-bars', values['latency-bars'], 1, 1) } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
    ...(risk !== undefined ? { risk } : {}),
    onProgress: (d, t) => bar.update(d, t),
  });
  const secs = (performance.now() - t0) / 1000;
  if (values.json) {
    // Streamed: a million-bar result is written piece by piece, never held as one string.
    await writeChunks(io.stdout, resultJsonChunks(result, { reuseBuffer: true }));
  } else {
    io.stdout.write(`${formatSummary(result)}\n`);
    io.stdout.write(`${result.feeds[0]!.bars.toLocaleString('en-US')} bars in ${secs.toFixed(2)} s\n`);
  }
  if (values.report) {
    const paths = writeReport(path.resolve(values.report), result, series);
    io.stderr.write(`report written: ${paths.html}\n`);
  }
  if (result.errors.length > 0)
    io.stderr.write(
      `warning: the strategy raised ${result.errors.length} error(s); first: ${result.errors[0]!.hook}: ${result.errors[0]!.message}\n`,
    );
  return EXIT.ok;
}
