/**
 * OCO order lists (POST /api/v3/orderList/oco): two legs on one side for one quantity, one above
 * the market and one below. The quantity is locked once for both; when one leg triggers or fills,
 * the other expires; cancelling a leg cancels the list.
 */
import { binanceError, mandatoryParam } from '../errors.ts';
import type { SimOrder } from '../types.ts';
import type { CheckedOrder, PlaceOrderRequest } from './matching.ts';
import { CLIENT_ID_PATTERN, isOpen, type MarketState, type OrderList, type OrderRecord } from './model.ts';

/** One leg of an OCO (Binance's `above*` / `below*` parameters). */
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

/** What the order lists need of the matching engine. */
export interface OrderListHost {
  check(apiKey: string, req: PlaceOrderRequest): CheckedOrder;
  bookOrder(apiKey: string, order: CheckedOrder, list: OrderList, takeLock: boolean): SimOrder;
  expire(rec: OrderRecord): void;
  /** Reports the list's status to its account (placed, or ended). */
  listStatus(list: OrderList): void;
  market(id: string): MarketState | undefined;
  now(): number;
}

/** The list id the exchange gives an OCO sent without `listClientOrderId`. */
export function defaultListClientOrderId(orderListId: number): string {
  return `sim-list-${orderListId}`;
}

export class OrderLists {
  private readonly lists: OrderList[] = [];
  private nextOrderListId = 7_000_001;

  constructor(private readonly host: OrderListHost) {}

  /**
   * SELL: above LIMIT_MAKER, below STOP_LOSS or STOP_LOSS_LIMIT; BUY: above STOP_LOSS or
   * STOP_LOSS_LIMIT, below LIMIT_MAKER. Legs sent without a client id get their own id each, as
   * on Binance.
   */
  place(apiKey: string, req: PlaceOcoRequest): { list: OrderList; orders: SimOrder[] } {
    const side = req.side;
    if (side !== 'BUY' && side !== 'SELL')
      throw side === undefined ? mandatoryParam('side') : binanceError(-1117, 'Invalid side.');
    if (req.quantity === undefined) throw mandatoryParam('quantity');
    const limitLeg = side === 'SELL' ? req.above : req.below;
    const stopLeg = side === 'SELL' ? req.below : req.above;
    const [limitAt, stopAt] = side === 'SELL' ? ['above', 'below'] : ['below', 'above'];
    if (limitLeg.type === undefined) throw mandatoryParam(`${limitAt}Type`);
    if (stopLeg.type === undefined) throw mandatoryParam(`${stopAt}Type`);
    if (limitLeg.type !== 'LIMIT_MAKER' || (stopLeg.type !== 'STOP_LOSS' && stopLeg.type !== 'STOP_LOSS_LIMIT'))
      throw binanceError(-1106, 'Unsupported order combination.');
    const listClientOrderId = req.listClientOrderId ?? defaultListClientOrderId(this.nextOrderListId);
    if (!CLIENT_ID_PATTERN.test(listClientOrderId))
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
    const last = this.host.market(req.symbol)?.price ?? Number.NaN;
    const [limitPrice, stopPrice] = [limitLeg.price, stopLeg.stopPrice];
    if (limitPrice !== undefined && stopPrice !== undefined && Number.isFinite(last)) {
      const ordered = side === 'SELL' ? limitPrice > last && last > stopPrice : limitPrice < last && last < stopPrice;
      if (!ordered) throw binanceError(-2010, 'The relationship of the prices for the orders is not correct.');
    }
    // Both legs are checked before either is booked: a list is placed whole or not at all.
    const limit = this.host.check(apiKey, leg(limitLeg));
    const stop = this.host.check(apiKey, leg(stopLeg));
    if (limit.clientOrderId !== undefined && limit.clientOrderId === stop.clientOrderId)
      throw binanceError(-2010, 'Duplicate order sent.');
    const list: OrderList = {
      orderListId: this.nextOrderListId++,
      listClientOrderId,
      apiKey,
      symbol: limit.market.id,
      legs: [],
      transactionTime: this.host.now(),
    };
    // Binance books the stop leg first; the quantity (or, buying, the limit's cost) is locked once.
    const first = side === 'SELL' ? stop : limit;
    const second = side === 'SELL' ? limit : stop;
    this.lists.push(list);
    const orders = [this.host.bookOrder(apiKey, first, list, true), this.host.bookOrder(apiKey, second, list, false)];
    this.host.listStatus(list);
    return { list, orders };
  }

  /**
   * One leg of an OCO triggers or fills: the other legs expire, and the list's lock (held by the
   * leg booked first) moves to this one.
   */
  collapse(rec: OrderRecord): void {
    const list = rec.list;
    if (!list) return;
    rec.list = undefined;
    for (const leg of list.legs) {
      if (leg === rec) continue;
      leg.list = undefined;
      if (leg.lock.left > 0 && rec.lock.left === 0) {
        rec.lock = leg.lock;
        leg.lock = { asset: leg.lock.asset, left: 0 };
      }
      if (isOpen(leg.order)) this.host.expire(leg);
    }
    this.host.listStatus(list);
  }

  /** An account's OCO list by id or client id (GET / DELETE /api/v3/orderList). */
  find(apiKey: string, orderListId: number | undefined, listClientOrderId: string | undefined): OrderList {
    const list = this.lists.find(
      (l) =>
        l.apiKey === apiKey &&
        (orderListId !== undefined ? l.orderListId === orderListId : l.listClientOrderId === listClientOrderId),
    );
    if (!list) throw binanceError(-2018, 'Order list does not exist.');
    return list;
  }
}
