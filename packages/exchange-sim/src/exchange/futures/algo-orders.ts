/**
 * Conditional orders (Binance's Algo Order API, `POST /fapi/v1/algoOrder` with algoType
 * CONDITIONAL, where ccxt sends every STOP / TAKE_PROFIT order of a USDⓈ-M contract): held apart
 * from the book until the replayed price reaches the trigger, then placed into the matching
 * engine as a MARKET (STOP_MARKET, TAKE_PROFIT_MARKET) or LIMIT (STOP, TAKE_PROFIT) order whose
 * client id is the algo's. A closePosition order closes whatever the position is at that moment.
 * Status: NEW -> TRIGGERED -> FINISHED (the order it placed is done), or CANCELED / EXPIRED
 * (nothing to close when it triggered) / REJECTED (the triggered order was refused).
 */
import { binanceError, mandatoryParam, SimError } from '../../errors.ts';
import { decimalsOf, roundTo } from '../../num.ts';
import { pathMove, triggerPrice, triggersUpward, wouldTriggerAt } from '../path.ts';
import type { MarketReplay } from '../replay.ts';
import { listIn } from '../replay-exchange.ts';
import type { FuturesLedger, FuturesMarket } from './ledger.ts';
import { checkPrice, checkQuantity, type FuturesMatching, parseSide } from './matching.ts';
import {
  CONDITIONAL_ORDER_TYPES,
  type ConditionalOrderType,
  FUTURES_CLIENT_ID_PATTERN,
  FUTURES_TIME_IN_FORCE,
  type FuturesAccountEvent,
  type FuturesTimeInForce,
  type SimAlgoOrder,
} from './model.ts';

/** `POST /fapi/v1/algoOrder` as the REST layer parses it. */
export interface AlgoOrderRequest {
  symbol: string;
  algoType: string | undefined;
  side: string | undefined;
  positionSide: string | undefined;
  type: string | undefined;
  timeInForce: string | undefined;
  quantity: number | undefined;
  price: number | undefined;
  triggerPrice: number | undefined;
  reduceOnly: string | undefined;
  closePosition: string | undefined;
  clientAlgoId: string | undefined;
  workingType: string | undefined;
}

interface AlgoRecord {
  algo: SimAlgoOrder;
  apiKey: string;
  market: FuturesMarket;
  seq: number;
}

export interface AlgoOrdersOptions {
  replay: MarketReplay;
  ledger: FuturesLedger;
  matching: FuturesMatching;
  market(id: string): FuturesMarket | undefined;
  emit(e: FuturesAccountEvent): void;
}

export function defaultClientAlgoId(algoId: number): string {
  return `sim-algo-${algoId}`;
}

function isStopLoss(t: ConditionalOrderType): boolean {
  return t === 'STOP' || t === 'STOP_MARKET';
}

export class AlgoOrders {
  private readonly records = new Map<number, AlgoRecord>();
  private readonly byAccount = new Map<string, AlgoRecord[]>();
  private nextAlgoId = 3_000_001;
  private nextSeq = 0;

  constructor(private readonly opts: AlgoOrdersOptions) {}

