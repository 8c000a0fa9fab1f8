// Numbers in risk messages (denials, halts, sizing): short and stable, for people reading a log.

import { humanNumber } from '../util/human-number.ts';

/** Numbers in messages: at most 8 significant digits, no exponent for everyday magnitudes. */
export function num(x: number): string {
  return humanNumber(x, 8);
}

export function pct(x: number): string {
  return `${num(x * 100)} %`;
}
