/**
 * Immediate-or-cancel and fill-or-kill, as Binance executes them: against the book at the moment
 * the order reaches it (a limit order: the open of the bar it arrives on; a stop-limit: the moment
 * it triggers), and what does not execute then expires. Later in the same bar is not "at once": a
 * backtest that filled it there would be optimistic, and differ from live. The exchange simulator
 * matches IOC/FOK the same way (packages/exchange-sim), and the venue contract suite holds both
 * venues to it (packages/runtime/test/venue-contract.int.test.ts).
 * Oracle: each bar's path by hand (docs/conventions.md): a bar closing at or above its open runs
 * O -> L -> H -> C, one closing below O -> H -> L -> C; orders decided on bar t arrive at bar t+1's
 * open; the venue reports a bar's fills and expiries at that bar's close time (bar i: T0 + (i+1) min).
 */
import { describe, expect, it } from 'vitest';
import {
  type BacktestConfig,
  type OrderInput,
  type OrderState,
  runBacktest,
  type StrategyContext,
  volumeShareSlippage,
} from '../src/index.ts';
import { bars, perpetual, scripted, T0 } from './helpers.ts';

const MIN = 60_000;
const up = [100, 101, 99, 100.5];
const IOC_NONE = 'IOC: expired with 0 of 1 filled (the rest could not fill at once)';
const FOK_NONE = 'FOK: expired with 0 of 1 filled (the whole amount could not fill at once)';

/** Runs `script` on BTC/USDT spot (fee 0.1%, 10,000 USDT). */
function run(
  rows: readonly (readonly number[])[],
  script: Record<number, (ctx: StrategyContext) => void>,
  extra: Partial<BacktestConfig> = {},
) {
  return runBacktest({
    strategy: scripted(script),
    data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: bars(rows) }],
    cash: 10_000,
    fee: 0.001,
    ...extra,
  });
}

/** The orders of `inputs`, all sent on bar 0, by tag. */
function sendAll(rows: readonly (readonly number[])[], inputs: readonly OrderInput[], extra?: Partial<BacktestConfig>) {
  const r = run(
    rows,
    {
      0: (ctx) => {
        for (const i of inputs) ctx.submit(i);
      },
    },
    extra,
  );
  const byTag = (tag: string) => r.orders.find((o) => o.request.tag === tag) as OrderState;
  return { r, byTag };
}

/** A stop-limit buy of 1 with its stop at 102. */
const stopBuy = (price: number, timeInForce: 'GTC' | 'IOC' | 'FOK', tag: string): OrderInput => ({
  type: 'stop-limit',
  side: 'buy',
  amount: 1,
  stopPrice: 102,
  price,
  timeInForce,
  tag,
});

const fillsOf = (r: ReturnType<typeof run>) =>
  r.fills.map((f) => [f.tag, f.side, f.amount, f.price, f.liquidity, f.time]);
const ended = (o: OrderState) => [o.status, o.filled, o.reason, o.updatedAt];

