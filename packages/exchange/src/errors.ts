import * as ccxt from 'ccxt';

/**
 * The closed set every exchange failure is mapped to at the boundary. Only `transient` and
 * `rate-limited` are retried; the rest are answers (rejected, not-found) or need a person (auth,
 * fatal). See docs/exchange.md for the full table.
 */
export const ERROR_KINDS = ['transient', 'rate-limited', 'rejected', 'not-found', 'auth', 'fatal'] as const;
export type ExchangeErrorKind = (typeof ERROR_KINDS)[number];

/** Rate-limit classes, each with its own token bucket and circuit breaker. */
export const ENDPOINT_CLASSES = ['orders', 'queries', 'market-data'] as const;
export type EndpointClass = (typeof ENDPOINT_CLASSES)[number];

export function isRetryable(kind: ExchangeErrorKind): boolean {
  return kind === 'transient' || kind === 'rate-limited';
}

export interface KeelExchangeErrorInit {
  readonly kind: ExchangeErrorKind;
  readonly endpoint: EndpointClass;
  readonly message: string;
  readonly cause?: unknown;
  /** ccxt class name (e.g. `InsufficientFunds`), or `CircuitOpen` when the breaker refused the call. */
  readonly code?: string;
  /** From the exchange's Retry-After header, when it sent one. */
  readonly retryAfterMs?: number;
  /** The exchange said it already has an order with this client id (Binance -2010 "Duplicate order sent"). */
  readonly duplicate?: boolean;
}

export class KeelExchangeError extends Error {
  readonly kind: ExchangeErrorKind;
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

  get retryable(): boolean {
    return isRetryable(this.kind);
  }
}

/** ccxt class -> kind, most specific first (ccxt's hierarchy nests e.g. OrderNotFound under InvalidOrder). */
const TABLE: ReadonlyArray<readonly [abstract new (...a: never[]) => Error, ExchangeErrorKind]> = [
  [ccxt.OrderNotFound, 'not-found'],
  [ccxt.OrderNotCached, 'not-found'],
  [ccxt.RateLimitExceeded, 'rate-limited'],
  [ccxt.DDoSProtection, 'rate-limited'],
  // Binance -1021 "timestamp outside recvWindow": the request was refused before it was executed,
  // so a retry after re-syncing the clock is safe (the gateway re-syncs). See docs/exchange.md.
  [ccxt.InvalidNonce, 'transient'],
  [ccxt.RequestTimeout, 'transient'],
  [ccxt.ExchangeNotAvailable, 'transient'],
  [ccxt.NetworkError, 'transient'],
  // A malformed or empty body (HTML error page from a proxy, Binance -1007): status unknown.
  [ccxt.BadResponse, 'transient'],
  [ccxt.CancelPending, 'transient'],
  [ccxt.AuthenticationError, 'auth'],
  [ccxt.InvalidOrder, 'rejected'],
  [ccxt.InsufficientFunds, 'rejected'],
  [ccxt.BadRequest, 'rejected'],
  [ccxt.OperationRejected, 'rejected'],
  [ccxt.ArgumentsRequired, 'rejected'],
  [ccxt.InvalidAddress, 'rejected'],
];

const DUPLICATE_RE = /duplicate (order|client ?order ?id)|-2010.*duplicate|clientOrderId is duplicated/i;

/** An HTTP status carried by a non-ccxt error (fetch wrappers, proxies); 0 when there is none. */
function httpStatus(err: unknown): number {
  if (typeof err !== 'object' || err === null) return 0;
  const s = (err as { status?: unknown; httpStatus?: unknown }).status ?? (err as { httpStatus?: unknown }).httpStatus;
  return typeof s === 'number' ? s : 0;
}

/** Reads Retry-After (seconds, or an HTTP date) from a header bag; undefined when absent. */
export function retryAfterMs(headers: Record<string, unknown> | undefined, nowMs: number): number | undefined {
  if (!headers) return undefined;
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== 'retry-after' || v === undefined || v === null) continue;
    const s = String(v).trim();
    const secs = Number(s);
    if (Number.isFinite(secs) && secs >= 0) return secs * 1000;
    const at = Date.parse(s);
    if (Number.isFinite(at)) return Math.max(0, at - nowMs);
  }
  return undefined;
}

/**
 * Maps anything thrown by a ccxt call to a KeelExchangeError. `headers` are the response headers
 * of the failed call (ccxt keeps them in `last_response_headers`), read for Retry-After.
 */
export function classifyError(
  err: unknown,
  endpoint: EndpointClass,
  opts: { readonly headers?: Record<string, unknown> | undefined; readonly now?: number } = {},
): KeelExchangeError {
  if (err instanceof KeelExchangeError) return err;
  const message = err instanceof Error ? err.message : String(err);
  let kind: ExchangeErrorKind = 'fatal';
  let code = err instanceof Error ? err.constructor.name : typeof err;
  const hit = TABLE.find(([cls]) => err instanceof cls);
  if (hit) kind = hit[1];
  else if (httpStatus(err) >= 500) kind = 'transient';
  if (err instanceof ccxt.BaseError) code = err.constructor.name;
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
