// Numbers in risk messages (denials, halts, sizing): short and stable, for people reading a log.

/** Numbers in messages: at most 8 significant digits, no exponent for everyday magnitudes. */
export function num(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  return String(Number(x.toPrecision(8)));
}

export function pct(x: number): string {
  return `${num(x * 100)} %`;
}
