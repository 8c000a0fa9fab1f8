/**
 * Markets replayed from candles: the replay clock, each bar's intra-bar price path, the public
 * trade tape, and the candles and 24h statistics served from them. No I/O: the clock moves only
 * in `advanceTo`.
 */
import { bucketStart } from '../bars.ts';
import { decimalsOf, floorToStep, roundTo } from '../num.ts';
import type { SimBar } from '../types.ts';
import {
  BAR_CLOSE_PHASE,
  BAR_CLOSED_PHASE,
  type Candle,
  type ExchangeListener,
  type MarketSpec,
  type MarketState,
  type PublicTrade,
} from './model.ts';

/** Intra-bar price path: 4 ticks at open + k/4 of the interval, then the close at open + interval. */
export const TICKS_PER_BAR = 4;

/**
 * The documented price-path assumption: a bar that closes at or above its open goes
 * open -> low -> high -> close; one that closes below goes open -> high -> low -> close.
 */
export function pricePath(bar: SimBar): [number, number, number, number] {
  return bar.close >= bar.open ? [bar.open, bar.low, bar.high, bar.close] : [bar.open, bar.high, bar.low, bar.close];
}

/** How many public trades each market keeps for `trades`, `aggTrades` and `historicalTrades`. */
const TRADE_TAPE_LENGTH = 1000;

/** Rolling 24h statistics of a market (REST ticker/24hr, the ticker streams). */
export interface DayStats {
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  quoteVolume: number;
  openTime: number;
  trades: number;
}

export interface MarketReplayOptions {
  markets: MarketSpec[];
  /** Share of each bar's volume the accounts' orders may fill per side. */
  participation: number;
  startTime: number;
  emit: ExchangeListener;
  /** Called for each price-path tick after the public trade, before the tick event: matching runs here. */
  onPriceMove(m: MarketState, from: number, to: number, withinBar: boolean): void;
}

export class MarketReplay {
  readonly markets = new Map<string, MarketState>();
  /** Smallest bar interval over all markets: what `step()` moves by. */
  readonly baseIntervalMs: number;
  private clock: number;

  constructor(private readonly opts: MarketReplayOptions) {
    for (const spec of opts.markets) {
      this.markets.set(spec.id, {
        ...spec,
        barIndex: -1,
        phase: 0,
        price: Number.NaN,
        partial: undefined,
        liquidity: { buyCap: 0, buyUsed: 0, sellCap: 0, sellUsed: 0 },
        updateId: 1,
        nextPublicTradeId: 1,
        trades: [],
      });
    }
    this.baseIntervalMs = Math.min(...opts.markets.map((m) => m.intervalMs));
    this.clock = opts.startTime;
    for (const m of this.markets.values()) this.seek(m, opts.startTime);
  }

  now(): number {
    return this.clock;
  }

  market(id: string): MarketState | undefined {
    return this.markets.get(id);
  }

  /** Next time anything happens in any market (+Infinity when every market's data is exhausted). */
  nextEvent(): number {
    let t = Number.POSITIVE_INFINITY;
    for (const m of this.markets.values()) t = Math.min(t, this.nextEventTime(m));
    return t;
  }

  /** Replays every event up to and including time t, in time order (closes before opens). */
  advanceTo(t: number): void {
    if (t < this.clock) return;
    for (;;) {
      let best: MarketState | undefined;
      let bestTime = Number.POSITIVE_INFINITY;
      let bestIsClose = false;
      for (const m of this.markets.values()) {
        const eventTime = this.nextEventTime(m);
        const isClose = m.barIndex >= 0 && m.phase === BAR_CLOSE_PHASE;
        if (eventTime < bestTime || (eventTime === bestTime && isClose && !bestIsClose)) {
          best = m;
          bestTime = eventTime;
          bestIsClose = isClose;
        }
      }
      if (!best || bestTime > t) break;
      this.clock = Math.max(this.clock, bestTime);
      this.processEvent(best);
    }
    this.clock = t;
  }

  /** Puts a trade on the market's public tape (and its trade streams). */
  recordTrade(m: MarketState, price: number, qty: number, isBuyerMaker: boolean): void {
    const trade: PublicTrade = { id: m.nextPublicTradeId++, price, qty, time: this.clock, isBuyerMaker };
    m.trades.push(trade);
    if (m.trades.length > TRADE_TAPE_LENGTH) m.trades.splice(0, m.trades.length - TRADE_TAPE_LENGTH);
    this.opts.emit({ type: 'trade', symbol: m.id, trade });
  }

