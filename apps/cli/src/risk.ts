import { type RiskConfig, riskConfigFromFlags } from '@keel/core';
import { UsageError } from './errors.ts';

/**
 * The risk flags of a command (`RISK_FLAGS` in its parseArgs options) as a configuration, or
 * undefined when none was given; a bad setting is a usage error naming the key and its form.
 */
export function riskFromFlags(values: Readonly<Record<string, unknown>>, command: string): RiskConfig | undefined {
  const p = riskConfigFromFlags(values);
  if (!p.ok) throw new UsageError(p.error.message, command);
  return p.config;
}
