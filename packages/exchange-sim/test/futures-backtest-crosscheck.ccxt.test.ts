import { readFundingRateFile, readBarsFile as readSeries } from '@keel/candles';
import {
  defineStrategy,
  type HedgeSide,
  type OrderSide,
  type PositionMode,
  runBacktest,
  type SlippageModel,
} from '@keel/core';
import { afterEach, describe, expect, it } from 'vitest';
import {
  type FuturesHarness,
  futuresHarness,
  HAS_SHARED_DATA,
  KEY,
  LINK,
  LINK_FILE,
  LINK_FUNDING,
  noteSkip,
  TICK,
} from './futures-helpers.ts';

// The backtest's funding and liquidation against the simulator's, on the same LINKUSDT 1m bars of
// 2023-02 with Binance's funding archive: the same position opened at the same price in both (the
// simulator through the real ccxt binanceusdm client), then each left to run until it is
// liquidated. Funding payments, the liquidation price, the close price, the clearance fee and the
// wallet must agree (the simulator keeps 8 decimals, as Binance does).

const T = (d: number, h: number, m = 0): number => Date.UTC(2023, 1, d, h, m);
const TAKER = 0.0005;

/** The simulator's book in these tests: a market buy pays one tick over the price, a sell gets the price. */
const oneTickSpread: SlippageModel = {
  price: (side: OrderSide, p: number) => (side === 'buy' ? Math.round((p + TICK) / TICK) * TICK : p),
  capacity: () => Number.POSITIVE_INFINITY,
};

interface Outcome {
  funding: number[];
  liquidation: { liquidationPrice: number; price: number; clearanceFee: number; realizedPnl: number };
  /** Every forced close (a cross hedge closes both sides). */
  liquidations: { liquidationPrice: number; price: number; clearanceFee: number; realizedPnl: number }[];
  wallet: number;
}

/** The orders opened at the start: one-way (no side), or hedge-mode orders naming their side. */
type Opening = { side: OrderSide; amount: number; positionSide?: HedgeSide };

async function simulator(
  h: FuturesHarness,
  side: OrderSide,
  amount: number,
  leverage: number,
  mode: 'isolated' | 'cross',
  minutes: number,
  more: readonly Opening[] = [],
  positionMode: PositionMode = 'one-way',
): Promise<Outcome> {
  const { sim, ex } = h;
  if (positionMode === 'hedge') {
    await ex.loadMarkets();
    await ex.setPositionMode(true, LINK);
  }
  if (mode === 'isolated') await ex.setMarginMode('isolated', LINK);
  await ex.setLeverage(leverage, LINK);
  // In hedge mode the first order opens the side it buys or sells.
  const first: Opening =
    positionMode === 'hedge' ? { side, amount, positionSide: side === 'buy' ? 'long' : 'short' } : { side, amount };
  for (const o of [first, ...more])
    await ex.createOrder(
      LINK,
      'market',
      o.side,
      o.amount,
      undefined,
      o.positionSide === undefined ? {} : { positionSide: o.positionSide.toUpperCase() },
    );
  sim.step(minutes);
  const liqs = sim.liquidations(KEY.apiKey);
  const [liq] = liqs;
  if (!liq) throw new Error('the simulator did not liquidate the position');
  const balance = await ex.fetchBalance();
  const assets = (balance.info as { assets: { asset: string; walletBalance: string }[] }).assets;
  return {
    funding: sim
      .income(KEY.apiKey)
      .filter((r) => r.incomeType === 'FUNDING_FEE')
      .map((r) => r.income),
    liquidation: liq,
    liquidations: liqs,
    wallet: Number(assets.find((a) => a.asset === 'USDT')?.walletBalance),
  };
}

