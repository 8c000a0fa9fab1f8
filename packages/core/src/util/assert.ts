/** Exhaustiveness guard for discriminated unions: a new variant is a compile error where unhandled. */
export function assertNever(x: never, what = 'value'): never {
  throw new Error(`Unhandled ${what}: ${JSON.stringify(x)}`);
}

/** Broken invariants throw at once (a NaN price is a bug, not an outcome). */
export function invariant(cond: unknown, message: string): asserts cond {
  if (!cond) throw new Error(`Invariant violated: ${message}`);
}

export function assertFinite(x: number, what: string): number {
  if (!Number.isFinite(x)) throw new Error(`Invariant violated: ${what} must be a finite number, got ${x}`);
  return x;
}
