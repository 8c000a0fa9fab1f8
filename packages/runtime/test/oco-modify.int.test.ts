// One leg of a live OCO list changed by the strategy on Binance spot, where cancelling one order of
// an order list cancels the whole list (both legs). The strategy's bracket exits go out as one
// native list; after the entry fills it moves the stop to break-even (ctx.modify), or cancels the
// stop (ctx.cancel). In a backtest the take-profit keeps working meanwhile; live it must too: the
// venue cancels the list and places a new one holding the moved stop and the unchanged take-profit
// (or the take-profit alone). Oracle: the backtest of the same bars for the fills and the orders'
// states; the simulator's own records for the exchange side (no order twice, none left open).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type AnyStrategy,
  type BacktestResult,
  type ClientOrderId,
  defineStrategy,
  type OrderState,
  parseRiskConfig,
  type RiskConfig,
} from '@keel/core';
import { type SimBar, startExchangeSim } from '@keel/exchange-sim';
import { openStore, type Store } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { bracketBreakEven, noParams } from './fixtures/strategies.ts';
import { BotProcess, binanceSpotBacktest, KEY, startLiveBot, until } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-oco-modify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 3, 1);
const MIN = 60_000;

type Change = 'break-even' | 'cancel-stop';

/**
 * On its 3rd bar: a bracket (buy 0.01, take-profit 40,400, stop-loss 39,200). On its 6th bar, when
 * long: the stop moved to the entry's 40,000 (`break-even`), or cancelled (`cancel-stop`).
 */
function bracketThen(change: Change, ids: Record<string, ClientOrderId | null>) {
  return defineStrategy({
    name: `bracket-${change}`,
    params: noParams,
    warmup: 'none',
    onStart: () => ({ n: 0 }),
    onBar(ctx, s: { n: number }) {
      s.n++;
      if (s.n === 3 && ctx.position().size === 0) {
        const b = ctx.bracket({ side: 'buy', amount: 0.01, takeProfit: 40_400, stopLoss: 39_200 });
        Object.assign(ids, b);
      }
      if (s.n === 6 && ctx.position().size > 0) {
        if (change === 'break-even') ids['stop2'] = ctx.modify(ids['stopLoss']!, { stopPrice: 40_000 });
        else ctx.cancel(ids['stopLoss']!);
      }
    },
  });
}

/** Flat at 40,000 (the entry fills at bar 3's open), up to 40,250 by bar 5, then `after`. */
function barsThen(after: readonly number[]): SimBar[] {
  const closes = [40_000, 40_000, 40_000, 40_050, 40_150, 40_250, ...after, after.at(-1)!, after.at(-1)!];
  return closes.map((c, i) => {
    const o = i === 0 ? c : closes[i - 1]!;
    return { time: T0 + i * MIN, open: o, high: Math.max(o, c) + 20, low: Math.min(o, c) - 20, close: c, volume: 50 };
  });
}

const RISE = [40_450, 40_500]; // bar 6 reaches the take-profit (40,400)
const FALL = [39_900, 39_850]; // bar 6 falls through break-even (40,000), not to the first stop (39,200)

const shape = (f: { side: string; amount: number; price: number }) => `${f.side} ${f.amount}@${f.price}`;
const stateOf = (o: OrderState) => `${o.request.tag} ${o.request.type} ${o.status}`;

let n = 0;
async function newStore(): Promise<Store> {
  return openStore({ url: `sqlite:${path.join(dir, `s${++n}.db`)}`, synchronous: 'NORMAL' });
}

