import type { OrderRequest, OrderState, OrderStatus } from '@keel/core';
import { ClientOrderId, TERMINAL_STATUSES, VenueOrderId } from '@keel/core';
import type { Selectable } from 'kysely';
import { StoreConflictError } from '../errors.ts';
import type { OrdersTable } from '../schema.ts';
import { type Db, nanIfNull, nullIfNaN, type RepoContext } from './context.ts';

export interface OrderRepo {
  /**
   * Writes the order as it is now (inserted, or its changing fields updated). An order id belongs
   * to one bot for ever: writing it for another bot throws a `StoreConflictError`.
   */
  upsert(botId: string, order: OrderState): Promise<void>;
  get(clientOrderId: string): Promise<OrderState | undefined>;
  byVenueId(botId: string, venueOrderId: string): Promise<OrderState | undefined>;
  /** Orders not in a terminal status, oldest first. */
  open(botId: string): Promise<OrderState[]>;
  list(
    botId: string,
    opts?: { readonly status?: readonly OrderStatus[]; readonly limit?: number },
  ): Promise<OrderState[]>;
}

const TERMINAL = [...TERMINAL_STATUSES];

export function orderRepo({ db }: RepoContext): OrderRepo {
  return {
    async upsert(botId, o) {
      const row = orderRow(botId, o);
      const r = await upsertOrderQuery(db, row).executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows) !== 1) throw await orderConflict(db, row);
    },
    async get(id) {
      const r = await db.selectFrom('orders').selectAll().where('client_order_id', '=', id).executeTakeFirst();
      return r && toOrder(r);
    },
    async byVenueId(botId, venueOrderId) {
      const r = await db
        .selectFrom('orders')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('venue_order_id', '=', venueOrderId)
        .executeTakeFirst();
      return r && toOrder(r);
    },
    async open(botId) {
      const rows = await db
        .selectFrom('orders')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('status', 'not in', TERMINAL)
        .orderBy('created_at')
        .orderBy('client_order_id')
        .execute();
      return rows.map(toOrder);
    },
    async list(botId, opts = {}) {
      let q = db.selectFrom('orders').selectAll().where('bot_id', '=', botId);
      if (opts.status && opts.status.length > 0) q = q.where('status', 'in', [...opts.status]);
      q = q.orderBy('created_at').orderBy('client_order_id');
      if (opts.limit !== undefined) q = q.limit(opts.limit);
      return (await q.execute()).map(toOrder);
    },
  };
}

export type OrderRow = Selectable<OrdersTable>;

export function orderRow(botId: string, o: OrderState): OrderRow {
  return {
    client_order_id: o.request.id,
    bot_id: botId,
    venue_order_id: o.venueOrderId ?? null,
    symbol: o.request.symbol,
    side: o.request.side,
    type: o.request.type,
    request: JSON.stringify(o.request),
    status: o.status,
    filled: o.filled,
    avg_price: nullIfNaN(o.avgPrice),
    fee: o.fee,
    reason: o.reason ?? null,
    triggered: o.triggered ? 1 : 0,
    stop_level: nullIfNaN(o.stopLevel),
    decision_price: nullIfNaN(o.decisionPrice),
    active: o.active ? 1 : 0,
    created_at: o.createdAt,
    updated_at: o.updatedAt,
  };
}

/**
 * The one upsert of an order row (`orders.upsert`; compiled once, the write-ahead path). It
 * changes no row when the id belongs to another bot: the caller checks the count. The request is
 * written again with the state: a bracket exit's amount is sized to what is held when its entry
 * fills (after a fee taken in the coin), and the row must say what went to the exchange.
 */
export function upsertOrderQuery(db: Db, row: OrderRow) {
  const { client_order_id: _k, bot_id: _b, created_at: _c, symbol: _s, side: _d, type: _t, ...mutable } = row;
  return db
    .insertInto('orders')
    .values(row)
    .onConflict((oc) =>
      oc
        .column('client_order_id')
        .doUpdateSet(mutable)
        // An order id belongs to one bot for ever: a clash is a bug, not an update.
        .where('orders.bot_id', '=', row.bot_id),
    );
}

/** The error for an order row refused because its id belongs to another bot. */
export async function orderConflict(db: Db, row: OrderRow): Promise<StoreConflictError> {
  const had = await db
    .selectFrom('orders')
    .selectAll()
    .where('client_order_id', '=', row.client_order_id)
    .executeTakeFirst();
  return orderConflictWith(had, row);
}

/**
 * `orderConflict` for a stored row already read (or gone: then only the new row is named); `why`
 * adds what the caller knows about where the new row comes from.
 */
export function orderConflictWith(had: OrderRow | undefined, row: OrderRow, why = ''): StoreConflictError {
  const brief = (r: OrderRow) => ({
    bot_id: r.bot_id,
    symbol: r.symbol,
    side: r.side,
    type: r.type,
    status: r.status,
    created_at: r.created_at,
  });
  return new StoreConflictError(
    'orders',
    { client_order_id: row.client_order_id },
    had ? brief(had) : { bot_id: '(another bot)' },
    brief(row),
    `order ${row.client_order_id} belongs to another bot${had ? ` ("${had.bot_id}")` : ''}, not to "${row.bot_id}"`,
    'A client order id belongs to one bot for ever (each bot has its own id prefix): two bots ' +
      `sending under one id would take each other’s fills.${why === '' ? '' : ` ${why}`}`,
  );
}

export function toOrder(r: Selectable<OrdersTable>): OrderState {
  const request = JSON.parse(r.request) as OrderRequest;
  const o: OrderState = {
    request: { ...request, id: ClientOrderId(r.client_order_id) },
    status: r.status as OrderStatus,
    filled: Number(r.filled),
    avgPrice: nanIfNull(r.avg_price),
    fee: Number(r.fee),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    triggered: r.triggered === 1,
    stopLevel: nanIfNull(r.stop_level),
    decisionPrice: nanIfNull(r.decision_price),
    active: r.active === 1,
  };
  if (r.venue_order_id !== null) o.venueOrderId = VenueOrderId(r.venue_order_id);
  if (r.reason !== null) o.reason = r.reason;
  return o;
}
