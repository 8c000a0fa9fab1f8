import type { Rng } from '@keel/core';
import { DataError } from '../schema.ts';

/** The closed set of failure kinds at the network boundary; only the first two are retried. */
export type FailureKind = 'transient' | 'rate-limited' | 'not-found' | 'rejected' | 'auth' | 'fatal';

export class SourceError extends DataError {
  constructor(
    readonly kind: FailureKind,
    message: string,
    override readonly cause?: unknown,
  ) {
    super(`source-${kind}`, message);
    this.name = 'SourceError';
  }
}

export interface RetryPolicy {
  readonly attempts: number;
  readonly baseMs: number;
  readonly maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseMs: 500, maxMs: 30_000 };

export interface RetryDeps {
  readonly rng: Rng;
  readonly sleep: (ms: number) => Promise<void>;
  readonly classify: (e: unknown) => FailureKind;
  readonly onRetry?: (attempt: number, delayMs: number, e: unknown) => void;
}

export const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `op`, retrying transient and rate-limited failures with exponential backoff and full jitter
 * (delay = uniform(0.5, 1) x min(max, base x 2^attempt)); other failures are thrown at once.
 */
export async function withRetry<T>(op: () => Promise<T>, policy: RetryPolicy, deps: RetryDeps): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (e) {
      const kind = e instanceof SourceError ? e.kind : deps.classify(e);
      if ((kind !== 'transient' && kind !== 'rate-limited') || attempt + 1 >= policy.attempts) {
        if (e instanceof SourceError) throw e;
        throw new SourceError(kind, (e as Error).message ?? String(e), e);
      }
      const cap = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt * (kind === 'rate-limited' ? 2 : 1));
      const delay = cap * (0.5 + 0.5 * deps.rng.next());
      deps.onRetry?.(attempt + 1, delay, e);
      await deps.sleep(delay);
    }
  }
}

/** HTTP status to failure kind (for sources that speak HTTP directly). */
export function classifyHttpStatus(status: number): FailureKind {
  if (status === 429 || status === 418) return 'rate-limited';
  if (status === 404) return 'not-found';
  if (status === 401 || status === 403) return 'auth';
  if (status >= 500 || status === 408) return 'transient';
  return 'rejected';
}

/** fetch() failures (connection refused, reset, timeout) are transient. */
export function classifyFetchError(e: unknown): FailureKind {
  if (e instanceof SourceError) return e.kind;
  return 'transient';
}
