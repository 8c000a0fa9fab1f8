/**
 * The USDⓈ-M futures side of the simulated exchange: contracts, orders, conditional (algo)
 * orders, positions, and the events through which they leave the exchange. Binance's names are
 * kept where the protocol shows them (positionSide, reduceOnly, algoStatus...).
 */
import type { FundingRateSeries, NotionalBracket, PositionSide } from '@keel/core';
import type { OrderStatus } from '../../types.ts';
import type { MarketSpec } from '../model.ts';

/** A perpetual contract as the exchange lists it: a replayed market plus its margin rules. */
export interface FuturesMarketSpec extends MarketSpec {
  /** Notional brackets (leverage & maintenance tiers). */
  brackets: readonly NotionalBracket[];
  /** Liquidation clearance fee rate (exchangeInfo `liquidationFee`). */
  clearanceRate: number;
  /** Funding events applied while the replay runs (empty: no funding). */
  funding: FundingRateSeries;
  /** Base quantity one contract stands for: 1 on Binance USDⓈ-M. */
  contractSize: number;
}

export const FUTURES_ORDER_TYPES = ['LIMIT', 'MARKET'] as const;
export const CONDITIONAL_ORDER_TYPES = ['STOP_MARKET', 'TAKE_PROFIT_MARKET', 'STOP', 'TAKE_PROFIT'] as const;
export type ConditionalOrderType = (typeof CONDITIONAL_ORDER_TYPES)[number];
/** What a futures order is in the matching engine (a forced close is LIQUIDATION). */
export type FuturesOrderType = 'LIMIT' | 'MARKET' | ConditionalOrderType | 'LIQUIDATION';
/** GTX = post-only (Good Till Crossing); GTD = good till `goodTillDate`. */
export const FUTURES_TIME_IN_FORCE = ['GTC', 'IOC', 'FOK', 'GTX', 'GTD'] as const;
export type FuturesTimeInForce = (typeof FUTURES_TIME_IN_FORCE)[number];
export type MarginType = 'CROSSED' | 'ISOLATED';

export interface FuturesFill {
  tradeId: number;
  price: number;
  qty: number;
  quoteQty: number;
  commission: number;
  commissionAsset: string;
  /** Realised PnL of the part of the fill that closed a position (Binance `rp`). */
  realizedPnl: number;
  isMaker: boolean;
  time: number;
}

/** A futures order (in the matching engine: LIMIT and MARKET; triggered conditionals become these). */
export interface SimFuturesOrder {
  symbol: string;
  orderId: number;
  clientOrderId: string;
  side: 'BUY' | 'SELL';
  positionSide: PositionSide;
  type: FuturesOrderType;
  /** The type it was placed as (a triggered STOP_MARKET is a MARKET order of origType STOP_MARKET). */
  origType: FuturesOrderType;
  timeInForce: FuturesTimeInForce;
  price: number;
  stopPrice: number;
  origQty: number;
  executedQty: number;
  /** Sum of price x qty of the fills (`cumQuote`). */
  cumQuote: number;
  status: OrderStatus;
  reduceOnly: boolean;
  closePosition: boolean;
  /** A GTD order's expiry (UTC ms, whole seconds); 0 for the others. */
  goodTillDate: number;
  /**
   * Why the exchange expired it, as ORDER_TRADE_UPDATE's `er` says: 0 none, 1 self-trade
   * prevention, 2 IOC rest, 4 reduce-only with nothing left to reduce, 9 market rest, 10 FOK.
   */
  expiryReason: number;
  time: number;
  updateTime: number;
  fills: FuturesFill[];
}

/** Binance's conditional-order states (the Algo Order API). */
export type AlgoStatus = 'NEW' | 'CANCELED' | 'TRIGGERED' | 'FINISHED' | 'EXPIRED' | 'REJECTED';

