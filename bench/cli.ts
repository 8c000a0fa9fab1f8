// The keel command as a user runs it: whole-process wall time and peak RSS of the real bin, on
// candle files written from the shared real data. Printed by `npm run bench cli`, never asserted.
import { type SpawnSyncOptions, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { BarSeries } from '@keel/core';
import { build } from 'esbuild';
import { realMinuteBars } from './bars.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
// KEEL_BENCH_KEEL=<another checkout>/apps/cli/bin/keel.js measures that checkout's command instead.
const BIN = path.resolve(process.env.KEEL_BENCH_KEEL ?? path.join(here, '../apps/cli/bin/keel.js'));
const RSS_PROBE = pathToFileURL(path.join(here, 'max-rss.mjs')).href;

interface Sample {
  readonly ms: number;
  /** Peak RSS of the measured process in MB, and its CPU time in ms (undefined when not probed). */
  readonly rssMb: number | undefined;
  readonly cpuMs: number | undefined;
}

interface Figures {
  readonly best: number;
  readonly median: number;
  readonly maxRssMb: number | undefined;
  /** The least CPU time of the runs: on a shared machine it moves less than the wall time. */
  readonly cpuMs: number | undefined;
}

/** Writes N real 1m bars as a headered OHLCV CSV (epoch ms), gzipped for a .gz name. */
function writeCandles(s: BarSeries, file: string): void {
  const head = 'time,open,high,low,close,volume\n';
  const rows = (a: number, b: number) => {
    let t = '';
    for (let i = a; i < b; i++)
      t += `${s.time[i]},${s.open[i]},${s.high[i]},${s.low[i]},${s.close[i]},${s.volume[i]}\n`;
    return t;
  };
  if (file.endsWith('.gz')) {
    writeFileSync(file, gzipSync(head + rows(0, s.length)));
    return;
  }
  const fd = openSync(file, 'w');
  try {
    writeSync(fd, head);
    for (let i = 0; i < s.length; i += 10_000) writeSync(fd, rows(i, Math.min(s.length, i + 10_000)));
  } finally {
    closeSync(fd);
  }
}

/** The environment of a user's shell: no loader flags inherited from the bench's own tsx process. */
function userEnv(probe: string | undefined): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  if (probe) {
    env.NODE_OPTIONS = `--import=${RSS_PROBE}`;
    // Not a KEEL_* name: keel reads its configuration's rules when one is set, which a user's shell does not make it do.
    env.BENCH_RSS_FILE = probe;
  }
  return env;
}

/** One whole process, stdout to `out` (a file descriptor, /dev/null by default). */
function runOnce(args: readonly string[], tmp: string, opts: { rss: boolean; out?: number }): Sample {
  const probe = opts.rss ? path.join(tmp, 'rss.txt') : undefined;
  if (probe) rmSync(probe, { force: true });
  const devNull = opts.out === undefined ? openSync('/dev/null', 'w') : undefined;
  const spawnOpts: SpawnSyncOptions = {
    env: userEnv(probe),
    stdio: ['ignore', opts.out ?? devNull, 'pipe'],
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  };
  const t = performance.now();
  const r = spawnSync(process.execPath, args, spawnOpts);
  const ms = performance.now() - t;
  if (devNull !== undefined) closeSync(devNull);
  if (r.status !== 0) throw new Error(`${args.join(' ')} exited ${r.status}: ${String(r.stderr).slice(0, 2000)}`);
  if (!probe) return { ms, rssMb: undefined, cpuMs: undefined };
  const [rssKb, cpuMs] = readFileSync(probe, 'utf8').split(' ').map(Number) as [number, number];
  return { ms, rssMb: rssKb / 1024, cpuMs };
}

/**
 * Commands measured in turns (a, b, a, b, ...), `reps` runs each after one warm-up run each (file
 * cache, compile cache): on a shared machine the load moves between runs, and taking turns spreads
 * it over the commands compared alike.
 */
function measureAlternately(
  commands: readonly (readonly string[])[],
  tmp: string,
  reps: number,
  rss: boolean,
): Figures[] {
  for (const args of commands) runOnce(args, tmp, { rss });
  const samples: Sample[][] = commands.map(() => []);
  for (let i = 0; i < reps; i++)
    for (const [k, args] of commands.entries()) samples[k]?.push(runOnce(args, tmp, { rss }));
  return samples.map((runs) => {
    const ms = runs.map((s) => s.ms).sort((a, b) => a - b);
    const rssAll = runs.map((s) => s.rssMb).filter((x): x is number => x !== undefined);
    const cpuAll = runs.map((s) => s.cpuMs).filter((x): x is number => x !== undefined);
    return {
      best: ms[0] as number,
      median: ms[Math.floor(ms.length / 2)] as number,
      maxRssMb: rssAll.length > 0 ? Math.max(...rssAll) : undefined,
      cpuMs: cpuAll.length > 0 ? Math.min(...cpuAll) : undefined,
    };
  });
}

