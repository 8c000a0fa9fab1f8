// The risk engine's run-level exits live on Binance spot: a stop-loss and a take-profit attached
// to an entry go out as ONE native OCO order list (as a strategy's bracket does), sized to the
// coins held after the fee Binance takes in BTC. Oracle: the backtest of the same bars with the
// same risk settings for the fills, the simulator's own records for the exchange side.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineStrategy, parseRiskConfig, type RiskConfig } from '@keel/core';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { noParams } from './fixtures/strategies.ts';
import { binanceSpotBacktest, KEY, startLiveBot, until } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-risk-exits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 3, 1);
const MIN = 60_000;

/** On the third bar, when flat: buy 0.01 BTC; the exits are the run's (--stop-loss, --take-profit). */
const buyOnce = defineStrategy({
  name: 'buy-once',
  params: noParams,
  warmup: 'none',
  onStart: () => ({ n: 0 }),
  onBar(ctx, s: { n: number }) {
    if (++s.n === 3 && ctx.position().size === 0) ctx.buy(0.01);
  },
});

// Flat at 40,000, then a climb that reaches the take-profit (40,000 x 1.01 = 40,400) on bar 6.
const closes = [40_000, 40_000, 40_000, 40_050, 40_150, 40_250, 40_450, 40_500, 40_500, 40_500];
const bars = closes.map((c, i) => {
  const o = i === 0 ? c : closes[i - 1]!;
  return { time: T0 + i * MIN, open: o, high: Math.max(o, c) + 20, low: Math.min(o, c) - 20, close: c, volume: 50 };
});

const parsed = parseRiskConfig({ exits: { 'stop-loss': '2%', 'take-profit': '1%' } });
if (!parsed.ok) throw new Error(parsed.error.message);
const risk: RiskConfig = parsed.config;

describe('run-level exits live on Binance spot (real ccxt, loopback)', () => {
  it('--stop-loss 2% --take-profit 1% go out as one native OCO list sized to the coins held; fills equal the backtest’s', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'x.db')}`, synchronous: 'NORMAL' });
    const run = await startLiveBot({
      bars,
      strategy: buyOnce,
      store,
      balances: { USDT: 10_000 },
      sim: { liquidity: { spreadTicks: 0 } },
      bot: { risk },
    });
    try {
      for (let k = 1; k < bars.length - 1; k++) {
        await run.step();
        if (k === 3) await until(() => run.sim.getOrders(KEY.apiKey).length === 3, 10_000, 'the exits');
      }
      await until(
        () => run.sim.getOrders(KEY.apiKey).filter((o) => o.status !== 'NEW').length === 3,
        10_000,
        'entry and both exits to end',
      );
      await until(async () => (await store.orders.open('lt')).length === 0, 10_000, 'local orders to end');
    } finally {
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
    const tags = (await store.orders.list('lt')).map((o) => o.request.tag ?? '-').sort();
    expect(tags).toEqual(['-', 'stop-loss', 'take-profit']);

    const bt = binanceSpotBacktest(buyOnce, bars, risk);
    const fills = await store.fills.since('lt', 0);
    const shape = (f: { side: string; amount: number; price: number; tag?: string | undefined }) =>
      `${f.side} ${f.amount}@${f.price}${f.tag ? ` ${f.tag}` : ''}`;
    expect(bt.fills.map(shape)).toEqual(['buy 0.01@40000', 'sell 0.00999@40400 take-profit']);
    expect(fills.map(shape)).toEqual(bt.fills.map(shape));
    await store.close();
  });
});
