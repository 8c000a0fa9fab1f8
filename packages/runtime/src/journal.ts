import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Account, EngineEvent, HedgeSide, OrderState } from '@keel/core';
import type { Store } from '@keel/store';

/**
 * Persists a bot's state on every change, in order: each order event upserts the order, each
 * fill records the fill with the order, the position and the balances in one transaction (the
 * same fill seen twice is a no-op; a trade id seen with other values is a `StoreConflictError`).
 * Writes are serialised; `flush()` resolves when everything so far is durable. A failed write
 * stops the bot: trading on without a record is not allowed.
 */
export class BotJournal {
  private chain: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  /** Write-ahead rows still in the queue, by client order id (SQLite writes them at once). */
  private readonly pendingAhead = new Map<string, Promise<void>>();

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
        this.writeAhead(e.order);
        return;
      case 'order.denied':
      case 'order.accepted':
      case 'order.rejected':
      case 'order.triggered':
      case 'order.cancelled':
      case 'order.expired': {
        // Copied now, not when the queued write runs: by then the engine may have moved the same
        // object on (an accepted order already filled), and a crash before the fill's own write
        // would leave a `filled` row with no fill, which recovery (open orders only) never revisits.
        const copy = snapshotOrder(e.order);
        const reason =
          e.type === 'order.denied' ||
          e.type === 'order.rejected' ||
          e.type === 'order.cancelled' ||
          e.type === 'order.expired'
            ? e.reason
            : undefined;
        this.enqueue(() => this.saveOrderEvent(copy, e.type, reason));
        return;
      }
      case 'order.filled': {
        const { fill, order } = e;
        // A hedge-mode fill moves the position of its side.
        const side = fill.positionSide;
        const pos = this.account.find(fill.symbol, side);
        const position = pos
          ? {
              symbol: fill.symbol,
              ...(side !== undefined ? { positionSide: side } : {}),
              size: pos.size,
              avgPrice: pos.avgPrice,
              realizedPnl: pos.realizedPnl,
            }
          : undefined;
        const snapshot = this.balances();
        const orderCopy = snapshotOrder(order);
        this.enqueue(async () => {
          await this.store.applyFill(this.botId, fill, {
            order: orderCopy,
            ...(position ? { position } : {}),
            balances: snapshot,
          });
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
      case 'futures.funding': {
        // Funding moves the wallet without a fill: the balance and the payment, in one write.
        const snapshot = this.balances();
        const f = e.funding;
        this.enqueue(() =>
          this.store.transaction(async (tx) => {
            await tx.balances.save(this.botId, snapshot);
            await tx.events.append(this.botId, 'futures.funding', { ...f });
          }),
        );
        return;
      }
      case 'futures.liquidation':
        this.forcedClose(e.type, e.liquidation.symbol, e.liquidation.positionSide, e.liquidation);
        return;
      case 'futures.adl':
        this.forcedClose(e.type, e.adl.symbol, undefined, e.adl);
        return;
      case 'futures.settlement':
        this.forcedClose(e.type, e.settlement.symbol, undefined, e.settlement);
        return;
    }
  }

  /**
   * A position closed (in part) by the exchange or the simulated book, a liquidation, an ADL or a settlement:
   * what is left of the position as the account holds it, the wallet and the event, in one write.
   */
  private forcedClose(type: string, symbol: string, side: HedgeSide | undefined, payload: object): void {
    const pos = this.account.find(symbol, side);
    const position = {
      symbol,
      ...(side !== undefined ? { positionSide: side } : {}),
      size: pos?.size ?? 0,
      avgPrice: pos === undefined || pos.size === 0 ? Number.NaN : pos.avgPrice,
      realizedPnl: pos?.realizedPnl ?? 0,
    };
    const snapshot = this.balances();
    const record = { ...payload };
    this.enqueue(() =>
      this.store.transaction(async (tx) => {
        await tx.positions.save(this.botId, position);
        await tx.balances.save(this.botId, snapshot);
        await tx.events.append(this.botId, type, record);
      }),
    );
  }

  /**
   * The write-ahead record of a new order is on the latency path: it must be durable before the
   * request leaves. On SQLite it is written right here, synchronously: appended to the bot's
   * intent log (a file), its row queued in order with the order's later writes (docs/store.md);
   * otherwise the row is queued like any write and `beforeSend` waits for it.
   */
  private writeAhead(o: OrderState): void {
    if (this.failure) return;
    const id = o.request.id as string;
    try {
      // Durable before this returns: the order as it is now, no copy needed.
      const w = this.store.writeOrderNow(this.botId, o);
      if (w.kind === 'row') return;
      if (w.kind === 'logged') {
        this.enqueue(w.save);
        return;
      }
    } catch (e) {
      this.fail(e as Error);
      return;
    }
    const copy = snapshotOrder(o); // the queued write runs later: the state as of this event
    this.enqueue(() => this.store.orders.upsert(this.botId, copy));
    const done = this.chain;
    this.pendingAhead.set(id, done);
    void done.finally(() => {
      if (this.pendingAhead.get(id) === done) this.pendingAhead.delete(id);
    });
  }

  /**
   * Resolves when the order's write-ahead row is durable, so its request may leave; rejects if
   * any write has failed (trading on without a record is not allowed). Other queued writes (fills,
   * balances) do not hold the request back: a fill lost in a crash is fetched again from the
   * exchange on restart, an order the exchange has and we do not know is not recoverable.
   */
  async beforeSend(clientOrderId: string): Promise<void> {
    const pending = this.pendingAhead.get(clientOrderId);
    if (pending) await pending;
    if (this.failure) throw new Error(`state could not be saved: ${this.failure.message}`);
  }

  /**
   * Saves an order whose state changed without an engine event (the live venue moving a held
   * trailing stop's level), in order with everything else.
   */
  saveOrder(o: OrderState): void {
    const copy = snapshotOrder(o);
    this.enqueue(() => this.store.orders.upsert(this.botId, copy));
  }

  /** `copy` is the order as it was when the event happened (see onEvent). */
  private saveOrderEvent(copy: OrderState, type: string, reason: string | undefined): Promise<void> {
    return this.store.transaction(async (tx) => {
      await tx.orders.upsert(this.botId, copy);
      await tx.events.append(this.botId, type, {
        id: copy.request.id,
        status: copy.status,
        ...(reason ? { reason } : {}),
      });
    });
  }

  /** Saves the balances as the account has them now (after reconciliation replaced them). */
  saveBalances(): void {
    const snapshot = this.balances();
    this.enqueue(() => this.store.balances.save(this.botId, snapshot));
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

  /**
   * Queues a write. It starts on a later turn of the event loop (setImmediate), never in the
   * microtasks of the current one: an order decided in this turn goes to the exchange through
   * promise hops only (journal, gateway, ccxt), and a write run in between (the bar's state, a
   * fill, a commit that may wait for fsync) would hold its request back. The write-ahead record
   * is not queued, only the row that follows it (see `writeAhead`).
   */
  enqueue(write: () => Promise<void>): void {
    this.chain = this.chain
      .then(() => nextTurn())
      .then(async () => {
        if (this.failure) return;
        try {
          await write();
        } catch (e) {
          this.fail(e as Error);
        }
      });
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.onFailure(e);
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