const f0 = (x: number) => x.toFixed(0);
const mb = (x: number | undefined) => (x === undefined ? '' : `${f0(x)} MB`);
const cpu = (x: number | undefined) => (x === undefined ? '' : `cpu ${f0(x)} ms`);
const line = (label: string, f: Figures, extra = '') =>
  `${label.padEnd(46)} best ${f0(f.best).padStart(6)} ms   median ${f0(f.median).padStart(6)} ms   ${mb(f.maxRssMb).padStart(7)}  ${cpu(f.cpuMs).padStart(12)}${extra}`;

export async function runCliBench(opts: { log: (l: string) => void; bars?: number; reps?: number }): Promise<void> {
  const log = opts.log;
  const big = opts.bars ?? 1_000_000;
  const reps = opts.reps ?? 5;
  const tmp = mkdtempSync(path.join(tmpdir(), 'keel-bench-cli-'));
  try {
    const backtest = (file: string) => [
      BIN,
      'backtest',
      '--strategy',
      'sma-cross',
      '--param',
      'fast=10',
      '--param',
      'slow=30',
      '--data',
      file,
      '--symbol',
      'BTC/USDT',
      '--timeframe',
      '1m',
      '--json',
      // The run is kept (the default, up to 200,000 bars) in a store of the bench's own, so the
      // figures do not depend on the size of the checkout's .keel/keel.db.
      '--store',
      `sqlite:${path.join(tmp, 'keel.db')}`,
    ];

    const [node, help] = measureAlternately(
      [
        ['-e', '0'],
        [BIN, '--help'],
      ],
      tmp,
      reps * 2,
      true,
    ) as [Figures, Figures];
    log(line('node -e 0', node));
    log(line('keel --help', help, `   ${(help.best / node.best).toFixed(1)}x node -e 0 (target <= 4x)`));

    const small = path.join(tmp, 'btcusdt-1m-50k.csv.gz');
    writeCandles(realMinuteBars(50_000), small);
    const [s, u] = measureAlternately([backtest(small), [...backtest(small), '--no-save']], tmp, reps, true) as [
      Figures,
      Figures,
    ];
    log(line('keel backtest 50,000 bars .csv.gz --json', s, '   (target < 400 ms; the run kept in the store)'));
    log(line('  the same with --no-save', u, `   (keeping the run: +${f0(s.median - u.median)} ms median)`));

    const csv = path.join(tmp, `btcusdt-1m-${big}.csv`);
    writeCandles(realMinuteBars(big), csv);
    // The floor as plain JavaScript: no TypeScript loader in the timed process.
    const bareJs = path.join(tmp, 'bare-cli.mjs');
    await build({
      entryPoints: [path.join(here, 'bare-cli.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      outfile: bareJs,
      logLevel: 'error',
    });
    const bigReps = Math.max(3, Math.ceil(reps / 2));
    const [k, b] = measureAlternately([backtest(csv), [bareJs, csv]], tmp, bigReps, true) as [Figures, Figures];
    log(line(`keel backtest ${big.toLocaleString('en-US')} bars .csv --json`, k));
    log(
      line(
        'bare loop process, same CSV reader and trades',
        b,
        `   keel/bare ${(k.best / b.best).toFixed(2)}x (target <= 1.5x, < 300 MB)`,
      ),
    );

    // The same trades, checked outside the timing: keel's JSON against the bare loop's count.
    const outFile = path.join(tmp, 'result.json');
    const fd = openSync(outFile, 'w');
    try {
      runOnce(backtest(csv), tmp, { rss: false, out: fd });
    } finally {
      closeSync(fd);
    }
    const bytes = readFileSync(outFile);
    const keelTrades = (JSON.parse(bytes.toString('utf8')) as { trades: unknown[] }).trades.length;
    const bare = spawnSync(process.execPath, [bareJs, csv], { encoding: 'utf8', env: userEnv(undefined) });
    const bareTrades = (JSON.parse(bare.stdout) as { trades: number }).trades;
    log(
      `same trades: keel ${keelTrades.toLocaleString('en-US')}, bare loop ${bareTrades.toLocaleString('en-US')}${keelTrades === bareTrades ? '' : '  (DIFFERENT: not the same signals)'}; --json output ${(bytes.length / 1048576).toFixed(1)} MB`,
    );
    log(
      `whole processes spawned from the bench with stdout to /dev/null (a user's \`keel ... --json > file\`, without the disk); best and median of ${reps * 2} (startup) / ${reps} (50k) / ${bigReps} (${big.toLocaleString('en-US')} bars) runs after one warm-up, the commands of a line pair (node and --help, kept and --no-save, keel and the bare loop) taking turns; peak RSS is the largest of the timed runs and cpu the least user+system time (getrusage, read by a preloaded probe that every measured process, node -e 0 included, loads)`,
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
