import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  type BacktestResult,
  type BarSeries,
  FUTURES_FLAGS,
  FUTURES_FLAGS_HELP,
  fixedBpsSlippage,
  MAX_SLIPPAGE_BPS,
  paramsFromPairs,
  RISK_FLAGS,
  RISK_FLAGS_HELP,
  runBacktest,
  volumeShareSlippage,
} from '@keel/core';
import { checkRange, commonSpan, feedQualityLines, type LoadedFeed } from '@keel/data/feeds';
// The progress bar alone: the package's index also loads ccxt.
import { Progress } from '@keel/data/progress';
import { formatSummary, reportDirProblem, resultJsonChunks, writeReport } from '@keel/report';
import { loadStrategy, strategyParams } from '@keel/runtime/strategy-file';
import { STRATEGIES, spotDirectionProblem } from '@keel/strategies';
import { DATA_FLAGS, DATA_FLAGS_HELP, loadFeedsFromFlags, marketFromFlags } from './backtest-data.ts';
import { keepRun } from './backtest-save.ts';
import type { Cli } from './context.ts';
import { EXIT, UsageError } from './errors.ts';
import { futuresRun } from './futures.ts';
import { writeChunks } from './output.ts';
import { riskFromFlags } from './risk.ts';
import { closest } from './suggest.ts';

export const backtestHelp = (
  prog: string,
): string => `Usage: ${prog} backtest --strategy <name|file> --data <file.csv[.gz]>... [options]
       ${prog} backtest --strategy <name|file> --exchange binance --symbol BTC/USDT --timeframe 1h [options]

Runs a strategy over historical bars with the simulated venue (backtrader's conventions: a market
order decided on bar t fills at bar t+1's open; see docs/conventions.md).

Options:
  --strategy <name|file> built-in strategy (${Object.keys(STRATEGIES).join(', ')}) or your own
                         file exporting defineStrategy(...): ./my-strategy.ts, .js or .mjs
  --max-open-trades <n>  at most n markets held at once (the risk rule max-open-trades); with several
                         markets each entry's orderTargetPercent is a share of equity / n
                         (default: / the number of markets)
  --param key=value      strategy parameter, repeatable (e.g. --param fast=10 --param slow=30)
  --cash <n>             starting cash in the quote currency, > 0 (default 10000)
  --fee <rate>           taker fee per side in [0, 1), 0.001 = 0.1 % (default 0.001)
  --maker-fee <rate>     maker fee per side in [0, 1) (default: --fee)
  --slippage-bps <n>     fixed adverse slippage on taker fills, in basis points below 10000 (default 0)
  --participation <f>    volume-share fills: at most this fraction (0, 1] of each bar's volume
                         (partial fills)
  --latency-bars <n>     bars between decision and fill (default 1: next bar's open)
  --from <time>          first bar (ISO date or epoch ms), --to <time> end (exclusive)
  --report <dir>         write report.html, result.json, trades.csv, equity.csv, fills.csv into the
                         folder <dir> (a path ending in .html is refused)
  --store <url>          where the run is kept (keel backtests list|show|compare): sqlite:<path>
                         (default sqlite:.keel/keel.db) or postgres://...
  --no-save              do not keep the run in the store
  --save                 keep it even over ${AUTO_SAVE_MAX_BARS.toLocaleString('en-US')} bars (kept by default up to that)
  --json                 print the whole result as JSON on stdout (no table)
  --progress             force the progress bar (default: only on a terminal)
  -h, --help             this help

${DATA_FLAGS_HELP}
${FUTURES_FLAGS_HELP}
${RISK_FLAGS_HELP}`;

function positive(name: string, v: string | undefined, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0)) throw new UsageError(`--${name} must be a number > 0, got "${v}"`, 'backtest');
  return n;
}

/** A fee rate per side: 0.001 is 0.1 %; 1 or more would take the whole order (and deny every one). */
function feeRate(name: string, v: string | undefined, def: number): number {
  if (v === undefined) return def;
  const n = Number(v);
  if (!(Number.isFinite(n) && n >= 0 && n < 1))
    throw new UsageError(`--${name} is a rate per side in [0, 1) (0.001 = 0.1 %), got "${v}"`, 'backtest');
  return n;
}

/** Basis points of slippage in [0, 10000): 10,000 bps (100 %) would sell at a price of 0. */
function bps(name: string, v: string | undefined): number {
  if (v === undefined) return 0;
  const n = Number(v);
  if (!(Number.isFinite(n) && n >= 0 && n < MAX_SLIPPAGE_BPS))
    throw new UsageError(
      `--${name} is in basis points, from 0 to below ${MAX_SLIPPAGE_BPS} (100 = 1 %; ${MAX_SLIPPAGE_BPS} would sell at a price of 0), got "${v}"`,
      'backtest',
    );
  return n;
}

