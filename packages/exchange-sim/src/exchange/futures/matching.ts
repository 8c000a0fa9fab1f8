/**
 * The futures matching engine: checks a new LIMIT or MARKET order as Binance USDⓈ-M does
 * (position side for the position mode, reduce-only, filters, min notional, margin, the
 * notional cap of the leverage), books it, takes liquidity from the synthetic book, fills
 * resting orders as the replayed price crosses them, and settles every fill into the position
 * (FuturesLedger). Conditional orders live in AlgoOrders until they trigger into an order here.
 */
import {
  availableBalance,
  initialMargin,
  maxNotionalAtLeverage,
  type PositionSide,
  positionNotional,
  reducingQty,
  unrealizedPnl,
} from '@keel/core';
import { binanceError, mandatoryParam, type SimError } from '../../errors.ts';
import type { OrderRejection } from '../../faults.ts';
import { nextStatus, type OrderEvent } from '../../lifecycle.ts';
import { decimalsOf, floorToStep, isMultipleOf, roundAssetAmount, roundTo } from '../../num.ts';
import type { SimFeeOptions } from '../../types.ts';
import type { SyntheticBook } from '../book.ts';
import { crossedInPriority } from '../path.ts';
import type { MarketReplay } from '../replay.ts';
import { listIn } from '../replay-exchange.ts';
import type { FuturesLedger, FuturesMarket } from './ledger.ts';
import {
  CONDITIONAL_ORDER_TYPES,
  FUTURES_CLIENT_ID_PATTERN,
  FUTURES_TIME_IN_FORCE,
  type FuturesAccountEvent,
  type FuturesFill,
  type FuturesOrderType,
  type FuturesTimeInForce,
  futuresOrderSnapshot,
  isOpenFuturesOrder,
  type SimFuturesOrder,
} from './model.ts';

/** An order request as the REST layer parses it (`POST /fapi/v1/order`). */
export interface FuturesOrderRequest {
  symbol: string;
  side: string | undefined;
  positionSide: string | undefined;
  type: string | undefined;
  timeInForce: string | undefined;
  quantity: number | undefined;
  price: number | undefined;
  reduceOnly: string | undefined;
  closePosition: string | undefined;
  newClientOrderId: string | undefined;
  /** Mandatory with timeInForce GTD: the expiry, UTC ms (the milliseconds are ignored, as on Binance). */
  goodTillDate: number | undefined;
}

/** An order the engine places itself: a triggered conditional order or a forced close (liquidation, ADL, settlement). */
export interface InternalOrder {
  market: FuturesMarket;
  side: 'BUY' | 'SELL';
  positionSide: PositionSide;
  type: 'LIMIT' | 'MARKET' | 'LIQUIDATION';
  origType: FuturesOrderType;
  timeInForce: FuturesTimeInForce;
  price: number;
  stopPrice: number;
  qty: number;
  reduceOnly: boolean;
  closePosition: boolean;
  clientOrderId: string;
  /** An id taken earlier with reserveOrderId (a conditional order reports it when it triggers). */
  orderId?: number;
  /** A GTD order's expiry. */
  goodTillDate?: number;
}

interface OrderRecord {
  order: SimFuturesOrder;
  apiKey: string;
  market: FuturesMarket;
  seq: number;
  /** Called when the order is done (the algo order it came from finishes). */
  onDone: ((o: SimFuturesOrder) => void) | undefined;
  /** Where an order placed during the current move joined the book (see crossedInPriority). */
  restingFrom?: number | undefined;
}

export interface FuturesMatchingOptions {
  replay: MarketReplay;
  ledger: FuturesLedger;
  book: SyntheticBook;
  fees: SimFeeOptions;
  market(id: string): FuturesMarket | undefined;
  emit(e: FuturesAccountEvent): void;
}

/** The id the exchange gives an order sent without one. */
export function defaultFuturesClientOrderId(orderId: number): string {
  return `sim-${orderId}`;
}

