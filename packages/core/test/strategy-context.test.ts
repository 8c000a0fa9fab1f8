import { describe, expect, it } from 'vitest';
import {
  type Bar,
  type ClientOrderId,
  defineStrategy,
  type OrderView,
  type PositionView,
  runBacktest,
  type StrategyContext,
} from '../src/index.ts';
import { bars, scripted } from './helpers.ts';

const anyParams = { safeParse: (x: unknown) => ({ success: true as const, data: x }) };

/**
 * Never called: it only has to compile. Each write below is a type error (the `@ts-expect-error`
 * lines fail `npm run typecheck` the day a view becomes writable again).
 */
export function writesDoNotCompile(ctx: StrategyContext, id: ClientOrderId): void {
  const o = ctx.order(id) as OrderView;
  // @ts-expect-error an order's status changes only through the engine
  o.status = 'filled';
  // @ts-expect-error nor its fill
  o.filled = 1;
  // @ts-expect-error nor its request
  o.request.amount = 2;
  const open = ctx.openOrders();
  // @ts-expect-error the list of open orders is the strategy's own copy, and read-only
  open.push(o);
  const p: PositionView = ctx.position();
  // @ts-expect-error a position moves only by fills
  p.size = 3;
  const bar = ctx.lastBar() as Readonly<Bar>;
  // @ts-expect-error the engine reuses the bar object for the feed's next bar
  bar.close = 4;
}

describe('the strategy context (strategy/context.ts)', () => {
  it('orders are read through views that follow the order: submitted, then filled at the next open', () => {
    // Hand-computed: a market buy sent at bar 0 fills at bar 1's open (100.5); at bar 1's onBar the
    // strategy's view of it says filled, 1 at 100.5, and nothing is open.
    const seen: string[] = [];
    let id: ClientOrderId | undefined;
    const strategy = scripted({
      0: (ctx) => {
        id = ctx.buy(1);
        const o = ctx.order(id) as OrderView;
        seen.push(`${o.status} ${o.filled} open=${ctx.openOrders().length}`);
      },
      1: (ctx) => {
        const o = ctx.order(id as ClientOrderId) as OrderView;
        seen.push(`${o.status} ${o.filled}@${o.avgPrice} open=${ctx.openOrders().length}`);
      },
    });
    runBacktest({
      strategy,
      data: [
        {
          symbol: 'BTC/USDT',
          timeframe: '1m',
          series: bars([
            [100, 101, 99, 100],
            [100.5, 102, 100, 101],
            [101, 101, 100, 100.5],
          ]),
        },
      ],
      cash: 1_000,
    });
    expect(seen).toEqual(['submitted 0 open=1', 'filled 1@100.5 open=0']);
  });

  it('onOrder hands the strategy the same view ctx.order() returns', () => {
    const statuses: string[] = [];
    let same = true;
    const strategy = defineStrategy({
      name: 'order-view-probe',
      params: anyParams,
      warmup: 'none',
      onStart: () => ({ sent: false }),
      onBar(ctx, s) {
        if (!s.sent) ctx.buy(1);
        s.sent = true;
      },
      onOrder(ctx, _s, order) {
        statuses.push(order.status);
        if (ctx.order(order.request.id)?.status !== order.status) same = false;
      },
    });
    runBacktest({
      strategy,
      data: [
        {
          symbol: 'BTC/USDT',
          timeframe: '1m',
          series: bars([
            [100, 101, 99, 100],
            [100.5, 102, 100, 101],
          ]),
        },
      ],
      cash: 1_000,
    });
    expect(statuses).toEqual(['accepted', 'filled']);
    expect(same).toBe(true);
  });
});
