// Numbers for people (log lines, tables, messages): the binary noise of a sum of doubles
// (0.36146999999999996, -5.551115123125783e-17) is not a fact a person can use. Machine output
// (JSON, the store) keeps the full values.

/**
 * `x` to at most `digits` significant digits (10 by default), no trailing zeros, no exponent for
 * everyday magnitudes: 0.36146999999999996 -> "0.36147"; 9.499712009300001 -> "9.499712009".
 * With `step` (an instrument's tick or step size), `x` is first rounded to it, so a remainder
 * below half a step is "0".
 */
export function humanNumber(x: number, digits = 10, step?: number): string {
  if (!Number.isFinite(x)) return String(x);
  let v = x;
  if (step !== undefined && step > 0) {
    const decimals = Math.max(0, Math.min(16, Math.ceil(-Math.log10(step) - 1e-9)));
    v = Number((Math.round(x / step) * step).toFixed(decimals));
  }
  const out = Number(v.toPrecision(digits));
  return String(out === 0 ? 0 : out);
}