export class FuturesMatching {
  private readonly orders = new Map<number, OrderRecord>();
  private readonly byAccount = new Map<string, OrderRecord[]>();
  /** Working LIMIT orders per market. */
  private readonly resting = new Map<string, OrderRecord[]>();
  private nextOrderId = 8_000_001;
  private nextTradeId = 6_000_001;
  private nextSeq = 0;
  private rejection: OrderRejection | undefined;
  /** Contracts delisted (exchangeInfo status SETTLING): no new order is taken. */
  private readonly delisted = new Set<string>();

  constructor(private readonly opts: FuturesMatchingOptions) {}

  /** Takes the id the next internal order will carry. */
  reserveOrderId(): number {
    return this.nextOrderId++;
  }

  /** The contract stops trading (delisted: exchangeInfo status SETTLING); see `checkTrading`. */
  delist(symbol: string): void {
    this.delisted.add(symbol);
  }

  /** Binance's contract status (exchangeInfo `status`): TRADING, or SETTLING once delisted. */
  status(symbol: string): 'TRADING' | 'SETTLING' {
    return this.delisted.has(symbol) ? 'SETTLING' : 'TRADING';
  }

  /**
   * A new order (plain or conditional, reduce-only too) on a contract that no longer trades is
   * refused with Binance's -4141 "Symbol is closed." (ccxt's binanceusdm maps it to
   * OperationRejected).
   */
  checkTrading(m: FuturesMarket): void {
    if (this.delisted.has(m.id)) throw binanceError(-4141, 'Symbol is closed.');
  }

  rejectOrders(rejection: OrderRejection | undefined): void {
    this.rejection = rejection && rejection.count > 0 ? { ...rejection } : undefined;
  }

  /** The account's position side for an order: BOTH in one-way mode, LONG/SHORT in hedge mode (-4061 otherwise). */
  resolvePositionSide(apiKey: string, raw: string | undefined): PositionSide {
    const hedge = this.opts.ledger.dualSide(apiKey);
    const side = raw ?? 'BOTH';
    if (hedge ? side === 'LONG' || side === 'SHORT' : side === 'BOTH') return side as PositionSide;
    throw binanceError(-4061, "Order's position side does not match user's setting.");
  }

