import { type Fill, isTerminal, type OrderState, transition } from '@keel/core';
import type { Store } from '@keel/store';
import type { ExchangeBalance, ExchangeOrder, ExchangeTrade, LiveExchange } from './port.ts';

export type UnknownOrderPolicy = 'adopt' | 'cancel' | 'flag';

export interface RecoveryAction {
  readonly kind:
    | 'fill-recovered'
    | 'order-closed-while-down'
    | 'order-cancelled-while-down'
    | 'order-never-reached-exchange'
    | 'order-still-open'
    | 'unknown-order-adopted'
    | 'unknown-order-cancelled'
    | 'unknown-order-flagged'
    | 'balance-difference';
  readonly detail: string;
}

export interface RecoveryReport {
  readonly actions: RecoveryAction[];
  /** Orders still working on the exchange, to be tracked again. */
  readonly openOrders: OrderState[];
  /** Exchange filled amount per open order. */
  readonly exchangeFilled: Map<string, number>;
  readonly balances: Record<string, ExchangeBalance>;
  /** Every trade id already applied, so the live venue never applies one twice. */
  readonly knownTradeIds: Set<string>;
}

export interface RecoverOptions {
  readonly store: Store;
  readonly botId: string;
  readonly exchange: LiveExchange;
  readonly symbols: readonly string[];
  /** Client order id prefix of this bot's orders (see signalOrderId). */
  readonly idPrefix: string;
  readonly unknownOrders: UnknownOrderPolicy;
  readonly now: () => number;
  /** Recomputes the position after recovered fills (the runtime's account arithmetic). */
  readonly onRecoveredFill: (
    fill: Fill,
    order: OrderState,
  ) => { symbol: string; size: number; avgPrice: number; realizedPnl: number } | undefined;
}

/**
 * Reconciles the stored state with the exchange after a restart: orders that filled or were
 * cancelled while the bot was down get their missing fills and final status; orders the exchange
 * never received are closed (never resent: the signal is stale); orders on the exchange that the
 * store does not know are adopted, cancelled or flagged per policy. Deterministic for the same
 * inputs, and idempotent: running it twice changes nothing the second time.
 */
