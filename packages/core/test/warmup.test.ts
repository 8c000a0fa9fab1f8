// Warm-up (a bot's history, and the bars up to where it stopped after a restart) runs the
// strategy as any bar does but sends nothing. Oracle: the same engine fed every bar as a backtest
// feeds them: what the strategy decides after the warm-up is what it decides there.
import { describe, expect, it } from 'vitest';
import {
  Account,
  type AnyStrategy,
  type Bar,
  type ClientOrderId,
  CrossOver,
  defineInstrument,
  defineStrategy,
  Engine,
  newOrderState,
  type OrderState,
  SimulatedVenue,
  SMA,
} from '../src/index.ts';
import { T0 } from './helpers.ts';

const inst = defineInstrument({ symbol: 'BTC/USDT' });
const anyParams = { safeParse: (x: unknown) => ({ success: true as const, data: x }) };

/** 400 minutes of a slow wave with a faster one on it: the 5/20 SMAs cross every few dozen bars. */
const series: Bar[] = Array.from({ length: 400 }, (_, i) => {
  const c = 100 + 10 * Math.sin(i / 17) + 3 * Math.sin(i / 4);
  return {
    time: T0 + i * 60_000,
    open: c - 0.5,
    high: c + 1,
    low: c - 1,
    close: c,
    volume: 10,
    quoteVolume: Number.NaN,
    trades: Number.NaN,
    takerBuyVolume: Number.NaN,
  };
});

/** The crossing seen on each bar the strategy handles (not warm-up): [bar time, +1 | -1]. */
function crossWatcher(seen: [number, number][]): AnyStrategy {
  return defineStrategy({
    name: 'cross-watch',
    params: anyParams,
    onStart(ctx) {
      return { fast: ctx.indicator(new SMA(5)), slow: ctx.indicator(new SMA(20)), cross: new CrossOver() };
    },
    onBar(ctx, s, bar) {
      const c = s.cross.update(s.fast.value, s.slow.value);
      if (c !== 0 && !ctx.warmingUp) seen.push([bar.time, c]);
    },
  });
}

function engineOf(strategy: AnyStrategy): Engine {
  const account = new Account('USDT', 10_000);
  const engine = new Engine({
    instruments: [inst],
    account,
    venue: new SimulatedVenue([inst], account),
    strategy,
    params: {},
    feeds: [{ symbol: 'BTC/USDT', timeframe: '1m' }],
  });
  engine.start();
  return engine;
}

describe('warm-up runs the strategy on past bars, sends nothing', () => {
  it('a restart on the bar before each crossing still sees the crossing on the next bar, as the run that never stopped', () => {
    const all: [number, number][] = [];
    const through = engineOf(crossWatcher(all));
    for (const b of series) through.onBar(0, b);
    expect(all.length).toBeGreaterThan(10);
    for (const [time] of all) {
      const k = series.findIndex((b) => b.time === time);
      const seen: [number, number][] = [];
      const restarted = engineOf(crossWatcher(seen));
      for (let i = 0; i < k; i++) restarted.warmUp(0, series[i]!);
      for (let i = k; i < series.length; i++) restarted.onBar(0, series[i]!);
      expect(seen, `restarted at bar ${k}`).toEqual(all.filter(([t]) => t >= time));
    }
  });

  it('orders asked for on past bars are not placed: ids of no order, cancels change nothing, each one counted', () => {
    const asked: { id: ClientOrderId; warming: boolean }[] = [];
    const strategy = defineStrategy({
      name: 'asks-every-bar',
      params: anyParams,
      warmup: 'none',
      onStart: () => ({}),
      onBar(ctx) {
        if (ctx.warmingUp) ctx.cancelAll();
        asked.push({ id: ctx.buy(0.01), warming: ctx.warmingUp });
        const closed = ctx.close();
        if (closed !== null) asked.push({ id: closed, warming: ctx.warmingUp });
        if (ctx.warmingUp) expect(ctx.order(asked.at(-1)!.id)).toBeUndefined();
      },
    });
    const engine = engineOf(strategy);
    // An order carried over from before the restart stays open through the warm-up's cancelAll.
    const kept = resting();
    engine.restoreOrder(kept);
    for (let i = 0; i < 5; i++) engine.warmUp(0, series[i]!);
    expect(engine.warmupRequests).toBe(5);
    expect(engine.history.map((o) => o.request.id)).toEqual([kept.request.id]);
    expect(engine.openOrders().map((o) => o.status)).toEqual(['accepted']);
    expect(asked.every((a) => a.warming)).toBe(true);
    // The first bar handled trades as usual.
    engine.onBar(0, series[5]!);
    expect(asked.at(-1)!.warming).toBe(false);
    expect(engine.history.map((o) => o.request.id)).toEqual([kept.request.id, asked.at(-1)!.id]);
    expect(engine.openOrders().map((o) => [o.request.id, o.status])).toEqual([
      ['kept-1', 'accepted'],
      [asked.at(-1)!.id, 'submitted'],
    ]);
  });
});

/** A resting limit buy, as the store gives back an order that was working before a restart. */
function resting(): OrderState {
  const o = newOrderState(
    {
      type: 'limit',
      id: 'kept-1' as ClientOrderId,
      symbol: 'BTC/USDT',
      side: 'buy',
      amount: 0.01,
      price: 50,
      timeInForce: 'GTC',
    },
    T0,
    50,
  );
  o.status = 'accepted';
  return o;
}
