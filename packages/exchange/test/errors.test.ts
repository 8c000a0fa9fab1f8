import { FAILURE_KINDS, type FailureKind, isRetryable } from '@keel/core';
import * as ccxt from 'ccxt';
import { describe, expect, it } from 'vitest';
import { BINANCE_CODE_KINDS, classifyError, failureKind, KeelExchangeError, retryAfterMs } from '../src/index.ts';

// Oracle: the mapping table in docs/exchange.md, row by row, for ccxt's real error classes and for
// Binance's documented error codes as ccxt's own binance client turns their responses into errors.

/** Every class of ccxt's error hierarchy and its kind: a class ccxt adds fails here until it is placed. */
const CCXT_CLASS_KINDS: Record<string, FailureKind> = {
  BaseError: 'fatal',
  ExchangeError: 'rejected',
  AuthenticationError: 'auth',
  PermissionDenied: 'auth',
  AccountNotEnabled: 'auth',
  AccountSuspended: 'auth',
  ArgumentsRequired: 'rejected',
  BadRequest: 'rejected',
  BadSymbol: 'not-found',
  OperationRejected: 'rejected',
  NoChange: 'rejected',
  MarginModeAlreadySet: 'rejected',
  MarketClosed: 'rejected',
  ManualInteractionNeeded: 'rejected',
  RestrictedLocation: 'auth',
  InsufficientFunds: 'rejected',
  InvalidAddress: 'rejected',
  AddressPending: 'rejected',
  InvalidOrder: 'rejected',
  OrderNotFound: 'not-found',
  OrderNotCached: 'not-found',
  OrderImmediatelyFillable: 'rejected',
  OrderNotFillable: 'rejected',
  DuplicateOrderId: 'rejected',
  ContractUnavailable: 'rejected',
  NotSupported: 'fatal',
  InvalidProxySettings: 'fatal',
  ExchangeClosedByUser: 'fatal',
  OperationFailed: 'in-doubt',
  NetworkError: 'in-doubt',
  DDoSProtection: 'rate-limited',
  RateLimitExceeded: 'rate-limited',
  ExchangeNotAvailable: 'in-doubt',
  OnMaintenance: 'transient',
  InvalidNonce: 'rejected',
  ChecksumError: 'transient',
  RequestTimeout: 'in-doubt',
  BadResponse: 'in-doubt',
  NullResponse: 'in-doubt',
  CancelPending: 'transient',
  UnsubscribeError: 'fatal',
};

describe('failureKind: every ccxt error class has one kind', () => {
  const errors = ccxt as unknown as Record<string, new (m: string) => Error>;
  // ccxt's `errors` namespace: every error class it has.
  const classes = Object.entries(ccxt.errors as Record<string, unknown>)
    .filter(([, v]) => typeof v === 'function' && (v as { prototype: unknown }).prototype instanceof Error)
    .map(([name]) => name);

  it('covers every error class ccxt has', () => {
    expect(classes.length).toBeGreaterThan(30);
    expect(classes.filter((c) => !(c in CCXT_CLASS_KINDS))).toEqual([]);
  });

  for (const [name, kind] of Object.entries(CCXT_CLASS_KINDS)) {
    it(`${name} (a bare message) -> ${kind}`, () => {
      const Cls = errors[name];
      expect(Cls, `ccxt exports ${name}`).toBeTypeOf('function');
      const err = new (Cls as new (m: string) => Error)(`binance ${name}`);
      const k = classifyError(err, 'orders');
      expect(k.kind).toBe(kind);
      expect(k.cause).toBe(err);
      expect(k.message).toContain(err.message);
      expect(k.retryable).toBe(isRetryable(kind));
    });
  }
});

/**
 * Binance's documented spot error codes (developers.binance.com, "Error codes"), each with the
 * HTTP status Binance answers it with, run through ccxt's own binance error handling.
 */
