import {
  ClientOrderId,
  expiryReason,
  type Fill,
  humanNumber,
  type Instrument,
  isDust,
  isTerminal,
  newOrderState,
  type OrderRequest,
  type OrderState,
  transition,
  VenueOrderId,
} from '@keel/core';
import type { Store } from '@keel/store';
import { exitOrderId, keptOrderId, orderOwner, parkOrderId } from '../bot-engine.ts';
import { type FeeValue, feeValueField } from './fee-prices.ts';
import { type ExchangeBalance, type ExchangeOrder, type ExchangeTrade, type LiveExchange, orderKind } from './port.ts';
import { exchangeExpiry, isEmulated } from './venue.ts';

export type UnknownOrderPolicy = 'adopt' | 'cancel' | 'flag';

export interface RecoveryAction {
  readonly kind:
    | 'fill-recovered'
    | 'order-closed-while-down'
    | 'order-cancelled-while-down'
    | 'order-never-reached-exchange'
    | 'oco-leg-placed-again'
    | 'order-still-open'
    | 'order-held-by-keel'
    | 'exit-waiting-for-entry'
    | 'exit-entry-filled-while-down'
    | 'parked-stop-cancelled'
    | 'order-expired-while-down'
    | 'replacement-sent'
    | 'replacement-not-sent'
    | 'unknown-order-adopted'
    | 'unknown-order-cancelled'
    | 'unknown-order-flagged'
    | 'balance-difference'
    | 'coins-not-this-bots'
    | 'position-not-in-account'
    | 'dust'
    // Perpetuals (live/futures.ts).
    | 'leverage-difference'
    | 'margin-mode-difference'
    | 'leverage-set'
    | 'margin-mode-set'
    | 'funding-recovered'
    | 'liquidation-recovered'
    | 'adl-recovered'
    | 'settlement-recovered'
    | 'position-difference'
    | 'isolated-wallet-difference'
    | 'wallet-difference';
  readonly detail: string;
}

export interface RecoveryReport {
  readonly actions: RecoveryAction[];
  /** Orders still working on the exchange, to be tracked again. */
  readonly openOrders: OrderState[];
  /**
   * Modifications' replacements that had not left when the bot stopped, whose original the
   * exchange has cancelled with nothing more filled: to be sent now (once: their id is looked up
   * first), completing the modification.
   */
  readonly replacements: OrderState[];
  /** Exchange filled amount per open order. */
  readonly exchangeFilled: Map<string, number>;
  readonly balances: Record<string, ExchangeBalance>;
  /**
   * The trades already applied to the orders still open, by trade id: their order's id. The live
   * venue never applies one twice (a finished order's trades do not matter to it: it does not
   * track the order).
   */
  readonly knownTrades: ReadonlyMap<string, string>;
  /**
   * Open orders executed on the exchange under another client id: an emulated order's exit, or the
   * kept leg of an OCO list placed again (keptOrderId): our id -> that client id. An open emulated
   * order not in this map is still held by Keel.
   */
  readonly exchangeIds: Map<string, string>;
  /**
   * Open OCO legs the exchange cancelled with their list when the bot changed the other leg, and
   * that the bot stopped before placing again: our id -> the client id to place it under now
   * (`keptOrderId` of the change, as the live venue would have). See LiveVenue.placeAgainAfterRestart.
   */
  readonly placeAgain: Map<string, string>;
  /**
   * Bracket exits still waiting for their entry (never sent: the exchange has none of them), to be
   * tracked by the engine again: the entry's fill sends them. With the entries that filled while
   * the bot was down (`entriesFilled`), whose exits are sent at start (Engine.resumeChildren).
   */
  readonly waitingExits: OrderState[];
  readonly entriesFilled: OrderState[];
}