  place(apiKey: string, req: AlgoOrderRequest): SimAlgoOrder {
    const { matching } = this.opts;
    const m = this.opts.market(req.symbol);
    if (!m) throw binanceError(-1121, 'Invalid symbol.');
    matching.checkTrading(m);
    if (req.algoType === undefined) throw mandatoryParam('algoType');
    if (req.algoType !== 'CONDITIONAL') throw binanceError(-1116, 'Invalid algoType.');
    const side = parseSide(req.side);
    if (req.type === undefined) throw mandatoryParam('type');
    const type = CONDITIONAL_ORDER_TYPES.find((t) => t === req.type);
    if (type === undefined) throw binanceError(-1116, 'Invalid orderType.');
    const positionSide = matching.resolvePositionSide(apiKey, req.positionSide);
    const reduceOnly = matching.parseReduceOnly(apiKey, req.reduceOnly);
    const closePosition = req.closePosition === 'true';
    if (req.closePosition !== undefined && req.closePosition !== 'true' && req.closePosition !== 'false')
      throw binanceError(-1100, "Illegal characters found in parameter 'closePosition'.");
    if (req.triggerPrice === undefined) throw mandatoryParam('triggerPrice');
    const isLimit = type === 'STOP' || type === 'TAKE_PROFIT';
    if (isLimit && req.price === undefined) throw mandatoryParam('price');
    if (closePosition) {
      if (isLimit) throw binanceError(-1106, "Parameter 'closePosition' sent when not required.");
      if (req.quantity !== undefined) throw binanceError(-4137, 'Quantity must be zero with closePosition equals true');
    } else if (req.quantity === undefined) throw mandatoryParam('quantity');
    let timeInForce: FuturesTimeInForce = 'GTC';
    if (req.timeInForce !== undefined) {
      const tif = FUTURES_TIME_IN_FORCE.find((t) => t === req.timeInForce);
      if (tif === undefined) throw binanceError(-1115, 'Invalid timeInForce.');
      timeInForce = tif;
    }
    if (req.workingType !== undefined && req.workingType !== 'CONTRACT_PRICE' && req.workingType !== 'MARK_PRICE')
      throw binanceError(-1100, "Illegal characters found in parameter 'workingType'.");
    const clientAlgoId = req.clientAlgoId;
    if (clientAlgoId !== undefined) {
      if (!FUTURES_CLIENT_ID_PATTERN.test(clientAlgoId)) throw binanceError(-4015, 'Client order id is not valid.');
      if (this.accountAlgos(apiKey).some((r) => r.algo.clientAlgoId === clientAlgoId && r.algo.algoStatus === 'NEW'))
        throw binanceError(-4116, 'ClientOrderId is duplicated.');
    }
    if (!Number.isFinite(m.price)) throw binanceError(-1013, 'Market is closed.');
    const trigger = req.triggerPrice;
    checkPrice(m, trigger);
    const price = isLimit ? (req.price as number) : 0;
    if (isLimit) checkPrice(m, price);
    const qty = closePosition ? 0 : (req.quantity as number);
    if (!closePosition) checkQuantity(m, qty);
    matching.takeRejection();
    const signed = side === 'BUY' ? qty : -qty;
    if (closePosition) {
      const pos = this.opts.ledger.position(apiKey, m.id, positionSide);
      if (pos.size === 0 || (side === 'BUY') === pos.size > 0)
        throw binanceError(-2022, 'ReduceOnly Order is rejected.');
    } else {
      const closesOnly = matching.checkPosition(apiKey, m, positionSide, signed, reduceOnly);
      if (!closesOnly) matching.checkOpening(apiKey, m, positionSide, signed, isLimit ? price : trigger);
    }
    if (wouldTriggerAt(isStopLoss(type), side, trigger, m.price))
      throw binanceError(-2021, 'Order would immediately trigger.');
    const now = this.opts.replay.now();
    const algoId = this.nextAlgoId++;
    const algo: SimAlgoOrder = {
      algoId,
      clientAlgoId: clientAlgoId ?? defaultClientAlgoId(algoId),
      symbol: m.id,
      side,
      positionSide,
      orderType: type,
      timeInForce,
      quantity: qty,
      triggerPrice: trigger,
      price,
      reduceOnly,
      closePosition,
      algoStatus: 'NEW',
      createTime: now,
      updateTime: now,
      triggerTime: 0,
      actualOrderId: '',
    };
    const rec: AlgoRecord = { algo, apiKey, market: m, seq: this.nextSeq++ };
    this.records.set(algoId, rec);
    this.accountAlgos(apiKey).push(rec);
    this.emitAlgo(rec);
    return { ...algo };
  }

  cancel(
    apiKey: string,
    symbol: string | undefined,
    algoId: number | undefined,
    clientAlgoId: string | undefined,
  ): SimAlgoOrder {
    const rec = this.find(apiKey, symbol, algoId, clientAlgoId, true);
    if (!rec || rec.algo.algoStatus !== 'NEW') throw binanceError(-2011, 'Unknown order sent.');
    this.setStatus(rec, 'CANCELED');
    return { ...rec.algo };
  }

  /** Cancels every waiting conditional order of the account in the market; returns how many. */
  cancelAll(apiKey: string, symbol: string): number {
    let n = 0;
    for (const rec of this.accountAlgos(apiKey)) {
      if (rec.market.id !== symbol || rec.algo.algoStatus !== 'NEW') continue;
      this.setStatus(rec, 'CANCELED');
      n++;
    }
    return n;
  }

  query(apiKey: string, algoId: number | undefined, clientAlgoId: string | undefined): SimAlgoOrder {
    const rec = this.find(apiKey, undefined, algoId, clientAlgoId, false);
    if (!rec) throw binanceError(-2013, 'Order does not exist.');
    return { ...rec.algo };
  }

  algosOf(apiKey: string, symbol?: string): SimAlgoOrder[] {
    return this.accountAlgos(apiKey)
      .filter((r) => symbol === undefined || r.market.id === symbol)
      .map((r) => ({ ...r.algo }));
  }

