import { ClientOrderId, IllegalTransitionError, newOrderState, type OrderState } from '@keel/core';
import type { Order, Trade } from 'ccxt';
import { describe, expect, it } from 'vitest';
import {
  applyExchangeOrder,
  type ExchangeOrder,
  fromCcxtOrder,
  fromCcxtTrade,
  mapStatus,
  reconcile,
} from '../src/index.ts';

const ccxtOrder = (over: Partial<Order>): Order =>
  ({
    id: 'v1',
    clientOrderId: 'c1',
    symbol: 'BTC/USDT',
    type: 'limit',
    side: 'buy',
    amount: 1,
    filled: 0,
    price: 100,
    average: undefined,
    status: 'open',
    timestamp: 10,
    fee: { cost: 0, currency: 'USDT' },
    trades: [],
    info: {},
    ...over,
  }) as Order;
const trade = (id: string, order: string, amount: number, time: number): Trade =>
  ({
    id,
    order,
    symbol: 'BTC/USDT',
    side: 'buy',
    price: 100,
    amount,
    takerOrMaker: 'maker',
    timestamp: time,
    fee: { cost: 0.01, currency: 'USDT' },
    info: {},
  }) as Trade;

function local(id: string, status: OrderState['status'], filled = 0, venue?: string): OrderState {
  const o = newOrderState(
    {
      id: ClientOrderId(id),
      symbol: 'BTC/USDT',
      side: 'buy',
      type: 'limit',
      price: 100,
      amount: 1,
      timeInForce: 'GTC',
    },
    1,
    100,
  );
  o.status = status;
  o.filled = filled;
  if (venue) o.venueOrderId = venue as OrderState['venueOrderId'];
  return o;
}

describe('normalisation of ccxt orders and trades', () => {
  it('maps ccxt statuses to the lifecycle statuses', () => {
    expect(mapStatus('open', 0, 1)).toBe('accepted');
    expect(mapStatus('open', 0.5, 1)).toBe('partially-filled');
    expect(mapStatus('closed', 1, 1)).toBe('filled');
    expect(mapStatus('canceled', 0.5, 1)).toBe('cancelled');
    expect(mapStatus('expired', 0, 1)).toBe('expired');
    expect(mapStatus('rejected', 0, 1)).toBe('rejected');
    expect(() => mapStatus('weird', 0, 1)).toThrow(/unknown ccxt order status/);
  });

  it('applies exchange updates through the lifecycle table, never mutating the input', () => {
    const s = local('c1', 'submitted');
    const a = applyExchangeOrder(s, fromCcxtOrder(ccxtOrder({})), 20);
    expect(a.status).toBe('accepted');
    expect(a.venueOrderId).toBe('v1');
    expect(s.status).toBe('submitted');
    const b = applyExchangeOrder(a, fromCcxtOrder(ccxtOrder({ status: 'open', filled: 0.4, average: 99.5 })), 30);
    expect([b.status, b.filled, b.avgPrice]).toEqual(['partially-filled', 0.4, 99.5]);
    expect(applyExchangeOrder(b, fromCcxtOrder(ccxtOrder({ status: 'open', filled: 0.4, average: 99.5 })), 40)).toBe(b);
    const c = applyExchangeOrder(b, fromCcxtOrder(ccxtOrder({ status: 'closed', filled: 1, average: 99.8 })), 50);
    expect(c.status).toBe('filled');
    // A venue that reports fills on a cancelled order is a conflict to look at, not to guess.
    expect(() =>
      applyExchangeOrder(local('c1', 'cancelled'), fromCcxtOrder(ccxtOrder({ status: 'closed', filled: 1 })), 60),
    ).toThrow(IllegalTransitionError);
  });

  it('turns trades of our orders into Fills and ignores the others', () => {
    const f = fromCcxtTrade(trade('t1', 'v1', 0.25, 99), (v) => (v === 'v1' ? ClientOrderId('c1') : undefined));
    expect(f).toEqual({
      orderId: 'c1',
      tradeId: 't1',
      symbol: 'BTC/USDT',
      side: 'buy',
      price: 100,
      amount: 0.25,
      fee: 0.01,
      feeAsset: 'USDT',
      liquidity: 'maker',
      time: 99,
    });
    expect(fromCcxtTrade(trade('t2', 'v9', 1, 1), () => undefined)).toBeUndefined();
  });
});

