/**
 * The matching engine: checks a new order as Binance does (filters, funds, duplicates), books it,
 * takes liquidity from the synthetic book, and as the replayed price moves triggers stops and
 * fills resting orders at their own price, within the bar's liquidity budget.
 */
import { binanceError, mandatoryParam, type SimError } from '../errors.ts';
import type { OrderRejection } from '../faults.ts';
import { nextStatus, type OrderEvent } from '../lifecycle.ts';
import { decimalsOf, floorToStep, isMultipleOf, roundAssetAmount, roundTo } from '../num.ts';
import {
  ORDER_TYPES,
  type OrderSide,
  type OrderType,
  type SimFeeOptions,
  type SimFill,
  type SimOrder,
  type TimeInForce,
} from '../types.ts';
import { BNB, bnbCommission, bnbMarketId } from './bnb-fees.ts';
import type { SyntheticBook } from './book.ts';
import { insufficientBalance, type Ledger } from './ledger.ts';
import {
  CLIENT_ID_PATTERN,
  type ExchangeListener,
  isOpen,
  type MarketState,
  type OrderList,
  type OrderLock,
  type OrderRecord,
  orderSnapshot,
} from './model.ts';
import { OrderLists, type PlaceOcoRequest } from './order-lists.ts';
import { crossedInPriority, pathMove, triggerPrice, triggersUpward, wouldTriggerAt } from './path.ts';
import type { MarketReplay } from './replay.ts';
import { listIn } from './replay-exchange.ts';

/** An order request as the REST and WS layers parse it; the engine checks everything else. */
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

/** An order request that passed every check and may be booked. */
export interface CheckedOrder {
  market: MarketState;
  side: OrderSide;
  type: OrderType;
  timeInForce: TimeInForce | undefined;
  /** Not working until its stop price is reached. */
  isStop: boolean;
  /** Carries a limit price (LIMIT, LIMIT_MAKER, *_LIMIT). */
  hasLimitPrice: boolean;
  price: number;
  stopPrice: number;
  qty: number;
  quantity: number | undefined;
  quoteOrderQty: number | undefined;
  /** The client's id; undefined = the exchange names the order when it is booked. */
  clientOrderId: string | undefined;
}

/** The id the exchange gives an order sent without one (Binance generates a unique id too). */
export function defaultClientOrderId(orderId: number): string {
  return `sim-${orderId}`;
}

/** The client id a cancel reports when none is sent. */
export function defaultCancelClientOrderId(orderId: number): string {
  return `sim-cancel-${orderId}`;
}

export interface MatchingEngineOptions {
  replay: MarketReplay;
  ledger: Ledger;
  book: SyntheticBook;
  fees: SimFeeOptions;
  emit: ExchangeListener;
}

export class MatchingEngine {
  readonly lists: OrderLists;
  private readonly replay: MarketReplay;
  private readonly ledger: Ledger;
  private readonly book: SyntheticBook;
  private readonly fees: SimFeeOptions;
  private readonly emit: ExchangeListener;
  private readonly orders = new Map<number, OrderRecord>();
  private readonly ordersByAccount = new Map<string, OrderRecord[]>();
  /** Per market: stops waiting for their trigger and working limit orders. */
  private readonly resting = new Map<string, OrderRecord[]>();
  private nextOrderId = 1_000_001;
  private nextTradeId = 5_000_001;
  private nextSeq = 0;
  private rejection: OrderRejection | undefined;
  /** Markets whose trading is halted (delisted: exchangeInfo status BREAK): no new order is taken. */
  private readonly halted = new Set<string>();

  constructor(opts: MatchingEngineOptions) {
    this.replay = opts.replay;
    this.ledger = opts.ledger;
    this.book = opts.book;
    this.fees = opts.fees;
    this.emit = opts.emit;
    this.lists = new OrderLists({
      check: (apiKey, req) => this.check(apiKey, req),
      bookOrder: (apiKey, order, list, lock) => this.bookOrder(apiKey, order, list, lock),
      expire: (rec) => this.finish(rec, 'expire', undefined, 'OCO_TRIGGER'),
      listStatus: (list) => this.emit({ type: 'listStatus', apiKey: list.apiKey, list }),
      market: (id) => this.replay.market(id),
      now: () => this.replay.now(),
    });
  }