function backtest(
  start: number,
  side: OrderSide,
  amount: number,
  cash: number,
  leverage: number,
  mode: 'isolated' | 'cross',
  clearanceRate: number,
  positionSide?: HedgeSide,
  more: readonly Opening[] = [],
): Outcome {
  const bars = readSeries(LINK_FILE).series;
  const funding = readFundingRateFile(LINK_FUNDING, { symbol: LINK }).series;
  const r = runBacktest({
    strategy: defineStrategy({
      name: 'open-once',
      params: { safeParse: (x: unknown) => ({ success: true as const, data: x }) },
      warmup: 'none',
      onStart: () => ({ done: false }),
      onBar(ctx, s) {
        if (s.done) return;
        s.done = true;
        for (const o of [{ side, amount, positionSide }, ...more]) {
          const opts = o.positionSide === undefined ? undefined : { positionSide: o.positionSide };
          if (o.side === 'buy') ctx.buy(o.amount, opts);
          else ctx.sell(o.amount, opts);
        }
      },
    }),
    // The decision on the bar before `start` fills at `start`'s open, where the simulator's starts.
    data: [{ symbol: LINK, timeframe: '1m', series: bars, instrument: { tickSize: TICK, stepSize: 0.01 } }],
    from: start - 60_000,
    cash,
    fee: TAKER,
    slippage: oneTickSpread,
    futures: () => ({
      leverage,
      marginMode: mode,
      funding,
      clearanceRate,
      ...(positionSide !== undefined ? { positionMode: 'hedge' as const } : {}),
    }),
  });
  const [l] = r.futures?.liquidations ?? [];
  if (!l) throw new Error('the backtest did not liquidate the position');
  return {
    funding: r.futures!.payments.filter((p) => p.time < l.time).map((p) => p.payment),
    liquidation: l,
    liquidations: [...(r.futures?.liquidations ?? [])],
    wallet: r.finalCash,
  };
}

function expectSame(bt: Outcome, sm: Outcome): void {
  expect(bt.funding.length, 'funding payments').toBe(sm.funding.length);
  for (const [i, f] of bt.funding.entries()) expect(f, `funding ${i}`).toBeCloseTo(sm.funding[i] as number, 8);
  expect(bt.liquidation.liquidationPrice).toBeCloseTo(sm.liquidation.liquidationPrice, 7);
  expect(bt.liquidation.price).toBe(sm.liquidation.price);
  expect(bt.liquidation.realizedPnl).toBeCloseTo(sm.liquidation.realizedPnl, 8);
  expect(bt.liquidation.clearanceFee).toBeCloseTo(sm.liquidation.clearanceFee, 7);
  expect(bt.wallet).toBeCloseTo(sm.wallet, 7);
  expect(bt.liquidations.length, 'forced closes').toBe(sm.liquidations.length);
  for (const [i, l] of bt.liquidations.entries()) {
    const s = sm.liquidations[i] as Outcome['liquidation'];
    expect(l.price, `forced close ${i}`).toBe(s.price);
    expect(l.realizedPnl, `forced close ${i}`).toBeCloseTo(s.realizedPnl, 8);
    expect(l.clearanceFee, `forced close ${i}`).toBeCloseTo(s.clearanceFee, 7);
  }
}

describe.skipIf(!HAS_SHARED_DATA)('backtest = simulator: funding and liquidation on the same bars', () => {
  if (!HAS_SHARED_DATA) noteSkip('futures backtest cross-check');
  let h: FuturesHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('isolated 50x long of 100 LINK from 2023-02-01 06:00: liquidated at 07:01, same price and fee', async () => {
    h = await futuresHarness({ startTime: T(1, 6), accounts: [{ ...KEY, balances: { USDT: 1_000 } }] });
    const sm = await simulator(h, 'buy', 100, 50, 'isolated', 90);
    const bt = backtest(T(1, 6), 'buy', 100, 1_000, 50, 'isolated', 0.0125);
    expect(sm.liquidation.price).toBe(6.814); // docs/futures.md's worked example
    expectSame(bt, sm);
  });

  it('cross 50x long on a 20 USDT wallet, clearance 0.5 %: the 08:00 funding moves its liquidation price', async () => {
    h = await futuresHarness({
      startTime: T(1, 6),
      accounts: [{ ...KEY, balances: { USDT: 20 } }],
      contract: { liquidationFee: 0.005 },
    });
    const sm = await simulator(h, 'buy', 100, 50, 'cross', 200);
    const bt = backtest(T(1, 6), 'buy', 100, 20, 50, 'cross', 0.005);
    expect(sm.funding).toHaveLength(1);
    expect(sm.liquidation.price).toBe(6.756);
    expectSame(bt, sm);
  });

  it('isolated 20x short of 1,000 LINK from 2023-02-01 06:00: receives funding at 08:00 and 16:00, then liquidated', async () => {
    h = await futuresHarness({ startTime: T(1, 6) });
    const sm = await simulator(h, 'sell', 1_000, 20, 'isolated', 18 * 60);
    const bt = backtest(T(1, 6), 'sell', 1_000, 10_000, 20, 'isolated', 0.0125);
    expect(sm.funding.length).toBeGreaterThanOrEqual(2);
    expectSame(bt, sm);
  });

  it('hedge cross 50x, LONG 100 and SHORT 40 from 2023-02-09 16:00 on 25 USDT, clearance 0.5 %: one liquidation price closes both sides', async () => {
    // The orders reach the simulator a second after 16:00, after Binance's 16:00:00.001 funding,
    // as a bot's orders decided on the 15:59 close do: neither side pays that funding, in either.
    h = await futuresHarness({
      startTime: T(9, 16) + 1_000,
      accounts: [{ ...KEY, balances: { USDT: 25 } }],
      contract: { liquidationFee: 0.005 },
    });
    const short: Opening = { side: 'sell', amount: 40, positionSide: 'short' };
    const sm = await simulator(h, 'buy', 100, 50, 'cross', 240, [short], 'hedge');
    const bt = backtest(T(9, 16), 'buy', 100, 25, 50, 'cross', 0.005, 'long', [short]);
    expect(sm.funding).toHaveLength(0);
    expect(sm.liquidations).toHaveLength(2);
    expectSame(bt, sm);
  });
});

