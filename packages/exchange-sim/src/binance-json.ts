/**
 * The JSON shapes Binance sends, built from the exchange's model: orders, trades, candles and
 * order lists for REST and the WebSocket API, and the user-data and kline stream events. Decimals
 * are strings with 8 places, times UTC ms, as Binance prints them.
 */
import { type AccountTrade, type Candle, isOpen, type OrderList, type PublicTrade } from './exchange/model.ts';
import { binanceDecimal } from './num.ts';
import type { SimFill, SimOrder } from './types.ts';

/** The sim applies no self-trade prevention and reports Binance's default mode. */
const STP_MODE = 'EXPIRE_MAKER';

/** The fields every order answer carries: what was asked and where it stands. */
function orderState(o: SimOrder) {
  return {
    price: binanceDecimal(o.price),
    origQty: binanceDecimal(o.origQty),
    executedQty: binanceDecimal(o.executedQty),
    cummulativeQuoteQty: binanceDecimal(o.cummulativeQuoteQty),
    status: o.status,
    timeInForce: o.timeInForce ?? 'GTC',
    type: o.type,
    side: o.side,
  };
}

export function orderJson(o: SimOrder): unknown {
  return {
    symbol: o.symbol,
    orderId: o.orderId,
    orderListId: o.orderListId,
    clientOrderId: o.clientOrderId,
    ...orderState(o),
    stopPrice: binanceDecimal(o.stopPrice),
    icebergQty: binanceDecimal(0),
    time: o.time,
    updateTime: o.updateTime,
    isWorking: o.isWorking,
    workingTime: o.workingTime,
    origQuoteOrderQty: binanceDecimal(o.origQuoteOrderQty),
    selfTradePreventionMode: STP_MODE,
  };
}

/** POST order's answer at the three `newOrderRespType` levels. */
export function newOrderJson(o: SimOrder, respType: string): unknown {
  const ack = {
    symbol: o.symbol,
    orderId: o.orderId,
    orderListId: o.orderListId,
    clientOrderId: o.clientOrderId,
    transactTime: o.time,
  };
  if (respType === 'ACK') return ack;
  const result = {
    ...ack,
    ...orderState(o),
    origQuoteOrderQty: binanceDecimal(o.origQuoteOrderQty),
    ...(o.stopPrice > 0 ? { stopPrice: binanceDecimal(o.stopPrice) } : {}),
    workingTime: o.workingTime,
    selfTradePreventionMode: STP_MODE,
  };
  if (respType === 'RESULT') return result;
  return {
    ...result,
    fills: o.fills.map((f) => ({
      price: binanceDecimal(f.price),
      qty: binanceDecimal(f.qty),
      commission: binanceDecimal(f.commission),
      commissionAsset: f.commissionAsset,
      tradeId: f.tradeId,
    })),
  };
}

export function cancelJson(o: SimOrder, newClientOrderId: string): unknown {
  return {
    symbol: o.symbol,
    origClientOrderId: o.clientOrderId,
    orderId: o.orderId,
    orderListId: o.orderListId,
    clientOrderId: newClientOrderId,
    transactTime: o.updateTime,
    ...orderState(o),
    ...(o.stopPrice > 0 ? { stopPrice: binanceDecimal(o.stopPrice) } : {}),
    selfTradePreventionMode: STP_MODE,
  };
}

/** An OCO list's status: executing while a leg is open, all done once none is. */
function listState(list: OrderList): { listStatusType: string; listOrderStatus: string } {
  const done = list.legs.every((l) => !isOpen(l.order));
  return { listStatusType: done ? 'ALL_DONE' : 'EXEC_STARTED', listOrderStatus: done ? 'ALL_DONE' : 'EXECUTING' };
}

/** An OCO list as Binance returns it (with the legs' full reports when just placed or cancelled). */
export function orderListJson(list: OrderList, withReports: boolean): unknown {
  return {
    orderListId: list.orderListId,
    contingencyType: 'OCO',
    ...listState(list),
    listClientOrderId: list.listClientOrderId,
    transactionTime: list.transactionTime,
    symbol: list.symbol,
    orders: list.legs.map((l) => ({
      symbol: l.order.symbol,
      orderId: l.order.orderId,
      clientOrderId: l.order.clientOrderId,
    })),
    ...(withReports ? { orderReports: list.legs.map((l) => orderJson(l.order)) } : {}),
  };
}

/** Binance's `listStatus` user-data event: an OCO list placed (EXECUTING) or ended (ALL_DONE). */
export function listStatusEvent(list: OrderList, eventTime: number): unknown {
  const { listStatusType, listOrderStatus } = listState(list);
  return {
    e: 'listStatus',
    E: eventTime,
    s: list.symbol,
    g: list.orderListId,
    c: 'OCO',
    l: listStatusType,
    L: listOrderStatus,
    r: 'NONE',
    C: list.listClientOrderId,
    T: eventTime,
    O: list.legs.map((l) => ({ s: l.order.symbol, i: l.order.orderId, c: l.order.clientOrderId })),
  };
}