  /** Makes the next `rejection.count` order placements fail with its error (a fault); undefined clears. */
  rejectOrders(rejection: OrderRejection | undefined): void {
    this.rejection = rejection && rejection.count > 0 ? { ...rejection } : undefined;
  }

  /** Binance's symbol status (exchangeInfo `status`): TRADING, or BREAK while halted (delisted). */
  status(symbolId: string): 'TRADING' | 'BREAK' {
    return this.halted.has(symbolId) ? 'BREAK' : 'TRADING';
  }

  /**
   * Halts trading in a market as Binance does when it delists a spot pair (an admin/test hook):
   * its status becomes BREAK, new orders are refused (`check`), and every account's open orders
   * in it are cancelled by the exchange (executionReport CANCELED, no cancel id; an OCO list's legs
   * together, then its ALL_DONE list status). The coins stay in the accounts. Returns how many
   * orders were cancelled.
   */
  halt(symbolId: string): number {
    if (!this.replay.market(symbolId)) throw new Error(`delist: unknown market ${symbolId}`);
    if (this.halted.has(symbolId)) throw new Error(`delist: ${symbolId} is halted already`);
    this.halted.add(symbolId);
    let n = 0;
    for (const recs of this.ordersByAccount.values())
      for (const rec of recs) {
        if (rec.market.id !== symbolId || !isOpen(rec.order)) continue;
        const list = rec.list;
        for (const leg of list ? list.legs : [rec])
          if (isOpen(leg.order)) {
            this.finish(leg, 'cancel');
            n++;
          }
        if (list) this.emit({ type: 'listStatus', apiKey: rec.apiKey, list });
      }
    return n;
  }

  /** Trading resumes in a halted market (a re-listing): status TRADING, new orders taken again. */
  resume(symbolId: string): void {
    if (!this.replay.market(symbolId)) throw new Error(`relist: unknown market ${symbolId}`);
    if (!this.halted.delete(symbolId)) throw new Error(`relist: ${symbolId} is trading, not halted`);
  }

  placeOrder(apiKey: string, req: PlaceOrderRequest): SimOrder {
    return this.bookOrder(apiKey, this.check(apiKey, req), undefined, true);
  }

  placeOco(apiKey: string, req: PlaceOcoRequest): { list: OrderList; orders: SimOrder[] } {
    return this.lists.place(apiKey, req);
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
    // Cancelling one leg of an OCO cancels the whole list (Binance: "Canceling an individual order
    // from an order list will cancel the entire order list"): every leg CANCELED, the list ALL_DONE.
    const list = rec.list;
    for (const leg of list ? list.legs : [rec])
      if (isOpen(leg.order))
        this.finish(leg, 'cancel', newClientOrderId ?? defaultCancelClientOrderId(leg.order.orderId));
    if (list) this.emit({ type: 'listStatus', apiKey, list });
    return orderSnapshot(rec.order);
  }

  queryOrder(
    apiKey: string,
    symbolId: string,
    orderId: number | undefined,
    origClientOrderId: string | undefined,
  ): SimOrder {
    const rec = this.findRecord(apiKey, symbolId, orderId, origClientOrderId, false);
    if (!rec) throw binanceError(-2013, 'Order does not exist.');
    return orderSnapshot(rec.order);
  }

  /** Every order of the account, oldest first (copies). */
  ordersOf(apiKey: string, symbolId?: string): SimOrder[] {
    return this.accountOrders(apiKey)
      .filter((r) => symbolId === undefined || r.market.id === symbolId)
      .map((r) => orderSnapshot(r.order));
  }

  openOrders(apiKey: string, symbolId?: string): SimOrder[] {
    return this.ordersOf(apiKey, symbolId).filter(isOpen);
  }