describe.skipIf(!HAS_SHARED_DATA)('backtest = simulator: the margin of a reversal', () => {
  let h: FuturesHarness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('isolated 1x: reversing a long of 0.6 of the wallet is accepted (its isolated wallet comes back first), a reversal past the wallet refused, in both', async () => {
    // Binance nets an order's margin with the position's (an order's margin requirement is
    // max(|position + bids|, |position - asks|) / leverage): what a reversing order closes frees its
    // margin for the part that opens. 860 LINK at 6.908 hold 5,940.88 of 10,000; selling 1,720 at
    // 6.905 opens a short of 860 (5,938.3), which the rest of the wallet alone could not hold.
    h = await futuresHarness({ startTime: T(1, 6) });
    const { ex, sim } = h;
    await ex.setMarginMode('isolated', LINK);
    await ex.setLeverage(1, LINK);
    await ex.createOrder(LINK, 'market', 'buy', 860);
    sim.step(1);
    const past = await ex.createOrder(LINK, 'market', 'sell', 2_360).then(
      () => 'accepted',
      (e: Error) => e.message,
    );
    expect(past).toContain('"code":-2019');
    await ex.createOrder(LINK, 'market', 'sell', 1_720);
    const pos = sim.futuresAccount(KEY.apiKey).positions.find((p) => p.position.symbol === 'LINKUSDT')?.position;
    expect(pos?.size).toBe(-860);
    expect(pos?.isolatedWallet).toBeCloseTo(860 * 6.905, 8);

    const r = runBacktest({
      strategy: defineStrategy({
        name: 'reverse',
        params: { safeParse: (x: unknown) => ({ success: true as const, data: x }) },
        warmup: 'none',
        onStart: () => ({ n: 0 }),
        onBar(ctx, s) {
          s.n++;
          if (s.n === 1) ctx.buy(860);
          if (s.n === 2) {
            ctx.sell(2_360);
            ctx.sell(1_720);
          }
        },
      }),
      data: [
        {
          symbol: LINK,
          timeframe: '1m',
          series: readSeries(LINK_FILE).series,
          instrument: { tickSize: TICK, stepSize: 0.01 },
        },
      ],
      from: T(1, 6) - 60_000,
      to: T(1, 6, 3),
      cash: 10_000,
      fee: TAKER,
      slippage: oneTickSpread,
      futures: () => ({ leverage: 1, marginMode: 'isolated', funding: null }),
    });
    expect(r.orders.map((o) => [o.request.side, o.request.amount, o.status])).toEqual([
      ['buy', 860, 'filled'],
      ['sell', 2_360, 'rejected'],
      ['sell', 1_720, 'filled'],
    ]);
    expect(r.fills.map((f) => [f.side, f.amount, f.price])).toEqual(
      sim.futuresOrders(KEY.apiKey).flatMap((o) => o.fills.map((f) => [o.side.toLowerCase(), f.qty, f.price])),
    );
  });
});
