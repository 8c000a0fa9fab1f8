// A live bot on an account that pays its Binance fees with BNB ("use BNB to pay fees", 25 % off),
// on the real ccxt client against the simulator over loopback. Oracles: the commission by
// Binance's rule computed by hand from the bars (price x qty x 0.001 x 0.75 / the BNB/USDT price
// at the fill, 8 decimals), the simulator's own records (orders, fills, balances), and the
// backtest of the same bars with the fee in the quote at 0.075 % (how a BNB account is modelled).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EngineEvent, Fill } from '@keel/core';
import type { ExchangeSim, SimBar } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { botParity, portfolioOf, type SessionReport } from '../src/index.ts';
import { churn } from './fixtures/strategies.ts';
import {
  BotProcess,
  backtestOfRun,
  bnbMarket,
  KEY,
  MIN,
  quietBars,
  realCandles,
  runThrough,
  simBars,
  startLiveBot,
  startSim,
} from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('live bot paying its fees with BNB');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-bnb-fees-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Binance's commission in BNB of a fill (rounded to 8 decimals, as the simulator keeps it). */
function bnbCommission(price: number, qty: number, bnbPrice: number): number {
  return Math.round(((price * qty * 0.001 * 0.75) / bnbPrice) * 1e8) / 1e8;
}

/** The BNB/USDT price at a fill: the open of the BNB bar its time opens (orders fill at a bar's open). */
function bnbPriceAt(bnb: readonly SimBar[], time: number): number {
  const b = bnb.find((x) => x.time === time);
  if (!b) throw new Error(`no BNB/USDT bar opening at ${new Date(time).toISOString()}`);
  return b.open;
}

