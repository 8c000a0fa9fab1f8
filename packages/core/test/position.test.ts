import { describe, expect, it } from 'vitest';
import {
  Account,
  type BacktestConfig,
  defineInstrument,
  defineStrategy,
  Engine,
  type EngineEvent,
  isDust,
  type PositionView,
  percentFee,
  runBacktest,
  SeriesCursor,
  SimulatedVenue,
  type StrategyContext,
  tradableAmount,
  volumeShareSlippage,
} from '../src/index.ts';
import { bars, scripted } from './helpers.ts';

// Binance spot BTCUSDT's filters as the exchange simulator serves them.
const BINANCE = { tickSize: 0.01, stepSize: 0.00001, minAmount: 0.00001, minNotional: 5 };
const anyParams = { safeParse: (x: unknown) => ({ success: true as const, data: x }) };
const flat = (n: number, price = 40_000, volume = 100) =>
  bars(Array.from({ length: n }, () => [price, price + 10, price - 10, price, volume]));

const run = (strategy: BacktestConfig['strategy'], extra: Partial<BacktestConfig> & { n?: number } = {}) =>
  runBacktest({
    strategy,
    data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: extra.n ? flat(extra.n) : flat(40), instrument: BINANCE }],
    cash: 100_000,
    fee: 0.001,
    ...extra,
  });

const copy = (p: PositionView) => ({ size: p.size, dust: p.dust, inFlight: p.inFlight, avgPrice: p.avgPrice });

describe('dust: one definition (tradableAmount / isDust)', () => {
  const inst = defineInstrument({ symbol: 'BTC/USDT', ...BINANCE });
  it('below the step, the minimum amount or the minimum notional at the price is dust; the rest rounds down', () => {
    // Oracle: Binance's LOT_SIZE and NOTIONAL filters, worked by hand.
    expect(tradableAmount(inst, 0.096903, 40_000)).toBe(0.0969);
    expect(tradableAmount(inst, 0.000003, 40_000)).toBe(0);
    expect(tradableAmount(inst, 0.0001, 40_000)).toBe(0); // 4 USDT < 5
    expect(tradableAmount(inst, 0.0001, 60_000)).toBe(0.0001); // 6 USDT
    expect(isDust(inst, 1.3877787807814457e-17, 40_000)).toBe(true);
    expect(isDust(inst, -0.000003, 40_000)).toBe(true);
    expect(isDust(inst, 0, 40_000)).toBe(false);
    // A research market (no filters) has no dust: backtrader's fractional sizes stay exact.
    const research = defineInstrument({ symbol: 'BTC/USDT' });
    expect(tradableAmount(research, 1e-17, 40_000)).toBe(1e-17);
    expect(isDust(research, 1e-17, 40_000)).toBe(false);
  });
});

