// The live port's USD-M account read (`LiveFutures.account`) over real ccxt binanceusdm against the
// futures simulator: the position, leverage and margin mode of every symbol of the bot from one
// positionRisk request (Binance lists every contract when no symbol is given, at the weight of
// one), not one request per symbol. Oracle: the simulator's request count and its own account.
import { startExchangeSim } from '@keel/exchange-sim';
import { describe, expect, it } from 'vitest';
import { connectExchange } from '../src/index.ts';

describe('USD-M account read: one positionRisk request for every symbol', () => {
  it('two perpetuals, each with its own leverage and margin mode, from one request', async () => {
    const KEY = { apiKey: 'acct-key', secret: 'acct-secret' };
    const sim = await startExchangeSim({
      market: 'futures',
      markets: [{ symbol: 'LINK/USDT' }, { symbol: 'ETH/USDT' }],
      accounts: [{ ...KEY, balances: { USDT: 1_000 } }],
    });
    const conn = await connectExchange({
      exchange: 'binanceusdm',
      url: sim.httpUrl,
      ...KEY,
      botId: 'acct',
      symbols: ['LINK/USDT:USDT', 'ETH/USDT:USDT'],
      log: () => {},
      streamCache: false,
    });
    try {
      const futures = conn.live.futures!;
      await futures.setLeverage('ETH/USDT:USDT', 5);
      await futures.setMarginMode('ETH/USDT:USDT', 'isolated');
      const before = sim.requestCounts()['GET /fapi/v2/positionRisk'] ?? 0;
      const acct = await futures.account(['LINK/USDT:USDT', 'ETH/USDT:USDT']);
      expect((sim.requestCounts()['GET /fapi/v2/positionRisk'] ?? 0) - before).toBe(1);
      expect(acct.positionMode).toBe('one-way');
      expect(acct.wallet).toEqual({ USDT: 1_000 });
      expect(acct.positions).toEqual([
        { symbol: 'LINK/USDT:USDT', size: 0, entryPrice: 0, leverage: 20, marginMode: 'cross', isolatedWallet: 0 },
        { symbol: 'ETH/USDT:USDT', size: 0, entryPrice: 0, leverage: 5, marginMode: 'isolated', isolatedWallet: 0 },
      ]);
      const sims = sim.futuresAccount(KEY.apiKey).positions;
      for (const [symbol, id] of [
        ['LINK/USDT:USDT', 'LINKUSDT'],
        ['ETH/USDT:USDT', 'ETHUSDT'],
      ] as const) {
        const p = sims.find((x) => x.position.symbol === id);
        expect(acct.positions.find((x) => x.symbol === symbol)).toMatchObject({
          leverage: p?.leverage,
          marginMode: p?.marginType === 'ISOLATED' ? 'isolated' : 'cross',
        });
      }
    } finally {
      await conn.close();
      await sim.close();
    }
  }, 30_000);
});
