import { describe, expect, it } from 'vitest';
import { defineStrategy, runBacktest, timeframeMs } from '../src/index.ts';
import { bars, scripted } from './helpers.ts';

describe('engine', () => {
  it('a strategy exception becomes an error event and the run goes on', () => {
    const s = bars([
      [100, 101, 99, 100],
      [100, 101, 99, 100],
      [100, 101, 99, 100],
    ]);
    const events: string[] = [];
    const r = runBacktest({
      strategy: scripted({
        1: () => {
          throw new Error('boom');
        },
        2: (c) => void c.buy(1),
      }),
      data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: s }],
      onEvent: (e) => events.push(e.type),
    });
    expect(r.errors).toEqual([{ time: s.time[1]! + 60_000, hook: 'onBar', message: 'boom' }]);
    expect(events).toContain('strategy.error');
    expect(r.orders).toHaveLength(1);
  });

  it('invalid parameters are refused at construction with the field and the rule', () => {
    const strict = defineStrategy({
      name: 'needs-fast',
      params: {
        safeParse: (x: unknown) =>
          (x as { fast?: number }).fast! > 0
            ? { success: true as const, data: x }
            : { success: false as const, error: { issues: [{ path: ['fast'], message: 'must be > 0' }] } },
      },
      onStart: () => ({}),
      onBar: () => {},
    });
    expect(() =>
      runBacktest({
        strategy: strict,
        params: { fast: -1 },
        data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: bars([[1, 1, 1, 1]]) }],
      }),
    ).toThrow(/fast: must be > 0/);
  });

  it('timeframe arithmetic: weeks start on Monday, months are calendar months', async () => {
    const { timeframeStart, timeframeEnd, isoUtc } = await import('../src/index.ts');
    expect(isoUtc(timeframeStart('1w', Date.UTC(2024, 0, 3, 12)))).toBe('2024-01-01T00:00:00Z'); // Wed -> Mon
    expect(isoUtc(timeframeStart('1M', Date.UTC(2024, 1, 29, 23)))).toBe('2024-02-01T00:00:00Z');
    expect(isoUtc(timeframeEnd('1M', Date.UTC(2024, 11, 1)))).toBe('2025-01-01T00:00:00Z');
    expect(timeframeMs('4h')).toBe(14_400_000);
  });
});
