import { type FailureKind, isRetryable } from '@keel/core';
import * as ccxt from 'ccxt';
import { headerValue } from './weight-window.ts';

/** Rate-limit classes, each with its own token bucket and circuit breaker. */
export const ENDPOINT_CLASSES = ['orders', 'queries', 'market-data'] as const;
export type EndpointClass = (typeof ENDPOINT_CLASSES)[number];

export interface KeelExchangeErrorInit {
  readonly kind: FailureKind;
  readonly endpoint: EndpointClass;
  readonly message: string;
  readonly cause?: unknown;
  /** ccxt class name (e.g. `InsufficientFunds`), or `CircuitOpen` / `IpBanned` when the breaker or an IP ban refused the call unsent. */
  readonly code?: string;
  /** From the exchange's Retry-After header, when it sent one. */
  readonly retryAfterMs?: number;
  /** The exchange said it already has an order with this client id (Binance -2010 "Duplicate order sent"). */
  readonly duplicate?: boolean;
}

/** Every failure that leaves the gateway: a kind of core's closed set, where it happened and why. */
export class KeelExchangeError extends Error {
  readonly kind: FailureKind;
  readonly endpoint: EndpointClass;
  readonly code: string;
  readonly retryAfterMs: number | undefined;
  readonly duplicate: boolean;

  constructor(init: KeelExchangeErrorInit) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'KeelExchangeError';
    this.kind = init.kind;
    this.endpoint = init.endpoint;
    this.code = init.code ?? 'Unknown';
    this.retryAfterMs = init.retryAfterMs;
    this.duplicate = init.duplicate ?? false;
  }

  /** May the request be sent again as it is (true for reads and cancels; see `isRetryable`)? */
  get retryable(): boolean {
    return isRetryable(this.kind);
  }
}

type ErrorClass = abstract new (...a: never[]) => Error;

/**
 * ccxt's classes that carry one meaning, most specific first (ccxt nests OrderNotFound under
 * InvalidOrder, RateLimitExceeded under NetworkError, ChecksumError under InvalidNonce). The broad
 * classes (NetworkError, ExchangeNotAvailable, OperationFailed, ExchangeError) are decided by what
 * the error says (`refine`) and come last.
 */
const CCXT_KINDS: ReadonlyArray<readonly [ErrorClass, FailureKind]> = [
  [ccxt.OrderNotFound, 'not-found'],
  [ccxt.OrderNotCached, 'not-found'],
  [ccxt.BadSymbol, 'not-found'],
  [ccxt.DuplicateOrderId, 'rejected'],
  [ccxt.RateLimitExceeded, 'rate-limited'],
  [ccxt.DDoSProtection, 'rate-limited'],
  // A WebSocket order book that failed its checksum: resubscribing cures it.
  [ccxt.ChecksumError, 'transient'],
  // Binance -1021 "timestamp outside recvWindow": refused before it was executed. The gateway
  // re-syncs its clock and sends once more; a second refusal is the answer.
  [ccxt.InvalidNonce, 'rejected'],
  [ccxt.RequestTimeout, 'in-doubt'],
  [ccxt.OnMaintenance, 'transient'],
  // A body that could not be read: whatever it said is lost.
  [ccxt.BadResponse, 'in-doubt'],
  [ccxt.CancelPending, 'transient'],
  [ccxt.RestrictedLocation, 'auth'],
  [ccxt.AuthenticationError, 'auth'],
  [ccxt.InvalidOrder, 'rejected'],
  [ccxt.InsufficientFunds, 'rejected'],
  [ccxt.BadRequest, 'rejected'],
  [ccxt.OperationRejected, 'rejected'],
  [ccxt.ArgumentsRequired, 'rejected'],
  [ccxt.InvalidAddress, 'rejected'],
  [ccxt.NotSupported, 'fatal'],
  [ccxt.InvalidProxySettings, 'fatal'],
  [ccxt.ExchangeClosedByUser, 'fatal'],
];

/**
 * Binance spot error codes (developers.binance.com, "Error codes"), for the errors ccxt leaves
 * broad (OperationFailed, ExchangeError). Codes ccxt already maps to a class of one meaning
 * (-1003, -1021, -1022, -2013…) are decided by that class; docs/exchange.md has both.
 */
