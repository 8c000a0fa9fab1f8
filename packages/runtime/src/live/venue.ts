import { type Bar, type ClientOrderId, isTerminal, type OrderState, type ReportSink, type Venue } from '@keel/core';
import { ExchangeFailure, type ExchangeOrder, type ExchangeTrade, type LiveExchange } from './port.ts';

export interface LiveVenueOptions {
  /** Resolves once the order's write-ahead record is durable (it must be, before its request leaves). */
  beforeSend: (clientOrderId: string) => Promise<void>;
  log: (level: 'info' | 'warn' | 'error', msg: string, data?: Record<string, unknown>) => void;
  /** Wall time for reports. */
  now: () => number;
  /** Instrumentation hook: called right before an order request leaves (latency benchmark). */
  onSend?: (clientOrderId: string) => void;
  /**
   * Client ids this bot had used before this process started. After a crash the last bar may be
   * handled again and produce the same deterministic id: such an order is looked up, never resent
   * blindly (Binance only refuses duplicate ids among OPEN orders).
   */
  knownBefore?: (clientOrderId: string) => boolean;
  /** How many times an order of unknown outcome is resolved and resent (same id). Default 5. */
  maxResolveAttempts?: number;
}

interface Tracked {
  readonly order: OrderState;
  accepted: boolean;
  venueOrderId?: string;
  /** Exchange's cumulative filled amount last seen. */
  exchangeFilled: number;
  /** A terminal exchange status waiting for its trades to arrive. */
  pendingTerminal?: ExchangeOrder['status'];
}

/**
 * The live execution venue: orders go to the exchange through an idempotent port; the exchange's
 * order updates and executions come back as venue reports. Executions are deduplicated by trade
 * id; a terminal status that arrives before its trades (reordered or dropped stream messages)
 * waits until REST has supplied the missing trades, so no fill is ever lost or counted twice.
 */
export class LiveVenue implements Venue {
  private sink: ReportSink = () => {};
  private readonly tracked = new Map<string, Tracked>();
  private readonly byVenueId = new Map<string, string>();
  private readonly seenTrades = new Set<string>();
  /** Each order's send, so a cancel waits for its own order to be on the exchange. */
  private readonly sending = new Map<string, Promise<void>>();
  private readonly inflight = new Set<Promise<unknown>>();
  /** OCO legs submitted in the current tick, by group, waiting to leave together. */
  private readonly ocoLegs = new Map<string, OrderState[]>();

  constructor(
    private readonly ex: LiveExchange,
    private readonly opts: LiveVenueOptions,
  ) {}

  connect(sink: ReportSink): void {
    this.sink = sink;
  }

  onBar(_symbol: string, _bar: Bar, _now: number): void {
    // Matching happens on the exchange.
  }

  /** Trade ids already applied (restored after a restart so nothing is applied twice). */
  rememberTrades(ids: Iterable<string>): void {
    for (const id of ids) this.seenTrades.add(id);
  }

  /** Tracks an order restored from the store after a restart (already on the exchange). */
  adopt(order: OrderState, exchangeFilled: number): void {
    this.tracked.set(order.request.id, {
      order,
      accepted: order.status !== 'submitted',
      exchangeFilled,
      ...(order.venueOrderId ? { venueOrderId: order.venueOrderId } : {}),
    });
    if (order.venueOrderId) this.byVenueId.set(order.venueOrderId, order.request.id);
  }

  submit(order: OrderState, now: number): void {
    const group = order.request.ocoGroup;
    if (group !== undefined && this.ex.placeOco) {
      // Legs of one OCO group are submitted together (bracket exits when the entry fills, or
      // ctx.oco): collected until the current tick ends, then sent as one native order list.
      const legs = this.ocoLegs.get(group);
      if (legs) legs.push(order);
      else {
        this.ocoLegs.set(group, [order]);
        queueMicrotask(() => this.flushOco(group, now));
      }
      return;
    }
    this.submitOne(order);
  }

  private submitOne(order: OrderState): void {
    this.tracked.set(order.request.id, { order, accepted: false, exchangeFilled: 0 });
    this.sendAlone(order);
  }

  private flushOco(group: string, now: number): void {
    const legs = this.ocoLegs.get(group) ?? [];
    this.ocoLegs.delete(group);
    const [a, b] = legs;
    if (legs.length !== 2 || !a || !b) {
      for (const o of legs) this.submitOne(o);
      return;
    }
    for (const o of legs) this.tracked.set(o.request.id, { order: o, accepted: false, exchangeFilled: 0 });
    const p = this.sendOco(a, b, now);
    for (const o of legs) {
      const id = o.request.id;
      this.sending.set(id, p);
      void p.finally(() => this.sending.delete(id));
    }
    this.track(p);
  }