/** A fraction in (0, 1]: 0 would let no order fill. */
function share(name: string, v: string): number {
  const n = Number(v);
  if (!(Number.isFinite(n) && n > 0 && n <= 1))
    throw new UsageError(`--${name} is a fraction in (0, 1], got "${v}"`, 'backtest');
  return n;
}

function integer(name: string, v: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new UsageError(`--${name} must be an integer >= ${min}, got "${v}"`, 'backtest');
  return n;
}

function time(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = /^\d+$/.test(v) ? Number(v) : Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(v) || v.length <= 10 ? v : `${v}Z`);
  if (!Number.isFinite(n))
    throw new UsageError(`--${name} must be an ISO date/time or epoch ms, got "${v}"`, 'backtest');
  return n;
}

/**
 * Runs up to this many bars are kept in the store by default. A kept run holds its bars and its
 * whole result, compressed: at 1,000,000 bars that is ~77 MB and ~2.4 s more (docs/performance.md),
 * more than the run itself; such a run is kept only with --save, and a line says so.
 */
export const AUTO_SAVE_MAX_BARS = 200_000;

export async function backtestCommand(argv: string[], io: Cli): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      strategy: { type: 'string' },
      ...DATA_FLAGS,
      param: { type: 'string', multiple: true },
      cash: { type: 'string' },
      fee: { type: 'string' },
      'maker-fee': { type: 'string' },
      'slippage-bps': { type: 'string' },
      participation: { type: 'string' },
      'latency-bars': { type: 'string' },
      'max-open-trades': { type: 'string' },
      store: { type: 'string' },
      'no-save': { type: 'boolean' },
      save: { type: 'boolean' },
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
  const reportWhy = values.report !== undefined ? reportDirProblem(values.report) : undefined;
  if (reportWhy !== undefined) throw new UsageError(reportWhy, 'backtest');
  const { market, note: marketNote } = marketFromFlags(values);
  if (marketNote !== undefined) io.stderr.write(`note: ${marketNote}\n`);
  const flags = { ...values, market };
  const own = await loadStrategy(values.strategy, { suggest: closest });
  const strategy = own.strategy;
  const params = strategyParams(own, paramsFromPairs(values.param ?? []));
  const maxOpenTrades =
    values['max-open-trades'] !== undefined ? integer('max-open-trades', values['max-open-trades'], 1) : undefined;
  const risk = riskFromFlags(values, 'backtest');
  const cash = positive('cash', values.cash, 10_000);
  const slippageBps = bps('slippage-bps', values['slippage-bps']);
  const participation = values.participation !== undefined ? share('participation', values.participation) : undefined;
  const latencyBars =
    values['latency-bars'] !== undefined ? integer('latency-bars', values['latency-bars'], 1) : undefined;
  const from = time('from', values.from);
  const to = time('to', values.to);
  const range = { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}) };
  const loaded = checkRange(await loadFeedsFromFlags(flags, range), from, to);
  const feeds = commonSpan(loaded);
  for (const f of feeds) for (const n of f.notes) io.stderr.write(`note: ${n}\n`);
  const first = feeds[0] as LoadedFeed;
  const series: BarSeries = first.series;
  const futures = futuresRun(flags, first.symbol.toUpperCase(), series, first.timeframe);
  if (futures !== undefined && feeds.length > 1)
    throw new UsageError('--market futures runs one market at a time: give one --data or --symbol', 'backtest');
  const spot = futures === undefined && feeds.some((f) => !f.symbol.includes(':'));
  const shortOnSpot = spot ? spotDirectionProblem(params) : undefined;
  if (shortOnSpot !== undefined) throw new UsageError(shortOnSpot, 'backtest');
  const fee = feeRate('fee', values.fee, futures?.takerFee ?? 0.001);
  const makerFee =
    values['maker-fee'] !== undefined
      ? feeRate('maker-fee', values['maker-fee'], fee)
      : futures !== undefined && values.fee === undefined
        ? futures.makerFee
        : undefined;
  if (values.save === true && values['no-save'] === true)
    throw new UsageError('--save and --no-save: give one or the other', 'backtest');
  // The bars read bound the bars run (--from/--to may replay fewer): enough to know whether the
  // run may be kept, so its plot lines are recorded.
  const barsRead = feeds.reduce((a, f) => a + f.series.length, 0);
  const mayKeep = values['no-save'] !== true && (values.save === true || barsRead <= AUTO_SAVE_MAX_BARS);
  const bar = Progress.on('backtest', io.stderr, values.progress === true);
  const t0 = performance.now();
  const result: BacktestResult = runBacktest({
    strategy,
    params,
    // The report draws the strategy's lines; a kept run keeps them for `keel backtests show --report`.
    plots: values.report !== undefined || mayKeep,
    data: feeds.map((f) => ({ symbol: futures?.symbol ?? f.symbol, timeframe: f.timeframe, series: f.series })),
    ...(feeds.length > 1 ? { perPair: maxOpenTrades !== undefined ? { slots: maxOpenTrades } : {} } : {}),
    cash,
    fee,
    ...(makerFee !== undefined ? { makerFee } : {}),
    ...(futures !== undefined ? { futures: () => futures.settings } : {}),
    ...(participation !== undefined
      ? { slippage: volumeShareSlippage(participation) }
      : slippageBps > 0
        ? { slippage: fixedBpsSlippage(slippageBps) }
        : {}),
    ...(latencyBars !== undefined ? { latencyBars } : {}),
    ...range,
    ...(risk !== undefined ? { risk } : {}),
    onProgress: (d, t) => bar.update(d, t),
  });
  const secs = (performance.now() - t0) / 1000;
  // Printed without --json, kept with a saved run: not made otherwise (its text alone is ~10 ms at a
  // million bars; the trades and the benchmark it reads are made for the JSON anyway).
  let summaryText: string | undefined;
  const summary = () => (summaryText ??= `${formatSummary(result)}\n\ndata:\n${feedQualityLines(feeds).join('\n')}`);
  const barsRun = result.feeds.reduce((a, f) => a + f.bars, 0);
  const save = values['no-save'] !== true && (values.save === true || barsRun <= AUTO_SAVE_MAX_BARS);
  if (!save && values['no-save'] !== true)
    io.stderr.write(
      `not kept in the store: ${barsRun.toLocaleString('en-US')} bars is over ${AUTO_SAVE_MAX_BARS.toLocaleString('en-US')} (a kept run holds its bars and whole result: tens of MB and seconds at this size); --save keeps it\n`,
    );
  const kept = save
    ? await keepRun({
        result,
        bars: series,
        settings: {
          cash,
          fee,
          ...(makerFee !== undefined ? { makerFee } : {}),
          ...(slippageBps > 0 ? { slippageBps } : {}),
          ...(participation !== undefined ? { participation } : {}),
          ...(latencyBars !== undefined ? { latencyBars } : {}),
          ...(maxOpenTrades !== undefined ? { maxOpenTrades } : {}),
          ...(futures !== undefined
            ? {
                futures: {
                  leverage: futures.settings.leverage,
                  marginMode: futures.settings.marginMode,
                  ...(futures.settings.positionMode !== undefined
                    ? { positionMode: futures.settings.positionMode }
                    : {}),
                  ...(futures.settings.fundingSource !== undefined ? { funding: futures.settings.fundingSource } : {}),
                  ...(futures.settings.markSource !== undefined ? { mark: futures.settings.markSource } : {}),
                },
              }
            : {}),
          ...range,
          data: feeds.map((f) => ({ symbol: f.symbol, source: f.source })),
        },
        summary: summary(),
      })
    : undefined;
  if (values.json) {
    // Streamed: a million-bar result is written piece by piece, never held as one string; the
    // store gets the same chunks, compressed on the way.
    await writeChunks(io.stdout, resultJsonChunks(result, { reuseBuffer: true }), kept);
    // The data lines are not in the result: stderr keeps them in sight beside the JSON.
    io.stderr.write(`data:\n${feedQualityLines(feeds).join('\n')}\n`);
  } else {
    io.stdout.write(`${summary()}\n`);
    const bars = result.feeds.reduce((a, f) => a + f.bars, 0);
    io.stdout.write(`${bars.toLocaleString('en-US')} bars in ${secs.toFixed(2)} s\n`);
  }
  if (kept !== undefined) {
    const id = await kept.saveAt(values.store);
    io.stderr.write(`saved as backtest ${id} (${io.prog} backtests show ${id})\n`);
  }
  if (values.report) {
    const paths = writeReport(path.resolve(values.report), result, series, { feedSeries: feeds.map((f) => f.series) });
    io.stderr.write(`report written: ${paths.html}\n`);
  }
  // A run whose strategy threw is shown (and kept) whole, to see where, but it is not a clean
  // result: a script or an optimiser reading the exit code must not take it for one.
  const firstError = result.errors[0];
  if (firstError !== undefined) {
    io.stderr.write(
      `error: the strategy raised ${result.errors.length} error(s); first: ${firstError.hook}: ${firstError.message} (the results above include the bars it failed on: exit 1)\n`,
    );
    return EXIT.failure;
  }
  return EXIT.ok;
}
