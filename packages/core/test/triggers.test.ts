import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ClientOrderId,
  newOrderState,
  type PathHit,
  type TrailingStopOrder,
  trailingLevel,
  trailingStopHit,
} from '../src/index.ts';

/**
 * Oracle: the textbook formulation, which tracks the best price seen (the anchor) and recomputes
 * the level from it at every point of the path. `trailingStopHit` keeps the level instead (what a
 * restarted live bot stores); the two must agree bit for bit, bar after bar.
 */
function byAnchor(r: TrailingStopOrder, anchor: { v: number }, path: number[]): PathHit | null {
  const buy = r.side === 'buy';
  let prev = path[0]!;
  if (Number.isNaN(anchor.v)) anchor.v = prev;
  if (buy ? prev >= trailingLevel(r, anchor.v) : prev <= trailingLevel(r, anchor.v)) return { pos: 0, price: prev };
  anchor.v = buy ? Math.min(anchor.v, prev) : Math.max(anchor.v, prev);
  for (let k = 1; k < 4; k++) {
    const b = path[k]!;
    const stop = trailingLevel(r, anchor.v);
    if (buy ? b >= stop && prev < stop : b <= stop && prev > stop)
      return { pos: k - 1 + (stop - prev) / (b - prev), price: stop };
    anchor.v = buy ? Math.min(anchor.v, b) : Math.max(anchor.v, b);
    prev = b;
  }
  return null;
}

const price = fc.double({ min: 50, max: 150, noNaN: true });
const barPathArb = fc.tuple(price, price, price, price).map(([o, a, b, c]) => {
  // A bar path as barPath builds it: open, the nearer extreme, the other, close.
  const hi = Math.max(o, a, b, c);
  const lo = Math.min(o, a, b, c);
  return c >= o ? [o, lo, hi, c] : [o, hi, lo, c];
});

describe('trailingStopHit (shared by the simulated venue and the live emulation)', () => {
  it('equals the best-price formulation on random bar sequences (oracle: byAnchor)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom<'buy' | 'sell'>('buy', 'sell'),
        fc.oneof(
          fc.record({ kind: fc.constant('amount' as const), value: fc.double({ min: 0.01, max: 20, noNaN: true }) }),
          fc.record({ kind: fc.constant('percent' as const), value: fc.double({ min: 0.01, max: 20, noNaN: true }) }),
        ),
        fc.option(price, { nil: Number.NaN }),
        fc.array(barPathArb, { minLength: 1, maxLength: 30 }),
        (side, trail, decision, paths) => {
          const r: TrailingStopOrder = {
            type: 'trailing-stop',
            id: ClientOrderId('t'),
            symbol: 'X/Y',
            side,
            amount: 1,
            timeInForce: 'GTC',
            trail,
          };
          const o = newOrderState(r, 0, decision);
          const anchor = { v: decision };
          for (const p of paths) {
            const want = byAnchor(r, anchor, p);
            const got = trailingStopHit(o, Float64Array.from(p));
            expect(got).toEqual(want);
            if (want) break;
            expect(o.stopLevel).toBe(trailingLevel(r, anchor.v));
          }
        },
      ),
      { numRuns: 2_000, seed: 7 },
    );
  });

  it('a sell stop only rises and a restored level resumes where it was', () => {
    const r: TrailingStopOrder = {
      type: 'trailing-stop',
      id: ClientOrderId('t'),
      symbol: 'X/Y',
      side: 'sell',
      amount: 1,
      timeInForce: 'GTC',
      trail: { kind: 'amount', value: 5 },
    };
    const o = newOrderState(r, 0, 100);
    expect(trailingStopHit(o, Float64Array.from([100, 99, 110, 108]))).toBeNull();
    expect(o.stopLevel).toBe(105);
    // What a restart does: a fresh state with the stored level.
    const restored = { ...newOrderState(r, 0, 100), stopLevel: o.stopLevel };
    expect(trailingStopHit(restored, Float64Array.from([108, 107, 109, 106]))).toBeNull();
    expect(restored.stopLevel).toBe(105);
    expect(trailingStopHit(restored, Float64Array.from([106, 107, 104, 104.5]))).toEqual({
      pos: 1 + (105 - 107) / (104 - 107),
      price: 105,
    });
  });
});
