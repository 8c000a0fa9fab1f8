import { existsSync } from 'node:fs';
import path from 'node:path';
import { isTimeframe, parseSymbolList } from '@keel/core';
// The feed loader alone: the package's index also loads ccxt.
import {
  type FeedOrigin,
  fileNameFacts,
  fileSymbolConflict,
  type LoadedFeed,
  loadFeed,
  parseColumnMapping,
  parseTimeIs,
  runMarket,
} from '@keel/data/feeds';
import { UsageError } from './errors.ts';
import { collectGarbage } from './memory.ts';

/** The flags of `keel backtest` that say which bars to load. */
export interface DataFlags {
  readonly data?: readonly string[];
  readonly symbol?: string;
  readonly timeframe?: string;
  readonly exchange?: string;
  readonly market?: string;
  readonly 'data-dir'?: string;
  readonly map?: string;
  readonly 'time-is'?: string;
  readonly 'allow-bad-data'?: boolean;
}

export const DATA_FLAGS = {
  data: { type: 'string', multiple: true },
  symbol: { type: 'string' },
  timeframe: { type: 'string' },
  exchange: { type: 'string' },
  'data-dir': { type: 'string' },
  map: { type: 'string' },
  'time-is': { type: 'string' },
  'allow-bad-data': { type: 'boolean' },
} as const;

export const DATA_FLAGS_HELP = `Data (docs/data.md):
  --data <file>          candles: .csv or .csv.gz (Binance 12-column klines or OHLCV with a header;
                         timestamps as epoch s/ms/us or ISO text, UTC when no zone is given);
                         repeat it for several markets, one file each
  --exchange <id>        without --data: read the bars from the data store (keel data download or
                         import them first), e.g. --exchange binance --symbol BTC/USDT --timeframe 1h
                         (--market futures reads the store's USD-M bars)
  --data-dir <dir>       the data store (default: $KEEL_DATA_DIR or ./.keel/data)
  --symbol <BASE/QUOTE>  market (default: from the file name, e.g. BTCUSDT -> BTC/USDT); several
                         as BTC/USDT,ETH/USDT (one per --data file, in order): one strategy instance
                         per market in one portfolio (shared cash), reported per market and in total
  --timeframe <tf>       bar timeframe (default: the data's own); coarser than the data: resampled
                         (a note says so); finer: an error
  --map <spec>           column mapping for generic files: time=ts,open=o,high=h,low=l,close=c,volume=v
  --time-is <open|close> what the time column holds (default: read from the header and the values)
  --allow-bad-data       drop rows that fail the data-quality gate (counted in the summary) instead
                         of refusing the data
`;

/** `--symbol BTC/USDT,ETH/USDT` as a list (upper case, each checked); undefined when not given. */
export function symbolList(flag: string | undefined): string[] | undefined {
  if (flag === undefined) return undefined;
  return usage(() => {
    try {
      return parseSymbolList(flag);
    } catch (e) {
      throw new Error(`--symbol: ${(e as Error).message}`);
    }
  });
}

function usage<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new UsageError((e as Error).message, 'backtest');
  }
}