describe('positions the strategy sees: dust is flat, orders in flight count', () => {
  it('with the fee taken in the coin bought, a strategy that enters when flat keeps trading: every exit leaves dust, shown and not traded', () => {
    // Enter 0.097 when flat; close on the next bar. Oracle, by hand: each buy of 0.097 holds
    // 0.097 - 0.000097 = 0.096903 plus the dust before it; each exit sells that rounded down to
    // the step (0.00001), so the dust goes 3, 6, 9, then 0.096912 -> sells 0.09691, leaves 2 (e-6).
    const seen: ReturnType<typeof copy>[] = [];
    const enterExit = defineStrategy({
      name: 'enter-exit',
      params: anyParams,
      warmup: 'none',
      onStart: () => ({}),
      onBar(ctx) {
        const p = ctx.position();
        seen.push(copy(p));
        if (p.size === 0) ctx.buy(0.097);
        else ctx.close();
      },
    });
    const r = run(enterExit, { feeAsset: 'received', n: 17 });
    const sells = r.fills.filter((f) => f.side === 'sell').map((f) => f.amount);
    expect(sells).toEqual([0.0969, 0.0969, 0.0969, 0.09691, 0.0969, 0.0969, 0.09691, 0.0969]);
    expect(r.trades).toHaveLength(8);
    expect(r.trades.every((t) => t.direction === 'long')).toBe(true);
    expect(r.orders.filter((o) => o.status === 'denied')).toEqual([]);
    // What the strategy saw on the bars after each exit: flat, with the dust reported.
    const afterExits = seen.filter((_, i) => i >= 2 && i % 2 === 0).map((p) => [p.size, p.dust]);
    const dust = [3e-6, 6e-6, 9e-6, 2e-6, 5e-6, 8e-6, 1e-6, 4e-6];
    expect(afterExits.map(([s]) => s)).toEqual(dust.map(() => 0));
    for (const [i, [, d]] of afterExits.entries()) expect(d).toBeCloseTo(dust[i]!, 12);
    // While long: the whole holding (dust included) is the size, the part below the step is dust.
    expect(seen[1]!.size).toBeCloseTo(0.096903, 12);
    expect(seen[1]!.dust).toBeCloseTo(0.000003, 12);
  });

  it('float dust from partial fills (1.39e-17 with no fee at all) is flat: the strategy enters again', () => {
    // Buys of 0.1 filled 0.01 at a time (10 % of a 0.1 bar volume) add up to 0.09999999999999999;
    // a sell of everything the strategy holds leaves -1.3877787807814457e-17 or the like.
    const enterExit = defineStrategy({
      name: 'partial-exit',
      params: anyParams,
      warmup: 'none',
      onStart: () => ({ n: 0 }),
      onBar(ctx, s) {
        s.n++;
        const p = ctx.position();
        if (p.size === 0 && p.inFlight === 0 && s.n < 60)
          ctx.submit({ type: 'limit', side: 'buy', amount: 0.1, price: 40_100 });
        else if (p.size > 0 && p.inFlight === 0 && ctx.openOrders().length === 0) ctx.close();
      },
    });
    const r = runBacktest({
      strategy: enterExit,
      data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: flat(90, 40_000, 0.1), instrument: { stepSize: 0.00001 } }],
      cash: 100_000,
      slippage: volumeShareSlippage(0.1, 0),
    });
    expect(r.trades.length).toBeGreaterThanOrEqual(3);
  });

  it('a market without filters: an exit whose partial fills add up 6.9e-18 above the entry closes it, no phantom short', () => {
    // The fills of `keel backtest --participation 0.01` on BTCUSDT 2024-01's first 600 bars (o13,
    // o14). Oracle, by hand in decimals: 0.1547684 + 0.0455787 + 0.0212999246844644 =
    // 0.1171788 + 0.0487397 + 0.0496894 + 0.006039124684464409 = 0.2216470246844644 (to the last
    // digit the order carries): one long round trip, flat after it. In binary the sells add up
    // 6.9e-18 more, which was booked as a short (a second trade, and a buy of 6.9e-18 to close it).
    const amount = 0.2216470246844644;
    const volumes = [1, 0.1547684, 0.0455787, 1, 1, 0.1171788, 0.0487397, 0.0496894, 1, 1, 1];
    const series = bars(volumes.map((v) => [40_000, 40_010, 39_990, 40_000, v]));
    const seen: number[] = [];
    const strategy = scripted({
      0: (ctx) => void ctx.submit({ type: 'market', side: 'buy', amount }),
      4: (ctx) => void ctx.close(),
      9: (ctx) => void seen.push(ctx.position().size),
    });
    const r = runBacktest({
      strategy,
      data: [{ symbol: 'BTC/USDT', timeframe: '1m', series }],
      cash: 100_000,
      slippage: volumeShareSlippage(1, 0),
    });
    expect(r.fills.map((f) => f.amount).slice(0, 6)).toEqual([
      0.1547684, 0.0455787, 0.0212999246844644, 0.1171788, 0.0487397, 0.0496894,
    ]);
    expect(r.trades.map((t) => t.direction)).toEqual(['long']);
    expect(r.openTrades).toEqual([]);
    expect(seen).toEqual([0]);
    expect(r.portfolio.positions[0]!.size).toBe(0);
    expect(r.orders.length).toBe(2);
  });

  it('a market order in flight counts: a target repeated while its entry is pending sends nothing more; a close while a close is in flight neither', () => {
    // latencyBars 3: an order decided on bar t fills at bar t+3's open, so it is in flight on
    // bars t+1 and t+2, as a live order whose response is pending.
    const seen: ReturnType<typeof copy>[] = [];
    const look = (c: StrategyContext) => void seen.push(copy(c.position()));
    const eager = scripted({
      0: (c) => void c.orderTargetPercent(0.5),
      1: (c) => {
        look(c);
        c.orderTargetPercent(0.5);
      },
      2: (c) => void c.orderTargetPercent(0.5),
      4: (c) => {
        look(c);
        c.close();
      },
      5: (c) => {
        look(c);
        c.close();
      },
      6: (c) => void c.close(),
      8: look,
    });
    const r = run(eager, { latencyBars: 3, feeAsset: 'received' });
    expect(r.orders.map((o) => `${o.request.side} ${o.status}`)).toEqual(['buy filled', 'sell filled']);
    const bought = r.fills[0]!.amount;
    expect(bought).toBeCloseTo(50_000 / 40_000, 4); // 1.25 rounded down to the step
    expect(seen[0]).toMatchObject({ size: bought, inFlight: bought }); // nothing held yet
    expect(seen[0]!.avgPrice).toBeNaN();
    const held = bought - bought * 0.001;
    expect(seen[1]!.size).toBeCloseTo(held, 12);
    expect(seen[2]!.size).toBe(0); // the close in flight takes everything sellable: dust is left
    expect(seen[2]!.inFlight).toBe(-r.fills[1]!.amount);
    expect(seen[3]).toMatchObject({ size: 0, inFlight: 0 });
    expect(seen[3]!.dust).toBeCloseTo(held - r.fills[1]!.amount, 12);
  });

  it('a spot sell never sells what is not held: a second sell that arrives with the first is cancelled at the fill', () => {
    const twice = scripted({
      0: (c) => void c.buy(1),
      2: (c) => {
        c.sell(1);
        c.sell(1);
      },
    });
    const r = run(twice);
    expect(r.orders.map((o) => o.status)).toEqual(['filled', 'filled', 'cancelled']);
    expect(r.orders[2]!.reason).toMatch(/insufficient BTC at fill: selling 1, holding 0/);
  });

  it('trade ids derive from the client order id: deterministic, and unique per fill of an order', () => {
    const r = runBacktest({
      strategy: scripted({ 0: (c) => void c.buy(0.3) }),
      data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: flat(6, 40_000, 1) }],
      cash: 100_000,
      slippage: volumeShareSlippage(0.1, 0),
    });
    expect(r.fills.map((f) => f.tradeId)).toEqual(['o1-t1', 'o1-t2', 'o1-t3']);
  });

  it('an order hold denies every strategy order with its reason, and nothing reaches the venue', () => {
    const inst = defineInstrument({ symbol: 'BTC/USDT', ...BINANCE });
    const account = new Account('USDT', 100_000);
    const venue = new SimulatedVenue([inst], account);
    const events: EngineEvent[] = [];
    const engine = new Engine({
      instruments: [inst],
      account,
      venue,
      strategy: scripted({ 0: (c) => void c.buy(0.01), 1: (c) => void c.buy(0.01) }),
      params: {},
      feeds: [{ symbol: 'BTC/USDT', timeframe: '1m' }],
      onEvent: (e) => events.push(e),
    });
    engine.start();
    const series = flat(3);
    const cur = new SeriesCursor(series);
    engine.holdOrders('catching up: bar missed while the bot was down');
    engine.onBar(0, cur);
    expect(venue.workingOrders()).toHaveLength(0);
    engine.holdOrders(null);
    cur.i = 1;
    engine.onBar(0, cur);
    expect(
      events.filter((e) => e.type.startsWith('order.')).map((e) => [e.type, 'reason' in e ? e.reason : '']),
    ).toEqual([
      ['order.denied', 'catching up: bar missed while the bot was down'],
      ['order.submitted', ''],
    ]);
    expect(venue.workingOrders()).toHaveLength(1);
  });

  it('settleOn: the venue fills on a bar the strategy never sees, as the next bar of a backtest would', () => {
    const inst = defineInstrument({ symbol: 'BTC/USDT', ...BINANCE });
    const account = new Account('USDT', 100_000);
    const venue = new SimulatedVenue([inst], account, { fees: percentFee(0.001) });
    let sawBar1 = false;
    const engine = new Engine({
      instruments: [inst],
      account,
      venue,
      strategy: scripted({
        0: (c) => void c.buy(0.5),
        1: () => {
          sawBar1 = true;
        },
      }),
      params: {},
      feeds: [{ symbol: 'BTC/USDT', timeframe: '1m' }],
    });
    engine.start();
    // Bar 1 opens at 40,100: the oracle of a backtest of the two bars, fill for fill.
    const series = bars([
      [40_000, 40_010, 39_990, 40_000],
      [40_100, 40_150, 40_050, 40_120],
    ]);
    const cur = new SeriesCursor(series);
    engine.onBar(0, cur);
    cur.i = 1;
    engine.settleOn(0, cur);
    expect(sawBar1, 'the strategy never saw bar 1').toBe(false);
    const bt = runBacktest({
      strategy: scripted({ 0: (c) => void c.buy(0.5) }),
      data: [{ symbol: 'BTC/USDT', timeframe: '1m', series, instrument: BINANCE }],
      cash: 100_000,
      fee: 0.001,
    });
    expect(engine.openOrders()).toEqual([]);
    const got = engine.order(bt.orders[0]!.request.id);
    expect(bt.fills).toHaveLength(1);
    expect(got?.status).toBe('filled');
    expect(got?.avgPrice).toBe(bt.fills[0]!.price);
    expect(bt.fills[0]!.price).toBe(40_100);
    expect(account.cash).toBe(bt.finalCash);
  });
});