export interface RecoverOptions {
  readonly store: Store;
  readonly botId: string;
  readonly exchange: LiveExchange;
  /** The bot's markets. */
  readonly instruments: readonly Instrument[];
  /**
   * Open exchange orders the store does not know: `adopt`, `cancel` or `flag` them. Orders whose
   * client id has another Keel bot's shape (see orderOwner) are only ever flagged.
   */
  readonly unknownOrders: UnknownOrderPolicy;
  readonly now: () => number;
  /**
   * The bot's own position in a market after the recovered fills: what its fills hold, never what
   * the account holds (the account's other coins are the user's).
   */
  readonly position: (symbol: string) => number;
  /**
   * A recovered fee's value in the quote when it was paid outside its market (BNB), at the prices
   * the bot reads (live/fee-prices.ts); NaN when it has none. Absent: no fee is valued.
   */
  readonly feeValue?: FeeValue;
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
  const symbols = o.instruments.map((i) => i.symbol);
  const actions: RecoveryAction[] = [];
  const stillOpen: OrderState[] = [];
  const exchangeFilled = new Map<string, number>();
  const exchangeIds = new Map<string, string>();
  const placeAgain = new Map<string, string>();
  /** Every trade applied to the bot's orders: its order's id, by trade id. */
  const known = new Map<string, string>();
  /** Per quote asset: what the spot fills recovered here moved the bot's cash by (the stored cash does not have them). */
  const recoveredCash = new Map<string, { amount: number; fills: number }>();
  const now = o.now();
  const since = Math.min(...(await store.orders.open(botId)).map((x) => x.createdAt), now) - 60_000;
  for (const f of await store.fills.since(botId, 0)) known.set(f.tradeId, f.orderId);

  const tradesBySymbol = new Map<string, ExchangeTrade[]>();
  const tradesOf = async (symbol: string): Promise<ExchangeTrade[]> => {
    let t = tradesBySymbol.get(symbol);
    if (!t) {
      t = await exchange.fetchTrades(symbol, since);
      tradesBySymbol.set(symbol, t);
    }
    return t;
  };

