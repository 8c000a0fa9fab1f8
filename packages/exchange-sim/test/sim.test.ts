import path from 'node:path';
import { PassThrough } from 'node:stream';
import ccxt from 'ccxt';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../test-support/shared.ts';
import { ccxtConfigFor, type ExchangeSim, runExchangeSimCli, startExchangeSim } from '../src/index.ts';
import { MIN, stairBars, T0 } from './helpers.ts';

const FIXTURE = path.join(REPO_ROOT, 'fixtures/exchange-sim/stairs_1m.csv');

describe('ExchangeSim', () => {
  it('replays at `speed` x wall time when asked (and only when asked)', async () => {
    const fast = await startExchangeSim({ markets: [{ symbol: 'BTC/USDT', bars: stairBars() }], speed: 600 });
    const manual = await startExchangeSim({ markets: [{ symbol: 'BTC/USDT', bars: stairBars() }] });
    try {
      await new Promise((r) => setTimeout(r, 400));
      expect(fast.now() - T0).toBeGreaterThanOrEqual(2 * MIN); // 600x: a minute per 100 ms
      expect(manual.now()).toBe(T0);
    } finally {
      await fast.close();
      await manual.close();
    }
  });

  it('in speed mode ccxt.pro receives klines without any stepping', async () => {
    const sim = await startExchangeSim({ markets: [{ symbol: 'BTC/USDT', bars: stairBars() }], speed: 600 });
    const pro = new ccxt.pro.binance(ccxtConfigFor(sim));
    try {
      const candles = await pro.watchOHLCV('BTC/USDT', '1m');
      expect(candles.at(-1)?.[0]).toBeGreaterThanOrEqual(T0);
      const later = await pro.watchOHLCV('BTC/USDT', '1m');
      expect(later.at(-1)?.[0]).toBeGreaterThanOrEqual(candles.at(-1)?.[0] ?? 0);
    } finally {
      await pro.close();
      await sim.close();
    }
  });

  it('replays seeded synthetic bars for a market given no data (same seed, same bars)', async () => {
    const a = await startExchangeSim({ markets: [{ symbol: 'BTC/USDT' }] });
    const b = await startExchangeSim({ markets: [{ symbol: 'BTC/USDT' }] });
    const ex = new ccxt.binance(ccxtConfigFor(a));
    try {
      a.step(30);
      b.step(30);
      expect(a.price('BTC/USDT')).toBe(b.price('BTC/USDT'));
      const candles = await ex.fetchOHLCV('BTC/USDT', '1m', undefined, 10);
      expect(candles).toHaveLength(10);
      expect(candles[0]?.[0]).toBe(Date.UTC(2024, 0, 1, 0, 21));
    } finally {
      await ex.close();
      await a.close();
      await b.close();
    }
  });

  it('rejects inconsistent bars with the market named', async () => {
    await expect(
      startExchangeSim({
        markets: [{ symbol: 'X/USDT', bars: [{ time: 0, open: 10, high: 9, low: 8, close: 10, volume: 1 }] }],
      }),
    ).rejects.toThrow(/X\/USDT.*inconsistent OHLC/);
  });

  it('keeps accounts apart; addAccount works on a running sim', async () => {
    const sim = await startExchangeSim({
      markets: [{ symbol: 'ETH/USDT', bars: stairBars(), stepSize: 0.001, minNotional: 1 }],
      accounts: [{ apiKey: 'alice', secret: 'a', balances: { USDT: 1000 } }],
      startTime: T0 + 5 * MIN,
    });
    sim.addAccount({ apiKey: 'bob', secret: 'b', balances: { ETH: 2 } });
    const alice = new ccxt.binance(ccxtConfigFor(sim, { apiKey: 'alice', secret: 'a' }));
    const bob = new ccxt.binance(ccxtConfigFor(sim, { apiKey: 'bob', secret: 'b' }));
    try {
      await alice.createOrder('ETH/USDT', 'limit', 'buy', 1, 100);
      await bob.createOrder('ETH/USDT', 'limit', 'sell', 1, 120);
      expect(sim.getOrders('alice').map((o) => o.side)).toEqual(['BUY']);
      expect(sim.getOrders('bob').map((o) => o.side)).toEqual(['SELL']);
      expect(sim.getBalances('alice').USDT).toEqual({ free: 900, locked: 100 });
      expect(sim.getBalances('bob').ETH).toEqual({ free: 1, locked: 1 });
      expect(await bob.fetchOpenOrders('ETH/USDT')).toHaveLength(1);
    } finally {
      await alice.close();
      await bob.close();
      await sim.close();
    }
  });
});

describe('keel exchange-sim (runExchangeSimCli)', () => {
  it('--help documents markets, accounts and faults', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    await runExchangeSimCli(['--help'], { out });
    for (const word of [
      '--data',
      '--symbol',
      '--speed',
      '--api-key',
      'Markets:',
      'Accounts:',
      'Faults',
      'rateLimitStorm',
    ])
      expect(text).toContain(word);
  });

  it('serves a CSV file, prints generated credentials that work with ccxt, and stops on abort', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const ac = new AbortController();
    let sim: ExchangeSim | undefined;
    const running = runExchangeSimCli(
      ['--data', FIXTURE, '--symbol', 'SOL/USDT', '--port', '0', '--speed', '0', '--balance', 'USDT=500'],
      {
        out,
        signal: ac.signal,
        onStarted: (s) => (sim = s),
      },
    );
    try {
      await expect.poll(() => sim !== undefined).toBe(true);
      const apiKey = /api key: (\S+)/.exec(text)?.[1];
      const secret = /secret: {2}(\S+)/.exec(text)?.[1];
      expect(apiKey && secret).toBeTruthy();
      const ex = new ccxt.binance(ccxtConfigFor(sim!, { apiKey: apiKey!, secret: secret! }));
      try {
        expect((await ex.fetchBalance()).USDT?.free).toBe(500);
        expect((await ex.fetchOHLCV('SOL/USDT', '1m'))[0]?.[1]).toBe(100);
      } finally {
        await ex.close();
      }
    } finally {
      ac.abort();
      await running;
    }
  });

  it('refuses to start without --data', async () => {
    await expect(runExchangeSimCli([])).rejects.toThrow(/--data/);
  });
});
