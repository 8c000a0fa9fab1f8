import type { AnyStrategy } from '@keel/core';
import { z } from 'zod';

/** One parameter of a strategy, as its zod schema declares it. */
export interface ParamInfo {
  readonly name: string;
  /** integer, number, string, boolean, one of the listed values (enum), or what JSON Schema calls it. */
  readonly type: string;
  readonly required: boolean;
  /** Absent when the parameter has no default. */
  readonly default?: unknown;
  /** Each rule on the value alone: ">= 1", "< 100", "one of long, short". */
  readonly constraints: readonly string[];
  readonly description?: string;
}

/** A strategy's name, description and parameters: what `keel strategies` lists. */
export interface StrategyInfo {
  readonly name: string;
  readonly description?: string;
  readonly params: readonly ParamInfo[];
  /** Rules across parameters (refinements), by their message: "fast must be smaller than slow". */
  readonly rules: readonly string[];
  /** False when the params schema is not a zod schema: its parameters cannot be listed. */
  readonly described: boolean;
}

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  default?: unknown;
  description?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
}

/** The strategy's parameters from its zod schema (zod's own JSON Schema of the input). */
export function describeStrategy(s: AnyStrategy): StrategyInfo {
  const base = { name: s.name, ...(s.description !== undefined ? { description: s.description } : {}) };
  let schema: JsonSchema;
  try {
    schema = z.toJSONSchema(s.params as z.ZodType, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  } catch {
    return { ...base, params: [], rules: [], described: false };
  }
  const required = new Set(schema.required ?? []);
  const params = Object.entries(schema.properties ?? {}).map(([name, p]): ParamInfo => {
    const hasDefault = Object.hasOwn(p, 'default');
    return {
      name,
      type: typeOf(p),
      required: required.has(name) && !hasDefault,
      ...(hasDefault ? { default: p.default } : {}),
      constraints: constraintsOf(p),
      ...(p.description !== undefined ? { description: p.description } : {}),
    };
  });
  return { ...base, params, rules: refinements(s.params), described: true };
}

function typeOf(p: JsonSchema): string {
  if (p.enum) return 'enum';
  if (p.const !== undefined) return 'constant';
  if (p.anyOf) return p.anyOf.map(typeOf).join(' | ');
  if (Array.isArray(p.type)) return p.type.join(' | ');
  return p.type ?? 'any';
}

function constraintsOf(p: JsonSchema): string[] {
  const out: string[] = [];
  if (p.exclusiveMinimum !== undefined) out.push(`> ${p.exclusiveMinimum}`);
  if (p.minimum !== undefined && p.minimum > Number.MIN_SAFE_INTEGER) out.push(`>= ${p.minimum}`);
  if (p.exclusiveMaximum !== undefined) out.push(`< ${p.exclusiveMaximum}`);
  // zod's int() writes the safe-integer bounds: not a rule a user chose.
  if (p.maximum !== undefined && p.maximum < Number.MAX_SAFE_INTEGER) out.push(`<= ${p.maximum}`);
  if (p.minLength !== undefined) out.push(`length >= ${p.minLength}`);
  if (p.maxLength !== undefined) out.push(`length <= ${p.maxLength}`);
  if (p.pattern !== undefined) out.push(`matches /${p.pattern}/`);
  if (p.enum) out.push(`one of ${p.enum.map(String).join(', ')}`);
  if (p.const !== undefined) out.push(`= ${String(p.const)}`);
  return out;
}

/**
 * The messages of the object-level refinements (`.refine(fn, { message })`): JSON Schema cannot
 * express them, and they are the rules a user most needs to know (fast < slow).
 */
function refinements(schema: unknown): string[] {
  const out: string[] = [];
  const checks = (schema as { _zod?: { def?: { checks?: unknown[] } } })._zod?.def?.checks ?? [];
  for (const c of checks) {
    const def = (c as { _zod?: { def?: { check?: string; error?: unknown } } })._zod?.def;
    if (def?.check !== 'custom') continue;
    const e = typeof def.error === 'function' ? (def.error as (i?: unknown) => unknown)() : def.error;
    const msg = typeof e === 'string' ? e : (e as { message?: unknown } | undefined)?.message;
    if (typeof msg === 'string') out.push(msg);
  }
  return out;
}