  /** Fills every open order of the account at its own price, ignoring the path (a fault). */
  forceFillOpenOrders(apiKey: string): number {
    let n = 0;
    for (const rec of this.accountOrders(apiKey).filter((r) => isOpen(r.order))) {
      if (!isOpen(rec.order)) continue; // the other leg of an OCO that has just filled
      const o = rec.order;
      const price = o.price > 0 ? o.price : rec.market.price;
      this.applyFill(rec, roundTo(o.origQty - o.executedQty, decimalsOf(rec.market.stepSize)), price, true);
      n++;
    }
    return n;
  }

  /**
   * Expires an open order of the account as Binance's self-trade prevention does when an order
   * would trade against one of the same account (status EXPIRED_IN_MATCH, execution type
   * TRADE_PREVENTION): a fault, since the simulator's accounts never meet on its book. Returns
   * whether there was such an open order.
   */
  expireInMatch(apiKey: string, clientOrderId: string): boolean {
    const rec = this.accountOrders(apiKey).find((r) => r.order.clientOrderId === clientOrderId && isOpen(r.order));
    if (!rec) return false;
    this.finish(rec, 'expireInMatch');
    return true;
  }

  /** The replayed price moved from `from` to `to`: triggers stops, then fills resting orders crossed. */
  onPriceMove(m: MarketState, from: number, to: number, withinBar: boolean): void {
    const move = pathMove(from, to);
    const triggered = this.restingIn(m)
      .filter((r) => !r.order.isWorking)
      .filter((r) => {
        const { type, side, stopPrice } = r.order;
        return triggersUpward(isStopLoss(type), side)
          ? move.reachedGoingUp(stopPrice)
          : move.reachedGoingDown(stopPrice);
      })
      .sort(
        (x, y) =>
          (to >= from ? x.order.stopPrice - y.order.stopPrice : y.order.stopPrice - x.order.stopPrice) || x.seq - y.seq,
      );
    for (const rec of triggered) {
      const o = rec.order;
      // Within a bar the path is continuous, so a stop triggers at its own price; across bars it gaps.
      const at = triggerPrice(move, o.stopPrice, to, withinBar);
      this.lists.collapse(rec);
      o.isWorking = true;
      rec.restingFrom = at;
      o.workingTime = this.replay.now();
      o.updateTime = this.replay.now();
      if (o.type === 'STOP_LOSS' || o.type === 'TAKE_PROFIT') {
        this.takerFill(rec, at, undefined, undefined);
        if (isOpen(o)) this.finish(rec, 'expire', undefined, 'INSUFFICIENT_LIQUIDITY');
      } else {
        // A FOK stop-limit is judged whole at its trigger, as a FOK limit at its arrival: all of it or nothing.
        const fok =
          o.timeInForce === 'FOK' && this.book.available(m, o.side, o.price, at) + 1e-12 < o.origQty - o.executedQty;
        if (!fok && this.book.isMarketable(m, o.side, o.price, at)) this.takerFill(rec, at, o.price, undefined);
        if (isOpen(o) && (o.timeInForce === 'IOC' || o.timeInForce === 'FOK'))
          this.finish(rec, 'expire', undefined, unfilledReason(o.timeInForce));
      }
    }
    const working = this.restingIn(m).filter((r) => r.order.isWorking && isOpen(r.order));
    const l = m.liquidity;
    for (const rec of crossedInPriority(working, from, to)) {
      const o = rec.order;
      const left = roundTo(o.origQty - o.executedQty, decimalsOf(m.stepSize));
      const budget = o.side === 'BUY' ? l.buyCap - l.buyUsed : l.sellCap - l.sellUsed;
      const q = floorToStep(Math.min(left, budget), m.stepSize);
      if (q > 0) this.applyFill(rec, q, o.price, true);
    }
    this.resting.set(
      m.id,
      this.restingIn(m).filter((r) => isOpen(r.order)),
    );
  }

