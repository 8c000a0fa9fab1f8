import type { Clock } from '@keel/core';

/** The wall clock, for paper and live runs (the core never reads time itself). */
export const systemClock: Clock = { now: () => Date.now() };
