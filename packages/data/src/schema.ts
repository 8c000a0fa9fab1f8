import type { BarSeries, Timeframe } from '@keel/core';
import { isTimeframe } from '@keel/core';

/** Version of the processed-zone schema; bump on any column change (recorded in every file). */
export const PROCESSED_SCHEMA_VERSION = 1;

export const MARKET_TYPES = ['spot', 'usdm', 'coinm'] as const;
export type MarketType = (typeof MARKET_TYPES)[number];

/** One market on one exchange: the unit the store partitions and catalogs by (plus timeframe). */
export interface MarketRef {
  /** Lower-case exchange id, as ccxt names it: 'binance'. */
  readonly exchange: string;
  readonly marketType: MarketType;
  /** Exchange-native symbol without separators: 'BTCUSDT'. */
  readonly symbol: string;
}

export interface SeriesKey extends MarketRef {
  readonly timeframe: Timeframe;
}

/** Where a batch of bars came from; higher rank wins on overlapping timestamps (see docs/data.md). */
export const SOURCE_RANK = {
  /** Local files of unknown provenance. */
  file: 2,
  /** Resampled from a finer stored series (the exchange's own candles outrank it). */
  derived: 1,
  /** Exchange REST API (ccxt). */
  rest: 3,
  /** The exchange's own published archives (Binance public data), checksummed. */
  archive: 4,
} as const;
export type SourceKind = keyof typeof SOURCE_RANK;

/**
 * Canonical processed columns in file order. exchange / market / symbol / timeframe / month are
 * hive partition keys (in the path), the rest are Parquet columns. Extras absent at the source are NaN.
 */
export const PROCESSED_COLUMNS = [
  { name: 'open_time', type: 'int64' },
  { name: 'open', type: 'double' },
  { name: 'high', type: 'double' },
  { name: 'low', type: 'double' },
  { name: 'close', type: 'double' },
  { name: 'volume', type: 'double' },
  { name: 'quote_volume', type: 'double' },
  { name: 'trades', type: 'double' },
  { name: 'taker_buy_volume', type: 'double' },
  { name: 'source_rank', type: 'int64' },
] as const;

export function normaliseSymbol(s: string): string {
  // 'BTC/USDT', 'BTC/USDT:USDT', 'btc-usdt' -> 'BTCUSDT'
  return (s.split(':')[0] as string).replace(/[^A-Za-z0-9]/g, '').toUpperCase();
}

export function parseMarketType(s: string): MarketType {
  const v = s.toLowerCase();
  if (v === 'futures' || v === 'um' || v === 'futures-um' || v === 'perp' || v === 'perpetual') return 'usdm';
  if (v === 'cm' || v === 'futures-cm') return 'coinm';
  if ((MARKET_TYPES as readonly string[]).includes(v)) return v as MarketType;
  throw new Error(`Unknown market type "${s}": expected one of ${MARKET_TYPES.join(', ')}`);
}

export function seriesKey(exchange: string, marketType: string, symbol: string, timeframe: string): SeriesKey {
  if (!/^[a-z0-9_-]+$/i.test(exchange))
    throw new Error(`Invalid exchange id "${exchange}": letters, digits, - and _ only`);
  if (!isTimeframe(timeframe)) throw new Error(`Unknown timeframe "${timeframe}"`);
  // A list would be squashed into one made-up market (BTCUSDTETHUSDT).
  if (symbol.includes(','))
    throw new Error(`--symbol "${symbol}" lists several markets where one is meant: give one, e.g. BTC/USDT`);
  const sym = normaliseSymbol(symbol);
  if (sym.length === 0) throw new Error(`Invalid symbol "${symbol}"`);
  return { exchange: exchange.toLowerCase(), marketType: parseMarketType(marketType), symbol: sym, timeframe };
}

export function seriesId(k: SeriesKey): string {
  return `${k.exchange}/${k.marketType}/${k.symbol}/${k.timeframe}`;
}

/** An empty-or-not BarSeries whose optional columns are all present (NaN where unknown). */
export interface FullSeries extends BarSeries {
  readonly quoteVolume: Float64Array;
  readonly trades: Float64Array;
  readonly takerBuyVolume: Float64Array;
}

export function toFullSeries(s: BarSeries): FullSeries {
  const nanCol = (c: Float64Array | undefined): Float64Array => c ?? new Float64Array(s.length).fill(Number.NaN);
  return {
    ...s,
    quoteVolume: nanCol(s.quoteVolume),
    trades: nanCol(s.trades),
    takerBuyVolume: nanCol(s.takerBuyVolume),
  };
}

/** Allocates a full series of n rows. */
export function allocSeries(n: number): FullSeries {
  return {
    length: n,
    time: new Float64Array(n),
    open: new Float64Array(n),
    high: new Float64Array(n),
    low: new Float64Array(n),
    close: new Float64Array(n),
    volume: new Float64Array(n),
    quoteVolume: new Float64Array(n),
    trades: new Float64Array(n),
    takerBuyVolume: new Float64Array(n),
  };
}

export const SERIES_COLUMNS = [
  'time',
  'open',
  'high',
  'low',
  'close',
  'volume',
  'quoteVolume',
  'trades',
  'takerBuyVolume',
] as const;

/** Rows [from, to) of a full series as a new full series with copies (not views). */
export function copyRows(s: FullSeries, idx: Int32Array | number[], n = idx.length): FullSeries {
  const out = allocSeries(n);
  for (const c of SERIES_COLUMNS) {
    const src = s[c];
    const dst = out[c];
    for (let i = 0; i < n; i++) dst[i] = src[idx[i] as number] as number;
  }
  return out;
}

export function sliceFull(s: FullSeries, from: number, to: number): FullSeries {
  const n = Math.max(0, Math.min(to, s.length) - from);
  return {
    length: n,
    time: s.time.subarray(from, from + n),
    open: s.open.subarray(from, from + n),
    high: s.high.subarray(from, from + n),
    low: s.low.subarray(from, from + n),
    close: s.close.subarray(from, from + n),
    volume: s.volume.subarray(from, from + n),
    quoteVolume: s.quoteVolume.subarray(from, from + n),
    trades: s.trades.subarray(from, from + n),
    takerBuyVolume: s.takerBuyVolume.subarray(from, from + n),
  };
}

/** Data errors a user can act on: they carry a stable code and name the file, row and rule. */
export class DataError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'DataError';
  }
}
