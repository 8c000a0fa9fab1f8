/**
 * The matching engine: markets replayed from candles, accounts, orders, fills and balances.
 * No I/O: time comes from the replay clock the engine owns and moves only in `advanceTo`.
 * Everything observable leaves through `EngineEvent`s, which the REST and WS layers turn into
 * Binance shapes.
 */
import { bucketStart } from './bars.ts';
import { binanceError, type SimError } from './errors.ts';
import { nextStatus, type OrderEvent } from './lifecycle.ts';
import { decimalsOf, floorToStep, isMultipleOf, r8, roundTo } from './num.ts';
import type {
  OrderSide,
  OrderType,
  SimAccountOptions,
  SimBalance,
  SimBar,
  SimFeeOptions,
  SimFill,
  SimOrder,
  TimeInForce,
} from './types.ts';

/** Intra-bar price path: 4 ticks at open + k/4 of the interval, then the close at open + interval. */
export const TICKS_PER_BAR = 4;

/**
 * The documented price-path assumption: a bar that closes at or above its open goes
 * open -> low -> high -> close; one that closes below goes open -> high -> low -> close.
 */
export function pricePath(bar: SimBar): [number, number, number, number] {
  return bar.close >= bar.open ? [bar.open, bar.low, bar.high, bar.close] : [bar.open, bar.high, bar.low, bar.close];
}

export interface PublicTrade {
  id: number;
  price: number;
  qty: number;
  time: number;
  isBuyerMaker: boolean;
}

export interface MyTrade {
  symbol: string;
  id: number;
  orderId: number;
  price: number;
  qty: number;
  quoteQty: number;
  commission: number;
  commissionAsset: string;
  time: number;
  isBuyer: boolean;
  isMaker: boolean;
}

export interface Candle extends SimBar {
  quoteVolume: number;
  trades: number;
  closed: boolean;
}

export type ExecType = 'NEW' | 'TRADE' | 'CANCELED' | 'EXPIRED';

export type EngineEvent =
  | {
      type: 'execution';
      apiKey: string;
      order: SimOrder;
      execType: ExecType;
      fill?: SimFill;
      cancelClientOrderId?: string;
    }
  | { type: 'balance'; apiKey: string; assets: string[] }
  | { type: 'trade'; symbol: string; trade: PublicTrade }
  | { type: 'tick'; symbol: string }
  | { type: 'barClose'; symbol: string; bar: SimBar };

export interface EngineMarket {
  symbol: string;
  id: string;
  base: string;
  quote: string;
  tickSize: number;
  stepSize: number;
  minQty: number;
  minNotional: number;
  bars: SimBar[];
  intervalMs: number;
}

/** A market as the engine replays it: the static description plus the replay state. */
export interface MarketState extends EngineMarket {
  /** Index of the bar being replayed, or -1 before the first. */
  barIndex: number;
  /** Next event of the current bar: 0..3 a path tick, 4 its close; 5 = bar closed. */
  phase: number;
  price: number;
  partial: Candle | undefined;
  buyCap: number;
  buyUsed: number;
  sellCap: number;
  sellUsed: number;
  updateId: number;
  publicTradeId: number;
  trades: PublicTrade[];
  open: OrderRecord[];
}

interface OrderRecord {
  order: SimOrder;
  account: Account;
  market: MarketState;
  /** Amount still locked for this order, in the asset it locks. */
  lockedLeft: number;
  lockedAsset: string;
  seq: number;
  /** The OCO list this order is a leg of. */
  list?: OrderList;
}

/** An OCO order list: two legs on one side; the first to trigger or fill expires the other. */
export interface OrderList {
  orderListId: number;
  listClientOrderId: string;
  symbol: string;
  legs: OrderRecord[];
  transactionTime: number;
}

/** One leg of an OCO (Binance's `above*`/`below*` parameters). */
export interface OcoLegRequest {
  type: string | undefined;
  price: number | undefined;
  stopPrice: number | undefined;
  timeInForce: string | undefined;
  clientOrderId: string | undefined;
}

export interface PlaceOcoRequest {
  symbol: string;
  side: string | undefined;
  quantity: number | undefined;
  listClientOrderId: string | undefined;
  above: OcoLegRequest;
  below: OcoLegRequest;
}

/** An order request that passed every check and may be booked. */
interface CheckedOrder {
  m: MarketState;
  side: OrderSide;
  type: OrderType;
  tif: TimeInForce | undefined;
  isStop: boolean;
  needsPrice: boolean;
  price: number;
  stopPrice: number;
  qty: number;
  quantity: number | undefined;
  quoteOrderQty: number | undefined;
  clientOrderId: string;
}

interface Account {
  apiKey: string;
  secret: string;
  balances: Map<string, SimBalance>;
  orders: OrderRecord[];
  trades: MyTrade[];
}

export interface PlaceOrderRequest {
  symbol: string;
  side: string | undefined;
  type: string | undefined;
  timeInForce: string | undefined;
  quantity: number | undefined;
  quoteOrderQty: number | undefined;
  price: number | undefined;
  stopPrice: number | undefined;
  newClientOrderId: string | undefined;
}

export interface EngineOptions {
  markets: EngineMarket[];
  accounts: SimAccountOptions[];
  fees: SimFeeOptions;
  participation: number;
  bookLevels: number;
  spreadTicks: number;
  startTime: number;
}

const TRADE_RING = 1000;
const CLIENT_ID_RE = /^[.A-Z:/a-z0-9_-]{1,36}$/;

