// Binance spot's "use BNB to pay fees" on the simulator, through the real ccxt binance client over
// loopback. Oracle: hand-computed commissions by Binance's rule (the standard commission on what
// the fill is worth, 75 % of it, converted at the BNB/USDT price, 8 decimals), and the rule's own
// fallback (BNB short: the full commission in the asset received).
import path from 'node:path';
import { PassThrough } from 'node:stream';
import ccxt from 'ccxt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../test-support/shared.ts';
import { ccxtConfigFor, type ExchangeSim, runExchangeSimCli, startExchangeSim } from '../src/index.ts';
import { type Harness, harness, KEY, rejectionOf, stairBars, watchUntil } from './helpers.ts';

/** BNB/USDT bars: open 250 + i, so BNB is worth 260 USDT at the start (bar 10), as BTC/USDT is 110. */
function bnbBars() {
  return stairBars(60).map((b, i) => ({ ...b, open: 250 + i, high: 252 + i, low: 248 + i, close: 251 + i }));
}

const SHORT = { apiKey: 'short-bnb', secret: 's2' };
const PLAIN = { apiKey: 'no-bnb', secret: 's3' };

describe('BNB fee discount (payFeesWithBnb) through ccxt', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({
      markets: [
        { symbol: 'BTC/USDT', bars: stairBars(), stepSize: 0.001, minNotional: 1 },
        { symbol: 'BNB/USDT', bars: bnbBars(), stepSize: 0.001, minNotional: 1 },
      ],
      accounts: [
        { ...KEY, balances: { USDT: 10_000, BTC: 1, BNB: 1 }, payFeesWithBnb: true },
        { ...SHORT, balances: { USDT: 10_000, BNB: 0.0003 }, payFeesWithBnb: true },
        { ...PLAIN, balances: { USDT: 10_000, BNB: 1 } },
      ],
      // One level holding the bar's whole volume, no spread: a market order fills at the last price.
      liquidity: { participation: 1, bookLevels: 1, spreadTicks: 0 },
    });
  });
  afterAll(async () => {
    await h.close();
  });

  it('a market buy pays 0.0825 USDT of commission as 0.00031731 BNB and keeps all the BTC bought', async () => {
    const o = await h.ex.createOrder('BTC/USDT', 'market', 'buy', 1);
    // 1 x 110 x 0.001 x 0.75 / 260 = 0.000317307... -> 8 decimals.
    expect(o.trades.map((t) => [t.price, t.amount, t.fee?.currency, t.fee?.cost])).toEqual([
      [110, 1, 'BNB', 0.00031731],
    ]);
    expect(o.info.fills).toEqual([expect.objectContaining({ commission: '0.00031731', commissionAsset: 'BNB' })]);
    const mine = await h.ex.fetchMyTrades('BTC/USDT');
    expect(mine.at(-1)?.fee).toMatchObject({ currency: 'BNB', cost: 0.00031731 });
    expect(mine.at(-1)?.info).toMatchObject({ commission: '0.00031731', commissionAsset: 'BNB' });
    const b = h.sim.getBalances(KEY.apiKey);
    expect(b.BTC?.free).toBe(2);
    expect(b.USDT?.free).toBe(10_000 - 110);
    expect(b.BNB?.free).toBe(0.99968269);
  });

  it('a sell pays 55 x 0.00075 / 260 = 0.00015865 BNB; the user stream reports it (executionReport N, n)', async () => {
    const pro = h.pro();
    const trades = pro.watchMyTrades('BTC/USDT');
    await h.sim.waitForSubscription(`user:${KEY.apiKey}`);
    const balance = pro.watchBalance();
    await h.ex.createOrder('BTC/USDT', 'market', 'sell', 0.5);
    const got = await watchUntil(
      async () => [...(await trades)],
      (ts) => ts.some((t) => t.side === 'sell'),
    );
    const sell = got.find((t) => t.side === 'sell');
    expect(sell?.fee).toMatchObject({ currency: 'BNB', cost: 0.00015865 });
    expect(sell?.info).toMatchObject({ N: 'BNB', n: '0.00015865' });
    const b = await balance;
    expect(b.BNB?.free).toBeCloseTo(0.99968269 - 0.00015865, 8);
    expect(h.sim.getBalances(KEY.apiKey).USDT?.free).toBe(10_000 - 110 + 55);
    expect(h.sim.getBalances(KEY.apiKey).BTC?.free).toBe(1.5);
  });

  it('BNB short of the commission: the full commission in the asset received, then BNB again once it covers one', async () => {
    const ex = h.rest(SHORT);
    // 1 x 110 x 0.00075 / 260 = 0.00031731 BNB > 0.0003 held: 0.001 BTC taken from the BTC bought.
    const first = await ex.createOrder('BTC/USDT', 'market', 'buy', 1);
    expect(first.trades[0]?.fee).toMatchObject({ currency: 'BTC', cost: 0.001 });
    expect(h.sim.getBalances(SHORT.apiKey).BTC?.free).toBe(0.999);
    expect(h.sim.getBalances(SHORT.apiKey).BNB?.free).toBe(0.0003);
    // A smaller fill whose commission it covers: 0.5 x 110 x 0.00075 / 260 = 0.00015865 BNB.
    const second = await ex.createOrder('BTC/USDT', 'market', 'buy', 0.5);
    expect(second.trades[0]?.fee).toMatchObject({ currency: 'BNB', cost: 0.00015865 });
    expect(h.sim.getBalances(SHORT.apiKey).BNB?.free).toBe(0.00014135);
    expect(h.sim.getBalances(SHORT.apiKey).BTC?.free).toBe(1.499);
  });

  it('an account without the setting pays in the asset received, BNB or not', async () => {
    const ex = h.rest(PLAIN);
    const o = await ex.createOrder('BTC/USDT', 'market', 'buy', 1);
    expect(o.trades[0]?.fee).toMatchObject({ currency: 'BTC', cost: 0.001 });
    expect(h.sim.getBalances(PLAIN.apiKey).BNB?.free).toBe(1);
  });

  it('commission endpoint and sapi bnbBurn say whether the account pays with BNB; POST bnbBurn switches it', async () => {
    const ex = h.rest(PLAIN);
    const discount = async (c: InstanceType<typeof ccxt.binance>) =>
      ((await c.privateGetAccountCommission({ symbol: 'BTCUSDT' })) as { discount: unknown }).discount;
    expect(await discount(h.ex)).toEqual({
      enabledForAccount: true,
      enabledForSymbol: true,
      discountAsset: 'BNB',
      discount: '0.75000000',
    });
    expect(await discount(ex)).toMatchObject({ enabledForAccount: false });
    expect(await ex.sapiGetBnbBurn()).toEqual({ spotBNBBurn: false, interestBNBBurn: false });
    expect(await ex.sapiPostBnbBurn({ spotBNBBurn: 'true' })).toEqual({ spotBNBBurn: true, interestBNBBurn: false });
    expect(await discount(ex)).toMatchObject({ enabledForAccount: true });
    // 0.5 x 110 x 0.00075 / 260 in BNB now.
    const o = await ex.createOrder('BTC/USDT', 'market', 'sell', 0.5);
    expect(o.trades[0]?.fee).toMatchObject({ currency: 'BNB', cost: 0.00015865 });
    await ex.sapiPostBnbBurn({ spotBNBBurn: 'false' });
    const back = await ex.createOrder('BTC/USDT', 'market', 'sell', 0.1);
    expect(back.trades[0]?.fee).toMatchObject({ currency: 'USDT', cost: 0.011 });
  });

  it('the commission follows the BNB price: a bar later BNB is 261, so 1 x 111 x 0.00075 / 261', async () => {
    h.sim.step();
    const o = await h.ex.createOrder('BTC/USDT', 'market', 'buy', 1);
    expect(o.trades[0]?.price).toBe(111);
    // 0.08325 / 261 = 0.000318965... -> 0.00031897
    expect(o.trades[0]?.fee).toMatchObject({ currency: 'BNB', cost: 0.00031897 });
  });
});

