import type { Timer } from './timer.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive transient / rate-limited failures that open the circuit. */
  readonly failureThreshold: number;
  /** How long the circuit stays open before one probe is let through (half-open). */
  readonly openMs: number;
  /** Calls allowed at once while half-open. */
  readonly halfOpenProbes: number;
}

export const DEFAULT_BREAKER: BreakerOptions = { failureThreshold: 5, openMs: 30_000, halfOpenProbes: 1 };

/**
 * closed --(threshold consecutive failures)--> open --(openMs)--> half-open
 * half-open --(probe succeeds)--> closed;  half-open --(probe fails)--> open (timer restarts).
 * Only failures that say "the service is unwell" count (transient, rate-limited): a rejected
 * order is a healthy answer and counts as a success.
 */
export class CircuitBreaker {
  private st: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probes = 0;

  constructor(
    private readonly opts: BreakerOptions,
    private readonly timer: Timer,
  ) {
    if (!(opts.failureThreshold >= 1) || !(opts.openMs >= 0) || !(opts.halfOpenProbes >= 1)) {
      throw new Error(
        `Invalid breaker options ${JSON.stringify(opts)}: threshold >= 1, openMs >= 0, halfOpenProbes >= 1`,
      );
    }
  }

  get state(): BreakerState {
    if (this.st === 'open' && this.timer.now() >= this.openedAt + this.opts.openMs) {
      this.st = 'half-open';
      this.probes = 0;
    }
    return this.st;
  }

  /** When the circuit will next let a probe through (ms epoch); 0 when not open. */
  get retryAt(): number {
    return this.state === 'open' ? this.openedAt + this.opts.openMs : 0;
  }

  /** Asks to make a call; false means fail fast without calling. A true must be followed by success() or failure(). */
  tryPass(): boolean {
    switch (this.state) {
      case 'closed':
        return true;
      case 'open':
        return false;
      case 'half-open':
        if (this.probes >= this.opts.halfOpenProbes) return false;
        this.probes++;
        return true;
    }
  }

  /** A passed call that was never made (refused before sending): its half-open probe slot is free again. */
  release(): void {
    if (this.st === 'half-open' && this.probes > 0) this.probes--;
  }

  success(): void {
    this.failures = 0;
    if (this.st !== 'closed') {
      this.st = 'closed';
      this.probes = 0;
    }
  }

  failure(): void {
    if (this.state === 'half-open') {
      this.trip();
      return;
    }
    this.failures++;
    if (this.failures >= this.opts.failureThreshold) this.trip();
  }

  private trip(): void {
    this.st = 'open';
    this.openedAt = this.timer.now();
    this.failures = 0;
    this.probes = 0;
  }
}