describe('IOC and FOK limit orders execute at arrival (the open) or expire there', () => {
  // Bar 1 closes up: 100 -> 97 -> 101 -> 100.5. A buy at 98 is below the open, so not marketable
  // on arrival; the path reaches 98 on its way down to 97. Bar 2 (99 -> 95 -> 100 -> 99) reaches
  // 98 again, so an IOC left working would fill there too.
  const rows = [up, [100, 101, 97, 100.5], [99, 100, 95, 99]];

  it('a buy below the open but above the low expires at the open, unfilled; GTC rests and fills at 98', () => {
    const { r, byTag } = sendAll(rows, [
      { type: 'limit', side: 'buy', amount: 1, price: 98, timeInForce: 'IOC', tag: 'ioc' },
      { type: 'limit', side: 'buy', amount: 1, price: 98, timeInForce: 'FOK', tag: 'fok' },
      { type: 'limit', side: 'buy', amount: 1, price: 98, tag: 'gtc' },
    ]);
    expect(ended(byTag('ioc')), 'IOC').toEqual(['expired', 0, IOC_NONE, T0 + 2 * MIN]);
    expect(ended(byTag('fok')), 'FOK').toEqual(['expired', 0, FOK_NONE, T0 + 2 * MIN]);
    // The control: the same price GTC is reached later in the bar (maker, at its limit).
    expect(fillsOf(r)).toEqual([['gtc', 'buy', 1, 98, 'maker', T0 + 2 * MIN]]);
    expect(r.finalCash).toBeCloseTo(10_000 - 98 - 98 * 0.001, 9);
  });

  it('a buy at or above the open fills at the open (the arrival price), as taker', () => {
    const { r, byTag } = sendAll(rows, [
      { type: 'limit', side: 'buy', amount: 1, price: 100, timeInForce: 'IOC', tag: 'at' },
      { type: 'limit', side: 'buy', amount: 1, price: 100.5, timeInForce: 'IOC', tag: 'above' },
      { type: 'limit', side: 'buy', amount: 1, price: 101, timeInForce: 'FOK', tag: 'fok' },
    ]);
    const tags = ['at', 'above', 'fok'];
    for (const t of tags) expect(byTag(t).status, t).toBe('filled');
    expect(fillsOf(r)).toEqual(tags.map((t) => [t, 'buy', 1, 100, 'taker', T0 + 2 * MIN]));
    expect(r.fills.map((f) => f.fee)).toEqual([0.1, 0.1, 0.1]);
  });

  it('a sell above the open but below the high expires at the open, unfilled', () => {
    // Bar 1: the buy fills at 100. Bar 2 closes flat, 100 -> 99.5 -> 101 -> 100: 100.8 is
    // reached on the way up, after the open.
    const r = run([up, up, [100, 101, 99.5, 100], up], {
      0: (ctx) => void ctx.buy(1, { tag: 'entry' }),
      1: (ctx) =>
        void ctx.submit({ type: 'limit', side: 'sell', amount: 1, price: 100.8, timeInForce: 'IOC', tag: 'ioc' }),
    });
    const ioc = r.orders.find((o) => o.request.tag === 'ioc') as OrderState;
    expect(ended(ioc)).toEqual(['expired', 0, IOC_NONE, T0 + 3 * MIN]);
    expect(fillsOf(r)).toEqual([['entry', 'buy', 1, 100, 'taker', T0 + 2 * MIN]]);
    expect(r.portfolio.positions.find((p) => p.symbol === 'BTC/USDT')?.size).toBe(1);
  });

  it('with a volume cap: nothing fillable at the open (a bar with no volume) expires it; it does not fill on the next bar', () => {
    // volumeShareSlippage(0.25): bar 1 has volume 0, so nothing can fill at its open; bar 2 opens
    // at 100 (marketable for 100.5) with volume 100.
    const { r, byTag } = sendAll(
      [up, [100, 101, 97, 100.5, 0], [100, 101, 97, 100.5, 100]],
      [{ type: 'limit', side: 'buy', amount: 1, price: 100.5, timeInForce: 'IOC', tag: 'ioc' }],
      { slippage: volumeShareSlippage(0.25, 0) },
    );
    expect(ended(byTag('ioc'))).toEqual(['expired', 0, IOC_NONE, T0 + 2 * MIN]);
    expect(r.fills).toEqual([]);
  });
});

