// A position carried over a restart keeps its run-level stop: a live bot stopped gracefully with
// --on-shutdown cancel (its stop cancelled on the exchange), down for two bars, restarted: the
// stop goes out again at the first bar after the restart, a bar it catches up on included (the
// catch-up hold holds back strategy signals, never a protective exit). Real ccxt client over
// loopback. Oracle: the backtest of the same bars (where the stop never stopped working), the
// simulator's own records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineStrategy, parseRiskConfig, type RiskConfig } from '@keel/core';
import { startExchangeSim } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { noParams } from './fixtures/strategies.ts';
import { binanceSpotBacktest, KEY, MIN, startLiveBot, T0, until } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-exits-restart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Buys 0.01 on bar 1; the exit is the run's --stop-loss. */
const buyOnce = defineStrategy({
  name: 'buy-once',
  params: noParams,
  warmup: 'none',
  onStart: () => ({}),
  onBar(ctx, _s, bar) {
    if (Math.round((bar.time - T0) / MIN) === 1) ctx.buy(0.01);
  },
});

// Flat at 40,000, then down through the stop (40,000 x 0.98 = 39,200) on bar 8.
const closes = [40_000, 40_000, 40_000, 40_000, 40_000, 40_000, 40_000, 40_000, 39_000, 39_000, 39_000];
const bars = closes.map((c, i) => {
  const o = i === 0 ? c : closes[i - 1]!;
  return { time: T0 + i * MIN, open: o, high: Math.max(o, c) + 5, low: Math.min(o, c) - 5, close: c, volume: 50 };
});

const parsed = parseRiskConfig({ exits: { 'stop-loss': '2%' } });
if (!parsed.ok) throw new Error(parsed.error.message);
const risk: RiskConfig = parsed.config;

describe('a carried position’s run-level stop across a restart (live spot, real ccxt)', () => {
  it('--on-shutdown cancel removes the stop; the restart (catching up on 2 missed bars) places it again; it sells as in the backtest', async () => {
    const sim = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars }],
      accounts: [{ ...KEY, balances: { USDT: 10_000 } }],
      startTime: T0,
      liquidity: { spreadTicks: 0 },
    });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'x.db')}`, synchronous: 'NORMAL' });
    const bot = { risk, onShutdown: 'cancel' as const };
    const stops = () => sim.getOrders(KEY.apiKey).filter((o) => o.type === 'STOP_LOSS');
    try {
      const first = await startLiveBot({ exchange: sim, store, strategy: buyOnce, botId: 'xr', bot });
      try {
        for (let k = 0; k < 3; k++) await first.step();
        await until(() => stops().length === 1, 10_000, 'the stop');
      } finally {
        await first.close();
      }
      expect(stops().map((o) => `${o.origQty} ${o.stopPrice} ${o.status}`)).toEqual(['0.00999 39200 CANCELED']);
      sim.step(); // two bars go by while the bot is down: it catches up on them (--catch-up none)
      sim.step();
      const second = await startLiveBot({ exchange: sim, store, strategy: buyOnce, botId: 'xr', bot });
      try {
        await until(() => stops().length === 2, 10_000, 'the stop placed again after the restart');
        for (let k = 0; k < 4; k++) await second.step();
        await until(() => stops()[1]?.status === 'FILLED', 10_000, 'the stop to fill');
      } finally {
        await second.close();
      }
      const denied = second.events.flatMap((e) => (e.type === 'order.denied' ? [e.reason] : []));
      expect(denied, 'no exit held back by the catch-up').toEqual([]);
    } finally {
      await sim.close();
    }
    expect(stops().map((o) => `${o.origQty} ${o.stopPrice} ${o.status}`)).toEqual([
      '0.00999 39200 CANCELED',
      '0.00999 39200 FILLED',
    ]);
    const bt = binanceSpotBacktest(buyOnce, bars, risk);
    const shape = (f: { side: string; amount: number; tag?: string | undefined }) =>
      `${f.side} ${f.amount}${f.tag ? ` ${f.tag}` : ''}`;
    expect(bt.fills.map(shape)).toEqual(['buy 0.01', 'sell 0.00999 stop-loss']);
    expect((await store.fills.since('xr', 0)).map(shape)).toEqual(bt.fills.map(shape));
    await store.close();
  }, 60_000);
});
