// The run's exits (--stop-loss, --take-profit) hold the bot's coins on Binance spot: an order that
// needs those coins (the strategy's own close; the exits re-sized after one more fill of their
// entry) leaves only once the exchange has confirmed the cancel of the exits it replaces, as in the
// backtest, where the cancel is done before the next order. Real ccxt client over loopback.
// Oracle: the backtest of the same bars with the same risk settings; the simulator's own records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineStrategy, parseRiskConfig, type RiskConfig } from '@keel/core';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { noParams } from './fixtures/strategies.ts';
import { binanceSpotBacktest, KEY, type LiveRun, MIN, startLiveBot, T0, until } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-exit-cancel-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function riskOf(exits: Record<string, string>): RiskConfig {
  const parsed = parseRiskConfig({ exits });
  if (!parsed.ok) throw new Error(parsed.error.message);
  return parsed.config;
}

function barsOf(closes: readonly number[], volume: number) {
  return closes.map((c, i) => {
    const o = i === 0 ? c : closes[i - 1]!;
    return { time: T0 + i * MIN, open: o, high: Math.max(o, c) + 5, low: Math.min(o, c) - 5, close: c, volume };
  });
}

/** The orders the engine denied or the exchange rejected, `id: reason`. */
const refusedIn = (run: LiveRun) =>
  run.events.flatMap((e) =>
    e.type === 'order.rejected' || e.type === 'order.denied' ? [`${e.order.request.id}: ${e.reason}`] : [],
  );

const shape = (f: { side: string; amount: number; price: number; tag?: string | undefined }) =>
  `${f.side} ${f.amount}@${f.price}${f.tag ? ` ${f.tag}` : ''}`;

describe('run-level exits step aside before an order that needs their coins (live spot, real ccxt)', () => {
  it('--stop-loss: the strategy’s close is sent after the stop’s cancel is confirmed, and fills as in the backtest', async () => {
    /** Buys 0.01 on bar 1, closes on bar 3 (a plain sell of what it holds: not reduce-only). */
    const script = defineStrategy({
      name: 'buy-close',
      params: noParams,
      warmup: 'none',
      onStart: () => ({}),
      onBar(ctx, _s, bar) {
        const n = Math.round((bar.time - T0) / MIN);
        if (n === 1) ctx.buy(0.01);
        if (n === 3) ctx.close();
      },
    });
    const bars = barsOf([40_000, 40_000, 40_100, 40_200, 40_200, 40_200, 40_200], 50);
    const risk = riskOf({ 'stop-loss': '2%' });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'close.db')}`, synchronous: 'NORMAL' });
    const run = await startLiveBot({
      bars,
      strategy: script,
      store,
      sim: { liquidity: { spreadTicks: 0 } },
      bot: { risk },
    });
    try {
      for (let k = 1; k <= 4; k++) await run.step();
      await until(() => run.sim.getOrders(KEY.apiKey).length === 3, 10_000, 'entry, stop and close');
      await until(async () => (await store.orders.open('lt')).length === 0, 10_000, 'local orders to end');
    } finally {
      await run.close();
    }
    expect(refusedIn(run), 'nothing refused').toEqual([]);
    const onExchange = run.sim.getOrders(KEY.apiKey).map((o) => `${o.side} ${o.type} ${o.origQty} ${o.status}`);
    expect(onExchange).toEqual([
      'BUY MARKET 0.01 FILLED',
      'SELL STOP_LOSS 0.00999 CANCELED',
      'SELL MARKET 0.00999 FILLED',
    ]);
    const bt = binanceSpotBacktest(script, bars, risk);
    expect(bt.orders.map((o) => `${o.request.side} ${o.request.type} ${o.status}`)).toEqual([
      'buy market filled',
      'sell stop-market cancelled',
      'sell market filled',
    ]);
    const fills = await store.fills.since('lt', 0);
    expect(fills.map(shape)).toEqual(bt.fills.map(shape));
    await store.close();
  });

  it('--stop-loss --take-profit: an entry filled in two trades ends with one OCO list for the whole position; the stop sells it all', async () => {
    /** Buys 0.2 on bar 1: the simulator’s book (0.125 a level at this volume) fills it in two trades. */
    const bigBuy = defineStrategy({
      name: 'big-buy',
      params: noParams,
      warmup: 'none',
      onStart: () => ({}),
      onBar(ctx, _s, bar) {
        if (Math.round((bar.time - T0) / MIN) === 1) ctx.buy(0.2);
      },
    });
    // Flat, then down through the stop (40,000 x 0.98 = 39,200) on bar 5.
    const bars = barsOf([40_000, 40_000, 40_000, 39_900, 39_800, 39_000, 39_000, 39_000], 25);
    const risk = riskOf({ 'stop-loss': '2%', 'take-profit': '5%' });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'split.db')}`, synchronous: 'NORMAL' });
    const run = await startLiveBot({
      bars,
      strategy: bigBuy,
      store,
      sim: { liquidity: { spreadTicks: 0 } },
      bot: { risk },
    });
    try {
      for (let k = 1; k <= 3; k++) await run.step();
      await until(
        () =>
          run.sim
            .getOrders(KEY.apiKey)
            .some((o) => o.type === 'STOP_LOSS' && o.status === 'NEW' && o.origQty === 0.1998),
        10_000,
        'the stop for the whole position',
      );
      for (let k = 4; k <= 6; k++) await run.step();
      await until(async () => (await store.orders.open('lt')).length === 0, 10_000, 'local orders to end');
    } finally {
      await run.close();
    }
    const onExchange = run.sim.getOrders(KEY.apiKey);
    const entry = onExchange.find((o) => o.type === 'MARKET')!;
    expect(entry.fills.length, 'the entry filled in two trades').toBe(2);
    expect(
      onExchange.filter((o) => o.status === 'REJECTED' || (o.status === 'EXPIRED' && o.type === 'STOP_LOSS')),
    ).toEqual([]);
    // The first list (for the first trade: 0.125 less the fee, at the step) was cancelled before the second one was placed.
    const exits = onExchange.filter((o) => o.type !== 'MARKET').map((o) => `${o.type} ${o.origQty} ${o.status}`);
    expect(exits).toEqual([
      'STOP_LOSS 0.12487 CANCELED',
      'LIMIT_MAKER 0.12487 CANCELED',
      'STOP_LOSS 0.1998 FILLED',
      'LIMIT_MAKER 0.1998 EXPIRED',
    ]);
    const bt = binanceSpotBacktest(bigBuy, bars, risk);
    expect(bt.fills.map((f) => `${f.side} ${f.amount} ${f.tag ?? '-'}`)).toEqual([
      'buy 0.2 -',
      'sell 0.1998 stop-loss',
    ]);
    const fills = await store.fills.since('lt', 0);
    // The book fills each market order in trades of at most 0.125: compared by their sums.
    const total = (side: string) => fills.filter((f) => f.side === side).reduce((a, f) => a + f.amount, 0);
    expect(total('buy')).toBeCloseTo(0.2, 12);
    expect(total('sell')).toBeCloseTo(0.1998, 12);
    expect(new Set(fills.filter((f) => f.side === 'sell').map((f) => f.tag))).toEqual(new Set(['stop-loss']));
    expect(refusedIn(run), 'no exit refused').toEqual([]);
    await store.close();
  });
});
