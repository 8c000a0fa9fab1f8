import type { HedgeSide } from '@keel/core';
import type { Selectable } from 'kysely';
import type { PositionsTable } from '../schema.ts';
import { finite, nanIfNull, nullIfNaN, type RepoContext } from './context.ts';

export interface StoredPosition {
  readonly symbol: string;
  /** One side of a hedge-mode perpetual (absent: the market's one position). */
  readonly positionSide?: HedgeSide;
  readonly size: number;
  /** NaN when flat. */
  readonly avgPrice: number;
  readonly realizedPnl: number;
}

export interface PositionRepo {
  /**
   * Replaces the bot's position in one symbol. A fill's position goes through `applyFill`
   * instead, with the fill and the balances it changed.
   */
  save(botId: string, position: StoredPosition): Promise<void>;
  load(botId: string): Promise<StoredPosition[]>;
  get(botId: string, symbol: string, positionSide?: HedgeSide): Promise<StoredPosition | undefined>;
}

export function positionRepo({ db, clock }: RepoContext): PositionRepo {
  return {
    async save(botId, p) {
      const what = `position ${p.symbol}${p.positionSide === undefined ? '' : ` ${p.positionSide}`} of bot "${botId}"`;
      const row = {
        bot_id: botId,
        symbol: p.symbol,
        position_side: p.positionSide ?? '',
        size: finite(what, 'size', p.size),
        avg_price: nullIfNaN(p.avgPrice),
        realized_pnl: finite(what, 'realizedPnl', p.realizedPnl),
        updated_at: clock.now(),
      };
      await db
        .insertInto('positions')
        .values(row)
        .onConflict((oc) =>
          oc.columns(['bot_id', 'symbol', 'position_side']).doUpdateSet({
            size: row.size,
            avg_price: row.avg_price,
            realized_pnl: row.realized_pnl,
            updated_at: row.updated_at,
          }),
        )
        .execute();
    },
    async load(botId) {
      const rows = await db
        .selectFrom('positions')
        .selectAll()
        .where('bot_id', '=', botId)
        .orderBy('symbol')
        .orderBy('position_side')
        .execute();
      return rows.map(toPosition);
    },
    async get(botId, symbol, positionSide) {
      const r = await db
        .selectFrom('positions')
        .selectAll()
        .where('bot_id', '=', botId)
        .where('symbol', '=', symbol)
        .where('position_side', '=', positionSide ?? '')
        .executeTakeFirst();
      return r && toPosition(r);
    },
  };
}

function toPosition(r: Selectable<PositionsTable>): StoredPosition {
  return {
    symbol: r.symbol,
    ...(r.position_side === 'long' || r.position_side === 'short' ? { positionSide: r.position_side } : {}),
    size: Number(r.size),
    avgPrice: nanIfNull(r.avg_price),
    realizedPnl: Number(r.realized_pnl),
  };
}