export class Engine {
  readonly markets = new Map<string, MarketState>();
  readonly fees: SimFeeOptions;
  readonly bookLevels: number;
  readonly spreadTicks: number;
  private readonly participation: number;
  private readonly accounts = new Map<string, Account>();
  private readonly orders = new Map<number, OrderRecord>();
  private readonly listeners: Array<(e: EngineEvent) => void> = [];
  private clock: number;
  private nextOrderId = 1_000_001;
  private nextOrderListId = 7_000_001;
  private readonly lists: OrderList[] = [];
  private nextTradeId = 5_000_001;
  private seq = 0;
  private rejectNext: { code: number; msg: string } | undefined;
  /** Smallest bar interval over all markets: what `step()` moves by. */
  readonly baseIntervalMs: number;

  constructor(opts: EngineOptions) {
    this.fees = opts.fees;
    this.participation = opts.participation;
    this.bookLevels = opts.bookLevels;
    this.spreadTicks = opts.spreadTicks;
    for (const m of opts.markets) {
      this.markets.set(m.id, {
        ...m,
        barIndex: -1,
        phase: 0,
        price: Number.NaN,
        partial: undefined,
        buyCap: 0,
        buyUsed: 0,
        sellCap: 0,
        sellUsed: 0,
        updateId: 1,
        publicTradeId: 1,
        trades: [],
        open: [],
      });
    }
    this.baseIntervalMs = Math.min(...opts.markets.map((m) => m.intervalMs));
    for (const a of opts.accounts) this.addAccount(a);
    this.clock = opts.startTime;
    for (const m of this.markets.values()) this.seek(m, opts.startTime);
  }

  on(listener: (e: EngineEvent) => void): void {
    this.listeners.push(listener);
  }

  private emit(e: EngineEvent): void {
    for (const l of this.listeners) l(e);
  }

  now(): number {
    return this.clock;
  }

  // ---------------------------------------------------------------- accounts

  addAccount(a: SimAccountOptions): void {
    if (this.accounts.has(a.apiKey)) throw new Error(`account with apiKey ${a.apiKey} already exists`);
    const balances = new Map<string, SimBalance>();
    for (const [asset, free] of Object.entries(a.balances)) balances.set(asset, { free, locked: 0 });
    this.accounts.set(a.apiKey, { apiKey: a.apiKey, secret: a.secret, balances, orders: [], trades: [] });
  }

  secretOf(apiKey: string): string | undefined {
    return this.accounts.get(apiKey)?.secret;
  }

  hasAccount(apiKey: string): boolean {
    return this.accounts.has(apiKey);
  }

  balances(apiKey: string): Record<string, SimBalance> {
    const acc = this.account(apiKey);
    const out: Record<string, SimBalance> = {};
    for (const [asset, b] of acc.balances) out[asset] = { free: b.free, locked: b.locked };
    return out;
  }

  /** Every order of the account, oldest first (copies). */
  ordersOf(apiKey: string, symbolId?: string): SimOrder[] {
    return this.account(apiKey)
      .orders.filter((r) => symbolId === undefined || r.market.id === symbolId)
      .map((r) => ({ ...r.order, fills: [...r.order.fills] }));
  }

  myTrades(apiKey: string, symbolId: string): MyTrade[] {
    return this.account(apiKey).trades.filter((t) => t.symbol === symbolId);
  }

  private account(apiKey: string): Account {
    const acc = this.accounts.get(apiKey);
    if (!acc) throw new Error(`no account with apiKey ${apiKey}`);
    return acc;
  }

  private bal(acc: Account, asset: string): SimBalance {
    let b = acc.balances.get(asset);
    if (!b) {
      b = { free: 0, locked: 0 };
      acc.balances.set(asset, b);
    }
    return b;
  }

  // ---------------------------------------------------------------- clock & replay

