import type { Rng } from '@keel/core';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseMs: 250, maxMs: 15_000 };

/**
 * "Full jitter" (AWS architecture blog): uniform in [0, min(max, base * 2^attempt)). Spreads
 * retries of many clients apart better than equal or decorrelated jitter. `attempt` counts from 0.
 */
export function backoffMs(attempt: number, policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>, rng: Rng): number {
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
  return Math.floor(rng.next() * cap);
}

/** The delay before retrying a rate-limited call: never sooner than the exchange's Retry-After. */
export function retryDelayMs(
  attempt: number,
  policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>,
  rng: Rng,
  retryAfterMs?: number,
): number {
  const jittered = backoffMs(attempt, policy, rng);
  return retryAfterMs === undefined ? jittered : Math.max(retryAfterMs, jittered);
}
