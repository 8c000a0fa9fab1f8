// A built-in strategy trading live on Binance spot with Binance's default fees: 0.1 %, taken in
// the coin bought on a buy. Each exit can only sell down to the step and leaves dust; the strategy
// must see dust as flat and keep trading. Oracle: the backtest of the same bars with the same
// market filters and fees in the base asset, and the simulator's own records.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { backtestOfRun, KEY, MIN, realCandles, runThrough, simBars, startLiveBot } from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('live round trips with fees');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-round-trips-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.skipIf(!HAS_SHARED_DATA)('round trips with fees taken in the coin (real ccxt, loopback)', () => {
  it('sma-cross keeps trading: at least 10 round trips in a row, the fills of the backtest of the same bars, dust shown', async () => {
    const N = 260;
    // Real candles; the volume scaled up so that the simulator's book (sized from the bar's volume)
    // fills each order at the open in one level, as the backtest does.
    const bars = simBars(realCandles(N)).map((b) => ({ ...b, volume: b.volume * 100 }));
    const params = { fast: 2, slow: 6 };
    const store = await openStore({ url: `sqlite:${path.join(dir, 'rt.db')}`, synchronous: 'NORMAL' });
    // No spread and no volume cap: a market order fills at the next open, whole, as in the backtest.
    const run = await startLiveBot({
      bars,
      strategy: getStrategy('sma-cross'),
      store,
      balances: { USDT: 10_000 },
      sim: { liquidity: { spreadTicks: 0, participation: 1 } },
      bot: { params },
    });
    const { report, refused } = await runThrough(run, N);
    expect(refused, 'orders denied or rejected').toEqual([]);
    const trades = run.bot.botEngine.closedTrades();
    expect(trades.length).toBeGreaterThanOrEqual(10);

    // Every exchange order is the bot's, each entry followed by one exit.
    const orders = run.sim.getOrders(KEY.apiKey);
    expect(orders.every((o, i) => o.side === (i % 2 === 0 ? 'BUY' : 'SELL'))).toBe(true);
    expect(orders.every((o) => o.status === 'FILLED')).toBe(true);

    // The backtest of the same bars: same market filters, each fee in the asset received.
    const bt = backtestOfRun(run, bars, getStrategy('sma-cross'), params, {
      fee: 0.001,
      feeAsset: 'received', // Binance spot's rule: BTC on a buy, USDT on a sell
    });
    expect(bt.trades.length).toBe(trades.length);
    const fills = await store.fills.since('lt', 0);
    // A live fill is stamped with the exchange's time (the open of the bar it fills in), a
    // backtest fill with that bar's close.
    const shape = (f: { side: string; time: number; price: number }, shift = 0) =>
      `${f.side} ${f.time + shift} ${f.price}`;
    expect(fills.map((f) => shape(f, MIN))).toEqual(bt.fills.map((f) => shape(f)));
    expect(fills.map((f) => f.amount)).toEqual(bt.fills.map((f) => f.amount));
    // Fees in the asset received, as the exchange charged them (it rounds to 8 decimals).
    for (const [i, f] of fills.entries()) {
      expect(f.feeAsset).toBe(bt.fills[i]!.feeAsset);
      expect(f.fee).toBeCloseTo(bt.fills[i]!.fee, 8);
    }

    // The dust the exits left is what the exchange holds in BTC, shown in the report; the books
    // equal the exchange's.
    const simBal = run.sim.getBalances(KEY.apiKey);
    const btc = (simBal.BTC?.free ?? 0) + (simBal.BTC?.locked ?? 0);
    const held = run.bot.account.find('BTC/USDT')?.size ?? 0;
    expect(held).toBeCloseTo(btc, 8);
    if (orders.at(-1)?.side === 'SELL') {
      expect(btc).toBeGreaterThan(0);
      expect(btc).toBeLessThan(1e-5); // less than a step: what no order can sell
      expect(report.dust['BTC/USDT']).toBeCloseTo(btc, 8);
    }
    const local = Object.fromEntries((await store.balances.load('lt')).map((b) => [b.asset, b.total]));
    expect(local.USDT).toBeCloseTo((simBal.USDT?.free ?? 0) + (simBal.USDT?.locked ?? 0), 6);
    expect(local.BTC ?? 0).toBeCloseTo(btc, 8);
    await store.close();
  }, 180_000);
});