  /** Every check of a new order that does not change state (a rejection leaves nothing behind). */
  private check(apiKey: string, req: PlaceOrderRequest): CheckedOrder {
    const own = this.accountOrders(apiKey);
    const m = this.replay.market(req.symbol);
    if (!m) throw binanceError(-1121, 'Invalid symbol.');
    // A halted (delisted) pair: Binance's answer as ccxt records it, {"code":-1013,"msg":"Market
    // is closed."} (ccxt: MarketClosed, an OperationRejected).
    if (this.halted.has(m.id)) throw binanceError(-1013, 'Market is closed.');
    const side = req.side;
    if (side !== 'BUY' && side !== 'SELL')
      throw side === undefined ? mandatoryParam('side') : binanceError(-1117, 'Invalid side.');
    if (req.type === undefined) throw mandatoryParam('type');
    const type = ORDER_TYPES.find((t) => t === req.type);
    if (type === undefined) throw binanceError(-1116, 'Invalid orderType.');
    const isLimitLike = type === 'LIMIT' || type === 'STOP_LOSS_LIMIT' || type === 'TAKE_PROFIT_LIMIT';
    const isStop =
      type === 'STOP_LOSS' || type === 'STOP_LOSS_LIMIT' || type === 'TAKE_PROFIT' || type === 'TAKE_PROFIT_LIMIT';
    let timeInForce: TimeInForce | undefined;
    if (isLimitLike) {
      if (req.timeInForce === undefined) throw mandatoryParam('timeInForce');
      if (req.timeInForce !== 'GTC' && req.timeInForce !== 'IOC' && req.timeInForce !== 'FOK')
        throw binanceError(-1115, 'Invalid timeInForce.');
      timeInForce = req.timeInForce;
    } else if (req.timeInForce !== undefined) {
      throw binanceError(-1106, "Parameter 'timeInForce' sent when not required.");
    }
    const hasLimitPrice = isLimitLike || type === 'LIMIT_MAKER';
    if (hasLimitPrice && req.price === undefined) throw mandatoryParam('price');
    if (isStop && req.stopPrice === undefined) throw mandatoryParam('stopPrice');
    if (type === 'MARKET') {
      if (req.quantity === undefined && req.quoteOrderQty === undefined) {
        throw binanceError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!");
      }
    } else if (req.quantity === undefined) throw mandatoryParam('quantity');
    const clientOrderId = req.newClientOrderId;
    if (clientOrderId !== undefined && !CLIENT_ID_PATTERN.test(clientOrderId)) {
      throw binanceError(
        -1100,
        "Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
      );
    }
    if (!Number.isFinite(m.price)) throw binanceError(-1013, 'Market is closed.');

    const price = req.price ?? 0;
    const stopPrice = req.stopPrice ?? 0;
    if (hasLimitPrice && (price <= 0 || !isMultipleOf(price, m.tickSize))) throw filterFailure('PRICE_FILTER');
    if (isStop && (stopPrice <= 0 || !isMultipleOf(stopPrice, m.tickSize))) throw filterFailure('PRICE_FILTER');
    const qty = req.quantity ?? 0;
    if (req.quantity !== undefined && (qty < m.minQty || !isMultipleOf(qty, m.stepSize)))
      throw filterFailure('LOT_SIZE');
    const refPrice = hasLimitPrice ? price : m.price;
    const notional = req.quantity !== undefined ? qty * refPrice : (req.quoteOrderQty ?? 0);
    if (notional < m.minNotional) throw filterFailure('NOTIONAL');

    if (this.rejection) {
      const { code, msg } = this.rejection;
      this.rejection.count -= 1;
      if (this.rejection.count <= 0) this.rejection = undefined;
      throw binanceError(code, msg);
    }
    if (clientOrderId !== undefined && own.some((r) => r.order.clientOrderId === clientOrderId && isOpen(r.order))) {
      throw binanceError(-2010, 'Duplicate order sent.');
    }
    if (type === 'LIMIT_MAKER' && this.book.isMarketable(m, side, price)) {
      throw binanceError(-2010, 'Order would immediately match and take.');
    }
    if (isStop && wouldTriggerAt(isStopLoss(type), side, stopPrice, m.price)) {
      throw binanceError(-2010, 'Stop price would trigger immediately.');
    }

    return {
      market: m,
      side,
      type,
      timeInForce,
      isStop,
      hasLimitPrice,
      price,
      stopPrice,
      qty,
      quantity: req.quantity,
      quoteOrderQty: req.quoteOrderQty,
      clientOrderId,
    };
  }