  /**
   * Candles of an interval (a multiple of the data's) up to the replay clock, as Binance's klines
   * select them: `startTime` and `endTime` filter on open time (open >= startTime, open <=
   * endTime); with a startTime the first `limit` candles are returned, otherwise the last
   * `limit`. The last candle may be the bar still being replayed.
   */
  candles(
    m: MarketState,
    intervalMs: number,
    startTime: number | undefined,
    endTime: number | undefined,
    limit: number,
  ): Candle[] {
    if (m.barIndex < 0 || limit <= 0) return [];
    const bars = m.bars;
    const lastIndex = m.barIndex;
    const from = startTime === undefined ? Number.NEGATIVE_INFINITY : firstBucketAtOrAfter(startTime, intervalMs);
    let first: number;
    if (startTime !== undefined) {
      first = lowerBound(bars, from, lastIndex + 1);
    } else {
      // The newest `limit` buckets that open at or before endTime: walk back over the bars.
      const last = upperBound(bars, endTime ?? Number.POSITIVE_INFINITY, lastIndex + 1) - 1;
      first = last + 1;
      let buckets = 0;
      let bucket = Number.NaN;
      while (first > 0) {
        const b = bucketStart(barAt(bars, first - 1).time, intervalMs);
        if (b !== bucket) {
          if (buckets === limit) break;
          buckets += 1;
          bucket = b;
        }
        first -= 1;
      }
    }
    const out: Candle[] = [];
    let current: Candle | undefined;
    for (let i = first; i <= lastIndex; i++) {
      const c = i === lastIndex ? m.partial : this.fullCandle(barAt(bars, i), m);
      if (!c) break;
      const b = bucketStart(c.time, intervalMs);
      if (endTime !== undefined && b > endTime) break;
      if (!current || current.time !== b) {
        if (current) {
          if (out.length >= limit) break;
          out.push(current);
        }
        current = { ...c, time: b, closed: false };
      } else {
        current.high = Math.max(current.high, c.high);
        current.low = Math.min(current.low, c.low);
        current.close = c.close;
        current.volume += c.volume;
        current.quoteVolume += c.quoteVolume;
        current.trades += c.trades;
      }
    }
    if (current && out.length < limit) out.push(current);
    // A bucket is closed once the clock has reached its end (the close event of its last bar).
    for (const c of out) c.closed = this.clock >= c.time + intervalMs;
    return out;
  }

  /** Rolling 24h statistics up to the clock, from the candles. */
  dayStats(m: MarketState): DayStats {
    const from = this.clock - 86_400_000;
    const candles = this.candles(m, m.intervalMs, from, undefined, 1_000_000);
    const first = candles[0];
    const last = candles[candles.length - 1];
    if (!first || !last) {
      const p = m.price;
      return { open: p, high: p, low: p, close: p, volume: 0, quoteVolume: 0, openTime: from, trades: 0 };
    }
    return {
      open: first.open,
      high: Math.max(...candles.map((x) => x.high)),
      low: Math.min(...candles.map((x) => x.low)),
      close: last.close,
      volume: candles.reduce((s, x) => s + x.volume, 0),
      quoteVolume: candles.reduce((s, x) => s + x.quoteVolume, 0),
      openTime: first.time,
      trades: candles.reduce((s, x) => s + x.trades, 0),
    };
  }

  /** Positions a market at time t without emitting: bars closed before t are history. */
  private seek(m: MarketState, t: number): void {
    const i = upperBound(m.bars, t, m.bars.length) - 1; // last bar opened at or before t
    const bar = m.bars[i];
    if (!bar) return;
    this.loadBar(m, i);
    if (t >= bar.time + m.intervalMs) {
      // t falls in a gap or after the data: the bar is closed.
      m.phase = BAR_CLOSED_PHASE;
      m.price = bar.close;
      m.partial = this.fullCandle(bar, m);
      return;
    }
    const path = pricePath(bar);
    const k = Math.min(TICKS_PER_BAR - 1, Math.floor(((t - bar.time) * TICKS_PER_BAR) / m.intervalMs));
    for (let j = 0; j <= k; j++) this.applyTick(m, bar, path, j);
    m.price = tickPrice(path, k);
    m.phase = k + 1;
  }

