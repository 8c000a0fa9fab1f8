/**
 * Market streams: what each replay event publishes on `<s>@trade`, `@aggTrade`, `@kline_<i>`,
 * `@bookTicker`, `@depth[@100ms]`, `@depth<N>[@100ms]`, `@ticker` and `@miniTicker`.
 */
import { bucketStart, INTERVAL_MS } from '../bars.ts';
import { aggTradeJson, klineEvent } from '../binance-json.ts';
import type { MarketState, PublicTrade } from '../exchange/model.ts';
import type { SimVenue } from '../exchange/venue.ts';
import { binanceDecimal } from '../num.ts';
import type { WsOutbound } from './connection.ts';

type LevelMap = Map<number, number>;

/** A stream name for the market, or undefined when the market is unknown or the name malformed. */
export function normaliseStream(exchange: SimVenue, stream: string): string | undefined {
  if (exchange.kind === 'futures' && (stream === '!markPrice@arr' || stream === '!markPrice@arr@1s')) return stream;
  const [symbol = '', channel] = stream.split('@', 2);
  if (!channel || !exchange.market(symbol.toUpperCase())) return undefined;
  // Only the symbol is lower-cased: channels keep their case (markPrice@1s).
  return `${symbol.toLowerCase()}${stream.slice(symbol.length)}`;
}

export class MarketStreams {
  /** Each market's book as last published, for the diff depth stream. */
  private readonly lastBooks = new Map<string, { bids: LevelMap; asks: LevelMap }>();

  constructor(
    private readonly exchange: SimVenue,
    private readonly out: WsOutbound,
  ) {}

  /** Nobody is connected: the next diff starts from a full book. */
  forget(symbolId: string): void {
    this.lastBooks.delete(symbolId);
  }

  onTrade(symbolId: string, t: PublicTrade): void {
    const s = symbolId.toLowerCase();
    const E = this.exchange.now();
    this.out.publish(`${s}@trade`, {
      e: 'trade',
      E,
      s: symbolId,
      t: t.id,
      p: binanceDecimal(t.price),
      q: binanceDecimal(t.qty),
      T: t.time,
      m: t.isBuyerMaker,
      M: true,
    });
    this.out.publish(`${s}@aggTrade`, { e: 'aggTrade', E, s: symbolId, ...aggTradeJson(t) });
  }

