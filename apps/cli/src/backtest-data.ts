import { existsSync } from 'node:fs';
import type { BarSeries, Timeframe } from '@keel/core';
import { isoUtc, isTimeframe } from '@keel/core';
// The CSV reader alone: the package's index also loads ccxt.
import { readBarsFile } from '@keel/data/csv';
import { UsageError } from './errors.ts';
import { inferTimeframe, symbolFromFileName } from './infer.ts';
import { collectGarbage } from './memory.ts';

/** One market's bars, ready for the engine, and what a person should be told about them. */
export interface LoadedFeed {
  readonly symbol: string;
  readonly timeframe: Timeframe;
  readonly series: BarSeries;
  /** Where the bars came from: the file, or the store's series. */
  readonly source: string;
  /** Lines for the summary (how the data was read, resampled, clipped). */
  readonly notes: string[];
}

/** What the backtest command was asked to load. */
export interface DataRequest {
  readonly files: readonly string[];
  readonly symbols: readonly string[] | undefined;
  readonly timeframe: string | undefined;
}

const SYMBOL = /^[A-Z0-9]+\/[A-Z0-9]+(:[A-Z0-9]+)?$/i;

/** `--symbol BTC/USDT,ETH/USDT` as a list (upper case, each checked); undefined when not given. */
export function symbolList(flag: string | undefined): string[] | undefined {
  if (flag === undefined) return undefined;
  const list = flag
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (list.length === 0) throw new UsageError('--symbol is empty: give a market like BTC/USDT', 'backtest');
  for (const s of list)
    if (!SYMBOL.test(s)) throw new UsageError(`--symbol must look like BTC/USDT, got "${s}"`, 'backtest');
  const upper = list.map((s) => s.toUpperCase());
  const dup = upper.find((s, i) => upper.indexOf(s) !== i);
  if (dup !== undefined) throw new UsageError(`--symbol lists ${dup} twice`, 'backtest');
  return upper;
}

function requestedTimeframe(flag: string | undefined): Timeframe | undefined {
  if (flag === undefined) return undefined;
  if (!isTimeframe(flag))
    throw new UsageError(`--timeframe "${flag}" is not a timeframe (1m, 5m, 1h, 1d, ...)`, 'backtest');
  return flag;
}

/** The market of each --data file: from --symbol (one per file, in order) or from the file's name. */
function fileSymbols(files: readonly string[], symbols: readonly string[] | undefined): string[] {
  if (symbols !== undefined) {
    if (symbols.length !== files.length)
      throw new UsageError(
        `--symbol lists ${symbols.length} market${symbols.length === 1 ? '' : 's'} for ${files.length} --data files: give one market per file, in the same order (or none, to read them from the file names)`,
        'backtest',
      );
    return [...symbols];
  }
  const out = files.map((f) => {
    const s = symbolFromFileName(f);
    if (s === undefined)
      throw new UsageError(
        `cannot tell the market from the file name ${f}: pass --symbol, e.g. --symbol BTC/USDT`,
        'backtest',
      );
    return s;
  });
  const dup = out.find((s, i) => out.indexOf(s) !== i);
  if (dup !== undefined)
    throw new Error(
      `two --data files are both ${dup} (by their names): a run takes one file per market; give --symbol to say which is which`,
    );
  return out;
}

/** Reads one candle file: every row checked, the time column read as open times. */
function readFile(file: string, symbol: string, asked: Timeframe | undefined): LoadedFeed {
  // Data errors are failures (exit 1) that name the file: --help would not help with them.
  if (!existsSync(file)) throw new Error(`--data: no such file: ${file}`);
  const parsed = readBarsFile(file);
  if (parsed.rowsIn >= 200_000) collectGarbage();
  const series = parsed.series;
  const notes = parsed.notes.map((n) => `note: ${n}`);
  if (parsed.quarantined.length > 0) {
    const q = parsed.quarantined;
    notes.push(
      `warning: ${q.length} of ${parsed.rowsIn} rows in ${file} were quarantined and skipped (first: line ${q[0]!.line}, ${q[0]!.rule}: ${q[0]!.message})`,
    );
  }
  if (series.length === 0) throw new Error(`${file} has no usable rows`);
  for (let i = 1; i < series.length; i++) {
    if ((series.time[i] as number) <= (series.time[i - 1] as number)) {
      throw new Error(
        `${file}: timestamps are not strictly increasing at data row ${i + 1} (${isoUtc(series.time[i] as number)}); sort and de-duplicate the file (keel data import does this)`,
      );
    }
  }
  const timeframe = asked ?? inferTimeframe(file, series);
  if (!timeframe)
    throw new UsageError('cannot tell the timeframe from the file: pass --timeframe, e.g. --timeframe 1m', 'backtest');
  return { symbol, timeframe, series, source: file, notes };
}

/**
 * The feeds of a backtest, one per market, in the order given (the first is the primary: equity
 * is recorded on its bars). Several markets must share a timeframe.
 */
export function loadFeeds(req: DataRequest): LoadedFeed[] {
  const asked = requestedTimeframe(req.timeframe);
  if (req.files.length === 0)
    throw new UsageError('--data is required (a .csv or .csv.gz file of candles)', 'backtest');
  const symbols = fileSymbols(req.files, req.symbols);
  const feeds = req.files.map((f, i) => readFile(f, symbols[i] as string, asked));
  const tfs = [...new Set(feeds.map((f) => f.timeframe))];
  if (tfs.length > 1)
    throw new Error(
      `the markets have different timeframes (${feeds.map((f) => `${f.symbol} ${f.timeframe}`).join(', ')}): give --timeframe to run them all on one`,
    );
  return feeds;
}

/**
 * Markets that cover different spans are cut to the span they all cover, with a note: equity is
 * recorded on the first market's bars, so a market trading on after it ends would be missed, and
 * one starting later would enter an account the others had already moved.
 */
export function commonSpan(feeds: readonly LoadedFeed[]): LoadedFeed[] {
  if (feeds.length < 2) return [...feeds];
  const first = Math.max(...feeds.map((f) => f.series.time[0] as number));
  const last = Math.min(...feeds.map((f) => f.series.time[f.series.length - 1] as number));
  if (!(first <= last))
    throw new Error(
      `the markets share no time span: ${feeds.map((f) => `${f.symbol} ${isoUtc(f.series.time[0] as number)} .. ${isoUtc(f.series.time[f.series.length - 1] as number)}`).join(', ')}`,
    );
  return feeds.map((f) => {
    const t = f.series.time;
    let a = 0;
    let b = f.series.length;
    while (a < b && (t[a] as number) < first) a++;
    while (b > a && (t[b - 1] as number) > last) b--;
    if (a === 0 && b === f.series.length) return f;
    return {
      ...f,
      series: sliceSeries(f.series, a, b),
      notes: [
        ...f.notes,
        `note: ${f.symbol}: cut to the span every market covers, ${isoUtc(first)} .. ${isoUtc(last)} (${a + (f.series.length - b)} bars left out)`,
      ],
    };
  });
}

function sliceSeries(s: BarSeries, a: number, b: number): BarSeries {
  const out: Record<string, unknown> = { length: b - a };
  for (const [k, v] of Object.entries(s)) out[k] = ArrayBuffer.isView(v) ? (v as Float64Array).subarray(a, b) : v;
  return out as unknown as BarSeries;
}
