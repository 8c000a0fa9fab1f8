import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseBarsCsv, readBarsFile } from '@keel/candles';
import { computeFeatures, FEATURE_DEFS, FeatureWorkspace } from './features/index.ts';
import { allocSeries, type FullSeries, seriesKey, toFullSeries } from './schema.ts';
import { DataStore } from './store.ts';

const DATA_DIR = process.env.KEEL_SHARED_DIR
  ? path.join(process.env.KEEL_SHARED_DIR, 'data')
  : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../shared/data');

/** The real 1m files concatenated (each shifted to follow the previous one minute by minute) up to n rows. */
function realRows(n: number, prefer: string): FullSeries {
  const files = readdirSync(DATA_DIR)
    .filter((f) => /^binance_[A-Z]+USDT_1m_.*\.csv\.gz$/.test(f))
    .sort((a, b) => Number(b.includes(prefer)) - Number(a.includes(prefer)) || a.localeCompare(b));
  const out = allocSeries(n);
  let k = 0;
  let t = Date.UTC(2020, 0, 1);
  while (k < n) {
    for (const f of files) {
      const s = toFullSeries(readBarsFile(path.join(DATA_DIR, f)).series);
      for (let i = 0; i < s.length && k < n; i++, k++) {
        out.time[k] = t;
        t += 60_000;
        out.open[k] = s.open[i] as number;
        out.high[k] = s.high[i] as number;
        out.low[k] = s.low[i] as number;
        out.close[k] = s.close[i] as number;
        out.volume[k] = s.volume[i] as number;
        out.quoteVolume[k] = Number.NaN;
        out.trades[k] = Number.NaN;
        out.takerBuyVolume[k] = Number.NaN;
      }
      if (k >= n) break;
    }
  }
  return out;
}

function toCsv(s: FullSeries): string {
  const parts: string[] = ['open_time,open,high,low,close,volume'];
  for (let i = 0; i < s.length; i++)
    parts.push(`${s.time[i]},${s.open[i]},${s.high[i]},${s.low[i]},${s.close[i]},${s.volume[i]}`);
  return `${parts.join('\n')}\n`;
}

const fmt = (x: number) => Math.round(x).toLocaleString('en-US');

/** Wall and CPU milliseconds of one run (CPU = user + system of this process). */
function timed<T>(f: () => T): { value: T; wall: number; cpu: number } {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = f();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { value, wall, cpu: (c.user + c.system) / 1000 };
}

/**
 * Data pipeline throughput on real bars: import (parse + QC + Parquet store), read into typed
 * arrays, and the full feature set. Printed, never asserted (the machine decides the numbers).
 */
export async function runDataBench(opts: { rows: number; log: (line: string) => void }): Promise<void> {
  const { rows, log } = opts;
  if (!existsSync(DATA_DIR)) {
    log(`no shared data at ${DATA_DIR}: nothing measured`);
    return;
  }
  const series = realRows(rows, 'BTCUSDT');
  const ref = realRows(rows, 'ETHUSDT');
  const csv = toCsv(series);
  const dir = mkdtempSync(path.join(tmpdir(), 'keel-data-bench-'));
  try {
    const key = seriesKey('bench', 'spot', 'BTCUSDT', '1m');
    // Import: CSV text -> columns -> QC -> monthly Parquet partitions (+ catalog), one fresh store.
    let best = {
      parse: Number.POSITIVE_INFINITY,
      store: Number.POSITIVE_INFINITY,
      total: Number.POSITIVE_INFINITY,
      cpu: Number.POSITIVE_INFINITY,
    };
    for (let run = 0; run < 3; run++) {
      const store = new DataStore(path.join(dir, `run${run}`));
      const p = timed(() => parseBarsCsv(csv, 'bench.csv'));
      const st = timed(() => store.importBars(key, p.value.series, { sourceKind: 'file', saveReport: false }));
      if (st.value.report.rowsKept !== rows)
        throw new Error(`bench import kept ${st.value.report.rowsKept} of ${rows} rows`);
      if (p.wall + st.wall < best.total)
        best = { parse: p.wall, store: st.wall, total: p.wall + st.wall, cpu: p.cpu + st.cpu };
      store.close();
    }
    log(
      `import ${fmt(rows)} real 1m rows (CSV parse + QC + Parquet store): ${fmt(rows / (best.total / 1000))} rows/s wall, ${fmt(rows / (best.cpu / 1000))} rows/s CPU (parse ${best.parse.toFixed(0)} ms, QC+store ${best.store.toFixed(0)} ms wall; target >= 1,000,000 rows/s)`,
    );

    const store = new DataStore(path.join(dir, 'run0'));
    let read = Number.POSITIVE_INFINITY;
    let readCpu = Number.POSITIVE_INFINITY;
    for (let run = 0; run < 5; run++) {
      const r = timed(() => store.readBars(key));
      if (r.value.length !== rows) throw new Error(`bench read ${r.value.length} of ${rows} bars`);
      read = Math.min(read, r.wall);
      readCpu = Math.min(readCpu, r.cpu);
    }
    log(
      `read ${fmt(rows)} bars into typed arrays: ${read.toFixed(1)} ms wall, ${readCpu.toFixed(1)} ms CPU (target < 100 ms)`,
    );
    store.close();

    let cold = Number.POSITIVE_INFINITY;
    for (let run = 0; run < 2; run++)
      cold = Math.min(cold, timed(() => computeFeatures(series, { timeframe: '1m', reference: ref })).wall);
    const ws = new FeatureWorkspace(rows);
    let warm = Number.POSITIVE_INFINITY;
    let warmCpu = Number.POSITIVE_INFINITY;
    for (let run = 0; run < 3; run++) {
      const r = timed(() => computeFeatures(series, { timeframe: '1m', reference: ref, workspace: ws }));
      warm = Math.min(warm, r.wall);
      warmCpu = Math.min(warmCpu, r.cpu);
    }
    log(
      `${FEATURE_DEFS.length} features over ${fmt(rows)} rows: ${fmt(rows / (warm / 1000))} rows/s wall (${fmt(rows / (warmCpu / 1000))} rows/s CPU) with a reused workspace, ${fmt(rows / (cold / 1000))} rows/s wall allocating fresh columns (target >= 1,000,000 rows/s)`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