  /**
   * Books a checked order: locks its funds (limit-like buys lock price x qty of quote, sells lock
   * qty of base; an OCO's second leg shares the first leg's lock), then matches what can match now.
   */
  private bookOrder(apiKey: string, c: CheckedOrder, list: OrderList | undefined, takeLock: boolean): SimOrder {
    const { market: m, side, type, isStop, price, qty } = c;
    let lockAsset = side === 'BUY' ? m.quote : m.base;
    let lockAmount = 0;
    if (side === 'SELL') lockAmount = qty;
    else if (c.hasLimitPrice) lockAmount = roundAssetAmount(price * qty);
    else if (type === 'MARKET') {
      const cost = c.quoteOrderQty ?? this.book.walkCost(m, 'BUY', qty);
      if (this.ledger.free(apiKey, m.quote) + 1e-12 < cost) throw insufficientBalance();
      lockAsset = m.quote;
    }
    const lock: OrderLock = this.ledger.lock(apiKey, lockAsset, takeLock ? lockAmount : 0);

    const now = this.replay.now();
    const orderId = this.nextOrderId++;
    const order: SimOrder = {
      symbol: m.id,
      orderId,
      clientOrderId: c.clientOrderId ?? defaultClientOrderId(orderId),
      orderListId: list ? list.orderListId : -1,
      side,
      type,
      timeInForce: c.timeInForce,
      price,
      stopPrice: c.stopPrice,
      origQty: qty,
      origQuoteOrderQty: c.quantity === undefined ? (c.quoteOrderQty ?? 0) : 0,
      executedQty: 0,
      cummulativeQuoteQty: 0,
      status: 'NEW',
      isWorking: !isStop,
      time: now,
      updateTime: now,
      workingTime: isStop ? -1 : now,
      fills: [],
    };
    const rec: OrderRecord = { order, apiKey, market: m, lock, seq: this.nextSeq++, list };
    list?.legs.push(rec);
    this.accountOrders(apiKey).push(rec);
    this.orders.set(orderId, rec);
    this.emit({ type: 'execution', apiKey, order: orderSnapshot(order), execType: 'NEW' });
    if (lock.left > 0) this.emit({ type: 'balance', apiKey, assets: [lock.asset] });

    if (isStop) {
      this.restingIn(m).push(rec);
    } else if (type === 'MARKET') {
      this.takerFill(rec, m.price, undefined, c.quoteOrderQty);
      // Binance reports a quote-sized market order's origQty as the quantity it bought.
      if (order.origQuoteOrderQty > 0) order.origQty = order.executedQty;
      if (isOpen(order)) this.finish(rec, 'expire', undefined, 'INSUFFICIENT_LIQUIDITY');
    } else {
      const tif = c.timeInForce;
      if (type === 'LIMIT' && this.book.isMarketable(m, side, price)) {
        if (tif === 'FOK' && this.book.available(m, side, price) + 1e-12 < qty) {
          this.finish(rec, 'expire', undefined, unfilledReason('FOK'));
          return orderSnapshot(order);
        }
        this.takerFill(rec, m.price, price, undefined);
      }
      if (isOpen(order)) {
        if (tif === 'IOC' || tif === 'FOK') this.finish(rec, 'expire', undefined, unfilledReason(tif));
        else this.restingIn(m).push(rec);
      }
    }
    return orderSnapshot(order);
  }

  private accountOrders(apiKey: string): OrderRecord[] {
    if (!this.ledger.has(apiKey)) throw new Error(`no account with apiKey ${apiKey}`);
    return listIn(this.ordersByAccount, apiKey);
  }

  private restingIn(m: MarketState): OrderRecord[] {
    return listIn(this.resting, m.id);
  }