  placeOrder(apiKey: string, req: FuturesOrderRequest): SimFuturesOrder {
    const m = this.opts.market(req.symbol);
    if (!m) throw binanceError(-1121, 'Invalid symbol.');
    this.checkTrading(m);
    const side = parseSide(req.side);
    if (req.type === undefined) throw mandatoryParam('type');
    if ((CONDITIONAL_ORDER_TYPES as readonly string[]).includes(req.type) || req.type === 'TRAILING_STOP_MARKET')
      throw binanceError(
        -4120,
        'Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.',
      );
    if (req.type !== 'LIMIT' && req.type !== 'MARKET') throw binanceError(-1116, 'Invalid orderType.');
    const type = req.type;
    const positionSide = this.resolvePositionSide(apiKey, req.positionSide);
    const reduceOnly = this.parseReduceOnly(apiKey, req.reduceOnly);
    if (req.closePosition !== undefined) throw binanceError(-1106, "Parameter 'closePosition' sent when not required.");
    let timeInForce: FuturesTimeInForce = 'GTC';
    if (type === 'LIMIT') {
      if (req.timeInForce === undefined) throw mandatoryParam('timeInForce');
      const tif = FUTURES_TIME_IN_FORCE.find((t) => t === req.timeInForce);
      if (tif === undefined) throw binanceError(-1115, 'Invalid timeInForce.');
      timeInForce = tif;
      if (req.price === undefined) throw mandatoryParam('price');
    }
    let goodTillDate = 0;
    if (timeInForce === 'GTD') {
      if (req.goodTillDate === undefined) throw mandatoryParam('goodTillDate');
      goodTillDate = Math.floor(req.goodTillDate / 1000) * 1000;
      if (!(goodTillDate > this.opts.replay.now()))
        throw binanceError(-1102, "Param 'goodTillDate' must be later than the current time.");
    }
    if (req.quantity === undefined) throw mandatoryParam('quantity');
    const clientOrderId = this.checkClientId(apiKey, req.newClientOrderId, 'newClientOrderId');
    if (!Number.isFinite(m.price)) throw binanceError(-1013, 'Market is closed.');
    const price = type === 'LIMIT' ? (req.price as number) : 0;
    if (type === 'LIMIT') checkPrice(m, price);
    checkQuantity(m, req.quantity);
    const qty = req.quantity;
    const ref = type === 'LIMIT' ? price : m.price;
    this.takeRejection();
    const signed = side === 'BUY' ? qty : -qty;
    const closesOnly = this.checkPosition(apiKey, m, positionSide, signed, reduceOnly);
    if (!closesOnly) this.checkOpening(apiKey, m, positionSide, signed, ref);
    if (type === 'LIMIT' && timeInForce === 'GTX' && this.opts.book.isMarketable(m, side, price))
      throw binanceError(
        -5022,
        'Due to the order could not be executed as maker, the Post Only order will be rejected.',
      );
    if (type === 'LIMIT' && timeInForce === 'FOK' && this.opts.book.available(m, side, price) + 1e-12 < qty)
      throw binanceError(-5021, 'Due to the order could not be filled immediately, the FOK order has been rejected.');
    const rec = this.book(apiKey, {
      market: m,
      side,
      positionSide,
      type,
      origType: type,
      timeInForce,
      price,
      stopPrice: 0,
      qty,
      reduceOnly,
      closePosition: false,
      clientOrderId: clientOrderId ?? '',
      goodTillDate,
    });
    this.work(rec, m.price);
    return futuresOrderSnapshot(rec.order);
  }

  /**
   * Books an order the engine places itself and matches it from `ref` (a trigger price, or the
   * price the replay is at). `onDone` hears when it is no longer open.
   */
  placeInternal(apiKey: string, o: InternalOrder, ref: number, onDone?: (o: SimFuturesOrder) => void): SimFuturesOrder {
    const rec = this.book(apiKey, o, onDone);
    // Placed mid-move (a trigger): only the rest of the move, from `ref`, can fill it as it rests.
    rec.restingFrom = ref;
    this.work(rec, ref);
    return futuresOrderSnapshot(rec.order);
  }

  /**
   * Fills an order the exchange makes of its own accord whole at one price: a liquidation (its
   * `commission` the clearance fee, booked as INSURANCE_CLEAR), an ADL close (no commission) or a
   * settlement close (the taker fee: `commission` undefined). Binance reports a liquidation and an
   * ADL close on the user-data stream with execution type CALCULATED ("Liquidation Execution").
   * Returns the realised PnL.
   */
  fillForced(
    apiKey: string,
    o: InternalOrder,
    f: {
      commission: number | undefined;
      income: 'COMMISSION' | 'INSURANCE_CLEAR';
      execType: 'TRADE' | 'CALCULATED';
    },
  ): { order: SimFuturesOrder; realized: number } {
    // A forced order is reported once, filled: no NEW event (ccxt counts every LIQUIDATION update
    // it hears as a liquidation, an empty NEW one included).
    const rec = this.book(apiKey, o, undefined, false);
    const realized = this.applyFill(rec, o.qty, o.price, false, f.commission, f.income, f.execType);
    return { order: futuresOrderSnapshot(rec.order), realized };
  }

  cancelOrder(
    apiKey: string,
    symbol: string,
    orderId: number | undefined,
    origClientOrderId: string | undefined,
  ): SimFuturesOrder {
    const rec = this.find(apiKey, symbol, orderId, origClientOrderId, true);
    if (!rec || !isOpenFuturesOrder(rec.order)) throw binanceError(-2011, 'Unknown order sent.');
    this.finish(rec, 'cancel');
    return futuresOrderSnapshot(rec.order);
  }

