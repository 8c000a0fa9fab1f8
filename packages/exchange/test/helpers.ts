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