const BINANCE: Array<[code: number, http: number, msg: string, kind: FailureKind]> = [
  [-1000, 500, 'An unknown error occurred while processing the request.', 'in-doubt'],
  [-1001, 503, 'Internal error; unable to process your request. Please try again.', 'in-doubt'],
  [-1002, 401, 'You are not authorized to execute this request.', 'auth'],
  [-1003, 429, 'Too much request weight used; current limit is 6000 request weight per 1 MINUTE.', 'rate-limited'],
  [-1003, 418, 'Way too much request weight used; IP banned until 1704067200000.', 'rate-limited'],
  [-1006, 503, 'An unexpected response was received from the message bus. Execution status unknown.', 'in-doubt'],
  [
    -1007,
    503,
    'Timeout waiting for response from backend server. Send status unknown; execution status unknown.',
    'in-doubt',
  ],
  [-1008, 503, 'Server is currently overloaded with other requests. Please try again in a few minutes.', 'transient'],
  [-1013, 400, 'Filter failure: LOT_SIZE', 'rejected'],
  [-1013, 400, 'Filter failure: NOTIONAL', 'rejected'],
  [-1014, 400, 'Unsupported order combination.', 'rejected'],
  [-1015, 429, 'Too many new orders; current limit is 100 orders per 10 SECOND.', 'rate-limited'],
  [-1016, 400, 'This service is no longer available.', 'rejected'],
  [-1020, 400, 'This operation is not supported.', 'rejected'],
  [-1021, 400, 'Timestamp for this request is outside of the recvWindow.', 'rejected'],
  [-1021, 400, "Timestamp for this request was 1000ms ahead of the server's time.", 'rejected'],
  [-1022, 400, 'Signature for this request is not valid.', 'auth'],
  [-1100, 400, "Illegal characters found in parameter 'newClientOrderId'.", 'rejected'],
  [-1102, 400, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.", 'rejected'],
  [-1106, 400, "Parameter 'timeInForce' sent when not required.", 'rejected'],
  [-1111, 400, 'Precision is over the maximum defined for this asset.', 'rejected'],
  [-1112, 400, 'No orders on book for symbol.', 'rejected'],
  [-1121, 400, 'Invalid symbol.', 'not-found'],
  [-1125, 400, 'This listenKey does not exist.', 'auth'],
  [-2010, 400, 'Account has insufficient balance for requested action.', 'rejected'],
  [-2010, 400, 'Order would immediately match and take.', 'rejected'],
  [-2010, 400, 'Duplicate order sent.', 'rejected'],
  [-2011, 400, 'Unknown order sent.', 'not-found'],
  [-2013, 400, 'Order does not exist.', 'not-found'],
  [-2014, 401, 'API-key format invalid.', 'auth'],
  [-2015, 401, 'Invalid API-key, IP, or permissions for action.', 'auth'],
  [
    -2026,
    400,
    'Order was canceled or expired with no executed qty over 90 days ago and has been archived.',
    'rejected',
  ],
  [-9999, 400, 'A code neither Binance documents nor ccxt knows.', 'rejected'],
];

/** What ccxt's binance client throws for this response (its handleErrors, then its HTTP-status table). */
function ccxtErrorFor(http: number, body: string): Error {
  const ex = new ccxt.binance();
  const url = 'https://api.binance.com/api/v3/order';
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  try {
    ex.handleErrors(http, 'reason', url, 'POST', {}, body, json, {}, '');
    ex.handleHttpStatusCode(http, 'Reason', url, 'POST', body);
  } catch (e) {
    return e as Error;
  }
  throw new Error(`ccxt did not throw for HTTP ${http} ${body}`);
}

describe("failureKind: Binance's error codes, as ccxt's binance client raises them", () => {
  for (const [code, http, msg, kind] of BINANCE) {
    it(`${code} (HTTP ${http}) "${msg.slice(0, 48)}" -> ${kind}`, () => {
      const err = ccxtErrorFor(http, JSON.stringify({ code, msg }));
      expect(failureKind(err), `ccxt raised ${err.constructor.name}: ${err.message}`).toBe(kind);
    });
  }

  it('the code table agrees with the test table wherever both name a code', () => {
    for (const [code, , , kind] of BINANCE) {
      const table = BINANCE_CODE_KINDS[code];
      if (table !== undefined) expect(table, `code ${code}`).toBe(kind);
    }
    for (const kind of Object.values(BINANCE_CODE_KINDS)) expect(FAILURE_KINDS).toContain(kind);
  });
});

describe('failureKind: HTTP statuses without a Binance body, transport failures', () => {
  const html = (s: number) => `<html><head><title>${s}</title></head><body><h1>${s}</h1></body></html>`;
  const statuses: Array<[number, FailureKind]> = [
    [500, 'in-doubt'],
    [502, 'in-doubt'],
    [503, 'in-doubt'],
    [504, 'in-doubt'],
    [429, 'rate-limited'],
    [418, 'rate-limited'],
    [401, 'auth'],
    [403, 'transient'],
    [408, 'in-doubt'],
    [451, 'auth'],
  ];
  for (const [status, kind] of statuses) {
    it(`HTTP ${status} with an HTML body -> ${kind}`, () => {
      const err = ccxtErrorFor(status, html(status));
      expect(failureKind(err), `ccxt raised ${err.constructor.name}: ${err.message}`).toBe(kind);
    });
  }

  it('a connection that was never opened is transient; one that broke after sending is in doubt', () => {
    const url = 'POST http://127.0.0.1:9/api/v3/order';
    const refused = new ccxt.NetworkError(`binance ${url} fetch failed: connect ECONNREFUSED 127.0.0.1:9`);
    const dns = new ccxt.NetworkError(`binance ${url} fetch failed: getaddrinfo ENOTFOUND api.binance.com`);
    const reset = new ccxt.NetworkError(`binance ${url} fetch failed: read ECONNRESET`);
    const closed = new ccxt.NetworkError(`binance ${url} fetch failed: other side closed`);
    const timeout = new ccxt.RequestTimeout(`binance ${url} request timed out (10000 ms)`);
    expect([refused, dns, reset, closed, timeout].map(failureKind)).toEqual([
      'transient',
      'transient',
      'in-doubt',
      'in-doubt',
      'in-doubt',
    ]);
  });

  it('errors from outside ccxt: transport codes, HTTP statuses, and bugs', () => {
    const refused = Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' }),
    });
    const reset = Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
    });
    expect(failureKind(refused)).toBe('transient');
    expect(failureKind(reset)).toBe('in-doubt');
    expect(failureKind(Object.assign(new Error('bad gateway'), { status: 502 }))).toBe('in-doubt');
    expect(failureKind(Object.assign(new Error('slow down'), { status: 429 }))).toBe('rate-limited');
    expect(failureKind(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBe('fatal');
    expect(failureKind('a string')).toBe('fatal');
  });
});

