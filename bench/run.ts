// npm run bench: throughput and memory figures, printed (never asserted in tests).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DATA_DIR, HAS_SHARED_DATA } from '../test-support/shared.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const N = Number(process.env.KEEL_BENCH_BARS ?? 1_000_000);
const only = process.argv[2];
const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

function header(title: string): void {
  console.log(`\n== ${title} ==`);
}

async function engineBench(): Promise<void> {
  header(`Backtest engine: ${fmt(N)} real 1m bars (shared/data 1m files concatenated), one process per case`);
  console.log(
    'strategy              engine bars/s    bare loop bars/s   bare/engine   peak RSS  (data loaded)   trades  bare trades',
  );
  const noop: number[] = [];
  for (const s of ['sma-cross', 'rsi-reversion', 'bollinger-reversion']) {
    const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(here, 'engine-case.ts'), s, String(N)], {
      encoding: 'utf8',
      maxBuffer: 1 << 24,
    });
    const r = JSON.parse(out) as {
      engineBarsPerSec: number;
      bareBarsPerSec: number;
      maxRssMb: number;
      rssAfterLoadMb: number;
      noopBarsPerSec: number;
      engineTrades: number;
      bareTrades: number;
    };
    noop.push(r.noopBarsPerSec);
    console.log(
      `${s.padEnd(20)} ${fmt(r.engineBarsPerSec).padStart(14)} ${fmt(r.bareBarsPerSec).padStart(18)} ${(r.bareBarsPerSec / r.engineBarsPerSec).toFixed(2).padStart(12)}x ${r.maxRssMb.toFixed(0).padStart(7)} MB  (${r.rssAfterLoadMb.toFixed(0).padStart(4)} MB) ${String(r.engineTrades).padStart(8)} ${String(r.bareTrades).padStart(12)}${r.bareTrades === r.engineTrades ? '' : '  (differs: not the same signals)'}`,
    );
  }
  console.log(
    `same engine, venue and metrics with a do-nothing strategy (the bar path alone): ${fmt(Math.max(...noop))} bars/s`,
  );
  console.log(
    'engine and bare loop: best of 3 runs after one warm-up run; the engine includes the simulated venue, trade tracking and metrics; the bare loop computes the same signals with the same exact window sums, so it makes the same trades',
  );
  console.log(
    'peak RSS is the whole process (runtime, 1M bars parsed from the CSV files one file at a time, one full GC after loading, then four backtests, each result dropped after it is timed); "data loaded" is the RSS before that GC',
  );
  console.log('targets: >= 5,000,000 bars/s through the full engine, within 10x of the bare loop, < 300 MB');
}

/** A paper bot over many orders (bench/soak.ts, its own process): per-bar time and memory early and late. */
function soakBench(): void {
  const bars = Number(process.env.KEEL_SOAK_BARS ?? 20_000);
  header(`Soak: a paper bot placing two orders a bar for ${fmt(bars)} bars (its store on disk), one process`);
  const out = execFileSync(process.execPath, ['--import', 'tsx', path.join(here, 'soak.ts')], {
    encoding: 'utf8',
    env: { ...process.env, KEEL_SOAK_BARS: String(bars) },
  });
  type Mark = { orders: number; usPerBar: number; rssMb: number; heapMb: number };
  const r = JSON.parse(out) as { early: Mark; late: Mark; retained: { open: number; finished: number; fills: number } };
  console.log('after orders   per bar (1,000 bars)   RSS       heap used (after a full GC)');
  for (const m of [r.early, r.late])
    console.log(
      `${fmt(m.orders).padStart(12)} ${`${(m.usPerBar / 1000).toFixed(2)} ms`.padStart(20)} ${m.rssMb.toFixed(0).padStart(6)} MB ${m.heapMb.toFixed(1).padStart(9)} MB`,
    );
  console.log(
    `held at the end: ${r.retained.open} open orders, ${fmt(r.retained.finished)} finished orders (keepFinished), ${fmt(r.retained.fills)} fills; a bar's work and the memory do not grow with the orders placed (docs/live.md, "Memory over months")`,
  );
}

async function main(): Promise<void> {
  if (!HAS_SHARED_DATA) {
    console.log(`No real data at ${DATA_DIR}: the benchmarks run on the shared Binance files. Nothing measured.`);
    return;
  }
  if (!only || only === 'engine') await engineBench();
  if (!only || only === 'data') {
    try {
      const { runDataBench } = await import('@keel/data/bench');
      header('Market data pipeline');
      await runDataBench({ rows: N, log: (l: string) => console.log(l) });
    } catch (e) {
      console.log(`data pipeline bench unavailable: ${(e as Error).message}`);
    }
  }
  if (!only || only === 'cli') {
    const { runCliBench } = await import('./cli.ts');
    header('The keel command, whole process as a user runs it (real 1m bars written to .csv/.csv.gz)');
    await runCliBench({ log: (l: string) => console.log(l), bars: N });
  }
  if (!only || only === 'soak') soakBench();
  if (!only || only === 'live') {
    try {
      const { runLatencyBench } = await import('@keel/runtime/bench');
      header('Live path latency (WebSocket message in -> order request out)');
      await runLatencyBench({ log: (l: string) => console.log(l) });
    } catch (e) {
      console.log(`live latency bench unavailable: ${(e as Error).message}`);
    }
  }
}

await main();
