/**
 * The simulated exchange's internal model: markets as they are replayed, orders as they are held,
 * and the events through which everything observable leaves the exchange (the REST and WS layers
 * turn them into Binance shapes).
 */
import type { SimBar, SimFill, SimOrder } from '../types.ts';
import type { FuturesAccountEvent } from './futures/model.ts';

/** A market's static description: symbol, filters and the candles it replays. */
export interface MarketSpec {
  /** Unified symbol, `BTC/USDT`. */
  symbol: string;
  /** Binance id, `BTCUSDT`. */
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

/** A candle as served by klines and kline streams, possibly still open. */
export interface Candle extends SimBar {
  quoteVolume: number;
  trades: number;
  closed: boolean;
}

/** A public trade on the market's tape (the replayed path's ticks and the accounts' fills). */
export interface PublicTrade {
  id: number;
  price: number;
  qty: number;
  time: number;
  isBuyerMaker: boolean;
}

/** One of an account's own trades (GET /api/v3/myTrades). */
export interface AccountTrade {
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

/**
 * What the sim's own orders may still take from the current bar, per side: `participation x bar
 * volume`, shared by all accounts and renewed with each bar. The synthetic book is sized from it.
 */
export interface BarLiquidity {
  buyCap: number;
  buyUsed: number;
  sellCap: number;
  sellUsed: number;
}

/** Where the next replay event of a bar is: 0..3 a price-path tick, 4 its close, 5 closed. */
export const BAR_CLOSE_PHASE = 4;
export const BAR_CLOSED_PHASE = 5;

/** A market as the exchange replays it: the static description plus the replay state. */
export interface MarketState extends MarketSpec {
  /** Index of the bar being replayed, or -1 before the first. */
  barIndex: number;
  /** Next event of the current bar (see BAR_CLOSE_PHASE). */
  phase: number;
  /** Last traded price; NaN before the first bar. */
  price: number;
  /** The current bar as replayed so far. */
  partial: Candle | undefined;
  liquidity: BarLiquidity;
  /** Book update id (the depth stream's `u`, REST depth's `lastUpdateId`). */
  updateId: number;
  nextPublicTradeId: number;
  /** The latest public trades, oldest first (a bounded ring). */
  trades: PublicTrade[];
}

/** TRADE_PREVENTION: expired by self-trade prevention. */
export type ExecType = 'NEW' | 'TRADE' | 'CANCELED' | 'EXPIRED' | 'TRADE_PREVENTION';

export type ExchangeEvent =
  | {
      type: 'execution';
      apiKey: string;
      order: SimOrder;
      execType: ExecType;
      fill?: SimFill;
      cancelClientOrderId?: string;
    }
  | { type: 'balance'; apiKey: string; assets: string[] }
  /** An OCO list was placed, or ended (Binance's `listStatus` user-data event). */
  | { type: 'listStatus'; apiKey: string; list: OrderList }
  | { type: 'trade'; symbol: string; trade: PublicTrade }
  | { type: 'tick'; symbol: string }
  | { type: 'barClose'; symbol: string; bar: SimBar }
  | FuturesAccountEvent;

export type ExchangeListener = (e: ExchangeEvent) => void;

/** What an order has locked of its account's funds and not yet spent or released. */
export interface OrderLock {
  asset: string;
  /** Amount still locked for this order. */
  left: number;
}

/** An order as the matching engine holds it. */
export interface OrderRecord {
  order: SimOrder;
  apiKey: string;
  market: MarketState;
  lock: OrderLock;
  /** Booking sequence: time priority among orders at one price. */
  seq: number;
  /** The OCO list this order is a leg of, while the list is live. */
  list: OrderList | undefined;
  /** Where a stop triggered during the current move joined the book (see crossedInPriority). */
  restingFrom?: number | undefined;
}

/** An OCO order list: two legs on one side; the first to trigger or fill expires the other. */
export interface OrderList {
  orderListId: number;
  listClientOrderId: string;
  apiKey: string;
  symbol: string;
  legs: OrderRecord[];
  transactionTime: number;
}

/** Binance's rule for client order ids (newClientOrderId, listClientOrderId, leg ids). */
export const CLIENT_ID_PATTERN = /^[.A-Z:/a-z0-9_-]{1,36}$/;

export function isOpen(o: SimOrder): boolean {
  return o.status === 'NEW' || o.status === 'PARTIALLY_FILLED';
}

/** A copy of an order safe to hand out (the engine keeps mutating its own). */
export function orderSnapshot(o: SimOrder): SimOrder {
  return { ...o, fills: [...o.fills] };
}
