/** Public option and value types of the exchange simulator. */
import type { Bar, BracketSpec, FundingRateSeries } from '@keel/core';

/** One candle to replay: core's Bar without the optional columns (OPEN time in UTC ms). */
export type SimBar = Pick<Bar, 'time' | 'open' | 'high' | 'low' | 'close' | 'volume'>;

export interface SimMarketOptions {
  /** Unified symbol, `BASE/QUOTE` (e.g. `BTC/USDT`); the Binance id is the two joined (`BTCUSDT`). */
  symbol: string;
  /** PRICE_FILTER tickSize; default 0.01. */
  tickSize?: number;
  /** LOT_SIZE stepSize; default 0.00001. */
  stepSize?: number;
  /** LOT_SIZE minQty; default = stepSize. */
  minQty?: number;
  /** NOTIONAL minNotional (quote units); default 5. */
  minNotional?: number;
  /**
   * Candles to replay, in time order, or the path of a CSV / CSV.GZ candle file. Omitted: one day
   * of seeded synthetic 1m bars (a random walk from 100) starting at `startTime` or 2024-01-01.
   */
  bars?: SimBar[] | string;
  /** Futures: notional brackets (leverage and maintenance tiers); default core's DEFAULT_USDM_BRACKETS. */
  brackets?: readonly BracketSpec[];
  /** Futures: liquidation clearance fee rate (exchangeInfo `liquidationFee`); default 0.0125. */
  liquidationFee?: number;
  /**
   * Futures: the funding applied on schedule: a series, the path of a funding-rate file (Binance's
   * archive CSV `calc_time,funding_interval_hours,last_funding_rate`, or ccxt's
   * fetchFundingRateHistory rows as JSON), or a constant rate every 8 h from 00:00 UTC. Default:
   * 0.0001 (Binance's baseline rate) every 8 h over the data.
   */
  funding?: FundingRateSeries | string | number;
}

/** Which Binance protocol the simulator speaks. */
export type SimMarket = 'spot' | 'futures';

export interface SimFuturesOptions {
  /** Leverage of a symbol an account has not set (Binance: 20). */
  defaultLeverage?: number;
  /** Margin mode of a symbol an account has not set (Binance: cross). */
  defaultMarginMode?: 'cross' | 'isolated';
}

export interface SimAccountOptions {
  apiKey: string;
  secret: string;
  /** Free balances by asset, e.g. `{ USDT: 10_000, BTC: 0.5 }`. */
  balances: Record<string, number>;
  /**
   * Spot: pay commissions in BNB at 75 % of the rate (Binance's "use BNB to pay fees", its
   * `spotBNBBurn` setting) whenever the free BNB covers one; else in the asset received. Needs a
   * `BNB/<quote>` market for every quote traded (the commission's price). Default false; also set
   * over `POST /sapi/v1/bnbBurn`.
   */
  payFeesWithBnb?: boolean;
}

export interface SimFeeOptions {
  /** Maker commission rate, e.g. 0.001 = 0.1% (Binance's default VIP 0 rate). */
  maker: number;
  taker: number;
}

export interface SimLiquidityOptions {
  /**
   * Volume participation cap: the sim's own orders may fill at most `participation x bar volume`
   * per side per bar (shared by all accounts); the rest waits for the next bar. Default 0.1.
   */
  participation?: number;
  /** Levels shown per side by the synthetic order book (`/api/v3/depth`, depth streams). Default 20. */
  bookLevels?: number;
  /** Best ask minus best bid, in ticks. Default 1. */
  spreadTicks?: number;
}

export interface SimRateLimitOptions {
  /** REQUEST_WEIGHT per minute; Binance spot uses 6000. */
  weightPerMinute?: number;
  /** Requests sent while already limited (after a 429) before the IP is banned with 418. Default 5. */
  banAfter?: number;
  /** How long a 418 ban lasts, wall ms. Default 120000 (Binance's first ban is 2 minutes). */
  banMs?: number;
}