describe('payFeesWithBnb needs a BNB market', () => {
  it('refuses to start without BNB/USDT, naming the account and the market to add', async () => {
    const e = await rejectionOf(
      startExchangeSim({
        markets: [{ symbol: 'BTC/USDT', bars: stairBars() }],
        accounts: [{ ...KEY, balances: { USDT: 1_000 }, payFeesWithBnb: true }],
      }),
    );
    expect(e.message).toMatch(/account testkey1 pays its fees in BNB .* no BNB\/USDT market \(needed by BTC\/USDT\)/);
  });

  it('POST bnbBurn is refused without one, and the account keeps paying in the asset received', async () => {
    const h = await harness();
    try {
      const e = await rejectionOf(h.ex.sapiPostBnbBurn({ spotBNBBurn: 'true' }));
      expect(e.message).toMatch(/no BNB\/USDT market/);
      expect(await h.ex.sapiGetBnbBurn()).toMatchObject({ spotBNBBurn: false });
    } finally {
      await h.close();
    }
  });

  it('is a spot setting: the futures simulator refuses it', async () => {
    const e = await rejectionOf(
      startExchangeSim({
        market: 'futures',
        markets: [{ symbol: 'BTC/USDT', bars: stairBars() }],
        accounts: [{ ...KEY, balances: { USDT: 1_000 }, payFeesWithBnb: true }],
      }),
    );
    expect(e.message).toMatch(/payFeesWithBnb is a spot setting/);
  });
});

