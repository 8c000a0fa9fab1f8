/** A REST route: who may call it, what it weighs, and what it answers. */
import type { Params } from './params.ts';
import type { Security } from './signing.ts';

export interface RouteContext {
  params: Params;
  /** The caller's API key; '' on public routes. */
  apiKey: string;
}

export interface Route {
  security: Security;
  /** REQUEST_WEIGHT, which may depend on the parameters (e.g. depth's limit). */
  weight: (p: Params) => number;
  handler: (ctx: RouteContext) => unknown;
  /** How many orders it adds to the account's ORDERS counts (X-MBX-ORDER-COUNT-*): 1 an order, 2 an OCO list. */
  orders?: number;
}

/** Routes by `METHOD /path`. */
export type RouteTable = Record<string, Route>;

export const fixedWeight = (weight: number) => (): number => weight;

/** Endpoints that weigh more when asked for every symbol. */
export const weightBySymbol =
  (withSymbol: number, without: number) =>
  (p: Params): number =>
    p.symbol ? withSymbol : without;

/** A public (unsigned) route whose handler needs only the parameters. */
export function publicRoute(weight: (p: Params) => number, handler: (p: Params) => unknown): Route {
  return { security: 'none', weight, handler: ({ params }) => handler(params) };
}

/**
 * Weight by the `limit` asked (depth, klines): the weight of the first step whose limit is at
 * or above it, `above` past the last. `steps` are `[maxLimit, weight]`, ascending.
 */
export const weightByLimit =
  (defaultLimit: number, steps: ReadonlyArray<readonly [number, number]>, above: number) =>
  (p: Params): number => {
    const limit = Number(p.limit ?? defaultLimit);
    for (const [max, weight] of steps) if (limit <= max) return weight;
    return above;
  };
