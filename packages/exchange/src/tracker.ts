import { type ClientOrderId, type Fill, isTerminal, OrderIndex, type Rng, SeededRng } from '@keel/core';
import type { Order, Trade } from 'ccxt';
import { ccxtUndeclared } from './client.ts';
import type { ExchangeGateway } from './gateway.ts';
import { type ExchangeOrder, fromCcxtOrder, fromCcxtTrade } from './normalize.ts';
import { type RetryPolicy, retryDelayMs } from './retry.ts';

export interface OrderTrackerOptions {
  readonly symbols: readonly string[];
  /** Our client id for a venue order id (REST trades carry only the venue id); undefined = not ours. */
  readonly clientIdOf: (venueOrderId: string) => ClientOrderId | undefined;
  readonly onOrder: (o: ExchangeOrder) => void | Promise<void>;
  readonly onFill: (f: Fill) => void | Promise<void>;
  /** Local open orders, polled one by one while the stream is down so their final state is seen. */
  readonly trackedOpen?: () => Iterable<{ readonly clientOrderId: string; readonly symbol: string }>;
  /** REST polling interval while the user stream is down. Default 5 s. */
  readonly pollMs?: number;
  /** Trades before this time are not fetched by polling (e.g. the last stored fill time). */
  readonly since?: number;
  readonly reconnect?: Partial<Pick<RetryPolicy, 'baseMs' | 'maxMs'>>;
  readonly rng?: Rng;
  /** How many trade ids are remembered for de-duplication. Default 10 000. */
  readonly seenCapacity?: number;
  readonly onError?: (e: unknown) => void;
}

type UserStreamClient = {
  watchOrders(symbol?: string): Promise<Order[]>;
  watchMyTrades(symbol?: string): Promise<Trade[]>;
};

/**
 * Follows our orders and fills: the user-data stream (watchOrders / watchMyTrades) while it is
 * up, REST polling (open orders, each tracked order, my trades) while it is down, and one more
 * poll when it comes back, to cover the gap. Fills are de-duplicated by trade id, order updates
 * are passed on only when status or filled amount changed.
 */
export class OrderTracker {
  private running = false;
  private streamUp = false;
  private readonly ctl = new AbortController();
  private readonly seen = new Set<string>();
  private readonly lastOrder = new OrderIndex<string>();
  private readonly venueToClient = new OrderIndex<ClientOrderId>();
  private readonly lastTradeTime = new Map<string, number>();
  private readonly parked = new Map<string, Trade[]>();
  private readonly loops: Promise<void>[] = [];

  /** What it holds per order (tests): bounded by the working orders and the last finished ones. */
  stats(): { readonly orders: number; readonly venueIds: number; readonly trades: number } {
    return { orders: this.lastOrder.size, venueIds: this.venueToClient.size, trades: this.seen.size };
  }
  private pollLoop: Promise<void> | undefined;
  private readonly rng: Rng;
  private readonly stopped: Promise<'stop'>;

  constructor(
    private readonly gw: ExchangeGateway,
    private readonly opts: OrderTrackerOptions,
  ) {
    this.rng = opts.rng ?? new SeededRng(11);
    this.stopped = new Promise((r) => this.ctl.signal.addEventListener('abort', () => r('stop'), { once: true }));
  }

  get mode(): 'stream' | 'polling' {
    return this.streamUp ? 'stream' : 'polling';
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops.push(this.streamLoop('orders'), this.streamLoop('trades'));
    this.ensurePolling();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.ctl.abort();
    await Promise.allSettled([...this.loops, this.pollLoop]);
  }

  /** One REST pass: open orders, tracked orders that left the open list, and trades since the last seen. */
  async pollOnce(): Promise<void> {
    for (const symbol of this.opts.symbols) {
      const open = await this.gw.fetchOpenOrders(symbol);
      const openIds = new Set(open.map((o) => o.clientOrderId));
      for (const o of open) await this.order(o);
      for (const t of this.opts.trackedOpen?.() ?? []) {
        if (t.symbol !== symbol || openIds.has(t.clientOrderId)) continue;
        const o = await this.gw.lookupOrder(t.clientOrderId, symbol);
        if (o) await this.order(o);
      }
      const since = this.lastTradeTime.get(symbol) ?? this.opts.since;
      const trades = await this.gw.fetchMyTrades(symbol, since);
      for (const t of trades) await this.trade(t);
    }
  }