export function accountTradeJson(t: AccountTrade): unknown {
  return {
    symbol: t.symbol,
    id: t.id,
    orderId: t.orderId,
    orderListId: -1,
    price: binanceDecimal(t.price),
    qty: binanceDecimal(t.qty),
    quoteQty: binanceDecimal(t.quoteQty),
    commission: binanceDecimal(t.commission),
    commissionAsset: t.commissionAsset,
    time: t.time,
    isBuyer: t.isBuyer,
    isMaker: t.isMaker,
    isBestMatch: true,
  };
}

/** A public trade as `trades`, `historicalTrades` and the WS API's `trades.*` list it. */
export function publicTradeJson(t: PublicTrade): unknown {
  return {
    id: t.id,
    price: binanceDecimal(t.price),
    qty: binanceDecimal(t.qty),
    quoteQty: binanceDecimal(t.price * t.qty),
    time: t.time,
    isBuyerMaker: t.isBuyerMaker,
    isBestMatch: true,
  };
}

/** An aggregate trade (one sim trade each) as REST `aggTrades` and the `@aggTrade` stream show it. */
export function aggTradeJson(t: PublicTrade): {
  a: number;
  p: string;
  q: string;
  f: number;
  l: number;
  T: number;
  m: boolean;
  M: true;
} {
  return {
    a: t.id,
    p: binanceDecimal(t.price),
    q: binanceDecimal(t.qty),
    f: t.id,
    l: t.id,
    T: t.time,
    m: t.isBuyerMaker,
    M: true,
  };
}

/** A klines row. Taker-buy volumes are half the volume: the replay has no aggressor side. */
export function klineRow(c: Candle, intervalMs: number): unknown[] {
  return [
    c.time,
    binanceDecimal(c.open),
    binanceDecimal(c.high),
    binanceDecimal(c.low),
    binanceDecimal(c.close),
    binanceDecimal(c.volume),
    c.time + intervalMs - 1,
    binanceDecimal(c.quoteVolume),
    c.trades,
    binanceDecimal(c.volume / 2),
    binanceDecimal(c.quoteVolume / 2),
    '0',
  ];
}

/** The `<symbol>@kline_<interval>` stream event. */
export function klineEvent(
  symbolId: string,
  interval: string,
  intervalMs: number,
  c: Candle,
  closed: boolean,
  eventTime: number,
): unknown {
  return {
    e: 'kline',
    E: eventTime,
    s: symbolId,
    k: {
      t: c.time,
      T: c.time + intervalMs - 1,
      s: symbolId,
      i: interval,
      f: -1,
      L: -1,
      o: binanceDecimal(c.open),
      c: binanceDecimal(c.close),
      h: binanceDecimal(c.high),
      l: binanceDecimal(c.low),
      v: binanceDecimal(c.volume),
      n: c.trades,
      x: closed,
      q: binanceDecimal(c.quoteVolume),
      V: binanceDecimal(c.volume / 2),
      Q: binanceDecimal(c.quoteVolume / 2),
      B: '0',
    },
  };
}

/**
 * The user-data `executionReport`. On a cancel Binance puts the cancel request's client id in `c`
 * and the order's own in `C`.
 */
export function executionReport(
  o: SimOrder,
  execType: string,
  eventTime: number,
  fill: SimFill | undefined,
  cancelClientOrderId: string | undefined,
): unknown {
  return {
    e: 'executionReport',
    E: eventTime,
    s: o.symbol,
    c: cancelClientOrderId ?? o.clientOrderId,
    S: o.side,
    o: o.type,
    f: o.timeInForce ?? 'GTC',
    q: binanceDecimal(o.origQty),
    p: binanceDecimal(o.price),
    P: binanceDecimal(o.stopPrice),
    F: binanceDecimal(0),
    g: o.orderListId,
    C: cancelClientOrderId ? o.clientOrderId : '',
    x: execType,
    X: o.status,
    r: 'NONE',
    i: o.orderId,
    l: binanceDecimal(fill?.qty ?? 0),
    z: binanceDecimal(o.executedQty),
    L: binanceDecimal(fill?.price ?? 0),
    n: binanceDecimal(fill?.commission ?? 0),
    N: fill?.commissionAsset ?? null,
    T: eventTime,
    t: fill?.tradeId ?? -1,
    v: 0,
    I: 0,
    w: o.isWorking && isOpen(o),
    m: fill?.isMaker ?? false,
    M: false,
    O: o.time,
    Z: binanceDecimal(o.cummulativeQuoteQty),
    Y: binanceDecimal(fill ? fill.price * fill.qty : 0),
    Q: binanceDecimal(o.origQuoteOrderQty),
    W: o.workingTime,
    V: STP_MODE,
    // Binance sends the expiry reason only on an expired order's report.
    ...(o.expiryReason !== undefined && execType === 'EXPIRED' ? { eR: o.expiryReason } : {}),
  };
}
