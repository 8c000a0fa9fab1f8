import type { Account, EngineEvent, OrderState } from '@keel/core';
import type { Store } from '@keel/store';

/**
 * Persists a bot's state on every change, in order: each order event upserts the order, each
 * fill records the fill with the order and the position in one transaction (a fill seen twice is
 * a no-op), and the balances follow. Writes are serialised; `flush()` resolves when everything
 * so far is durable. A failed write stops the bot: trading on without a record is not allowed.
 */
export class BotJournal {
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;

  constructor(
    private readonly store: Store,
    private readonly botId: string,
    private readonly account: Account,
    private readonly onFailure: (e: Error) => void,
  ) {}

  get failed(): Error | undefined {
    return this.failure;
  }

  onEvent(e: EngineEvent): void {
    switch (e.type) {
      case 'order.submitted':
      case 'order.denied':
      case 'order.accepted':
      case 'order.rejected':
      case 'order.triggered':
      case 'order.cancelled':
      case 'order.expired':
        this.enqueue(() =>
          this.saveOrder(
            e.order,
            e.type,
            e.type === 'order.denied' || e.type === 'order.rejected' || e.type === 'order.cancelled'
              ? e.reason
              : undefined,
          ),
        );
        return;
      case 'order.filled': {
        const { fill, order } = e;
        const pos = this.account.find(fill.symbol);
        const position = pos
          ? { symbol: fill.symbol, size: pos.size, avgPrice: pos.avgPrice, realizedPnl: pos.realizedPnl }
          : undefined;
        const snapshot = this.balances();
        const orderCopy = snapshotOrder(order);
        this.enqueue(async () => {
          await this.store.applyFill(this.botId, fill, { order: orderCopy, ...(position ? { position } : {}) });
          await this.store.balances.save(this.botId, snapshot);
        });
        return;
      }
      case 'strategy.error':
        this.enqueue(
          async () =>
            void (await this.store.events.append(this.botId, 'strategy.error', {
              hook: e.hook,
              message: e.message,
              time: e.time,
            })),
        );
        return;
      case 'strategy.log':
        return;
    }
  }

  private saveOrder(o: OrderState, type: string, reason: string | undefined): Promise<void> {
    const copy = snapshotOrder(o);
    // The write-ahead record of a new order is on the latency path (it must be durable before the
    // request leaves): one statement, no journal event. Every later change is journaled too.
    if (type === 'order.submitted') return this.store.orders.upsert(this.botId, copy);
    return this.store.transaction(async (tx) => {
      await tx.orders.upsert(this.botId, copy);
      await tx.events.append(this.botId, type, {
        id: o.request.id,
        status: copy.status,
        ...(reason ? { reason } : {}),
      });
    });
  }

  private balances() {
    const out = [{ asset: this.account.currency, free: this.account.cash, used: 0, total: this.account.cash }];
    for (const [asset, total] of this.account.balances) out.push({ asset, free: total, used: 0, total });
    for (const p of this.account.positions) {
      if (p.instrument.kind === 'spot' && !this.account.balances.has(p.instrument.base))
        out.push({ asset: p.instrument.base, free: p.size, used: 0, total: p.size });
    }
    return out;
  }

  enqueue(write: () => Promise<void>): void {
    this.chain = this.chain.then(async () => {
      if (this.failure) return;
      try {
        await write();
      } catch (e) {
        this.failure = e as Error;
        this.onFailure(this.failure);
      }
    });
  }

  /** Resolves when every write so far is durable; rejects if one failed. */
  async flush(): Promise<void> {
    await this.chain;
    if (this.failure) throw new Error(`state could not be saved: ${this.failure.message}`);
  }
}

/** Orders are mutable in the engine; the journal writes the state as of the event. */
function snapshotOrder(o: OrderState): OrderState {
  return { ...o };
}