export interface ExchangeSimOptions {
  /**
   * `spot` (default): the Binance spot protocol (/api/v3). `futures`: Binance USDⓈ-M perpetuals
   * (/fapi/v1, v2, v3; /market/ws, /public/ws, /private/ws), one contract per market.
   */
  market?: SimMarket;
  /** Futures defaults (leverage, margin mode). */
  futures?: SimFuturesOptions;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 (default) = a random free port. */
  port?: number;
  markets: SimMarketOptions[];
  accounts?: SimAccountOptions[];
  /** Default `{ maker: 0.001, taker: 0.001 }` (spot VIP 0); futures `{ maker: 0.0002, taker: 0.0005 }`. */
  fees?: SimFeeOptions;
  /**
   * Replay clock start, UTC ms. Bars that open before it are history (served by klines, never
   * traded). Default: the earliest first bar's open time.
   */
  startTime?: number;
  /**
   * Replay speed relative to wall time (1 = real time, 60 = one minute per second). Omitted or 0:
   * the clock moves only when `step()` / `advanceTo()` is called (what tests want).
   */
  speed?: number;
  liquidity?: SimLiquidityOptions;
  rateLimits?: SimRateLimitOptions;
  /**
   * Serve the admin endpoint (`POST /_keel/admin/fault`), through which `keel exchange-sim fault`
   * injects faults into the running simulator. Needs a loopback `host`; default false (the
   * endpoint then refuses every request).
   */
  admin?: boolean;
  /**
   * Wall clock used for what a real client's clock is compared with (the signed `timestamp` and
   * recvWindow, rate-limit windows, bans). Default Date.now; tests may inject one.
   */
  wallClock?: () => number;
}

export type OrderSide = 'BUY' | 'SELL';

export const ORDER_TYPES = [
  'LIMIT',
  'MARKET',
  'LIMIT_MAKER',
  'STOP_LOSS',
  'STOP_LOSS_LIMIT',
  'TAKE_PROFIT',
  'TAKE_PROFIT_LIMIT',
] as const;
export type OrderType = (typeof ORDER_TYPES)[number];

export const TIME_IN_FORCE = ['GTC', 'IOC', 'FOK'] as const;
export type TimeInForce = (typeof TIME_IN_FORCE)[number];

/** EXPIRED_IN_MATCH: expired by self-trade prevention (only the `expireInMatch` fault makes it here). */
export type OrderStatus =
  | 'NEW'
  | 'PARTIALLY_FILLED'
  | 'FILLED'
  | 'CANCELED'
  | 'EXPIRED'
  | 'EXPIRED_IN_MATCH'
  | 'REJECTED';

export interface SimFill {
  tradeId: number;
  price: number;
  qty: number;
  commission: number;
  commissionAsset: string;
  isMaker: boolean;
  time: number;
}

/** An order as the sim holds it; what `getOrders()` returns. */
export interface SimOrder {
  symbol: string;
  orderId: number;
  clientOrderId: string;
  /** The OCO order list this order is a leg of, or -1. */
  orderListId: number;
  side: OrderSide;
  type: OrderType;
  timeInForce: TimeInForce | undefined;
  price: number;
  stopPrice: number;
  origQty: number;
  /** quoteOrderQty of a MARKET order sized in quote, else 0. */
  origQuoteOrderQty: number;
  executedQty: number;
  cummulativeQuoteQty: number;
  status: OrderStatus;
  /** Stop orders are not working until triggered. */
  isWorking: boolean;
  time: number;
  updateTime: number;
  workingTime: number;
  fills: SimFill[];
  /**
   * Why the exchange expired it, as Binance's executionReport `eR` says (UNFILLED_IOC_QUANTITY_EXPIRED,
   * UNFILLED_FOK_ORDER_EXPIRED, INSUFFICIENT_LIQUIDITY, OCO_TRIGGER); absent while it has not expired.
   */
  expiryReason?: string;
}

export interface SimBalance {
  free: number;
  locked: number;
}