/** Runs the live bot over `bars`; returns its fills, its orders' final states and the simulator's orders. */
async function live(
  strategy: AnyStrategy,
  bars: readonly SimBar[],
  botId: string,
  risk?: RiskConfig,
  /**
   * Set before the bar whose close decides the change (the 6th): a fault on the change's requests.
   * `race`: the next bar (which reaches the take-profit) is stepped at once, while they are held.
   */
  change?: { fault(sim: Awaited<ReturnType<typeof startLiveBot>>['sim']): void; race?: boolean },
): Promise<{
  fills: string[];
  orders: OrderState[];
  exchange: ReturnType<Awaited<ReturnType<typeof startLiveBot>>['sim']['getOrders']>;
  store: Store;
}> {
  const store = await newStore();
  const run = await startLiveBot({
    bars,
    strategy,
    store,
    botId,
    balances: { USDT: 10_000 },
    sim: { liquidity: { spreadTicks: 0 } },
    ...(risk ? { bot: { risk } } : {}),
  });
  try {
    for (let k = 1; k < bars.length - 1; k++) {
      if (k === 6 && change) change.fault(run.sim);
      if (k === 6 && change?.race) {
        // The change's bar, then at once the next: its requests are still held when the price moves.
        for (const j of [0, 1]) {
          const handled = run.bot.barsHandled;
          run.sim.step();
          await run.timer.advance(run.sim.now() - run.timer.now());
          await until(() => run.bot.barsHandled > handled, 10_000, `bar ${k + j}`);
        }
        await run.bot.settled();
        k++;
        continue;
      }
      await run.step();
      // The entry fills at bar 3's open; its exits go out before the market moves on.
      if (k === 3) await until(() => run.sim.getOrders(KEY.apiKey).length === 3, 10_000, 'the exits');
      // The change is decided at bar 5's close: let its requests finish before bar 6 moves the price.
      if (k === 6) {
        await new Promise((r) => setTimeout(r, 300));
        await run.bot.settled();
      }
    }
    // Waited for, not required here: the assertions below say what differs.
    await until(async () => (await store.orders.open(botId)).length === 0, 5_000, 'local orders to end').catch(
      () => {},
    );
    await until(
      () => run.sim.getOrders(KEY.apiKey).every((o) => o.status !== 'NEW'),
      5_000,
      'no order left open on the exchange',
    ).catch(() => {});
  } finally {
    if (process.env.KEEL_DEBUG)
      for (const o of run.sim.getOrders(KEY.apiKey))
        process.stderr.write(
          `ORDER ${o.clientOrderId} ${o.side} ${o.type} ${o.status} ${o.origQty} ${o.price} ${o.stopPrice} list ${o.orderListId}\n`,
        );
    await run.close();
  }
  const fills = (await store.fills.since(botId, 0)).map(shape);
  const orders = await store.orders.list(botId);
  return { fills, orders, exchange: run.sim.getOrders(KEY.apiKey), store };
}

/** On the third bar, when flat: buy 0.01 BTC; the exits are the run's (--stop-loss, --take-profit, --break-even). */
const buyOnce = defineStrategy({
  name: 'buy-once',
  params: noParams,
  warmup: 'none',
  onStart: () => ({ n: 0 }),
  onBar(ctx, s: { n: number }) {
    if (++s.n === 3 && ctx.position().size === 0) ctx.buy(0.01);
  },
});

type LiveRun = Awaited<ReturnType<typeof live>>;
type ExchangeOrders = LiveRun['exchange'];

/** The live run equals the backtest of the same bars: its fills and its orders' final states. */
function expectBacktest(r: LiveRun, bt: BacktestResult): void {
  expect(r.fills).toEqual(bt.fills.map(shape));
  expect(r.orders.map(stateOf)).toEqual(bt.orders.map(stateOf));
}

/** On the exchange: every client id once, and (`oneExit`) one sell filled. */
function expectOnce(ex: ExchangeOrders, oneExit = true): void {
  expect(new Set(ex.map((o) => o.clientOrderId)).size).toBe(ex.length);
  if (oneExit) expect(ex.filter((o) => o.side === 'SELL' && o.executedQty > 0)).toHaveLength(1);
}

