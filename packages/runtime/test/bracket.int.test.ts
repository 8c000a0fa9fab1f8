// A bracket in live mode on Binance spot: the exits go out as ONE native OCO order list when the
// entry fills (two separate sells could not both lock the coins), sized to what is held after the
// fee Binance takes in BTC. Oracle: the backtest of the same bars (fees in the base asset, same
// latency convention) for fills, and the simulator's own records for the exchange side.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineInstrument, defineStrategy, runBacktest } from '@keel/core';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { noParams } from './fixtures/strategies.ts';
import { KEY, startLiveBot, toSeries, until } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-bracket-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 3, 1);
const MIN = 60_000;

/** On the third bar, when flat: buy 0.01 BTC with a take-profit 1 % up and a stop-loss 2 % down. */
const bracketOnce = defineStrategy({
  name: 'bracket-once',
  params: noParams,
  warmup: 'none',
  onStart: () => ({ n: 0 }),
  onBar(ctx, s, bar) {
    if (++s.n === 3 && ctx.position().size === 0)
      ctx.bracket({ side: 'buy', amount: 0.01, takeProfit: bar.close + 400, stopLoss: bar.close - 800 });
  },
});

// Flat at 40,000, then a climb that reaches the take-profit (40,400) on bar 6.
const closes = [40_000, 40_000, 40_000, 40_050, 40_150, 40_250, 40_450, 40_500, 40_500, 40_500];
const bars = closes.map((c, i) => {
  const o = i === 0 ? c : closes[i - 1]!;
  return { time: T0 + i * MIN, open: o, high: Math.max(o, c) + 20, low: Math.min(o, c) - 20, close: c, volume: 50 };
});

describe('bracket exits on Binance spot (real ccxt, loopback)', () => {
  it('go out as one OCO list sized to the coins held; fills equal the backtest’s; balances equal the exchange’s', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'b.db')}`, synchronous: 'NORMAL' });
    // No spread (the backtest has no slippage model here): a market buy fills at the open itself.
    const run = await startLiveBot({
      bars,
      strategy: bracketOnce,
      store,
      balances: { USDT: 10_000 },
      sim: { liquidity: { spreadTicks: 0 } },
    });
    try {
      for (let k = 1; k < bars.length - 1; k++) {
        await run.step();
        // Bar 2 is handled once bar 3 has opened: the entry fills at that open, and the exits go
        // out before the market moves on (as they would within one live minute).
        if (k === 3) await until(() => run.sim.getOrders(KEY.apiKey).length === 3, 10_000, 'the exits');
      }
      await until(
        () => run.sim.getOrders(KEY.apiKey).filter((o) => o.status !== 'NEW').length === 3,
        10_000,
        'entry and both exits to end',
      );
      await until(async () => (await store.orders.open('lt')).length === 0, 10_000, 'local orders to end');
    } finally {
      if (process.env.KEEL_DEBUG)
        for (const o of run.sim.getOrders(KEY.apiKey))
          process.stderr.write(
            `ORDER ${o.clientOrderId} ${o.side} ${o.type} ${o.status} ${o.origQty} ${o.price} ${o.stopPrice}\n`,
          );
      await run.close();
    }
    const onExchange = run.sim.getOrders(KEY.apiKey);
    const entry = onExchange.find((o) => o.type === 'MARKET')!;
    const tp = onExchange.find((o) => o.type === 'LIMIT_MAKER')!;
    const sl = onExchange.find((o) => o.type === 'STOP_LOSS')!;
    expect(entry).toMatchObject({ status: 'FILLED', executedQty: 0.01 });
    expect(tp).toMatchObject({ status: 'FILLED', origQty: 0.00999, price: 40_400 });
    expect(sl).toMatchObject({ status: 'EXPIRED', origQty: 0.00999, stopPrice: 39_200 });
    expect(tp.orderListId).toBeGreaterThan(0);
    expect(sl.orderListId).toBe(tp.orderListId);

    // The backtest of the same bars: same fills (entry at the next bar's open, exit at the limit).
    const series = toSeries(bars);
    const bt = runBacktest({
      strategy: bracketOnce,
      data: [
        {
          symbol: 'BTC/USDT',
          timeframe: '1m',
          series,
          instrument: defineInstrument({ symbol: 'BTC/USDT', tickSize: 0.01, stepSize: 0.00001 }),
        },
      ],
      cash: 10_000,
      fee: 0.001,
      feeAsset: 'received',
    });
    const fills = await store.fills.since('lt', 0);
    const shape = (f: { side: string; amount: number; price: number }) => `${f.side} ${f.amount}@${f.price}`;
    expect(bt.fills.map(shape)).toEqual(['buy 0.01@40000', 'sell 0.00999@40400']);
    expect(fills.map(shape)).toEqual(bt.fills.map(shape));

    // The bot's own records say what went to the exchange: each exit's amount is its origQty
    // (sized to the coins held after the fee), as the backtest's exits are.
    const mine = await store.orders.list('lt');
    for (const o of [tp, sl])
      expect(mine.find((x) => x.request.id === o.clientOrderId)?.request.amount).toBe(o.origQty);
    expect(bt.orders.filter((o) => o.request.parentId !== undefined).map((o) => o.request.amount)).toEqual([
      0.00999, 0.00999,
    ]);
    const simBal = run.sim.getBalances(KEY.apiKey);
    const local = await store.balances.load('lt');
    const usdt = local.find((b) => b.asset === 'USDT')!;
    expect(usdt.total).toBeCloseTo(simBal['USDT']!.free + simBal['USDT']!.locked, 8);
    await store.close();
  });

  it('a leg cancelled in the tick that created the pair never leaves; the other goes alone', async () => {
    const ocoThenCancel = defineStrategy({
      name: 'oco-then-cancel',
      params: noParams,
      warmup: 'none',
      onStart: () => ({ n: 0 }),
      onBar(ctx, s, bar) {
        if (++s.n !== 2) return;
        const [stop] = ctx.oco(
          { type: 'stop-market', side: 'buy', amount: 0.01, stopPrice: bar.close + 1_000 },
          { type: 'limit', side: 'buy', amount: 0.01, price: bar.close - 1_000 },
        );
        ctx.cancel(stop);
      },
    });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'c.db')}`, synchronous: 'NORMAL' });
    const run = await startLiveBot({ bars, strategy: ocoThenCancel, store, balances: { USDT: 10_000 } });
    try {
      for (let k = 1; k <= 3; k++) await run.step();
      await until(() => run.sim.getOrders(KEY.apiKey).length === 1, 10_000, 'the limit leg');
      await until(
        async () => (await store.orders.list('lt', { status: ['cancelled'] })).length === 1,
        10_000,
        'the cancel',
      );
    } finally {
      await run.close();
    }
    const onExchange = run.sim.getOrders(KEY.apiKey);
    expect(onExchange).toHaveLength(1);
    expect(onExchange[0]).toMatchObject({ type: 'LIMIT', side: 'BUY', price: 39_000, orderListId: -1 });
    const cancelled = await store.orders.list('lt', { status: ['cancelled'] });
    expect(cancelled.map((o) => o.request.type)).toEqual(['stop-market']);
    await store.close();
  });
});