describe('keel exchange-sim --bnb-fees --bnb-data', () => {
  const FIXTURE = path.join(REPO_ROOT, 'fixtures/exchange-sim/stairs_1m.csv');

  it('serves BNB/USDT beside the market and charges the account in BNB: price x qty x 0.001 x 0.75 / BNB price', async () => {
    const stop = new AbortController();
    let started: (s: ExchangeSim) => void = () => {};
    const listening = new Promise<ExchangeSim>((resolve) => (started = resolve));
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => void (text += d.toString()));
    const running = runExchangeSimCli(
      [
        ...['--data', FIXTURE, '--bnb-data', FIXTURE, '--bnb-fees', '--port', '0', '--speed', '0'],
        ...['--api-key', KEY.apiKey, '--secret', KEY.secret, '--balance', 'USDT=10000,BNB=1'],
      ],
      { out, signal: stop.signal, onStarted: (s) => started(s) },
    );
    const sim = await listening;
    const ex = new ccxt.binance(ccxtConfigFor(sim, KEY));
    try {
      expect(text).toContain('market BNB/USDT from');
      expect(text).toContain('the account pays its fees with BNB');
      const o = await ex.createOrder('BTC/USDT', 'market', 'buy', 0.1);
      const bnbPrice = sim.price('BNB/USDT');
      expect(o.trades.length).toBeGreaterThan(0);
      for (const t of o.trades)
        expect(t.fee).toEqual({
          currency: 'BNB',
          cost:
            Math.round((((t.price ?? Number.NaN) * (t.amount ?? Number.NaN) * 0.001 * 0.75) / bnbPrice) * 1e8) / 1e8,
        });
      expect(sim.getBalances(KEY.apiKey).BTC?.free).toBe(0.1);
    } finally {
      await ex.close();
      stop.abort();
      await running;
    }
  });

  it('--bnb-fees without the BNB market names the option to add', async () => {
    await expect(runExchangeSimCli(['--data', FIXTURE, '--bnb-fees', '--port', '0'])).rejects.toThrow(
      /--bnb-fees prices each commission at the last price of BNB\/USDT: give its candles with --bnb-data/,
    );
    await expect(
      runExchangeSimCli(['--market', 'futures', '--data', FIXTURE, '--bnb-fees', '--port', '0']),
    ).rejects.toThrow(/apply to spot only/);
  });
});
