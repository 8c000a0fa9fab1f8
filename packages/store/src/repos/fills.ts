import type { Fill } from '@keel/core';
import { ClientOrderId } from '@keel/core';
import type { Selectable } from 'kysely';
import type { FillsTable } from '../schema.ts';
import type { RepoContext } from './context.ts';

export interface FillRepo {
  /** Records one execution; false (and no change) when this bot already has this trade id. */
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
      const r = await db
        .insertInto('fills')
        .values(row)
        .onConflict((oc) => oc.columns(['bot_id', 'trade_id']).doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0n) === 1;
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
  return {
    bot_id: botId,
    trade_id: f.tradeId,
    client_order_id: f.orderId,
    symbol: f.symbol,
    side: f.side,
    price: f.price,
    amount: f.amount,
    fee: f.fee,
    fee_asset: f.feeAsset,
    liquidity: f.liquidity,
    time: f.time,
    tag: f.tag ?? null,
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
  };
}
