/** A growable Float64Array column (amortised O(1) push, no per-element objects). */
export class F64Column {
  data: Float64Array;
  length = 0;
  constructor(capacity = 256) {
    this.data = new Float64Array(capacity);
  }
  push(x: number): void {
    if (this.length === this.data.length) {
      const d = new Float64Array(this.data.length * 2);
      d.set(this.data);
      this.data = d;
    }
    this.data[this.length++] = x;
  }
  get(i: number): number {
    return this.data[i] as number;
  }
  set(i: number, x: number): void {
    this.data[i] = x;
  }
}
