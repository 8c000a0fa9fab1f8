import type { ClientOrderId, VenueOrderId } from '../util/brand.ts';

export type OrderSide = 'buy' | 'sell';
/**
 * The position a hedge-mode perpetual order trades (Binance's positionSide LONG or SHORT): a buy
 * opens or adds to the long side and a sell reduces it; a sell opens the short side and a buy
 * reduces it. Absent in one-way mode and on spot.
 */
export type HedgeSide = 'long' | 'short';
export type TimeInForce = 'GTC' | 'IOC' | 'FOK' | 'GTD';
export type Liquidity = 'maker' | 'taker';

export type TrailingOffset =
  | { readonly kind: 'amount'; readonly value: number }
  | { readonly kind: 'percent'; readonly value: number };

interface OrderCommon {
  readonly id: ClientOrderId;
  readonly symbol: string;
  readonly side: OrderSide;
  /** Base-asset amount (contracts for derivatives), always > 0. */
  readonly amount: number;
  readonly timeInForce: TimeInForce;
  /** Expiry for GTD orders, UTC ms. */
  readonly expireAt?: number | undefined;
  readonly postOnly?: boolean | undefined;
  readonly reduceOnly?: boolean | undefined;
  /** Hedge-mode perpetuals only, and there required: the side the order trades (see HedgeSide). */
  readonly positionSide?: HedgeSide | undefined;
  /** Free text carried through to fills and reports (e.g. "entry", "take-profit"). */
  readonly tag?: string | undefined;
  /** Orders in the same OCO group cancel each other when one fills. */
  readonly ocoGroup?: string | undefined;
  /** For bracket exits: the entry order whose fill activates this order. */
  readonly parentId?: ClientOrderId | undefined;
  /**
   * For a modification's replacement (ctx.modify): the order it replaces, cancelled as it was
   * submitted. A live venue sends the replacement only once the exchange has confirmed that cancel
   * (docs/live.md).
   */
  readonly replaces?: ClientOrderId | undefined;
  /**
   * With `replaces`: what the replaced order had filled when it was replaced. A live venue sends
   * the replacement only if the original ends with no more filled than this (the replacement was
   * sized on the rest); it is in the replacement's write-ahead record, so a restart decides alike.
   */
  readonly replacesFilled?: number | undefined;
}

export type MarketOrder = OrderCommon & { readonly type: 'market' };
export type LimitOrder = OrderCommon & { readonly type: 'limit'; readonly price: number };
export type StopMarketOrder = OrderCommon & { readonly type: 'stop-market'; readonly stopPrice: number };
export type StopLimitOrder = OrderCommon & {
  readonly type: 'stop-limit';
  readonly stopPrice: number;
  readonly price: number;
};
export type TrailingStopOrder = OrderCommon & { readonly type: 'trailing-stop'; readonly trail: TrailingOffset };

/** What a strategy (or a user) asks for. Discriminated on `type`. */
export type OrderRequest = MarketOrder | LimitOrder | StopMarketOrder | StopLimitOrder | TrailingStopOrder;
export type OrderType = OrderRequest['type'];

export const ORDER_STATUSES = [
  'initialized',
  'denied',
  'submitted',
  'accepted',
  'rejected',
  'partially-filled',
  'pending-cancel',
  'filled',
  'cancelled',
  'expired',
] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const ORDER_EVENTS = [
  'deny',
  'submit',
  'accept',
  'reject',
  'trigger',
  'modify',
  'fill-partial',
  'fill',
  'cancel-request',
  'cancel-reject',
  'cancel',
  'expire',
] as const;
export type OrderEventKind = (typeof ORDER_EVENTS)[number];

export const TERMINAL_STATUSES: ReadonlySet<OrderStatus> = new Set([
  'denied',
  'rejected',
  'filled',
  'cancelled',
  'expired',
]);

export function isTerminal(s: OrderStatus): boolean {
  return TERMINAL_STATUSES.has(s);
}

/**
 * The order lifecycle as a table: (status, event) -> status. A pair that is not in the table is
 * an illegal transition and throws: a venue that reports a fill on a cancelled order is a bug to
 * see, not a state to guess. `cancel-reject` returns to where the order was before the request,
 * which depends on whether anything has filled (see `transition`).
 */
