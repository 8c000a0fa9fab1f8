import {
  type Bar,
  type ClientOrderId,
  type ExpiryCause,
  type Fill,
  type HedgeSide,
  type OrderEventKind,
  type OrderState,
  type OrderStatus,
  transition,
  VenueOrderId,
} from '@keel/core';
import type { OHLCV, Order, Trade } from 'ccxt';

/** A ccxt candle row `[time, open, high, low, close, volume]` as a Bar (no quote volume, trades). */
export function barFromOhlcv(c: OHLCV): Bar {
  return {
    time: c[0] as number,
    open: c[1] as number,
    high: c[2] as number,
    low: c[3] as number,
    close: c[4] as number,
    volume: c[5] as number,
    quoteVolume: Number.NaN,
    trades: Number.NaN,
    takerBuyVolume: Number.NaN,
  };
}

/** An order as the exchange sees it, in Keel's terms. */
export interface ExchangeOrder {
  readonly clientOrderId: string | undefined;
  readonly venueOrderId: string;
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  readonly type: string;
  readonly status: OrderStatus;
  readonly amount: number;
  readonly filled: number;
  /** NaN before the first fill. */
  readonly avgPrice: number;
  readonly price: number;
  /** Stop / take-profit orders: the trigger price; NaN for plain orders. */
  readonly triggerPrice: number;
  /**
   * What the exchange reports the order keeps besides its price: ccxt's timeInForce (`PO` for
   * Binance's GTX, the post-only one), post-only, reduce-only, a hedge-mode order's side and a GTD
   * order's expiry (Binance's goodTillDate; NaN without one). An order taken over from the exchange
   * (adopted after a restart) keeps them.
   */
  readonly timeInForce: string | undefined;
  readonly postOnly: boolean;
  readonly reduceOnly: boolean;
  readonly positionSide: HedgeSide | undefined;
  readonly expireAt: number;
  /**
   * Why the exchange expired it, where it says (Binance: the status EXPIRED_IN_MATCH, spot's
   * executionReport `eR`, USDⓈ-M's ORDER_TRADE_UPDATE `er`); undefined where it does not. The
   * venue names the rest from the order itself (`expiryReason` of @keel/core).
   */
  readonly expiry: { readonly cause: ExpiryCause; readonly detail: string } | undefined;
  readonly fee: number;
  readonly feeAsset: string | undefined;
  readonly timestamp: number;
  readonly updatedAt: number;
}

/** ccxt status -> Keel status. A cancelled order keeps `cancelled` even if it had partial fills. */
export function mapStatus(status: string | undefined, filled: number, amount: number): OrderStatus {
  switch (status) {
    case 'open':
      return filled > 0 ? 'partially-filled' : 'accepted';
    case 'closed':
      return filled > 0 && filled < amount ? 'partially-filled' : 'filled';
    case 'canceled':
    case 'cancelled':
      return 'cancelled';
    case 'expired':
      return 'expired';
    case 'rejected':
      return 'rejected';
    default:
      throw new Error(`Invariant violated: unknown ccxt order status "${status}"`);
  }
}

const num = (x: number | undefined | null, dflt = 0): number =>
  x === undefined || x === null || Number.isNaN(x) ? dflt : x;

/** Binance's positionSide: LONG or SHORT in hedge mode; BOTH (one-way) and spot have none. */
function hedgeSide(info: Record<string, unknown> | undefined): HedgeSide | undefined {
  const s = info?.['positionSide'];
  return s === 'LONG' ? 'long' : s === 'SHORT' ? 'short' : undefined;
}

/** Binance spot's expiry reasons (executionReport `eR`) that have a cause of their own. */
const SPOT_EXPIRY: Readonly<Record<string, ExpiryCause>> = {
  UNFILLED_IOC_QUANTITY_EXPIRED: 'ioc',
  UNFILLED_FOK_ORDER_EXPIRED: 'fok',
  INSUFFICIENT_LIQUIDITY: 'market',
};

/** Binance USDⓈ-M's expiry reasons (ORDER_TRADE_UPDATE `er`, a number) that have a cause of their own. */
const FUTURES_EXPIRY: Readonly<Record<string, ExpiryCause>> = {
  '1': 'self-trade',
  '2': 'ioc',
  '3': 'self-trade',
  '4': 'reduce-only',
  '5': 'liquidation',
  '9': 'market',
  '10': 'fok',
  '11': 'post-only',
};

/** What Binance says about why it expired an order (see ExchangeOrder.expiry). */
export function binanceExpiry(info: Record<string, unknown> | undefined): ExchangeOrder['expiry'] {
  if (info === undefined) return undefined;
  const status = info['X'] ?? info['status'];
  if (status === 'EXPIRED_IN_MATCH' || info['x'] === 'TRADE_PREVENTION')
    return { cause: 'self-trade', detail: 'EXPIRED_IN_MATCH' };
  const spot = info['eR'];
  if (typeof spot === 'string' && spot !== '') return { cause: SPOT_EXPIRY[spot] ?? 'exchange', detail: spot };
  const fut = info['er'];
  if (fut !== undefined && fut !== null && String(fut) !== '0' && String(fut) !== '')
    return { cause: FUTURES_EXPIRY[String(fut)] ?? 'exchange', detail: `expiry reason ${String(fut)}` };
  return undefined;
}

