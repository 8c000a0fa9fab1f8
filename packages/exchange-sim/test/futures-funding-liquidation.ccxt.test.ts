import { readFundingRateFile } from '@keel/candles';
import { afterEach, describe, expect, it } from 'vitest';
import {
  bar,
  type FuturesHarness,
  firstBarDownTo,
  futuresHarness,
  HAS_SHARED_DATA,
  KEY,
  KEY2,
  LINK,
  LINK_FUNDING,
  noteSkip,
} from './futures-helpers.ts';
import { watchUntil } from './helpers.ts';

// Funding on schedule and liquidation, on Binance's LINKUSDT USD-M 1m candles of 2023-02 and
// Binance's own funding archive for the same month, through the real ccxt binanceusdm client
// (REST and ccxt.pro user data). Every expected number is computed by hand below from the
// candles and the funding rows, with Binance's formulas (docs/futures.md).

const T = (h: number, m = 0): number => Date.UTC(2023, 1, 1, h, m);
const TAKER = 0.0005;

type Raw = Record<string, unknown>;
const raw = (x: unknown): Raw => x as Raw;

describe.skipIf(!HAS_SHARED_DATA)('futures simulator: funding and liquidation (LINKUSDT 2023-02)', () => {
  if (!HAS_SHARED_DATA) noteSkip('futures funding/liquidation');
  let h: FuturesHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('funding at 08:00 UTC from the real series: the long pays, the short receives, seen in the balance and as ACCOUNT_UPDATE FUNDING_FEE', async () => {
    h = await futuresHarness({
      startTime: T(7, 30),
      accounts: [
        { ...KEY, balances: { USDT: 10_000 } },
        { ...KEY2, balances: { USDT: 10_000 } },
      ],
    });
    const { sim, ex } = h;
    const short = h.rest(KEY2);
    // The funding row of 2023-02-01 08:00 in Binance's archive: rate 0.0001, at 08:00:00.000.
    const series = readFundingRateFile(LINK_FUNDING).series;
    const row = [...series.time].indexOf(T(8));
    expect(row).toBe(1);
    expect(series.rate[row]).toBe(0.0001);
    // 07:30 opens at 6.877: the long buys 1,000 at 6.878, the short sells 1,000 at 6.877.
    expect(bar(T(7, 30)).open).toBe(6.877);
    await ex.createOrder(LINK, 'market', 'buy', 1_000);
    await short.createOrder(LINK, 'market', 'sell', 1_000);
    const walletOf = async (c: typeof ex): Promise<number> =>
      Number(raw((raw((await c.fetchBalance()).info).assets as unknown[])[0]).walletBalance);
    const longWallet = await walletOf(ex);
    const shortWallet = await walletOf(short);
    expect(longWallet).toBeCloseTo(10_000 - 1_000 * 6.878 * TAKER, 8);
    expect(shortWallet).toBeCloseTo(10_000 - 1_000 * 6.877 * TAKER, 8);

    const pro = h.pro();
    const proShort = h.pro(KEY2);
    // 07:59: the funding is not due yet.
    sim.step(29);
    expect(sim.now()).toBe(T(7, 59));
    expect(await walletOf(ex)).toBe(longWallet);
    // The mark at 08:00:00 is the 08:00 candle's opening price, 6.859:
    // funding = 1,000 x 6.859 x 0.0001 = 0.6859, paid by the long, received by the short.
    expect(bar(T(8)).open).toBe(6.859);
    const fee = 1_000 * 6.859 * 0.0001;
    const fundingUpdate = (b: { info: unknown }): boolean => raw(raw(b.info).a).m === 'FUNDING_FEE';
    const [longSeen, shortSeen] = await Promise.all([
      watchUntil(() => pro.watchBalance(), fundingUpdate, {
        kick: async () => {
          await sim.waitForSubscription(`user:${KEY.apiKey}`);
          await sim.waitForSubscription(`user:${KEY2.apiKey}`);
          sim.step(1);
        },
      }),
      watchUntil(() => proShort.watchBalance(), fundingUpdate),
    ]);
    const longEvent = raw(longSeen.info);
    expect(longEvent.E).toBe(T(8)); // at the scheduled time
    const longB = (raw(longEvent.a).B as Raw[])[0];
    expect(longB).toMatchObject({ a: 'USDT', bc: '-0.6859', wb: String(Number((longWallet - fee).toFixed(8))) });
    expect(raw(longEvent.a).P).toEqual([]); // a cross position's funding reports the balance only
    expect(longSeen.USDT?.total).toBeCloseTo(longWallet - fee, 8);
    const shortB = (raw(raw(shortSeen.info).a).B as Raw[])[0];
    expect(shortB).toMatchObject({ bc: '0.6859' });
    expect(await walletOf(ex)).toBeCloseTo(longWallet - fee, 8);
    expect(await walletOf(short)).toBeCloseTo(shortWallet + fee, 8);
    // ccxt's funding history (income FUNDING_FEE) and the contract's funding history.
    const paid = await ex.fetchFundingHistory(LINK);
    expect(paid.map((p) => [p.timestamp, p.amount])).toEqual([[T(8), -0.6859]]);
    const rates = await ex.fetchFundingRateHistory(LINK, T(0));
    expect(rates.map((r) => [r.timestamp, r.fundingRate])).toEqual([
      [series.time[0], 0.0001],
      [T(8), 0.0001],
    ]);
    const next = await ex.fetchFundingRate(LINK);
    expect(next.fundingTimestamp).toBe(series.time[2]); // 16:00:00.012, the next row
  });

  it('an isolated position pays funding out of its isolated wallet, reported with its position', async () => {
    h = await futuresHarness({ startTime: T(7, 30), contract: { funding: -0.0002 } });
    const { sim, ex } = h;
    await ex.setMarginMode('isolated', LINK);
    await ex.setLeverage(10, LINK);
    await ex.createOrder(LINK, 'market', 'buy', 1_000); // at 6.878: isolated wallet 6,878 / 10 = 687.8
    const pro = h.pro();
    // A negative rate: the long receives 1,000 x 6.859 x 0.0002 = 1.3718 into its isolated wallet.
    const seen = await watchUntil(
      () => pro.watchBalance(),
      (b) => raw(raw(b.info).a).m === 'FUNDING_FEE',
      {
        kick: async () => {
          await sim.waitForSubscription(`user:${KEY.apiKey}`);
          sim.step(31);
        },
      },
    );
    const a = raw(raw(seen.info).a);
    expect((a.B as Raw[])[0]).toMatchObject({ bc: '1.3718' });
    expect((a.P as Raw[])[0]).toMatchObject({ s: 'LINKUSDT', pa: '1000', mt: 'isolated', iw: '689.1718', ps: 'BOTH' });
    const [pos] = await ex.fetchPositions([LINK]);
    expect(Number(pos?.info.isolatedWallet)).toBeCloseTo(687.8 + 1.3718, 8);
  });

  it('isolated 50x long liquidated where the candles cross its liquidation price: a LIQUIDATION order with the price and the clearance fee', async () => {
    h = await futuresHarness({ startTime: T(6), accounts: [{ ...KEY, balances: { USDT: 1_000 } }] });
    const { sim, ex } = h;
    await ex.setMarginMode('isolated', LINK);
    await ex.setLeverage(50, LINK);
    await ex.createOrder(LINK, 'market', 'buy', 100); // at 6.908 (06:00 opens at 6.907)
    // Isolated wallet = 100 x 6.908 / 50 = 13.816. Binance's formula (isolated, one-way, tier 1:
    // mmr 0.65 %, cum 0): LP = (13.816 - 100 x 6.908) / (100 x 0.0065 - 100) = 6.814131...
    const lp = (13.816 - 690.8) / (0.65 - 100);
    expect(lp).toBeCloseTo(6.8141318, 6);
    const [pos] = await ex.fetchPositions([LINK]);
    expect(pos?.liquidationPrice).toBeCloseTo(lp, 7);
    // The candles: 07:00's low is 6.817 (above), 07:01 (open 6.818, high 6.818, low 6.790, a down
    // candle) crosses it on its way from the high to the low, at 07:01:30.
    expect(bar(T(7)).low).toBe(6.817);
    expect(firstBarDownTo(T(6), lp)).toMatchObject({ time: T(7, 1), open: 6.818, high: 6.818, low: 6.79 });
    // The forced close fills at the liquidation price on the tick, 6.814: realised
    // 100 x (6.814 - 6.908) = -9.40, leaving 13.816 - 9.40 = 4.416 of margin. The clearance fee is
    // 1.25 % x 681.40 = 8.5175, capped by what is left: 4.416 (the whole isolated margin is lost).
    const price = 6.814;
    const realized = 100 * (price - 6.908);
    const left = 13.816 + realized;
    const fee = Math.min(0.0125 * 100 * price, left);
    expect(fee).toBeCloseTo(4.416, 9);
    const pro = h.pro();
    sim.step(61); // to 07:01's opening tick, 6.818: still above
    expect(sim.now()).toBe(T(7, 1));
    expect((await ex.fetchPositions([LINK])).length).toBe(1);
    const orders = await watchUntil(
      () => pro.watchOrders(LINK),
      (os) => os.some((o) => o.status === 'closed' && String(o.clientOrderId).startsWith('autoclose-')),
      {
        kick: async () => {
          await sim.waitForSubscription(`user:${KEY.apiKey}`);
          sim.step(1);
        },
      },
    );
    const liq = orders.find((o) => o.status === 'closed' && String(o.clientOrderId).startsWith('autoclose-'));
    expect(String(liq?.clientOrderId)).toMatch(/^autoclose-\d{19}$/);
    expect(liq).toMatchObject({ side: 'sell', filled: 100, average: price, type: 'liquidation' });
    // Binance's USDⓈ-M user-data docs: execution type "CALCULATED - Liquidation Execution".
    expect(liq?.info).toMatchObject({
      o: 'LIQUIDATION',
      ot: 'LIQUIDATION',
      f: 'IOC',
      X: 'FILLED',
      x: 'CALCULATED',
      L: '6.814',
      N: 'USDT',
      n: '4.416',
      rp: '-9.4',
      R: true,
      T: T(7, 1) + 30_000,
    });
    expect(await ex.fetchPositions([LINK])).toEqual([]);
    const wallet = Number(raw((raw((await ex.fetchBalance()).info).assets as unknown[])[0]).walletBalance);
    expect(wallet).toBeCloseTo(1_000 - 690.8 * TAKER + realized - fee, 8); // 985.8386 = 1,000 - fee - margin
    expect(wallet).toBeCloseTo(1_000 - 0.3454 - 13.816, 8);
    const [record] = sim.liquidations(KEY.apiKey);
    expect(record).toMatchObject({ price, clearanceFee: 4.416, marginMode: 'isolated', realizedPnl: -9.4 });
    expect(record?.liquidationPrice).toBeCloseTo(lp, 9);
    // forceOrders lists it as Binance's example does: a LIMIT IOC order (`autoclose-`), not LIQUIDATION.
    const listed = (await ex.fapiPrivateGetForceOrders({ symbol: 'LINKUSDT', autoCloseType: 'LIQUIDATION' })) as Raw[];
    expect(listed.map((r) => [r.clientOrderId, r.type, r.origType, r.timeInForce, r.status, r.avgPrice])).toEqual([
      [liq?.clientOrderId, 'LIMIT', 'LIMIT', 'IOC', 'FILLED', '6.814'],
    ]);
    const mine = await ex.fetchMyLiquidations(LINK);
    expect(mine.map((l) => [l.price, l.contracts, l.timestamp])).toEqual([[price, 100, T(7, 1) + 30_000]]);
    expect(sim.income(KEY.apiKey).find((r) => r.incomeType === 'INSURANCE_CLEAR')?.income).toBe(-4.416);
  });

  it('auto-deleveraging (sim.autoDeleverage): an adl_autoclose order closes part of the position at the price, no fee; CALCULATED on the stream, ADL in forceOrders, in the user trades; open orders cancelled', async () => {
    h = await futuresHarness({ startTime: T(6) });
    const { sim, ex } = h;
    await ex.setMarginMode('isolated', LINK);
    await ex.setLeverage(5, LINK);
    await ex.createOrder(LINK, 'market', 'buy', 100); // at 6.908; isolated wallet 690.8 / 5 = 138.16
    const resting = await ex.createOrder(LINK, 'limit', 'sell', 20, 7.5);
    const pro = h.pro();
    const orders = await watchUntil(
      () => pro.watchOrders(LINK),
      (os) => os.some((o) => o.clientOrderId === 'adl_autoclose'),
      {
        kick: async () => {
          await sim.waitForSubscription(`user:${KEY.apiKey}`);
          sim.autoDeleverage(KEY.apiKey, LINK, 40, 7.2);
        },
      },
    );
    // Binance's USDⓈ-M user-data docs: an ADL close has the client id `adl_autoclose`, execution
    // type CALCULATED; forceOrders lists it as a LIMIT GTC order.
    const adl = orders.find((o) => o.clientOrderId === 'adl_autoclose');
    expect(adl).toMatchObject({ side: 'sell', filled: 40, average: 7.2, status: 'closed' });
    expect(adl?.info).toMatchObject({
      o: 'LIMIT',
      f: 'GTC',
      x: 'CALCULATED',
      X: 'FILLED',
      L: '7.2',
      n: '0',
      rp: '11.68',
    });
    // 40 x (7.2 - 6.908) = 11.68 realised, no fee; 60 % of the isolated wallet stays.
    const [pos] = await ex.fetchPositions([LINK]);
    expect(pos?.contracts).toBe(60);
    expect(Number(raw(pos?.info).isolatedWallet)).toBeCloseTo(138.16 * 0.6, 8);
    expect((await ex.fetchOrder(String(resting.id), LINK)).status).toBe('canceled');
    const forced = (autoCloseType?: string) =>
      ex.fapiPrivateGetForceOrders({ symbol: 'LINKUSDT', ...(autoCloseType ? { autoCloseType } : {}) }) as Promise<
        Raw[]
      >;
    expect(
      (await forced('ADL')).map((r) => [r.clientOrderId, r.type, r.timeInForce, r.status, r.executedQty, r.avgPrice]),
    ).toEqual([['adl_autoclose', 'LIMIT', 'GTC', 'FILLED', '40', '7.2']]);
    expect(await forced('LIQUIDATION')).toEqual([]);
    expect(await forced()).toHaveLength(1);
    const trades = (await ex.fapiPrivateGetUserTrades({ symbol: 'LINKUSDT', orderId: adl?.id })) as Raw[];
    expect(trades.map((t) => [t.qty, t.price, t.commission, t.realizedPnl])).toEqual([['40', '7.2', '0', '11.68']]);
    expect(sim.liquidations(KEY.apiKey)).toMatchObject([{ autoCloseType: 'ADL', price: 7.2, clearanceFee: 0 }]);
    // The rest, at the last price.
    const rest = sim.autoDeleverage(KEY.apiKey, LINK);
    expect(rest.order.executedQty).toBe(60);
    expect(await ex.fetchPositions([LINK])).toEqual([]);
  });

  it('delisting (sim.delist): status SETTLING, new orders refused with -4141, open orders cancelled, every position settled at the settlement price by a settlement_autoclose- order at the taker fee; in the trades and orders, not in forceOrders', async () => {
    h = await futuresHarness({
      startTime: T(6),
      accounts: [
        { ...KEY, balances: { USDT: 10_000 } },
        { ...KEY2, balances: { USDT: 10_000 } },
      ],
    });
    const { sim, ex } = h;
    const short = h.rest(KEY2);
    await ex.setMarginMode('isolated', LINK);
    await ex.setLeverage(5, LINK);
    await ex.createOrder(LINK, 'market', 'buy', 100); // at 6.908; isolated wallet 690.8 / 5 = 138.16
    await short.createOrder(LINK, 'market', 'sell', 50); // at 6.907, cross 20x
    const resting = await ex.createOrder(LINK, 'limit', 'sell', 20, 7.5);
    const status = async () =>
      ((await ex.fapiPublicGetExchangeInfo()) as { symbols: Raw[] }).symbols.find((x) => x.symbol === 'LINKUSDT')
        ?.status;
    expect(await status()).toBe('TRADING');
    const walletOf = async (c: typeof ex): Promise<number> =>
      Number(raw((raw((await c.fetchBalance()).info).assets as unknown[])[0]).walletBalance);
    const [longBefore, shortBefore] = [await walletOf(ex), await walletOf(short)];
    const pro = h.pro();
    // Delisted without settling yet: SETTLING, orders refused (reduce-only too), the limit cancelled.
    const cancelled = await watchUntil(
      () => pro.watchOrders(LINK),
      (os) => os.some((o) => o.id === resting.id && o.status === 'canceled'),
      {
        kick: async () => {
          await sim.waitForSubscription(`user:${KEY.apiKey}`);
          expect(sim.delist(LINK, { settle: false })).toEqual([]);
        },
      },
    );
    expect(cancelled.some((o) => o.id === resting.id)).toBe(true);
    expect(await status()).toBe('SETTLING');
    for (const send of [
      () => ex.createOrder(LINK, 'market', 'buy', 10),
      () => ex.createOrder(LINK, 'market', 'sell', 100, undefined, { reduceOnly: true }),
    ])
      await expect(send()).rejects.toThrow(/-4141.*Symbol is closed/);
    expect((await ex.fetchPositions([LINK]))[0]?.contracts).toBe(100);
    // Settled at 6.9: the long realises 100 x (6.9 - 6.908) = -0.8 and pays the taker fee on
    // 690 (0.345); the short 50 x (6.907 - 6.9) = 0.35, fee 0.1725.
    const orders = await watchUntil(
      () => pro.watchOrders(LINK),
      (os) => os.some((o) => String(o.clientOrderId).startsWith('settlement_autoclose-')),
      { kick: () => void sim.settle(LINK, 6.9) },
    );
    const settled = orders.find((o) => String(o.clientOrderId).startsWith('settlement_autoclose-'));
    expect(String(settled?.clientOrderId)).toMatch(/^settlement_autoclose-\d{19}$/);
    expect(settled).toMatchObject({ side: 'sell', filled: 100, average: 6.9, status: 'closed' });
    expect(settled?.info).toMatchObject({
      o: 'LIMIT',
      f: 'IOC',
      x: 'TRADE',
      X: 'FILLED',
      L: '6.9',
      n: '0.345',
      rp: '-0.8',
    });
    expect(await ex.fetchPositions([LINK])).toEqual([]);
    expect(await short.fetchPositions([LINK])).toEqual([]);
    expect(await walletOf(ex)).toBeCloseTo(longBefore - 0.8 - 0.345, 8);
    expect(await walletOf(short)).toBeCloseTo(shortBefore + 0.35 - 0.1725, 8);
    expect(sim.liquidations().map((l) => [l.autoCloseType, l.apiKey, l.order.executedQty, l.price])).toEqual([
      ['SETTLEMENT', KEY.apiKey, 100, 6.9],
      ['SETTLEMENT', KEY2.apiKey, 50, 6.9],
    ]);
    // In the order history and the user trades; not a forced order (forceOrders knows LIQUIDATION and ADL).
    expect(await ex.fapiPrivateGetForceOrders({ symbol: 'LINKUSDT' })).toEqual([]);
    const all = (await ex.fapiPrivateGetAllOrders({ symbol: 'LINKUSDT' })) as Raw[];
    expect(all.at(-1)).toMatchObject({ clientOrderId: settled?.clientOrderId, status: 'FILLED', avgPrice: '6.9' });
    const trades = (await ex.fapiPrivateGetUserTrades({ symbol: 'LINKUSDT', orderId: settled?.id })) as Raw[];
    expect(trades.map((t) => [t.qty, t.price, t.commission, t.realizedPnl])).toEqual([['100', '6.9', '0.345', '-0.8']]);
    expect(() => sim.delist(LINK)).toThrow(/delisted already/);
  });

  it('cross 50x long on a 20 USDT wallet: funding moves its liquidation price, the clearance fee is 0.5 % of the notional', async () => {
    h = await futuresHarness({
      startTime: T(6),
      accounts: [{ ...KEY, balances: { USDT: 20 } }],
      contract: { liquidationFee: 0.005 },
    });
    const { sim, ex } = h;
    await ex.setLeverage(50, LINK);
    await ex.createOrder(LINK, 'market', 'buy', 100); // at 6.908; commission 0.3454: wallet 19.6546
    const lpBefore = (19.6546 - 690.8) / (0.65 - 100); // 6.755364 (cross: WB is the cross wallet)
    let [pos] = await ex.fetchPositions([LINK]);
    expect(pos?.liquidationPrice).toBeCloseTo(lpBefore, 6);
    // 08:00 funding at the mark 6.859: the long pays 100 x 6.859 x 0.0001 = 0.06859, so
    // WB = 19.58601 and LP = (19.58601 - 690.8) / (0.65 - 100) = 6.756054.
    sim.step(121); // to 08:01
    const wb = 19.6546 - 0.06859;
    const lp = (wb - 690.8) / (0.65 - 100);
    [pos] = await ex.fetchPositions([LINK]);
    expect(pos?.liquidationPrice).toBeCloseTo(lp, 6);
    // 09:08 (open 6.784, high 6.784, low 6.756, a down candle) is the first to reach it; 09:07's
    // low is 6.784. Fill on the tick: 6.756; realised 100 x (6.756 - 6.908) = -15.2; left
    // 19.58601 - 15.2 = 4.38601; clearance 0.5 % x 675.6 = 3.378 (below what is left).
    expect(firstBarDownTo(T(8, 1), lp)).toMatchObject({ time: T(9, 8), open: 6.784, low: 6.756 });
    const price = 6.756;
    const left = wb + 100 * (price - 6.908);
    const fee = 0.005 * 100 * price;
    expect(fee).toBeLessThan(left);
    const pro = h.pro();
    const seen = await watchUntil(
      () => pro.watchMyLiquidations(LINK),
      (ls) => ls.length > 0,
      {
        kick: async () => {
          await sim.waitForSubscription(`user:${KEY.apiKey}`);
          sim.step(68); // to 09:09
        },
      },
    );
    expect(seen).toHaveLength(1); // reported once, filled (no empty NEW update)
    const filled = seen[0];
    expect(filled).toMatchObject({ price, contracts: 100, side: 'sell' });
    expect(raw(filled?.info)).toMatchObject({ o: 'LIQUIDATION', L: '6.756', n: '3.378', rp: '-15.2' });
    const wallet = Number(raw((raw((await ex.fetchBalance()).info).assets as unknown[])[0]).walletBalance);
    expect(wallet).toBeCloseTo(left - fee, 8); // 1.00801: the account keeps what the fee leaves
    expect(sim.liquidations(KEY.apiKey)[0]).toMatchObject({ marginMode: 'cross', clearanceFee: 3.378 });
  });
});