export const ORDER_TRANSITIONS: Readonly<Record<OrderStatus, Partial<Record<OrderEventKind, OrderStatus>>>> = {
  initialized: { deny: 'denied', submit: 'submitted' },
  submitted: {
    accept: 'accepted',
    reject: 'rejected',
    'fill-partial': 'partially-filled',
    fill: 'filled',
    'cancel-request': 'pending-cancel',
    cancel: 'cancelled',
    expire: 'expired',
  },
  accepted: {
    trigger: 'accepted',
    modify: 'accepted',
    'fill-partial': 'partially-filled',
    fill: 'filled',
    'cancel-request': 'pending-cancel',
    cancel: 'cancelled',
    expire: 'expired',
  },
  'partially-filled': {
    trigger: 'partially-filled',
    modify: 'partially-filled',
    'fill-partial': 'partially-filled',
    fill: 'filled',
    'cancel-request': 'pending-cancel',
    cancel: 'cancelled',
    expire: 'expired',
  },
  'pending-cancel': {
    'fill-partial': 'pending-cancel',
    fill: 'filled',
    cancel: 'cancelled',
    expire: 'expired',
    'cancel-reject': 'accepted',
  },
  denied: {},
  rejected: {},
  filled: {},
  cancelled: {},
  expired: {},
};

export class IllegalTransitionError extends Error {
  constructor(
    readonly from: OrderStatus,
    readonly event: OrderEventKind,
    readonly orderId?: string,
  ) {
    super(`Illegal order transition: ${event} in status ${from}${orderId ? ` (order ${orderId})` : ''}`);
    this.name = 'IllegalTransitionError';
  }
}

export function canTransition(from: OrderStatus, event: OrderEventKind): boolean {
  return ORDER_TRANSITIONS[from][event] !== undefined;
}

export function transition(from: OrderStatus, event: OrderEventKind, filledAmount = 0, orderId?: string): OrderStatus {
  const to = ORDER_TRANSITIONS[from][event];
  if (to === undefined) throw new IllegalTransitionError(from, event, orderId);
  if (event === 'cancel-reject') return filledAmount > 0 ? 'partially-filled' : 'accepted';
  return to;
}

/** The mutable state of one order as the engine and the stores track it. */
export interface OrderState {
  readonly request: OrderRequest;
  status: OrderStatus;
  filled: number;
  /** Volume-weighted average fill price (NaN before the first fill). */
  avgPrice: number;
  fee: number;
  createdAt: number;
  updatedAt: number;
  venueOrderId?: VenueOrderId;
  /** For stops: whether the trigger has been hit. For trailing stops: the current stop level. */
  triggered: boolean;
  stopLevel: number;
  /** Why it was denied, rejected, cancelled or expired, for humans. */
  reason?: string;
  /** Price the order was decided at (the signal bar's close), used by the submission check. */
  decisionPrice: number;
  /** Inactive until its parent fills (bracket exits). */
  active: boolean;
}

export function newOrderState(request: OrderRequest, time: number, decisionPrice: number): OrderState {
  return {
    request,
    status: 'initialized',
    filled: 0,
    avgPrice: Number.NaN,
    fee: 0,
    createdAt: time,
    updatedAt: time,
    triggered: false,
    stopLevel: Number.NaN,
    decisionPrice,
    active: request.parentId === undefined,
  };
}

/**
 * True when an order has none of the optional fields (expiry, post-only, reduce-only, tag, OCO
 * group, parent): the plain order most strategies send, which the engine and the order log keep
 * compact. The links may sit on another object than the options (the engine's OrderInput).
 */
export function withoutOptions(
  o: Pick<OrderCommon, 'expireAt' | 'postOnly' | 'reduceOnly' | 'tag' | 'positionSide'>,
  links: Pick<OrderCommon, 'ocoGroup' | 'parentId' | 'replaces'>,
): boolean {
  return (
    o.expireAt === undefined &&
    o.postOnly === undefined &&
    o.reduceOnly === undefined &&
    o.positionSide === undefined &&
    o.tag === undefined &&
    links.ocoGroup === undefined &&
    links.parentId === undefined &&
    links.replaces === undefined
  );
}

