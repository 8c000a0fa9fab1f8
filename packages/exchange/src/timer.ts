import type { Clock, Rng } from '@keel/core';

/** Time and waiting, injected so that the limiter, breaker, backoff and streams are deterministic in tests. */
export interface Timer extends Clock {
  /** Resolves after `ms`; resolves early (never rejects) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemTimer: Timer = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(h);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const h = setTimeout(done, Math.max(0, ms));
      signal?.addEventListener('abort', done, { once: true });
    });
  },
};

/**
 * The machine's randomness, for what must differ between processes (a lock owner's nonce). What
 * must be reproducible (backoff jitter, simulations) takes a `SeededRng`.
 */
export const systemRng: Rng = { next: () => Math.random() };

interface Sleeper {
  readonly at: number;
  readonly seq: number;
  readonly resolve: () => void;
}

/** A timer that only moves when told to: `advance(ms)` wakes sleepers in time order. */
export class ManualTimer implements Timer {
  private t: number;
  private seq = 0;
  private sleepers: Sleeper[] = [];

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const onAbort = () => {
        this.sleepers = this.sleepers.filter((x) => x !== s);
        resolve();
      };
      // Woken by time: the abort listener goes too (a long-lived signal must not collect them).
      const wake = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const s: Sleeper = { at: this.t + Math.max(0, ms), seq: this.seq++, resolve: wake };
      this.sleepers.push(s);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Number of pending sleeps (a test can wait until the code under test is parked). */
  get pending(): number {
    return this.sleepers.length;
  }

  /** Moves time forward by `ms`, waking every sleeper that falls due, earliest first. */
  async advance(ms: number): Promise<void> {
    const target = this.t + ms;
    for (;;) {
      await flush();
      this.sleepers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.sleepers[0];
      if (!next || next.at > target) break;
      this.sleepers.shift();
      this.t = Math.max(this.t, next.at);
      next.resolve();
    }
    this.t = target;
    await flush();
  }
}

/** Lets promise callbacks queued so far run (several hops: async functions chain microtasks). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((r) => setImmediate(r));
}