  /** Cancels every open order of the account in the market; returns how many. */
  cancelAll(apiKey: string, symbol: string): number {
    let n = 0;
    for (const rec of this.accountOrders(apiKey)) {
      if (rec.market.id !== symbol || !isOpenFuturesOrder(rec.order)) continue;
      this.finish(rec, 'cancel');
      n++;
    }
    return n;
  }

  queryOrder(
    apiKey: string,
    symbol: string,
    orderId: number | undefined,
    origClientOrderId: string | undefined,
  ): SimFuturesOrder {
    const rec = this.find(apiKey, symbol, orderId, origClientOrderId, false);
    if (!rec) throw binanceError(-2013, 'Order does not exist.');
    return futuresOrderSnapshot(rec.order);
  }

  ordersOf(apiKey: string, symbol?: string): SimFuturesOrder[] {
    return this.accountOrders(apiKey)
      .filter((r) => symbol === undefined || r.market.id === symbol)
      .map((r) => futuresOrderSnapshot(r.order));
  }

  openOrders(apiKey: string, symbol?: string): SimFuturesOrder[] {
    return this.ordersOf(apiKey, symbol).filter(isOpenFuturesOrder);
  }

  /** Fills every open order of the account at its own price, ignoring the path (a fault). */
  forceFillOpenOrders(apiKey: string): number {
    let n = 0;
    for (const rec of this.accountOrders(apiKey)) {
      if (!isOpenFuturesOrder(rec.order)) continue;
      const o = rec.order;
      const left = roundTo(o.origQty - o.executedQty, decimalsOf(rec.market.stepSize));
      const q = this.fillable(rec, left);
      if (q > 0) this.applyFill(rec, q, o.price > 0 ? o.price : rec.market.price, true);
      if (isOpenFuturesOrder(o)) this.finish(rec, 'expire');
      n++;
    }
    return n;
  }

  /** GTD orders whose `goodTillDate` has come expire (Binance reports them EXPIRED). */
  expireDue(m: FuturesMarket, now: number): void {
    for (const rec of this.restingIn(m))
      if (rec.order.goodTillDate > 0 && rec.order.goodTillDate <= now && isOpenFuturesOrder(rec.order))
        this.finish(rec, 'expire');
  }

  /**
   * Expires an open order of the account as Binance's self-trade prevention does (status
   * EXPIRED_IN_MATCH, `er` 1): a fault, since the simulator's accounts never meet on its book.
   */
  expireInMatch(apiKey: string, clientOrderId: string): boolean {
    const rec = this.accountOrders(apiKey).find(
      (r) => r.order.clientOrderId === clientOrderId && isOpenFuturesOrder(r.order),
    );
    if (!rec) return false;
    this.finish(rec, 'expireInMatch', 1);
    return true;
  }

  /** The replayed price moved: resting limit orders the path crossed fill at their own price. */
  onPriceMove(m: FuturesMarket, from: number, to: number): void {
    const working = this.restingIn(m).filter((r) => isOpenFuturesOrder(r.order));
    const l = m.liquidity;
    for (const rec of crossedInPriority(working, from, to)) {
      const o = rec.order;
      if (!isOpenFuturesOrder(o)) continue; // expired by an earlier fill of this move (expireStranded)
      const left = roundTo(o.origQty - o.executedQty, decimalsOf(m.stepSize));
      const budget = o.side === 'BUY' ? l.buyCap - l.buyUsed : l.sellCap - l.sellUsed;
      const q = floorToStep(Math.min(this.fillable(rec, left), budget), m.stepSize);
      if (q > 0) this.applyFill(rec, q, o.price, true);
      else if (this.fillable(rec, left) === 0) this.finish(rec, 'expire', 4);
    }
    this.resting.set(
      m.id,
      this.restingIn(m).filter((r) => isOpenFuturesOrder(r.order)),
    );
  }