  /** Applies every execution of `eo` (client id `exchangeId`) that the store does not have yet. */
  const applyTrades = async (
    order: OrderState,
    eo: ExchangeOrder,
    exchangeId: string,
    all: readonly ExchangeTrade[],
  ): Promise<OrderState> => {
    const id = order.request.id;
    const trades = all.filter(
      (t) => t.clientOrderId === exchangeId || (eo.venueOrderId && t.venueOrderId === eo.venueOrderId),
    );
    let cur = {
      ...order,
      venueOrderId: (eo.venueOrderId || order.venueOrderId) as OrderState['venueOrderId'],
    } as OrderState;
    if (cur.status === 'submitted') cur.status = transition(cur.status, 'accept');
    for (const t of trades) {
      if (known.has(t.tradeId)) continue;
      known.set(t.tradeId, id);
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
        ...feeValueField(o.feeValue, t.symbol, t.fee, t.feeAsset),
        liquidity: t.liquidity,
        time: t.time,
        ...(cur.request.tag ? { tag: cur.request.tag } : {}),
      };
      const inst = o.instruments.find((i) => i.symbol === t.symbol);
      if (inst?.kind === 'spot') {
        const r = recoveredCash.get(inst.quote) ?? { amount: 0, fills: 0 };
        r.amount += (t.side === 'buy' ? -1 : 1) * t.price * t.amount * inst.contractSize;
        if (t.feeAsset === inst.quote) r.amount -= t.fee;
        r.fills++;
        recoveredCash.set(inst.quote, r);
      }
      const position = o.onRecoveredFill(fill, cur);
      await store.applyFill(botId, fill, {
        order: cur,
        ...(position ? { position } : {}),
        eventType: 'reconcile.fill-recovered',
      });
      actions.push({ kind: 'fill-recovered', detail: `${id} ${t.side} ${t.amount} @ ${t.price} (trade ${t.tradeId})` });
    }
    return cur;
  };

  /**
   * A held trailing stop that was parked on the exchange at the last stop (`parkHeld`): the parked
   * stop-market is cancelled if it still rests, and its fills, if it triggered while the bot was
   * down, are the trailing stop's. Returns the order as it stands after that.
   */
  const unpark = async (order: OrderState): Promise<OrderState> => {
    const id = order.request.id;
    const symbol = order.request.symbol;
    const pid = parkOrderId(id);
    // Parked as a stop-market order.
    const stop = { trigger: true };
    let parked = await exchange.fetchOrder(pid, symbol, stop);
    if (!parked) return order;
    if (parked.status === 'open') parked = (await exchange.cancelOrder(pid, symbol, stop)) ?? parked;
    let cur = order;
    if (parked.filled > 0) {
      tradesBySymbol.delete(symbol); // its fills, up to the cancel
      cur = await applyTrades(order, parked, pid, await tradesOf(symbol));
    }
    if (!isTerminal(cur.status))
      actions.push({
        kind: 'parked-stop-cancelled',
        detail: `${pid} (${parked.filled} of ${parked.amount} filled): ${id} trails again`,
      });
    return cur;
  };

  /**
   * Where the leg of an OCO list is on the exchange: under its own id, or, once the list was
   * cancelled to change its other leg and the leg placed again (the live venue's relist), under
   * `keptOrderId` of the change's id, one of its group's later orders: the newest found is current.
   */
  const allStored = await store.orders.list(botId);
  /** The other stored orders of `order`'s OCO group created at or after it, newest first. */
  const laterInGroup = (order: OrderState): OrderState[] =>
    allStored
      .filter(
        (x) =>
          x.request.ocoGroup === order.request.ocoGroup &&
          x.request.id !== order.request.id &&
          x.createdAt >= order.createdAt,
      )
      .sort((a, b) => b.createdAt - a.createdAt);
  const currentLeg = async (order: OrderState): Promise<{ exchangeId: string; eo: ExchangeOrder | null }> => {
    const { id, symbol } = order.request;
    for (const c of laterInGroup(order)) {
      const kid = keptOrderId(c.request.id);
      const eo = await exchange.fetchOrder(kid, symbol, orderKind(order.request));
      if (eo) return { exchangeId: kid, eo };
    }
    return { exchangeId: id, eo: await exchange.fetchOrder(id, symbol, orderKind(order.request)) };
  };

  const stored = await store.orders.open(botId);
  /** Each stored open order as recovery leaves it. */
  const after = new Map<string, OrderState>();
  /** Replacements of ctx.modify that never reached the exchange. */
  const unsent: OrderState[] = [];
  const replacements: OrderState[] = [];
  /** Bracket exits waiting for their entry when the bot stopped: decided once every entry is known. */
  const waiting: OrderState[] = [];
  for (const asStored of stored) {
    let order = asStored; // an unparked trailing stop may have fills
    const id = order.request.id;
    const symbol = order.request.symbol;
    if (!order.active && order.request.parentId !== undefined) {
      waiting.push(order);
      continue;
    }
    // An emulated order (trailing stop) is never on the exchange itself; its exit order is, once
    // it has triggered, under an id derived from ours.
    const emulated = isEmulated(order.request);
    const leg = !emulated && order.request.ocoGroup !== undefined ? await currentLeg(order) : undefined;
    const exchangeId = emulated ? exitOrderId(id) : (leg?.exchangeId ?? id);
    // An emulated order's exit is a market order.
    const kind = emulated ? {} : orderKind(order.request);
    const eo = leg !== undefined ? leg.eo : await exchange.fetchOrder(exchangeId, symbol, kind);
    if (!eo && emulated) {
      order = await unpark(order);
      if (isTerminal(order.status)) {
        await store.orders.upsert(botId, order);
        actions.push({
          kind: 'order-closed-while-down',
          detail: `${id}: ${order.status} by its parked stop ${parkOrderId(id)}`,
        });
        continue;
      }
      if (gtdDue(order, now)) {
        await finish(order, 'expire', `${expiryReason('gtd', order)} (while the bot was down)`, `${id}: expired`);
        continue;
      }
      // Still held by Keel: it resumes from its stored stop level on the next bar.
      stillOpen.push(order);
      exchangeFilled.set(id, 0);
      actions.push({
        kind: 'order-held-by-keel',
        detail: `${id}: ${order.request.type} ${order.request.side} ${order.request.amount}, stop level ${order.stopLevel}`,
      });
      continue;
    }
    if (!eo && order.request.replaces !== undefined && order.request.ocoGroup === undefined) {
      // A modification's replacement that never left: decided once every original is known. (A
      // changed OCO leg's is not: its list's other leg is placed again alone, below, and the two
      // could not both hold the coins; the change is lost, as said below.)
      unsent.push(order);
      continue;
    }
    if (!eo) {
      const replaces = order.request.replaces;
      await finish(
        order,
        'cancel',
        'the exchange has no such order: it never arrived (not resent; the signal is stale)',
        // A modification's replacement: the order it replaces was cancelled, so the change is lost.
        replaces === undefined
          ? id
          : `${id} (the replacement of ${replaces}, ${order.request.tag ?? order.request.type}: the change is lost; the strategy decides again)`,
        'order-never-reached-exchange',
      );
      continue;
    }
    if (exchangeId !== id) exchangeIds.set(id, exchangeId);
    if (!emulated && eo.amount > 0 && eo.amount < order.request.amount * (1 - 1e-12)) {
      // A row written before the store kept a request as sent holds a bracket exit's amount as
      // the strategy asked for it, not as resized when its entry filled: the exchange's is the order's.
      order = { ...order, request: { ...order.request, amount: eo.amount } };
    }
    let cur = await applyTrades(order, eo, exchangeId, await tradesOf(symbol));
    let status = eo.status;
    if (status === 'open' && !emulated && gtdDue(order, now)) {
      // Binance spot has no GTD: Keel cancels at expireAt, and was down then. Cancel now; fills
      // that came before the cancel are applied first.
      const after = await exchange.cancelOrder(exchangeId, symbol, kind);
      if (after && after.filled > cur.filled) {
        tradesBySymbol.delete(symbol);
        cur = await applyTrades(cur, after, exchangeId, await tradesOf(symbol));
      }
      status = after === null || after.status === 'canceled' ? 'expired' : after.status;
      if (status === 'expired' && !isTerminal(cur.status)) {
        await finish(
          cur,
          'expire',
          `${expiryReason('gtd', cur)} (the bot was down then: cancelled during recovery)`,
          `${id}: expired`,
        );
        continue;
      }
    }
    after.set(id, cur);
    if (status === 'open') {
      await store.orders.upsert(botId, cur);
      stillOpen.push(cur);
      exchangeFilled.set(id, eo.filled);
      actions.push({ kind: 'order-still-open', detail: emulated ? `${id} (exit ${exchangeId})` : id });
      continue;
    }
    const change = !isTerminal(cur.status) && status === 'canceled' && eo.filled === 0 ? changeOf(order) : undefined;
    if (change !== undefined) {
      // The bot cancelled the list to change (or cancel) the other leg and stopped before placing
      // this leg again. In the backtest it never stopped working: it is placed again (by the live
      // venue, once the bot runs) under the id the venue would have used, so a create that did
      // land is found by lookup and nothing is sent twice. The change itself (a replacement that
      // never reached the exchange) is closed below, as any order that never arrived.
      const xid = keptOrderId(change.request.id);
      await store.orders.upsert(botId, cur);
      stillOpen.push(cur);
      exchangeFilled.set(id, 0);
      exchangeIds.set(id, exchangeId);
      placeAgain.set(id, xid);
      actions.push({
        kind: 'oco-leg-placed-again',
        detail: `${id} (${order.request.tag ?? order.request.type} ${order.request.side} ${cur.request.amount}): its OCO list was cancelled to change ${change.request.replaces ?? change.request.id} and the bot stopped before placing it again: placed again as ${xid}`,
      });
      continue;
    }
    if (!isTerminal(cur.status)) {
      // A leg of an OCO pair that the exchange expired: the other leg of its list filled. Cancelled,
      // as the live venue and the simulated venue report it.
      const ocoLeg = status === 'expired' && order.request.ocoGroup !== undefined;
      const expired = status === 'expired' && !emulated && !ocoLeg;
      // Closed by the exchange with less filled than asked (a market or IOC order closed short): it
      // never fills more; expired, as the live venue reports it.
      const closedShort = status === 'closed' && !emulated;
      const x = exchangeExpiry(order.request, eo.expiry);
      const reason = emulated
        ? `exit order ${exchangeId} ${status} on the exchange with ${cur.filled} of ${cur.request.amount} filled`
        : closedShort
          ? expiryReason('exchange', cur, `closed by the exchange with ${cur.filled} of ${cur.request.amount} filled`)
          : ocoLeg
            ? 'OCO: the other leg of its list filled while the bot was down'
            : expired
              ? expiryReason(x.cause, cur, x.detail)
              : `${status} on the exchange while the bot was down`;
      cur = close(cur, expired || closedShort ? 'expire' : 'cancel', reason, now);
      after.set(id, cur);
    }
    await store.orders.upsert(botId, cur);
    actions.push({
      kind: cur.status === 'filled' || status === 'closed' ? 'order-closed-while-down' : 'order-cancelled-while-down',
      detail: `${id}: ${cur.status}`,
    });
  }

  // A modification's replacement leaves only once the cancel of its original is confirmed: the bot
  // stopped in between. Sent now only if the original is cancelled with nothing more filled than
  // when it was modified (the modification completes, once: its id is looked up before any send);
  // never when the original still works or filled more (both would trade).
  for (const r of unsent) {
    const rid = r.request.id;
    const xid = r.request.replaces as string;
    const x = after.get(xid) ?? (await store.orders.get(xid));
    const at = r.request.replacesFilled;
    const more = x === undefined || at === undefined ? Number.NaN : x.filled - at;
    const why =
      x === undefined
        ? `the order it replaces (${xid}) is unknown`
        : !isTerminal(x.status)
          ? `the cancel of the order it replaces (${xid}) was not confirmed before the bot stopped; ${xid} still works with its old terms`
          : x.status === 'filled'
            ? `the order it replaces (${xid}) filled before its cancel was confirmed`
            : more > 0
              ? `the order it replaces (${xid}) filled ${more} more before its cancel was confirmed`
              : Number.isNaN(more)
                ? `what the order it replaces (${xid}) had filled when it was modified is not recorded`
                : undefined;
    if (why !== undefined) {
      await finish(r, 'cancel', `not sent: ${why}`, `${rid}: ${why}`, 'replacement-not-sent');
      continue;
    }
    replacements.push(r);
    actions.push({
      kind: 'replacement-sent',
      detail: `${rid}: the order it replaces (${xid}) is ${x?.status} with nothing more filled; the replacement had not left when the bot stopped: sent now`,
    });
  }

  // A bracket's exits are Keel's until its entry fills: never sent, they are not on the exchange.
  // Kept waiting while the entry works; sent at start for an entry that filled while the bot was
  // down (as its fill would have sent them); cancelled when the entry ended unfilled.
  const waitingExits: OrderState[] = [];
  const entriesFilled = new Map<string, OrderState>();
  for (const x of waiting) {
    const pid = x.request.parentId as string;
    const entry = after.get(pid) ?? (await store.orders.get(pid));
    const what = `${x.request.id} (${x.request.tag ?? x.request.type} ${x.request.side} ${x.request.amount})`;
    if (entry === undefined) {
      await finish(x, 'cancel', `its entry ${pid} is unknown`, `${what}: its entry ${pid} is unknown`);
      continue;
    }
    if (isTerminal(entry.status) && !(entry.filled > 0)) {
      await finish(
        x,
        'cancel',
        `parent ${pid} ended unfilled (while the bot was down)`,
        `${what}: its entry ${pid} ended unfilled`,
      );
      continue;
    }
    waitingExits.push(x);
    if (isTerminal(entry.status)) {
      entriesFilled.set(pid, entry);
      actions.push({
        kind: 'exit-entry-filled-while-down',
        detail: `${what}: its entry ${pid} filled ${entry.filled} while the bot was down; sent now`,
      });
    } else actions.push({ kind: 'exit-waiting-for-entry', detail: `${what}: waits for its entry ${pid}` });
  }

  /**
   * The change that made this bot cancel an open OCO leg's list, if any: the newest later order of
   * its group that replaces another (ctx.modify, a moved exit), or the other leg the bot cancelled
   * unfilled (ctx.cancel). The live venue places the kept leg again under `keptOrderId` of its id.
   */
  function changeOf(order: OrderState): OrderState | undefined {
    if (order.request.ocoGroup === undefined) return undefined;
    return laterInGroup(order).find(
      (x) => x.request.replaces !== undefined || (x.status === 'cancelled' && x.filled === 0),
    );
  }

  /** Closes a stored order that will not come back, records it and says so. */
  async function finish(
    order: OrderState,
    ev: 'cancel' | 'expire',
    reason: string,
    detail: string,
    kind: RecoveryAction['kind'] = 'order-expired-while-down',
  ): Promise<void> {
    await store.orders.upsert(botId, close(order, ev, reason, now));
    await store.events.append(botId, `reconcile.${kind}`, { id: order.request.id, reason });
    actions.push({ kind, detail });
  }

  // Orders on the exchange that the store does not know.
  const storedIds = new Set<string>();
  for (const x of await store.orders.list(botId)) {
    storedIds.add(x.request.id);
    if (isEmulated(x.request)) {
      storedIds.add(exitOrderId(x.request.id));
      storedIds.add(parkOrderId(x.request.id));
    }
    if (x.request.ocoGroup !== undefined) storedIds.add(keptOrderId(x.request.id));
  }
  for (const eo of await exchange.fetchOpenOrders(symbols)) {
    if (storedIds.has(eo.clientOrderId)) continue;
    const owner = orderOwner(botId, eo.clientOrderId);
    const what = `${eo.clientOrderId} (${eo.symbol} ${eo.type} ${eo.side} ${eo.amount}${Number.isFinite(eo.price) ? ` @ ${eo.price}` : ''})`;
    const flag = async (why: string) => {
      actions.push({ kind: 'unknown-order-flagged', detail: `${what}: ${why}` });
      await store.events.append(botId, 'reconcile.unknown-order-flagged', { ...eo, why });
    };
    if (owner === 'other-keel-bot') {
      await flag("another Keel bot's order (its client id has another bot's prefix); left alone");
      continue;
    }
    const whose =
      owner === 'this-bot' ? "this bot's client id, but the store has no record of it" : 'not placed by this bot';
    if (o.unknownOrders === 'cancel') {
      await exchange.cancelOrder(eo.clientOrderId, eo.symbol, { trigger: Number.isFinite(eo.triggerPrice) });
      actions.push({ kind: 'unknown-order-cancelled', detail: `${what}: ${whose}; cancelled` });
      await store.events.append(botId, 'reconcile.unknown-order-cancelled', eo);
      continue;
    }
    if (o.unknownOrders === 'flag') {
      await flag(`${whose}; left alone (--unknown-orders adopt or cancel to act on it)`);
      continue;
    }
    const req = adoptedRequest(eo);
    if (typeof req === 'string') {
      await flag(`${whose}; cannot be adopted: ${req}; left alone`);
      continue;
    }
    // Adopted: from now on it is this bot's order, like one it placed itself. Its fills so far
    // are applied to the position; the engine and the live venue track it to completion.
    let state = newOrderState(req, eo.timestamp, Number.isFinite(eo.price) ? eo.price : Number.NaN);
    state.status = transition(transition(state.status, 'submit'), 'accept');
    state.venueOrderId = VenueOrderId(eo.venueOrderId);
    state = await applyTrades(
      state,
      eo,
      eo.clientOrderId,
      await exchange.fetchTrades(eo.symbol, eo.timestamp - 60_000),
    );
    await store.orders.upsert(botId, state);
    await store.events.append(botId, 'reconcile.unknown-order-adopted', eo);
    stillOpen.push(state);
    exchangeFilled.set(state.request.id, eo.filled);
    actions.push({ kind: 'unknown-order-adopted', detail: `${what}: ${whose}; adopted (tag "adopted")` });
  }

  // Cash: the exchange is the truth, and the bot takes it over; differences are reported. Coins:
  // the bot's position is what its own fills hold, never the account's balance: what else the
  // account holds is the user's (or another bot's), and no order of this bot sells it.
  const balances = await exchange.fetchBalances();
  // A perpetual's wallet is reconciled with the exchange's wallet balance (live/futures.ts): the
  // balance read here is the margin balance, unrealised PnL included.
  const quotes = new Set(o.instruments.filter((i) => i.kind === 'spot').map((i) => i.quote));
  for (const b of await store.balances.load(botId)) {
    if (!quotes.has(b.asset)) continue;
    const ex = balances[b.asset]?.total ?? 0;
    // The stored cash is the last run's: the fills recovered above moved it since.
    const r = recoveredCash.get(b.asset);
    const expected = b.total + (r?.amount ?? 0);
    const diff = ex - expected;
    const n = (x: number) => humanNumber(x);
    if (Math.abs(diff) > 1e-9 * Math.max(1, Math.abs(expected))) {
      actions.push({
        kind: 'balance-difference',
        detail: `${b.asset}: stored ${n(b.total)}${r ? ` (${n(expected)} with the ${r.fills} fill(s) recovered above)` : ''}, exchange ${n(ex)} (${diff > 0 ? '+' : ''}${n(diff)})`,
      });
    }
  }
  for (const inst of o.instruments) {
    if (inst.kind !== 'spot') continue;
    const own = o.position(inst.symbol);
    const inAccount = balances[inst.base]?.total ?? 0;
    const diff = inAccount - own;
    const n = (x: number) => humanNumber(x);
    // A remainder of the fills' binary arithmetic (-5.6e-17 after selling what was bought) is flat, not dust.
    if (isDust(inst, own, Number.NaN) && Math.abs(own) >= inst.stepSize * 1e-6)
      actions.push({
        kind: 'dust',
        detail: `${inst.base}: this bot holds ${n(own)}, less than ${inst.symbol} can trade (step ${inst.stepSize}): flat for the strategy, kept in the account`,
      });
    if (Math.abs(diff) <= 1e-9 * Math.max(1, Math.abs(own))) continue;
    actions.push(
      diff > 0
        ? {
            kind: 'coins-not-this-bots',
            detail: `${inst.base}: the account holds ${n(inAccount)}, this bot's own fills ${n(own)}: ${n(diff)} ${inst.base} are not this bot's and are never sold by it`,
          }
        : {
            kind: 'position-not-in-account',
            detail: `${inst.base}: this bot's own fills hold ${n(own)}, the account only ${n(inAccount)}: ${n(-diff)} ${inst.base} were moved or sold outside the bot; its exits can only sell what the account has`,
          },
    );
  }
  await store.events.append(botId, 'reconcile.done', { actions });
  const openIds = new Set<string>(stillOpen.map((x) => x.request.id));
  return {
    actions,
    openOrders: stillOpen,
    replacements,
    exchangeFilled,
    balances,
    knownTrades: new Map([...known].filter(([, id]) => openIds.has(id))),
    exchangeIds,
    placeAgain,
    waitingExits,
    entriesFilled: [...entriesFilled.values()],
  };
}

