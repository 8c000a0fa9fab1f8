import ccxt from 'ccxt';
import { afterEach, describe, expect, it } from 'vitest';
import { faultCli as fault, type Harness, harness, KEY, rejectionOf } from './helpers.ts';

// A spot pair halted as Binance delists one (exchangeInfo status BREAK, new orders refused with
// {"code":-1013,"msg":"Market is closed."}, which ccxt maps to MarketClosed; open orders cancelled
// by the exchange; the coins stay) and trading resumed (TRADING again), through the real ccxt
// client, in process (`sim.delist`, `sim.relist`) and over the admin endpoint (`fault delist`,
// `fault relist`). Stair bars; the clock at bar 10's open (110).

type Raw = Record<string, unknown>;

const statusOf = async (h: Harness) =>
  ((await h.ex.publicGetExchangeInfo({ symbol: 'BTCUSDT' })) as { symbols: Raw[] }).symbols.find(
    (x) => x.symbol === 'BTCUSDT',
  )?.status;

describe('spot simulator: a pair halted (delisted) and resumed', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('in process: BREAK, orders refused (MarketClosed), open orders cancelled with their stream update, coins kept; relist: TRADING, orders taken', async () => {
    h = await harness();
    const { sim, ex } = h;
    const pro = h.pro();
    await ex.createOrder('BTC/USDT', 'limit', 'sell', 0.5, 150, { clientOrderId: 'tp-1' });
    expect(sim.getBalances(KEY.apiKey).BTC).toEqual({ free: 0.5, locked: 0.5 });
    expect(await statusOf(h)).toBe('TRADING');

    const update = pro.watchOrders('BTC/USDT');
    await sim.waitForSubscription(`user:${KEY.apiKey}`);
    // A round trip after the subscription: ccxt is listening by then.
    expect((await ex.fetchOpenOrders('BTC/USDT')).map((o) => o.clientOrderId)).toEqual(['tp-1']);
    expect(sim.delist('BTC/USDT')).toEqual([]);
    // The exchange's cancel, as the user-data stream reports it.
    expect((await update).find((o) => o.clientOrderId === 'tp-1')?.status).toBe('canceled');
    expect(await statusOf(h)).toBe('BREAK');
    expect(sim.getOrders(KEY.apiKey).map((o) => [o.clientOrderId, o.status])).toEqual([['tp-1', 'CANCELED']]);
    // The coins stay, unlocked.
    expect(sim.getBalances(KEY.apiKey).BTC).toEqual({ free: 1, locked: 0 });
    const refused = await rejectionOf(ex.createOrder('BTC/USDT', 'market', 'sell', 0.1));
    expect(refused).toBeInstanceOf(ccxt.MarketClosed);
    expect(refused.message).toBe('binance Market is closed.'); // ccxt's message for {"code":-1013,"msg":"Market is closed."}
    expect(() => sim.delist('BTC/USDT')).toThrow('halted already');
    expect(() => sim.delist('BTC/USDT', { price: 100 })).toThrow('no settlement');

    sim.relist('BTC/USDT');
    expect(await statusOf(h)).toBe('TRADING');
    const o = await ex.createOrder('BTC/USDT', 'market', 'sell', 0.1);
    expect(o.status).toBe('closed');
    expect(() => sim.relist('BTC/USDT')).toThrow('not halted');
  });

  it('over the admin endpoint: fault delist / relist, said in one line; refusals exit 1 with the reason', async () => {
    h = await harness({ admin: true });
    const { sim, ex } = h;
    await ex.createOrder('BTC/USDT', 'limit', 'buy', 0.5, 90);
    const delist = await fault(sim.port, ['delist', '--symbol', 'BTC/USDT']);
    expect(delist).toMatchObject({ code: 0, err: '' });
    expect(delist.out).toContain(
      'BTC/USDT halted (status BREAK, new orders refused with -1013 "Market is closed."); 1 open order cancelled by the exchange; the coins stay in the accounts',
    );
    expect(await statusOf(h)).toBe('BREAK');
    expect(sim.getBalances(KEY.apiKey).USDT).toEqual({ free: 10_000, locked: 0 });
    const settle = await fault(sim.port, ['delist', '--symbol', 'BTC/USDT', '--price', '100']);
    expect(settle.code).toBe(1);
    expect(settle.err).toContain('no settlement');
    const again = await fault(sim.port, ['delist', '--symbol', 'BTCUSDT']);
    expect(again.code).toBe(1);
    expect(again.err).toContain('halted already');
    const relist = await fault(sim.port, ['relist', '--symbol', 'BTCUSDT']);
    expect(relist).toMatchObject({ code: 0, err: '' });
    expect(relist.out).toContain('BTCUSDT trading again (status TRADING)');
    expect(await statusOf(h)).toBe('TRADING');
  });
});
