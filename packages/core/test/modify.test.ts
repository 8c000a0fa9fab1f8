/**
 * ctx.modify: a cancel and replace that keeps every field of the request it does not change
 * (OrderChanges: price, stopPrice, amount). Hand-made bars; every fill is computed by hand from the
 * bar path (docs/conventions.md: O -> L -> H -> C for a bar that closes up, O -> H -> L -> C down).
 */
import { describe, expect, it } from 'vitest';
import { type ClientOrderId, type FuturesMarketSettings, runBacktest } from '../src/index.ts';
import { bars, scripted } from './helpers.ts';

const PERP = 'LINK/USDT:USDT';
const SPOT = 'BTC/USDT';
const futures = (): FuturesMarketSettings => ({ leverage: 2, marginMode: 'cross', funding: null });

describe('ctx.modify keeps what it does not change', () => {
  it('a modified reduce-only take-profit on a perpetual only reduces: flat, it is cancelled instead of opening a short', () => {
    let tp = '' as ClientOrderId;
    let moved: ClientOrderId | null = null;
    const r = runBacktest({
      strategy: scripted({
        0: (ctx) => void ctx.buy(10),
        1: (ctx) => {
          tp = ctx.submit({
            type: 'limit',
            side: 'sell',
            amount: 10,
            price: 120,
            reduceOnly: true,
            tag: 'take-profit',
          });
        },
        2: (ctx) => {
          ctx.sell(10); // closes the long at bar 3's open (100)
          moved = ctx.modify(tp, { price: 101 });
        },
      }),
      data: [
        {
          symbol: PERP,
          timeframe: '1m',
          instrument: { tickSize: 0.001, stepSize: 1 },
          series: bars([
            [100, 100, 100, 100],
            [100, 100, 100, 100],
            [100, 100, 100, 100],
            [100, 100, 100, 100],
            // The path reaches 101 after the open: a resting sell at 101 would be hit here.
            [100, 110, 100, 105],
            [105, 105, 105, 105],
          ]),
        },
      ],
      cash: 10_000,
      futures,
    });
    expect(moved).not.toBeNull();
    const m = r.orders.find((o) => o.request.id === moved)!;
    expect(m.request).toMatchObject({
      type: 'limit',
      side: 'sell',
      amount: 10,
      price: 101,
      reduceOnly: true,
      replaces: tp,
    });
    expect(m.request.tag).toBe('take-profit');
    // The close at bar 3's open leaves nothing to reduce: the moved take-profit expires there, as
    // Binance expires it (a plain limit would rest and sell at 101 in bar 4, opening a short).
    expect(m.status).toBe('expired');
    expect(m.reason).toBe('reduce-only: expired with 0 of 10 filled (the position it reduces was closed)');
    expect(m.filled).toBe(0);
    // Two fills only: the buy and the sell at 100 (no third fill at 101).
    expect(r.fills.map((f) => [f.side, f.amount, f.price])).toEqual([
      ['buy', 10, 100],
      ['sell', 10, 100],
    ]);
    expect(r.portfolio.positions.find((p) => p.symbol === PERP)?.size ?? 0).toBe(0);
  });

  it('a modified exit of a hedge-mode side stays on that side', () => {
    let tp = '' as ClientOrderId;
    let moved: ClientOrderId | null = null;
    const r = runBacktest({
      strategy: scripted({
        0: (ctx) => void ctx.buy(10, { positionSide: 'long' }),
        1: (ctx) => {
          tp = ctx.submit({ type: 'limit', side: 'sell', amount: 10, price: 120, positionSide: 'long' });
        },
        2: (ctx) => {
          moved = ctx.modify(tp, { price: 101 });
        },
      }),
      data: [
        {
          symbol: PERP,
          timeframe: '1m',
          instrument: { tickSize: 0.001, stepSize: 1 },
          series: bars([
            [100, 100, 100, 100],
            [100, 100, 100, 100],
            [100, 100, 100, 100],
            // Reaches 101 after the open: the moved exit sells the long side's 10 there (maker).
            [100, 110, 100, 105],
            [105, 105, 105, 105],
          ]),
        },
      ],
      cash: 10_000,
      futures: () => ({ leverage: 2, marginMode: 'cross', funding: null, positionMode: 'hedge' }),
    });
    const m = r.orders.find((o) => o.request.id === moved)!;
    expect(m.request.positionSide).toBe('long');
    expect(m.status).toBe('filled');
    expect(r.fills.map((f) => [f.positionSide, f.side, f.amount, f.price])).toEqual([
      ['long', 'buy', 10, 100],
      ['long', 'sell', 10, 101],
    ]);
    expect(r.futures?.markets[0]).toMatchObject({
      sides: [
        { positionSide: 'long', size: 0 },
        { positionSide: 'short', size: 0 },
      ],
    });
  });

  it('a modified post-only limit that would cross on arrival is rejected, not taken', () => {
    let bid = '' as ClientOrderId;
    let moved: ClientOrderId | null = null;
    const r = runBacktest({
      strategy: scripted({
        0: (ctx) => {
          bid = ctx.submit({ type: 'limit', side: 'buy', amount: 1, price: 90, postOnly: true });
        },
        1: (ctx) => {
          moved = ctx.modify(bid, { price: 105 });
        },
      }),
      data: [
        {
          symbol: SPOT,
          timeframe: '1m',
          series: bars([
            [100, 100, 100, 100],
            [100, 101, 99, 100],
            // Opens at 100, below the new bid 105: a taker buy at 100 were it not post-only.
            [100, 101, 99, 100],
            [100, 101, 99, 100],
          ]),
        },
      ],
      cash: 1_000,
    });
    const m = r.orders.find((o) => o.request.id === moved)!;
    expect(m.request).toMatchObject({ type: 'limit', side: 'buy', price: 105, postOnly: true });
    expect(m.status).toBe('rejected');
    expect(m.reason).toBe('post-only limit buy at 105 would take liquidity (open 100)');
    expect(r.fills).toHaveLength(0);
  });

  it('keeps time in force and expiry, the tag and the OCO group', () => {
    const ids: Record<string, ClientOrderId | null> = {};
    const expireAt = Date.UTC(2024, 0, 2);
    const r = runBacktest({
      strategy: scripted({
        0: (ctx) => void ctx.buy(2),
        1: (ctx) => {
          [ids['tp'], ids['sl']] = ctx.oco(
            { type: 'limit', side: 'sell', amount: 2, price: 130, timeInForce: 'GTD', expireAt, tag: 'tp' },
            { type: 'stop-market', side: 'sell', amount: 2, stopPrice: 80, tag: 'sl' },
          );
        },
        2: (ctx) => {
          ids['tp2'] = ctx.modify(ids['tp']!, { price: 110 });
        },
      }),
      data: [
        {
          symbol: SPOT,
          timeframe: '1m',
          series: bars([
            [100, 100, 100, 100],
            [100, 100, 100, 100],
            [100, 100, 100, 100],
            // The moved take-profit is reached at 110 (maker); its OCO sibling, the stop, is cancelled.
            [100, 112, 100, 111],
            [111, 111, 111, 111],
          ]),
        },
      ],
      cash: 1_000,
    });
    const tp2 = r.orders.find((o) => o.request.id === ids['tp2'])!;
    expect(tp2.request).toMatchObject({
      type: 'limit',
      side: 'sell',
      amount: 2,
      price: 110,
      timeInForce: 'GTD',
      expireAt,
      tag: 'tp',
      ocoGroup: r.orders.find((o) => o.request.id === ids['tp'])!.request.ocoGroup,
    });
    expect(tp2.status).toBe('filled');
    expect(tp2.avgPrice).toBe(110);
    const sl = r.orders.find((o) => o.request.id === ids['sl'])!;
    expect(sl.status).toBe('cancelled');
    expect(sl.reason).toBe(`OCO: ${ids['tp2']} filled`);
  });

  it('a bracket exit moved before its entry fills waits for it; one moved after works at once', () => {
    const ids: Record<string, ClientOrderId | null> = {};
    const r = runBacktest({
      strategy: scripted({
        0: (ctx) => {
          const b = ctx.bracket({ side: 'buy', amount: 1, entryPrice: 95, takeProfit: 130, stopLoss: 80 });
          ids['entry'] = b.entry;
          // The entry (limit 95) has not filled: the moved stop still waits for it.
          ids['sl'] = ctx.modify(b.stopLoss, { stopPrice: 85 });
          ids['tp'] = b.takeProfit;
        },
        2: (ctx) => {
          // The entry filled at bar 1: the take-profit works; the moved one works too.
          ids['tp2'] = ctx.modify(ids['tp']!, { price: 104 });
        },
      }),
      data: [
        {
          symbol: SPOT,
          timeframe: '1m',
          series: bars([
            [100, 100, 100, 100],
            // Down to 95: the entry fills (maker at 95); 85 is not reached.
            [100, 100, 94, 96],
            [96, 100, 96, 100],
            // Reaches 104: the moved take-profit fills; the moved stop is its OCO sibling.
            [100, 105, 99, 104],
            [104, 104, 104, 104],
          ]),
        },
      ],
      cash: 1_000,
    });
    const sl = r.orders.find((o) => o.request.id === ids['sl'])!;
    const tp2 = r.orders.find((o) => o.request.id === ids['tp2'])!;
    expect(sl.request).toMatchObject({ type: 'stop-market', stopPrice: 85, reduceOnly: true, parentId: ids['entry'] });
    expect(tp2.request).toMatchObject({ type: 'limit', price: 104, reduceOnly: true, tag: 'take-profit' });
    expect(tp2.request.parentId).toBeUndefined();
    expect(r.fills.map((f) => [f.side, f.amount, f.price])).toEqual([
      ['buy', 1, 95],
      ['sell', 1, 104],
    ]);
    expect(sl.status).toBe('cancelled');
    expect(sl.reason).toBe(`OCO: ${ids['tp2']} filled`);
  });

  it('a change the order type does not have throws, and the order is left working', () => {
    let error = '';
    let id = '' as ClientOrderId;
    const r = runBacktest({
      strategy: scripted({
        0: (ctx) => {
          id = ctx.submit({ type: 'limit', side: 'buy', amount: 1, price: 90 });
          try {
            ctx.modify(id, { stopPrice: 95 });
          } catch (e) {
            error = (e as Error).message;
          }
        },
      }),
      data: [
        {
          symbol: SPOT,
          timeframe: '1m',
          series: bars([
            [100, 100, 100, 100],
            [100, 100, 100, 100],
          ]),
        },
      ],
      cash: 1_000,
    });
    expect(error).toBe(`modify(${id}): a limit order has no stop price to change`);
    expect(r.orders.find((o) => o.request.id === id)!.status).not.toBe('cancelled');
  });
});