export const BINANCE_CODE_KINDS: Readonly<Record<number, FailureKind>> = {
  [-1000]: 'in-doubt', // UNKNOWN: an unknown error while processing the request
  [-1001]: 'in-doubt', // DISCONNECTED: internal error (answered with HTTP 5xx: execution status unknown)
  [-1002]: 'auth', // UNAUTHORIZED
  [-1003]: 'rate-limited', // TOO_MANY_REQUESTS
  [-1004]: 'transient', // SERVER_BUSY
  [-1006]: 'in-doubt', // UNEXPECTED_RESP: "execution status unknown"
  [-1007]: 'in-doubt', // TIMEOUT: "send status unknown; execution status unknown"
  [-1008]: 'transient', // SERVER_BUSY: overloaded, refused before the matching engine
  [-1010]: 'rejected', // ERROR_MSG_RECEIVED: the matching engine refused it
  [-1013]: 'rejected', // INVALID_MESSAGE: refused by the API before the matching engine
  [-1014]: 'rejected', // UNKNOWN_ORDER_COMPOSITION
  [-1015]: 'rate-limited', // TOO_MANY_ORDERS
  [-1016]: 'rejected', // SERVICE_SHUTTING_DOWN: this service is no longer available
  [-1020]: 'rejected', // UNSUPPORTED_OPERATION
  [-1021]: 'rejected', // INVALID_TIMESTAMP (re-sync and resend once: the gateway)
  [-1022]: 'auth', // INVALID_SIGNATURE
  [-1099]: 'auth', // not found, authenticated, or authorized
  [-1112]: 'rejected', // NO_DEPTH: no orders on the book for a market order
  [-1121]: 'not-found', // BAD_SYMBOL
  [-1125]: 'auth', // INVALID_LISTEN_KEY
  [-2010]: 'rejected', // NEW_ORDER_REJECTED (duplicate client ids: `duplicate`)
  [-2011]: 'not-found', // CANCEL_REJECTED: unknown order
  [-2013]: 'not-found', // NO_SUCH_ORDER
  [-2014]: 'auth', // BAD_API_KEY_FMT
  [-2015]: 'auth', // REJECTED_MBX_KEY: invalid key, IP or permissions
  [-3000]: 'in-doubt', // internal server error
};

/**
 * ccxt's messages carry the request's URL, and a signed GET's query holds its HMAC signature:
 * valid for that very request within its recvWindow, and no business of a log file.
 */
export function redactSignature(message: string): string {
  return message.replace(/([?&]signature=)[0-9a-fA-F]+/g, '$1<redacted>');
}

/** Binance's `{"code":-1234,...}` in a ccxt message (ccxt puts the response body there). */
function binanceCode(message: string): number | undefined {
  const m = /"code"\s*:\s*(-\d+)/.exec(message);
  return m ? Number(m[1]) : undefined;
}

/**
 * The HTTP status of a failure: a `status` / `httpStatus` property (fetch wrappers, proxies), or
 * the status ccxt writes after the URL in the messages of its HTTP-status errors
 * (`binance POST https://… 503 Service Unavailable …`); 0 when there is none.
 */
function httpStatus(err: unknown, message: string): number {
  if (typeof err === 'object' && err !== null) {
    const s =
      (err as { status?: unknown; httpStatus?: unknown }).status ?? (err as { httpStatus?: unknown }).httpStatus;
    if (typeof s === 'number') return s;
  }
  const m = /(?:^|\s)([1-5]\d\d)(?=\s|$)/.exec(message);
  return m ? Number(m[1]) : 0;
}

/** The kind of an HTTP status that came without a Binance error body. */
export function httpStatusKind(status: number): FailureKind {
  if (status === 429 || status === 418) return 'rate-limited';
  // 451: the exchange refuses this location (Binance's derivatives in a restricted country), as
  // ccxt's RestrictedLocation: retrying cannot help, a person must act.
  if (status === 401 || status === 407 || status === 511 || status === 451) return 'auth';
  // Binance: "HTTP 5XX … the execution status is UNKNOWN and could have been a success". A 504
  // from a proxy and a 408, likewise (ccxt raises RequestTimeout for both).
  if (status >= 500 || status === 408) return 'in-doubt';
  if (status === 404) return 'not-found';
  // Other 4xx without an exchange body come from the edge (a WAF 403): turned away before the
  // exchange.
  return 'transient';
}

/**
 * Connection failures that happen before a byte of the request is sent (DNS, refused, connect
 * timeout; undici's and Node's names, as ccxt's NetworkError message carries them): nothing can
 * have been executed. Any other network failure (reset, socket closed, read timeout) may come
 * after the request left.
 */