export async function reconcile(o: RecoverOptions): Promise<RecoveryReport> {
  const { store, botId, exchange } = o;
  const actions: RecoveryAction[] = [];
  const stillOpen: OrderState[] = [];
  const exchangeFilled = new Map<string, number>();
  const known = new Set<string>();
  const since = Math.min(...(await store.orders.open(botId)).map((x) => x.createdAt), o.now()) - 60_000;
  for (const f of await store.fills.since(botId, 0)) known.add(f.tradeId);

  const tradesBySymbol = new Map<string, ExchangeTrade[]>();
  const tradesOf = async (symbol: string): Promise<ExchangeTrade[]> => {
    let t = tradesBySymbol.get(symbol);
    if (!t) {
      t = await exchange.fetchTrades(symbol, since);
      tradesBySymbol.set(symbol, t);
    }
    return t;
  };

  const stored = await store.orders.open(botId);
  for (const order of stored) {
    const id = order.request.id;
    const eo = await exchange.fetchOrder(id, order.request.symbol);
    if (!eo) {
      const closed = close(
        order,
        'cancel',
        'the exchange has no such order: it never arrived (not resent; the signal is stale)',
        o.now(),
      );
      await store.orders.upsert(botId, closed);
      await store.events.append(botId, 'reconcile.order-never-reached-exchange', { id });
      actions.push({ kind: 'order-never-reached-exchange', detail: id });
      continue;
    }
    // Apply every execution of this order that the store does not have yet.
    const trades = (await tradesOf(order.request.symbol)).filter(
      (t) => t.clientOrderId === id || (eo.venueOrderId && t.venueOrderId === eo.venueOrderId),
    );
    let cur = {
      ...order,
      venueOrderId: (eo.venueOrderId || order.venueOrderId) as OrderState['venueOrderId'],
    } as OrderState;
    if (cur.status === 'submitted') cur.status = transition(cur.status, 'accept');
    for (const t of trades) {
      if (known.has(t.tradeId)) continue;
      known.add(t.tradeId);
      const prev = cur.filled;
      const filled = prev + t.amount;
      const complete = filled >= cur.request.amount * (1 - 1e-12);
      cur = {
        ...cur,
        status: transition(cur.status, complete ? 'fill' : 'fill-partial', prev, id),
        filled: complete ? cur.request.amount : filled,
        avgPrice: prev === 0 ? t.price : (cur.avgPrice * prev + t.price * t.amount) / filled,
        fee: cur.fee + t.fee,
        updatedAt: t.time,
      };
      const fill: Fill = {
        orderId: cur.request.id,
        tradeId: t.tradeId,
        symbol: t.symbol,
        side: t.side,
        price: t.price,
        amount: t.amount,
        fee: t.fee,
        feeAsset: t.feeAsset,
        liquidity: t.liquidity,
        time: t.time,
        ...(cur.request.tag ? { tag: cur.request.tag } : {}),
      };
      const position = o.onRecoveredFill(fill, cur);
      await store.applyFill(botId, fill, {
        order: cur,
        ...(position ? { position } : {}),
        eventType: 'reconcile.fill-recovered',
      });
      actions.push({ kind: 'fill-recovered', detail: `${id} ${t.side} ${t.amount} @ ${t.price} (trade ${t.tradeId})` });
    }
    if (eo.status === 'open') {
      await store.orders.upsert(botId, cur);
      stillOpen.push(cur);
      exchangeFilled.set(id, eo.filled);
      actions.push({ kind: 'order-still-open', detail: id });
      continue;
    }
    if (!isTerminal(cur.status)) {
      cur = close(
        cur,
        eo.status === 'expired' ? 'expire' : 'cancel',
        eo.status === 'closed' ? 'closed on the exchange' : `${eo.status} on the exchange while the bot was down`,
        o.now(),
      );
    }
    await store.orders.upsert(botId, cur);
    actions.push({
      kind: cur.status === 'filled' ? 'order-closed-while-down' : 'order-cancelled-while-down',
      detail: `${id}: ${cur.status}`,
    });
  }

  // Orders on the exchange that the store does not know.
  const storedIds = new Set((await store.orders.list(botId)).map((x) => x.request.id));
  for (const eo of await exchange.fetchOpenOrders(o.symbols)) {
    if ((storedIds as Set<string>).has(eo.clientOrderId)) continue;
    const ours = eo.clientOrderId.startsWith(o.idPrefix);
    if (ours && o.unknownOrders !== 'flag') {
      // Ours but unrecorded: the crash came between sending and journaling (cannot happen with
      // write-ahead, but adopting is the safe answer if it does).
      actions.push({ kind: 'unknown-order-adopted', detail: eo.clientOrderId });
      await store.events.append(botId, 'reconcile.unknown-order-adopted', eo);
      continue;
    }
    if (o.unknownOrders === 'cancel') {
      await exchange.cancelOrder(eo.clientOrderId, eo.symbol);
      actions.push({ kind: 'unknown-order-cancelled', detail: `${eo.clientOrderId} (${eo.symbol})` });
      await store.events.append(botId, 'reconcile.unknown-order-cancelled', eo);
    } else {
      actions.push({
        kind: 'unknown-order-flagged',
        detail: `${eo.clientOrderId} (${eo.symbol}): not placed by this bot; left alone`,
      });
      await store.events.append(botId, 'reconcile.unknown-order-flagged', eo);
    }
  }

  const balances = await exchange.fetchBalances();
  const local = await store.balances.load(botId);
  for (const b of local) {
    const ex = balances[b.asset];
    const diff = (ex?.total ?? 0) - b.total;
    if (Math.abs(diff) > 1e-9 * Math.max(1, Math.abs(b.total))) {
      actions.push({
        kind: 'balance-difference',
        detail: `${b.asset}: stored ${b.total}, exchange ${ex?.total ?? 0} (${diff > 0 ? '+' : ''}${diff})`,
      });
    }
  }
  await store.events.append(botId, 'reconcile.done', { actions });
  return { actions, openOrders: stillOpen, exchangeFilled, balances, knownTradeIds: known };
}

function close(o: OrderState, ev: 'cancel' | 'expire', reason: string, now: number): OrderState {
  let status = o.status;
  if (status === 'submitted' && ev === 'expire') status = transition(status, 'accept');
  return { ...o, status: transition(status, ev, o.filled, o.request.id), reason, updatedAt: now };
}
