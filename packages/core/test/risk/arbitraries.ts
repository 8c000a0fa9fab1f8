import fc from 'fast-check';
import { barSeries } from '../../src/index.ts';

// Generators shared by the risk property tests: random price paths and random strategy orders.

export const T0 = Date.UTC(2024, 0, 1);

/** A price path from random steps: bars with a consistent open, high, low and close. */
export const pathArb = fc
  .array(
    fc.record({ gap: fc.integer({ min: -20, max: 20 }), move: fc.integer({ min: -60, max: 60 }), wick: fc.nat(30) }),
    {
      minLength: 5,
      maxLength: 60,
    },
  )
  .map((steps) => {
    let c = 100;
    const rows = steps.map((s) => {
      const o = c * (1 + s.gap / 10_000);
      const close = o * (1 + s.move / 1_000);
      const hi = Math.max(o, close) * (1 + s.wick / 10_000);
      const lo = Math.min(o, close) * (1 - s.wick / 10_000);
      c = close;
      return [o, hi, lo, close] as const;
    });
    return barSeries({
      time: rows.map((_, i) => T0 + i * 60_000),
      open: rows.map((r) => r[0]),
      high: rows.map((r) => r[1]),
      low: rows.map((r) => r[2]),
      close: rows.map((r) => r[3]),
      volume: rows.map(() => 1e9),
    });
  });

export type Op =
  | { readonly k: 'buy' | 'sell'; readonly f: number }
  | { readonly k: 'target'; readonly f: number }
  | { readonly k: 'close' }
  | { readonly k: 'limit'; readonly f: number; readonly off: number };

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    k: fc.constantFrom('buy' as const, 'sell' as const),
    f: fc.double({ min: 0.01, max: 1.2, noNaN: true }),
  }),
  fc.record({ k: fc.constant('target' as const), f: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ k: fc.constant('close' as const) }),
  fc.record({
    k: fc.constant('limit' as const),
    f: fc.double({ min: 0.01, max: 0.5, noNaN: true }),
    off: fc.integer({ min: -30, max: 30 }),
  }),
);
