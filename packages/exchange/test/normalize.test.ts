import { ClientOrderId, IllegalTransitionError, newOrderState, type OrderState } from '@keel/core';
import ccxt, { type Trade } from 'ccxt';
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

describe('why Binance expired an order (ExchangeOrder.expiry)', () => {
  // Oracle: Binance's documented user-data payloads (spot executionReport `eR` and status
  // EXPIRED_IN_MATCH; USDⓈ-M ORDER_TRADE_UPDATE `er`), parsed by ccxt's own parser.
  const spot = new ccxt.pro.binance();
  const usdm = new ccxt.pro.binanceusdm();
  const report = (over: Record<string, unknown>) =>
    fromCcxtOrder(
      spot.parseWsOrder({
        e: 'executionReport',
        s: 'BTCUSDT',
        c: 'k1',
        S: 'BUY',
        o: 'LIMIT',
        f: 'IOC',
        q: '0.01000000',
        p: '39000.00000000',
        x: 'EXPIRED',
        X: 'EXPIRED',
        i: 7,
        z: '0.00000000',
        T: 1,
        O: 1,
        ...over,
      }),
    );
  const update = (er: string | undefined, X = 'EXPIRED') =>
    fromCcxtOrder(
      usdm.parseWsOrder({
        s: 'LINKUSDT',
        c: 'k2',
        S: 'SELL',
        o: 'LIMIT',
        f: 'GTC',
        q: '100',
        p: '7',
        x: 'EXPIRED',
        X,
        i: 8,
        z: '0',
        T: 1,
        R: true,
        ps: 'BOTH',
        ...(er === undefined ? {} : { er }),
      }),
    );

  it('spot: the expiry reason eR, and self-trade prevention by its status', () => {
    expect(report({ eR: 'UNFILLED_IOC_QUANTITY_EXPIRED' }).expiry).toEqual({
      cause: 'ioc',
      detail: 'UNFILLED_IOC_QUANTITY_EXPIRED',
    });
    expect(report({ eR: 'UNFILLED_FOK_ORDER_EXPIRED' }).expiry?.cause).toBe('fok');
    expect(report({ eR: 'INSUFFICIENT_LIQUIDITY' }).expiry?.cause).toBe('market');
    expect(report({ eR: 'EXCHANGE_CANCELED' }).expiry).toEqual({ cause: 'exchange', detail: 'EXCHANGE_CANCELED' });
    const stp = report({ x: 'TRADE_PREVENTION', X: 'EXPIRED_IN_MATCH' });
    expect(stp.status).toBe('expired');
    expect(stp.expiry?.cause).toBe('self-trade');
    expect(report({}).expiry, 'no reason given').toBeUndefined();
  });

  it('USDⓈ-M: the expiry reason er', () => {
    expect(update('4').expiry).toEqual({ cause: 'reduce-only', detail: 'expiry reason 4' });
    expect(update('1').expiry?.cause).toBe('self-trade');
    expect(update('2').expiry?.cause).toBe('ioc');
    expect(update('5').expiry?.cause).toBe('liquidation');
    expect(update('9').expiry?.cause).toBe('market');
    expect(update('6').expiry).toEqual({ cause: 'exchange', detail: 'expiry reason 6' });
    expect(update('0').expiry).toBeUndefined();
    expect(update(undefined).expiry).toBeUndefined();
    expect(update('1', 'EXPIRED_IN_MATCH').expiry?.cause).toBe('self-trade');
  });
});
