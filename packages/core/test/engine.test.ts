import { describe, expect, it } from 'vitest';
import {
  Account,
  type Bar,
  type ClientOrderId,
  defineInstrument,
  defineStrategy,
  Engine,
  runBacktest,
  SimulatedVenue,
  type StrategyContext,
  timeframeMs,
} from '../src/index.ts';
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

describe('engine with keepFinished (a bot that runs for months)', () => {
  it('ctx.order finds the open orders and the last N finished ones; the fills are those of the engine that keeps everything', () => {
    const inst = defineInstrument({ symbol: 'BTC/USDT' });
    const bar = (i: number): Bar => ({
      time: i * 60_000,
      open: 100,
      high: 101,
      low: 99,
      close: 100,
      volume: 10,
      quoteVolume: Number.NaN,
      trades: Number.NaN,
      takerBuyVolume: Number.NaN,
    });
    const run = (keepFinished: number | undefined) => {
      const ids: ClientOrderId[] = [];
      const seen: (string | undefined)[] = [];
      const strategy = scripted(
        Object.fromEntries(
          Array.from({ length: 10 }, (_, i) => [
            i,
            (ctx: StrategyContext) => {
              if (i === 9) seen.push(...ids.map((id) => ctx.order(id)?.status));
              ids.push(ctx.buy(1));
            },
          ]),
        ),
      );
      const account = new Account('USDT', 1_000_000);
      const engine = new Engine({
        instruments: [inst],
        account,
        venue: new SimulatedVenue([inst], account),
        strategy,
        params: {},
        feeds: [{ symbol: 'BTC/USDT', timeframe: '1m' }],
        ...(keepFinished !== undefined ? { keepFinished } : {}),
      });
      engine.start();
      for (let i = 0; i < 10; i++) engine.onBar(0, bar(i));
      return { seen, engine };
    };
    const all = run(undefined);
    const kept = run(3);
    // Orders 0-8 filled at the next bar's open; asked on bar 9: the last 3 are still known.
    expect(all.seen).toEqual(Array(9).fill('filled'));
    expect(kept.seen).toEqual([...Array(6).fill(undefined), 'filled', 'filled', 'filled']);
    expect(kept.engine.retained()).toEqual({ open: 1, finished: 3, fills: 0 });
    expect(all.engine.retained()).toEqual({ open: 1, finished: 9, fills: 9 });
    expect(kept.engine.equity()).toBe(all.engine.equity());
  });
});
