import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidParamsError, runBacktest, syntheticBars } from '@keel/core';
import { CsvFormatError, Progress, readBarsFile } from '@keel/data';
import { formatSummary, writeReport } from '@keel/report';
import { getStrategy, STRATEGIES } from '@keel/strategies';
import { BACKTEST_HELP, backtestCommand, type Io } from './backtest.ts';
import { UsageError } from './errors.ts';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export const HELP = `keel — crypto algorithmic trading: one strategy code path for backtest, paper and live.

Usage: keel <command> [options]      (keel <command> --help for details)

Commands:
  demo                      run a demo backtest and write an HTML report (what npm start does)
  backtest                  backtest a built-in strategy on a candle file, print a summary or JSON
  strategies                list built-in strategies and their parameters
  data <sub>                market data: download, import, validate, list, resample, export
  features build            compute the feature set over stored bars
  exchange-sim              run the local Binance-protocol exchange simulator
  paper                     run a strategy on live or replayed data with simulated fills
  live                      run a strategy against a real exchange account
  bots <sub>                operate bots: list, status, stop, parity (backtest of the bars a bot saw)
  keys <sub>                encrypted exchange api keys: add, list, remove, rotate-passphrase

Quick start:
  keel backtest --strategy sma-cross --data ../shared/data/binance_BTCUSDT_1m_2024-01.csv.gz --report out/
`;

function defaultIo(): Io {
  return { stdout: process.stdout, stderr: process.stderr };
}

export async function main(argv: string[], io: Io = defaultIo()): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        io.stdout.write(HELP);
        return 0;
      case 'backtest':
        return await backtestCommand(rest, io);
      case 'demo':
        return await demo(rest, io);
      case 'strategies':
        return strategiesCommand(io);
      case 'data':
      case 'features': {
        const { runDataCli } = await import('@keel/data/cli');
        return await runDataCli(argv, io);
      }
      case 'exchange-sim': {
        const { runExchangeSimCli } = await import('@keel/exchange-sim');
        return await runExchangeSimCli(rest, { out: io.stdout, err: io.stderr });
      }
      case 'keys': {
        const { runKeysCli } = await import('@keel/runtime/keys-cli');
        return await runKeysCli(rest, io);
      }
      case 'bots':
        return await (await import('@keel/runtime/bots-cli')).runBotsCli(rest, io);
      case 'paper':
      case 'live': {
        const { runBotCli } = await import('@keel/runtime/cli');
        return await runBotCli(argv, io);
      }
      default:
        throw new UsageError(`unknown command "${cmd}"`);
    }
  } catch (e) {
    return reportError(e, cmd, io);
  }
}

function reportError(e: unknown, cmd: string | undefined, io: Io): number {
  if (
    e instanceof UsageError ||
    (e instanceof Error && 'code' in e && String((e as { code: unknown }).code).startsWith('ERR_PARSE_ARGS'))
  ) {
    io.stderr.write(
      `keel${cmd ? ` ${cmd}` : ''}: ${e.message}\nRun 'keel ${cmd && cmd !== e.message ? `${cmd} ` : ''}--help' for usage.\n`,
    );
    return 2;
  }
  if (e instanceof InvalidParamsError || e instanceof CsvFormatError) {
    io.stderr.write(`keel ${cmd}: ${e.message}\n`);
    return 1;
  }
  const msg = e instanceof Error ? e.message : String(e);
  io.stderr.write(`keel ${cmd ?? ''}: ${msg}\n`);
  if (process.env.KEEL_DEBUG && e instanceof Error) io.stderr.write(`${e.stack}\n`);
  return 1;
}

function strategiesCommand(io: Io): number {
  for (const s of Object.values(STRATEGIES)) {
    io.stdout.write(`${s.name}\n  ${s.description ?? ''}\n`);
  }
  return 0;
}

async function demo(argv: string[], io: Io): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    io.stdout.write(
      'Usage: keel demo [--out <dir>]\nRuns sma-cross on real BTC/USDT 1m candles when ../shared/data is present, else on a labelled synthetic market, and writes an HTML report.\n',
    );
    return 0;
  }
  const outIdx = argv.indexOf('--out');
  const out = path.resolve(outIdx >= 0 && argv[outIdx + 1] ? argv[outIdx + 1]! : 'out/demo');
  const real = path.resolve(REPO_ROOT, '../shared/data/binance_BTCUSDT_1m_2024-01.csv.gz');
  const hasReal = existsSync(real);
  const series = hasReal ? readBarsFile(real).series : syntheticBars(44_640);
  io.stdout.write(
    hasReal
      ? `Keel demo: sma-cross (10/30) on real Binance BTC/USDT 1m candles, January 2024 (${real})\n\n`
      : 'Keel demo: sma-cross (10/30) on a SYNTHETIC market (no real data found at ../shared/data; the prices are generated, not real)\n\n',
  );
  const bar = Progress.on('backtest', io.stderr);
  const result = runBacktest({
    strategy: getStrategy('sma-cross'),
    params: { fast: 10, slow: 30 },
    data: [{ symbol: hasReal ? 'BTC/USDT' : 'SYN/USDT', timeframe: '1m', series }],
    cash: 10_000,
    fee: 0.001,
    onProgress: (d, t) => bar.update(d, t),
  });
  io.stdout.write(`${formatSummary(result)}\n`);
  const paths = writeReport(
    out,
    result,
    series,
    hasReal
      ? { title: 'Keel demo: sma-cross on BTC/USDT 1m, January 2024' }
      : {
          title: 'Keel demo (SYNTHETIC market)',
          notes: [
            'SYNTHETIC prices: generated by a seeded random walk because ../shared/data was not found. Not real market data.',
          ],
        },
  );
  io.stdout.write(`\nReport: ${paths.html}\nNext: keel backtest --help, keel strategies, keel exchange-sim --help\n`);
  return 0;
}

export { BACKTEST_HELP };