  private findRecord(
    apiKey: string,
    symbolId: string,
    orderId: number | undefined,
    clientOrderId: string | undefined,
    preferOpen: boolean,
  ): OrderRecord | undefined {
    const own = this.accountOrders(apiKey);
    if (orderId !== undefined) {
      const rec = this.orders.get(orderId);
      return rec && rec.apiKey === apiKey && rec.market.id === symbolId ? rec : undefined;
    }
    const matches = own.filter((r) => r.market.id === symbolId && r.order.clientOrderId === clientOrderId);
    if (preferOpen) {
      const open = matches.filter((r) => isOpen(r.order));
      if (open.length > 0) return open[open.length - 1];
    }
    return matches[matches.length - 1];
  }

  /** Takes liquidity from the synthetic book around `ref`, up to `limit` (if any). */
  private takerFill(rec: OrderRecord, ref: number, limit: number | undefined, quoteBudget: number | undefined): void {
    const m = rec.market;
    const o = rec.order;
    const snapshot = this.book.snapshot(m, this.book.levels, ref);
    let quoteLeft = quoteBudget;
    for (const [p, levelQty] of o.side === 'BUY' ? snapshot.asks : snapshot.bids) {
      if (limit !== undefined && (o.side === 'BUY' ? p > limit : p < limit)) break;
      let want =
        quoteLeft !== undefined
          ? floorToStep(quoteLeft / p, m.stepSize)
          : roundTo(o.origQty - o.executedQty, decimalsOf(m.stepSize));
      want = Math.min(want, levelQty);
      if (want <= 0) break;
      if (o.side === 'BUY') {
        const spendable = this.ledger.free(rec.apiKey, m.quote) + (rec.lock.asset === m.quote ? rec.lock.left : 0);
        want = Math.min(want, floorToStep(spendable / p, m.stepSize));
        if (want <= 0) break;
      }
      this.applyFill(rec, want, p, false);
      if (quoteLeft !== undefined) quoteLeft -= want * p;
      if (!isOpen(o)) break;
    }
  }

  /**
   * Books one fill: balances, commission (Binance: in the asset received, or in BNB at a discount
   * for an account paying its fees with BNB, see bnb-fees.ts), events.
   */
  private applyFill(rec: OrderRecord, qty: number, price: number, isMaker: boolean): void {
    this.lists.collapse(rec);
    const m = rec.market;
    const o = rec.order;
    const now = this.replay.now();
    const quoteQty = roundAssetAmount(qty * price);
    const rate = isMaker ? this.fees.maker : this.fees.taker;
    const buy = o.side === 'BUY';
    const inBnb = this.commissionInBnb(rec.apiKey, m, quoteQty, rate);
    const commission = inBnb ?? roundAssetAmount((buy ? qty : quoteQty) * rate);
    const commissionAsset = inBnb !== undefined ? BNB : buy ? m.base : m.quote;
    if (buy) {
      // A limit buy locked qty x its own price; it pays the fill's price and keeps the difference.
      const fromLock =
        rec.lock.asset === m.quote
          ? Math.min(rec.lock.left, o.price > 0 ? roundAssetAmount(qty * o.price) : quoteQty)
          : 0;
      this.ledger.settle(rec.apiKey, rec.lock, {
        paidAsset: m.quote,
        paid: quoteQty,
        fromLock,
        receivedAsset: m.base,
        received: qty,
        commission,
        commissionAsset,
      });
      m.liquidity.buyUsed += qty;
    } else {
      this.ledger.settle(rec.apiKey, rec.lock, {
        paidAsset: m.base,
        paid: qty,
        fromLock: Math.min(rec.lock.left, qty),
        receivedAsset: m.quote,
        received: quoteQty,
        commission,
        commissionAsset,
      });
      m.liquidity.sellUsed += qty;
    }
    const fill: SimFill = { tradeId: this.nextTradeId++, price, qty, commission, commissionAsset, isMaker, time: now };
    o.executedQty = roundTo(o.executedQty + qty, decimalsOf(m.stepSize));
    o.cummulativeQuoteQty = roundAssetAmount(o.cummulativeQuoteQty + quoteQty);
    o.fills.push(fill);
    o.updateTime = now;
    const full = o.executedQty + 1e-12 >= o.origQty && o.origQty > 0;
    const quoteDone = o.origQuoteOrderQty > 0 && o.origQuoteOrderQty - o.cummulativeQuoteQty < price * m.stepSize;
    o.status = nextStatus(o.status, full || quoteDone ? 'fill' : 'partialFill');
    this.ledger.recordTrade(rec.apiKey, {
      symbol: m.id,
      id: fill.tradeId,
      orderId: o.orderId,
      price,
      qty,
      quoteQty,
      commission,
      commissionAsset,
      time: now,
      isBuyer: o.side === 'BUY',
      isMaker,
    });
    this.replay.recordTrade(m, price, qty, (o.side === 'BUY') === isMaker);
    this.emit({ type: 'execution', apiKey: rec.apiKey, order: orderSnapshot(o), execType: 'TRADE', fill });
    if (!isOpen(o)) this.ledger.release(rec.apiKey, rec.lock);
    const moved = [m.base, m.quote];
    if (!moved.includes(commissionAsset)) moved.push(commissionAsset);
    this.emit({ type: 'balance', apiKey: rec.apiKey, assets: moved });
  }

