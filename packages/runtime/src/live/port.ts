import type { ExpiryCause, FailureKind, HedgeSide, Liquidity, MarginMode, OrderRequest, OrderSide } from '@keel/core';

/** An order as the exchange reports it, normalised. */
export interface ExchangeOrder {
  readonly clientOrderId: string;
  readonly venueOrderId: string;
  readonly symbol: string;
  readonly status: 'open' | 'closed' | 'canceled' | 'rejected' | 'expired';
  readonly side: OrderSide;
  /** ccxt's unified type: `limit` or `market` (Binance's stop kinds carry a trigger price). */
  readonly type: string;
  /** Limit price; NaN for market orders. */
  readonly price: number;
  /** Stop / take-profit trigger; NaN for plain orders. */
  readonly triggerPrice: number;
  /**
   * What the exchange says the order keeps, for an order taken over from it (adopted): ccxt's
   * timeInForce (`PO` = post-only), post-only, reduce-only, a hedge-mode order's side, a GTD
   * order's expiry (NaN without one). Absent where the exchange's answer did not carry them.
   */
  readonly timeInForce?: string | undefined;
  readonly postOnly?: boolean | undefined;
  readonly reduceOnly?: boolean | undefined;
  readonly positionSide?: HedgeSide | undefined;
  readonly expireAt?: number | undefined;
  /** Why the exchange expired it, where its answer says (see @keel/exchange's ExchangeOrder.expiry). */
  readonly expiry?: { readonly cause: ExpiryCause; readonly detail: string } | undefined;
  readonly amount: number;
  readonly filled: number;
  readonly timestamp: number;
}

/** One execution as the exchange reports it, normalised. */
export interface ExchangeTrade {
  readonly tradeId: string;
  readonly clientOrderId?: string;
  readonly venueOrderId: string;
  readonly symbol: string;
  readonly side: OrderSide;
  readonly price: number;
  readonly amount: number;
  readonly fee: number;
  readonly feeAsset: string;
  readonly liquidity: Liquidity;
  readonly time: number;
}

export interface ExchangeBalance {
  readonly free: number;
  readonly used: number;
  readonly total: number;
}

/**
 * How a call of the port failed: core's closed set (docs/exchange.md maps the exchange's errors
 * onto it). Reads and cancels fail with it; a create never does: its outcomes are values
 * (`PlaceResult`).
 */
export class ExchangeFailure extends Error {
  constructor(
    readonly kind: FailureKind,
    message: string,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ExchangeFailure';
  }
}

/**
 * The outcome of an exactly-once create: the gateway's `PlaceOutcome`, whose loop (create, look up
 * by client id, resend) and retry budget (`RetryPolicy` of @keel/exchange) are the only ones a
 * create goes through. Every kind is final for the caller:
 * - `placed`: the exchange has the order(s), from its answer, a lookup by client id, or the user
 *   stream;
 * - `rejected`: the exchange (or the filter check before sending) refused it, or refused the keys
 *   (`auth`); nothing is open;
 * - `unavailable`: the budget ran out and nothing reached the exchange's books (turned away,
 *   rate-limited, circuit open, or in doubt and then not found); `failure` says how it was last
 *   turned away;
 * - `in-doubt`: a send may have landed and no lookup could tell, or the create failed in a way
 *   that is no answer of the exchange (`fatal`): never resend, reconcile by client id later.
 */
export type PlaceResult =
  | {
      readonly kind: 'placed';
      /** One order, or an OCO list's two in the order given. */
      readonly orders: readonly ExchangeOrder[];
      readonly via: 'response' | 'lookup' | 'stream';
    }
  | { readonly kind: 'rejected'; readonly reason: string }
  | { readonly kind: 'unavailable'; readonly reason: string; readonly failure: FailureKind }
  | { readonly kind: 'in-doubt'; readonly reason: string };

/** The order a single create placed; any other outcome throws it as an ExchangeFailure (tests, tools). */
export function placedOrder(r: PlaceResult): ExchangeOrder {
  if (r.kind === 'placed' && r.orders[0]) return r.orders[0];
  if (r.kind === 'placed') throw new Error('Invariant violated: a placed create without an order');
  throw new ExchangeFailure(r.kind === 'unavailable' ? r.failure : r.kind, r.reason);
}

/**
 * What a cancel or a lookup by client id needs to know of the order: whether it is a stop or
 * take-profit order (it has a trigger price). Binance USDⓈ-M keeps those in its Algo Order
 * service, apart from the book, and only its own endpoints cancel, show or list them.
 */
