/** Every time read in Keel goes through a Clock. Backtests drive a SimulatedClock from the data. */
export interface Clock {
  /** Milliseconds since the Unix epoch, UTC. */
  now(): number;
}

export class SimulatedClock implements Clock {
  private t: number;
  constructor(start = 0) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  /** Time never runs backwards: a bug in event ordering shows up here first. */
  set(t: number): void {
    if (t < this.t) throw new Error(`Invariant violated: clock moved backwards from ${this.t} to ${t}`);
    this.t = t;
  }
}