const NOT_SENT_RE =
  /ECONNREFUSED|ConnectionRefused|ENOTFOUND|EAI_AGAIN|DNSError|UND_ERR_CONNECT_TIMEOUT|FailedToOpenSocket|connect ETIMEDOUT/;

/** The kind of a failure that ccxt left broad, or that did not come from ccxt. */
function refine(err: unknown, message: string): FailureKind {
  const code = binanceCode(message);
  const byCode = code === undefined ? undefined : BINANCE_CODE_KINDS[code];
  if (err instanceof ccxt.ExchangeNotAvailable) {
    const status = httpStatus(err, message);
    return status === 0 ? 'in-doubt' : httpStatusKind(status);
  }
  if (err instanceof ccxt.NetworkError) return NOT_SENT_RE.test(message) ? 'transient' : 'in-doubt';
  // A server-side failure with no known code: whether it was executed is unknown.
  if (err instanceof ccxt.OperationFailed) return byCode ?? 'in-doubt';
  // An error body ccxt has no class for: the exchange answered, and refused.
  if (err instanceof ccxt.ExchangeError) return byCode ?? 'rejected';
  if (err instanceof ccxt.BaseError) return 'fatal';
  // Not from ccxt: a transport error of the runtime's fetch (the cause holds the system error),
  // or an HTTP status from a wrapper.
  const transport = `${message} ${systemErrorText(err)} ${systemErrorText((err as { cause?: unknown } | null)?.cause)}`;
  if (NOT_SENT_RE.test(transport)) return 'transient';
  if (/ECONNRESET|EPIPE|socket hang up|other side closed|UND_ERR_SOCKET|fetch failed/i.test(transport))
    return 'in-doubt';
  const status = httpStatus(err, '');
  return status === 0 ? 'fatal' : httpStatusKind(status);
}

/** A system error's code and message, for matching transport failures. */
function systemErrorText(x: unknown): string {
  if (typeof x !== 'object' || x === null) return '';
  const { code, message } = x as { code?: unknown; message?: unknown };
  return `${typeof code === 'string' ? code : ''} ${typeof message === 'string' ? message : ''}`;
}

/** The kind of any failure of an exchange request: ccxt's class, then Binance's code, HTTP status and transport. */
export function failureKind(err: unknown): FailureKind {
  if (err instanceof KeelExchangeError) return err.kind;
  const message = err instanceof Error ? err.message : String(err);
  const hit = CCXT_KINDS.find(([cls]) => err instanceof cls);
  return hit ? hit[1] : refine(err, message);
}

const DUPLICATE_RE = /duplicate (order|client ?order ?id)|-2010.*duplicate|clientOrderId is duplicated/i;

/** Reads Retry-After (seconds, or an HTTP date) from a header bag; undefined when absent. */
export function retryAfterMs(headers: Record<string, unknown> | undefined, nowMs: number): number | undefined {
  const s = headerValue(headers, 'retry-after')?.trim();
  if (s === undefined || s === '') return undefined;
  const secs = Number(s);
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
  const at = Date.parse(s);
  return Number.isFinite(at) ? Math.max(0, at - nowMs) : undefined;
}

/**
 * The one classifier of exchange failures (the gateway's, and data's ccxt source's): maps anything
 * a ccxt call throws to a KeelExchangeError of core's closed set. `headers` are the response
 * headers of the failed call (ccxt keeps them in `last_response_headers`), read for Retry-After.
 */
export function classifyError(
  err: unknown,
  endpoint: EndpointClass,
  opts: { readonly headers?: Record<string, unknown> | undefined; readonly now?: number } = {},
): KeelExchangeError {
  if (err instanceof KeelExchangeError) return err;
  const message = redactSignature(err instanceof Error ? err.message : String(err));
  const kind = failureKind(err);
  const code = err instanceof Error ? err.constructor.name : typeof err;
  const duplicate = err instanceof ccxt.DuplicateOrderId || (kind === 'rejected' && DUPLICATE_RE.test(message));
  const ra = kind === 'rate-limited' ? retryAfterMs(opts.headers, opts.now ?? 0) : undefined;
  return new KeelExchangeError({
    kind,
    endpoint,
    code,
    message: `${endpoint}: ${kind}${duplicate ? ' (duplicate client order id)' : ''}: ${message}`,
    cause: err,
    ...(ra !== undefined ? { retryAfterMs: ra } : {}),
    duplicate,
  });
}