  /**
   * The commission of a fill in BNB when the account pays its fees with BNB and its free BNB (before
   * the fill) covers it; undefined: charged normally.
   */
  private commissionInBnb(apiKey: string, m: MarketState, quoteQty: number, rate: number): number | undefined {
    if (!this.ledger.paysFeesWithBnb(apiKey)) return undefined;
    const id = bnbMarketId(m.quote);
    const bnbMarket = id === undefined ? undefined : this.replay.market(id);
    // Checked when the setting is turned on (checkBnbMarkets): a missing market is a bug.
    if (id !== undefined && bnbMarket === undefined)
      throw new Error(`Invariant violated: no ${id} market to price a commission in BNB on ${m.id}`);
    const bnbPrice = bnbMarket === undefined ? 1 : bnbMarket.price;
    // Before the BNB market's first bar there is no price: charged as without BNB.
    if (!(bnbPrice > 0)) return undefined;
    const commission = bnbCommission(quoteQty, rate, bnbPrice);
    return this.ledger.free(apiKey, BNB) + 1e-12 >= commission ? commission : undefined;
  }

  private finish(
    rec: OrderRecord,
    event: Extract<OrderEvent, 'cancel' | 'expire' | 'expireInMatch'>,
    cancelClientOrderId?: string,
    expiryReason?: string,
  ): void {
    const o = rec.order;
    o.status = nextStatus(o.status, event);
    if (expiryReason !== undefined) o.expiryReason = expiryReason;
    o.updateTime = this.replay.now();
    this.ledger.release(rec.apiKey, rec.lock);
    const m = rec.market;
    this.resting.set(
      m.id,
      this.restingIn(m).filter((r) => r !== rec),
    );
    const order = orderSnapshot(o);
    if (event === 'cancel')
      this.emit({
        type: 'execution',
        apiKey: rec.apiKey,
        order,
        execType: 'CANCELED',
        ...(cancelClientOrderId ? { cancelClientOrderId } : {}),
      });
    else
      this.emit({
        type: 'execution',
        apiKey: rec.apiKey,
        order,
        execType: event === 'expireInMatch' ? 'TRADE_PREVENTION' : 'EXPIRED',
      });
    this.emit({ type: 'balance', apiKey: rec.apiKey, assets: [m.base, m.quote] });
  }
}

function isStopLoss(type: OrderType): boolean {
  return type === 'STOP_LOSS' || type === 'STOP_LOSS_LIMIT';
}

function filterFailure(filter: string): SimError {
  return binanceError(-1013, `Filter failure: ${filter}`);
}

/** Binance's expiry reason (`eR`) of an IOC or FOK order's unfilled rest. */
function unfilledReason(tif: 'IOC' | 'FOK'): string {
  return tif === 'IOC' ? 'UNFILLED_IOC_QUANTITY_EXPIRED' : 'UNFILLED_FOK_ORDER_EXPIRED';
}
