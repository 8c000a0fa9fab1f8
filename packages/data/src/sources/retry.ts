import type { FailureKind, Rng } from '@keel/core';
import { classifyError, type RetryPolicy, withRetry } from '@keel/exchange';
import { DataError } from '../schema.ts';

/** A source's failure, of core's closed set of kinds; its code is `source-<kind>`. */
export class SourceError extends DataError {
  constructor(
    readonly kind: FailureKind,
    message: string,
    override readonly cause?: unknown,
    /** The exchange's Retry-After, when it sent one. */
    readonly retryAfterMs?: number,
  ) {
    super(`source-${kind}`, message);
    this.name = 'SourceError';
  }
}

export const realSleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Any failure of a source's request as a SourceError, classified by @keel/exchange's one
 * classifier (ccxt's errors, Binance's codes, HTTP statuses, transport errors). `headers` are the
 * failed response's, read for Retry-After.
 */
export function sourceError(e: unknown, headers?: Record<string, unknown>, nowMs = 0): SourceError {
  if (e instanceof SourceError) return e;
  const k = classifyError(e, 'market-data', { headers, now: nowMs });
  return new SourceError(k.kind, e instanceof Error ? e.message : String(e), e, k.retryAfterMs);
}

export interface SourceRetryDeps {
  readonly rng: Rng;
  readonly sleep: (ms: number) => Promise<void>;
  /** Response headers of the last failed request, for Retry-After. */
  readonly headers?: () => Record<string, unknown> | undefined;
  readonly onRetry?: (attempt: number, delayMs: number, e: SourceError) => void;
}

/** Runs a source's request under the one retry policy (@keel/exchange `withRetry`); fails with a SourceError. */
export function retrySource<T>(op: () => Promise<T>, policy: RetryPolicy, deps: SourceRetryDeps): Promise<T> {
  return withRetry(op, policy, {
    rng: deps.rng,
    sleep: deps.sleep,
    classify: (e) => sourceError(e, deps.headers?.()),
    onRetry: (attempt, delayMs, e) => deps.onRetry?.(attempt + 1, delayMs, e),
  });
}