  /**
   * Position rules of an order of signed `qty`: a reduce-only order (and in hedge mode an order
   * that closes its side) must reduce the position and not go past it (-2022). Returns true when
   * the order only closes.
   */
  checkPosition(apiKey: string, m: FuturesMarket, side: PositionSide, qty: number, reduceOnly: boolean): boolean {
    const pos = this.opts.ledger.position(apiKey, m.id, side);
    const closingSide = (side === 'LONG' && qty < 0) || (side === 'SHORT' && qty > 0);
    if (reduceOnly || closingSide) {
      const reducing = reducingQty(pos.size, qty);
      if (reducing === 0 || (closingSide && Math.abs(qty) > Math.abs(pos.size) + 1e-12))
        throw binanceError(-2022, 'ReduceOnly Order is rejected.');
      return true;
    }
    return false;
  }

  /**
   * Rules of the part of an order that opens or grows a position, priced at `ref`: min notional
   * (-4164), the notional cap of the leverage (-2027) and the initial margin it needs against the
   * available balance (-2019).
   */
  checkOpening(apiKey: string, m: FuturesMarket, side: PositionSide, qty: number, ref: number): void {
    const ledger = this.opts.ledger;
    const pos = ledger.position(apiKey, m.id, side);
    const notional = positionNotional(qty, ref, m.contractSize);
    if (notional < m.minNotional)
      throw binanceError(
        -4164,
        `Order's notional must be no smaller than ${m.minNotional} (unless you choose reduce only).`,
      );
    const opening = Math.abs(qty) - reducingQty(pos.size, qty);
    if (opening <= 0) return;
    const s = ledger.settings(apiKey, m.id);
    const after = positionNotional(Math.abs(pos.size) - reducingQty(pos.size, qty) + opening, ref, m.contractSize);
    if (after > maxNotionalAtLeverage(m.brackets, s.leverage))
      throw binanceError(-2027, 'Exceeded the maximum allowable position at current leverage.');
    const need = positionNotional(opening, ref, m.contractSize) / s.leverage;
    const view = ledger.view(apiKey, this.openOrders(apiKey));
    const asset = view.assets.find((a) => a.asset === m.quote);
    if (!asset) throw binanceError(-2019, 'Margin is insufficient.');
    let available = asset.availableBalance;
    const closing = reducingQty(pos.size, qty);
    if (closing > 0) {
      // A reversing order closes the position first, and Binance nets an order's margin with the
      // position's (an order's margin requirement is max(|position + bids|, |position - asks|) /
      // leverage): the closed part's margin is free for the opening part. Isolated: the position's
      // wallet and its PnL at the price come back to the cross wallet; cross: its initial margin.
      const crossIm = view.positions
        .filter((pv) => pv.marginType === 'CROSSED' && this.opts.market(pv.position.symbol)?.quote === m.quote)
        .reduce((sum, pv) => sum + pv.initialMargin, 0);
      const isolated = s.marginType === 'ISOLATED';
      const released = isolated ? pos.isolatedWallet + unrealizedPnl(pos.size, pos.entryPrice, ref, m.contractSize) : 0;
      const freed = isolated ? 0 : initialMargin(positionNotional(closing, m.price, m.contractSize), s.leverage);
      available = availableBalance(
        asset.crossWalletBalance + released,
        asset.crossUnPnl,
        crossIm - freed,
        asset.openOrderInitialMargin,
      );
    }
    if (need > available + 1e-9) throw binanceError(-2019, 'Margin is insufficient.');
  }

  /** `reduceOnly` as Binance reads it: 'true'/'false', and not at all in hedge mode (-1106). */
  parseReduceOnly(apiKey: string, raw: string | undefined): boolean {
    if (raw === undefined) return false;
    if (this.opts.ledger.dualSide(apiKey)) throw binanceError(-1106, "Parameter 'reduceOnly' sent when not required.");
    if (raw !== 'true' && raw !== 'false') throw binanceError(-4062, 'Invalid or improper reduceOnly value.');
    return raw === 'true';
  }