  /**
   * Sends an OCO pair as one native order list: the exchange locks the quantity once (two
   * separate spot exits would need it twice) and expires one leg the moment the other triggers or
   * fills. Falls back to two separate orders when the exchange cannot list the pair natively.
   */
  private async sendOco(a: OrderState, b: OrderState, now: number): Promise<void> {
    const ids = [a.request.id, b.request.id];
    for (const id of ids) await this.opts.beforeSend(id);
    if (isTerminal(a.status) || isTerminal(b.status)) {
      // One leg was cancelled before anything left: the other goes alone.
      for (const o of [a, b]) if (!isTerminal(o.status)) this.sendAlone(o);
      return;
    }
    const separately = (why: string) => {
      this.opts.log('warn', `OCO ${ids.join(' + ')} sent as two orders: ${why}`, { ids });
      for (const o of [a, b]) this.sendAlone(o);
    };
    for (const id of ids) this.opts.onSend?.(id);
    for (let attempt = 0; ; attempt++) {
      try {
        if (attempt > 0 || ids.some((id) => this.opts.knownBefore?.(id))) {
          // Before any resend (and for ids from before a restart): does the exchange have them?
          const found = await Promise.all(ids.map((id) => this.ex.fetchOrder(id, a.request.symbol)));
          if (found.some((x) => x !== null)) {
            for (const x of found) if (x) await this.onOrder(x);
            return;
          }
        }
        const placed = await this.ex.placeOco!(a.request, b.request);
        if (placed === null) return separately('the exchange has no native order list for this pair');
        for (const x of placed) await this.onOrder(x);
        return;
      } catch (e) {
        if (e instanceof ExchangeFailure && e.kind === 'rejected')
          return separately(`the exchange refused the list (${e.message})`);
        if (attempt >= (this.opts.maxResolveAttempts ?? 5)) {
          this.opts.log(
            'error',
            `OCO ${ids.join(' + ')} outcome unknown after retries: ${(e as Error).message}; left for reconciliation`,
            { ids, now },
          );
          return;
        }
        this.opts.log('warn', `OCO ${ids.join(' + ')}: ${(e as Error).message}; resolving by client id`, { ids });
        await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** attempt)));
      }
    }
  }

  /**
   * Sends one order. Each order leaves as soon as the journal has it; one order whose outcome is
   * being resolved (a timeout, a 5xx) does not hold the others back.
   */
  private sendAlone(o: OrderState): void {
    const id = o.request.id;
    const p = this.send(o);
    this.sending.set(id, p);
    this.track(p);
    void p.finally(() => this.sending.delete(id));
  }

  cancel(id: ClientOrderId, _now: number, reason: string): void {
    const t = this.tracked.get(id);
    if (!t || isTerminal(t.order.status)) return;
    const p = (this.sending.get(id) ?? Promise.resolve()).then(async () => {
      try {
        const eo = await this.ex.cancelOrder(id, t.order.request.symbol);
        if (eo) await this.onOrder(eo, reason);
      } catch (e) {
        this.opts.log('warn', `cancel of ${id} failed: ${(e as Error).message}`, { id });
      }
    });
    this.track(p);
  }

  private track(p: Promise<unknown>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** Waits for every request under way (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  private async send(order: OrderState): Promise<void> {
    const id = order.request.id;
    await this.opts.beforeSend(id);
    if (isTerminal(order.status)) return;
    this.opts.onSend?.(id);
    try {
      if (this.opts.knownBefore?.(id)) {
        const existing = await this.ex.fetchOrder(id, order.request.symbol);
        if (existing) {
          this.opts.log('warn', `order ${id} was already placed before the restart: tracking it, not resending`, {
            id,
          });
          await this.onOrder(existing);
          await this.fetchMissingTrades(this.tracked.get(id) as Tracked);
          return;
        }
      }
      for (let attempt = 0; ; attempt++) {
        try {
          const eo = await this.ex.placeOrder(order.request);
          await this.onOrder(eo);
          return;
        } catch (e) {
          if (e instanceof ExchangeFailure && (e.kind === 'rejected' || e.kind === 'auth')) {
            this.report({
              type: 'rejected',
              id,
              time: this.opts.now(),
              reason: `exchange rejected the order: ${e.message}`,
            });
            return;
          }
          if (attempt >= (this.opts.maxResolveAttempts ?? 5)) throw e;
          // Outcome unknown or nothing sent: wait, then ask the exchange by client id before
          // anything else. Found: track it. Not found: sending again with the SAME id is safe.
          this.opts.log(
            'warn',
            `order ${id}: ${(e as Error).message}; resolving by client id (attempt ${attempt + 1})`,
            { id },
          );
          await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** attempt)));
          // Only a definite "not found" allows a resend; a failed lookup is retried as a lookup.
          let found: ExchangeOrder | null | undefined;
          for (let look = 0; look <= (this.opts.maxResolveAttempts ?? 5) && found === undefined; look++) {
            found = await this.ex.fetchOrder(id, order.request.symbol).catch(() => undefined);
            if (found === undefined) await new Promise((r) => setTimeout(r, Math.min(5_000, 200 * 2 ** look)));
          }
          if (found === undefined) throw e;
          if (found !== null) {
            await this.onOrder(found);
            return;
          }
        }
      }
    } catch (e) {
      // Still unknown after every attempt: never resend blindly. Reconciliation (on restart, or
      // the tracker's polling) finds the order by its client id.
      this.opts.log(
        'error',
        `order ${id} outcome unknown after retries: ${(e as Error).message}; left for reconciliation`,
        { id },
      );
    }
  }

  /** An order update from the exchange (stream, REST response or reconciliation). */
  async onOrder(eo: ExchangeOrder, cancelReason = 'cancelled on the exchange'): Promise<void> {
    const cid = eo.clientOrderId || this.byVenueId.get(eo.venueOrderId);
    const t = cid ? this.tracked.get(cid) : undefined;
    if (!t) return; // not ours (reconciliation flags those)
    if (eo.venueOrderId && !t.venueOrderId) {
      t.venueOrderId = eo.venueOrderId;
      this.byVenueId.set(eo.venueOrderId, t.order.request.id);
    }
    t.exchangeFilled = Math.max(t.exchangeFilled, eo.filled);
    if (
      !t.accepted &&
      (eo.status === 'open' || eo.status === 'closed' || eo.status === 'canceled' || eo.status === 'expired')
    ) {
      t.accepted = true;
      this.report({ type: 'accepted', id: t.order.request.id, time: this.opts.now(), venueOrderId: eo.venueOrderId });
    }
    if (eo.status === 'rejected' && !t.accepted) {
      this.report({
        type: 'rejected',
        id: t.order.request.id,
        time: this.opts.now(),
        reason: 'rejected by the exchange',
      });
      return;
    }
    if (eo.status === 'open') return;
    // Terminal on the exchange: make sure every execution is applied first.
    if (t.order.filled + 1e-12 < eo.filled) {
      t.pendingTerminal = eo.status;
      await this.fetchMissingTrades(t);
    }
    this.applyTerminal(t, eo.status, cancelReason);
  }

  private applyTerminal(t: Tracked, status: ExchangeOrder['status'], reason: string): void {
    if (isTerminal(t.order.status)) return;
    if (t.order.filled + 1e-12 < t.exchangeFilled) {
      t.pendingTerminal = status;
      return; // trades still missing: applied when they arrive
    }
    t.pendingTerminal = undefined;
    const id = t.order.request.id;
    if (status === 'canceled') this.report({ type: 'cancelled', id, time: this.opts.now(), reason });
    else if (status === 'expired') this.report({ type: 'expired', id, time: this.opts.now() });
    else if (status === 'rejected')
      this.report({ type: 'rejected', id, time: this.opts.now(), reason: 'rejected by the exchange' });
    // 'closed' completes through its last fill.
  }

  private async fetchMissingTrades(t: Tracked): Promise<void> {
    try {
      const trades = await this.ex.fetchTrades(t.order.request.symbol, t.order.createdAt - 60_000);
      for (const tr of trades) this.onTrade(tr);
    } catch (e) {
      this.opts.log('warn', `could not fetch trades for ${t.order.request.id}: ${(e as Error).message}`);
    }
  }

  /** One execution from the exchange; applied once, whatever path it came by. */
  onTrade(tr: ExchangeTrade): void {
    if (this.seenTrades.has(tr.tradeId)) return;
    const cid = tr.clientOrderId || this.byVenueId.get(tr.venueOrderId);
    const t = cid ? this.tracked.get(cid) : undefined;
    if (!t) return;
    if (isTerminal(t.order.status)) return;
    this.seenTrades.add(tr.tradeId);
    if (!t.accepted) {
      t.accepted = true;
      this.report({ type: 'accepted', id: t.order.request.id, time: this.opts.now(), venueOrderId: tr.venueOrderId });
    }
    t.exchangeFilled = Math.max(t.exchangeFilled, t.order.filled + tr.amount);
    this.report({
      type: 'fill',
      id: t.order.request.id,
      time: tr.time,
      tradeId: tr.tradeId,
      price: tr.price,
      amount: tr.amount,
      fee: tr.fee,
      feeAsset: tr.feeAsset,
      liquidity: tr.liquidity,
    });
    if (t.pendingTerminal) this.applyTerminal(t, t.pendingTerminal, 'cancelled on the exchange');
  }

  private report(r: Parameters<ReportSink>[0]): void {
    try {
      this.sink(r);
    } catch (e) {
      // An exchange message that does not fit the order's lifecycle is logged, never fatal.
      this.opts.log('error', `ignored exchange report ${r.type} for ${r.id}: ${(e as Error).message}`);
    }
  }
}