/** The market of each --data file: from --symbol (one per file, in order) or from the file's name. */
function fileSymbols(files: readonly string[], symbols: readonly string[] | undefined): string[] {
  if (symbols !== undefined) {
    if (symbols.length !== files.length)
      throw new UsageError(
        `--symbol lists ${symbols.length} market${symbols.length === 1 ? '' : 's'} for ${files.length} --data files: give one market per file, in the same order (or none, to read them from the file names)`,
        'backtest',
      );
    // A market the file's name contradicts would report, keep and compare one market's bars as another's.
    for (const [i, f] of files.entries()) {
      const conflict = fileSymbolConflict(f, symbols[i] as string);
      if (conflict !== undefined) throw new Error(conflict);
    }
    return [...symbols];
  }
  const out = files.map((f) => {
    const s = fileNameFacts(f).symbol;
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

/**
 * The market kind the run trades (`--market`, or what --symbol and the files' names say; @keel/candles'
 * runMarket), and the line to show when it was read from the names. Refuses a contradiction.
 */
export function marketFromFlags(v: DataFlags): { market: 'spot' | 'futures'; note?: string } {
  const r = runMarket(v.market, symbolList(v.symbol) ?? [], v.data ?? []);
  if (!r.ok) throw new UsageError(r.message, 'backtest');
  return { market: r.market, ...(r.note !== undefined ? { note: r.note } : {}) };
}

/**
 * The feeds the flags ask for, one per market in the order given (the first is the primary: equity
 * is recorded on its bars): from files, or from the store. Several markets must share a timeframe.
 */
export async function loadFeedsFromFlags(v: DataFlags, range: { from?: number; to?: number }): Promise<LoadedFeed[]> {
  const timeframe =
    v.timeframe === undefined
      ? undefined
      : isTimeframe(v.timeframe)
        ? v.timeframe
        : usage(() => {
            throw new Error(`--timeframe "${v.timeframe}" is not a timeframe (1m, 5m, 1h, 1d, ...)`);
          });
  const symbols = symbolList(v.symbol);
  const files = v.data ?? [];
  const badData = v['allow-bad-data'] ? 'drop' : 'refuse';
  const common = { ...(timeframe ? { timeframe } : {}), ...range, badData } as const;
  if (files.length > 0) {
    for (const flag of ['exchange', 'data-dir'] as const)
      if (v[flag] !== undefined)
        throw new UsageError(
          `--${flag} is for reading the data store; --data reads files: give one or the other`,
          'backtest',
        );
    const mapping = v.map !== undefined ? usage(() => parseColumnMapping(v.map as string)) : undefined;
    const timeIs = v['time-is'] !== undefined ? usage(() => parseTimeIs(v['time-is'] as string)) : undefined;
    const markets = fileSymbols(files, symbols);
    const feeds: LoadedFeed[] = [];
    for (const [i, file] of files.entries()) {
      // Data errors are failures (exit 1) that name the file: --help would not help with them.
      if (!existsSync(file)) throw new Error(`--data: no such file: ${file}`);
      const nameTf = fileNameFacts(file).timeframe;
      const origin: FeedOrigin = {
        kind: 'file',
        file,
        ...(mapping ? { mapping } : {}),
        ...(timeIs ? { timeIs } : {}),
        ...(nameTf ? { nameTimeframe: nameTf } : {}),
      };
      const feed = await loadFeed({ symbol: markets[i] as string, origin, ...common });
      if (feed.quality.rowsIn >= 200_000) collectGarbage();
      feeds.push(feed);
    }
    return sameTimeframe(feeds);
  }
  if (v.map !== undefined || v['time-is'] !== undefined)
    throw new UsageError('--map and --time-is describe --data files; the store holds bars already read', 'backtest');
  if (symbols === undefined)
    throw new UsageError(
      'give --data <file> (candles), or --symbol and --timeframe to read the data store (e.g. --exchange binance --symbol BTC/USDT --timeframe 1h)',
      'backtest',
    );
  if (timeframe === undefined)
    throw new UsageError('reading the data store needs --timeframe (e.g. --timeframe 1h)', 'backtest');
  // One --market flag for the store and the simulation (core's FUTURES_FLAGS checks its value):
  // futures are Binance USD-M, the store's usdm market.
  const market = v.market === 'futures' ? 'usdm' : 'spot';
  const { DataStore, defaultDataDir } = await import('@keel/data/store');
  const store = new DataStore(path.resolve(v['data-dir'] ?? defaultDataDir()));
  try {
    const feeds: LoadedFeed[] = [];
    for (const symbol of symbols)
      feeds.push(
        await loadFeed({
          symbol,
          origin: { kind: 'store', store, exchange: v.exchange ?? 'binance', marketType: market },
          ...common,
        }),
      );
    return feeds;
  } finally {
    // The bars are in memory: the store is not needed for the run.
    store.close();
  }
}

function sameTimeframe(feeds: LoadedFeed[]): LoadedFeed[] {
  const tfs = [...new Set(feeds.map((f) => f.timeframe))];
  if (tfs.length > 1)
    throw new Error(
      `the markets have different timeframes (${feeds.map((f) => `${f.symbol} ${f.timeframe}`).join(', ')}): give --timeframe to run them all on one`,
    );
  return feeds;
}
