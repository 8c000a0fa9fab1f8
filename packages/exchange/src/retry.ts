import { type FailureKind, isRetryable, type Rng } from '@keel/core';

/** The one retry policy of every exchange and market-data request (the gateway, data's sources). */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseMs: 250, maxMs: 15_000 };

/** What the retry rules need to know of a failure. */
export interface Failure {
  readonly kind: FailureKind;
  /** The exchange's Retry-After, when it sent one. */
  readonly retryAfterMs?: number | undefined;
}

/**
 * "Full jitter" (AWS architecture blog): uniform in [0, min(max, base * 2^attempt)). Spreads
 * retries of many clients apart better than equal or decorrelated jitter. `attempt` counts from 0.
 */
export function backoffMs(attempt: number, policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>, rng: Rng): number {
  const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
  return Math.floor(rng.next() * cap);
}

/**
 * The wait before the next attempt after `attempt` (from 0) failed. A rate-limited failure waits
 * at least the exchange's Retry-After or, when it sent none, the whole backoff step: jittering
 * towards zero would only hit the limit again.
 */
export function retryDelayMs(
  attempt: number,
  policy: Pick<RetryPolicy, 'baseMs' | 'maxMs'>,
  rng: Rng,
  failure?: Failure,
): number {
  const jittered = backoffMs(attempt, policy, rng);
  if (failure?.kind !== 'rate-limited') return jittered;
  const floor = failure.retryAfterMs ?? Math.min(policy.maxMs, policy.baseMs * 2 ** attempt);
  return Math.max(floor, jittered);
}

export interface RetryDeps<E extends Failure> {
  readonly rng: Rng;
  readonly sleep: (ms: number) => Promise<void>;
  /** What `op` threw, as the failure to retry or to throw. */
  readonly classify: (e: unknown) => E;
  /** Whether this failure may be retried; default `isRetryable(kind)` (transient, rate-limited, in doubt). */
  readonly retryable?: (failure: E) => boolean;
  /**
   * A refusal that one action can cure (a stale timestamp: re-sync the clock). Resolves true when
   * it acted and the request is worth sending once more; called at most once per run.
   */
  readonly cure?: (failure: E) => Promise<boolean>;
  /** Before each wait (logs, events, pausing a rate limiter). */
  readonly onRetry?: (attempt: number, delayMs: number, failure: E) => void;
}

/**
 * Runs an idempotent request under the retry policy: at most `maxAttempts` attempts, retryable
 * failures waiting `retryDelayMs` in between; anything else, or the last failure, is thrown as
 * `classify` made it. Not for order creates: a create in doubt must be looked up before it is sent
 * again (the gateway's `createOnce`).
 */
export async function withRetry<T, E extends Failure>(
  op: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  deps: RetryDeps<E>,
): Promise<T> {
  const retryable = deps.retryable ?? ((f: E) => isRetryable(f.kind));
  let cured = false;
  for (let attempt = 0; ; attempt++) {
    let failure: E;
    try {
      return await op(attempt);
    } catch (e) {
      failure = deps.classify(e);
    }
    if (!retryable(failure)) {
      if (cured || !deps.cure || !(await deps.cure(failure))) throw failure;
      cured = true;
      deps.onRetry?.(attempt, 0, failure);
      continue;
    }
    if (attempt + 1 >= policy.maxAttempts) throw failure;
    const delayMs = retryDelayMs(attempt, policy, deps.rng, failure);
    deps.onRetry?.(attempt, delayMs, failure);
    await deps.sleep(delayMs);
  }
}