  /** A client id: checked against Binance's pattern (-4015) and the account's open orders (-4116). */
  checkClientId(apiKey: string, id: string | undefined, _param: string): string | undefined {
    if (id === undefined) return undefined;
    if (!FUTURES_CLIENT_ID_PATTERN.test(id)) throw binanceError(-4015, 'Client order id is not valid.');
    if (this.accountOrders(apiKey).some((r) => r.order.clientOrderId === id && isOpenFuturesOrder(r.order)))
      throw binanceError(-4116, 'ClientOrderId is duplicated.');
    return id;
  }

  /** The next placement fails when a fault says so. */
  takeRejection(): void {
    if (!this.rejection) return;
    const { code, msg } = this.rejection;
    this.rejection.count -= 1;
    if (this.rejection.count <= 0) this.rejection = undefined;
    throw binanceError(code, msg);
  }

  private book(apiKey: string, o: InternalOrder, onDone?: (o: SimFuturesOrder) => void, announce = true): OrderRecord {
    const now = this.opts.replay.now();
    const orderId = o.orderId ?? this.nextOrderId++;
    const order: SimFuturesOrder = {
      symbol: o.market.id,
      orderId,
      clientOrderId: o.clientOrderId || defaultFuturesClientOrderId(orderId),
      side: o.side,
      positionSide: o.positionSide,
      type: o.type,
      origType: o.origType,
      timeInForce: o.timeInForce,
      price: o.price,
      stopPrice: o.stopPrice,
      origQty: o.qty,
      executedQty: 0,
      cumQuote: 0,
      status: 'NEW',
      reduceOnly: o.reduceOnly,
      closePosition: o.closePosition,
      goodTillDate: o.goodTillDate ?? 0,
      expiryReason: 0,
      time: now,
      updateTime: now,
      fills: [],
    };
    const rec: OrderRecord = { order, apiKey, market: o.market, seq: this.nextSeq++, onDone };
    this.accountOrders(apiKey).push(rec);
    this.orders.set(orderId, rec);
    if (announce) this.opts.emit({ type: 'futuresOrder', apiKey, order: futuresOrderSnapshot(order), execType: 'NEW' });
    return rec;
  }

  /** Matches a booked order from `ref`: market orders take the book, limit orders take then rest. */
  private work(rec: OrderRecord, ref: number): void {
    const o = rec.order;
    const m = rec.market;
    if (o.type === 'MARKET') {
      this.takerFill(rec, ref, undefined);
      if (isOpenFuturesOrder(o)) this.finish(rec, 'expire', o.reduceOnly && this.fillable(rec, 1) === 0 ? 4 : 9);
      return;
    }
    // A FOK (a triggered FOK stop here; a FOK limit was judged on arrival) fills all of it or nothing.
    const fok =
      o.timeInForce === 'FOK' && this.opts.book.available(m, o.side, o.price, ref) + 1e-12 < o.origQty - o.executedQty;
    if (!fok && this.opts.book.isMarketable(m, o.side, o.price, ref)) this.takerFill(rec, ref, o.price);
    if (!isOpenFuturesOrder(o)) return;
    if (o.timeInForce === 'IOC' || o.timeInForce === 'FOK')
      this.finish(rec, 'expire', o.timeInForce === 'IOC' ? 2 : 10);
    else this.restingIn(m).push(rec);
  }

  /** What of `left` the order may still fill: a reduce-only order no more than the position. */
  private fillable(rec: OrderRecord, left: number): number {
    const o = rec.order;
    const closingSide =
      (o.positionSide === 'LONG' && o.side === 'SELL') || (o.positionSide === 'SHORT' && o.side === 'BUY');
    if (!o.reduceOnly && !closingSide) return left;
    const pos = this.opts.ledger.position(rec.apiKey, rec.market.id, o.positionSide);
    return Math.min(left, reducingQty(pos.size, o.side === 'BUY' ? left : -left));
  }