describe('one leg of a live OCO list changed (real ccxt, Binance spot simulator, loopback)', () => {
  it('stop moved to break-even, then the take-profit is reached: the take-profit still works, one exit, equal to the backtest', async () => {
    const bars = barsThen(RISE);
    const ids: Record<string, ClientOrderId | null> = {};
    const r = await live(bracketThen('break-even', ids), bars, 'be-tp');
    const bt = binanceSpotBacktest(bracketThen('break-even', {}), bars);
    expect(bt.fills.map(shape)).toEqual(['buy 0.01@40000', 'sell 0.00999@40400']);
    expectBacktest(r, bt);
    // The exchange: the first list cancelled whole, the second (moved stop + the same take-profit)
    // ended by the take-profit's fill; every client id once; one sell filled.
    const ex = r.exchange;
    expectOnce(ex);
    expect(ex.find((o) => o.clientOrderId === ids['stopLoss'])).toMatchObject({ status: 'CANCELED' });
    expect(ex.find((o) => o.clientOrderId === ids['stop2'])).toMatchObject({
      type: 'STOP_LOSS',
      stopPrice: 40_000,
      status: 'EXPIRED',
    });
    const tps = ex.filter((o) => o.type === 'LIMIT_MAKER');
    expect(tps.map((o) => [o.status, o.price, o.origQty])).toEqual([
      ['CANCELED', 40_400, 0.00999],
      ['FILLED', 40_400, 0.00999],
    ]);
    expect(tps[1]!.orderListId).toBe(ex.find((o) => o.clientOrderId === ids['stop2'])!.orderListId);
    await r.store.close();
  }, 60_000);

  it('stop moved to break-even, then the price falls through it: the moved stop closes the position once, equal to the backtest', async () => {
    const bars = barsThen(FALL);
    const ids: Record<string, ClientOrderId | null> = {};
    const r = await live(bracketThen('break-even', ids), bars, 'be-sl');
    const bt = binanceSpotBacktest(bracketThen('break-even', {}), bars);
    expect(bt.fills.map(shape)).toEqual(['buy 0.01@40000', 'sell 0.00999@40000']);
    expectBacktest(r, bt);
    const ex = r.exchange;
    expectOnce(ex);
    expect(ex.find((o) => o.clientOrderId === ids['stop2'])).toMatchObject({ status: 'FILLED', stopPrice: 40_000 });
    expect(ex.filter((o) => o.type === 'LIMIT_MAKER').map((o) => o.status)).toEqual(['CANCELED', 'EXPIRED']);
    await r.store.close();
  }, 60_000);

  it('the stop leg cancelled: the take-profit keeps working alone and fills, as in the backtest', async () => {
    const bars = barsThen(RISE);
    const ids: Record<string, ClientOrderId | null> = {};
    const r = await live(bracketThen('cancel-stop', ids), bars, 'cx-tp');
    const bt = binanceSpotBacktest(bracketThen('cancel-stop', {}), bars);
    expect(bt.fills.map(shape)).toEqual(['buy 0.01@40000', 'sell 0.00999@40400']);
    expectBacktest(r, bt);
    const ex = r.exchange;
    expectOnce(ex, false);
    const tps = ex.filter((o) => o.side === 'SELL' && o.price === 40_400);
    expect(tps.map((o) => [o.type, o.status])).toEqual([
      ['LIMIT_MAKER', 'CANCELED'],
      ['LIMIT', 'FILLED'],
    ]);
    expect(ex.find((o) => o.clientOrderId === ids['stopLoss'])).toMatchObject({ status: 'CANCELED' });
    await r.store.close();
  }, 60_000);

  it('the cancel of the stop answered by no response (it executed): resolved by lookup, the new list placed once, equal to the backtest', async () => {
    const bars = barsThen(RISE);
    const ids: Record<string, ClientOrderId | null> = {};
    const r = await live(bracketThen('break-even', ids), bars, 'be-lost', undefined, {
      fault: (sim) =>
        sim.faults.holdHttpResponses({ method: 'DELETE', path: '/api/v3/order', execute: true, count: 1 }),
    });
    const bt = binanceSpotBacktest(bracketThen('break-even', {}), bars);
    expectBacktest(r, bt);
    const ex = r.exchange;
    expectOnce(ex, false);
    expect(ex.filter((o) => o.status === 'NEW')).toEqual([]);
    expect(ex.filter((o) => o.type === 'LIMIT_MAKER').map((o) => o.status)).toEqual(['CANCELED', 'FILLED']);
    expect(ex.find((o) => o.clientOrderId === ids['stop2'])).toMatchObject({ stopPrice: 40_000, status: 'EXPIRED' });
    await r.store.close();
  }, 60_000);

  it('the take-profit fills while the cancel of the stop is held: nothing is placed again, one exit, the move never sent', async () => {
    const bars = barsThen(RISE);
    const ids: Record<string, ClientOrderId | null> = {};
    const r = await live(bracketThen('break-even', ids), bars, 'be-race', undefined, {
      // The cancel waits 1 s, unexecuted, while the next bar fills the take-profit.
      fault: (sim) => sim.faults.holdHttpResponses({ method: 'DELETE', path: '/api/v3/order', ms: 1_000, count: 1 }),
      race: true,
    });
    const ex = r.exchange;
    expect(ex.filter((o) => o.side === 'SELL' && o.executedQty > 0).map((o) => [o.type, o.price])).toEqual([
      ['LIMIT_MAKER', 40_400],
    ]);
    expect(ex.some((o) => o.clientOrderId === ids['stop2'] || o.clientOrderId.endsWith('-k'))).toBe(false);
    expect(ex.filter((o) => o.status === 'NEW')).toEqual([]);
    expect(r.fills).toEqual(['buy 0.01@40000', 'sell 0.00999@40400']);
    const stop2 = r.orders.find((o) => o.request.id === ids['stop2'])!;
    expect(stop2.status).toBe('cancelled');
    expect(r.orders.filter((o) => o.status !== 'cancelled').map(stateOf)).toEqual([
      'entry market filled',
      'take-profit limit filled',
    ]);
    await r.store.close();
  }, 60_000);

  it('--break-even moves the run-level stop of a native list: the take-profit still works and fills, as in the backtest', async () => {
    const parsed = parseRiskConfig({
      exits: { 'stop-loss': '2%', 'take-profit': '1%', 'break-even': '0.5%' },
    });
    if (!parsed.ok) throw new Error(parsed.error.message);
    const bars = barsThen(RISE);
    const r = await live(buyOnce, bars, 'risk-be', parsed.config);
    const bt = binanceSpotBacktest(buyOnce, bars, parsed.config);
    expect(bt.fills.map(shape)).toEqual(['buy 0.01@40000', 'sell 0.00999@40400']);
    expectBacktest(r, bt);
    const ex = r.exchange;
    expectOnce(ex);
    expect(ex.filter((o) => o.type === 'STOP_LOSS').map((o) => [o.stopPrice, o.status])).toEqual([
      [39_200, 'CANCELED'],
      [40_000, 'EXPIRED'],
    ]);
    await r.store.close();
  }, 60_000);
});

