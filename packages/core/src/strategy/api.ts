import type { Indicator } from '../indicators/base.ts';
import type { Bar, FeedKey } from '../model/bar.ts';
import type { Instrument } from '../model/instrument.ts';
import type { Fill, HedgeSide, OrderSide, OrderState, TimeInForce, TrailingOffset } from '../model/orders.ts';
import type { Timeframe } from '../model/timeframe.ts';
import type { ClientOrderId } from '../util/brand.ts';

/**
 * The parameter schema port. A zod schema satisfies it structurally, so strategies use zod while
 * the core keeps zero dependencies.
 */
export interface ParamsSchema<P> {
  safeParse(
    input: unknown,
  ):
    | { success: true; data: P }
    | { success: false; error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> } };
}

export class InvalidParamsError extends Error {
  constructor(
    readonly strategy: string,
    readonly issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>,
  ) {
    super(
      `Invalid parameters for strategy "${strategy}": ${issues.map((i) => `${i.path.length ? i.path.map(String).join('.') : '(params)'}: ${i.message}`).join('; ')}`,
    );
    this.name = 'InvalidParamsError';
  }
}

/**
 * A strategy's position in one market, as `ctx.position()` reports it. Long > 0, short < 0.
 *
 * `size` is what position-based decisions need: the position the strategy's own fills hold plus
 * what its orders in flight will add or remove, and 0 when that is dust. So `size === 0` means
 * "flat, and nothing on the way": an entry sent and not yet filled already counts, and a second
 * entry or exit is not sent by mistake while the first one's outcome is pending (a lost response,
 * a rate limit). Coins the account held before the bot started are never part of it.
 */
export interface PositionView {
  readonly symbol: string;
  /**
   * Held plus in flight (`inFlight`), or 0 when that is dust: smaller than the market's step, its
   * minimum amount, or its minimum notional at the last close (`isDust`). A fee taken in the coin
   * bought (Binance spot) leaves such a remainder after an exit; it is reported in `dust` and no
   * order can sell it. On a market without filters (a research backtest) nothing is dust.
   */
  readonly size: number;
  /** Average entry price of what is held (NaN when nothing tradable is held). */
  readonly avgPrice: number;
  /** Of what is held, marked at the last close (0 when nothing tradable is held). */
  readonly unrealizedPnl: number;
  readonly realizedPnl: number;
  /**
   * What is held but cannot be traded: all of it when the holding is dust, else the part below the
   * step (what `close()` leaves behind). Signed like the position; 0 on a market without filters.
   */
  readonly dust: number;
  /**
   * The remaining amount of the market's orders in flight, signed (buys > 0, sells < 0): market
   * orders, and stops whose trigger has fired, sent and not finished (`isInFlight`). Resting
   * limit orders and untriggered stops are not counted: see `openOrders()`. 0 in a backtest at
   * `onBar` (a market order fills at the next open, before the next onBar) unless it has latency.
   */
  readonly inFlight: number;
}

/**
 * An order as a strategy sees it: the engine's own record of it, every field read-only. It is
 * current when read (an open order's status and fills change as reports arrive): copy what you
 * keep. Orders change only through the context (`cancel`, `modify`), never by writing to this.
 */
export type OrderView = Readonly<OrderState>;

export interface PortfolioView {
  readonly currency: string;
  readonly cash: number;
  readonly equity: number;
  balance(asset: string): number;
}

/** Order options shared by every order helper. */
export interface OrderOptions {
  symbol?: string;
  timeInForce?: TimeInForce;
  expireAt?: number;
  postOnly?: boolean;
  reduceOnly?: boolean;
  /**
   * A hedge-mode perpetual's side the order trades, required there and refused anywhere else (the
   * order is denied with the reason): 'long' (a buy opens or adds, a sell reduces) or 'short' (a
   * sell opens or adds, a buy reduces). An order on the side it reduces never opens the other
   * side: it is clipped to what that side holds.
   */
  positionSide?: HedgeSide;
  tag?: string;
}

/**
 * What `ctx.modify` may change of a working order, and nothing else: the limit price (limit and
 * stop-limit orders), the stop price (stop-market and stop-limit) and the amount.
 */
