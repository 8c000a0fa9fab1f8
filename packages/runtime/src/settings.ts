import {
  type AnyStrategy,
  type FeedKey,
  type FuturesMarketSettings,
  type Instrument,
  parseRiskConfig,
  type RiskConfig,
  type RiskInput,
  riskConfigInput,
  riskConfigText,
} from '@keel/core';
import type { BotSettings } from '@keel/store';
import { resolvedParams } from './session.ts';

/** A stored bot started with another strategy, params, markets, risk or futures settings, without `reconfigure`. */
export class BotSettingsChangedError extends Error {
  constructor(
    botId: string,
    readonly stored: BotSettings,
    readonly requested: BotSettings,
  ) {
    const show = (x: typeof stored) =>
      `${x.strategy} ${paramText(x.params)} on ${x.symbols.join(', ')}${futuresText(x.futures)}${x.risk ? ` with ${riskText(x.risk)}` : ''}`;
    super(
      `bot "${botId}" was run as ${show(stored)}; this start asks for ${show(requested)}${changedText(stored, requested)}. Its orders, fills and positions belong to the first: start it as it was, use another --bot-id, or add --reconfigure to run the new settings under this bot's history`,
    );
    this.name = 'BotSettingsChangedError';
  }
}

/** The risk settings as a stored bot keeps them: the parser's grammar, or null for none. */
export function storedRisk(risk: RiskConfig | undefined): BotSettings['risk'] {
  return risk === undefined ? null : riskConfigInput(risk);
}

/** A perpetual's settings as a stored bot keeps them (what it trades with on the exchange or in paper). */
export interface StoredFuturesSettings {
  readonly leverage: number;
  readonly marginMode: string;
  readonly positionMode: string;
}

/**
 * The futures settings as a stored bot keeps them, per perpetual symbol: leverage, margin mode and
 * position mode (one-way unless set). Null for a bot with no futures settings (spot).
 */
export function storedFutures(
  futures: ((symbol: string) => FuturesMarketSettings) | undefined,
  instruments: readonly Instrument[],
): Record<string, StoredFuturesSettings> | null {
  if (futures === undefined) return null;
  const out: Record<string, StoredFuturesSettings> = {};
  for (const i of instruments) {
    if (i.kind !== 'perpetual') continue;
    const s = futures(i.symbol);
    out[i.symbol] = { leverage: s.leverage, marginMode: s.marginMode, positionMode: s.positionMode ?? 'one-way' };
  }
  return out;
}

/**
 * What differs between a stored bot and a start of it: strategy, params (as the strategy parses
 * them, so spelling out a default is no change), markets (in order), risk settings (as the parser reads
 * them, so the order of the flags is no change) and futures settings (leverage, margin mode and
 * position mode per perpetual; a bot stored before they were kept has none to differ from).
 * Undefined when nothing does.
 */
export function settingsChange(
  existing: BotSettings,
  start: {
    readonly strategy: AnyStrategy;
    readonly params: unknown;
    readonly feeds: readonly FeedKey[];
    readonly risk?: RiskConfig | undefined;
    readonly futures?: Record<string, StoredFuturesSettings> | null;
  },
): { stored: BotSettings; requested: BotSettings } | undefined {
  const requested = {
    strategy: start.strategy.name,
    params: resolvedParams(start.strategy, start.params),
    symbols: [...new Set(start.feeds.map((f) => f.symbol))],
    risk: storedRisk(start.risk),
    futures: start.futures ?? null,
  };
  let storedParams = existing.params;
  if (existing.strategy === requested.strategy) {
    try {
      storedParams = resolvedParams(start.strategy, existing.params);
    } catch {
      // Params the strategy no longer accepts: shown as stored, and they differ.
    }
  }
  const stored = {
    strategy: existing.strategy,
    params: storedParams,
    symbols: [...existing.symbols],
    risk: normalRisk(existing.risk),
    // Stored before futures settings were kept: nothing to differ from (the start records them).
    futures: existing.futures ?? requested.futures,
  };
  const same =
    stored.strategy === requested.strategy &&
    canonicalJson(stored.params) === canonicalJson(requested.params) &&
    // In order: a close time's orders are numbered market by market in this order (their client
    // ids), so a restart in another order could give one market's signal the id another's order
    // already has on the exchange.
    canonicalJson(stored.symbols) === canonicalJson(requested.symbols) &&
    canonicalJson(stored.risk) === canonicalJson(requested.risk) &&
    canonicalJson(stored.futures) === canonicalJson(requested.futures);
  return same ? undefined : { stored, requested };
}