/** A conditional order held by the algo service until its trigger price trades. */
export interface SimAlgoOrder {
  algoId: number;
  clientAlgoId: string;
  symbol: string;
  side: 'BUY' | 'SELL';
  positionSide: PositionSide;
  orderType: ConditionalOrderType;
  timeInForce: FuturesTimeInForce;
  /** 0 with closePosition (the whole position is closed at trigger time). */
  quantity: number;
  triggerPrice: number;
  /** Limit price of STOP / TAKE_PROFIT; 0 for the market kinds. */
  price: number;
  reduceOnly: boolean;
  closePosition: boolean;
  algoStatus: AlgoStatus;
  createTime: number;
  updateTime: number;
  triggerTime: number;
  /** The order placed in the matching engine when it triggered ('' before). */
  actualOrderId: string;
}

/** One position (per symbol and positionSide). `size` is signed: SHORT positions are negative. */
export interface SimPosition {
  symbol: string;
  positionSide: PositionSide;
  size: number;
  entryPrice: number;
  /** Margin held by an isolated position (Binance `isolatedWallet`); 0 for cross. */
  isolatedWallet: number;
  /** Pre-fee accumulated realised PnL (`cr`). */
  accumulatedRealized: number;
  updateTime: number;
}

/** An account's trade on a futures market (GET /fapi/v1/userTrades). */
export interface FuturesTrade {
  symbol: string;
  id: number;
  orderId: number;
  side: 'BUY' | 'SELL';
  positionSide: PositionSide;
  price: number;
  qty: number;
  quoteQty: number;
  realizedPnl: number;
  commission: number;
  commissionAsset: string;
  time: number;
  isMaker: boolean;
}

/** Binance's income types the sim books (GET /fapi/v1/income). */
export type IncomeType = 'REALIZED_PNL' | 'FUNDING_FEE' | 'COMMISSION' | 'INSURANCE_CLEAR' | 'TRANSFER';

export interface IncomeRecord {
  tranId: number;
  symbol: string;
  incomeType: IncomeType;
  income: number;
  asset: string;
  time: number;
  tradeId: string;
  info: string;
}

/** Why an account changed (ACCOUNT_UPDATE `m`). */
export type AccountUpdateReason = 'ORDER' | 'FUNDING_FEE' | 'MARGIN_TYPE_CHANGE' | 'ADJUSTMENT' | 'DEPOSIT';

/** What leaves the futures exchange for one account (the WS layer turns these into Binance events). */
export type FuturesAccountEvent =
  | {
      type: 'futuresOrder';
      apiKey: string;
      order: SimFuturesOrder;
      /** CALCULATED: an ADL close (Binance: the execution type of a liquidation or ADL execution). */
      execType: 'NEW' | 'TRADE' | 'CALCULATED' | 'CANCELED' | 'EXPIRED';
      fill?: FuturesFill;
    }
  | { type: 'algoOrder'; apiKey: string; algo: SimAlgoOrder }
  | {
      type: 'accountUpdate';
      apiKey: string;
      reason: AccountUpdateReason;
      /** Balance changes by asset (`bc`), 0 when the change is not a transfer-like one. */
      balanceChanges: Record<string, number>;
      /** Positions to report (copies). */
      positions: SimPosition[];
    }
  | { type: 'accountConfig'; apiKey: string; symbol: string; leverage: number };

export function isOpenFuturesOrder(o: SimFuturesOrder): boolean {
  return o.status === 'NEW' || o.status === 'PARTIALLY_FILLED';
}

export function futuresOrderSnapshot(o: SimFuturesOrder): SimFuturesOrder {
  return { ...o, fills: [...o.fills] };
}

/** Binance's client id rule for futures orders and algo orders. */
export const FUTURES_CLIENT_ID_PATTERN = /^[.A-Z:/a-z0-9_-]{1,36}$/;

/** Key of a position in an account: `LINKUSDT:BOTH`. */
export function positionKey(symbol: string, side: PositionSide): string {
  return `${symbol}:${side}`;
}