export interface OrderChanges {
  price?: number;
  stopPrice?: number;
  amount?: number;
}

/** Request fields the strategy gives; the engine adds id, symbol default and timeInForce default. */
export type OrderInput =
  | ({ type: 'market'; side: OrderSide; amount: number } & OrderOptions)
  | ({ type: 'limit'; side: OrderSide; amount: number; price: number } & OrderOptions)
  | ({ type: 'stop-market'; side: OrderSide; amount: number; stopPrice: number } & OrderOptions)
  | ({ type: 'stop-limit'; side: OrderSide; amount: number; stopPrice: number; price: number } & OrderOptions)
  | ({ type: 'trailing-stop'; side: OrderSide; amount: number; trail: TrailingOffset } & OrderOptions);

export interface BracketInput {
  symbol?: string;
  side: OrderSide;
  amount: number;
  /** Market entry when omitted. */
  entryPrice?: number;
  takeProfit: number;
  stopLoss: number;
  /** Hedge mode: the side the entry opens and the exits close (see OrderOptions). */
  positionSide?: HedgeSide;
  tag?: string;
}

export interface StrategyContext<P = unknown> {
  /** Current time (ms UTC) from the engine's clock: the close time of the bar being handled. */
  readonly time: number;
  /**
   * True while the strategy runs on past bars: a bot's history before its first live bar, and
   * after a restart the bars up to where it stopped. onBar runs on them so that what the strategy
   * keeps itself (a CrossOver, a previous value) is as if it had run through them, but nothing it
   * asks for is sent: an order gets an id that names no order (`order(id)` is undefined), cancel
   * and modify change nothing, and the requests are counted in the bot's log. A strategy that
   * acts once (an entry at start) checks it. Always false in a backtest.
   */
  readonly warmingUp: boolean;
  readonly params: P;
  /** The primary market (the first data feed). */
  readonly symbol: string;
  readonly instrument: Instrument;
  readonly portfolio: PortfolioView;
  /** Registers an indicator on a feed (default: the primary feed); it is updated before onBar. */
  indicator<I extends Indicator>(ind: I, feed?: FeedRequest): I;
  /** Subscribes to another feed; must be called in onStart. */
  subscribe(feed: FeedRequest): FeedKey;
  /**
   * The position in a market (default primary): held plus in flight, dust reported apart (see
   * PositionView). A reused object, updated on each call: read what you need, do not keep it.
   * A hedge-mode perpetual holds two positions: `side` names which ('long': size >= 0, 'short':
   * size <= 0), and is required there and an error anywhere else (thrown).
   */
  position(symbol?: string, side?: HedgeSide): PositionView;
  openOrders(symbol?: string): readonly OrderView[];
  order(id: ClientOrderId): OrderView | undefined;
  submit(input: OrderInput): ClientOrderId;
  buy(amount: number, opts?: OrderOptions): ClientOrderId;
  sell(amount: number, opts?: OrderOptions): ClientOrderId;
  /**
   * Market order to bring the position to `fraction` of equity, sized on the last close. What
   * orders in flight will add or remove counts as part of the position (so repeating the call
   * while an entry is pending sends nothing more). Null when the position is on target, or closer
   * to it than the market can trade (its step, minimum amount or notional). In hedge mode
   * `opts.positionSide` names the side: a fraction >= 0 on the long side, <= 0 on the short side.
   */
  orderTargetPercent(fraction: number, opts?: OrderOptions): ClientOrderId | null;
  /**
   * Market order closing the position: everything the bot's own fills hold that can be sold, less
   * what orders in flight are already closing, rounded down to the step (the rest is dust, see
   * PositionView). Null when there is nothing to close, or a close in flight already closes it
   * all. Never sells more than the bot's own position, whatever else the account holds. In hedge
   * mode `opts.positionSide` names the side to close.
   */
  close(opts?: OrderOptions): ClientOrderId | null;
  cancel(id: ClientOrderId): void;
  cancelAll(symbol?: string): void;
  /**
   * Replaces a working order: cancels it and submits the same request with `changes` applied, under
   * a new id (returned; null when the order is not working). Only the fields of `OrderChanges`
   * change: every other field of the request is kept (type, side, time in force and expiry,
   * post-only, reduce-only, position side, tag, OCO group; a bracket exit still waiting for its
   * entry keeps waiting). The amount defaults to what is left of a partly filled order. A change
   * the order's type does not have (a stop price on a limit order) throws.
   */
  modify(id: ClientOrderId, changes: OrderChanges): ClientOrderId | null;
  /** Entry + take-profit + stop-loss; the exits are one-cancels-other and activate on the entry fill. */
  bracket(b: BracketInput): { entry: ClientOrderId; takeProfit: ClientOrderId; stopLoss: ClientOrderId };
  /** Two orders that cancel each other when one fills. */
  oco(a: OrderInput, b: OrderInput): [ClientOrderId, ClientOrderId];
  /** The last closed bar of a feed (default primary). Reused object: copy what you keep. */
  lastBar(feed?: FeedRequest): Readonly<Bar> | undefined;
  log(message: string): void;
}

