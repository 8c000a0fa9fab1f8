import { isoUtc } from '@keel/core';

/**
 * Number and time formatting for humans. Written by hand instead of `toLocaleString`/`Intl` so the
 * output does not depend on the machine's locale or ICU data: the same result renders to the same
 * bytes everywhere.
 */

const NA = 'n/a';

function groupThousands(digits: string): string {
  let out = '';
  for (let i = 0; i < digits.length; i++) {
    if (i > 0 && (digits.length - i) % 3 === 0) out += ',';
    out += digits[i];
  }
  return out;
}

/** Fixed decimals with thousands separators; NaN -> "n/a", infinities -> "∞"/"-∞". */
export function formatNumber(x: number, decimals = 2): string {
  if (Number.isNaN(x)) return NA;
  if (x === Number.POSITIVE_INFINITY) return '∞';
  if (x === Number.NEGATIVE_INFINITY) return '-∞';
  const fixed = Math.abs(x).toFixed(decimals);
  const [int = '0', frac] = fixed.split('.');
  // toFixed switches to exponent notation at 1e21; such values are not money, show them as they are.
  if (fixed.includes('e')) return (x < 0 ? '-' : '') + fixed;
  const body = groupThousands(int) + (frac !== undefined ? `.${frac}` : '');
  // "-0.00" is noise: a value that rounds to zero has no sign.
  const isZero = /^[0.]+$/.test(fixed);
  return x < 0 && !isZero ? `-${body}` : body;
}

export function formatInteger(x: number): string {
  return formatNumber(x, 0);
}

/** A fraction as a percentage: 0.1234 -> "12.34 %". */
export function formatPercent(fraction: number, decimals = 2): string {
  if (Number.isNaN(fraction)) return NA;
  return `${formatNumber(fraction * 100, decimals)} %`;
}

/** A value that is already in percent units: 1.5 -> "1.50 %". */
export function formatPercentUnits(pct: number, decimals = 2): string {
  if (Number.isNaN(pct)) return NA;
  return `${formatNumber(pct, decimals)} %`;
}

/** Decimals that keep about five significant digits for a price of this size (2 at least, 10 at most). */
export function priceDecimals(x: number): number {
  if (!Number.isFinite(x) || x === 0) return 2;
  const mag = Math.floor(Math.log10(Math.abs(x)));
  return Math.min(10, Math.max(2, 4 - mag));
}

export function formatPrice(x: number): string {
  return formatNumber(x, priceDecimals(x));
}

/** A quantity: up to 8 decimals, trailing zeros dropped (0.22371091, 1.5, 3). */
export function formatAmount(x: number): string {
  if (!Number.isFinite(x)) return formatNumber(x);
  const s = formatNumber(x, 8);
  return s.includes('.') ? s.replace(/\.?0+$/, '') : s;
}

export function formatMoney(x: number, currency?: string): string {
  const s = formatNumber(x, 2);
  return currency && Number.isFinite(x) ? `${s} ${currency}` : s;
}

const UNITS: readonly [string, number][] = [
  ['y', 365 * 86_400_000],
  ['d', 86_400_000],
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
];

/** A duration with its two largest adjacent units: "12d 4h", "3h 5m", "2d" (not "2d 0h"), "45s". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return NA;
  if (ms < 0) return `-${formatDuration(-ms)}`;
  for (let i = 0; i < UNITS.length; i++) {
    const [unit, size] = UNITS[i] as [string, number];
    if (ms < size) continue;
    const q = Math.floor(ms / size);
    const next = UNITS[i + 1];
    const q2 = next ? Math.floor((ms - q * size) / next[1]) : 0;
    return next && q2 > 0 ? `${q}${unit} ${q2}${next[0]}` : `${q}${unit}`;
  }
  return ms === 0 ? '0s' : `${Math.round(ms)}ms`;
}

/** ISO-8601 UTC, as core stamps it (no milliseconds when they are zero); NaN -> "n/a". */
export function formatTime(ms: number): string {
  return Number.isFinite(ms) ? isoUtc(ms) : NA;
}

/** "2024-01-01 00:00" style for headers: ISO date and minutes, still UTC. */
export function formatTimeShort(ms: number): string {
  if (!Number.isFinite(ms)) return NA;
  const iso = isoUtc(ms);
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
}

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);
}

/** `BTC/USDT:USDT` -> `USDT`; a symbol without a slash has no known quote. */
export function quoteOf(symbol: string): string | undefined {
  const slash = symbol.indexOf('/');
  if (slash < 0) return undefined;
  const rest = symbol.slice(slash + 1);
  const colon = rest.indexOf(':');
  return colon < 0 ? rest : rest.slice(0, colon);
}

/** Strategy parameters as `key=value` pairs for one line of text; nested values as JSON. */
export function paramPairs(params: unknown): [string, string][] {
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    return params === undefined ? [] : [['params', JSON.stringify(params) ?? String(params)]];
  }
  return Object.entries(params as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [k, typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v))]);
}

/** The CSS class of a number's sign in the report: "pos", "neg" or none. */
export function signClass(x: number): string {
  return x > 0 ? 'pos' : x < 0 ? 'neg' : '';
}