/**
 * Binance USDⓈ-M's conditional (algo) order that has triggered and whose order now works in the
 * book (algo status TRIGGERING or TRIGGERED; REST `algoStatus`, ALGO_UPDATE `X`). ccxt calls it
 * closed, with nothing filled; it is still working: its fills and end come with the book's order.
 */
function algoWorking(info: Record<string, unknown> | undefined): boolean {
  const s = info?.['algoStatus'] ?? (info?.['aid'] !== undefined ? info['X'] : undefined);
  return s === 'TRIGGERING' || s === 'TRIGGERED';
}

export function fromCcxtOrder(o: Order): ExchangeOrder {
  if (!o.id) throw new Error('Invariant violated: ccxt order without an id');
  const amount = num(o.amount);
  // An ALGO_UPDATE says what its order in the book has filled (`aq`, at `ap`); ccxt reads neither.
  const aq = o.info?.['aid'] !== undefined ? Number(o.info['aq']) : Number.NaN;
  const filled = Number.isFinite(aq) ? aq : num(o.filled);
  const average = Number.isFinite(aq) ? Number(o.info['ap']) : o.average;
  const status = algoWorking(o.info) ? 'open' : (o.status ?? undefined);
  return {
    clientOrderId: o.clientOrderId ?? undefined,
    venueOrderId: o.id,
    symbol: o.symbol ?? '',
    side: o.side === 'sell' ? 'sell' : 'buy',
    type: o.type ?? 'unknown',
    status: mapStatus(status, filled, amount),
    amount,
    filled,
    avgPrice: filled > 0 ? num(average, Number.NaN) : Number.NaN,
    price: num(o.price, Number.NaN),
    triggerPrice: num(o.triggerPrice, Number.NaN),
    timeInForce: o.timeInForce ?? undefined,
    postOnly: o.postOnly === true,
    reduceOnly: o.reduceOnly === true,
    positionSide: hedgeSide(o.info),
    expireAt: Number(o.info?.['goodTillDate']) > 0 ? Number(o.info['goodTillDate']) : Number.NaN,
    expiry: binanceExpiry(o.info),
    fee: num(o.fee?.cost),
    feeAsset: o.fee?.currency ?? undefined,
    timestamp: num(o.timestamp),
    updatedAt: num(o.lastUpdateTimestamp ?? o.lastTradeTimestamp ?? o.timestamp),
  };
}

/**
 * A ccxt trade as a core Fill. Binance's REST trades carry the venue order id only, so the caller
 * resolves it to our client id; undefined means "not one of ours".
 */
export function fromCcxtTrade(
  t: Trade,
  clientIdOf: (venueOrderId: string) => ClientOrderId | undefined,
): Fill | undefined {
  if (!t.id || !t.order) return undefined;
  const orderId = clientIdOf(t.order);
  if (orderId === undefined) return undefined;
  return {
    orderId,
    tradeId: t.id,
    symbol: t.symbol ?? '',
    side: t.side === 'sell' ? 'sell' : 'buy',
    price: num(t.price),
    amount: num(t.amount),
    fee: num(t.fee?.cost),
    feeAsset: t.fee?.currency ?? '',
    liquidity: t.takerOrMaker === 'maker' ? 'maker' : 'taker',
    time: num(t.timestamp),
  };
}

const EVENT_FOR: Record<OrderStatus, OrderEventKind | null> = {
  initialized: null,
  denied: null,
  submitted: 'submit',
  accepted: 'accept',
  rejected: 'reject',
  'partially-filled': 'fill-partial',
  'pending-cancel': 'cancel-request',
  filled: 'fill',
  cancelled: 'cancel',
  expired: 'expire',
};

/**
 * Applies the exchange's view of an order to our state through the lifecycle table. Returns a new
 * state (the input is not mutated), or the same object when nothing changed. An exchange status
 * the table forbids from ours (e.g. `filled` after we saw `cancelled`) throws: it is a bug or a
 * reconciliation conflict to look at, not a state to guess.
 */
export function applyExchangeOrder(state: OrderState, x: ExchangeOrder, now: number): OrderState {
  let status = state.status;
  if (x.status !== status) {
    if (status === 'initialized') status = transition(status, 'submit', 0, state.request.id);
    if (x.status !== status) {
      // Fills seen on an order we asked to cancel keep it pending-cancel until the cancel lands.
      const ev = EVENT_FOR[x.status];
      if (ev === null)
        throw new Error(`Invariant violated: exchange reported status ${x.status} for ${state.request.id}`);
      if (!(status === 'pending-cancel' && x.status === 'accepted'))
        status = transition(status, ev, x.filled, state.request.id);
    }
  }
  const changed =
    status !== state.status ||
    x.filled !== state.filled ||
    x.fee !== state.fee ||
    (x.venueOrderId !== state.venueOrderId && x.venueOrderId !== undefined) ||
    !(Object.is(x.avgPrice, state.avgPrice) || x.filled === state.filled);
  if (!changed) return state;
  return {
    ...state,
    status,
    filled: x.filled,
    avgPrice: x.filled > 0 ? x.avgPrice : state.avgPrice,
    fee: x.fee,
    venueOrderId: VenueOrderId(x.venueOrderId),
    updatedAt: Math.max(state.updatedAt, x.updatedAt || now),
  };
}
