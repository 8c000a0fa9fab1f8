import type { Indicator } from '../indicators/base.ts';
import type { Bar, FeedKey } from '../model/bar.ts';
import { hasFilters, type Instrument, tradableAmount } from '../model/instrument.ts';
import { type HedgeSide, isTerminal, type OrderSide, type OrderState, remaining } from '../model/orders.ts';
import type { Account } from '../portfolio/account.ts';
import type { ClientOrderId } from '../util/brand.ts';
import type {
  BracketInput,
  FeedRequest,
  OrderChanges,
  OrderInput,
  OrderOptions,
  PortfolioView,
  PositionView,
  StrategyContext,
} from './api.ts';

/**
 * What ties an order to others: its one-cancels-other group, the entry a bracket exit waits for,
 * and the order a modification's replacement replaces.
 */
export type OrderLinks = {
  readonly ocoGroup?: string;
  readonly parentId?: ClientOrderId;
  readonly replaces?: ClientOrderId;
};

/**
 * What `ctx.modify` submits in place of a working order: its request with `changes` applied and
 * every other field kept, so that a modification can never turn a reduce-only exit into one that
 * opens the other side, or a post-only order into a taker. The only place that says which fields
 * a modification changes (see OrderChanges). The links are kept too: the OCO group, and the
 * bracket parent while the exit still waits for its entry (an exit already working stays active:
 * its entry has filled and will not activate it again).
 */
export function replacement(o: OrderState, changes: OrderChanges): { input: OrderInput; links: OrderLinks } {
  const { id, ocoGroup, parentId, replaces: _replaced, replacesFilled: _filled, ...kept } = o.request;
  const type = kept.type;
  if (changes.price !== undefined && type !== 'limit' && type !== 'stop-limit')
    throw new Error(`modify(${id}): a ${type} order has no limit price to change`);
  if (changes.stopPrice !== undefined && type !== 'stop-market' && type !== 'stop-limit')
    throw new Error(`modify(${id}): a ${type} order has no stop price to change`);
  const input = {
    ...kept,
    amount: changes.amount ?? remaining(o),
    ...(changes.price !== undefined ? { price: changes.price } : {}),
    ...(changes.stopPrice !== undefined ? { stopPrice: changes.stopPrice } : {}),
  } as OrderInput;
  const links: OrderLinks = {
    ...(ocoGroup !== undefined ? { ocoGroup } : {}),
    ...(parentId !== undefined && !o.active ? { parentId } : {}),
    replaces: id,
  };
  return { input, links };
}

/**
 * The port the strategy context is built on: the few things only the engine knows (time, orders,
 * positions, feeds) and the one way each order reaches it. Everything a strategy composes from
 * them (target sizing, close, modify, brackets, OCO) lives in `makeContext`, not in the engine.
 */
export interface StrategyHost {
  /** The close time of the bar being handled (ms UTC). */
  readonly now: number;
  /** True while a past bar runs the strategy (Engine.warmUp): submit and cancel change nothing. */
  readonly warmingUp: boolean;
  readonly params: unknown;
  /** The primary market (the first data feed). */
  readonly primarySymbol: string;
  readonly account: Account;
  instrument(symbol: string): Instrument;
  equity(): number;
  /** A market's leverage: 1 but for a perpetual in a run with a futures book. */
  leverage(symbol: string): number;
  /** The last close of a market's execution feed (NaN before its first bar). */
  lastClose(symbol: string): number;
  /** The remaining amount of one side of a market's orders in flight (see isInFlight), of a hedge side. */
  inFlight(symbol: string, side: OrderSide, positionSide: HedgeSide | undefined): number;
  /** What `close()` sends, signed (> 0 sells a long); 0 when nothing can be traded. */
  closable(symbol: string, positionSide: HedgeSide | undefined): number;
  position(symbol: string, side: HedgeSide | undefined): PositionView;
  /** Orders not yet finished, in submission order: the engine's own list, never changed here. */
  openOrders(): readonly OrderState[];
  /** An unfinished order by client id. */
  liveOrder(id: ClientOrderId): OrderState | undefined;
  /** An order by client id, finished or not. */
  order(id: ClientOrderId): OrderState | undefined;
  submit(input: OrderInput, links?: OrderLinks): ClientOrderId;
  /** A market order on the primary market without options takes a shorter path. */
  submitMarket(side: OrderSide, amount: number, opts: OrderOptions | undefined): ClientOrderId;
  cancel(id: ClientOrderId): void;
  /** A new one-cancels-other group name, unique in the run. */
  nextOcoGroup(): string;
  addIndicator(ind: Indicator, feed: FeedRequest | undefined): void;
  subscribe(feed: FeedRequest): FeedKey;
  lastBar(feed: FeedRequest | undefined): Bar | undefined;
  log(message: string): void;
}

/**
 * The strategy's side of the engine (see StrategyContext in api.ts for what each member does).
 * Built once per engine; every member reads the host when called, so nothing here goes stale.
 * What the strategy reads is typed read-only (OrderView, PositionView, Readonly<Bar>): it sees the
 * engine's state and cannot change it.
 */
