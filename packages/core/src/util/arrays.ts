/**
 * Removes a[i] keeping the order of the rest. Unlike `a.splice(i, 1)`, it allocates nothing (splice
 * returns a new array of the removed elements): the order path removes one entry per order.
 */
export function removeAt<T>(a: T[], i: number): void {
  const last = a.length - 1;
  for (let j = i; j < last; j++) a[j] = a[j + 1] as T;
  a.pop();
}