describe('IOC and FOK stop-limit orders execute when they trigger, at that moment', () => {
  it('marketable at its trigger: fills at the trigger price, as taker', () => {
    // Bar 1 closes up, 100 -> 99.8 -> 103 -> 102.5: the buy stop at 102 triggers on the way up;
    // at 102 a limit of 102.5 is marketable.
    const { r, byTag } = sendAll([up, [100, 103, 99.8, 102.5]], [stopBuy(102.5, 'IOC', 'ioc')]);
    expect(byTag('ioc').status).toBe('filled');
    expect(fillsOf(r)).toEqual([['ioc', 'buy', 1, 102, 'taker', T0 + 2 * MIN]]);
    expect(r.fills[0]!.fee).toBeCloseTo(0.102, 12);
  });

  it('not marketable at its trigger: expires there, though the path comes back to its limit later in the bar', () => {
    // Bar 1 closes down, 100 -> 103 -> 101 -> 101.2: the stop at 102 triggers on 100 -> 103, where
    // a limit of 101.5 is not marketable; the fall 103 -> 101 passes 101.5 afterwards.
    const { r, byTag } = sendAll(
      [up, [100, 103, 101, 101.2], up],
      [stopBuy(101.5, 'IOC', 'ioc'), stopBuy(101.5, 'FOK', 'fok'), stopBuy(101.5, 'GTC', 'gtc')],
    );
    expect(ended(byTag('ioc')), 'IOC').toEqual(['expired', 0, IOC_NONE, T0 + 2 * MIN]);
    expect(ended(byTag('fok')), 'FOK').toEqual(['expired', 0, FOK_NONE, T0 + 2 * MIN]);
    expect(byTag('ioc').triggered).toBe(true);
    // The control: GTC rests from the trigger on and fills at its limit on the fall.
    expect(fillsOf(r)).toEqual([['gtc', 'buy', 1, 101.5, 'maker', T0 + 2 * MIN]]);
  });

  it('before its trigger it waits like any stop: time in force is judged at the trigger, not at arrival', () => {
    // Bar 1 (high 101) does not reach 102; bar 2 (100 -> 99.8 -> 103 -> 102.5) triggers at 102.
    const { r, byTag } = sendAll(
      [up, up, [100, 103, 99.8, 102.5]],
      [
        stopBuy(102.5, 'IOC', 'ioc'),
        stopBuy(102.5, 'FOK', 'fok'),
        { type: 'stop-market', side: 'buy', amount: 1, stopPrice: 102, timeInForce: 'IOC', tag: 'stop' },
      ],
    );
    const tags = ['ioc', 'fok', 'stop'];
    for (const t of tags) expect(byTag(t).status, t).toBe('filled');
    expect(fillsOf(r)).toEqual(tags.map((t) => [t, 'buy', 1, 102, 'taker', T0 + 3 * MIN]));
  });

  it('with a volume cap: what the bar’s volume fills at the trigger fills, the rest expires', () => {
    // volumeShareSlippage(0.25, no impact), volume 10: 2.5 of 5 can fill at the trigger (102).
    const { r, byTag } = sendAll(
      [up, [100, 103, 99.8, 102.5, 10], [102, 103, 99, 102, 100]],
      [{ type: 'stop-limit', side: 'buy', amount: 5, stopPrice: 102, price: 102.5, timeInForce: 'IOC', tag: 'ioc' }],
      { slippage: volumeShareSlippage(0.25, 0) },
    );
    expect(ended(byTag('ioc'))).toEqual([
      'expired',
      2.5,
      'IOC: expired with 2.5 of 5 filled (the rest could not fill at once)',
      T0 + 2 * MIN,
    ]);
    expect(fillsOf(r)).toEqual([['ioc', 'buy', 2.5, 102, 'taker', T0 + 2 * MIN]]);
  });

  it('a perpetual’s FOK stop-limit is accepted, waits for its trigger and is judged there (fills, or expires)', () => {
    // USDⓈ-M refuses a FOK order it cannot fill at once (-5021) when it reaches the book; a
    // conditional order reaches it when it triggers (as the futures simulator: a STOP order's FOK
    // expires at its trigger). Bar 2 closes down, 100 -> 103 -> 101 -> 101.2: the stop at 102
    // triggers on the way up; 102.5 is marketable there, 101.5 is not.
    const r = runBacktest({
      strategy: scripted({
        0: (ctx) => {
          ctx.submit(stopBuy(102.5, 'FOK', 'fills'));
          ctx.submit(stopBuy(101.5, 'FOK', 'kills'));
        },
      }),
      ...perpetual([
        [100, 100, 100, 100, 100],
        [100, 101, 99, 100, 100],
        [100, 103, 101, 101.2, 100],
      ]),
      cash: 10_000,
    });
    const byTag = (tag: string) => r.orders.find((o) => o.request.tag === tag) as OrderState;
    expect(ended(byTag('fills'))).toEqual(['filled', 1, undefined, T0 + 3 * MIN]);
    expect(ended(byTag('kills'))).toEqual(['expired', 0, FOK_NONE, T0 + 3 * MIN]);
    expect(r.fills.map((f) => [f.price, f.liquidity])).toEqual([[102, 'taker']]);
  });
});

describe('what time in force does not change', () => {
  it('a market order (IOC inside the engine) fills at the next bar’s open, as before', () => {
    const r = run([up, [100, 101, 97, 100.5]], { 0: (ctx) => void ctx.buy(1, { tag: 'm' }) });
    expect(r.orders[0]!.request.timeInForce).toBe('IOC');
    expect(fillsOf(r)).toEqual([['m', 'buy', 1, 100, 'taker', T0 + 2 * MIN]]);
  });

  it('bracket and OCO legs (GTC) rest and fill where the path reaches them, later in the bar', () => {
    // Bar 1 (100 -> 97 -> 101 -> 100.5): the bracket's limit entry at 98 fills on the way down.
    // Its exits arrive on bar 2 (100 -> 99 -> 106 -> 105): the take-profit at 105 fills on the
    // way up, the stop-loss is cancelled. The OCO's limit buy at 97 (the stop at 104 not reached)
    // fills in bar 1 at 97, the low.
    const r = run([up, [100, 101, 97, 100.5], [100, 106, 99, 105], up], {
      0: (ctx) => {
        ctx.bracket({ side: 'buy', amount: 1, entryPrice: 98, takeProfit: 105, stopLoss: 95 });
        ctx.oco(
          { type: 'limit', side: 'buy', amount: 1, price: 97, tag: 'oco-limit' },
          { type: 'stop-market', side: 'buy', amount: 1, stopPrice: 104, tag: 'oco-stop' },
        );
      },
    });
    expect(fillsOf(r)).toEqual([
      ['entry', 'buy', 1, 98, 'maker', T0 + 2 * MIN],
      ['oco-limit', 'buy', 1, 97, 'maker', T0 + 2 * MIN],
      ['take-profit', 'sell', 1, 105, 'maker', T0 + 3 * MIN],
    ]);
    const status = (tag: string) => r.orders.find((o) => o.request.tag === tag)?.status;
    expect([status('stop-loss'), status('oco-stop')]).toEqual(['cancelled', 'cancelled']);
  });
});