/** Stored risk settings read back through the parser (null when absent or no longer valid as stored). */
function normalRisk(r: unknown): BotSettings['risk'] {
  if (r === null || r === undefined) return null;
  const p = parseRiskConfig(r as RiskInput);
  return p.ok ? storedRisk(p.config) : r;
}

/** `--risk max-drawdown=0.2:flatten:resume --stop-loss 2%`, or `no risk settings`. */
function riskText(r: unknown): string {
  if (r === null || r === undefined) return 'no risk settings';
  const p = parseRiskConfig(r as RiskInput);
  if (!p.ok) return JSON.stringify(r);
  const lines = riskConfigText(p.config);
  return lines.length > 0 ? lines.join(' ') : 'no risk settings';
}

/** JSON with object keys sorted, so that equal settings compare equal whatever their key order. */
function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : x,
  );
}

/** `fast=5 slow=12` (a parameter that is not a plain value as JSON). */
function paramText(p: unknown): string {
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return JSON.stringify(p);
  const pairs = Object.entries(p as Record<string, unknown>).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return pairs.length > 0 ? pairs.join(' ') : '(no params)';
}

/** ` (changed: fast 5 -> 6)`: what differs, named. */
function changedText(a: BotSettings, b: BotSettings): string {
  const out: string[] = [];
  if (a.strategy !== b.strategy) out.push(`strategy ${a.strategy} -> ${b.strategy}`);
  else if (a.params && b.params && typeof a.params === 'object' && typeof b.params === 'object') {
    const x = a.params as Record<string, unknown>;
    const y = b.params as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(x), ...Object.keys(y)])])
      if (canonicalJson(x[k]) !== canonicalJson(y[k]))
        out.push(
          `${k} ${x[k] === undefined ? '(unset)' : JSON.stringify(x[k])} -> ${y[k] === undefined ? '(unset)' : JSON.stringify(y[k])}`,
        );
  }
  if (canonicalJson([...a.symbols].sort()) !== canonicalJson([...b.symbols].sort()))
    out.push(`symbols ${a.symbols.join(',')} -> ${b.symbols.join(',')}`);
  else if (canonicalJson(a.symbols) !== canonicalJson(b.symbols))
    out.push(
      `the same markets in another order ${a.symbols.join(',')} -> ${b.symbols.join(',')} (the orders of a close time are numbered in this order: give --symbol as before)`,
    );
  if (canonicalJson(a.risk ?? null) !== canonicalJson(b.risk ?? null))
    out.push(`risk ${riskText(a.risk)} -> ${riskText(b.risk)}`);
  const fa = (a.futures ?? {}) as Record<string, Partial<StoredFuturesSettings> | undefined>;
  const fb = (b.futures ?? {}) as Record<string, Partial<StoredFuturesSettings> | undefined>;
  for (const sym of [...new Set([...Object.keys(fa), ...Object.keys(fb)])]) {
    const x = fa[sym];
    const y = fb[sym];
    if (x === undefined || y === undefined) continue;
    if (x.leverage !== y.leverage) out.push(`${sym} leverage ${x.leverage}x -> ${y.leverage}x`);
    if (x.marginMode !== y.marginMode) out.push(`${sym} margin ${x.marginMode} -> ${y.marginMode}`);
    if (x.positionMode !== y.positionMode) out.push(`${sym} position mode ${x.positionMode} -> ${y.positionMode}`);
  }
  return out.length > 0 ? ` (changed: ${out.join('; ')})` : '';
}

/** ` at 3x isolated margin, one-way` per perpetual (nothing for a spot bot). */
function futuresText(f: unknown): string {
  if (f === null || f === undefined || typeof f !== 'object') return '';
  const parts = Object.entries(f as Record<string, Partial<StoredFuturesSettings>>).map(
    ([sym, x]) =>
      `${Object.keys(f).length > 1 ? `${sym} ` : ''}${x.leverage}x ${x.marginMode} margin, ${x.positionMode}`,
  );
  return parts.length > 0 ? ` at ${parts.join('; ')}` : '';
}
