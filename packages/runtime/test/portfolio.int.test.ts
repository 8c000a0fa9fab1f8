import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineStrategy, type Fill } from '@keel/core';
import { startExchangeSim } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { orderOwner, placedOrder, portfolioOf, reconcileBooks } from '../src/index.ts';
import { formatPortfolio } from '../src/portfolio-cli.ts';
import { noParams } from './fixtures/strategies.ts';
import { KEY, MIN, startLiveBot, T0 } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-portfolio-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const fill = (o: Partial<Fill> & Pick<Fill, 'symbol' | 'fee' | 'feeAsset'>, i: number): Fill =>
  ({
    orderId: `o${i}`,
    tradeId: `t${i}`,
    side: 'buy',
    price: 1,
    amount: 1,
    liquidity: 'taker',
    time: T0,
    ...o,
  }) as Fill;

describe('portfolio accounting from the store', () => {
  it('per bot, per exchange and in total: average cost, realised and unrealised PnL, fees in any asset at the mark, equity in USDT (oracle: computed by hand)', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'books.db')}` });
    // p1, paper on BTC/USDT: 5,000 USDT and 0.1 BTC bought at 40,000 on average; realised 100;
    // fees 2 USDT and 0.0001 BTC. The last BTC/USDT close any bot saw: 50,000.
    await store.bots.create({
      id: 'p1',
      strategy: 's',
      params: {},
      mode: 'paper',
      exchange: 'simulated',
      symbols: ['BTC/USDT'],
    });
    await store.balances.save('p1', [
      { asset: 'USDT', free: 5_000, used: 0, total: 5_000 },
      { asset: 'BTC', free: 0.1, used: 0, total: 0.1 },
    ]);
    await store.positions.save('p1', { symbol: 'BTC/USDT', size: 0.1, avgPrice: 40_000, realizedPnl: 100 });
    await store.fills.record('p1', fill({ symbol: 'BTC/USDT', fee: 2, feeAsset: 'USDT' }, 1));
    await store.fills.record('p1', fill({ symbol: 'BTC/USDT', fee: 0.0001, feeAsset: 'BTC' }, 2));
    await store.barLog.record('p1', 'BTC/USDT@1m', [
      { time: T0, open: 1, high: 1, low: 1, close: 49_000, volume: 1 },
      { time: T0 + MIN, open: 1, high: 1, low: 1, close: 50_000, volume: 1 },
    ]);
    // l1, live on Binance, ETH/BTC (its books in BTC): 1 BTC and 2 ETH at 0.05; realised 0.01 BTC;
    // fees 0.0005 BTC and 0.001 BNB (no BNB price anywhere: named, left out). ETH/BTC last 0.06.
    await store.bots.create({
      id: 'l1',
      strategy: 's',
      params: {},
      mode: 'live',
      exchange: 'binance',
      symbols: ['ETH/BTC'],
    });
    await store.balances.save('l1', [
      { asset: 'BTC', free: 1, used: 0, total: 1 },
      { asset: 'ETH', free: 2, used: 0, total: 2 },
    ]);
    await store.positions.save('l1', { symbol: 'ETH/BTC', size: 2, avgPrice: 0.05, realizedPnl: 0.01 });
    await store.fills.record('l1', fill({ symbol: 'ETH/BTC', fee: 0.0005, feeAsset: 'BTC' }, 3));
    await store.fills.record('l1', fill({ symbol: 'ETH/BTC', fee: 0.001, feeAsset: 'BNB' }, 4));
    await store.barLog.record('l1', 'ETH/BTC@1m', [{ time: T0, open: 1, high: 1, low: 1, close: 0.06, volume: 1 }]);

    const r = await portfolioOf(store, { currency: 'USDT' });
    const p1 = r.bots.find((b) => b.id === 'p1')!;
    const l1 = r.bots.find((b) => b.id === 'l1')!;
    const close = (got: number, want: number) => expect(got).toBeCloseTo(want, 9);
    // p1: equity 5,000 + 0.1 x 50,000; unrealised 0.1 x (50,000 - 40,000); fees 2 + 0.0001 x 50,000.
    expect(p1.positions).toMatchObject([
      { symbol: 'BTC/USDT', size: 0.1, avgCost: 40_000, mark: 50_000, realizedPnl: 100 },
    ]);
    close(p1.totals.equity, 10_000);
    close(p1.totals.unrealizedPnl, 1_000);
    close(p1.totals.realizedPnl, 100);
    close(p1.totals.fees, 7);
    close(p1.totals.realizedPnlNet, 93);
    expect(p1.feesByAsset).toEqual({ BTC: 0.0001, USDT: 2 });
    // l1 in USDT through BTC/USDT 50,000: equity (1 + 2 x 0.06) BTC = 56,000; unrealised
    // 2 x 0.01 BTC = 1,000; realised 0.01 BTC = 500; fees 0.0005 BTC = 25.
    expect(l1.currency).toBe('BTC');
    close(l1.totals.equity, 56_000);
    close(l1.totals.unrealizedPnl, 1_000);
    close(l1.totals.realizedPnl, 500);
    close(l1.totals.fees, 25);
    expect(l1.unvalued).toEqual(['fees: 0.001 BNB (no BNB/USDT price)']);
    expect(r.unvalued).toEqual(['l1: fees: 0.001 BNB (no BNB/USDT price)']);
    close(r.byExchange.simulated!.equity, 10_000);
    close(r.byExchange.binance!.equity, 56_000);
    close(r.total.equity, 66_000);
    close(r.total.fees, 32);
    close(r.total.realizedPnlNet, 568);
    expect(r.asOf).toBe(new Date(T0 + 2 * MIN).toISOString());
    const text = formatPortfolio(r);
    expect(text).toMatch(/total +66000\.00 +600\.00 +2000\.00 +32\.00 +568\.00/);
    expect(text).toMatch(/Not valued \(no price in USDT; left out of the totals\)\n {2}l1: fees: 0\.001 BNB/);
    await store.close();
  });

  it('reconcile: the bot’s books against the exchange account; the user’s own coins are named, not a difference; coins sold outside the bot are (real ccxt, loopback)', async () => {
    const bars = Array.from({ length: 20 }, (_, i) => ({
      time: T0 + i * MIN,
      open: 40_000,
      high: 40_010,
      low: 39_990,
      close: 40_000,
      volume: 50,
    }));
    const sim = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars }],
      accounts: [{ ...KEY, balances: { USDT: 10_000, BTC: 1 } }],
      startTime: T0,
    });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'rec.db')}`, synchronous: 'NORMAL' });
    // Buys 0.05 on its 2nd bar, and rests a buy limit far below on its 3rd.
    const strategy = defineStrategy({
      name: 'buy-and-rest',
      params: noParams,
      warmup: 'none',
      onStart: () => ({ n: 0 }),
      onBar(ctx, s: { n: number }) {
        s.n++;
        if (s.n === 2) ctx.buy(0.05);
        if (s.n === 3) ctx.submit({ type: 'limit', side: 'buy', amount: 0.01, price: 30_000 });
      },
    });
    const run = await startLiveBot({ exchange: sim, store, strategy, botId: 'rec' });
    const own = { isOwnOrder: (id: string) => orderOwner('rec', id) === 'this-bot' };
    try {
      for (let k = 0; k < 5; k++) await run.step();
      const first = await reconcileBooks(store, 'rec', run.conn.live, own);
      const btc = first.items.find((i) => i.asset === 'BTC');
      // Bought 0.05 with the fee (0.1 %) taken in BTC: the bot holds 0.04995, the account 1.04995.
      expect(btc?.kind).toBe('not-the-bots');
      expect(btc?.books).toBeCloseTo(0.04995, 12);
      expect(btc?.exchange).toBeCloseTo(1.04995, 12);
      expect(btc?.detail).toMatch(/are not the bot's \(the user's own, or another bot's\)/);
      expect(first.items.filter((i) => i.kind === 'order-equal')).toHaveLength(1);
      expect(first.differences).toBe(0);
      // The user sells 1.04 BTC by hand: 0.00995 is left, 0.04 less than the bot's 0.04995.
      placedOrder(
        await run.conn.live.placeOrder({
          id: 'manual-sell' as never,
          symbol: 'BTC/USDT',
          side: 'sell',
          type: 'market',
          amount: 1.04,
        } as never),
      );
      await run.step();
      const second = await reconcileBooks(store, 'rec', run.conn.live, own);
      const missing = second.items.find((i) => i.asset === 'BTC');
      expect(missing?.kind).toBe('missing-on-exchange');
      expect(missing?.books).toBeCloseTo(0.04995, 12);
      expect(missing?.exchange).toBeCloseTo(0.00995, 12);
      expect(missing?.detail).toMatch(/0\.0(4|3999)\d* BTC were moved, sold or lost outside the bot/);
      expect(second.differences).toBe(1);
    } finally {
      await run.close();
      await sim.close();
      await store.close();
    }
  }, 60_000);
});