export interface OrderKind {
  readonly trigger?: boolean;
}

/** The kind of an order request (`OrderKind`): stop-market and stop-limit orders trigger. */
export function orderKind(req: OrderRequest): OrderKind {
  return { trigger: req.type === 'stop-market' || req.type === 'stop-limit' };
}

/** Options of a create (the gateway's CreateOptions). */
export interface PlaceOptions {
  /**
   * The id may already be on the exchange (sent before a restart): it is looked up first and sent
   * only if the exchange does not know it.
   */
  readonly mayExist?: boolean;
  /** Aborted: no request leaves for this order any more; the create ends `rejected`. */
  readonly signal?: AbortSignal;
}

/** A perpetual's position and settings on the exchange (Binance's positionRisk), one-way mode. */
export interface ExchangeFuturesPosition {
  readonly symbol: string;
  /** Signed: long > 0, short < 0; 0 flat. */
  readonly size: number;
  /** 0 when flat. */
  readonly entryPrice: number;
  readonly leverage: number;
  readonly marginMode: MarginMode;
  /** The isolated wallet (0 in cross margin). */
  readonly isolatedWallet: number;
}

/** A futures account as the exchange reports it. */
export interface ExchangeFuturesAccount {
  /** Binance's `dualSidePosition`: hedge mode holds LONG and SHORT positions apart. */
  readonly positionMode: 'one-way' | 'hedge';
  /** The wallet balance per asset (realised PnL, commissions, funding; no unrealised PnL). */
  readonly wallet: Readonly<Record<string, number>>;
  /** The asked-for symbols' positions (flat ones too, with their leverage and margin mode). */
  readonly positions: readonly ExchangeFuturesPosition[];
}

/** One funding payment from the exchange's income history. */
export interface ExchangeFundingIncome {
  /** The exchange's id of the payment (Binance's `tranId`). */
  readonly id: string;
  readonly symbol: string;
  readonly time: number;
  /** > 0 received, < 0 paid. */
  readonly amount: number;
  readonly asset: string;
}

/**
 * A forced close with its trades' commission: a liquidation (Binance's `autoclose-` LIQUIDATION
 * order: the whole position, a clearance fee), an auto-deleveraging close (`adl_autoclose`: part
 * or all of a profitable position, no fee) or the settlement of a delisted contract
 * (`settlement_autoclose-`: the whole position at the settlement price, the taker fee).
 */
export interface ExchangeForcedClose {
  readonly kind: 'liquidation' | 'adl' | 'settlement';
  /** The exchange's order id. */
  readonly id: string;
  readonly clientOrderId: string;
  readonly symbol: string;
  /** The fill price (average). */
  readonly price: number;
  /** The forced order's own price (a liquidation's: Binance's bankruptcy price). */
  readonly orderPrice: number;
  readonly amount: number;
  readonly time: number;
  /** The commission of its trades (a liquidation's: the clearance fee); NaN when its trades could not be read. */
  readonly fee: number;
}

/**
 * Which of the exchange's own closes an order is, by Binance's client ids (its USDⓈ-M user-data
 * docs): `autoclose-...` (or order type LIQUIDATION) a liquidation, `adl_autoclose` an
 * auto-deleveraging close, `settlement_autoclose-...` a delisting or delivery settlement; undefined
 * for any other order.
 */
export function forcedCloseKind(clientOrderId: string, type: string): 'liquidation' | 'adl' | 'settlement' | undefined {
  if (clientOrderId.startsWith('adl_autoclose')) return 'adl';
  if (clientOrderId.startsWith('settlement_autoclose')) return 'settlement';
  if (clientOrderId.startsWith('autoclose-') || type === 'liquidation') return 'liquidation';
  return undefined;
}

/**
 * What a live bot on USDⓈ-M perpetuals needs besides orders: the account's positions and
 * settings, leverage and margin mode, and the exchange's records of funding and forced closes
 * (each with the exchange's id, so a restart finds what it missed and nothing applies twice).
 * Calls fail with an `ExchangeFailure`.
 */
