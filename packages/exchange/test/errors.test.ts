import * as ccxt from 'ccxt';
import { describe, expect, it } from 'vitest';
import { classifyError, KeelExchangeError, retryAfterMs } from '../src/index.ts';

// Oracle: the mapping table in docs/exchange.md, row by row, with ccxt's real error classes.
describe('classifyError: ccxt errors map to the closed set', () => {
  const cases: Array<[string, Error, string]> = [
    ['NetworkError', new ccxt.NetworkError('socket hang up'), 'transient'],
    ['RequestTimeout', new ccxt.RequestTimeout('timed out (10000 ms)'), 'transient'],
    ['ExchangeNotAvailable (5xx)', new ccxt.ExchangeNotAvailable('binance 503 Service Unavailable'), 'transient'],
    ['OnMaintenance', new ccxt.OnMaintenance('system maintenance'), 'transient'],
    [
      'BadResponse (-1007 status unknown)',
      new ccxt.BadResponse('Timeout waiting for response from backend server'),
      'transient',
    ],
    [
      'InvalidNonce (-1021)',
      new ccxt.InvalidNonce('Timestamp for this request is outside of the recvWindow'),
      'transient',
    ],
    ['RateLimitExceeded', new ccxt.RateLimitExceeded('-1003 too many requests'), 'rate-limited'],
    ['DDoSProtection (429/418)', new ccxt.DDoSProtection('binance 429 Too Many Requests'), 'rate-limited'],
    ['InvalidOrder', new ccxt.InvalidOrder('Filter failure: LOT_SIZE'), 'rejected'],
    ['InsufficientFunds', new ccxt.InsufficientFunds('Account has insufficient balance'), 'rejected'],
    ['BadRequest', new ccxt.BadRequest('Illegal characters found in parameter'), 'rejected'],
    ['BadSymbol', new ccxt.BadSymbol('Invalid symbol'), 'rejected'],
    ['OperationRejected', new ccxt.OperationRejected('-2011 CANCEL_REJECTED'), 'rejected'],
    ['OrderNotFound (not InvalidOrder)', new ccxt.OrderNotFound('Order does not exist'), 'not-found'],
    ['AuthenticationError', new ccxt.AuthenticationError('Invalid API-key'), 'auth'],
    ['PermissionDenied', new ccxt.PermissionDenied('not allowed'), 'auth'],
    ['AccountSuspended', new ccxt.AccountSuspended('suspended'), 'auth'],
    ['ExchangeError (generic)', new ccxt.ExchangeError('something odd'), 'fatal'],
    ['NotSupported', new ccxt.NotSupported('no'), 'fatal'],
    ['plain Error', new Error('bug'), 'fatal'],
  ];
  for (const [name, err, kind] of cases) {
    it(`${name} -> ${kind}`, () => {
      const k = classifyError(err, 'orders');
      expect(k).toBeInstanceOf(KeelExchangeError);
      expect(k.kind).toBe(kind);
      expect(k.endpoint).toBe('orders');
      expect(k.cause).toBe(err);
      expect(k.message).toContain(err.message);
      expect(k.retryable).toBe(kind === 'transient' || kind === 'rate-limited');
    });
  }

  it('a non-ccxt error with an HTTP 5xx status is transient', () => {
    expect(classifyError(Object.assign(new Error('bad gateway'), { status: 502 }), 'queries').kind).toBe('transient');
  });

  it('duplicate client order id: DuplicateOrderId and Binance -2010 "Duplicate order sent." are rejected + duplicate', () => {
    const a = classifyError(new ccxt.DuplicateOrderId('dup'), 'orders');
    const b = classifyError(new ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}'), 'orders');
    const c = classifyError(
      new ccxt.InvalidOrder('binance {"code":-2010,"msg":"Account has insufficient balance"}'),
      'orders',
    );
    expect([a.kind, a.duplicate, b.kind, b.duplicate, c.duplicate]).toEqual([
      'rejected',
      true,
      'rejected',
      true,
      false,
    ]);
  });

  it('honours Retry-After (seconds or HTTP date) on rate-limited errors only', () => {
    const e = classifyError(new ccxt.DDoSProtection('429'), 'queries', { headers: { 'Retry-After': '7' } });
    expect(e.retryAfterMs).toBe(7000);
    expect(
      classifyError(new ccxt.NetworkError('x'), 'queries', { headers: { 'retry-after': '7' } }).retryAfterMs,
    ).toBeUndefined();
    expect(retryAfterMs({ 'retry-after': 'Thu, 01 Jan 1970 00:00:10 GMT' }, 4_000)).toBe(6_000);
    expect(retryAfterMs({}, 0)).toBeUndefined();
  });

  it('passes a KeelExchangeError through unchanged', () => {
    const k = new KeelExchangeError({ kind: 'auth', endpoint: 'queries', message: 'm' });
    expect(classifyError(k, 'orders')).toBe(k);
  });
});
