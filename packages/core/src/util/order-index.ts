/**
 * Something per order, by key, that stays bounded however many orders a bot places: kept while
 * its order works, and for the last `capacity` finished orders (a strategy may still ask for one;
 * a trade or update of an order can arrive after the update that ended it: the exchange's two
 * user streams are not ordered), then forgotten. A bot's engine keeps its finished orders in one,
 * the exchange adapter its id maps.
 */
export class OrderIndex<V> {
  private readonly working = new Map<string, V>();
  private readonly finished = new Map<string, V>();

  constructor(private readonly capacity = 10_000) {}

  get size(): number {
    return this.working.size + this.finished.size;
  }

  /** The finished entries kept, oldest first. */
  finishedValues(): IterableIterator<V> {
    return this.finished.values();
  }

  get(key: string): V | undefined {
    return this.working.get(key) ?? this.finished.get(key);
  }

  has(key: string): boolean {
    return this.working.has(key) || this.finished.has(key);
  }

  /** `done`: the order has ended (an update of it that comes late keeps it among the finished). */
  set(key: string, value: V, done: boolean): void {
    if (!done && !this.finished.has(key)) {
      this.working.set(key, value);
      return;
    }
    this.working.delete(key);
    this.finished.delete(key);
    this.finished.set(key, value);
    if (this.finished.size > this.capacity) this.finished.delete(this.finished.keys().next().value as string);
  }
}
