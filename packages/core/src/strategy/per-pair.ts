import type { FeedKey } from '../model/bar.ts';
import type { Instrument } from '../model/instrument.ts';
import type { Fill, OrderState } from '../model/orders.ts';
import type {
  AnyStrategy,
  BracketInput,
  FeedRequest,
  OrderInput,
  OrderOptions,
  PlotSpec,
  StrategyContext,
  StrategyDefinition,
} from './api.ts';

export interface PerPairOptions {
  /** The markets, one strategy instance each, in this order; every one needs an execution feed. */
  readonly instruments: readonly Instrument[];
  /**
   * Equal shares the equity is split into (default: one per market). `orderTargetPercent(f)` of a
   * pair targets `f / slots` of the equity, so that `slots` pairs entering at once fit the cash
   * together (Freqtrade's stake for `max_open_trades`); the other order helpers are unchanged.
   */
  readonly slots?: number;
}

interface PairInstance {
  readonly symbol: string;
  readonly ctx: StrategyContext;
  state: unknown;
}

/**
 * One strategy run over several markets in one portfolio (shared cash, one risk engine): an
 * instance per market, each with its own state and a context whose defaults (`symbol`,
 * `instrument`, feeds, positions, orders) are its market, so a strategy written for one market
 * trades each pair as if it were alone. Bars, orders and fills go to the instance of their market.
 */
export function perPair(strategy: AnyStrategy, opts: PerPairOptions): AnyStrategy {
  const symbols = opts.instruments.map((i) => i.symbol);
  if (symbols.length === 0) throw new Error('perPair needs at least one market');
  if (new Set(symbols).size !== symbols.length)
    throw new Error(`perPair: a market is given twice (${symbols.join(', ')})`);
  const slots = opts.slots ?? symbols.length;
  if (!(Number.isInteger(slots) && slots >= 1)) throw new Error(`perPair: slots must be an integer >= 1, got ${slots}`);
  // Each instance's lines, on its market's chart: the same names, read from that instance's state.
  let plot: Record<string, PlotSpec<Map<string, PairInstance>>> | undefined;
  if (strategy.plot) {
    plot = {};
    for (const symbol of symbols) {
      for (const [name, spec] of Object.entries(strategy.plot)) {
        plot[symbols.length > 1 ? `${name} (${symbol})` : name] = {
          panel: spec.panel,
          symbol,
          value: (pairs) => spec.value((pairs.get(symbol) as PairInstance).state),
        };
      }
    }
  }
  const def: StrategyDefinition<unknown, Map<string, PairInstance>> = {
    name: strategy.name,
    ...(strategy.description !== undefined ? { description: strategy.description } : {}),
    params: strategy.params,
    ...(strategy.warmup !== undefined ? { warmup: strategy.warmup } : {}),
    ...(plot ? { plot } : {}),
    onStart(ctx) {
      const pairs = new Map<string, PairInstance>();
      for (const instrument of opts.instruments) {
        const symbol = instrument.symbol;
        ctx.subscribe({ symbol });
        pairs.set(symbol, { symbol, ctx: scopedContext(ctx, instrument, slots), state: undefined });
      }
      // Started after every subscription, in the order given: each instance's onStart sees the same engine.
      for (const p of pairs.values()) p.state = strategy.onStart(p.ctx);
      return pairs;
    },
    onBar(_ctx, pairs, bar, feed: FeedKey) {
      const p = pairs.get(feed.symbol);
      if (p !== undefined) strategy.onBar(p.ctx, p.state, bar, feed);
    },
    onStop(_ctx, pairs) {
      const h = strategy.onStop;
      if (h) for (const p of pairs.values()) h(p.ctx, p.state);
    },
  };
  const onOrder = strategy.onOrder;
  if (onOrder)
    def.onOrder = (_ctx, pairs, o: OrderState) => {
      const p = pairs.get(o.request.symbol);
      if (p !== undefined) onOrder(p.ctx, p.state, o);
    };
  const onFill = strategy.onFill;
  if (onFill)
    def.onFill = (_ctx, pairs, f: Fill) => {
      const p = pairs.get(f.symbol);
      if (p !== undefined) onFill(p.ctx, p.state, f);
    };
  return def;
}

/** The engine's context with `symbol` as the default market everywhere one can be left out. */
function scopedContext(ctx: StrategyContext, instrument: Instrument, slots: number): StrategyContext {
  const symbol = instrument.symbol;
  const feed = (f: FeedRequest | undefined): FeedRequest => (f?.symbol !== undefined ? f : { ...f, symbol });
  const opts = (o: OrderOptions | undefined): OrderOptions => (o?.symbol !== undefined ? o : { ...o, symbol });
  const input = <T extends OrderInput>(i: T): T => (i.symbol !== undefined ? i : { ...i, symbol });
  return {
    get time() {
      return ctx.time;
    },
    get warmingUp() {
      return ctx.warmingUp;
    },
    get params() {
      return ctx.params;
    },
    symbol,
    instrument,
    portfolio: ctx.portfolio,
    indicator: (ind, f) => ctx.indicator(ind, feed(f)),
    subscribe: (f) => ctx.subscribe(feed(f)),
    position: (s, side) => ctx.position(s ?? symbol, side),
    openOrders: (s) => ctx.openOrders(s ?? symbol),
    order: (id) => ctx.order(id),
    submit: (i) => ctx.submit(input(i)),
    buy: (amount, o) => ctx.buy(amount, opts(o)),
    sell: (amount, o) => ctx.sell(amount, opts(o)),
    orderTargetPercent: (fraction, o) => ctx.orderTargetPercent(fraction / slots, opts(o)),
    close: (o) => ctx.close(opts(o)),
    cancel: (id) => ctx.cancel(id),
    cancelAll: (s) => ctx.cancelAll(s ?? symbol),
    modify: (id, changes) => ctx.modify(id, changes),
    bracket: (b: BracketInput) => ctx.bracket(b.symbol !== undefined ? b : { ...b, symbol }),
    oco: (a, b) => ctx.oco(input(a), input(b)),
    lastBar: (f) => ctx.lastBar(feed(f)),
    log: (m) => ctx.log(`[${symbol}] ${m}`),
  };
}
