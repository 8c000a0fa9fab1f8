// A live bot halted by its risk engine, crashed (kill -9: no shutdown, no final save) and
// restarted against the same exchange account: the halt is restored before the first bar and
// denies the next entry; nothing is sent for it. Real ccxt client over loopback.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineStrategy, parseRiskConfig, type RiskConfig } from '@keel/core';
import { startExchangeSim } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { noParams } from './fixtures/strategies.ts';
import { KEY, MIN, startLiveBot, T0, until } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-risk-live-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** By the bar's index: buys 0.01 on bar 1, closes on bar 3, buys again on bar 6. */
const script = defineStrategy({
  name: 'buy-close-buy',
  params: noParams,
  warmup: 'none',
  onStart: () => ({}),
  onBar(ctx, _s, bar) {
    const n = Math.round((bar.time - T0) / MIN);
    if (n === 1 || n === 6) ctx.buy(0.01);
    if (n === 3) ctx.close();
  },
});

// 40,000 until bar 2, then 39,800: the round trip (in at 40,000, out at 39,800) loses.
const closes = [40_000, 40_000, 40_000, 39_800, 39_800, 39_800, 39_800, 39_800, 39_800, 39_800];
const bars = closes.map((c, i) => {
  const o = i === 0 ? c : closes[i - 1]!;
  return { time: T0 + i * MIN, open: o, high: Math.max(o, c) + 5, low: Math.min(o, c) - 5, close: c, volume: 50 };
});

const parsed = parseRiskConfig({ risk: ['max-losses=1'] });
if (!parsed.ok) throw new Error(parsed.error.message);
const risk: RiskConfig = parsed.config;

describe('a live bot’s risk halt across a crash (real ccxt, loopback)', () => {
  it('max-losses=1 halts at the losing exit’s fill; after kill -9 and a restart the next entry is denied and never sent', async () => {
    const sim = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars }],
      accounts: [{ ...KEY, balances: { USDT: 10_000 } }],
      startTime: T0,
      liquidity: { spreadTicks: 0 },
    });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'live.db')}`, synchronous: 'NORMAL' });
    const logs: string[] = [];
    const log = (_l: string, m: string) => void logs.push(m);
    const first = await startLiveBot({
      exchange: sim,
      store,
      strategy: script,
      botId: 'rl',
      log,
      bot: { risk, lockTtlMs: 150 },
    });
    try {
      for (let k = 0; k < 5; k++) await first.step();
      await until(() => first.events.some((e) => e.type === 'risk.halt'), 10_000, 'the halt');
      await first.bot.settled();
    } finally {
      first.bot.abandon(); // kill -9
      await first.conn.close();
    }
    expect(first.events.find((e) => e.type === 'risk.halt')).toMatchObject({
      halt: { rule: 'max-losses', until: null },
    });
    await new Promise((r) => setTimeout(r, 200)); // the crashed holder's lock times out

    const second = await startLiveBot({
      exchange: sim,
      store,
      strategy: script,
      botId: 'rl',
      log,
      bot: { risk, lockTtlMs: 150 },
    });
    try {
      expect(logs.some((m) => /still halted after the restart: max-losses on account/.test(m))).toBe(true);
      for (let k = 0; k < 3; k++) await second.step();
    } finally {
      await second.close();
      await sim.close();
    }
    const denied = second.events.filter((e) => e.type === 'order.denied');
    expect(denied).toMatchObject([
      { denial: { rule: 'max-losses' }, order: { request: { side: 'buy', amount: 0.01 } } },
    ]);
    // On the exchange: the entry and the exit of the first run, nothing after the halt.
    expect(sim.getOrders(KEY.apiKey).map((o) => `${o.side} ${o.status}`)).toEqual(['BUY FILLED', 'SELL FILLED']);
    expect((await store.risk.load('rl'))?.denied).toEqual({ 'max-losses': 1 });
    await store.close();
  }, 60_000);
});
