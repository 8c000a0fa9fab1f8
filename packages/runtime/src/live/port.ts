import type { FailureKind, Liquidity, OrderRequest, OrderSide } from '@keel/core';

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
 * onto it). For `placeOrder` / `placeOco` the kind is the create's outcome: `rejected` (refused,
 * nothing open), `transient` or `rate-limited` (nothing reached the exchange's books: safe to send
 * later with the same client id), `in-doubt` (it may have landed: look it up by client id, never
 * resend blindly), `auth` or `fatal` (a person must act).
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
 * What the live venue and recovery need from an exchange account. Implemented over the ccxt
 * gateway of @keel/exchange; `placeOrder` must be idempotent by client order id (a create that
 * timed out is resolved by lookup, never by sending again). Every method fails with an
 * `ExchangeFailure`.
 */
/** Options of a create (the gateway's CreateOptions). */
export interface PlaceOptions {
  /**
   * The id may already be on the exchange (sent before a restart): it is looked up first and sent
   * only if the exchange does not know it.
   */
  readonly mayExist?: boolean;
  /** Aborted: no request leaves for this order any more; the create fails `rejected`. */
  readonly signal?: AbortSignal;
}

export interface LiveExchange {
  placeOrder(req: OrderRequest, opts?: PlaceOptions): Promise<ExchangeOrder>;
  /**
   * Places a one-cancels-other pair as ONE native order list (where the exchange has them), with
   * the same exactly-once rules as `placeOrder`; the orders are returned in the order given.
   * Resolves to null, having sent nothing, when the pair is not one the exchange lists natively.
   */
  placeOco?(a: OrderRequest, b: OrderRequest, opts?: PlaceOptions): Promise<ExchangeOrder[] | null>;
  cancelOrder(clientOrderId: string, symbol: string): Promise<ExchangeOrder | null>;
  fetchOrder(clientOrderId: string, symbol: string): Promise<ExchangeOrder | null>;
  fetchOpenOrders(symbols: readonly string[]): Promise<ExchangeOrder[]>;
  fetchTrades(symbol: string, since: number): Promise<ExchangeTrade[]>;
  fetchBalances(): Promise<Record<string, ExchangeBalance>>;
  /** Streams order updates and executions (user data stream, REST polling as fallback). */
  watchExecutions(handlers: {
    onOrder(o: ExchangeOrder): void;
    onTrade(t: ExchangeTrade): void;
    onError(e: Error): void;
  }): () => Promise<void>;
}
