import type { AnyStrategy } from '@keel/core';
import { bollingerReversion } from './bollinger-reversion.ts';
import { donchianBreakout } from './donchian-breakout.ts';
import { emaCross } from './ema-cross.ts';
import { macdStrategy } from './macd.ts';
import { rsiReversion } from './rsi-reversion.ts';
import { smaCross } from './sma-cross.ts';

export { bollingerReversion, donchianBreakout, emaCross, macdStrategy, rsiReversion, smaCross };

/** Built-in strategies by name (the CLI's --strategy, the bot runtime). */
export const STRATEGIES: Readonly<Record<string, AnyStrategy>> = {
  [smaCross.name]: smaCross,
  [rsiReversion.name]: rsiReversion,
  [bollingerReversion.name]: bollingerReversion,
  [emaCross.name]: emaCross,
  [macdStrategy.name]: macdStrategy,
  [donchianBreakout.name]: donchianBreakout,
};

export function getStrategy(name: string): AnyStrategy {
  const s = STRATEGIES[name];
  if (!s) throw new Error(`Unknown strategy "${name}". Available: ${Object.keys(STRATEGIES).join(', ')}`);
  return s;
}

export { spotDirectionProblem } from './common.ts';
export { describeStrategy, type ParamInfo, type StrategyInfo } from './describe.ts';
