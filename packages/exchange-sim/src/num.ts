/** Number helpers for the exchange edge: quantities and prices are numbers rounded to tick/step. */
import { roundToStep, stepTolerance } from '@keel/core';

/** Decimal places of a step such as 0.001 (3) or 1e-8 (8). */
export function decimalsOf(step: number): number {
  if (!(step > 0)) return 8;
  const [mantissa = '', exponent = '0'] = step.toExponential().split('e');
  const mantissaDecimals = mantissa.split('.')[1]?.length ?? 0;
  return Math.max(0, mantissaDecimals - Number(exponent));
}

export function roundTo(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

/** Rounds an asset amount to 8 decimals, the precision Binance keeps balances and commissions in. */
export function roundAssetAmount(x: number): number {
  return roundTo(x, 8);
}

/** Down to a whole number of steps; one that is whole up to binary noise is kept (core's roundToStep). */
export function floorToStep(x: number, step: number): number {
  return roundToStep(x, step, 'down');
}

/** True when x is a whole multiple of step up to binary noise (core's `stepTolerance`). */
export function isMultipleOf(x: number, step: number): boolean {
  const q = x / step;
  return Math.abs(q - Math.round(q)) <= stepTolerance(q);
}

/** Binance prints every decimal with 8 places: "42000.01000000". */
export function binanceDecimal(x: number): string {
  return (Math.abs(x) < 5e-9 ? 0 : x).toFixed(8);
}

/** A strict decimal as Binance accepts it in a parameter, else NaN. */
export function parseDecimal(s: string | undefined): number {
  if (s === undefined || !/^\d{1,20}(\.\d{1,20})?$/.test(s)) return Number.NaN;
  return Number(s);
}

export function assertNever(x: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(x)}`);
}