  private loadBar(m: MarketState, i: number): void {
    const bar = barAt(m.bars, i);
    m.barIndex = i;
    m.phase = 0;
    const cap = this.opts.participation * bar.volume;
    m.liquidity = { buyCap: cap, buyUsed: 0, sellCap: cap, sellUsed: 0 };
    m.partial = undefined;
  }

  /** Extends the bar's partial candle by path tick k (volume spread evenly over the ticks). */
  private applyTick(m: MarketState, bar: SimBar, path: readonly number[], k: number): void {
    const p = tickPrice(path, k);
    const volume = (bar.volume * (k + 1)) / TICKS_PER_BAR;
    const c = m.partial;
    if (!c || k === 0) {
      m.partial = {
        time: bar.time,
        open: p,
        high: p,
        low: p,
        close: p,
        volume,
        quoteVolume: volume * p,
        trades: 1,
        closed: false,
      };
      return;
    }
    c.high = Math.max(c.high, p);
    c.low = Math.min(c.low, p);
    c.close = p;
    c.quoteVolume += (volume - c.volume) * p;
    c.volume = volume;
    c.trades += 1;
  }

  private fullCandle(bar: SimBar, m: MarketSpec): Candle {
    return {
      time: bar.time,
      open: bar.open,
      high: bar.high,
      low: bar.low,
      close: bar.close,
      volume: bar.volume,
      quoteVolume: roundTo((bar.volume * (bar.high + bar.low + bar.close)) / 3, decimalsOf(m.tickSize) + 4),
      trades: TICKS_PER_BAR,
      closed: true,
    };
  }

  /** Time of the market's next replay event, or +Infinity when its data is exhausted. */
  private nextEventTime(m: MarketState): number {
    const bar = m.bars[m.barIndex];
    if (bar && m.phase < BAR_CLOSED_PHASE) {
      return m.phase < TICKS_PER_BAR ? bar.time + (m.phase * m.intervalMs) / TICKS_PER_BAR : bar.time + m.intervalMs;
    }
    const next = m.bars[m.barIndex + 1];
    return next ? next.time : Number.POSITIVE_INFINITY;
  }

  private processEvent(m: MarketState): void {
    if (m.barIndex < 0 || m.phase >= BAR_CLOSED_PHASE) this.loadBar(m, m.barIndex + 1);
    const bar = barAt(m.bars, m.barIndex);
    if (m.phase === BAR_CLOSE_PHASE) {
      m.phase = BAR_CLOSED_PHASE;
      m.partial = this.fullCandle(bar, m);
      this.opts.emit({ type: 'barClose', symbol: m.id, bar });
      return;
    }
    const path = pricePath(bar);
    const k = m.phase;
    const from = m.price;
    const to = tickPrice(path, k);
    this.applyTick(m, bar, path, k);
    m.price = to;
    m.phase = k + 1;
    const qty = floorToStep(bar.volume / TICKS_PER_BAR, m.stepSize);
    if (qty > 0) this.recordTrade(m, to, qty, Number.isFinite(from) ? to < from : false);
    if (Number.isFinite(from)) this.opts.onPriceMove(m, from, to, k > 0);
    m.updateId += 1;
    this.opts.emit({ type: 'tick', symbol: m.id });
  }
}

/** A bar the replay's own bookkeeping points at; a missing one is a bug in the replay. */
function barAt(bars: readonly SimBar[], i: number): SimBar {
  const bar = bars[i];
  if (bar === undefined) throw new Error(`market replay: no bar at index ${i} of ${bars.length}`);
  return bar;
}

function tickPrice(path: readonly number[], k: number): number {
  const p = path[k];
  if (p === undefined) throw new Error(`market replay: no price-path tick ${k}`);
  return p;
}

/** The open time of the first interval bucket that opens at or after t. */
function firstBucketAtOrAfter(t: number, intervalMs: number): number {
  const b = bucketStart(t, intervalMs);
  return b < t ? b + intervalMs : b;
}

/** Index of the first of bars[0..end) that opens at or after t. */
function lowerBound(bars: readonly SimBar[], t: number, end: number): number {
  let lo = 0;
  let hi = end;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (barAt(bars, mid).time < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first of bars[0..end) that opens after t. */
function upperBound(bars: readonly SimBar[], t: number, end: number): number {
  let lo = 0;
  let hi = end;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (barAt(bars, mid).time <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