describe('reconcile (pure, deterministic)', () => {
  const x = (o: Partial<Order>): ExchangeOrder => fromCcxtOrder(ccxtOrder(o));

  it('reports orders filled or cancelled while down with their fills, lost orders, unknown orders and balance diffs', () => {
    const localSnap = {
      openOrders: [
        local('c3', 'accepted', 0, 'v3'),
        local('c1', 'accepted', 0, 'v1'),
        local('c2', 'partially-filled', 0.5, 'v2'),
        local('c4', 'submitted'),
      ],
      balances: [
        { asset: 'USDT', free: 1000, used: 0, total: 1000 },
        { asset: 'BTC', free: 0, used: 0, total: 0.5 },
      ],
      knownTradeIds: new Set(['t2a']),
    };
    const venue = {
      openOrders: [
        x({ id: 'v3', clientOrderId: 'c3' }),
        x({ id: 'v9', clientOrderId: 'manual-1', amount: 2 }),
        x({ id: 'v8', clientOrderId: 'kbot-zzz' }),
      ],
      closedOrders: [
        x({ id: 'v1', clientOrderId: 'c1', status: 'closed', filled: 1, average: 100 }),
        x({ id: 'v2', clientOrderId: 'c2', status: 'canceled', filled: 0.75, average: 100 }),
      ],
      trades: [
        trade('t1b', 'v1', 0.6, 20),
        trade('t1a', 'v1', 0.4, 10),
        trade('t2a', 'v2', 0.5, 5),
        trade('t2b', 'v2', 0.25, 30),
        trade('t2b', 'v2', 0.25, 30),
        trade('tx', 'v9', 2, 1),
      ],
      balances: [
        { asset: 'BTC', free: 1.25, used: 0, total: 1.25 },
        { asset: 'USDT', free: 1000, used: 0, total: 1000 },
      ],
    };
    const actions = reconcile(localSnap, venue, {
      unknownOrders: 'adopt',
      isOurs: (id) => id === undefined || !id.startsWith('manual-'),
    });
    expect(actions.map((a) => a.type)).toEqual([
      'order-update',
      'order-update',
      'order-lost',
      'unknown-order',
      'balance-diff',
    ]);
    const [u1, u2, lost, unknown, bal] = actions;
    expect(u1).toMatchObject({ clientOrderId: 'c1', from: 'accepted', to: 'filled' });
    expect(u1?.type === 'order-update' && u1.fills.map((f) => f.tradeId)).toEqual(['t1a', 't1b']);
    expect(u2).toMatchObject({ clientOrderId: 'c2', from: 'partially-filled', to: 'cancelled' });
    expect(u2?.type === 'order-update' && u2.fills.map((f) => f.tradeId)).toEqual(['t2b']);
    expect(lost).toEqual({ type: 'order-lost', clientOrderId: 'c4', symbol: 'BTC/USDT' });
    expect(unknown).toMatchObject({ decision: 'adopt', order: { venueOrderId: 'v8' } });
    expect(bal).toEqual({ type: 'balance-diff', asset: 'BTC', local: 0.5, venue: 1.25, diff: 0.75 });
    // Same input, same output (and input order does not matter).
    const shuffled = { ...venue, trades: [...venue.trades].reverse(), openOrders: [...venue.openOrders].reverse() };
    expect(
      reconcile({ ...localSnap, openOrders: [...localSnap.openOrders].reverse() }, shuffled, {
        unknownOrders: 'adopt',
        isOurs: (id) => id === undefined || !id.startsWith('manual-'),
      }),
    ).toEqual(actions);
  });

  it('reports nothing when both sides agree', () => {
    const l = {
      openOrders: [local('c1', 'accepted', 0, 'v1')],
      balances: [{ asset: 'USDT', free: 1, used: 0, total: 1 }],
      knownTradeIds: new Set<string>(),
    };
    const v = {
      openOrders: [x({})],
      closedOrders: [],
      trades: [],
      balances: [{ asset: 'USDT', free: 1, used: 0, total: 1 }],
    };
    expect(reconcile(l, v)).toEqual([]);
  });
});
