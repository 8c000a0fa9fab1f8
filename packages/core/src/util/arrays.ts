/**
 * Removes a[i] keeping the order of the rest. Unlike `a.splice(i, 1)`, it allocates nothing (splice
 * returns a new array of the removed elements): the order path removes one entry per order.
 */
export function removeAt<T>(a: T[], i: number): void {
  const last = a.length - 1;
  for (let j = i; j < last; j++) a[j] = a[j + 1] as T;
  a.pop();
}

/**
 * An empty array for object or string elements. `[]` starts as an array of small integers, and the
 * first push of an object changes its kind: optimised code that has seen one kind deoptimises on
 * the other, and a new run's arrays start over, so every backtest paid that again while warming
 * up. Starting with the general kind avoids it.
 */
export function objectArray<T>(): T[] {
  const a: (T | null)[] = [null];
  a.length = 0;
  return a as T[];
}
