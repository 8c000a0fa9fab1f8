import { readFileSync } from 'node:fs';
import type { Section } from '@keel/runtime/config';
import type { Cli, Io } from './context.ts';
import { progName } from './context.ts';
import { EXIT, isUsageError, UsageError } from './errors.ts';
import { guardPipes } from './output.ts';
import { closest } from './suggest.ts';

/**
 * One entry per command. `run` imports the command's module when the command runs, so starting
 * keel loads only this file: `keel --help` and `keel backtest` never load ccxt, DuckDB or the
 * store, and each command pays only for what it uses. To add a command, add an entry here.
 */
export interface Command {
  readonly name: string;
  /** Shown after the name in `keel --help`, e.g. "<sub>". */
  readonly args?: string;
  readonly summary: string;
  /**
   * The configuration file's section for this command (docs/config.md): its settings and the
   * environment's complete the command line before `run` sees it.
   */
  readonly config?: Section;
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  readonly run: (argv: string[], cli: Cli) => Promise<number>;
}

/**
 * `keel paper|live`: SIGINT and SIGTERM are caught from the first instant, while the runtime
 * loads (a second or more) and the bot connects, before the bot's own handlers take over: the
 * bot then stops before its start completes and says so, instead of the process vanishing
 * without a line. A second signal exits at once.
 */
async function botCommand(argv: string[], cli: Cli): Promise<number> {
  let received: string | undefined;
  const on = (sig: NodeJS.Signals) => {
    if (received !== undefined) {
      cli.stderr.write(`${sig} received again while the bot was starting: exiting now\n`);
      process.exit(130);
    }
    received = sig;
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  const release = () => {
    process.off('SIGINT', on);
    process.off('SIGTERM', on);
  };
  try {
    const { runBotCli } = await import('@keel/runtime/cli');
    return await runBotCli(argv, cli, {
      received: () => received,
      release,
    });
  } finally {
    release();
  }
}

export const COMMANDS: readonly Command[] = [
  {
    name: 'demo',
    summary: 'run a demo backtest and write an HTML report (what npm start does)',
    run: async (argv, cli) => (await import('./demo.ts')).demoCommand(argv, cli),
  },
  {
    name: 'backtest',
    config: 'backtest',
    summary: 'backtest a strategy (built-in or your file) on candles, print a summary or JSON',
    run: async (argv, cli) => (await import('./backtest.ts')).backtestCommand(argv, cli),
  },
  {
    name: 'backtests',
    args: '<sub>',
    config: 'backtests',
    summary: 'the backtest runs kept in the store: list, show, compare',
    run: async (argv, cli) => (await import('@keel/runtime/backtests-cli')).runBacktestsCli(argv, cli),
  },
  {
    name: 'strategies',
    args: '[file]',
    summary: 'strategies with their parameters, types, defaults and rules',
    run: async (argv, cli) => (await import('./strategies.ts')).strategiesCommand(argv, cli),
  },
  {
    name: 'new',
    args: 'strategy <name>',
    summary: 'write a commented starter strategy that runs as written',
    run: async (argv, cli) => (await import('./new.ts')).newCommand(argv, cli),
  },
  {
    name: 'data',
    args: '<sub>',
    config: 'data',
    summary: 'market data: download, import, validate, list, resample, export',
    run: async (argv, cli) => (await import('@keel/data/cli')).runDataCli(['data', ...argv], cli),
  },
  {
    name: 'features',
    args: 'build',
    config: 'data',
    summary: 'compute the feature set over stored bars',
    run: async (argv, cli) => (await import('@keel/data/cli')).runDataCli(['features', ...argv], cli),
  },
  {
    name: 'exchange-sim',
    summary: 'run the local Binance-protocol exchange simulator',
    run: async (argv, cli) =>
      (await import('@keel/exchange-sim')).runExchangeSimCli(argv, { out: cli.stdout, err: cli.stderr }),
  },
  {
    name: 'paper',
    config: 'paper',
    summary: 'run a strategy on live or replayed data with simulated fills',
    run: (argv, cli) => botCommand(['paper', ...argv], cli),
  },
  {
    name: 'live',
    config: 'live',
    summary: 'run a strategy against a real exchange account',
    run: (argv, cli) => botCommand(['live', ...argv], cli),
  },
  {
    name: 'bots',
    args: '<sub>',
    config: 'bots',
    summary: 'operate bots: list, status, stop, resume (end risk halts), parity (backtest of the bars a bot saw)',
    run: async (argv, cli) => (await import('@keel/runtime/bots-cli')).runBotsCli(argv, cli),
  },
  {
    name: 'config',
    args: 'show',
    summary: 'effective settings (keel.yaml, KEEL_*, defaults) and where each comes from',
    run: async (argv, cli) => (await import('./config.ts')).configCommand(argv, cli),
  },
  {
    name: 'portfolio',
    config: 'bots',
    summary: "every bot's books: average cost, realised and unrealised PnL, fees, equity in one currency",
    run: async (argv, cli) => (await import('@keel/runtime/portfolio-cli')).runPortfolioCli(argv, cli),
  },
  {
    name: 'keys',
    args: '<sub>',
    summary: 'encrypted exchange api keys: add, list, remove, rotate-passphrase',
    run: async (argv, cli) => (await import('@keel/runtime/keys-cli')).runKeysCli(argv, cli),
  },
];

export function helpText(prog: string): string {
  const rows = COMMANDS.map((c) => `  ${`${c.name}${c.args ? ` ${c.args}` : ''}`.padEnd(26)}${c.summary}`);
  return `keel — crypto algorithmic trading: one strategy code path for backtest, paper and live.

Usage: ${prog} <command> [options]      (${prog} <command> --help for details; ${prog} --version)

Commands:
${rows.join('\n')}

Exit codes:
  0  success
  1  failure: bad or missing data, a failed run, a strategy that threw (the message says what)
  2  usage: unknown command or option, a missing or invalid option value

Settings: flags > KEEL_<FLAG> environment variables > keel.yaml (here, or --config <file>) >
defaults, for backtest, paper, live, data, and the store of bots, portfolio and backtests
(docs/config.md; ${prog} config show).

Output cut short by its reader (| head) ends quietly. KEEL_DEBUG=1 adds stack traces to errors.

Quick start:
  ${prog} backtest --strategy sma-cross --data ../shared/data/binance_BTCUSDT_1m_2024-01.csv.gz --report out/
`;
}

function processCli(): Cli {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    prog: progName(process.env, process.argv[1], process.cwd()),
  };
}