function gtdDue(o: OrderState, now: number): boolean {
  return o.request.timeInForce === 'GTD' && o.request.expireAt !== undefined && o.request.expireAt <= now;
}

/**
 * The request an adopted exchange order is tracked under: a plain limit or market order with the
 * exchange's client id, the tag `adopted`, and everything else the exchange says the order keeps:
 * reduce-only (an adopted take-profit that lost it could open a position once modified), post-only,
 * its time in force (a GTD order's expiry), a hedge-mode order's side. Orders with a trigger
 * (stop-loss, take-profit) are not adopted: Binance's take-profit has no Keel type, and a guess
 * would mislead the strategy.
 */
function adoptedRequest(eo: ExchangeOrder): OrderRequest | string {
  if (!eo.clientOrderId) return 'it has no client order id';
  if (Number.isFinite(eo.triggerPrice))
    return `it has a trigger price (${eo.triggerPrice}): stop orders are not adopted`;
  const common = {
    id: ClientOrderId(eo.clientOrderId),
    symbol: eo.symbol,
    side: eo.side,
    amount: eo.amount,
    tag: 'adopted',
    ...(eo.reduceOnly ? { reduceOnly: true } : {}),
    ...(eo.positionSide ? { positionSide: eo.positionSide } : {}),
  };
  if (eo.type === 'limit' && eo.price > 0) {
    const postOnly = eo.postOnly === true || eo.timeInForce === 'PO';
    const tif = eo.timeInForce;
    if (postOnly) return { ...common, type: 'limit', price: eo.price, timeInForce: 'GTC', postOnly: true };
    if (tif === 'GTD') {
      if (!(eo.expireAt !== undefined && eo.expireAt > 0)) return 'it is GTD without an expiry';
      return { ...common, type: 'limit', price: eo.price, timeInForce: 'GTD', expireAt: eo.expireAt };
    }
    if (tif === 'IOC' || tif === 'FOK') return { ...common, type: 'limit', price: eo.price, timeInForce: tif };
    if (tif === undefined || tif === 'GTC') return { ...common, type: 'limit', price: eo.price, timeInForce: 'GTC' };
    return `its time in force ${tif} has no Keel equivalent`;
  }
  if (eo.type === 'market') return { ...common, type: 'market', timeInForce: 'IOC' };
  return `its type ${eo.type} has no Keel equivalent`;
}

function close(o: OrderState, ev: 'cancel' | 'expire', reason: string, now: number): OrderState {
  let status = o.status;
  if (status === 'submitted' && ev === 'expire') status = transition(status, 'accept');
  return { ...o, status: transition(status, ev, o.filled, o.request.id), reason, updatedAt: now };
}
