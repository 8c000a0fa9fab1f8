import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BarSeries, defineInstrument, percentFee, runBacktest, sliceSeries } from '@keel/core';
import { openStore } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { Bot, type BotConfig, botParity, replaySource, type SessionReport, type SessionSetup } from '../src/index.ts';
import { churn } from './fixtures/strategies.ts';
import { KEY, MIN, realCandles, simBars, startLiveBot } from './live-harness.ts';
import { PAPER_RESTART_SAFE } from './trade-ids.ts';

// `keel bots parity`: the backtest of exactly the bars a bot saw, against what it did. A paper
// bot on a replay is that backtest, so it must show no difference at all (oracle: runBacktest on
// the same bars); a live bot against the simulator shows its real differences, each named, and
// each equal to what the simulator's own records and the bars say.
if (!HAS_SHARED_DATA) noteSkip('parity of a bot with the backtest of its bars');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-parity-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const feed = { symbol: 'BTC/USDT', timeframe: '1m' as const };
const strategies = (name: string) => (name === churn.name ? churn : getStrategy(name));

describe.skipIf(!HAS_SHARED_DATA)('parity of a bot with the backtest of the bars it saw', () => {
  const series: BarSeries = HAS_SHARED_DATA ? realCandles(2_400) : (undefined as never);
  const params = { fast: 5, slow: 12 };
  const paper = (store: Awaited<ReturnType<typeof openStore>>, botId: string): BotConfig => ({
    botId,
    mode: 'paper',
    strategy: getStrategy('sma-cross'),
    params,
    feeds: [feed],
    instruments: [defineInstrument({ symbol: 'BTC/USDT' })],
    store,
    log: () => {},
    paperCash: 10_000,
    paperFee: 0.001,
  });

  it('a paper bot on a replay: no difference; its orders and fills are the backtest’s (oracle: runBacktest)', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'paper.db')}` });
    const bot = new Bot(paper(store, 'pp'));
    await bot.start();
    await bot.run(replaySource(feed, series));
    await bot.stop();
    const { result, backtest, bars } = await botParity(store, 'pp');
    expect(result.differences).toEqual([]);
    expect(result.notes).toEqual([]);
    const bt = runBacktest({
      strategy: getStrategy('sma-cross'),
      params,
      data: [{ ...feed, series }],
      cash: 10_000,
      fee: 0.001,
    });
    expect(bt.fills.length).toBeGreaterThan(50);
    expect(result.bars).toBe(series.length);
    expect(result.orders).toEqual({ bot: bt.orders.length, backtest: bt.orders.length, matched: bt.orders.length });
    expect(result.fills).toEqual({ bot: bt.fills.length, backtest: bt.fills.length });
    expect(result.backtest.trades).toBe(bt.trades.length);
    expect(result.bot.realizedPnlNet).toBeCloseTo(
      bt.trades.reduce((a, t) => a + t.pnlNet, 0) - (bt.openTrades[0]?.fees ?? 0),
      6,
    );
    // The backtest parity ran is runBacktest's, fill for fill.
    const strip = (fs: readonly { side: string; time: number; price: number; amount: number; fee: number }[]) =>
      fs.map((f) => `${f.side} ${f.time} ${f.price} ${f.amount} ${f.fee}`);
    expect(strip(backtest.fills)).toEqual(strip(bt.fills));
    expect(backtest.finalValue).toBe(bt.finalValue);
    expect(backtest.finalCash).toBe(bt.finalCash);
    expect([...bars.close]).toEqual([...series.close]);
    await store.close();
  }, 120_000);

  it.skipIf(!PAPER_RESTART_SAFE)(
    'a paper bot stopped while long and restarted on the same replay: still no difference',
    async () => {
      const store = await openStore({ url: `sqlite:${path.join(dir, 'restart.db')}` });
      const bt = runBacktest({
        strategy: getStrategy('sma-cross'),
        params,
        data: [{ ...feed, series }],
        cash: 10_000,
        fee: 0.001,
      });
      const spanning = bt.trades.find(
        (t) => t.exitTime - t.entryTime >= 12 * MIN && t.entryTime > (series.time[300] as number),
      )!;
      const split = series.time.indexOf(spanning.entryTime) + 3;
      const a = new Bot(paper(store, 'pr'));
      await a.start();
      await a.run(replaySource(feed, sliceSeries(series, 0, split)));
      await a.stop();
      const b = new Bot(paper(store, 'pr'));
      await b.start();
      await b.run(replaySource(feed, series));
      await b.stop();
      const { result } = await botParity(store, 'pr');
      expect(result.sessions.map((s) => [s.seq, s.bars, s.warmupBars])).toEqual([
        [1, split, 0],
        [2, series.length - split, split],
      ]);
      expect(result.differences).toEqual([]);
      expect(result.fills).toEqual({ bot: bt.fills.length, backtest: bt.fills.length });
      await store.close();
    },
    120_000,
  );

  it('a live bot against the simulator, restarted after a crash: every difference named, equal to the simulator’s records', async () => {
    // A wide spread (50 ticks): a market buy pays the ask, the model pays the bar's open. No fees
    // on either side, so that only the prices differ; the fee case is the next test.
    const bars = simBars(realCandles(40));
    const store = await openStore({ url: `sqlite:${path.join(dir, 'live.db')}` });
    const sim = { liquidity: { spreadTicks: 50 }, fees: { maker: 0, taker: 0 } };
    let run = await startLiveBot({ strategy: churn, store, bars, botId: 'lp', sim, bot: { lockTtlMs: 300 } });
    const simHandle = run.sim;
    for (let k = 0; k < 17; k++) await run.step();
    run.bot.abandon(); // kill -9: no shutdown, no report
    await run.conn.close();
    await new Promise((r) => setTimeout(r, 400)); // its lock expires
    run = await startLiveBot({ strategy: churn, store, exchange: simHandle, botId: 'lp', bot: { lockTtlMs: 300 } });
    try {
      for (let k = 0; k < 20; k++) await run.step();
    } finally {
      await run.close();
    }
    const { result } = await botParity(store, 'lp', {
      strategies,
      model: { fees: percentFee(0) },
      modelLabel: 'no fees',
    });
    await simHandle.close();

    // The oracle: each exchange fill against the model's, which is the open of the bar after the
    // signal (the bar that opens when the signal bar closes), for the same amount.
    const openAt = new Map(bars.map((b) => [b.time, b.open]));
    const orders = simHandle.getOrders(KEY.apiKey).filter((o) => o.executedQty > 0);
    expect(orders.length).toBeGreaterThan(8);
    const stored = new Map((await store.orders.list('lp')).map((o) => [o.request.id as string, o]));
    // An order decided on the last bar the bot handled filled after it: the backtest has no bar
    // to fill it on. It is left out of the comparison, and said so.
    const lastClose = Date.parse(result.sessions.at(-1)?.to ?? '') + MIN;
    const late = orders.filter((o) => stored.get(o.clientOrderId)!.createdAt === lastClose).map((o) => o.clientOrderId);
    expect(result.notes).toEqual(
      late.map((id) =>
        expect.stringMatching(new RegExp(`^order ${id} .*decided on the last bar the bot handled, filled after it`)),
      ),
    );
    const expected = orders
      .filter((o) => !late.includes(o.clientOrderId))
      .map((o) => {
        const signalClose = stored.get(o.clientOrderId)!.createdAt;
        const model = openAt.get(signalClose)!;
        const price = o.cummulativeQuoteQty / o.executedQty;
        const against = o.side === 'BUY' ? price - model : model - price;
        return { id: o.clientOrderId, against, cost: against * o.executedQty };
      })
      .filter((x) => Math.abs(x.against) > 1e-9);
    expect(expected.length).toBeGreaterThan(4); // the buys at least
    expect(result.sessions.map((s) => s.seq)).toEqual([1, 2]);
    expect(result.orders.bot).toBe(orders.length);
    expect(late.length).toBeLessThanOrEqual(1);
    expect(result.orders.matched).toBe(result.orders.bot);
    expect(result.orders.backtest).toBe(result.orders.bot);
    expect(Object.keys(result.counts)).toEqual(['price']);
    expect(result.differences.map((d) => d.id)).toEqual(expected.map((x) => x.id));
    for (const [i, d] of result.differences.entries()) {
      expect(d.kind).toBe('price');
      expect(d.cost).toBeCloseTo(expected[i]!.cost, 9);
      expect(d.detail).toMatch(/^filled at [\d.]+ against the backtest's [\d.]+: slippage [\d.]+ bps against the bot/);
    }
    expect(result.slippageCost).toBeCloseTo(
      expected.reduce((a, x) => a + x.cost, 0),
      9,
    );
    expect(result.bot.realizedPnlNet - result.backtest.realizedPnlNet).toBeCloseTo(-result.slippageCost, 6);

    // The session report after the crash counts the round trip that was open across it (the
    // crashed session wrote none): every round trip the simulator saw, each a buy then a sell.
    const setups = await store.setups.list('lp');
    expect((setups[1]?.setup as SessionSetup).start.positions[0]?.size).toBeGreaterThan(0); // crashed while long
    const reports = (await store.sessions.list('lp')).map((x) => x.report as SessionReport | null);
    expect(reports[0]).toBeNull();
    const sells = orders.filter((o) => o.side === 'SELL');
    expect(reports[1]?.total.trades).toBe(sells.length);
    expect(reports[1]?.total.fills).toBe(orders.reduce((a, o) => a + o.fills.length, 0));
    const gross =
      sells.reduce((a, o) => a + o.cummulativeQuoteQty, 0) -
      orders.filter((o) => o.side === 'BUY').reduce((a, o) => a + o.cummulativeQuoteQty, 0);
    if (orders.length === 2 * sells.length) expect(reports[1]?.total.realizedPnlGross).toBeCloseTo(gross, 6);
    await store.close();
  }, 180_000);

  it('a live bot paying Binance’s fees (in the coin bought): the fee and the smaller exit are named', async () => {
    const bars = simBars(realCandles(9)); // churn buys on its 4th bar and closes two bars later
    const store = await openStore({ url: `sqlite:${path.join(dir, 'fees.db')}` });
    const run = await startLiveBot({
      strategy: churn,
      store,
      bars,
      botId: 'lf',
      sim: { fees: { maker: 0.001, taker: 0.001 } },
    });
    try {
      for (let k = 0; k < 7; k++) await run.step();
    } finally {
      await run.close();
    }
    const simOrders = run.sim.getOrders(KEY.apiKey).filter((o) => o.executedQty > 0);
    expect(simOrders.map((o) => o.side)).toEqual(['BUY', 'SELL']);
    const [buy, sell] = simOrders as [(typeof simOrders)[0], (typeof simOrders)[0]];
    const buyFill = buy.fills[0]!;
    expect(buyFill.commissionAsset).toBe('BTC');
    const { result } = await botParity(store, 'lf', { strategies }); // the default model: 0.1 % in the quote currency
    const kinds = result.differences.map((d) => [d.id, d.kind]);
    expect(kinds).toEqual([
      [buy.clientOrderId, 'price'],
      [buy.clientOrderId, 'fee'],
      [sell.clientOrderId, 'amount'],
      [sell.clientOrderId, 'filled-amount'],
      [sell.clientOrderId, 'fee'],
    ]);
    const fee = result.differences[1]!;
    expect(fee.detail).toMatch(/\(charged in BTC\) against the model's [\d.]+ USDT \(in USDT\)$/);
    expect(fee.cost).toBeCloseTo(buyFill.commission * buyFill.price - 0.001 * 0.01 * bars[4]!.open, 9);
    expect(result.differences[2]!.detail).toBe(
      `the bot asked for ${sell.origQty}, the backtest for 0.01 (sell BTC/USDT market)`,
    );
    // With Binance's own fee model (0.1 % in the asset received) only the spread is left: the
    // exchange's commissions, booked to 8 decimals, are the model's within that rounding.
    const binance = await botParity(store, 'lf', {
      strategies,
      model: { fees: percentFee(0.001, { asset: 'received' }) },
    });
    expect(sell.fills[0]!.commission).not.toBe(sell.fills[0]!.qty * sell.fills[0]!.price * 0.001); // rounded
    expect(binance.result.differences.map((d) => [d.id, d.kind])).toEqual([[buy.clientOrderId, 'price']]);
    await store.close();
  }, 120_000);
});