describe('classifyError', () => {
  it('duplicate client order id: DuplicateOrderId and Binance -2010 "Duplicate order sent." are rejected + duplicate', () => {
    const a = classifyError(new ccxt.DuplicateOrderId('dup'), 'orders');
    const b = classifyError(ccxtErrorFor(400, JSON.stringify({ code: -2010, msg: 'Duplicate order sent.' })), 'orders');
    const c = classifyError(
      ccxtErrorFor(400, JSON.stringify({ code: -2010, msg: 'Account has insufficient balance for requested action.' })),
      'orders',
    );
    expect([a.kind, a.duplicate, b.kind, b.duplicate, c.kind, c.duplicate]).toEqual([
      'rejected',
      true,
      'rejected',
      true,
      'rejected',
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

describe('classifyError keeps request signatures out of messages (and so out of logs)', () => {
  it("a signed GET's signature is redacted, the rest of the URL and the exchange's answer kept", () => {
    const url =
      'GET http://127.0.0.1:9/api/v3/order?symbol=BTCUSDT&origClientOrderId=k1&timestamp=1796671500772&recvWindow=5000&signature=3b8250cf16817ac6ae812cd245b5956bd85d0d06ec131a1bd21a26cb3cd9a21a';
    const err = new ccxt.AuthenticationError(`binance ${url} 401 Unauthorized {"code":-2015,"msg":"Invalid API-key."}`);
    const k = classifyError(err, 'orders');
    expect(k.message).toContain('recvWindow=5000&signature=<redacted> 401 Unauthorized {"code":-2015');
    expect(k.message).not.toMatch(/3b8250cf/);
    expect(k.kind).toBe('auth');
  });
});