describe('one leg of a live OCO list changed, then kill -9 (real ccxt, the bot in its own process)', () => {
  /**
   * The bracket-be fixture strategy on barsThen(RISE) in its own process; `fault` is set before the
   * bar whose close moves the stop (the 6th), and the bot is killed once `crashed` holds. Returns
   * the restarted bot, stepped to the end, and the simulator.
   */
  async function crashDuringChange(
    botId: string,
    fault: { method: string; path: string; execute: boolean },
    crashed: (orders: ReturnType<Awaited<ReturnType<typeof startExchangeSim>>['getOrders']>) => boolean,
  ) {
    const bars = barsThen([...RISE, 40_500, 40_500]);
    const sim = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars, tickSize: 0.01, stepSize: 0.00001, minNotional: 5 }],
      accounts: [{ ...KEY, balances: { USDT: 10_000 } }],
      liquidity: { spreadTicks: 0 },
      startTime: bars[0]!.time,
    });
    const storeUrl = `sqlite:${path.join(dir, `${botId}.db`)}`;
    let bot = new BotProcess(sim.httpUrl, storeUrl, botId, KEY, 'bracket-be');
    const settled = (b: BotProcess) => b.lines.filter((l) => l.startsWith('SETTLED ')).length;
    try {
      await bot.waitFor(() => bot.lines.includes('READY'), 'the bot to start');
      await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
      await sim.waitForSubscription(`user:${KEY.apiKey}`, 10_000);
      for (let k = 1; k <= 5; k++) {
        sim.step();
        await bot.waitFor(() => settled(bot) >= k, `bar ${k}`);
        if (k === 4) await until(() => sim.getOrders(KEY.apiKey).length === 3, 10_000, 'the exits');
      }
      // The 6th bar's close moves the stop: `fault`'s requests are never answered (executed or
      // not), and the bot is killed while it waits for them.
      sim.faults.holdHttpResponses({ ...fault, count: 100 });
      sim.step();
      await until(() => crashed(sim.getOrders(KEY.apiKey)), 10_000, 'the change to reach the exchange');
      await new Promise((r) => setTimeout(r, 500));
      await bot.crash();
      sim.faults.reset();
      bot = new BotProcess(sim.httpUrl, storeUrl, botId, KEY, 'bracket-be');
      await bot.waitFor(() => bot.lines.includes('READY'), 'the restarted bot', 30_000);
      await sim.waitForSubscription(`user:${KEY.apiKey}`, 10_000);
      // The take-profit is on the exchange again (placed by the restart, or found) before the market moves.
      await until(
        () => sim.getOrders(KEY.apiKey).some((o) => o.clientOrderId.endsWith('-k') && o.status === 'NEW'),
        10_000,
        'the take-profit on the exchange',
      );
      const from = settled(bot);
      for (let k = 1; k <= 3; k++) {
        sim.step();
        await bot.waitFor(() => settled(bot) >= from + k, `bar ${6 + k} after the restart`);
      }
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      if (bot.proc.exitCode === null && bot.proc.signalCode === null) await bot.crash();
      await sim.close();
    }
    const store = await openStore({ url: storeUrl });
    return { bot, sim, store, bars };
  }

  it('killed after the list was cancelled, before the new list: the restart places the take-profit again (once) and loses only the move, as one order’s modify would', async () => {
    const { bot, sim, store, bars } = await crashDuringChange(
      'crash-cx',
      { method: 'POST', path: '/api/v3/orderList/oco', execute: false },
      (orders) => orders.some((o) => o.type === 'STOP_LOSS' && o.status === 'CANCELED'),
    );
    const ex = sim.getOrders(KEY.apiKey);
    if (process.env.KEEL_DEBUG) {
      for (const o of ex) process.stderr.write(`ORDER ${o.clientOrderId} ${o.type} ${o.status} ${o.stopPrice}\n`);
      process.stderr.write(`${bot.lines.join('\n')}\n${bot.err.join('')}\n`);
    }
    expectOnce(ex, false);
    expect(ex.filter((o) => o.status === 'NEW')).toEqual([]);
    expect(ex.filter((o) => o.type === 'STOP_LOSS').map((o) => o.stopPrice)).toEqual([39_200]); // the move never left
    const orders = await store.orders.list('crash-cx');
    const tp = orders.find((o) => o.request.tag === 'take-profit')!;
    const stop2 = orders.find((o) => o.request.replaces !== undefined)!;
    // Placed again alone under the id the venue would have given it in the new list.
    expect(
      ex.filter((o) => o.side === 'SELL' && o.price === 40_400).map((o) => [o.clientOrderId, o.type, o.status]),
    ).toEqual([
      [tp.request.id, 'LIMIT_MAKER', 'CANCELED'],
      [`${stop2.request.id}-k`, 'LIMIT', 'FILLED'],
    ]);
    const rec = bot.lines.filter((l) => l.startsWith('RECOVERY oco-leg-placed-again '));
    expect(rec).toHaveLength(1);
    expect(rec[0]).toContain(`${tp.request.id} (take-profit sell 0.00999): its OCO list was cancelled to change `);
    expect(rec[0]).toContain(`placed again as ${stop2.request.id}-k`);
    expect(bot.lines).toContain(
      `RECOVERY order-never-reached-exchange ${stop2.request.id} (the replacement of ${stop2.request.replaces}, stop-loss: the change is lost; the strategy decides again)`,
    );
    expect(bot.err.join('')).toMatch(/warn reconcile: oco-leg-placed-again/);
    // Against the backtest of the same bars: the same fills and order states (the moved stop ends
    // cancelled there too, by the take-profit's fill; here it never reached the exchange).
    const bt = binanceSpotBacktest(bracketBreakEven, bars);
    expect((await store.fills.since('crash-cx', 0)).map(shape)).toEqual(bt.fills.map(shape));
    expect(orders.map(stateOf)).toEqual(bt.orders.map(stateOf));
    await store.close();
  }, 120_000);

  it('killed after the new list was placed: the restart finds the kept take-profit under its new id; it fills once, equal to the backtest', async () => {
    const { sim, store, bars } = await crashDuringChange(
      'crash-ls',
      { method: 'POST', path: '/api/v3/orderList/oco', execute: true },
      (orders) => orders.some((o) => o.clientOrderId.endsWith('-k')),
    );
    const ex = sim.getOrders(KEY.apiKey);
    if (process.env.KEEL_DEBUG)
      for (const o of ex)
        process.stderr.write(`ORDER ${o.clientOrderId} ${o.type} ${o.status} ${o.stopPrice} ${o.executedQty}\n`);
    expectOnce(ex, false);
    expect(ex.filter((o) => o.status === 'NEW')).toEqual([]);
    expect(ex.filter((o) => o.side === 'SELL' && o.executedQty > 0)).toHaveLength(1);
    const kept = ex.find((o) => o.clientOrderId.endsWith('-k'))!;
    expect(kept).toMatchObject({ type: 'LIMIT_MAKER', status: 'FILLED', price: 40_400 });
    const bt = binanceSpotBacktest(bracketBreakEven, bars);
    const fills = (await store.fills.since('crash-ls', 0)).map(shape);
    expect(bt.fills.map(shape)).toEqual(['buy 0.01@40000', 'sell 0.00999@40400']);
    expect(fills).toEqual(bt.fills.map(shape));
    const orders = await store.orders.list('crash-ls');
    expect(orders.map(stateOf)).toEqual(bt.orders.map(stateOf));
    await store.close();
  }, 120_000);
});