  onTick(m: MarketState): void {
    const exchange = this.exchange;
    const s = m.id.toLowerCase();
    const E = exchange.now();
    for (const [name, ms] of this.klineIntervals(m)) {
      const c = exchange.replay.candles(m, ms, bucketStart(E, ms), undefined, 1)[0];
      if (c) this.out.publish(`${s}@kline_${name}`, klineEvent(m.id, name, ms, c, false, E));
    }
    const book = exchange.book.snapshot(m);
    if (this.out.wants(`${s}@bookTicker`)) {
      this.out.publish(`${s}@bookTicker`, {
        u: book.lastUpdateId,
        s: m.id,
        b: binanceDecimal(book.bids[0]?.[0] ?? 0),
        B: binanceDecimal(book.bids[0]?.[1] ?? 0),
        a: binanceDecimal(book.asks[0]?.[0] ?? 0),
        A: binanceDecimal(book.asks[0]?.[1] ?? 0),
      });
    }
    // Diff depth: levels that changed since the last tick, with U = u = the book's update id.
    const prev = this.lastBooks.get(m.id);
    const next = { bids: new Map(book.bids), asks: new Map(book.asks) };
    this.lastBooks.set(m.id, next);
    const diff = (a: LevelMap | undefined, b: LevelMap): string[][] => {
      const out: string[][] = [];
      for (const [p, q] of b) if (a?.get(p) !== q) out.push([binanceDecimal(p), binanceDecimal(q)]);
      if (a) for (const p of a.keys()) if (!b.has(p)) out.push([binanceDecimal(p), binanceDecimal(0)]);
      return out;
    };
    const depthEvent = {
      e: 'depthUpdate',
      E,
      s: m.id,
      U: book.lastUpdateId,
      u: book.lastUpdateId,
      b: diff(prev?.bids, next.bids),
      a: diff(prev?.asks, next.asks),
    };
    this.out.publish(`${s}@depth`, depthEvent);
    this.out.publish(`${s}@depth@100ms`, depthEvent);
    for (const levels of [5, 10, 20]) {
      const partial = {
        lastUpdateId: book.lastUpdateId,
        bids: book.bids.slice(0, levels).map(([p, q]) => [binanceDecimal(p), binanceDecimal(q)]),
        asks: book.asks.slice(0, levels).map(([p, q]) => [binanceDecimal(p), binanceDecimal(q)]),
      };
      this.out.publish(`${s}@depth${levels}`, partial);
      this.out.publish(`${s}@depth${levels}@100ms`, partial);
    }
    if (this.out.wants(`${s}@ticker`) || this.out.wants(`${s}@miniTicker`)) {
      const st = exchange.replay.dayStats(m);
      const change = st.close - st.open;
      this.out.publish(`${s}@ticker`, {
        e: '24hrTicker',
        E,
        s: m.id,
        p: binanceDecimal(change),
        P: (st.open > 0 ? (change / st.open) * 100 : 0).toFixed(3),
        w: binanceDecimal(st.volume > 0 ? st.quoteVolume / st.volume : st.close),
        x: binanceDecimal(st.open),
        c: binanceDecimal(m.price),
        Q: binanceDecimal(m.trades[m.trades.length - 1]?.qty ?? 0),
        b: binanceDecimal(book.bids[0]?.[0] ?? 0),
        B: binanceDecimal(book.bids[0]?.[1] ?? 0),
        a: binanceDecimal(book.asks[0]?.[0] ?? 0),
        A: binanceDecimal(book.asks[0]?.[1] ?? 0),
        o: binanceDecimal(st.open),
        h: binanceDecimal(st.high),
        l: binanceDecimal(st.low),
        v: binanceDecimal(st.volume),
        q: binanceDecimal(st.quoteVolume),
        O: st.openTime,
        C: E,
        F: m.trades[0]?.id ?? -1,
        L: m.trades[m.trades.length - 1]?.id ?? -1,
        n: st.trades,
      });
      this.out.publish(`${s}@miniTicker`, {
        e: '24hrMiniTicker',
        E,
        s: m.id,
        c: binanceDecimal(m.price),
        o: binanceDecimal(st.open),
        h: binanceDecimal(st.high),
        l: binanceDecimal(st.low),
        v: binanceDecimal(st.volume),
        q: binanceDecimal(st.quoteVolume),
      });
    }
  }

  /**
   * USDⓈ-M mark price (`<s>@markPrice`, `<s>@markPrice@1s`, `!markPrice@arr[@1s]`): one update
   * per replay tick; the mark and index prices are the last price, `r` and `T` the coming funding.
   */
  onMarkPrice(m: MarketState): void {
    const info = this.exchange.markPriceInfo?.(m.id);
    if (!info) return;
    const s = m.id.toLowerCase();
    const event = {
      e: 'markPriceUpdate',
      E: this.exchange.now(),
      s: m.id,
      p: binanceDecimal(info.markPrice),
      i: binanceDecimal(info.indexPrice),
      P: binanceDecimal(info.markPrice),
      r: binanceDecimal(info.fundingRate),
      T: info.nextFundingTime,
    };
    this.out.publish(`${s}@markPrice`, event);
    this.out.publish(`${s}@markPrice@1s`, event);
    this.out.publish('!markPrice@arr', [event]);
    this.out.publish('!markPrice@arr@1s', [event]);
  }

  /** A bar closed: every subscribed kline interval whose bucket ends with it publishes x=true. */
  onBarClose(m: MarketState, barTime: number): void {
    const s = m.id.toLowerCase();
    const end = barTime + m.intervalMs;
    for (const [name, ms] of this.klineIntervals(m)) {
      const start = bucketStart(barTime, ms);
      if (start + ms !== end) continue;
      const c = this.exchange.replay.candles(m, ms, start, start, 1)[0];
      if (c) this.out.publish(`${s}@kline_${name}`, klineEvent(m.id, name, ms, c, true, this.exchange.now()));
    }
  }

  /** Kline intervals the market can serve (multiples of its data's) that someone subscribed to. */
  private klineIntervals(m: MarketState): Array<[string, number]> {
    const s = m.id.toLowerCase();
    return Object.entries(INTERVAL_MS).filter(
      ([name, ms]) => ms >= m.intervalMs && ms % m.intervalMs === 0 && this.out.wants(`${s}@kline_${name}`),
    );
  }
}
