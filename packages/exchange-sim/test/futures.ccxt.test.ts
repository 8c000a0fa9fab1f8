import { defineInstrument, roundAmount } from '@keel/core';
import ccxt from 'ccxt';
import { afterEach, describe, expect, it } from 'vitest';
import {
  bar,
  type FuturesHarness,
  firstBarDownTo,
  firstBarUpTo,
  futuresHarness,
  HAS_SHARED_DATA,
  KEY,
  LINK,
  noteSkip,
} from './futures-helpers.ts';
import { rejectionOf, watchUntil } from './helpers.ts';

// The real ccxt binanceusdm client (REST and ccxt.pro) against the futures simulator over
// loopback, replaying Binance's own LINKUSDT USD-M 1m candles of 2023-02. Oracles: ccxt's own
// parsers (a wrong field is undefined / NaN or a throw), the candles of the file (every price
// below is read from them and written out), and hand-computed fills, PnL and margins.

const T = (h: number, m = 0): number => Date.UTC(2023, 1, 1, h, m);
const TAKER = 0.0005;

describe.skipIf(!HAS_SHARED_DATA)('ccxt binanceusdm against the futures simulator (LINKUSDT 2023-02)', () => {
  if (!HAS_SHARED_DATA) noteSkip('futures ccxt');
  let h: FuturesHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('loadMarkets: one linear perpetual with the file filters; leverage tiers are the brackets', async () => {
    h = await futuresHarness({ startTime: T(6) });
    const markets = await h.ex.loadMarkets();
    expect(Object.keys(markets)).toEqual([LINK]);
    const m = markets[LINK];
    expect(m).toMatchObject({ id: 'LINKUSDT', swap: true, linear: true, contract: true, settle: 'USDT', active: true });
    expect(m?.precision).toMatchObject({ price: 0.001, amount: 0.01 });
    expect(m?.limits.cost?.min).toBe(5);
    const tiers = (await h.ex.fetchLeverageTiers([LINK]))[LINK] ?? [];
    expect(tiers.map((t) => [t.minNotional, t.maxNotional, t.maintenanceMarginRate, t.maxLeverage])).toEqual([
      [0, 10_000, 0.0065, 75],
      [10_000, 50_000, 0.01, 50],
      [50_000, 250_000, 0.02, 25],
      [250_000, 1_000_000, 0.05, 10],
      [1_000_000, 2_000_000, 0.1, 5],
      [2_000_000, 5_000_000, 0.125, 4],
      [5_000_000, 10_000_000, 0.15, 3],
      [10_000_000, 5_000_000_000, 0.25, 2],
    ]);
    expect(await h.ex.fetchTime()).toBe(T(6));
    const c = await h.ex.fetchOHLCV(LINK, '1m', T(5, 58), 2);
    expect(c).toEqual([
      [T(5, 58), bar(T(5, 58)).open, bar(T(5, 58)).high, bar(T(5, 58)).low, bar(T(5, 58)).close, bar(T(5, 58)).volume],
      [T(5, 59), bar(T(5, 59)).open, bar(T(5, 59)).high, bar(T(5, 59)).low, bar(T(5, 59)).close, bar(T(5, 59)).volume],
    ]);
  });

  it('open, reduce, close, short: fills, realised PnL, fees, margins and balance as computed by hand', async () => {
    h = await futuresHarness({ startTime: T(6) });
    const { ex, sim } = h;
    // The 06:00 candle opens at 6.907: the book's bid is 6.907, its ask one tick above.
    expect(bar(T(6)).open).toBe(6.907);
    const buy = await ex.createOrder(LINK, 'market', 'buy', 100);
    expect(buy).toMatchObject({ status: 'closed', filled: 100, average: 6.908, side: 'buy', type: 'market' });
    // Commission 100 x 6.908 x 0.05 % = 0.3454; default leverage 20, cross.
    let [pos] = await ex.fetchPositions([LINK]);
    expect(pos).toMatchObject({
      side: 'long',
      contracts: 100,
      entryPrice: 6.908,
      marginMode: 'cross',
      markPrice: 6.907,
    });
    expect(pos?.unrealizedPnl).toBeCloseTo(100 * (6.907 - 6.908), 9); // -0.1 on the mark
    expect(pos?.initialMargin).toBeCloseTo((100 * 6.907) / 20, 9); // 34.535
    expect(pos?.maintenanceMargin).toBeCloseTo(100 * 6.907 * 0.0065, 9); // tier 1
    expect(pos?.liquidationPrice).toBeUndefined(); // a 9,999.65 USDT cross wallet: none (Binance's 0)
    let bal = await ex.fetchBalance();
    expect(bal.USDT?.total).toBeCloseTo(10_000 - 0.3454 - 0.1, 8); // margin balance = wallet + UPNL
    expect(bal.USDT?.used).toBeCloseTo(34.535, 8);
    expect(bal.USDT?.free).toBeCloseTo(10_000 - 0.3454 - 0.1 - 34.535, 8);

    // 06:01 opens at 6.905: reduce by 40 at the bid.
    sim.step();
    expect(bar(T(6, 1)).open).toBe(6.905);
    const reduce = await ex.createOrder(LINK, 'market', 'sell', 40);
    expect(reduce).toMatchObject({ status: 'closed', filled: 40, average: 6.905 });
    const trades = await ex.fetchMyTrades(LINK);
    const last = trades[trades.length - 1];
    expect(Number(last?.info.realizedPnl)).toBeCloseTo(40 * (6.905 - 6.908), 9); // -0.12
    expect(last?.fee?.cost).toBeCloseTo(40 * 6.905 * TAKER, 9); // 0.1381
    [pos] = await ex.fetchPositions([LINK]);
    expect(pos).toMatchObject({ contracts: 60, entryPrice: 6.908 });

    // Close the rest reduce-only: flat, and fetchPositions lists nothing.
    await ex.createOrder(LINK, 'market', 'sell', 60, undefined, { reduceOnly: true });
    expect(await ex.fetchPositions([LINK])).toEqual([]);
    const wallet =
      10_000 - 0.3454 + 40 * (6.905 - 6.908) - 40 * 6.905 * TAKER + 60 * (6.905 - 6.908) - 60 * 6.905 * TAKER;
    bal = await ex.fetchBalance();
    expect(bal.USDT?.total).toBeCloseTo(wallet, 8);

    // Short 100 at the bid: a negative position, side short.
    await ex.createOrder(LINK, 'market', 'sell', 100);
    [pos] = await ex.fetchPositions([LINK]);
    expect(pos).toMatchObject({ side: 'short', contracts: 100, entryPrice: 6.905 });
    expect(pos?.info.positionAmt).toBe('-100');
    expect(sim.futuresAccount(KEY.apiKey).positions.find((p) => p.position.size !== 0)?.position.size).toBe(-100);
  });

  it('reduce-only never increases a position: refused (-2022) with none, and on the side that would grow', async () => {
    h = await futuresHarness({ startTime: T(6) });
    const { ex } = h;
    const none = await rejectionOf(ex.createOrder(LINK, 'market', 'buy', 10, undefined, { reduceOnly: true }));
    expect(none.message).toContain('"code":-2022');
    expect(none.message).toContain('ReduceOnly Order is rejected.');
    await ex.createOrder(LINK, 'market', 'sell', 50);
    const grow = await rejectionOf(ex.createOrder(LINK, 'market', 'sell', 10, undefined, { reduceOnly: true }));
    expect(grow.message).toContain('"code":-2022');
    // More than the position: only the position closes (Binance reduces a reduce-only order to it).
    const over = await ex.createOrder(LINK, 'market', 'buy', 80, undefined, { reduceOnly: true });
    expect(over).toMatchObject({ filled: 50, status: 'expired' });
    expect(await ex.fetchPositions([LINK])).toEqual([]);
    expect(h.sim.futuresOrders(KEY.apiKey).every((o) => o.executedQty <= 50)).toBe(true);
  });

  it('a quantity on the step is executed whole, whatever binary noise its division by the step has; Keel rounds it the same', async () => {
    // 416.58889 / 0.00001 = 41658888.99999999 in binary: still 41,658,889 steps (Binance executes
    // the quantity sent, or refuses one off the step with -1111; it never rounds it down).
    h = await futuresHarness({ startTime: T(6), contract: { stepSize: 0.00001 } });
    const { ex, sim } = h;
    const o = await ex.createOrder(LINK, 'market', 'buy', 416.58889);
    expect(o).toMatchObject({ amount: 416.58889, filled: 416.58889, status: 'closed' });
    expect(sim.futuresOrders(KEY.apiKey).map((x) => [x.origQty, x.executedQty, x.status])).toEqual([
      [416.58889, 416.58889, 'FILLED'],
    ]);
    expect(roundAmount(defineInstrument({ symbol: LINK, kind: 'perpetual', stepSize: 0.00001 }), 416.58889)).toBe(
      416.58889,
    );
  });

  it('a resting reduce-only order expires when the position it reduces is closed (Binance: EXPIRED, on the user stream)', async () => {
    // Binance (dev.binance.vision, "Futures LIMIT order got expired"): "The reduceOnly open order is
    // expired due to current position has been closed". While some of the position is left it rests.
    h = await futuresHarness({ startTime: T(6) });
    const { ex, sim } = h;
    const pro = h.pro();
    await ex.createOrder(LINK, 'market', 'buy', 100);
    const far = await ex.createOrder(LINK, 'limit', 'sell', 100, 8, { reduceOnly: true, clientOrderId: 'tp-far' });
    const part = await ex.createOrder(LINK, 'limit', 'sell', 40, 7.5, { reduceOnly: true, clientOrderId: 'tp-part' });
    const plain = await ex.createOrder(LINK, 'limit', 'buy', 10, 6, { clientOrderId: 'plain' });
    await ex.createOrder(LINK, 'market', 'sell', 50);
    expect((await ex.fetchOpenOrders(LINK)).map((o) => o.clientOrderId).sort()).toEqual(['plain', 'tp-far', 'tp-part']);
    const expired = await watchUntil(
      () => pro.watchOrders(LINK),
      (os) => os.filter((o) => o.status === 'expired').length === 2,
      {
        kick: async () => {
          await sim.waitForSubscription(`user:${KEY.apiKey}`);
          await ex.createOrder(LINK, 'market', 'sell', 50); // flat: nothing left to reduce
        },
      },
    );
    expect(
      expired
        .filter((o) => o.status === 'expired')
        .map((o) => [o.clientOrderId, o.filled, o.reduceOnly, o.info.er])
        .sort(),
    ).toEqual([
      ['tp-far', 0, true, '4'],
      ['tp-part', 0, true, '4'],
    ]);
    expect(await ex.fetchPositions([LINK])).toEqual([]);
    expect((await ex.fetchOrder(far.id as string, LINK)).status).toBe('expired');
    expect((await ex.fetchOrder(part.id as string, LINK)).status).toBe('expired');
    // An order that is not reduce-only rests on: it would open a position, as asked.
    expect((await ex.fetchOpenOrders(LINK)).map((o) => o.id)).toEqual([plain.id]);
    const byId = (id: string) => sim.futuresOrders(KEY.apiKey).find((o) => o.clientOrderId === id);
    expect(byId('tp-far')).toMatchObject({ status: 'EXPIRED', executedQty: 0 });
  });

  it('expiry reasons (er), GTD with goodTillDate, and self-trade prevention (the expireInMatch fault)', async () => {
    // Binance USD-M's ORDER_TRADE_UPDATE `er`: 2 an IOC's rest, 0 none (a GTD expiry), 1 self-trade
    // prevention (status EXPIRED_IN_MATCH).
    h = await futuresHarness({ startTime: T(6) });
    const { ex, sim } = h;
    const pro = h.pro();
    const gtd = await ex.createOrder(LINK, 'limit', 'buy', 10, 6, {
      timeInForce: 'GTD',
      goodTillDate: T(6, 3),
      clientOrderId: 'gtd',
    });
    expect(gtd.info).toMatchObject({ timeInForce: 'GTD', goodTillDate: T(6, 3) });
    expect((await ex.fetchOpenOrders(LINK)).map((o) => [o.clientOrderId, o.info.goodTillDate])).toEqual([
      ['gtd', T(6, 3)],
    ]);
    await ex.createOrder(LINK, 'limit', 'buy', 10, 6.5, { clientOrderId: 'stp' });
    // watchOrders answers with the updates since its last call: collected here.
    const seen: Awaited<ReturnType<typeof pro.watchOrders>> = [];
    await watchUntil(
      async () => {
        seen.push(...(await pro.watchOrders(LINK)));
        return seen;
      },
      (os) => os.filter((o) => o.status === 'expired').length === 3,
      {
        kick: async () => {
          await sim.waitForSubscription(`user:${KEY.apiKey}`);
          await ex.createOrder(LINK, 'limit', 'buy', 10, 6, { timeInForce: 'IOC', clientOrderId: 'ioc' });
          expect(sim.faults.expireInMatch(KEY.apiKey, 'stp')).toBe(true);
          sim.advanceTo(T(6, 4));
        },
      },
    );
    expect(
      seen
        .filter((o) => o.status === 'expired')
        .map((o) => [o.clientOrderId, o.info.X, o.info.er])
        .sort(),
    ).toEqual([
      ['gtd', 'EXPIRED', '0'],
      ['ioc', 'EXPIRED', '2'],
      ['stp', 'EXPIRED_IN_MATCH', '1'],
    ]);
    expect((await ex.fetchOrder(gtd.id as string, LINK)).status).toBe('expired');
    await expect(ex.createOrder(LINK, 'limit', 'buy', 10, 6, { timeInForce: 'GTD' })).rejects.toThrow(/goodTillDate/);
  });

  it('leverage change: margins follow it, the tier caps it (-4028 above 75x), ccxt reads it back', async () => {
    h = await futuresHarness({ startTime: T(6) });
    const { ex } = h;
    await ex.createOrder(LINK, 'market', 'buy', 100);
    const r = await ex.setLeverage(3, LINK);
    expect(r).toMatchObject({ leverage: 3, symbol: 'LINKUSDT', maxNotionalValue: '10000000' });
    const [pos] = await ex.fetchPositions([LINK]);
    expect(pos?.initialMargin).toBeCloseTo((100 * 6.907) / 3, 8);
    expect((await ex.fetchLeverages([LINK]))[LINK]).toMatchObject({
      longLeverage: 3,
      shortLeverage: 3,
      marginMode: 'cross',
    });
    const bad = await rejectionOf(ex.setLeverage(100, LINK));
    expect(bad.message).toContain('"code":-4028');
    // 75x allows 10,000 USDT of notional: 100 held + 1,400 more at 6.907 is 10,360.5.
    await ex.setLeverage(75, LINK);
    const capped = await rejectionOf(ex.createOrder(LINK, 'market', 'buy', 1_400));
    expect(capped.message).toContain('"code":-2027');
  });

  it('margin mode change: refused with a position (-4048), then isolated with its own wallet and liquidation price', async () => {
    h = await futuresHarness({ startTime: T(6) });
    const { ex } = h;
    await ex.createOrder(LINK, 'market', 'buy', 100);
    const refused = await rejectionOf(ex.setMarginMode('isolated', LINK));
    expect(refused.message).toContain('"code":-4048');
    await ex.createOrder(LINK, 'market', 'sell', 100, undefined, { reduceOnly: true });
    expect(await ex.setMarginMode('isolated', LINK)).toEqual({ code: 200, msg: 'success' });
    // The same mode again: Binance's -4046, which ccxt raises as its own MarginModeAlreadySet.
    const same = await rejectionOf(ex.setMarginMode('isolated', LINK));
    expect(same).toBeInstanceOf(ccxt.MarginModeAlreadySet);
    await ex.setLeverage(10, LINK);
    await ex.createOrder(LINK, 'market', 'buy', 100); // at 6.908, isolated wallet 690.8 / 10 = 69.08
    const [pos] = await ex.fetchPositions([LINK]);
    expect(pos?.marginMode).toBe('isolated');
    expect(Number(pos?.info.isolatedWallet)).toBeCloseTo(69.08, 8);
    expect(pos?.collateral).toBeCloseTo(69.08 + 100 * (6.907 - 6.908), 8); // isolatedMargin = wallet + UPNL
    // Binance's formula, isolated: (69.08 - 100 x 6.908) / (100 x 0.0065 - 100) = 6.2574...
    expect(pos?.liquidationPrice).toBeCloseTo((69.08 - 690.8) / (0.65 - 100), 6);
  });

  it('position mode change: hedge mode holds a LONG and a SHORT side by side; refused while they are open (-4068)', async () => {
    h = await futuresHarness({ startTime: T(6) });
    const { ex } = h;
    expect(await ex.setPositionMode(true)).toEqual({ code: 200, msg: 'success' });
    const again = await rejectionOf(ex.setPositionMode(true));
    expect(again.message).toContain('"code":-4059');
    // In hedge mode an order names its side; one-way's BOTH is refused (-4061).
    const both = await rejectionOf(ex.createOrder(LINK, 'market', 'buy', 10, undefined, { positionSide: 'BOTH' }));
    expect(both.message).toContain('"code":-4061');
    await ex.createOrder(LINK, 'market', 'buy', 50, undefined, { hedged: true }); // LONG at 6.908
    await ex.createOrder(LINK, 'market', 'sell', 30, undefined, { hedged: true }); // SHORT at 6.907
    const positions = await ex.fetchPositions([LINK]);
    expect(positions.map((p) => [p.side, p.contracts, p.entryPrice, p.hedged]).sort()).toEqual([
      ['long', 50, 6.908, true],
      ['short', 30, 6.907, true],
    ]);
    const refused = await rejectionOf(ex.setPositionMode(false));
    expect(refused.message).toContain('"code":-4068');
    // Closing the LONG side takes a SELL on it; more than it holds is refused.
    const tooMuch = await rejectionOf(ex.createOrder(LINK, 'market', 'sell', 60, undefined, { positionSide: 'LONG' }));
    expect(tooMuch.message).toContain('"code":-2022');
    await ex.createOrder(LINK, 'market', 'sell', 50, undefined, { positionSide: 'LONG' });
    await ex.createOrder(LINK, 'market', 'buy', 30, undefined, { positionSide: 'SHORT' });
    expect(await ex.fetchPositions([LINK])).toEqual([]);
    expect(await ex.setPositionMode(false)).toEqual({ code: 200, msg: 'success' });
  });

  it('limit orders rest and cancel; a conditional order is refused when it would trigger at once (-2021)', async () => {
    h = await futuresHarness({ startTime: T(6) });
    const { ex } = h;
    const limit = await ex.createOrder(LINK, 'limit', 'buy', 100, 6.5);
    expect(limit).toMatchObject({ status: 'open', price: 6.5, filled: 0 });
    const bal = await ex.fetchBalance();
    expect(bal.USDT?.used).toBeCloseTo((100 * 6.5) / 20, 8); // the order holds its initial margin
    expect((await ex.fetchOpenOrders(LINK)).map((o) => o.id)).toEqual([limit.id]);
    const canceled = await ex.cancelOrder(String(limit.id), LINK);
    expect(canceled.status).toBe('canceled');
    expect(await ex.fetchOpenOrders(LINK)).toEqual([]);
    const missing = await rejectionOf(ex.cancelOrder(String(limit.id), LINK));
    expect(missing.message).toContain('"code":-2011');
    const now = await rejectionOf(
      ex.createOrder(LINK, 'STOP_MARKET', 'buy', 10, undefined, { stopPrice: 6.9 }), // at or below the 6.907 price
    );
    expect(now.message).toContain('"code":-2021');
    const algo = await ex.createOrder(LINK, 'STOP_MARKET', 'buy', 10, undefined, { stopPrice: 7.5 });
    expect(algo).toMatchObject({ status: 'open', type: 'market', triggerPrice: 7.5 });
    expect((await ex.fetchOpenOrders(LINK, undefined, undefined, { trigger: true })).map((o) => o.id)).toEqual([
      algo.id,
    ]);
    // Binance answers an algo cancel with { algoId, clientAlgoId, code: "200", msg: "success" }.
    const cancel = await ex.cancelOrder(String(algo.id), LINK, { trigger: true });
    expect(cancel.info).toMatchObject({ algoId: Number(algo.id), code: '200', msg: 'success' });
    expect((await ex.fetchOrder(String(algo.id), LINK, { trigger: true })).status).toBe('canceled');
  });

  it('stop-market triggers where the candles cross its price and closes the position (07:01, 6.800)', async () => {
    h = await futuresHarness({ startTime: T(7) });
    const { ex, sim } = h;
    const pro = h.pro();
    expect(bar(T(7)).open).toBe(6.833);
    await ex.createOrder(LINK, 'market', 'buy', 100); // at 6.834
    const sl = await ex.createOrder(LINK, 'STOP_MARKET', 'sell', 100, undefined, { stopPrice: 6.8, reduceOnly: true });
    expect(sl.status).toBe('open');
    // The first candle to reach 6.800 going down: 07:01 (open 6.818, high 6.818, low 6.790: a
    // down candle, so the path is open -> high -> low -> close and crosses 6.800 on the way).
    const hit = firstBarDownTo(T(7), 6.8);
    expect(hit).toMatchObject({ time: T(7, 1), open: 6.818, high: 6.818, low: 6.79 });
    const seen = await watchUntil(
      () => pro.watchOrders(LINK),
      (orders) => orders.some((o) => o.info.ot === 'STOP_MARKET' && o.status === 'closed'),
      {
        kick: async () => {
          await sim.waitForSubscription(`user:${KEY.apiKey}`);
          sim.step(2);
        },
      },
    );
    const fill = seen.find((o) => o.info.ot === 'STOP_MARKET' && o.status === 'closed');
    expect(fill).toMatchObject({
      type: 'market',
      side: 'sell',
      filled: 100,
      average: 6.8,
      clientOrderId: sl.clientOrderId,
    });
    const algo = await ex.fetchOrder(String(sl.id), LINK, { trigger: true });
    expect(algo.status).toBe('closed');
    expect(algo.info).toMatchObject({ algoStatus: 'FINISHED', actualOrderId: fill?.id, actualPrice: '6.8' });
    expect(await ex.fetchPositions([LINK])).toEqual([]);
    const trades = await ex.fetchMyTrades(LINK);
    expect(Number(trades[trades.length - 1]?.info.realizedPnl)).toBeCloseTo(100 * (6.8 - 6.834), 9); // -3.4
  });

  it('take-profit-market with closePosition closes whatever is held when the candles reach it (19:47, 7.000)', async () => {
    h = await futuresHarness({ startTime: T(19) });
    const { ex, sim } = h;
    expect(bar(T(19)).open).toBe(6.788);
    await ex.createOrder(LINK, 'market', 'buy', 100); // at 6.789
    const tp = await ex.createOrder(LINK, 'TAKE_PROFIT_MARKET', 'sell', undefined as unknown as number, undefined, {
      stopPrice: 7,
      closePosition: true,
    });
    expect(tp.info).toMatchObject({ orderType: 'TAKE_PROFIT_MARKET', closePosition: true, algoStatus: 'NEW' });
    const sl = await ex.createOrder(LINK, 'STOP_MARKET', 'sell', 100, undefined, { stopPrice: 6.7, reduceOnly: true });
    await ex.createOrder(LINK, 'market', 'buy', 50); // grows to 150 at 19:00 (6.789)
    const hit = firstBarUpTo(T(19), 7);
    expect(hit).toMatchObject({ time: T(19, 47), open: 6.983, low: 6.982, high: 7.007 }); // an up candle
    expect(firstBarDownTo(T(19), 6.7).time).toBeGreaterThan(T(19, 47)); // the stop is not reached first
    sim.step(47); // up to 19:47's opening tick (6.983): not yet
    expect(sim.now()).toBe(T(19, 47));
    expect((await ex.fetchOrder(String(tp.id), LINK, { trigger: true })).status).toBe('open');
    sim.step(1); // the rest of 19:47: open -> low -> high 7.007 -> close
    const done = await ex.fetchOrder(String(tp.id), LINK, { trigger: true });
    expect(done.info.algoStatus).toBe('FINISHED');
    const actual = await ex.fetchOrder(done.info.actualOrderId as string, LINK);
    expect(actual).toMatchObject({ status: 'closed', filled: 150, average: 7, side: 'sell', reduceOnly: true });
    expect(actual.info.origType).toBe('TAKE_PROFIT_MARKET');
    expect(await ex.fetchPositions([LINK])).toEqual([]);
    // The stop-loss is still waiting; with no position it can only be cancelled.
    await ex.cancelOrder(String(sl.id), LINK, { trigger: true });
    expect((await ex.fetchOrder(String(sl.id), LINK, { trigger: true })).status).toBe('canceled');
    const realized = (await ex.fetchMyTrades(LINK)).reduce((s, t) => s + Number(t.info.realizedPnl), 0);
    expect(realized).toBeCloseTo(150 * (7 - 6.789), 9);
  });

  it('ccxt.pro: watchPositions, watchMyTrades, watchMarkPrice and watchOHLCV on the futures streams', async () => {
    h = await futuresHarness({ startTime: T(6) });
    const { ex, sim } = h;
    const pro = h.pro();
    const mark = pro.watchMarkPrice(LINK);
    const candles = pro.watchOHLCV(LINK, '1m');
    await sim.waitForSubscription('linkusdt@markPrice@1s');
    await sim.waitForSubscription('linkusdt@kline_1m');
    sim.tick(); // 06:00:15: the 06:00 candle's high, 6.908
    expect((await mark).markPrice).toBe(6.908);
    expect((await candles).at(-1)).toEqual([T(6), 6.907, 6.908, 6.907, 6.908, bar(T(6)).volume / 2]);
    // ccxt.pro's first watchPositions answers with a REST snapshot (none yet); the next ones stream.
    expect(await pro.watchPositions([LINK])).toEqual([]);
    const positions = await watchUntil(
      () => pro.watchPositions([LINK]),
      (ps) => ps.some((p) => p.contracts === 100),
      {
        kick: async () => {
          await sim.waitForSubscription(`user:${KEY.apiKey}`);
          await ex.createOrder(LINK, 'market', 'buy', 100); // at the ask, 6.909
        },
      },
    );
    expect(positions.find((p) => p.contracts === 100)).toMatchObject({
      side: 'long',
      entryPrice: 6.909,
      marginMode: 'cross',
    });
    const trades = await watchUntil(
      () => pro.watchMyTrades(LINK),
      (ts) => ts.some((t) => t.side === 'sell'),
      { kick: async () => void (await ex.createOrder(LINK, 'market', 'sell', 100)) }, // at the bid, 6.908
    );
    const sell = trades.find((t) => t.side === 'sell');
    expect(sell).toMatchObject({ price: 6.908, amount: 100, fee: { currency: 'USDT' } });
    expect(sell?.fee?.cost).toBeCloseTo(100 * 6.908 * TAKER, 9); // 0.3454
    expect(Number(sell?.info.rp)).toBeCloseTo(100 * (6.908 - 6.909), 9);
  });

  it('a STOP (limit) order triggers into a LIMIT order at its price, which rests when it cannot take', async () => {
    h = await futuresHarness({ startTime: T(7) });
    const { ex, sim } = h;
    await ex.createOrder(LINK, 'market', 'buy', 100); // at 6.834
    // Stop 6.800, limit 6.810: when 07:01 falls through 6.800 the sell limit 6.810 is above the
    // bid (6.800), so it rests on the book instead of taking.
    const stop = await ex.createOrder(LINK, 'limit', 'sell', 100, 6.81, { stopLossPrice: 6.8, reduceOnly: true });
    expect(stop.info).toMatchObject({ orderType: 'STOP', triggerPrice: '6.8', price: '6.81', algoStatus: 'NEW' });
    sim.step(2); // through 07:01
    const algo = await ex.fetchOrder(String(stop.id), LINK, { trigger: true });
    expect(algo.info.algoStatus).toBe('TRIGGERED');
    const open = await ex.fetchOpenOrders(LINK);
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ type: 'limit', side: 'sell', price: 6.81, status: 'open', reduceOnly: true });
    expect(open[0]?.info).toMatchObject({ origType: 'STOP', stopPrice: '6.8', clientOrderId: stop.clientOrderId });
    expect(String(open[0]?.id)).toBe(algo.info.actualOrderId);
  });

  it('a FOK STOP is judged whole at its trigger: it expires untouched where an IOC of the same size fills in part', async () => {
    const run = async (tif: 'IOC' | 'FOK') => {
      // A thin book (0.05 % of each bar's volume): 500 LINK cannot all fill at the trigger.
      h = await futuresHarness({
        startTime: T(7),
        liquidity: { participation: 0.0005, bookLevels: 1, spreadTicks: 1 },
      });
      const { ex, sim } = h;
      const stop = await ex.createOrder(LINK, 'limit', 'sell', 500, 6.7, { stopLossPrice: 6.8, timeInForce: tif });
      sim.step(2); // 07:01 falls through 6.800
      const algo = await ex.fetchOrder(String(stop.id), LINK, { trigger: true });
      expect(algo.info.algoStatus).toBe('FINISHED'); // triggered, and its order is done
      const [order] = (await ex.fetchOrders(LINK)).filter((o) => o.clientOrderId === stop.clientOrderId);
      await h.close();
      h = undefined;
      return order;
    };
    const ioc = await run('IOC');
    expect(ioc?.status).toBe('expired');
    // The oracle: the IOC's fill is what the book held at the trigger, less than the 500 asked.
    expect(ioc?.filled).toBeGreaterThan(0);
    expect(ioc?.filled).toBeLessThan(500);
    const fok = await run('FOK');
    expect(fok).toMatchObject({ status: 'expired', filled: 0 });
  });
});
