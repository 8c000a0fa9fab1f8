import { Agent, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as ccxt from 'ccxt';
import { describe, expect, it } from 'vitest';
import { binanceUrlsAt, connectExchange } from '../src/live/ccxt.ts';
import { FEED, fastConnect, KEY, MIN, startSim, T0 } from './live-harness.ts';

// A spot bot on Binance proper (no --exchange-url): ccxt's binance would load the USDⓈ-M and COIN-M
// markets and, with keys, the currencies (sapi) at every start. Where those answer 451 (a
// restricted location) or are down, the spot bot could not start. Real ccxt client: the spot API
// is the simulator on loopback, every derivatives and sapi URL a server answering 451.
describe('a spot connection loads the spot markets only (real ccxt, loopback)', () => {
  it('starts, reads its market and balance, and never calls fapi, dapi, eapi or sapi', async () => {
    const bars = Array.from({ length: 5 }, (_, i) => {
      const o = 40_000 + i;
      return { time: T0 + i * MIN, open: o, high: o + 5, low: o - 5, close: o + 1, volume: 10 };
    });
    const sim = await startSim({ bars, balances: { USDT: 1_000 } });
    const blocked: string[] = [];
    const wall = createServer((req, res) => {
      blocked.push(req.url ?? '');
      res.writeHead(451, { 'content-type': 'application/json' });
      res.end(
        '{"code":0,"msg":"Service unavailable from a restricted location according to b. Eligibility in https://www.binance.com/en/terms."}',
      );
    });
    await new Promise<void>((r) => wall.listen(0, '127.0.0.1', r));
    const wallUrl = `http://127.0.0.1:${(wall.address() as AddressInfo).port}`;
    const api = (binanceUrlsAt(sim.httpUrl) as { urls: { api: Record<string, unknown> } }).urls.api;
    const elsewhere = Object.fromEntries(
      Object.keys(new ccxt.binance().urls.api as object)
        .filter((k) => /^(fapi|dapi|eapi|sapi|papi)/.test(k))
        .map((k) => [k, `${wallUrl}/${k}`]),
    );
    const base = fastConnect(sim.httpUrl, KEY, 'spot-only', () => {});
    const { url: _url, ...noUrl } = base;
    const conn = await connectExchange({
      ...noUrl,
      ccxtOptions: {
        ...base.ccxtOptions,
        httpAgent: new Agent({ keepAlive: false }),
        urls: { api: { ...api, ...elsewhere } },
      },
    });
    try {
      const instrument = await conn.instrument(FEED.symbol);
      expect(instrument.symbol).toBe(FEED.symbol);
      const balances = await conn.live.fetchBalances();
      expect(balances.USDT?.free).toBe(1_000);
      expect(blocked).toEqual([]);
    } finally {
      await conn.close();
      await sim.close();
      await new Promise<void>((r) => wall.close(() => r()));
    }
  }, 60_000);
});