  /** Takes liquidity from the synthetic book around `ref`, up to `limit` (if any). */
  private takerFill(rec: OrderRecord, ref: number, limit: number | undefined): void {
    const m = rec.market;
    const o = rec.order;
    const snapshot = this.opts.book.snapshot(m, this.opts.book.levels, ref);
    for (const [p, levelQty] of o.side === 'BUY' ? snapshot.asks : snapshot.bids) {
      if (limit !== undefined && (o.side === 'BUY' ? p > limit : p < limit)) break;
      const left = roundTo(o.origQty - o.executedQty, decimalsOf(m.stepSize));
      const want = floorToStep(Math.min(this.fillable(rec, left), levelQty), m.stepSize);
      if (want <= 0) break;
      this.applyFill(rec, want, p, false);
      if (!isOpenFuturesOrder(o)) break;
    }
  }

  /** Books one fill: the position and wallet (ledger), the order, the tape, the events. */
  private applyFill(
    rec: OrderRecord,
    qty: number,
    price: number,
    isMaker: boolean,
    commissionOverride?: number,
    commissionIncome: 'COMMISSION' | 'INSURANCE_CLEAR' = 'COMMISSION',
    execType: 'TRADE' | 'CALCULATED' = 'TRADE',
  ): number {
    const m = rec.market;
    const o = rec.order;
    const now = this.opts.replay.now();
    const rate = isMaker ? this.opts.fees.maker : this.opts.fees.taker;
    const quoteQty = roundAssetAmount(qty * price * m.contractSize);
    const commission = commissionOverride ?? roundAssetAmount(quoteQty * rate);
    const tradeId = this.nextTradeId++;
    const signed = o.side === 'BUY' ? qty : -qty;
    const realized = this.opts.ledger.settleFill(
      rec.apiKey,
      m,
      o.positionSide,
      signed,
      price,
      commission,
      now,
      tradeId,
      commissionIncome,
    );
    const fill: FuturesFill = {
      tradeId,
      price,
      qty,
      quoteQty,
      commission,
      commissionAsset: m.quote,
      realizedPnl: realized,
      isMaker,
      time: now,
    };
    o.executedQty = roundTo(o.executedQty + qty, decimalsOf(m.stepSize));
    o.cumQuote = roundAssetAmount(o.cumQuote + quoteQty);
    o.fills.push(fill);
    o.updateTime = now;
    o.status = nextStatus(o.status, o.executedQty + 1e-12 >= o.origQty ? 'fill' : 'partialFill');
    this.opts.ledger.recordTrade(rec.apiKey, {
      symbol: m.id,
      id: tradeId,
      orderId: o.orderId,
      side: o.side,
      positionSide: o.positionSide,
      price,
      qty,
      quoteQty,
      realizedPnl: realized,
      commission,
      commissionAsset: m.quote,
      time: now,
      isMaker,
    });
    if (o.side === 'BUY') m.liquidity.buyUsed += qty;
    else m.liquidity.sellUsed += qty;
    this.opts.replay.recordTrade(m, price, qty, (o.side === 'BUY') === isMaker);
    this.opts.emit({
      type: 'futuresOrder',
      apiKey: rec.apiKey,
      order: futuresOrderSnapshot(o),
      execType,
      fill,
    });
    this.opts.emit({
      type: 'accountUpdate',
      apiKey: rec.apiKey,
      reason: 'ORDER',
      balanceChanges: {},
      positions: [{ ...this.opts.ledger.position(rec.apiKey, m.id, o.positionSide) }],
    });
    if (!isOpenFuturesOrder(o)) rec.onDone?.(futuresOrderSnapshot(o));
    this.expireStranded(rec.apiKey, m, o.positionSide);
    return realized;
  }

