import { describe, expect, it } from 'vitest';
import {
  escapeHtml,
  formatAmount,
  formatDuration,
  formatNumber,
  formatPercent,
  formatPrice,
  paramPairs,
  quoteOf,
} from '../src/format.ts';
import { formatMetric, METRIC_GROUPS, METRIC_SPECS } from '../src/metrics-format.ts';

describe('formatting (locale-independent, so reports are byte-identical on every machine)', () => {
  it('numbers: thousands separators, fixed decimals, no "-0.00", n/a and ∞', () => {
    expect(formatNumber(1234567.891, 2)).toBe('1,234,567.89');
    expect(formatNumber(-1234.5, 1)).toBe('-1,234.5');
    expect(formatNumber(999.999, 2)).toBe('1,000.00');
    expect(formatNumber(-0.001, 2)).toBe('0.00');
    expect(formatNumber(0, 0)).toBe('0');
    expect(formatNumber(Number.NaN)).toBe('n/a');
    expect(formatNumber(Number.POSITIVE_INFINITY)).toBe('∞');
    expect(formatNumber(Number.NEGATIVE_INFINITY)).toBe('-∞');
    expect(formatPercent(0.12345)).toBe('12.35 %');
    expect(formatPercent(-1)).toBe('-100.00 %');
  });

  it('agrees with Intl en-US grouping on random values (the oracle for the hand-written formatter)', () => {
    const intl = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    let x = 0.37;
    for (let i = 0; i < 200; i++) {
      x = (x * 7919.13) % 1e9;
      const v = i % 2 === 0 ? x : -x;
      expect(formatNumber(v, 2)).toBe(intl.format(v).replace(/^-0\.00$/, '0.00'));
    }
  });

  it('prices keep about five significant digits; amounts drop trailing zeros', () => {
    expect(formatPrice(42283.58)).toBe('42,283.58');
    expect(formatPrice(1.23456)).toBe('1.2346');
    expect(formatPrice(0.000123456)).toBe('0.00012346');
    expect(formatAmount(0.22371090710769587)).toBe('0.22371091');
    expect(formatAmount(1.5)).toBe('1.5');
    expect(formatAmount(3)).toBe('3');
  });

  it('durations use the two largest adjacent units', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(45_000)).toBe('45s');
    expect(formatDuration(3 * 3_600_000 + 5 * 60_000 + 7_000)).toBe('3h 5m');
    expect(formatDuration(2 * 86_400_000 + 30_000)).toBe('2d');
    expect(formatDuration(2_672_520_000)).toBe('30d 22h');
    expect(formatDuration(400 * 86_400_000)).toBe('1y 35d');
    expect(formatDuration(Number.NaN)).toBe('n/a');
  });

  it('escapes HTML metacharacters', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });

  it('reads the quote currency from ccxt symbols and lists params', () => {
    expect(quoteOf('BTC/USDT')).toBe('USDT');
    expect(quoteOf('BTC/USDT:USDT')).toBe('USDT');
    expect(quoteOf('BTCUSDT')).toBeUndefined();
    expect(paramPairs({ fast: 10, name: 'x', list: [1, 2], skip: undefined })).toEqual([
      ['fast', '10'],
      ['name', 'x'],
      ['list', '[1,2]'],
    ]);
    expect(paramPairs(undefined)).toEqual([]);
  });
});

describe('metric presentation', () => {
  it('the metrics table groups list every field of Metrics exactly once', () => {
    const grouped = METRIC_GROUPS.flatMap((g) => g.keys);
    expect(new Set(grouped).size).toBe(grouped.length);
    expect([...grouped].sort()).toEqual(Object.keys(METRIC_SPECS).sort());
  });

  it('formats each kind for humans', () => {
    expect(formatMetric('money', 1647.668627629256, 'USDT')).toBe('1,647.67 USDT');
    expect(formatMetric('percent', -0.8352331372370744)).toBe('-83.52 %');
    expect(formatMetric('ratio', Number.POSITIVE_INFINITY)).toBe('∞');
    expect(formatMetric('multiple', 807.4365)).toBe('807.44×');
    expect(formatMetric('integer', 525600)).toBe('525,600');
    expect(formatMetric('duration', 2_672_520_000)).toBe('30d 22h');
  });
});