describe.skipIf(!HAS_SHARED_DATA)('a live bot paying its fees with BNB (real ccxt, loopback)', () => {
  it('sma-cross: 10+ round trips, each exit sells all it bought, BNB debited by the hand-computed commissions, valued in its fees; parity and the 0.075 % backtest agree', async () => {
    const N = 260;
    const bars = simBars(realCandles(N)).map((b) => ({ ...b, volume: b.volume * 100 }));
    const bnb = bnbMarket(bars);
    const bnbBars = bnb.bars as SimBar[];
    const params = { fast: 2, slow: 6 };
    const store = await openStore({ url: `sqlite:${path.join(dir, 'bnb.db')}`, synchronous: 'NORMAL' });
    const logs: string[] = [];
    const run = await startLiveBot({
      bars,
      strategy: getStrategy('sma-cross'),
      store,
      balances: { USDT: 10_000, BNB: 1 },
      markets: [bnb],
      account: { payFeesWithBnb: true },
      sim: { liquidity: { spreadTicks: 0, participation: 1 } },
      bot: { params },
      log: (l, m) => logs.push(`${l} ${m}`),
    });
    let report: SessionReport;
    const equities: number[] = [];
    try {
      for (let k = 1; k < N - 1; k++) {
        await run.step();
        equities.push(run.bot.botEngine.engine.equity());
      }
      report = run.bot.report();
    } finally {
      await run.close();
    }
    const refused = run.events.flatMap((e: EngineEvent) =>
      e.type === 'order.denied' || e.type === 'order.rejected' ? [`${e.order.request.id}: ${e.reason}`] : [],
    );
    expect(refused, 'orders denied or rejected').toEqual([]);
    expect(
      equities.every((e) => Number.isFinite(e)),
      'the equity a strategy sizes by stays a number',
    ).toBe(true);
    expect(run.bot.botEngine.closedTrades().length).toBeGreaterThanOrEqual(10);

    // The exchange: buys and sells alternate, each sell the whole amount the buy before it bought
    // (the fee never came out of the coins), and the account holds no BTC dust after an exit.
    const orders = run.sim.getOrders(KEY.apiKey);
    expect(orders.every((o) => o.status === 'FILLED')).toBe(true);
    for (const [i, o] of orders.entries()) {
      expect(o.side).toBe(i % 2 === 0 ? 'BUY' : 'SELL');
      if (o.side === 'SELL') expect(o.executedQty, `${o.clientOrderId} sells all`).toBe(orders[i - 1]!.executedQty);
    }
    const simBal = run.sim.getBalances(KEY.apiKey);
    const btc = (simBal.BTC?.free ?? 0) + (simBal.BTC?.locked ?? 0);
    expect(run.bot.account.find('BTC/USDT')?.size ?? 0).toBe(btc);
    if (orders.at(-1)?.side === 'SELL') expect(btc).toBe(0);
    expect(report.dust).toEqual({});

    // Every fill's commission in BNB, as computed by hand; the BNB account debited by their sum.
    const fills = await store.fills.since('lt', 0);
    expect(fills.length).toBe(orders.reduce((n, o) => n + o.fills.length, 0));
    let debited = 0;
    let valued = 0;
    for (const f of fills) {
      const bnbPrice = bnbPriceAt(bnbBars, f.time);
      const expected = bnbCommission(f.price, f.amount, bnbPrice);
      expect([f.feeAsset, f.fee], `fill ${f.tradeId}`).toEqual(['BNB', expected]);
      // Valued at the BNB/USDT price the bot read before the bar whose order it was.
      expect(f.feeValue).toBeCloseTo(f.fee * bnbPrice, 9);
      debited += expected;
      valued += f.fee * bnbPrice;
    }
    expect(simBal.BNB?.free).toBeCloseTo(1 - debited, 8);
    // The report counts the BNB fees at their value; nothing is left unvalued.
    expect(report.total.fees).toBeCloseTo(valued, 6);
    expect(report.total.otherFees).toBeUndefined();
    expect(report.total.feesPaidOutside).toEqual({ BNB: expect.closeTo(debited, 8) });
    expect(logs.some((l) => /the account pays its fees on BTC\/USDT in BNB/.test(l))).toBe(true);
    const firstFill = fills[0]!;
    expect(logs).toContain(
      `info FILL    buy ${firstFill.amount} BTC/USDT @ ${firstFill.price}  fee ${firstFill.fee} BNB (${Number(firstFill.feeValue!.toFixed(8))} USDT)  id ${firstFill.orderId}  (filled ${firstFill.amount})`,
    );

    // The backtest of the same bars, the fee in the quote at 0.075 %: the same fills, amounts and fees.
    const bt = backtestOfRun(run, bars, getStrategy('sma-cross'), params, { fee: 0.00075, feeAsset: 'quote' });
    const shape = (f: Fill, shift = 0) => `${f.side} ${f.time + shift} ${f.price} ${f.amount}`;
    expect(fills.map((f) => shape(f, MIN))).toEqual(bt.fills.map((f) => shape(f)));
    for (const [i, f] of fills.entries()) expect(f.feeValue).toBeCloseTo(bt.fills[i]!.fee, 5);

    // The store's portfolio counts them at the same value, none unvalued.
    const books = (await portfolioOf(store, { currency: 'USDT' })).bots.find((b) => b.id === 'lt')!;
    expect(books.totals.fees).toBeCloseTo(valued, 8);
    expect(books.unvalued).toEqual([]);
    // and the books' BNB debt at what the fees were worth: the bot's own equity.
    expect(books.totals.equity).toBeCloseTo(report.equity, 6);

    // Parity: by default a bot whose fees were in BNB is compared with that model, and nothing differs.
    const { result } = await botParity(store, 'lt');
    expect(result.sessions.map((s) => s.model)).toEqual([expect.stringMatching(/paying fees with BNB: fee 0\.075 %/)]);
    expect(result.differences.map((d) => `${d.kind}: ${d.detail}`)).toEqual([]);
    // Within Binance's rounding of each commission to 8 decimals of BNB (at about 315 USDT).
    expect(Math.abs(result.bot.fees - result.backtest.fees)).toBeLessThan(fills.length * 0.5e-8 * 320);
    await store.close();
  }, 180_000);

  it('BNB runs out midway: fees switch to the coin bought and the quote, the bot keeps trading with dust as without BNB', async () => {
    const N = 160;
    const bars = simBars(realCandles(N)).map((b) => ({ ...b, volume: b.volume * 100 }));
    const bnb = bnbMarket(bars);
    const store = await openStore({ url: `sqlite:${path.join(dir, 'bnb-out.db')}`, synchronous: 'NORMAL' });
    // Each fill costs about 0.0226 BNB: 0.07 pays for three.
    const run = await startLiveBot({
      bars,
      strategy: getStrategy('sma-cross'),
      store,
      botId: 'out',
      balances: { USDT: 10_000, BNB: 0.07 },
      markets: [bnb],
      account: { payFeesWithBnb: true },
      sim: { liquidity: { spreadTicks: 0, participation: 1 } },
      bot: { params: { fast: 2, slow: 6 } },
    });
    const { report, refused } = await runThrough(run, N);
    expect(refused).toEqual([]);
    const fills = await store.fills.since('out', 0);
    const assets = fills.map((f) => f.feeAsset);
    expect(assets.slice(0, 3)).toEqual(['BNB', 'BNB', 'BNB']);
    // Then Binance's rule without BNB: the coin on a buy, the quote on a sell.
    expect(assets.slice(3)).toEqual(fills.slice(3).map((f) => (f.side === 'buy' ? 'BTC' : 'USDT')));
    expect(fills.length).toBeGreaterThanOrEqual(8);
    const simBal = run.sim.getBalances(KEY.apiKey);
    const leftBnb = 0.07 - fills.slice(0, 3).reduce((a, f) => a + f.fee, 0);
    expect(simBal.BNB?.free).toBeCloseTo(leftBnb, 8);
    // What was left could not pay the 4th fill's commission in BNB.
    const f4 = fills[3]!;
    expect(leftBnb).toBeLessThan(bnbCommission(f4.price, f4.amount, bnbPriceAt(bnb.bars as SimBar[], f4.time)));
    // A buy's fee in the coin: the position is what arrived, the amount less the fee.
    const buyInCoin = fills.slice(3).find((f) => f.side === 'buy')!;
    expect(buyInCoin.fee).toBeCloseTo(buyInCoin.amount * 0.001, 10);
    // The books equal the exchange's coins; the exits after the switch leave dust, named.
    const btc = (simBal.BTC?.free ?? 0) + (simBal.BTC?.locked ?? 0);
    expect(run.bot.account.find('BTC/USDT')?.size ?? 0).toBeCloseTo(btc, 8);
    const orders = run.sim.getOrders(KEY.apiKey);
    if (orders.at(-1)?.side === 'SELL') {
      expect(btc).toBeGreaterThan(0);
      expect(report.dust['BTC/USDT']).toBeCloseTo(btc, 8);
    }
    // Every fee valued: the BNB ones at the BNB price read, the coin's at the fill.
    expect(report.total.otherFees).toBeUndefined();
    await store.close();
  }, 180_000);

  it('kill -9 with a position held and again right after an order reached the exchange: nothing lost, nothing sent twice, every BNB fee counted once', async () => {
    const bars = quietBars(40);
    const bnb = bnbMarket(bars);
    const bnbBars = bnb.bars as SimBar[];
    const sim: ExchangeSim = await startSim({
      bars,
      balances: { USDT: 10_000, BNB: 1 },
      markets: [bnb],
      account: { payFeesWithBnb: true },
      sim: { liquidity: { spreadTicks: 0, participation: 1 } },
    });
    const storeUrl = `sqlite:${path.join(dir, 'bnb-restart.db')}`;
    const start = async (env: Record<string, string> = {}) => {
      const p = new BotProcess(sim.httpUrl, storeUrl, 'bnbr', KEY, 'churn', env);
      await p.waitFor(() => p.lines.includes('READY'), 'the bot to start', 30_000);
      await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
      return p;
    };
    // Bar by bar, each handled before the next closes (a bar the bot reaches after a newer one
    // closed is late, and sends nothing: docs/live.md).
    const stepThrough = async (p: BotProcess, k: number) => {
      while (sim.now() < bars[0]!.time + (k + 1) * MIN) {
        const j = (sim.now() - bars[0]!.time) / MIN;
        sim.step();
        await p.waitFor(() => p.lines.includes(`SETTLED ${bars[0]!.time + j * MIN}`), `bar ${j} and its orders`);
      }
    };
    // churn buys 0.01 on its 4th bar and sells it two bars later.
    let bot = await start();
    let restartBnbPrice = Number.NaN;
    let report: SessionReport | undefined;
    try {
      await stepThrough(bot, 4);
      await bot.waitFor(() => bot.lines.some((l) => l.startsWith('POSITION buy ')), 'the first buy');
      // The position is all that was bought: the fee went to BNB.
      expect(bot.lines.find((l) => l.startsWith('POSITION buy '))).toMatch(/^POSITION buy 0\.01 /);
      await new Promise((r) => setTimeout(r, 200)); // the journal catches up
      await bot.crash(); // kill -9 holding it
      // Restarted, it sells (its 1st order now) and buys again (its 2nd): killed as soon as the
      // exchange has that buy, before the bot has recorded it.
      bot = await start({ KEEL_TEST_DIE_AFTER_ORDER: '2' });
      for (let k = 0; k < 20 && bot.proc.exitCode === null && bot.proc.signalCode === null; k++) {
        sim.step();
        await Promise.race([bot.exited, new Promise((r) => setTimeout(r, 300))]);
      }
      expect(bot.proc.signalCode, 'the bot killed itself after its 2nd order reached the exchange').toBe('SIGKILL');
      expect(sim.getOrders(KEY.apiKey)).toHaveLength(3);
      sim.step(); // the market (and BNB) moves on while the bot is down
      restartBnbPrice = sim.price('BNB/USDT');
      bot = await start();
      expect(bot.lines.filter((l) => l.startsWith('RECOVERY fill-recovered'))).toHaveLength(1);
      const k0 = (sim.now() - bars[0]!.time) / MIN;
      await stepThrough(bot, k0 + 7);
      bot.proc.kill('SIGTERM');
      await bot.exited;
      const line = bot.lines.find((l) => l.startsWith('REPORT '));
      report = line ? (JSON.parse(line.slice(7)) as SessionReport) : undefined;
    } finally {
      if (bot.proc.exitCode === null && bot.proc.signalCode === null) bot.proc.kill('SIGKILL');
      await sim.close();
    }
    const orders = sim.getOrders(KEY.apiKey);
    const ids = orders.map((o) => o.clientOrderId);
    expect(new Set(ids).size, `a client order id twice: ${ids.join(',')}`).toBe(ids.length);
    expect(orders.length).toBeGreaterThanOrEqual(6);
    for (const [i, o] of orders.entries()) {
      expect(o.side).toBe(i % 2 === 0 ? 'BUY' : 'SELL');
      expect(o.executedQty).toBe(0.01);
    }
    const store = await openStore({ url: storeUrl });
    try {
      const fills = await store.fills.since('bnbr', 0);
      expect(fills.map((f) => f.tradeId)).toEqual(orders.flatMap((o) => o.fills.map((f) => String(f.tradeId))));
      let debited = 0;
      let value = 0;
      for (const f of fills) {
        const expected = bnbCommission(f.price, f.amount, bnbPriceAt(bnbBars, f.time));
        expect([f.feeAsset, f.fee], `fill ${f.tradeId}`).toEqual(['BNB', expected]);
        expect(f.feeValue, `fill ${f.tradeId} valued`).toBeDefined();
        debited += f.fee;
        value += f.feeValue!;
      }
      // The fill recovered at the restart is valued at the BNB price read then (the bot was down at the fill).
      const recovered = fills[2]!;
      expect(recovered.feeValue).toBeCloseTo(recovered.fee * restartBnbPrice, 9);
      const b = sim.getBalances(KEY.apiKey);
      expect(b.BNB?.free).toBeCloseTo(1 - debited, 8);
      const held = orders.at(-1)?.side === 'BUY' ? 0.01 : 0;
      expect((b.BTC?.free ?? 0) + (b.BTC?.locked ?? 0)).toBeCloseTo(held, 10);
      expect(report?.total.fills).toBe(fills.length);
      expect(report?.total.fees).toBeCloseTo(value, 8);
      expect(report?.total.otherFees).toBeUndefined();
      // The books' BNB: what the fees took, never more (the account's other BNB is the user's).
      const booked = (await store.balances.load('bnbr')).find((x) => x.asset === 'BNB');
      expect(booked?.total).toBeCloseTo(-debited, 8);
      const { result } = await botParity(store, 'bnbr', { strategies: () => churn });
      // Parity across the three sessions: the crashes' real differences (fills a bar late, a signal
      // missed while down), but no amount difference, and a fee difference only where the price
      // differs (the same 0.075 % of another price); the fees are the booked values, none unvalued.
      expect(result.sessions).toHaveLength(3);
      const kinds = (k: string) => result.differences.filter((d) => d.kind === k).map((d) => d.id);
      expect(kinds('amount')).toEqual([]);
      expect(kinds('filled-amount')).toEqual([]);
      expect(kinds('fee').every((id) => kinds('price').includes(id))).toBe(true);
      expect(result.bot.fees).toBeCloseTo(value, 8);
      expect(result.bot.otherFees).toEqual({});
    } finally {
      await store.close();
    }
  }, 180_000);
});