  /**
   * Binance expires a reduce-only order as soon as the position it reduces is closed (one-way
   * mode; a reduce-only order cannot rest once there is nothing on its side to reduce), so that a
   * take-profit outliving its position never opens one: each is reported EXPIRED, after the fill's
   * own updates, the order whose fill closed the position included if some of it is left.
   */
  private expireStranded(apiKey: string, m: FuturesMarket, positionSide: PositionSide): void {
    for (const rec of this.accountOrders(apiKey)) {
      const o = rec.order;
      if (rec.market !== m || !o.reduceOnly || o.positionSide !== positionSide || !isOpenFuturesOrder(o)) continue;
      const left = roundTo(o.origQty - o.executedQty, decimalsOf(m.stepSize));
      if (this.fillable(rec, left) === 0) this.finish(rec, 'expire', 4);
    }
  }

  private finish(
    rec: OrderRecord,
    event: Extract<OrderEvent, 'cancel' | 'expire' | 'expireInMatch'>,
    expiryReason = 0,
  ): void {
    const o = rec.order;
    o.status = nextStatus(o.status, event);
    o.expiryReason = expiryReason;
    o.updateTime = this.opts.replay.now();
    const m = rec.market;
    this.resting.set(
      m.id,
      this.restingIn(m).filter((r) => r !== rec),
    );
    this.opts.emit({
      type: 'futuresOrder',
      apiKey: rec.apiKey,
      order: futuresOrderSnapshot(o),
      execType: event === 'cancel' ? 'CANCELED' : 'EXPIRED',
    });
    rec.onDone?.(futuresOrderSnapshot(o));
  }

  private accountOrders(apiKey: string): OrderRecord[] {
    if (!this.opts.ledger.has(apiKey)) throw new Error(`no account with apiKey ${apiKey}`);
    return listIn(this.byAccount, apiKey);
  }

  private restingIn(m: FuturesMarket): OrderRecord[] {
    return listIn(this.resting, m.id);
  }

  private find(
    apiKey: string,
    symbol: string,
    orderId: number | undefined,
    clientOrderId: string | undefined,
    preferOpen: boolean,
  ): OrderRecord | undefined {
    if (orderId !== undefined) {
      const rec = this.orders.get(orderId);
      return rec && rec.apiKey === apiKey && rec.market.id === symbol ? rec : undefined;
    }
    const matches = this.accountOrders(apiKey).filter(
      (r) => r.market.id === symbol && r.order.clientOrderId === clientOrderId,
    );
    if (preferOpen) {
      const open = matches.filter((r) => isOpenFuturesOrder(r.order));
      if (open.length > 0) return open[open.length - 1];
    }
    return matches[matches.length - 1];
  }
}

export function parseSide(side: string | undefined): 'BUY' | 'SELL' {
  if (side === 'BUY' || side === 'SELL') return side;
  throw side === undefined ? mandatoryParam('side') : binanceError(-1117, 'Invalid side.');
}

/** PRICE_FILTER: a positive multiple of the tick (-4014). */
export function checkPrice(m: FuturesMarket, price: number): void {
  if (!(price > 0) || !isMultipleOf(price, m.tickSize)) throw binanceError(-4014, 'Price not increased by tick size.');
}

/** LOT_SIZE: positive (-4003), a multiple of the step (-1111), at least minQty. */
export function checkQuantity(m: FuturesMarket, qty: number): void {
  if (!(qty > 0)) throw binanceError(-4003, 'Quantity less than or equal to zero.');
  if (!isMultipleOf(qty, m.stepSize))
    throw binanceError(-1111, 'Precision is over the maximum defined for this asset.');
  if (qty < m.minQty) throw filterFailure('LOT_SIZE');
}

function filterFailure(filter: string): SimError {
  return binanceError(-1013, `Filter failure: ${filter}`);
}
