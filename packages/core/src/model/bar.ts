import type { Timeframe } from './timeframe.ts';

/** One candle. `time` is the bar's OPEN time in UTC ms, as Binance and ccxt stamp it. */
export interface Bar {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  /** Optional extras; NaN when the source does not have them. */
  quoteVolume: number;
  trades: number;
  takerBuyVolume: number;
}

/**
 * Columnar bars: the form the engine, the data store and the indicators exchange. One Float64Array
 * per column, no per-bar objects. Optional columns are present when the source had them.
 */
export interface BarSeries {
  readonly length: number;
  readonly time: Float64Array;
  readonly open: Float64Array;
  readonly high: Float64Array;
  readonly low: Float64Array;
  readonly close: Float64Array;
  readonly volume: Float64Array;
  readonly quoteVolume?: Float64Array;
  readonly trades?: Float64Array;
  readonly takerBuyVolume?: Float64Array;
}

export function emptyBar(): Bar {
  return {
    time: Number.NaN,
    open: Number.NaN,
    high: Number.NaN,
    low: Number.NaN,
    close: Number.NaN,
    volume: Number.NaN,
    quoteVolume: Number.NaN,
    trades: Number.NaN,
    takerBuyVolume: Number.NaN,
  };
}

/** Copies every field of `b` into a reused Bar (allocation-free). */
export function copyBarInto(b: Bar, out: Bar): Bar {
  out.time = b.time;
  out.open = b.open;
  out.high = b.high;
  out.low = b.low;
  out.close = b.close;
  out.volume = b.volume;
  out.quoteVolume = b.quoteVolume;
  out.trades = b.trades;
  out.takerBuyVolume = b.takerBuyVolume;
  return out;
}

/** A new Bar equal to `b`: for a bar that outlives the reused one it was read into. */
export function copyBar(b: Bar): Bar {
  return copyBarInto(b, emptyBar());
}

/** Copies row i of a series into a reused Bar (allocation-free). */
export function readBar(s: BarSeries, i: number, out: Bar): Bar {
  out.time = s.time[i] as number;
  out.open = s.open[i] as number;
  out.high = s.high[i] as number;
  out.low = s.low[i] as number;
  out.close = s.close[i] as number;
  out.volume = s.volume[i] as number;
  out.quoteVolume = s.quoteVolume ? (s.quoteVolume[i] as number) : Number.NaN;
  out.trades = s.trades ? (s.trades[i] as number) : Number.NaN;
  out.takerBuyVolume = s.takerBuyVolume ? (s.takerBuyVolume[i] as number) : Number.NaN;
  return out;
}

export interface BarColumnsInit {
  time: ArrayLike<number>;
  open: ArrayLike<number>;
  high: ArrayLike<number>;
  low: ArrayLike<number>;
  close: ArrayLike<number>;
  volume: ArrayLike<number>;
  quoteVolume?: ArrayLike<number> | undefined;
  trades?: ArrayLike<number> | undefined;
  takerBuyVolume?: ArrayLike<number> | undefined;
}

export function barSeries(init: BarColumnsInit): BarSeries {
  const n = init.time.length;
  for (const k of ['open', 'high', 'low', 'close', 'volume'] as const) {
    if (init[k].length !== n)
      throw new Error(`Invalid bar series: column ${k} has ${init[k].length} rows, time has ${n}`);
  }
  const f = (a: ArrayLike<number>): Float64Array => (a instanceof Float64Array ? a : Float64Array.from(a));
  const base = {
    length: n,
    time: f(init.time),
    open: f(init.open),
    high: f(init.high),
    low: f(init.low),
    close: f(init.close),
    volume: f(init.volume),
  };
  return {
    ...base,
    ...(init.quoteVolume ? { quoteVolume: f(init.quoteVolume) } : {}),
    ...(init.trades ? { trades: f(init.trades) } : {}),
    ...(init.takerBuyVolume ? { takerBuyVolume: f(init.takerBuyVolume) } : {}),
  };
}

/** The OHLCV fields of a bar, as rows hold them (a database, a simulator, a test). */
export type OhlcvRow = Pick<Bar, 'time' | 'open' | 'high' | 'low' | 'close' | 'volume'>;

/** Columns from rows of bars, in their order. */
export function seriesFromRows(rows: readonly OhlcvRow[]): BarSeries {
  const col = (k: keyof OhlcvRow) => Float64Array.from(rows, (r) => r[k]);
  return barSeries({
    time: col('time'),
    open: col('open'),
    high: col('high'),
    low: col('low'),
    close: col('close'),
    volume: col('volume'),
  });
}

export function sliceSeries(s: BarSeries, from: number, to: number): BarSeries {
  return {
    length: Math.max(0, Math.min(to, s.length) - from),
    time: s.time.subarray(from, to),
    open: s.open.subarray(from, to),
    high: s.high.subarray(from, to),
    low: s.low.subarray(from, to),
    close: s.close.subarray(from, to),
    volume: s.volume.subarray(from, to),
    ...(s.quoteVolume ? { quoteVolume: s.quoteVolume.subarray(from, to) } : {}),
    ...(s.trades ? { trades: s.trades.subarray(from, to) } : {}),
    ...(s.takerBuyVolume ? { takerBuyVolume: s.takerBuyVolume.subarray(from, to) } : {}),
  };
}

/** A stream of bars for one market and timeframe: the unit a strategy subscribes to. */
export interface FeedKey {
  readonly symbol: string;
  readonly timeframe: Timeframe;
}

export function feedId(k: FeedKey): string {
  return `${k.symbol}@${k.timeframe}`;
}

/**
 * A Bar that reads row `i` of a BarSeries in place: moving to the next bar is one integer store,
 * nothing is copied or allocated. The backtest driver hands these to the engine.
 */
export class SeriesCursor implements Bar {
  i = 0;
  private readonly t: Float64Array;
  private readonly o: Float64Array;
  private readonly h: Float64Array;
  private readonly l: Float64Array;
  private readonly c: Float64Array;
  private readonly v: Float64Array;
  private readonly qv: Float64Array | null;
  private readonly n: Float64Array | null;
  private readonly tb: Float64Array | null;

  constructor(s: BarSeries) {
    this.t = s.time;
    this.o = s.open;
    this.h = s.high;
    this.l = s.low;
    this.c = s.close;
    this.v = s.volume;
    this.qv = s.quoteVolume ?? null;
    this.n = s.trades ?? null;
    this.tb = s.takerBuyVolume ?? null;
  }
  get time(): number {
    return this.t[this.i] as number;
  }
  get open(): number {
    return this.o[this.i] as number;
  }
  get high(): number {
    return this.h[this.i] as number;
  }
  get low(): number {
    return this.l[this.i] as number;
  }
  get close(): number {
    return this.c[this.i] as number;
  }
  get volume(): number {
    return this.v[this.i] as number;
  }
  get quoteVolume(): number {
    return this.qv === null ? Number.NaN : (this.qv[this.i] as number);
  }
  get trades(): number {
    return this.n === null ? Number.NaN : (this.n[this.i] as number);
  }
  get takerBuyVolume(): number {
    return this.tb === null ? Number.NaN : (this.tb[this.i] as number);
  }
}
