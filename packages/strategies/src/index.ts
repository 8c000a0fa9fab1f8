import type { AnyStrategy } from '@keel/core';
import { bollingerReversion } from './bollinger-reversion.ts';
import { rsiReversion } from './rsi-reversion.ts';
import { smaCross } from './sma-cross.ts';

export { bollingerReversion, rsiReversion, smaCross };

/** Built-in strategies by name (the CLI's --strategy and the server's strategy list). */
export const STRATEGIES: Readonly<Record<string, AnyStrategy>> = {
  [smaCross.name]: smaCross,
  [rsiReversion.name]: rsiReversion,
  [bollingerReversion.name]: bollingerReversion,
};

export function getStrategy(name: string): AnyStrategy {
  const s = STRATEGIES[name];
  if (!s) throw new Error(`Unknown strategy "${name}". Available: ${Object.keys(STRATEGIES).join(', ')}`);
  return s;
}
