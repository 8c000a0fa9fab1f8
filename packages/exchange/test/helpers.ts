import { createHash } from 'node:crypto';
import { ClientOrderId } from '@keel/core';
import type { ManualTimer } from '../src/index.ts';

/** Advances a ManualTimer in steps until `p` settles (the code under test sleeps on that timer). */
export async function drive<T>(timer: ManualTimer, p: Promise<T>, stepMs = 250, maxSteps = 20_000): Promise<T> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < maxSteps && !settled; i++) await timer.advance(stepMs);
  if (!settled) throw new Error(`promise did not settle after ${(stepMs * maxSteps) / 1000} simulated seconds`);
  return p;
}

/**
 * A valid, deterministic client order id for tests (`k<bot>-<12 hex of SHA-256(key)>`): the
 * runtime's `signalOrderId` is the one production uses; these tests need only distinct ids that
 * Binance takes.
 */
export function testOrderId(bot: string, key: string): ClientOrderId {
  return ClientOrderId(
    `k${bot.replace(/[^A-Za-z0-9]/g, '').slice(0, 10)}-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`,
  );
}