export function makeContext(host: StrategyHost): StrategyContext {
  const account = host.account;
  const portfolio: PortfolioView = {
    get currency() {
      return account.currency;
    },
    get cash() {
      return account.cash;
    },
    get equity() {
      return host.equity();
    },
    balance: (asset) => account.balance(asset),
  };
  const symbolOf = (o: OrderOptions | undefined) => o?.symbol ?? host.primarySymbol;
  return {
    get time() {
      return host.now;
    },
    get warmingUp() {
      return host.warmingUp;
    },
    // A run's parameters never change: a plain property, not a getter read on every bar.
    params: host.params,
    get symbol() {
      return host.primarySymbol;
    },
    get instrument() {
      return host.instrument(host.primarySymbol);
    },
    portfolio,
    indicator(ind, feed) {
      host.addIndicator(ind, feed);
      return ind;
    },
    subscribe: (feed) => host.subscribe(feed),
    position: (symbol, side) => host.position(symbol ?? host.primarySymbol, side),
    openOrders: (symbol) => host.openOrders().filter((o) => symbol === undefined || o.request.symbol === symbol),
    order: (id) => host.order(id),
    submit: (input) => host.submit(input),
    buy: (amount, o) => host.submitMarket('buy', amount, o),
    sell: (amount, o) => host.submitMarket('sell', amount, o),
    orderTargetPercent(fraction, o) {
      const symbol = symbolOf(o);
      const price = host.lastClose(symbol);
      if (!(price > 0)) throw new Error(`orderTargetPercent: no price yet for ${symbol}`);
      const inst = host.instrument(symbol);
      const side = o?.positionSide;
      if ((side === 'long' && fraction < 0) || (side === 'short' && fraction > 0))
        throw new Error(
          `orderTargetPercent(${fraction}) on the ${side} side: the fraction is ${side === 'long' ? '>= 0' : '<= 0'} there`,
        );
      const pos = account.find(symbol, side);
      // backtrader: target = V * fraction; size = (target - position value) / close. A
      // perpetual's target is a notional: the fraction of equity is its margin at the leverage.
      const target = host.equity() * fraction * host.leverage(symbol);
      // A perpetual's position value is its notional (Account.positionValue is its PnL: margin).
      let posValue =
        pos && pos.size !== 0
          ? inst.kind === 'perpetual'
            ? pos.size * price * inst.contractSize
            : account.positionValue(pos)
          : 0.0;
      // What orders in flight will add or remove is part of the position already being reached.
      const inFlight =
        host.openOrders().length === 0 ? 0 : host.inFlight(symbol, 'buy', side) - host.inFlight(symbol, 'sell', side);
      if (inFlight !== 0) posValue += inFlight * price * inst.contractSize;
      if (target === posValue) return null;
      const size = 1.0 * (Math.abs(target - posValue) / (price * inst.contractSize));
      // Closer to the target than the market can trade (a step, its minimums): nothing to do.
      if (hasFilters(inst) && tradableAmount(inst, size, price) === 0) return null;
      return host.submitMarket(target > posValue ? 'buy' : 'sell', size, o);
    },
    close(o) {
      const symbol = symbolOf(o);
      const amount = host.closable(symbol, o?.positionSide);
      if (amount === 0) return null;
      // A perpetual's close is reduce-only (Binance's close-position): should another order close
      // the position first, it is cancelled instead of opening the other side. A hedge side's
      // closing order only reduces already (Binance refuses reduceOnly in hedge mode).
      const opts =
        host.instrument(symbol).kind === 'perpetual' && o?.positionSide === undefined ? { ...o, reduceOnly: true } : o;
      return host.submitMarket(amount > 0 ? 'sell' : 'buy', Math.abs(amount), opts);
    },
    cancel: (id) => host.cancel(id),
    cancelAll(symbol) {
      for (const o of host.openOrders().slice())
        if (symbol === undefined || o.request.symbol === symbol) host.cancel(o.request.id);
    },
    modify(id, changes) {
      const o = host.liveOrder(id);
      if (!o || isTerminal(o.status)) return null;
      const next = replacement(o, changes);
      host.cancel(id);
      return host.submit(next.input, next.links);
    },
    bracket(b: BracketInput) {
      const group = host.nextOcoGroup();
      const symbol = b.symbol ?? host.primarySymbol;
      const ps = b.positionSide === undefined ? {} : { positionSide: b.positionSide };
      const entry =
        b.entryPrice === undefined
          ? host.submit({ type: 'market', side: b.side, amount: b.amount, symbol, ...ps, tag: b.tag ?? 'entry' })
          : host.submit({
              type: 'limit',
              side: b.side,
              amount: b.amount,
              price: b.entryPrice,
              symbol,
              ...ps,
              tag: b.tag ?? 'entry',
            });
      const exit = b.side === 'buy' ? 'sell' : 'buy';
      const takeProfit = host.submit(
        {
          type: 'limit',
          side: exit,
          amount: b.amount,
          price: b.takeProfit,
          symbol,
          reduceOnly: true,
          ...ps,
          tag: 'take-profit',
        },
        { ocoGroup: group, parentId: entry },
      );
      const stopLoss = host.submit(
        {
          type: 'stop-market',
          side: exit,
          amount: b.amount,
          stopPrice: b.stopLoss,
          symbol,
          reduceOnly: true,
          ...ps,
          tag: 'stop-loss',
        },
        { ocoGroup: group, parentId: entry },
      );
      return { entry, takeProfit, stopLoss };
    },
    oco(a, b) {
      const group = host.nextOcoGroup();
      return [host.submit(a, { ocoGroup: group }), host.submit(b, { ocoGroup: group })];
    },
    lastBar: (feed) => host.lastBar(feed),
    log: (message) => host.log(message),
  };
}
