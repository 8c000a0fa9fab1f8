import { z } from 'zod';

/** Fraction of equity an entry targets (backtrader's order_target_percent). */
export const allocation = z
  .number()
  .gt(0, 'allocation must be > 0')
  .max(1, 'allocation must be <= 1 (no leverage in spot)')
  .default(0.95);