  private ensurePolling(): void {
    if (this.pollLoop || !this.running) return;
    this.pollLoop = (async () => {
      while (this.running && !this.streamUp) {
        try {
          await this.pollOnce();
        } catch (e) {
          this.opts.onError?.(e);
        }
        await this.gw.timer.sleep(this.opts.pollMs ?? 5_000, this.ctl.signal);
      }
      // The stream is back: one last pass covers anything between the last poll and the reconnect.
      if (this.running) await this.pollOnce().catch((e) => this.opts.onError?.(e));
      this.pollLoop = undefined;
    })();
  }

  private async streamLoop(kind: 'orders' | 'trades'): Promise<void> {
    const client = ccxtUndeclared<UserStreamClient>(this.gw.client);
    const policy = { baseMs: this.opts.reconnect?.baseMs ?? 500, maxMs: this.opts.reconnect?.maxMs ?? 30_000 };
    let attempt = 0;
    while (this.running) {
      try {
        const p = kind === 'orders' ? client.watchOrders() : client.watchMyTrades();
        p.catch(() => {});
        const r = await Promise.race([p, this.stopped]);
        if (r === 'stop') return;
        this.streamUp = true;
        attempt = 0;
        if (kind === 'orders') for (const o of r as Order[]) await this.order(fromCcxtOrder(o));
        else for (const t of r as Trade[]) await this.trade(t);
      } catch (e) {
        if (!this.running) return;
        this.opts.onError?.(e);
        this.streamUp = false;
        this.ensurePolling();
        await this.gw.timer.sleep(retryDelayMs(attempt++, policy, this.rng), this.ctl.signal);
      }
    }
  }

  private async order(o: ExchangeOrder): Promise<void> {
    const done = isTerminal(o.status);
    if (o.clientOrderId !== undefined) this.venueToClient.set(o.venueOrderId, o.clientOrderId as ClientOrderId, done);
    // Trades that arrived before their order (the two streams are not ordered) are replayed now.
    const parked = this.parked.get(o.venueOrderId);
    if (parked) {
      this.parked.delete(o.venueOrderId);
      for (const t of parked) await this.trade(t);
    }
    // By both ids: the exchange gives its own orders one shared client id (Binance's ADL closes are
    // all `adl_autoclose`), and two such orders of the same amount are two updates, not one.
    const key = `${o.clientOrderId ?? ''}|venue:${o.venueOrderId}`;
    const sig = `${o.status}|${o.filled}`;
    if (this.lastOrder.get(key) === sig) return;
    this.lastOrder.set(key, sig, done);
    await this.opts.onOrder(o);
  }

  private async trade(t: Trade): Promise<void> {
    if (!t.id || this.seen.has(t.id)) return;
    // Binance's executionReport carries the client id as `c`; REST trades do not.
    const wsClientId = (t.info as { c?: unknown } | undefined)?.c;
    const f = fromCcxtTrade(
      t,
      (v) =>
        this.venueToClient.get(v) ??
        this.opts.clientIdOf(v) ??
        (typeof wsClientId === 'string' && wsClientId !== '' ? (wsClientId as ClientOrderId) : undefined),
    );
    if (!f) {
      if (t.order) this.parked.set(t.order, [...(this.parked.get(t.order) ?? []), t].slice(-100));
      if (this.parked.size > 1_000) this.parked.delete(this.parked.keys().next().value as string);
      return;
    }
    this.seen.add(t.id);
    const cap = this.opts.seenCapacity ?? 10_000;
    if (this.seen.size > cap) this.seen.delete(this.seen.values().next().value as string);
    const prev = this.lastTradeTime.get(f.symbol) ?? 0;
    if (f.time > prev) this.lastTradeTime.set(f.symbol, f.time);
    await this.opts.onFill(f);
  }
}
