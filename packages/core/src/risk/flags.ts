import { isEmptyRiskConfig, type RiskConfig } from './config.ts';
import { parseRiskConfig, type RiskConfigIssue, type RiskInput } from './parse.ts';

/**
 * The risk flags every command takes (`keel backtest|paper|live`), as option definitions in the
 * shape `node:util` parseArgs reads (plain data: no dependency here). `riskInputFromFlags` turns
 * what it parsed into the parser's input.
 */
export const RISK_FLAGS = {
  risk: { type: 'string', multiple: true },
  sizing: { type: 'string', multiple: true },
  'stop-loss': { type: 'string' },
  'take-profit': { type: 'string' },
  trailing: { type: 'string' },
  'break-even': { type: 'string' },
  'time-exit': { type: 'string' },
  roi: { type: 'string' },
  'atr-period': { type: 'string' },
} as const;

export const RISK_FLAGS_HELP = `Risk (docs/risk.md; applied around any strategy):
  --risk <rule>=<value>  repeatable: max-drawdown=0.2, daily-loss=0.03, max-position=0.5,
                         max-open-orders=4, max-open-trades=3, order-rate=10/1m, cooldown=30m,
                         stoploss-guard=3/6h:12h, max-notional, max-gross, max-net, max-leverage,
                         cash-reserve, min-cash, symbols, sides, low-profit, max-losses
  --sizing <model>=<v>   entry size: percent=0.5, notional=1000, quantity=0.01, risk=0.01 (needs a
                         stop-loss), volatility=0.5, kelly=0.5 (repeat for options, e.g. cap=0.2)
  --stop-loss <d>        2% (of the entry), 2atr (x ATR at entry) or @41000 (a price)
  --take-profit <d>      as --stop-loss
  --trailing <d>         1% or 2atr
  --break-even <t[:o]>   once the close gains t, move the stop to the entry (+ o)
  --time-exit <dur>      close a position older than this, e.g. 4h
  --roi <table>          exit gain by trade age in minutes, e.g. "0=0.05,60=0.02,180=0"
  --atr-period <n>       ATR period for ATR distances (default 14)
`;

const list = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : v === undefined ? [] : [String(v)]);

/**
 * What parseArgs gave for RISK_FLAGS, as the parser's input (flags not given are left out).
 * `--max-open-trades <n>` (backtest, paper, live) is the rule `max-open-trades=<n>`.
 */
export function riskInputFromFlags(values: Readonly<Record<string, unknown>>): RiskInput {
  const exits: Record<string, unknown> = {};
  for (const k of ['stop-loss', 'take-profit', 'trailing', 'break-even', 'time-exit', 'roi', 'atr-period'])
    if (values[k] !== undefined) exits[k] = values[k];
  const mot = values['max-open-trades'];
  const risk = [...list(values.risk), ...(mot === undefined ? [] : [`max-open-trades=${String(mot)}`])];
  return { risk, sizing: list(values.sizing), exits };
}

/**
 * The risk flags of a command as a configuration: undefined when none was given (no risk engine
 * at all), or the first problem with its key, value and form. `keel backtest`, `keel paper` and
 * `keel live` all read their flags with this one function.
 */
export function riskConfigFromFlags(
  values: Readonly<Record<string, unknown>>,
):
  | { readonly ok: true; readonly config: RiskConfig | undefined }
  | { readonly ok: false; readonly error: RiskConfigIssue } {
  const mot = values['max-open-trades'];
  const given = list(values.risk).find((r) => /^\s*max-open-trades\s*=/.test(r));
  if (mot !== undefined && given !== undefined)
    return {
      ok: false,
      error: {
        key: 'max-open-trades',
        value: String(mot),
        rule: 'one of --max-open-trades <n> or --risk max-open-trades=<n>',
        message: `--max-open-trades ${String(mot)} and --risk ${given.trim()} are the same rule: give it once`,
      },
    };
  const p = parseRiskConfig(riskInputFromFlags(values));
  if (!p.ok) return p;
  return { ok: true, config: isEmptyRiskConfig(p.config) ? undefined : p.config };
}