/**
 * What the simulated venue writes in the reason of an order it cancels at the fill because the
 * account cannot pay it there (`insufficient USDT at fill: ...`): backtrader's Margin status.
 */
export const AT_FILL = ' at fill: ';

/** Why an order did not execute, when something refused it (none for a fill, expiry or own cancel). */
export type Refusal = 'denied' | 'rejected' | 'cancelled-at-fill';

/**
 * Denied before the venue (a risk rule, the order's own fields, the exchange filters), rejected by
 * it on arrival, or cancelled by it at the fill (not enough cash or coins at the fill price);
 * null for every other order.
 */
export function refusalOf(o: OrderState): Refusal | null {
  if (o.status === 'denied' || o.status === 'rejected') return o.status;
  return o.status === 'cancelled' && o.reason?.includes(AT_FILL) === true ? 'cancelled-at-fill' : null;
}

export function remaining(o: OrderState): number {
  return o.request.amount - o.filled;
}

/**
 * True for an order that is executing now and has not finished: a market order, or a stop-market
 * or trailing stop whose trigger has fired (its execution is a market order). Its remaining
 * amount is about to move the position, so position-based decisions count it (a resting limit
 * or an untriggered stop may never fill and is not counted). An inactive bracket exit is not.
 */
export function isInFlight(o: OrderState): boolean {
  if (!o.active || isTerminal(o.status)) return false;
  const t = o.request.type;
  return t === 'market' || (o.triggered && (t === 'stop-market' || t === 'trailing-stop'));
}

/** One execution against an order. */
export interface Fill {
  readonly orderId: ClientOrderId;
  readonly tradeId: string;
  readonly symbol: string;
  readonly side: OrderSide;
  readonly price: number;
  readonly amount: number;
  readonly fee: number;
  readonly feeAsset: string;
  /**
   * A fee paid outside the market (in neither its base nor its quote: Binance's BNB), valued in the
   * account currency at the price of its asset when the fill was booked; absent when that price was
   * not known (the fee is then reported as not valued) and for every other fee.
   */
  readonly feeValue?: number | undefined;
  readonly liquidity: Liquidity;
  readonly time: number;
  readonly tag?: string | undefined;
  /** The hedge-mode side the fill traded (absent in one-way mode and on spot). */
  readonly positionSide?: HedgeSide | undefined;
}

/**
 * A fill as plain arguments (no object built): the engine's `onFill` hook, and what a trade
 * tracker books.
 */
export type FillHook = (
  symbol: string,
  side: OrderSide,
  price: number,
  amount: number,
  fee: number,
  feeAsset: string,
  time: number,
  orderId: string,
  /** The hedge-mode side the fill trades (absent in one-way mode and on spot). */
  positionSide?: HedgeSide,
) => void;

/** Validates a request's own fields (not exchange filters); returns a reason or null. */
export function validateOrderRequest(r: OrderRequest): string | null {
  if (!(r.amount > 0) || !Number.isFinite(r.amount)) return `amount must be a finite number > 0, got ${r.amount}`;
  if (r.timeInForce === 'GTD' && r.expireAt === undefined) return 'timeInForce GTD needs expireAt';
  if (r.postOnly && (r.timeInForce === 'IOC' || r.timeInForce === 'FOK'))
    return `a post-only order rests on the book: timeInForce ${r.timeInForce} contradicts it (use GTC or GTD)`;
  switch (r.type) {
    case 'market':
      if (r.postOnly) return 'a market order cannot be post-only';
      return null;
    case 'limit':
      return r.price > 0 ? null : `limit price must be > 0, got ${r.price}`;
    case 'stop-market':
      return r.stopPrice > 0 ? null : `stop price must be > 0, got ${r.stopPrice}`;
    case 'stop-limit':
      if (!(r.stopPrice > 0)) return `stop price must be > 0, got ${r.stopPrice}`;
      return r.price > 0 ? null : `limit price must be > 0, got ${r.price}`;
    case 'trailing-stop':
      if (!(r.trail.value > 0)) return `trailing offset must be > 0, got ${r.trail.value}`;
      if (r.trail.kind === 'percent' && r.trail.value >= 100)
        return `trailing percent must be < 100, got ${r.trail.value}`;
      return null;
  }
}