export interface LiveFutures {
  account(symbols: readonly string[]): Promise<ExchangeFuturesAccount>;
  /** Sets the symbol's leverage; refused by the exchange: an ExchangeFailure with its reason. */
  setLeverage(symbol: string, leverage: number): Promise<void>;
  setMarginMode(symbol: string, mode: MarginMode): Promise<void>;
  /** Funding payments at or after `since`, oldest first. */
  fundingIncome(symbol: string, since: number): Promise<ExchangeFundingIncome[]>;
  /** The contract's funding rates at or after `since`, with the mark they were charged at. */
  fundingRates(symbol: string, since: number): Promise<{ time: number; rate: number; markPrice: number }[]>;
  /**
   * The account's forced closes (liquidations, ADL and settlement closes) at or after `since`,
   * oldest first, leaving out those `known` says the caller has (applied already): their details
   * (the trades that give the fee, a request each) are not read again.
   */
  forcedCloses(symbol: string, since: number, known?: (id: string) => boolean): Promise<ExchangeForcedClose[]>;
  /**
   * Calls `onFunding` when the user-data stream reports a funding payment (Binance: ACCOUNT_UPDATE
   * with reason FUNDING_FEE), on the stream connection the account's order updates already use.
   * A hint only: what was paid is read from the income history (`fundingIncome`). Returns its stop.
   */
  watchFunding?(handlers: { onFunding(): void; onError(e: Error): void }): () => Promise<void>;
}

/** See `LiveExchange.budgetCounts` (the gateway's `BudgetCounts`). */
export interface ExchangeBudgetCounts {
  readonly ipWeightFull: number;
  readonly ipLimited: number;
  readonly orderCountFull: number;
  readonly ordersLimited: number;
}

/**
 * What the live venue and recovery need from an exchange account. Implemented over the ccxt
 * gateway of @keel/exchange, which owns exactly-once sending: `placeOrder` and `placeOco` resolve
 * a create whose answer was lost by looking it up by client id, never by sending again blindly,
 * and retry within the one budget; their callers do not retry. Reads and cancels fail with an
 * `ExchangeFailure`.
 */
export interface LiveExchange {
  /** Places one order exactly once. */
  placeOrder(req: OrderRequest, opts?: PlaceOptions): Promise<PlaceResult>;
  /**
   * Places a one-cancels-other pair as ONE native order list (where the exchange has them), with
   * the same exactly-once rules as `placeOrder`; the orders are returned in the order given.
   * Resolves to null, having sent nothing, when the pair is not one the exchange lists natively.
   */
  placeOco?(a: OrderRequest, b: OrderRequest, opts?: PlaceOptions): Promise<PlaceResult | null>;
  cancelOrder(clientOrderId: string, symbol: string, kind?: OrderKind): Promise<ExchangeOrder | null>;
  fetchOrder(clientOrderId: string, symbol: string, kind?: OrderKind): Promise<ExchangeOrder | null>;
  fetchOpenOrders(symbols: readonly string[]): Promise<ExchangeOrder[]>;
  fetchTrades(symbol: string, since: number): Promise<ExchangeTrade[]>;
  fetchBalances(): Promise<Record<string, ExchangeBalance>>;
  /** The last traded price of a market (its ticker). */
  lastPrice?(symbol: string): Promise<number>;
  /**
   * The market's status as the exchange lists it now, read afresh (not ccxt's markets, loaded at
   * connect): Binance's exchangeInfo `status`, TRADING when it takes orders; spot BREAK (a halted
   * or delisted pair), HALT, END_OF_DAY, ...; USDⓈ-M SETTLING once delisted, CLOSE,
   * PENDING_TRADING, ...; `NOT LISTED` when it is gone. Read by the bot's MarketStatusWatch.
   */
  marketStatus?(symbol: string): Promise<string>;
  /**
   * The asset the account pays its commissions on `symbol` in besides the market's own, when it
   * has chosen to (Binance spot: BNB, with "use BNB to pay fees" on); undefined when it pays them in
   * the asset received.
   */
  feeDiscountAsset?(symbol: string): Promise<string | undefined>;
  /** USDⓈ-M accounts (ccxt's binanceusdm): positions, leverage, margin mode, funding, liquidations. */
  readonly futures?: LiveFutures;
  /**
   * How often this connection met the exchange's shared budgets so far: windows in which requests
   * waited for the IP's weight or new orders for the account's order count, and the exchange's
   * refusals (429 / 418 for the IP, 429 -1015 for the account's orders). For the session report.
   */
  budgetCounts?(): ExchangeBudgetCounts;
  /** Streams order updates and executions (user data stream, REST polling as fallback). */
  watchExecutions(handlers: {
    onOrder(o: ExchangeOrder): void;
    onTrade(t: ExchangeTrade): void;
    onError(e: Error): void;
  }): () => Promise<void>;
}