  openAlgos(apiKey: string, symbol?: string): SimAlgoOrder[] {
    return this.algosOf(apiKey, symbol).filter((a) => a.algoStatus === 'NEW');
  }

  /** The replayed price moved: conditional orders whose trigger the path reached place their order. */
  onPriceMove(m: FuturesMarket, from: number, to: number, withinBar: boolean): void {
    const move = pathMove(from, to);
    const due = [...this.records.values()]
      .filter((r) => r.market === m && r.algo.algoStatus === 'NEW')
      .filter((r) => {
        const { orderType, side, triggerPrice: t } = r.algo;
        return triggersUpward(isStopLoss(orderType), side) ? move.reachedGoingUp(t) : move.reachedGoingDown(t);
      })
      .sort(
        (x, y) =>
          (to >= from ? x.algo.triggerPrice - y.algo.triggerPrice : y.algo.triggerPrice - x.algo.triggerPrice) ||
          x.seq - y.seq,
      );
    for (const rec of due) this.trigger(rec, triggerPrice(move, rec.algo.triggerPrice, to, withinBar));
  }

  private trigger(rec: AlgoRecord, at: number): void {
    const a = rec.algo;
    const m = rec.market;
    const now = this.opts.replay.now();
    a.triggerTime = now;
    const pos = this.opts.ledger.position(rec.apiKey, m.id, a.positionSide);
    let qty = a.quantity;
    if (a.closePosition) {
      const closable = (a.side === 'BUY') === pos.size < 0 ? Math.abs(pos.size) : 0;
      if (closable === 0) {
        this.setStatus(rec, 'EXPIRED');
        return;
      }
      qty = roundTo(closable, decimalsOf(m.stepSize));
    }
    const signed = a.side === 'BUY' ? qty : -qty;
    try {
      const closesOnly = this.opts.matching.checkPosition(
        rec.apiKey,
        m,
        a.positionSide,
        signed,
        a.reduceOnly || a.closePosition,
      );
      if (!closesOnly)
        this.opts.matching.checkOpening(rec.apiKey, m, a.positionSide, signed, a.price > 0 ? a.price : at);
    } catch (e) {
      if (!(e instanceof SimError)) throw e;
      this.setStatus(rec, 'REJECTED');
      return;
    }
    a.actualOrderId = String(this.opts.matching.reserveOrderId());
    this.setStatus(rec, 'TRIGGERED');
    const isLimit = a.orderType === 'STOP' || a.orderType === 'TAKE_PROFIT';
    this.opts.matching.placeInternal(
      rec.apiKey,
      {
        market: m,
        side: a.side,
        positionSide: a.positionSide,
        type: isLimit ? 'LIMIT' : 'MARKET',
        origType: a.orderType,
        timeInForce: a.timeInForce,
        price: a.price,
        stopPrice: a.triggerPrice,
        qty,
        reduceOnly: a.reduceOnly || a.closePosition,
        closePosition: a.closePosition,
        clientOrderId: a.clientAlgoId,
        orderId: Number(a.actualOrderId),
      },
      at,
      () => {
        if (a.algoStatus === 'TRIGGERED') this.setStatus(rec, 'FINISHED');
      },
    );
  }

  private setStatus(rec: AlgoRecord, status: SimAlgoOrder['algoStatus']): void {
    rec.algo.algoStatus = status;
    rec.algo.updateTime = this.opts.replay.now();
    this.emitAlgo(rec);
  }

  private emitAlgo(rec: AlgoRecord): void {
    this.opts.emit({ type: 'algoOrder', apiKey: rec.apiKey, algo: { ...rec.algo } });
  }

  private accountAlgos(apiKey: string): AlgoRecord[] {
    if (!this.opts.ledger.has(apiKey)) throw new Error(`no account with apiKey ${apiKey}`);
    return listIn(this.byAccount, apiKey);
  }

  private find(
    apiKey: string,
    symbol: string | undefined,
    algoId: number | undefined,
    clientAlgoId: string | undefined,
    preferOpen: boolean,
  ): AlgoRecord | undefined {
    if (algoId !== undefined) {
      const rec = this.records.get(algoId);
      return rec && rec.apiKey === apiKey && (symbol === undefined || rec.market.id === symbol) ? rec : undefined;
    }
    const matches = this.accountAlgos(apiKey).filter(
      (r) => r.algo.clientAlgoId === clientAlgoId && (symbol === undefined || r.market.id === symbol),
    );
    if (preferOpen) {
      const open = matches.filter((r) => r.algo.algoStatus === 'NEW');
      if (open.length > 0) return open[open.length - 1];
    }
    return matches[matches.length - 1];
  }
}