export interface FeedRequest {
  readonly symbol?: string;
  readonly timeframe?: Timeframe;
}

/** A line the report draws from the strategy's state (see StrategyDefinition.plot). */
export interface PlotSpec<S> {
  /**
   * 'price': over the candles, on their price scale. Any other name is a pane of its own under the
   * candles, shared by every line that names it (e.g. 'rsi' for an oscillator and its bands).
   */
  readonly panel: string;
  /** The market whose chart the line is drawn on in a run over several markets (default: the primary). */
  readonly symbol?: string;
  /** The value after each primary bar, read from the state (e.g. an indicator's `value`); NaN leaves a gap. */
  value(state: S): number;
}

export interface StrategyDefinition<P, S> {
  readonly name: string;
  readonly description?: string;
  readonly params: ParamsSchema<P>;
  /**
   * 'indicators' (default): onBar runs once every indicator registered on that feed is defined,
   * as backtrader's minimum period. 'none': onBar runs from the first bar.
   */
  readonly warmup?: 'indicators' | 'none';
  /**
   * What to draw on the report's charts, by line name: read after every primary bar of a backtest
   * into a column per line (a plain read of the state: it must not change it). Write it after
   * onStart, which TypeScript reads the state's type from. Only the report
   * uses it; a strategy without it is drawn with candles and fills alone.
   */
  readonly plot?: { readonly [name: string]: PlotSpec<S> };
  onStart(ctx: StrategyContext<P>): S;
  /** `bar` is reused by the engine for the feed's next bar: copy what you keep. */
  onBar(ctx: StrategyContext<P>, state: S, bar: Readonly<Bar>, feed: FeedKey): void;
  onOrder?(ctx: StrategyContext<P>, state: S, order: OrderView): void;
  onFill?(ctx: StrategyContext<P>, state: S, fill: Fill): void;
  onStop?(ctx: StrategyContext<P>, state: S): void;
}

// biome-ignore lint/suspicious/noExplicitAny: a registry holds strategies of any params/state
export type AnyStrategy = StrategyDefinition<any, any>;

export function defineStrategy<P, S>(def: StrategyDefinition<P, S>): StrategyDefinition<P, S> {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(def.name))
    throw new Error(`Strategy name "${def.name}" must be kebab-case (a-z, 0-9, -)`);
  return def;
}

/** Validates user params once, at construction, with messages naming the field and the rule. */
export function parseParams<P>(def: StrategyDefinition<P, unknown>, input: unknown): P {
  const r = def.params.safeParse(input ?? {});
  if (!r.success) throw new InvalidParamsError(def.name, r.error.issues);
  return r.data;
}

/**
 * Parses `key=value` CLI pairs into numbers/booleans/strings for a params schema. A key given twice
 * is an error: taking one of the two values would run a strategy the user did not ask for.
 */
export function paramsFromPairs(pairs: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new Error(`Invalid --param "${p}": expected key=value, e.g. fast=10`);
    const k = p.slice(0, eq).trim();
    const v = p.slice(eq + 1).trim();
    if (Object.hasOwn(out, k))
      throw new Error(`--param ${k} is given twice (${k}=${String(out[k])} and ${k}=${v}): give each parameter once`);
    out[k] = v === 'true' ? true : v === 'false' ? false : v !== '' && Number.isFinite(Number(v)) ? Number(v) : v;
  }
  return out;
}
