import type { ClientOrderId, Fill, OrderState, OrderStatus } from '@keel/core';
import type { Trade } from 'ccxt';
import type { BalanceRow, ExchangeGateway } from './gateway.ts';
import { type ExchangeOrder, fromCcxtTrade } from './normalize.ts';

/** What we have stored. */
export interface LocalSnapshot {
  readonly openOrders: readonly OrderState[];
  readonly balances: readonly BalanceRow[];
  readonly positions?: readonly { readonly symbol: string; readonly size: number }[];
  /** Trade ids already recorded (fills since the reconciliation start). */
  readonly knownTradeIds: ReadonlySet<string>;
}

/** What the exchange says. */
export interface VenueSnapshot {
  readonly openOrders: readonly ExchangeOrder[];
  /** Our local open orders that are no longer open, as found by client id (closed, cancelled…). */
  readonly closedOrders: readonly ExchangeOrder[];
  /** Trades since the reconciliation start. */
  readonly trades: readonly Trade[];
  readonly balances: readonly BalanceRow[];
}

export type UnknownOrderPolicy = 'adopt' | 'flag' | 'cancel';

export interface ReconcilePolicy {
  /** What to do with open exchange orders we have no record of. Default `flag`. */
  readonly unknownOrders?: UnknownOrderPolicy;
  /** Which client ids this bot placed (e.g. its clientOrderId prefix). Others are left alone. Default: all. */
  readonly isOurs?: (clientOrderId: string | undefined) => boolean;
  /** Absolute balance difference below which assets count as equal. Default 1e-9. */
  readonly balanceTolerance?: number;
}

export type ReconcileAction =
  /** An order changed while we were away (filled, cancelled, expired, more fills), with its new fills. */
  | {
      readonly type: 'order-update';
      readonly clientOrderId: ClientOrderId;
      readonly from: OrderStatus;
      readonly to: OrderStatus;
      readonly order: ExchangeOrder;
      readonly fills: readonly Fill[];
    }
  /** A local open order the exchange does not know: it never landed. Mark it rejected. */
  | { readonly type: 'order-lost'; readonly clientOrderId: ClientOrderId; readonly symbol: string }
  /** An open exchange order we have no record of, with the decision from the policy. */
  | { readonly type: 'unknown-order'; readonly decision: UnknownOrderPolicy; readonly order: ExchangeOrder }
  /** A fill of one of our orders that is not attached to any order-update above (should be rare). */
  | { readonly type: 'orphan-fill'; readonly fill: Fill }
  | {
      readonly type: 'balance-diff';
      readonly asset: string;
      readonly local: number;
      readonly venue: number;
      readonly diff: number;
    };

/**
 * Compares our stored view with the exchange's and returns what to do, deterministically: the same
 * snapshots give the same actions in the same order (orders by client id, unknown orders by venue
 * id, balances by asset, fills by time then trade id). Pure: it decides, the runtime applies.
 */
export function reconcile(local: LocalSnapshot, venue: VenueSnapshot, policy: ReconcilePolicy = {}): ReconcileAction[] {
  const isOurs = policy.isOurs ?? (() => true);
  const tol = policy.balanceTolerance ?? 1e-9;
  const byClient = new Map<string, ExchangeOrder>();
  for (const o of [...venue.closedOrders, ...venue.openOrders])
    if (o.clientOrderId !== undefined) byClient.set(o.clientOrderId, o);
  const localIds = new Set(local.openOrders.map((o) => o.request.id as string));

  // Venue order id -> our client id, for trades (REST trades carry only the venue id).
  const venueToClient = new Map<string, ClientOrderId>();
  for (const o of local.openOrders) if (o.venueOrderId) venueToClient.set(o.venueOrderId, o.request.id);
  for (const o of byClient.values()) {
    if (o.clientOrderId !== undefined && (localIds.has(o.clientOrderId) || isOurs(o.clientOrderId))) {
      venueToClient.set(o.venueOrderId, o.clientOrderId as ClientOrderId);
    }
  }
  const newFills = new Map<string, Fill[]>();
  for (const t of venue.trades) {
    if (!t.id || local.knownTradeIds.has(t.id)) continue;
    const f = fromCcxtTrade(t, (v) => venueToClient.get(v));
    if (!f) continue;
    const list = newFills.get(f.orderId) ?? [];
    if (!list.some((x) => x.tradeId === f.tradeId)) list.push(f);
    newFills.set(f.orderId, list);
  }
  const sortFills = (fs: Fill[]) =>
    fs.sort((a, b) => a.time - b.time || (a.tradeId < b.tradeId ? -1 : a.tradeId > b.tradeId ? 1 : 0));

  const actions: ReconcileAction[] = [];
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  for (const o of [...local.openOrders].sort((a, b) => cmp(a.request.id, b.request.id))) {
    const id = o.request.id;
    const x = byClient.get(id);
    const fills = sortFills(newFills.get(id) ?? []);
    newFills.delete(id);
    if (!x) {
      actions.push({ type: 'order-lost', clientOrderId: id, symbol: o.request.symbol });
      continue;
    }
    if (x.status !== o.status || x.filled !== o.filled || fills.length > 0) {
      actions.push({ type: 'order-update', clientOrderId: id, from: o.status, to: x.status, order: x, fills });
    }
  }

  const unknown = venue.openOrders
    .filter((o) => (o.clientOrderId === undefined || !localIds.has(o.clientOrderId)) && isOurs(o.clientOrderId))
    .sort((a, b) => cmp(a.venueOrderId, b.venueOrderId));
  for (const o of unknown) {
    actions.push({ type: 'unknown-order', decision: policy.unknownOrders ?? 'flag', order: o });
    if (o.clientOrderId !== undefined) newFills.delete(o.clientOrderId);
  }

  const orphans = sortFills([...newFills.values()].flat());
  for (const f of orphans) actions.push({ type: 'orphan-fill', fill: f });

  const assets = new Set([...local.balances.map((b) => b.asset), ...venue.balances.map((b) => b.asset)]);
  for (const asset of [...assets].sort(cmp)) {
    const l = local.balances.find((b) => b.asset === asset)?.total ?? 0;
    const v = venue.balances.find((b) => b.asset === asset)?.total ?? 0;
    if (Math.abs(v - l) > tol) actions.push({ type: 'balance-diff', asset, local: l, venue: v, diff: v - l });
  }
  return actions;
}

/** Gathers the exchange's side for `reconcile`: open orders, each missing local order by client id, trades since, balances. */
export async function fetchVenueSnapshot(
  gw: ExchangeGateway,
  local: Pick<LocalSnapshot, 'openOrders'>,
  opts: { readonly symbols: readonly string[]; readonly since: number },
): Promise<VenueSnapshot> {
  await gw.loadMarkets();
  const openOrders: ExchangeOrder[] = [];
  const trades: Trade[] = [];
  for (const s of opts.symbols) {
    openOrders.push(...(await gw.fetchOpenOrders(s)));
    trades.push(...(await gw.fetchMyTrades(s, opts.since)));
  }
  const openIds = new Set(openOrders.map((o) => o.clientOrderId));
  const closedOrders: ExchangeOrder[] = [];
  for (const o of local.openOrders) {
    if (openIds.has(o.request.id)) continue;
    const x = await gw.lookupOrder(o.request.id, o.request.symbol);
    if (x) closedOrders.push(x);
  }
  return { openOrders, closedOrders, trades, balances: await gw.fetchBalance() };
}