  /** Positions a market at time t without emitting: bars closed before t are history. */
  private seek(m: MarketState, t: number): void {
    const bars = m.bars;
    let lo = 0;
    let hi = bars.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (bars[mid]!.time <= t) lo = mid + 1;
      else hi = mid;
    }
    const i = lo - 1; // last bar opened at or before t
    if (i < 0) return;
    const bar = bars[i]!;
    if (t >= bar.time + m.intervalMs) {
      // t falls in a gap or after the data: the bar is closed.
      this.loadBar(m, i);
      m.phase = 5;
      m.price = bar.close;
      m.partial = { ...this.fullCandle(bar, m), closed: true };
      return;
    }
    this.loadBar(m, i);
    const path = pricePath(bar);
    const k = Math.min(TICKS_PER_BAR - 1, Math.floor(((t - bar.time) * TICKS_PER_BAR) / m.intervalMs));
    for (let j = 0; j <= k; j++) this.applyPartial(m, bar, path, j);
    m.price = path[k]!;
    m.phase = k + 1;
  }

  private loadBar(m: MarketState, i: number): void {
    const bar = m.bars[i]!;
    m.barIndex = i;
    m.phase = 0;
    m.buyCap = this.participation * bar.volume;
    m.sellCap = this.participation * bar.volume;
    m.buyUsed = 0;
    m.sellUsed = 0;
    m.partial = undefined;
  }

  private applyPartial(m: MarketState, bar: SimBar, path: readonly number[], k: number): void {
    const p = path[k]!;
    const volume = (bar.volume * (k + 1)) / TICKS_PER_BAR;
    if (!m.partial || k === 0) {
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
    } else {
      const c = m.partial;
      c.high = Math.max(c.high, p);
      c.low = Math.min(c.low, p);
      c.close = p;
      c.quoteVolume += (volume - c.volume) * p;
      c.volume = volume;
      c.trades += 1;
    }
  }

  private fullCandle(bar: SimBar, m: EngineMarket): Candle {
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
    if (m.barIndex >= 0 && m.phase < 5) {
      const bar = m.bars[m.barIndex]!;
      return m.phase < TICKS_PER_BAR ? bar.time + (m.phase * m.intervalMs) / TICKS_PER_BAR : bar.time + m.intervalMs;
    }
    const next = m.bars[m.barIndex + 1];
    return next ? next.time : Number.POSITIVE_INFINITY;
  }

  /** Next time anything happens in any market. */
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
      let bestT = Number.POSITIVE_INFINITY;
      let bestIsClose = false;
      for (const m of this.markets.values()) {
        const et = this.nextEventTime(m);
        const isClose = m.barIndex >= 0 && m.phase === TICKS_PER_BAR;
        if (et < bestT || (et === bestT && isClose && !bestIsClose)) {
          best = m;
          bestT = et;
          bestIsClose = isClose;
        }
      }
      if (!best || bestT > t) break;
      this.clock = Math.max(this.clock, bestT);
      this.processEvent(best);
    }
    this.clock = t;
  }

  private processEvent(m: MarketState): void {
    if (m.barIndex < 0 || m.phase >= 5) this.loadBar(m, m.barIndex + 1);
    const bar = m.bars[m.barIndex]!;
    if (m.phase === TICKS_PER_BAR) {
      m.phase = 5;
      m.partial = this.fullCandle(bar, m);
      this.emit({ type: 'barClose', symbol: m.id, bar });
      return;
    }
    const path = pricePath(bar);
    const k = m.phase;
    const prev = m.price;
    const next = path[k]!;
    this.applyPartial(m, bar, path, k);
    m.price = next;
    m.phase = k + 1;
    const qty = floorToStep(bar.volume / TICKS_PER_BAR, m.stepSize);
    if (qty > 0) this.publishTrade(m, next, qty, Number.isFinite(prev) ? next < prev : false);
    if (Number.isFinite(prev)) this.sweep(m, prev, next, k > 0);
    m.updateId += 1;
    this.emit({ type: 'tick', symbol: m.id });
  }

  private publishTrade(m: MarketState, price: number, qty: number, isBuyerMaker: boolean): void {
    const trade: PublicTrade = { id: m.publicTradeId++, price, qty, time: this.clock, isBuyerMaker };
    m.trades.push(trade);
    if (m.trades.length > TRADE_RING) m.trades.splice(0, m.trades.length - TRADE_RING);
    this.emit({ type: 'trade', symbol: m.id, trade });
  }

  // ---------------------------------------------------------------- market views

  market(id: string): MarketState | undefined {
    return this.markets.get(id);
  }

  bestBid(m: MarketState, ref = m.price): number {
    return floorToStep(ref, m.tickSize);
  }

  bestAsk(m: MarketState, ref = m.price): number {
    return roundTo(this.bestBid(m, ref) + this.spreadTicks * m.tickSize, decimalsOf(m.tickSize));
  }

  /** The synthetic book: `bookLevels` one-tick levels per side, sized from the bar's remaining budget. */
  book(
    m: MarketState,
    limit = this.bookLevels,
    ref = m.price,
  ): { bids: Array<[number, number]>; asks: Array<[number, number]>; lastUpdateId: number } {
    const n = Math.min(limit, this.bookLevels);
    const dec = decimalsOf(m.tickSize);
    const side = (cap: number, used: number, first: number, dir: 1 | -1): Array<[number, number]> => {
      const out: Array<[number, number]> = [];
      if (!Number.isFinite(first)) return out;
      const per = cap / this.bookLevels;
      for (let i = 0; i < n; i++) {
        const q = floorToStep(Math.min(per, Math.max(0, per * (i + 1) - used)), m.stepSize);
        const p = roundTo(first + dir * i * m.tickSize, dec);
        if (q > 0 && p > 0) out.push([p, q]);
      }
      return out;
    };
    return {
      bids: side(m.sellCap, m.sellUsed, this.bestBid(m, ref), -1),
      asks: side(m.buyCap, m.buyUsed, this.bestAsk(m, ref), 1),
      lastUpdateId: m.updateId,
    };
  }

  /**
   * Candles of an interval (a multiple of the data's), up to the replay clock; the last one may be
   * the open bar. `startTime`/`endTime` filter on open time like Binance; default: the latest.
   */
  candles(
    m: MarketState,
    intervalMs: number,
    startTime: number | undefined,
    endTime: number | undefined,
    limit: number,
  ): Candle[] {
    if (m.barIndex < 0) return [];
    const bars = m.bars;
    const lastIdx = m.barIndex;
    let from: number;
    if (startTime !== undefined) from = bucketStart(startTime, intervalMs);
    else from = bucketStart(Math.min(endTime ?? this.clock, this.clock), intervalMs) - (limit - 1) * intervalMs;
    let lo = 0;
    let hi = lastIdx + 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (bars[mid]!.time < from) lo = mid + 1;
      else hi = mid;
    }
    const out: Candle[] = [];
    let cur: Candle | undefined;
    for (let i = lo; i <= lastIdx; i++) {
      const isCurrent = i === lastIdx;
      const c = isCurrent ? m.partial : this.fullCandle(bars[i]!, m);
      if (!c) break;
      const b = bucketStart(c.time, intervalMs);
      if (endTime !== undefined && b > endTime) break;
      if (!cur || cur.time !== b) {
        if (cur) {
          if (out.length >= limit) break;
          out.push(cur);
        }
        cur = { ...c, time: b, closed: false };
      } else {
        cur.high = Math.max(cur.high, c.high);
        cur.low = Math.min(cur.low, c.low);
        cur.close = c.close;
        cur.volume += c.volume;
        cur.quoteVolume += c.quoteVolume;
        cur.trades += c.trades;
      }
    }
    if (cur && out.length < limit) out.push(cur);
    // A bucket is closed once the clock has reached its end (the close event of its last bar).
    for (const c of out) c.closed = this.clock >= c.time + intervalMs;
    return out;
  }

  /** Rolling 24h statistics up to the clock, from the candles. */
  ticker24h(m: MarketState): {
    open: number;
    high: number;
    low: number;
    close: number;
    volume: number;
    quoteVolume: number;
    openTime: number;
    trades: number;
  } {
    const from = this.clock - 86_400_000;
    const list = this.candles(m, m.intervalMs, from, undefined, 1_000_000);
    const c = list.filter((x) => x.time >= from);
    if (c.length === 0) {
      const p = m.price;
      return { open: p, high: p, low: p, close: p, volume: 0, quoteVolume: 0, openTime: from, trades: 0 };
    }
    return {
      open: c[0]!.open,
      high: Math.max(...c.map((x) => x.high)),
      low: Math.min(...c.map((x) => x.low)),
      close: c[c.length - 1]!.close,
      volume: c.reduce((s, x) => s + x.volume, 0),
      quoteVolume: c.reduce((s, x) => s + x.quoteVolume, 0),
      openTime: c[0]!.time,
      trades: c.reduce((s, x) => s + x.trades, 0),
    };
  }

  // ---------------------------------------------------------------- orders

  /** Makes the next order placement fail with this error (a fault). */
  rejectNextOrder(code: number, msg: string): void {
    this.rejectNext = { code, msg };
  }

  placeOrder(apiKey: string, req: PlaceOrderRequest): SimOrder {
    const acc = this.account(apiKey);
    return this.book1(acc, this.check(acc, req), undefined);
  }

  /**
   * An OCO order list (POST /api/v3/orderList/oco): two legs on one side for one quantity, one
   * above the market and one below. SELL: above LIMIT_MAKER, below STOP_LOSS or STOP_LOSS_LIMIT;
   * BUY: above STOP_LOSS or STOP_LOSS_LIMIT, below LIMIT_MAKER. The quantity is locked once for
   * both; when one leg triggers or fills, the other expires; cancelling a leg cancels the list.
   */
  placeOco(apiKey: string, req: PlaceOcoRequest): { list: OrderList; orders: SimOrder[] } {
    const acc = this.account(apiKey);
    const side = req.side;
    if (side !== 'BUY' && side !== 'SELL')
      throw side === undefined ? mandatory('side') : binanceError(-1117, 'Invalid side.');
    if (req.quantity === undefined) throw mandatory('quantity');
    const limitLeg = side === 'SELL' ? req.above : req.below;
    const stopLeg = side === 'SELL' ? req.below : req.above;
    const where = side === 'SELL' ? ['above', 'below'] : ['below', 'above'];
    if (limitLeg.type === undefined) throw mandatory(`${where[0]}Type`);
    if (stopLeg.type === undefined) throw mandatory(`${where[1]}Type`);
    if (limitLeg.type !== 'LIMIT_MAKER' || (stopLeg.type !== 'STOP_LOSS' && stopLeg.type !== 'STOP_LOSS_LIMIT'))
      throw binanceError(-1106, 'Unsupported order combination.');
    const listClientOrderId = req.listClientOrderId ?? `sim-list-${this.nextOrderListId}`;
    if (!CLIENT_ID_RE.test(listClientOrderId))
      throw binanceError(-1100, "Illegal characters found in parameter 'listClientOrderId'.");
    const leg = (l: OcoLegRequest): PlaceOrderRequest => ({
      symbol: req.symbol,
      side,
      type: l.type,
      timeInForce: l.timeInForce,
      quantity: req.quantity,
      quoteOrderQty: undefined,
      price: l.price,
      stopPrice: l.stopPrice,
      newClientOrderId: l.clientOrderId,
    });
    // Binance checks the prices' order first: SELL limit > last > stop, BUY limit < last < stop.
    const last = this.markets.get(req.symbol)?.price ?? Number.NaN;
    const [lp, sp] = [limitLeg.price, stopLeg.stopPrice];
    if (lp !== undefined && sp !== undefined && Number.isFinite(last)) {
      const ordered = side === 'SELL' ? lp > last && last > sp : lp < last && last < sp;
      if (!ordered) throw binanceError(-2010, 'The relationship of the prices for the orders is not correct.');
    }
    // Both legs are checked before either is booked: a list is placed whole or not at all.
    const limit = this.check(acc, leg(limitLeg));
    const stop = this.check(acc, leg(stopLeg));
    if (limit.clientOrderId === stop.clientOrderId) throw binanceError(-2010, 'Duplicate order sent.');
    const list: OrderList = {
      orderListId: this.nextOrderListId++,
      listClientOrderId,
      symbol: limit.m.id,
      legs: [],
      transactionTime: this.clock,
    };
    // Binance books the stop leg first; the quantity (or, buying, the limit's cost) is locked once.
    const first = side === 'SELL' ? stop : limit;
    const second = side === 'SELL' ? limit : stop;
    this.lists.push(list);
    const orders = [this.book1(acc, first, list, true), this.book1(acc, second, list, false)];
    return { list, orders };
  }

  /** Every check of a new order that does not change state (a rejection leaves nothing behind). */
  private check(acc: Account, req: PlaceOrderRequest): CheckedOrder {
    const m = this.markets.get(req.symbol);
    if (!m) throw binanceError(-1121, 'Invalid symbol.');
    const side = req.side as OrderSide;
    if (side !== 'BUY' && side !== 'SELL')
      throw req.side === undefined ? mandatory('side') : binanceError(-1117, 'Invalid side.');
    const type = req.type as OrderType;
    if (req.type === undefined) throw mandatory('type');
    if (
      !['LIMIT', 'MARKET', 'LIMIT_MAKER', 'STOP_LOSS', 'STOP_LOSS_LIMIT', 'TAKE_PROFIT', 'TAKE_PROFIT_LIMIT'].includes(
        type,
      )
    ) {
      throw binanceError(-1116, 'Invalid orderType.');
    }
    const isLimitLike = type === 'LIMIT' || type === 'STOP_LOSS_LIMIT' || type === 'TAKE_PROFIT_LIMIT';
    const isStop =
      type === 'STOP_LOSS' || type === 'STOP_LOSS_LIMIT' || type === 'TAKE_PROFIT' || type === 'TAKE_PROFIT_LIMIT';
    let tif: TimeInForce | undefined;
    if (isLimitLike) {
      if (req.timeInForce === undefined) throw mandatory('timeInForce');
      if (req.timeInForce !== 'GTC' && req.timeInForce !== 'IOC' && req.timeInForce !== 'FOK')
        throw binanceError(-1115, 'Invalid timeInForce.');
      tif = req.timeInForce;
    } else if (req.timeInForce !== undefined) {
      throw binanceError(-1106, "Parameter 'timeInForce' sent when not required.");
    }
    const needsPrice = isLimitLike || type === 'LIMIT_MAKER';
    if (needsPrice && req.price === undefined) throw mandatory('price');
    if (isStop && req.stopPrice === undefined) throw mandatory('stopPrice');
    if (type === 'MARKET') {
      if (req.quantity === undefined && req.quoteOrderQty === undefined) {
        throw binanceError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!");
      }
    } else if (req.quantity === undefined) throw mandatory('quantity');
    const clientOrderId = req.newClientOrderId ?? `sim-${this.nextOrderId}`;
    if (!CLIENT_ID_RE.test(clientOrderId)) {
      throw binanceError(
        -1100,
        "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
      );
    }
    if (!Number.isFinite(m.price)) throw binanceError(-1013, 'Market is closed.');

    const price = req.price ?? 0;
    const stopPrice = req.stopPrice ?? 0;
    if (needsPrice && (price <= 0 || !isMultipleOf(price, m.tickSize))) throw filterFailure('PRICE_FILTER');
    if (isStop && (stopPrice <= 0 || !isMultipleOf(stopPrice, m.tickSize))) throw filterFailure('PRICE_FILTER');
    const qty = req.quantity ?? 0;
    if (req.quantity !== undefined && (qty < m.minQty || !isMultipleOf(qty, m.stepSize)))
      throw filterFailure('LOT_SIZE');
    const refPrice = needsPrice ? price : m.price;
    const notional = req.quantity !== undefined ? qty * refPrice : (req.quoteOrderQty ?? 0);
    if (notional < m.minNotional) throw filterFailure('NOTIONAL');

    if (this.rejectNext) {
      const r = this.rejectNext;
      this.rejectNext = undefined;
      throw binanceError(r.code, r.msg);
    }
    if (acc.orders.some((r) => r.order.clientOrderId === clientOrderId && isOpen(r.order))) {
      throw binanceError(-2010, 'Duplicate order sent.');
    }
    if (type === 'LIMIT_MAKER' && this.isMarketable(m, side, price)) {
      throw binanceError(-2010, 'Order would immediately match and take.');
    }
    if (isStop && this.wouldTrigger(type, side, stopPrice, m.price)) {
      throw binanceError(-2010, 'Stop price would trigger immediately.');
    }

    return {
      m,
      side,
      type,
      tif,
      isStop,
      needsPrice,
      price,
      stopPrice,
      qty,
      quantity: req.quantity,
      quoteOrderQty: req.quoteOrderQty,
      clientOrderId,
    };
  }

  /** Books a checked order: locks funds (unless a list's first leg holds the lock), then matches. */
  private book1(acc: Account, c: CheckedOrder, list: OrderList | undefined, lock = true): SimOrder {
    const { m, side, type, tif, isStop, needsPrice, price, stopPrice, qty, clientOrderId } = c;
    const apiKey = acc.apiKey;
    const req = { quantity: c.quantity, quoteOrderQty: c.quoteOrderQty };
    // Funds: limit-like buys lock price x qty of quote, sells lock qty of base.
    let lockedAsset = side === 'BUY' ? m.quote : m.base;
    let lockAmount = 0;
    if (side === 'SELL') lockAmount = qty;
    else if (needsPrice) lockAmount = r8(price * qty);
    else if (type === 'MARKET') {
      const cost = req.quoteOrderQty ?? this.walkCost(m, 'BUY', qty);
      if (this.bal(acc, m.quote).free + 1e-12 < cost) throw insufficient();
      lockedAsset = m.quote;
    }
    if (!lock) lockAmount = 0;
    const b = this.bal(acc, lockedAsset);
    if (b.free + 1e-12 < lockAmount) throw insufficient();
    b.free = r8(b.free - lockAmount);
    b.locked = r8(b.locked + lockAmount);

    const now = this.clock;
    const order: SimOrder = {
      symbol: m.id,
      orderId: this.nextOrderId++,
      clientOrderId,
      orderListId: list ? list.orderListId : -1,
      side,
      type,
      timeInForce: tif,
      price,
      stopPrice,
      origQty: qty,
      origQuoteOrderQty: req.quantity === undefined ? (req.quoteOrderQty ?? 0) : 0,
      executedQty: 0,
      cummulativeQuoteQty: 0,
      status: 'NEW',
      isWorking: !isStop,
      time: now,
      updateTime: now,
      workingTime: isStop ? -1 : now,
      fills: [],
    };
    const rec: OrderRecord = { order, account: acc, market: m, lockedLeft: lockAmount, lockedAsset, seq: this.seq++ };
    if (list) {
      rec.list = list;
      list.legs.push(rec);
    }
    acc.orders.push(rec);
    this.orders.set(order.orderId, rec);
    this.emit({ type: 'execution', apiKey, order: { ...order }, execType: 'NEW' });
    if (lockAmount > 0) this.emit({ type: 'balance', apiKey, assets: [lockedAsset] });

    if (isStop) {
      m.open.push(rec);
    } else if (type === 'MARKET') {
      this.takerFill(rec, m.price, undefined, req.quoteOrderQty);
      // Binance reports a quote-sized market order's origQty as the quantity it bought.
      if (order.origQuoteOrderQty > 0) order.origQty = order.executedQty;
      if (isOpen(order)) this.finish(rec, 'expire');
    } else {
      if (type === 'LIMIT' && this.isMarketable(m, side, price)) {
        if (tif === 'FOK' && this.available(m, side, price) + 1e-12 < qty) {
          this.finish(rec, 'expire');
          return { ...order, fills: [...order.fills] };
        }
        this.takerFill(rec, m.price, price, undefined);
      }
      if (isOpen(order)) {
        if (tif === 'IOC' || tif === 'FOK') this.finish(rec, 'expire');
        else m.open.push(rec);
      }
    }
    return { ...order, fills: [...order.fills] };
  }

  cancelOrder(
    apiKey: string,
    symbolId: string,
    orderId: number | undefined,
    origClientOrderId: string | undefined,
    newClientOrderId: string | undefined,
  ): SimOrder {
    const rec = this.findRecord(apiKey, symbolId, orderId, origClientOrderId, true);
    if (!rec || !isOpen(rec.order)) throw binanceError(-2011, 'Unknown order sent.');
    // Cancelling one leg of an OCO cancels the whole list.
    for (const leg of rec.list ? rec.list.legs : [rec])
      if (isOpen(leg.order)) this.finish(leg, 'cancel', newClientOrderId ?? `sim-cancel-${leg.order.orderId}`);
    return { ...rec.order, fills: [...rec.order.fills] };
  }

  queryOrder(
    apiKey: string,
    symbolId: string,
    orderId: number | undefined,
    origClientOrderId: string | undefined,
  ): SimOrder {
    const rec = this.findRecord(apiKey, symbolId, orderId, origClientOrderId, false);
    if (!rec) throw binanceError(-2013, 'Order does not exist.');
    return { ...rec.order, fills: [...rec.order.fills] };
  }

  openOrders(apiKey: string, symbolId?: string): SimOrder[] {
    return this.ordersOf(apiKey, symbolId).filter(isOpen);
  }

  /** Fills every open order of the account at its own price, ignoring the path (a fault). */
  forceFillOpenOrders(apiKey: string): number {
    const acc = this.account(apiKey);
    let n = 0;
    for (const rec of acc.orders.filter((r) => isOpen(r.order))) {
      if (!isOpen(rec.order)) continue; // the other leg of an OCO that has just filled
      const o = rec.order;
      const px = o.price > 0 ? o.price : rec.market.price;
      this.applyFill(rec, roundTo(o.origQty - o.executedQty, decimalsOf(rec.market.stepSize)), px, true);
      n++;
    }
    return n;
  }

  private findRecord(
    apiKey: string,
    symbolId: string,
    orderId: number | undefined,
    clientId: string | undefined,
    openFirst: boolean,
  ): OrderRecord | undefined {
    const acc = this.account(apiKey);
    if (orderId !== undefined) {
      const rec = this.orders.get(orderId);
      return rec && rec.account === acc && rec.market.id === symbolId ? rec : undefined;
    }
    const matches = acc.orders.filter((r) => r.market.id === symbolId && r.order.clientOrderId === clientId);
    if (openFirst) {
      const open = matches.filter((r) => isOpen(r.order));
      if (open.length > 0) return open[open.length - 1];
    }
    return matches[matches.length - 1];
  }

  private isMarketable(m: MarketState, side: OrderSide, price: number): boolean {
    return side === 'BUY' ? price >= this.bestAsk(m) : price <= this.bestBid(m);
  }

  /** STOP_LOSS: buy triggers at price >= stop, sell at <= stop; TAKE_PROFIT the other way round. */
  private wouldTrigger(type: OrderType, side: OrderSide, stop: number, price: number): boolean {
    const stopLoss = type === 'STOP_LOSS' || type === 'STOP_LOSS_LIMIT';
    const triggersUp = (side === 'BUY') === stopLoss;
    return triggersUp ? price >= stop : price <= stop;
  }

  /** Quantity the book offers to `side` up to a limit price. */
  private available(m: MarketState, side: OrderSide, limit: number): number {
    const book = this.book(m);
    const levels = side === 'BUY' ? book.asks : book.bids;
    let q = 0;
    for (const [p, lq] of levels) {
      if (side === 'BUY' ? p > limit : p < limit) break;
      q += lq;
    }
    return q;
  }

  private walkCost(m: MarketState, side: OrderSide, qty: number): number {
    const book = this.book(m);
    let left = qty;
    let cost = 0;
    for (const [p, lq] of side === 'BUY' ? book.asks : book.bids) {
      const take = Math.min(left, lq);
      cost += take * p;
      left -= take;
      if (left <= 1e-12) break;
    }
    return r8(cost);
  }

  /** Takes liquidity from the synthetic book around `ref`, up to `limit` (if any). */
  private takerFill(rec: OrderRecord, ref: number, limit: number | undefined, quoteBudget: number | undefined): void {
    const m = rec.market;
    const o = rec.order;
    const book = this.book(m, this.bookLevels, ref);
    const levels = o.side === 'BUY' ? book.asks : book.bids;
    let quoteLeft = quoteBudget;
    for (const [p, lq] of levels) {
      if (limit !== undefined && (o.side === 'BUY' ? p > limit : p < limit)) break;
      let want =
        quoteLeft !== undefined
          ? floorToStep(quoteLeft / p, m.stepSize)
          : roundTo(o.origQty - o.executedQty, decimalsOf(m.stepSize));
      want = Math.min(want, lq);
      if (want <= 0) break;
      if (o.side === 'BUY') {
        const free = this.bal(rec.account, m.quote).free + (rec.lockedAsset === m.quote ? rec.lockedLeft : 0);
        want = Math.min(want, floorToStep(free / p, m.stepSize));
        if (want <= 0) break;
      }
      this.applyFill(rec, want, p, false);
      if (quoteLeft !== undefined) quoteLeft -= want * p;
      if (!isOpen(o)) break;
    }
  }

  /** Moves the market from price a to b: triggers stops, then fills resting orders crossed. */
  private sweep(m: MarketState, a: number, b: number, continuous: boolean): void {
    const down = (x: number): boolean => (b < a && b <= x) || (b >= a && x > a);
    const up = (x: number): boolean => (b > a && b >= x) || (b <= a && x < a);
    const lo = Math.min(a, b);
    const hi = Math.max(a, b);
    const triggered = m.open
      .filter((r) => !r.order.isWorking)
      .filter((r) => {
        const { type, side, stopPrice } = r.order;
        const stopLoss = type === 'STOP_LOSS' || type === 'STOP_LOSS_LIMIT';
        const triggersUp = (side === 'BUY') === stopLoss;
        return triggersUp ? up(stopPrice) : down(stopPrice);
      })
      .sort(
        (x, y) =>
          (b >= a ? x.order.stopPrice - y.order.stopPrice : y.order.stopPrice - x.order.stopPrice) || x.seq - y.seq,
      );
    for (const rec of triggered) {
      const o = rec.order;
      const at = continuous ? Math.min(hi, Math.max(lo, o.stopPrice)) : b;
      this.collapseList(rec);
      o.isWorking = true;
      o.workingTime = this.clock;
      o.updateTime = this.clock;
      if (o.type === 'STOP_LOSS' || o.type === 'TAKE_PROFIT') {
        this.takerFill(rec, at, undefined, undefined);
        if (isOpen(o)) this.finish(rec, 'expire');
      } else {
        const marketable = o.side === 'BUY' ? o.price >= this.bestAsk(m, at) : o.price <= this.bestBid(m, at);
        if (marketable) this.takerFill(rec, at, o.price, undefined);
        if (isOpen(o) && (o.timeInForce === 'IOC' || o.timeInForce === 'FOK')) this.finish(rec, 'expire');
      }
    }
    const resting = m.open.filter((r) => r.order.isWorking && isOpen(r.order));
    const buys = resting
      .filter((r) => r.order.side === 'BUY' && down(r.order.price))
      .sort((x, y) => y.order.price - x.order.price || x.seq - y.seq);
    const sells = resting
      .filter((r) => r.order.side === 'SELL' && up(r.order.price))
      .sort((x, y) => x.order.price - y.order.price || x.seq - y.seq);
    for (const rec of [...buys, ...sells]) {
      const o = rec.order;
      const left = roundTo(o.origQty - o.executedQty, decimalsOf(m.stepSize));
      const budget = o.side === 'BUY' ? m.buyCap - m.buyUsed : m.sellCap - m.sellUsed;
      const q = floorToStep(Math.min(left, budget), m.stepSize);
      if (q > 0) this.applyFill(rec, q, o.price, true);
    }
    m.open = m.open.filter((r) => isOpen(r.order));
  }

  /** Books one fill: balances, commission (Binance: in the asset received), events. */
  private applyFill(rec: OrderRecord, qty: number, price: number, isMaker: boolean): void {
    this.collapseList(rec);
    const m = rec.market;
    const o = rec.order;
    const acc = rec.account;
    const quoteQty = r8(qty * price);
    const rate = isMaker ? this.fees.maker : this.fees.taker;
    const base = this.bal(acc, m.base);
    const quote = this.bal(acc, m.quote);
    let commission: number;
    let commissionAsset: string;
    if (o.side === 'BUY') {
      const release =
        rec.lockedAsset === m.quote ? Math.min(rec.lockedLeft, o.price > 0 ? r8(qty * o.price) : quoteQty) : 0;
      quote.locked = r8(quote.locked - release);
      rec.lockedLeft = r8(rec.lockedLeft - release);
      quote.free = r8(quote.free + release - quoteQty);
      commission = r8(qty * rate);
      commissionAsset = m.base;
      base.free = r8(base.free + qty - commission);
      m.buyUsed += qty;
    } else {
      const release = Math.min(rec.lockedLeft, qty);
      base.locked = r8(base.locked - release);
      rec.lockedLeft = r8(rec.lockedLeft - release);
      base.free = r8(base.free + release - qty);
      commission = r8(quoteQty * rate);
      commissionAsset = m.quote;
      quote.free = r8(quote.free + quoteQty - commission);
      m.sellUsed += qty;
    }
    const fill: SimFill = {
      tradeId: this.nextTradeId++,
      price,
      qty,
      commission,
      commissionAsset,
      isMaker,
      time: this.clock,
    };
    o.executedQty = roundTo(o.executedQty + qty, decimalsOf(m.stepSize));
    o.cummulativeQuoteQty = r8(o.cummulativeQuoteQty + quoteQty);
    o.fills.push(fill);
    o.updateTime = this.clock;
    const full = o.executedQty + 1e-12 >= o.origQty && o.origQty > 0;
    const quoteDone = o.origQuoteOrderQty > 0 && o.origQuoteOrderQty - o.cummulativeQuoteQty < price * m.stepSize;
    o.status = nextStatus(o.status, full || quoteDone ? 'fill' : 'partialFill');
    acc.trades.push({
      symbol: m.id,
      id: fill.tradeId,
      orderId: o.orderId,
      price,
      qty,
      quoteQty,
      commission,
      commissionAsset,
      time: this.clock,
      isBuyer: o.side === 'BUY',
      isMaker,
    });
    this.publishTrade(m, price, qty, (o.side === 'BUY') === isMaker);
    this.emit({ type: 'execution', apiKey: acc.apiKey, order: { ...o }, execType: 'TRADE', fill });
    if (!isOpen(o)) this.release(rec);
    this.emit({ type: 'balance', apiKey: acc.apiKey, assets: [m.base, m.quote] });
  }

  private finish(
    rec: OrderRecord,
    event: Extract<OrderEvent, 'cancel' | 'expire'>,
    cancelClientOrderId?: string,
  ): void {
    const o = rec.order;
    o.status = nextStatus(o.status, event);
    o.updateTime = this.clock;
    this.release(rec);
    const m = rec.market;
    m.open = m.open.filter((r) => r !== rec);
    const base = { type: 'execution', apiKey: rec.account.apiKey, order: { ...o } } as const;
    if (event === 'cancel')
      this.emit({ ...base, execType: 'CANCELED', ...(cancelClientOrderId ? { cancelClientOrderId } : {}) });
    else this.emit({ ...base, execType: 'EXPIRED' });
    this.emit({ type: 'balance', apiKey: rec.account.apiKey, assets: [m.base, m.quote] });
  }

  /**
   * One leg of an OCO triggers or fills: the other legs expire, and the list's lock (held by the
   * leg booked first) moves to this one.
   */
  private collapseList(rec: OrderRecord): void {
    const list = rec.list;
    if (!list) return;
    rec.list = undefined;
    for (const leg of list.legs) {
      if (leg === rec) continue;
      leg.list = undefined;
      if (leg.lockedLeft > 0 && rec.lockedLeft === 0) {
        rec.lockedLeft = leg.lockedLeft;
        rec.lockedAsset = leg.lockedAsset;
        leg.lockedLeft = 0;
      }
      if (isOpen(leg.order)) this.finish(leg, 'expire');
    }
  }

  /** The OCO lists of an account, by id or client id (GET /api/v3/orderList). */
  orderList(apiKey: string, orderListId: number | undefined, listClientOrderId: string | undefined): OrderList {
    const acc = this.account(apiKey);
    const list = this.lists.find(
      (l) =>
        l.legs[0]?.account === acc &&
        (orderListId !== undefined ? l.orderListId === orderListId : l.listClientOrderId === listClientOrderId),
    );
    if (!list) throw binanceError(-2018, 'Order list does not exist.');
    return list;
  }

  private release(rec: OrderRecord): void {
    if (rec.lockedLeft <= 0) return;
    const b = this.bal(rec.account, rec.lockedAsset);
    b.locked = r8(b.locked - rec.lockedLeft);
    b.free = r8(b.free + rec.lockedLeft);
    rec.lockedLeft = 0;
  }
}

export function isOpen(o: SimOrder): boolean {
  return o.status === 'NEW' || o.status === 'PARTIALLY_FILLED';
}

function mandatory(name: string): SimError {
  return binanceError(-1102, `Mandatory parameter '${name}' was not sent, was empty/null, or malformed.`);
}

function filterFailure(filter: string): SimError {
  return binanceError(-1013, `Filter failure: ${filter}`);
}

function insufficient(): SimError {
  return binanceError(-2010, 'Account has insufficient balance for requested action.');
}