/** The `keel` command: dispatches to a command and resolves to its exit code. */
export async function main(argv: string[], cli: Cli = processCli()): Promise<number> {
  guardPipes(cli);
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help') {
    cli.stdout.write(helpText(cli.prog));
    return EXIT.ok;
  }
  if (name === '--version' || name === '-V') {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    cli.stdout.write(`keel ${pkg.version}\n`);
    return EXIT.ok;
  }
  if (name === 'help') {
    // `keel help backtest` is `keel backtest --help`.
    if (rest[0] === undefined) {
      cli.stdout.write(helpText(cli.prog));
      return EXIT.ok;
    }
    return main([rest[0], '--help'], cli);
  }
  const command = COMMANDS.find((c) => c.name === name);
  try {
    if (!command) throw unknownCommand(name, cli.prog);
    const args = command.config ? await (await import('./config.ts')).applyConfig(command.config, rest) : rest;
    return await command.run(args, cli);
  } catch (e) {
    return reportError(e, command?.name, cli);
  }
}

function unknownCommand(name: string, prog: string): UsageError {
  const guess = name.startsWith('-')
    ? undefined
    : closest(
        name,
        COMMANDS.map((c) => c.name),
      );
  return new UsageError(
    `unknown ${name.startsWith('-') ? 'option' : 'command'} "${name}"${guess ? `. Did you mean '${prog} ${guess}'?` : ''}`,
  );
}

/** Prints an error the way the user can act on: a usage error points to --help, any other failure says what went wrong. */
function reportError(e: unknown, command: string | undefined, cli: Cli): number {
  const where = `keel${command ? ` ${command}` : ''}`;
  let msg = e instanceof Error ? e.message : String(e);
  // Some commands name themselves in their messages already.
  if (msg.startsWith(`${where}: `)) msg = msg.slice(where.length + 2);
  if (isUsageError(e)) {
    cli.stderr.write(`${where}: ${msg}\nRun '${cli.prog}${command ? ` ${command}` : ''} --help' for usage.\n`);
    return EXIT.usage;
  }
  cli.stderr.write(`${where}: ${msg}\n`);
  if (process.env.KEEL_DEBUG && e instanceof Error)
    cli.stderr.write(`${e.stack}\n${e.cause instanceof Error ? `caused by: ${e.cause.stack}\n` : ''}`);
  return EXIT.failure;
}

export type { Cli, Io };
