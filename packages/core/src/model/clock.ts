/** Every time read in Keel goes through a Clock. Backtests drive a SimulatedClock from the data. */
export interface Clock {
  /** Milliseconds since the Unix epoch, UTC. */
  now(): number;
}

export class SimulatedClock implements Clock {
  // Initialised here, not only in the constructor: a class field declared without a value starts as
  // undefined, and V8 then keeps the field untyped and allocates a new number box on every set().
  private t = 0;
  constructor(start = 0) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  /** Time never runs backwards: a bug in event ordering shows up here first. */
  set(t: number): void {
    if (t < this.t) backwards(this.t, t);
    this.t = t;
  }
}

function backwards(from: number, to: number): never {
  throw new Error(`Invariant violated: clock moved backwards from ${from} to ${to}`);
}
