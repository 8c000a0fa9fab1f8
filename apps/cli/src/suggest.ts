/** Edit distance with adjacent transpositions (optimal string alignment): "bakctest" is 1 from "backtest". */
export function editDistance(a: string, b: string): number {
  const w = b.length + 1;
  const d = new Uint16Array((a.length + 1) * w);
  const at = (i: number, j: number) => d[i * w + j] as number;
  for (let i = 0; i <= a.length; i++) d[i * w] = i;
  for (let j = 0; j <= b.length; j++) d[j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      d[i * w + j] = v;
    }
  }
  return at(a.length, b.length);
}

/**
 * The name the user most likely meant: the unique one that starts with what was typed, or the
 * shortest such when every other one extends it ("back" -> backtest, not backtests), else the closest within a third of its length (at least one edit: "stratgies",
 * "bakctest"), ties broken by the order given. Undefined when nothing is close.
 */
export function closest(typed: string, names: readonly string[]): string | undefined {
  const t = typed.toLowerCase();
  if (t.length >= 2) {
    const prefixed = names.filter((n) => n.startsWith(t)).sort((a, b) => a.length - b.length);
    const shortest = prefixed[0];
    if (shortest !== undefined && prefixed.every((n) => n.startsWith(shortest))) return shortest;
  }
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const n of names) {
    const d = editDistance(t, n);
    if (d < bestD && d <= Math.max(1, Math.floor(n.length / 3))) [best, bestD] = [n, d];
  }
  return best;
}
