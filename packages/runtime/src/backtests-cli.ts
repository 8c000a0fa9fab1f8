import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '@keel/core';
import type { Io } from '@keel/data';
import { reportDirProblem, writeReport } from '@keel/report';
import { DEFAULT_STORE_URL, missingSqliteFile, openStore, redactStoreUrl } from '@keel/store';
import {
  BacktestNotFoundError,
  backtestId,
  backtestResultJson,
  compareBacktests,
  deleteBacktests,
  formatBacktestList,
  formatBacktestShow,
  formatComparison,
  formatRemoval,
  getBacktest,
  listBacktests,
  loadBacktest,
  pruneBacktests,
} from './backtests.ts';

export const BACKTESTS_HELP = `Usage: keel backtests <command> [options]

The backtest runs kept in the store: every keel backtest saves one (--no-save does not).

Commands:
  list                       every run, newest first: id, when, strategy, markets, span, return, trades
  show <id>                  how the run was set up and its summary as it was printed
  compare <id> <id>...       the runs' metrics side by side
  delete <id>...             delete the runs (every id must exist, else nothing is deleted)
  prune                      delete the runs beyond the newest --keep n and/or older than
                             --older-than (both given: a run must be both to go); asks nothing

Options:
  --store <url>              sqlite:<path> (default ${DEFAULT_STORE_URL}) or postgres://...;
                             keel.yaml's backtests.store, else its backtest.store (where keel
                             backtest saves), and KEEL_STORE set it too (keel config show backtests)
  --json                     list, compare, delete, prune: JSON; show: the run's whole result JSON
                             (as --json printed it)
  --limit <n>                list: the newest n runs
  --report <dir>             show: write the run's report.html, result.json and CSVs there
  --keep <n>                 prune: keep the newest n runs
  --older-than <duration>    prune: delete runs saved longer ago than this (30d, 12h, 2w)
  --dry-run                  delete, prune: say what would go, delete nothing
  --vacuum                   delete, prune: on a SQLite store made before incremental vacuum,
                             give the freed room back by rewriting the whole file (as long as
                             copying it; bots writing to the store wait meanwhile)
  -h, --help                 this help

Ids are never reused: a deleted run's id is not given to a later one. delete and prune also delete
the bars no run kept uses any more, give the room back to the file system (a SQLite store made by
this version does so at once) and say how big the store is after.
`;

export async function runBacktestsCli(argv: string[], io: Io): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    strict: true,
    allowPositionals: true,
    options: {
      store: { type: 'string' },
      json: { type: 'boolean' },
      limit: { type: 'string' },
      report: { type: 'string' },
      keep: { type: 'string' },
      'older-than': { type: 'string' },
      'dry-run': { type: 'boolean' },
      vacuum: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h' || values.help) {
    io.stdout.write(BACKTESTS_HELP);
    return 0;
  }
  const fail = (msg: string): number => {
    io.stderr.write(`keel backtests ${sub}: ${msg}\nRun '${io.prog ?? 'keel'} backtests --help' for usage.\n`);
    return 2;
  };
  if (!['list', 'show', 'compare', 'delete', 'prune'].includes(sub)) return fail(`unknown command "${sub}"`);
  let ids: number[];
  try {
    ids = positionals.map(backtestId);
  } catch (e) {
    return fail((e as Error).message);
  }
  if (sub === 'list' && ids.length > 0) return fail(`unexpected argument "${positionals[0]}"`);
  if (sub === 'show' && ids.length !== 1) return fail('give one backtest id (keel backtests list shows them)');
  if (sub === 'compare' && ids.length < 2) return fail('give two or more backtest ids');
  if (sub === 'prune' && ids.length > 0) return fail(`unexpected argument "${positionals[0]}" (delete takes ids)`);
  if (sub === 'delete' && ids.length === 0)
    return fail('give one or more backtest ids (keel backtests list shows them)');
  if (values.report !== undefined && sub !== 'show') return fail('--report is for show');
  const reportWhy = values.report !== undefined ? reportDirProblem(values.report) : undefined;
  if (reportWhy !== undefined) return fail(reportWhy);
  const removes = sub === 'delete' || sub === 'prune';
  for (const flag of ['dry-run', 'vacuum'] as const)
    if (values[flag] !== undefined && !removes) return fail(`--${flag} is for delete and prune`);
  for (const flag of ['keep', 'older-than'] as const)
    if (values[flag] !== undefined && sub !== 'prune') return fail(`--${flag} is for prune`);
  const keep = values.keep === undefined ? undefined : Number(values.keep);
  if (keep !== undefined && !(Number.isInteger(keep) && keep >= 0)) return fail('--keep must be an integer >= 0');
  const olderThanMs = values['older-than'] === undefined ? undefined : parseDuration(values['older-than']);
  if (olderThanMs === null) return fail(`--older-than "${values['older-than']}" is not a duration (30d, 12h, 2w)`);
  if (sub === 'prune' && keep === undefined && olderThanMs === undefined)
    return fail('give --keep <n> and/or --older-than <duration> (prune deletes nothing else)');
  const limit = values.limit === undefined ? undefined : Number(values.limit);
  if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1)) return fail('--limit must be an integer >= 1');

  const url = values.store ?? DEFAULT_STORE_URL;
  const missing = missingSqliteFile(url);
  if (missing !== undefined) {
    io.stderr.write(
      `keel backtests ${sub}: no store at ${missing} (keel backtest saves its runs there; --store names another; keel config show backtests says where this one came from)\n`,
    );
    return 1;
  }
  const store = await openStore({ url });
  const out = (s: string) => io.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
  try {
    switch (sub) {
      case 'list': {
        const runs = await listBacktests(store, limit !== undefined ? { limit } : {});
        if (values.json) out(JSON.stringify(runs, null, 2));
        else out(runs.length === 0 ? `no backtests in ${redactStoreUrl(url)}` : formatBacktestList(runs));
        return 0;
      }
      case 'show': {
        const id = ids[0] as number;
        if (values.report !== undefined) {
          const { result, bars } = await loadBacktest(store, id);
          const paths = writeReport(path.resolve(values.report), result, bars);
          io.stderr.write(`report written: ${paths.html}\n`);
        }
        if (values.json) io.stdout.write(await backtestResultJson(store, id));
        else out(formatBacktestShow(await getBacktest(store, id)));
        return 0;
      }
      case 'compare': {
        const runs = [];
        for (const id of ids) runs.push(await getBacktest(store, id));
        if (values.json) out(JSON.stringify(compareBacktests(runs), null, 2));
        else out(formatComparison(runs));
        return 0;
      }
      case 'delete':
      case 'prune': {
        const opts = { dryRun: values['dry-run'] === true, vacuum: values.vacuum === true };
        const r =
          sub === 'delete'
            ? await deleteBacktests(store, ids, opts)
            : await pruneBacktests(store, {
                ...opts,
                ...(keep !== undefined ? { keep } : {}),
                ...(olderThanMs !== undefined ? { olderThanMs } : {}),
              });
        out(values.json ? JSON.stringify(r, null, 2) : formatRemoval(r));
        return 0;
      }
      default:
        return fail(`unknown command "${sub}"`);
    }
  } catch (e) {
    if (e instanceof BacktestNotFoundError) {
      io.stderr.write(`keel backtests ${sub}: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    await store.close();
  }
}
