import { ClientOrderId, IllegalTransitionError, newOrderState, type OrderState } from '@keel/core';
import type { Trade } from 'ccxt';
import { describe, expect, it } from 'vitest';
import { applyExchangeOrder, fromCcxtOrder, fromCcxtTrade, mapStatus } from '../src/index.ts';
import { ccxtOrder } from './fake-ccxt.ts';

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
