import type { Fill } from '@keel/core';
import { ClientOrderId } from '@keel/core';
import type { Selectable } from 'kysely';
import { differingFields, StoreConflictError } from '../errors.ts';
import type { FillsTable } from '../schema.ts';
import { finite, type RepoContext } from './context.ts';

export interface FillRepo {
  /**
   * Records one execution. Returns true when it is new, false when this bot already has this
   * trade id with the very same values (an execution fetched again, e.g. by recovery after a
   * crash: nothing changes). Throws a `StoreConflictError` naming both when the trade id is
   * recorded with other values (another order, price, amount, fee or time): two executions
   * under one id, one of which would otherwise be lost.
   */
  record(botId: string, fill: Fill): Promise<boolean>;
  forOrder(botId: string, clientOrderId: string): Promise<Fill[]>;
  since(botId: string, time: number): Promise<Fill[]>;
  /** The latest fill time for a bot (the `since` for fetchMyTrades after a restart). */
  lastTime(botId: string): Promise<number | undefined>;
}

export function fillRepo({ db }: RepoContext): FillRepo {
  return {
    async record(botId, f) {
      const row = fillRow(botId, f);
      // DO NOTHING instead of catching the key violation: on PostgreSQL a failed statement
      // aborts the whole transaction, and the caller's transaction must go on to say why.
      const r = await db
        .insertInto('fills')
        .values(row)
        .onConflict((oc) => oc.columns(['bot_id', 'trade_id']).doNothing())
        .executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 1) return true;
      const had = await db
        .selectFrom('fills')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('trade_id', '=', f.tradeId)
        .executeTakeFirstOrThrow();
      const stored = execution(toFill(had));
      const attempted = execution(f);
      if (differingFields(stored, attempted).length === 0) return false;
      throw new StoreConflictError(
        'fills',
        { bot_id: botId, trade_id: f.tradeId },
        stored,
        attempted,
        `fill ${f.tradeId} of bot "${botId}" is already recorded as another execution`,
        'A trade id names one execution on its venue; a second execution under the same id ' +
          '(a venue that numbers its trades anew after a restart, or two venues behind one bot) ' +
          'would be dropped, and with it its order, position and balance changes.',
      );
    },
    async forOrder(botId, id) {
      const rows = await db
        .selectFrom('fills')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('client_order_id', '=', id)
        .orderBy('time')
        .orderBy('trade_id')
        .execute();
      return rows.map(toFill);
    },
    async since(botId, time) {
      const rows = await db
        .selectFrom('fills')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('time', '>=', time)
        .orderBy('time')
        .orderBy('trade_id')
        .execute();
      return rows.map(toFill);
    },
    async lastTime(botId) {
      const r = await db
        .selectFrom('fills')
        .select((eb) => eb.fn.max('time').as('t'))
        .where('bot_id', '=', botId)
        .executeTakeFirst();
      return r?.t === null || r?.t === undefined ? undefined : Number(r.t);
    },
  };
}

function fillRow(botId: string, f: Fill): Selectable<FillsTable> {
  const what = `fill ${f.tradeId} of bot "${botId}"`;
  return {
    bot_id: botId,
    trade_id: f.tradeId,
    client_order_id: f.orderId,
    symbol: f.symbol,
    side: f.side,
    price: finite(what, 'price', f.price),
    amount: finite(what, 'amount', f.amount),
    fee: finite(what, 'fee', f.fee),
    fee_asset: f.feeAsset,
    liquidity: f.liquidity,
    time: finite(what, 'time', f.time),
    tag: f.tag ?? null,
    position_side: f.positionSide ?? null,
    fee_value: f.feeValue === undefined ? null : finite(what, 'feeValue', f.feeValue),
  };
}

/**
 * Every value that tells one execution from another (the key aside); not `feeValue`, the bot's
 * valuation of the fee, which is no part of what the venue executed.
 */
function execution(f: Fill): Record<string, unknown> {
  return {
    order: f.orderId,
    symbol: f.symbol,
    side: f.side,
    price: f.price,
    amount: f.amount,
    fee: f.fee,
    feeAsset: f.feeAsset,
    liquidity: f.liquidity,
    time: f.time,
    tag: f.tag,
    positionSide: f.positionSide,
  };
}

function toFill(r: Selectable<FillsTable>): Fill {
  return {
    orderId: ClientOrderId(r.client_order_id),
    tradeId: r.trade_id,
    symbol: r.symbol,
    side: r.side as Fill['side'],
    price: Number(r.price),
    amount: Number(r.amount),
    fee: Number(r.fee),
    feeAsset: r.fee_asset,
    liquidity: r.liquidity as Fill['liquidity'],
    time: Number(r.time),
    ...(r.tag !== null ? { tag: r.tag } : {}),
    ...(r.position_side === 'long' || r.position_side === 'short' ? { positionSide: r.position_side } : {}),
    ...(r.fee_value !== null && r.fee_value !== undefined ? { feeValue: Number(r.fee_value) } : {}),
  };
}
