/**
 * What a failed request to an exchange (or any market-data service) means: one closed set for
 * every adapter and port. The kind says whether the request can have taken effect, which decides
 * what may follow it:
 * - `transient`: it never reached the exchange, or was turned away before it was executed
 *   (connection refused, maintenance, "server busy"). Nothing happened; it may be sent again.
 * - `rate-limited`: turned away by a rate limit (HTTP 429/418). Nothing happened; it may be sent
 *   again, not before the exchange's Retry-After.
 * - `in-doubt`: it may have reached the exchange and no answer came back (a timeout, a connection
 *   reset after sending, an HTTP 5xx, Binance -1006/-1007). The only kind that may have taken
 *   effect: a read or a cancel by id may be repeated; an order create must be looked up by its
 *   client id before it is sent again.
 * - `rejected`: the exchange answered no (filters, funds, parameters, a stale timestamp). Nothing
 *   happened, and the same request would be refused again.
 * - `not-found`: the exchange answered that what was asked for (an order, a market) does not exist.
 * - `auth`: keys, signature or permissions; a person must act.
 * - `fatal`: not an answer from the exchange at all (a bug, a call the exchange does not support);
 *   a person must act.
 * docs/exchange.md maps ccxt's errors and Binance's codes onto this set.
 */
export const FAILURE_KINDS = [
  'transient',
  'rate-limited',
  'in-doubt',
  'rejected',
  'not-found',
  'auth',
  'fatal',
] as const;
export type FailureKind = (typeof FAILURE_KINDS)[number];

/**
 * May a request that failed this way be sent again as it is? True for an idempotent request (a
 * read, a cancel by client id); an order create that failed `in-doubt` must be looked up first.
 */
export function isRetryable(kind: FailureKind): boolean {
  return kind === 'transient' || kind === 'rate-limited' || kind === 'in-doubt';
}
