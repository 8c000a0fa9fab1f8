// `keel live --market futures`: a live bot on a USDⓈ-M perpetual against the futures simulator
// (real ccxt binanceusdm client over loopback, real SQLite store, Binance's default USD-M fees
// 0.02 % / 0.05 %) on Binance's LINKUSDT 1m candles of 2023-02 with Binance's own funding archive.
// Oracle: the simulator's own records (its orders, positions, wallet, income history and
// liquidations), and the hand-computed numbers of docs/futures.md where they apply.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type AnyStrategy, type FuturesMarketSettings, type MarginMode, percentFee } from '@keel/core';
import type { ExchangeSim } from '@keel/exchange-sim';
import { openStore, type Store } from '@keel/store';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip, REPO_ROOT } from '../../../test-support/shared.ts';
import { connectExchange } from '../src/index.ts';
import { botParity } from '../src/parity.ts';
import { type PerpStep, perpScript } from './fixtures/strategies.ts';
import {
  futuresConnect,
  futuresSim,
  KEY,
  LINK_USDM_BARS,
  type LiveRun,
  PERP,
  startLiveBot,
  until,
} from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('futures-live.int.test.ts', LINK_USDM_BARS);

const T = (h: number, m = 0) => Date.UTC(2023, 1, 1, h, m);
const TAKER = 0.0005;

const dir = mkdtempSync(path.join(tmpdir(), 'keel-futures-live-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const x of open.splice(0).reverse()) await x.close().catch(() => undefined);
});

async function newStore(): Promise<Store> {
  const s = await openStore({ url: `sqlite:${path.join(dir, `s${++n}.db`)}`, synchronous: 'NORMAL' });
  open.push(s);
  return s;
}

function settings(leverage: number, marginMode: MarginMode = 'cross'): () => FuturesMarketSettings {
  return () => ({ leverage, marginMode, funding: null });
}

async function liveBot(o: {
  sim: ExchangeSim;
  store: Store;
  strategy: AnyStrategy;
  leverage: number;
  margin?: MarginMode;
  botId?: string;
  reconfigure?: boolean;
}): Promise<LiveRun> {
  const run = await startLiveBot({
    strategy: o.strategy,
    store: o.store,
    exchange: o.sim,
    feed: PERP,
    botId: o.botId ?? 'perp',
    connect: futuresConnect(o.sim.httpUrl, o.botId ?? 'perp', () => {}),
    bot: { futures: settings(o.leverage, o.margin), onShutdown: 'cancel', reconfigure: o.reconfigure ?? false },
  });
  return run;
}

/** The simulator's view of the account: wallet, the position (0 flat), leverage and margin type. */
function exchangeBooks(sim: ExchangeSim) {
  const a = sim.futuresAccount(KEY.apiKey);
  const p = a.positions.find((x) => x.position.symbol === 'LINKUSDT');
  return {
    wallet: a.assets.find((x) => x.asset === 'USDT')?.walletBalance ?? Number.NaN,
    size: p?.position.size ?? 0,
    entry: p?.position.size ? p.position.entryPrice : 0,
    leverage: p?.leverage,
    marginType: p?.marginType,
    isolatedWallet: p?.position.isolatedWallet ?? 0,
  };
}

async function stepTo(run: LiveRun, t: number): Promise<void> {
  while (run.sim.now() < t) await run.step();
}

describe.skipIf(!HAS_SHARED_DATA)('keel live --market futures (binanceusdm against the simulator)', () => {
  it('opens long, reduces, closes reduce-only, goes short, receives funding: the books equal the exchange’s', async () => {
    const sim = await futuresSim(T(7, 50));
    open.push(sim);
    const store = await newStore();
    const steps = new Map<number, PerpStep>([
      [T(7, 50), { buy: 100 }],
      [T(7, 51), { sell: 40 }],
      [T(7, 52), 'close'],
      [T(7, 53), { sell: 100 }],
      // Decided as 07:59 closes, filled at 08:00:00 just after the exchange charged the funding:
      // the payment is on the short of 100, though the bot is flat when it reads it.
      [T(7, 59), 'close'],
    ]);
    const run = await liveBot({ sim, store, strategy: perpScript(steps), leverage: 3 });
    // Set on the exchange at start: 3x cross (the simulator's default is 20x).
    expect(exchangeBooks(sim)).toMatchObject({ leverage: 3, marginType: 'CROSSED' });
    const sizes: number[] = [];
    for (let t = T(7, 51); t <= T(8, 4); t += 60_000) {
      await stepTo(run, t);
      sizes.push(run.bot.account.find(PERP.symbol)?.size ?? 0);
      // After every bar the bot's position and wallet are the exchange's.
      const ex = exchangeBooks(sim);
      expect(run.bot.account.find(PERP.symbol)?.size ?? 0, new Date(t).toISOString()).toBeCloseTo(ex.size, 9);
      expect(run.bot.account.cash, new Date(t).toISOString()).toBeCloseTo(ex.wallet, 8);
    }
    // Each order fills as the next bar opens (the bot has settled by then): long 100, 60, flat,
    // short 100 up to 08:00, flat.
    expect(sizes.slice(0, 5)).toEqual([100, 60, 0, -100, -100]);
    expect(sizes.at(-1)).toBe(0);
    const orders = sim.futuresOrders(KEY.apiKey);
    expect(orders.map((o) => [o.side, o.executedQty, o.reduceOnly])).toEqual([
      ['BUY', 100, false],
      ['SELL', 40, false],
      ['SELL', 60, true], // close(): reduce-only
      ['SELL', 100, false],
      ['BUY', 100, true],
    ]);
    // Funding at 08:00 (Binance's archive: rate 0.0001; mark = the 08:00 candle's open 6.859): the
    // short of 100 receives 100 x 6.859 x 0.0001 = 0.06859, as the simulator's income says.
    const income = sim.income(KEY.apiKey).filter((r) => r.incomeType === 'FUNDING_FEE');
    expect(income.map((r) => [r.time, r.income])).toEqual([[T(8), 0.06859]]);
    const funding = (await store.events.list('perp')).filter((e) => e.type === 'futures.funding');
    expect(funding.map((e) => e.payload)).toEqual([
      {
        symbol: PERP.symbol,
        time: T(8),
        rate: 0.0001,
        markPrice: 6.859,
        size: -100,
        payment: 0.06859,
        id: String(income[0]!.tranId),
      },
    ]);
    const report = await run.bot.stop('test');
    expect(report.futures).toMatchObject({
      funding: 0.06859,
      fundingReceived: 0.06859,
      fundingPayments: 1,
      liquidations: 0,
    });
    expect(report.futures?.warnings).toEqual([]);
    // Fees: the simulator's commissions, 0.05 % taker on every fill.
    const fees = orders.flatMap((o) => o.fills).reduce((s, f) => s + f.commission, 0);
    expect(report.fees).toBeCloseTo(fees, 9);
    expect(fees).toBeCloseTo(orders.reduce((s, o) => s + o.cumQuote, 0) * TAKER, 9);
    // The stored wallet is the exchange's.
    const stored = (await store.balances.load('perp')).find((b) => b.asset === 'USDT');
    expect(stored?.total).toBeCloseTo(exchangeBooks(sim).wallet, 8);
    // `keel bots parity`: the backtest of the bars the bot saw, as a perpetual at 3x with the
    // rates of the bot's payments, charges the 08:00 funding on the short the exchange charged it
    // on (the close decided at 07:59 fills after the funding instant, in both): same payment.
    // The default model for a perpetual: Binance USD-M VIP 0 fees (the simulator's), 0.05 % taker.
    const parity = (await botParity(store, 'perp', { strategies: () => perpScript(steps) })).result;
    expect(parity.sessions[0]?.model).toMatch(/^Binance USD-M VIP 0: fee 0.05 % taker, 0.02 % maker/);
    // A fee differs only where the price does (the simulator's one-tick spread): the rate is the same.
    const priced = new Set(parity.differences.filter((d) => d.kind === 'price').map((d) => d.id));
    for (const d of parity.differences.filter((x) => x.kind === 'fee')) expect(priced.has(d.id), d.detail).toBe(true);
    expect(parity.futures).toEqual({
      bot: { funding: 0.06859, payments: 1, liquidations: 0, clearanceFees: 0 },
      backtest: { funding: expect.closeTo(0.06859, 12), payments: 1, liquidations: 0, clearanceFees: 0 },
    });
    expect(parity.differences.filter((d) => d.kind === 'funding' || d.kind === 'liquidation')).toEqual([]);
    expect(parity.orders).toEqual({ bot: 5, backtest: 5, matched: 5 });
    await run.close();
  }, 120_000);

  it('a forced liquidation on the exchange is the bot’s futures.liquidation: price, clearance fee and wallet as the exchange booked them', async () => {
    // docs/futures.md "Liquidation": isolated 50x long, 100 LINK bought at 6.908 as 06:00 opens,
    // isolated wallet 13.816, liquidation price 6.81413; 07:01 crosses it at 07:01:30: closed at
    // 6.814, realised -9.40, clearance fee min(1.25 % x 681.40, 4.416) = 4.416 (the whole margin).
    const sim = await futuresSim(T(5, 59), 1_000);
    open.push(sim);
    const store = await newStore();
    const logs: string[] = [];
    const run = await startLiveBot({
      strategy: perpScript(new Map<number, PerpStep>([[T(5, 59), { buy: 100 }]])),
      store,
      exchange: sim,
      feed: PERP,
      botId: 'liq',
      connect: futuresConnect(sim.httpUrl, 'liq', () => {}),
      bot: { futures: settings(50, 'isolated'), onShutdown: 'cancel' },
      log: (l, m) => logs.push(`${l} ${m}`),
    });
    await stepTo(run, T(6, 1));
    expect(run.bot.account.find(PERP.symbol)).toMatchObject({ size: 100, avgPrice: 6.908 });
    expect(exchangeBooks(sim)).toMatchObject({ leverage: 50, marginType: 'ISOLATED', isolatedWallet: 13.816 });
    await stepTo(run, T(7, 3));
    const [liq] = sim.liquidations(KEY.apiKey);
    expect(liq).toMatchObject({ price: 6.814, clearanceFee: 4.416, realizedPnl: -9.4 });
    const events = (await store.events.list('liq')).filter((e) => e.type === 'futures.liquidation');
    expect(events.map((e) => e.payload)).toEqual([
      {
        symbol: PERP.symbol,
        time: T(7, 1) + 30_000,
        marginMode: 'isolated',
        size: 100,
        entryPrice: 6.908,
        liquidationPrice: liq!.order.price,
        price: 6.814,
        realizedPnl: expect.closeTo(-9.4, 9),
        clearanceFee: 4.416,
        id: String(liq!.order.orderId),
      },
    ]);
    expect(run.bot.account.find(PERP.symbol)?.size).toBe(0);
    // 1,000 - 0.3454 commission - 13.816 margin = 985.8386: the exchange's wallet, and the bot's.
    expect(exchangeBooks(sim).wallet).toBeCloseTo(985.8386, 8);
    expect(run.bot.account.cash).toBeCloseTo(985.8386, 8);
    expect((await store.positions.load('liq')).find((p) => p.symbol === PERP.symbol)?.size).toBe(0);
    expect(logs.some((l) => l.startsWith('warn LIQUIDATED') && l.includes('6.814'))).toBe(true);
    const report = await run.bot.stop('test');
    expect(report.futures).toMatchObject({ liquidations: 1, liquidationFees: 4.416 });
    // Parity: the backtest of the bars the bot saw, 50x isolated, with the simulator's book as its
    // model (a market buy pays one tick over the price), liquidates the same position in the same
    // bar at the same price with the same clearance fee.
    const oneTick = 0.001;
    const parity = (
      await botParity(store, 'liq', {
        strategies: () => perpScript(new Map<number, PerpStep>([[T(5, 59), { buy: 100 }]])),
        model: {
          fees: percentFee(TAKER),
          slippage: {
            price: (side, p) => (side === 'buy' ? Math.round((p + oneTick) / oneTick) * oneTick : p),
            capacity: () => Number.POSITIVE_INFINITY,
          },
        },
      })
    ).result;
    expect(parity.differences).toEqual([]);
    expect(parity.futures?.bot).toEqual({ funding: 0, payments: 0, liquidations: 1, clearanceFees: 4.416 });
    expect(parity.futures?.backtest).toEqual({
      funding: 0,
      payments: 0,
      liquidations: 1,
      clearanceFees: expect.closeTo(4.416, 9),
    });
    expect(parity.differences.filter((d) => d.kind === 'liquidation')).toEqual([]);
    await run.close();
  }, 120_000);

  it('the user-data stream drives it: a forced liquidation and a funding payment are applied as the stream reports them, before the next bar, once', async () => {
    // The 50x isolated long above: the simulator liquidates it at 07:01:30, inside the 07:01 bar.
    // Its ORDER_TRADE_UPDATE (a LIQUIDATION order, `autoclose-` client id) reaches the bot through
    // the execution stream; the bot reads the forced-order history then, not when 07:01 closes.
    const sim = await futuresSim(T(5, 59), 1_000);
    open.push(sim);
    const store = await newStore();
    const entry = perpScript(new Map<number, PerpStep>([[T(5, 59), { buy: 100 }]]));
    let run = await liveBot({ sim, store, strategy: entry, leverage: 50, margin: 'isolated', botId: 'stream' });
    await stepTo(run, T(7, 1));
    expect(run.bot.account.find(PERP.symbol)?.size).toBe(100);
    const bars = run.bot.barsHandled;
    await run.advanceTo(T(7, 1) + 30_000);
    const [liq] = sim.liquidations(KEY.apiKey);
    expect(liq).toMatchObject({ price: 6.814, clearanceFee: 4.416 });
    await until(() => (run.bot.account.find(PERP.symbol)?.size ?? 0) === 0, 10_000, 'the liquidation to be applied');
    expect(sim.now()).toBeLessThan(T(7, 2));
    expect(run.bot.barsHandled).toBe(bars);
    expect(run.bot.account.cash).toBeCloseTo(985.8386, 8);
    // Order updates, trades and the balance's funding events share one user-data connection.
    expect(sim.userConnections(KEY.apiKey)).toBe(1);
    const liquidations = async () =>
      (await store.events.list('stream')).filter((e) => e.type === 'futures.liquidation');
    await run.bot.settled();
    expect((await liquidations()).map((e) => e.payload)).toMatchObject([
      { time: T(7, 1) + 30_000, size: 100, price: 6.814, clearanceFee: 4.416, id: String(liq!.order.orderId) },
    ]);
    // The polls after the next bars (the bot flat since) and a restart apply nothing again.
    await stepTo(run, T(7, 4));
    await run.close();
    run = await liveBot({ sim, store, strategy: entry, leverage: 50, margin: 'isolated', botId: 'stream' });
    expect(run.bot.report().recovery.filter((a) => a.kind.endsWith('-recovered'))).toEqual([]);
    await run.close();
    expect(await liquidations()).toHaveLength(1);

    // Funding: Binance's archive charges LINKUSDT's 16:00 funding at 16:00:00.012, just after the
    // 15:59 bar closed. Its ACCOUNT_UPDATE (reason FUNDING_FEE) makes the bot read the income
    // history at once: the payment is in its books before the 16:00 bar closes.
    const sim2 = await futuresSim(T(15, 55));
    open.push(sim2);
    const store2 = await newStore();
    const hold = perpScript(new Map<number, PerpStep>([[T(15, 55), { buy: 100 }]]));
    run = await liveBot({ sim: sim2, store: store2, strategy: hold, leverage: 3, botId: 'stream2' });
    await stepTo(run, T(16));
    const fundings = async () => (await store2.events.list('stream2')).filter((e) => e.type === 'futures.funding');
    expect(await fundings()).toEqual([]);
    const bars2 = run.bot.barsHandled;
    const cash = run.bot.account.cash;
    sim2.tick();
    const income = sim2.income(KEY.apiKey).filter((r) => r.incomeType === 'FUNDING_FEE');
    expect(income.map((r) => r.time)).toEqual([T(16) + 12]);
    await until(async () => (await fundings()).length > 0, 10_000, 'the funding payment to be applied');
    expect(sim2.now()).toBeLessThan(T(16, 1));
    expect(run.bot.barsHandled).toBe(bars2);
    // The long of 100 pays 100 x mark x rate, as the exchange booked it (its income record).
    const [pay] = await fundings();
    expect(pay?.payload).toMatchObject({ size: 100, payment: income[0]!.income, id: String(income[0]!.tranId) });
    const { rate, markPrice } = pay?.payload as { rate: number; markPrice: number };
    expect(income[0]!.income).toBeCloseTo(-100 * markPrice * rate, 10);
    expect(run.bot.account.cash).toBeCloseTo(cash + income[0]!.income, 10);
    // The polls after the next bars find it applied already.
    await stepTo(run, T(16, 3));
    expect(await fundings()).toHaveLength(1);
    expect(run.bot.account.cash).toBeCloseTo(exchangeBooks(sim2).wallet, 8);
    await run.close();
  }, 120_000);

  it('request weight of the polls: a forced close’s trades are read once, not again on every poll of the hour after it; polls asked together make one more, not one each', async () => {
    // The 50x isolated long liquidated at 07:01:30 (above); the bot buys again at 07:04 and holds
    // through the hour, so every poll lists that forced close again (the look-back is an hour).
    const sim = await futuresSim(T(5, 59), 1_000);
    open.push(sim);
    const store = await newStore();
    const steps = new Map<number, PerpStep>([
      [T(5, 59), { buy: 100 }],
      [T(7, 4), { buy: 100 }],
    ]);
    const run = await liveBot({
      sim,
      store,
      strategy: perpScript(steps),
      leverage: 50,
      margin: 'isolated',
      botId: 'w',
    });
    const count = (path: string) => sim.requestCounts()[path] ?? 0;
    await stepTo(run, T(7, 5));
    await run.bot.settled();
    expect(sim.liquidations(KEY.apiKey)).toHaveLength(1);
    expect(run.bot.account.find(PERP.symbol)?.size).toBe(100);
    const trades = count('GET /fapi/v1/userTrades');
    const listed = count('GET /fapi/v1/forceOrders');
    await stepTo(run, T(7, 20));
    await run.bot.settled();
    expect(run.bot.account.find(PERP.symbol)?.size).toBe(100);
    // A poll after each of the 15 bars listed the forced close again; none read its trades again.
    expect(count('GET /fapi/v1/forceOrders') - listed).toBeGreaterThanOrEqual(15);
    // (One read is the live venue's own when an order's FILLED update outruns its trade on the
    // stream, which a loaded machine can make happen for the 07:04 buy; re-reading the forced close
    // on every poll made 20.)
    expect(count('GET /fapi/v1/userTrades') - trades).toBeLessThanOrEqual(1);
    expect((await store.events.list('w')).filter((e) => e.type === 'futures.liquidation')).toHaveLength(1);

    // Five asks at once (a stream event and a bar close together, and more): the poll under way,
    // and one queued behind it that every later ask shares.
    const sync = (run.bot as unknown as { futuresSync: { poll(): Promise<void> } }).futuresSync;
    const incomes = count('GET /fapi/v1/income');
    await Promise.all([sync.poll(), sync.poll(), sync.poll(), sync.poll(), sync.poll()]);
    expect(count('GET /fapi/v1/income') - incomes).toBe(2);
    await run.close();
  }, 120_000);

  it('a liquidation while the bot was down is applied on restart (once): flat, wallet as the exchange booked them', async () => {
    // The same 50x isolated long as above; the bot stops (its position stays) before 07:01:30.
    const sim = await futuresSim(T(5, 59), 1_000);
    open.push(sim);
    const store = await newStore();
    const entry = perpScript(new Map<number, PerpStep>([[T(5, 59), { buy: 100 }]]));
    let run = await liveBot({ sim, store, strategy: entry, leverage: 50, margin: 'isolated', botId: 'liqdown' });
    await stepTo(run, T(6, 1));
    await run.close();
    while (sim.now() < T(7, 3)) sim.step();
    const [liq] = sim.liquidations(KEY.apiKey);
    expect(liq).toMatchObject({ price: 6.814, clearanceFee: 4.416 });
    run = await liveBot({ sim, store, strategy: entry, leverage: 50, margin: 'isolated', botId: 'liqdown' });
    const recovery = run.bot.report().recovery;
    expect(recovery).toContainEqual({
      kind: 'liquidation-recovered',
      detail: `${PERP.symbol}: the exchange liquidated 100 at 6.814 (${liq!.order.clientOrderId}, clearance fee 4.416) while the bot was down`,
    });
    expect(recovery.filter((a) => a.kind.endsWith('-difference'))).toEqual([]);
    expect(run.bot.account.find(PERP.symbol)?.size).toBe(0);
    expect(run.bot.account.cash).toBeCloseTo(985.8386, 8);
    await run.close();
    // A second restart finds nothing new.
    run = await liveBot({ sim, store, strategy: entry, leverage: 50, margin: 'isolated', botId: 'liqdown' });
    expect(run.bot.report().recovery.filter((a) => a.kind.endsWith('-recovered'))).toEqual([]);
    await run.close();
    const events = (await store.events.list('liqdown')).filter((e) => e.type === 'futures.liquidation');
    expect(events).toHaveLength(1);
    expect(events[0]?.payload).toMatchObject({
      size: 100,
      price: 6.814,
      clearanceFee: 4.416,
      realizedPnl: expect.closeTo(-9.4, 9),
    });
  }, 120_000);

  it('leverage and margin mode: set and read back at start; a change accepted when the exchange takes it, refused when it does not, named when made outside the bot; a start refused while the exchange’s position is not the bot’s own (a restart, a new bot); a position the user adds while it runs never traded, its funding share warned about; hedge mode refused', async () => {
    const sim = await futuresSim(T(7, 50));
    open.push(sim);
    const store = await newStore();
    const hold = perpScript(new Map<number, PerpStep>([[T(7, 50), { buy: 100 }]]));
    let run = await liveBot({ sim, store, strategy: hold, leverage: 3 });
    await stepTo(run, T(7, 52));
    await run.close();
    expect(exchangeBooks(sim)).toMatchObject({ size: 100, leverage: 3, marginType: 'CROSSED' });

    // The bot's stored settings hold its leverage, margin mode and position mode: a restart with
    // another leverage is refused (as other --param values are) unless reconfigured.
    const stored = async () => (await store.bots.get('perp'))?.futures;
    expect(await stored()).toEqual({ [PERP.symbol]: { leverage: 3, marginMode: 'cross', positionMode: 'one-way' } });
    const unasked = await liveBot({ sim, store, strategy: hold, leverage: 5 }).then(
      () => null,
      (e: Error) => e,
    );
    expect(unasked?.name).toBe('BotSettingsChangedError');
    expect(unasked?.message).toContain(
      `this start asks for perp-script (no params) on ${PERP.symbol} at 5x cross margin, one-way (changed: ${PERP.symbol} leverage 3x -> 5x)`,
    );
    expect(unasked?.message).toContain('--reconfigure');
    expect(exchangeBooks(sim).leverage).toBe(3);
    // A restart at 5x with the position open (--reconfigure): the exchange accepts it, and the log says so.
    run = await liveBot({ sim, store, strategy: hold, leverage: 5, reconfigure: true });
    expect(run.bot.report().recovery).toContainEqual({
      kind: 'leverage-set',
      detail: `${PERP.symbol}: 3x -> 5x with a position of 100 open (its margin and liquidation price move with it)`,
    });
    expect(exchangeBooks(sim).leverage).toBe(5);
    await run.close();

    // 100x is above LINKUSDT's first tier (75x): the exchange refuses (-4028) and the bot does not
    // start; its lock is released.
    expect(await stored()).toEqual({ [PERP.symbol]: { leverage: 5, marginMode: 'cross', positionMode: 'one-way' } });
    const refused = await liveBot({ sim, store, strategy: hold, leverage: 100, reconfigure: true }).then(
      () => null,
      (e: Error) => e,
    );
    expect(refused?.message).toMatch(/LINK\/USDT:USDT: the exchange refused leverage 100x: .*-4028/);
    expect(await store.locks.holder('perp')).toBeUndefined();
    expect((await store.bots.get('perp'))?.status).toBe('stopped');
    expect(exchangeBooks(sim).leverage).toBe(5);

    // Isolated margin while the exchange holds the position in cross: refused, the mode unchanged.
    // Settings the exchange refused were never run: the stored ones stay 5x.
    expect(await stored()).toEqual({ [PERP.symbol]: { leverage: 5, marginMode: 'cross', positionMode: 'one-way' } });
    const cross = await liveBot({
      sim,
      store,
      strategy: hold,
      leverage: 5,
      margin: 'isolated',
      reconfigure: true,
    }).then(
      () => null,
      (e: Error) => e,
    );
    expect(cross?.message).toContain('its margin mode cannot change to isolated while it is open');
    expect(exchangeBooks(sim).marginType).toBe('CROSSED');

    // While the bot was down the user set 10x and bought 10 more on the same account. One-way,
    // the symbol's position is one: 110 is not the bot's 100, so the start is refused, before the
    // leverage is set back (the exchange keeps the user's 10x).
    const walletBefore = exchangeBooks(sim).wallet;
    const other = await connectExchange(futuresConnect(sim.httpUrl, 'x', () => {}));
    await other.gateway.client.setLeverage(10, PERP.symbol);
    await other.gateway.client.createOrder(PERP.symbol, 'market', 'buy', 10);
    const closeNext = perpScript(new Map<number, PerpStep>([[T(8, 1), 'close']]));
    const ordersBefore = sim.futuresOrders(KEY.apiKey).length;
    const foreign = await liveBot({ sim, store, strategy: closeNext, leverage: 5 }).then(
      () => null,
      (e: Error) => e,
    );
    expect(foreign?.message).toContain(
      `${PERP.symbol}: the exchange's position is long 110, this bot's own is long 100: 10 of it is not this bot's: reduce the exchange's position to this bot's 100`,
    );
    expect(foreign?.message).toContain('On a one-way account the position of a symbol is one');
    expect(exchangeBooks(sim)).toMatchObject({ size: 110, leverage: 10 });
    expect(await store.locks.holder('perp')).toBeUndefined();
    // A new bot on the symbol (its own position: none) is refused the same way; nothing is sent,
    // and the isolated margin it asks for is not set under the user's position.
    const fresh = await liveBot({ sim, store, strategy: hold, leverage: 3, margin: 'isolated', botId: 'fresh' }).then(
      () => null,
      (e: Error) => e,
    );
    expect(fresh?.message).toContain(
      `${PERP.symbol}: the exchange's position is long 110, this bot's own is flat: it is not this bot's`,
    );
    expect(exchangeBooks(sim)).toMatchObject({ size: 110, leverage: 10, marginType: 'CROSSED' });
    expect(sim.futuresOrders(KEY.apiKey)).toHaveLength(ordersBefore);

    // The user closes their 10: the bot starts, names the leverage changed outside it and sets it back.
    await other.gateway.client.createOrder(PERP.symbol, 'market', 'sell', 10, undefined, { reduceOnly: true });
    run = await liveBot({ sim, store, strategy: closeNext, leverage: 5 });
    const recovery = run.bot.report().recovery;
    expect(recovery).toContainEqual({
      kind: 'leverage-difference',
      detail: `${PERP.symbol}: this bot set 5x, the exchange has 10x (changed outside the bot)`,
    });
    // The user's 10 moved the exchange's average entry (Binance keeps it when a position is
    // reduced), and their commissions came out of the shared wallet: both named, the wallet taken.
    expect(recovery.map((a) => a.kind).filter((k) => k.endsWith('-difference'))).toEqual([
      'leverage-difference',
      'position-difference',
      'wallet-difference',
    ]);
    const entry =
      /^LINK\/USDT:USDT: entry price 6\.847 in this bot's books, ([\d.]+) on the exchange \(size 100 on both\)$/.exec(
        recovery.find((a) => a.kind === 'position-difference')?.detail ?? '',
      );
    expect(Number(entry?.[1])).toBeCloseTo(exchangeBooks(sim).entry, 7);
    const wallet = recovery.find((a) => a.kind === 'wallet-difference')!.detail;
    const [, books, exchangeWallet] = /books ([\d.]+), the exchange's wallet ([\d.]+)/.exec(wallet) ?? [];
    expect(Number(books)).toBeCloseTo(walletBefore, 8);
    expect(Number(exchangeWallet)).toBeCloseTo(exchangeBooks(sim).wallet, 8);
    expect(run.bot.account.cash).toBeCloseTo(exchangeBooks(sim).wallet, 9);
    expect(exchangeBooks(sim).leverage).toBe(5);
    expect(run.bot.account.find(PERP.symbol)?.size).toBe(100);
    // While the bot runs the user buys 10 again: the bot's position stays what its own fills hold.
    await other.gateway.client.createOrder(PERP.symbol, 'market', 'buy', 10);
    // The 08:00 funding is charged on the account's 110 (1.1 x 0.06859 paid): the bot applies the
    // exchange's payment (its wallet's) and warns that 100 pay only 0.06859 of it.
    await stepTo(run, T(8, 1));
    const [payment] = (await store.events.list('perp')).filter((e) => e.type === 'futures.funding');
    expect(payment?.payload).toMatchObject({ size: 100, payment: expect.closeTo(-0.075449, 9) });
    expect(run.bot.report().futures?.warnings).toEqual([
      expect.stringMatching(
        /: the exchange charged -0\.075449, this bot's own position of 100 pays -0\.06859\d* at the rate 0\.0001 and mark 6\.859: the rest is on a position that is not this bot's$/,
      ),
    ]);
    // Its close sells its own 100, reduce-only; the user's 10 stay.
    await stepTo(run, T(8, 2));
    expect(run.bot.account.find(PERP.symbol)?.size).toBe(0);
    expect(exchangeBooks(sim).size).toBe(10);
    expect(sim.futuresOrders(KEY.apiKey).at(-1)).toMatchObject({ side: 'SELL', executedQty: 100, reduceOnly: true });
    await run.close();

    // Hedge mode (two positions per symbol) is refused: Keel trades one signed position.
    await other.gateway.client.createOrder(PERP.symbol, 'market', 'sell', 10, undefined, { reduceOnly: true });
    await other.gateway.client.setPositionMode(true);
    const hedge = await liveBot({ sim, store, strategy: hold, leverage: 5 }).then(
      () => null,
      (e: Error) => e,
    );
    expect(hedge?.message).toContain('the exchange account is in hedge position mode');
    await other.close();
  }, 120_000);

  it('the real bin: keel live --market futures sets 3x isolated on the exchange, runs, stops on SIGTERM with its futures report; --funding-rate refused live', async () => {
    const BIN = path.join(REPO_ROOT, 'apps/cli/bin/keel.js');
    const run = (args: string[]) => {
      const p = spawn(process.execPath, [BIN, ...args], {
        cwd: dir,
        env: { ...process.env, KEEL_API_KEY: KEY.apiKey, KEEL_API_SECRET: KEY.secret },
      });
      const r = { out: '', err: '', exited: new Promise<number | null>((res) => p.on('exit', (c) => res(c))), p };
      p.stdout.on('data', (d: Buffer) => void (r.out += d.toString()));
      p.stderr.on('data', (d: Buffer) => void (r.err += d.toString()));
      return r;
    };
    const help = run(['live', '--help']);
    expect(await help.exited, 'help').toBe(0);
    expect(help.out).toContain('--leverage <n>');
    expect(help.out).toContain('live --market futures');
    expect(help.out).not.toContain('not supported');

    const sim = await futuresSim(T(7, 50));
    open.push(sim);
    const store = `sqlite:${path.join(dir, 'cli.db')}`;
    const args = ['live', '--strategy', 'sma-cross', '--param', 'direction=both', '--symbol', 'LINK/USDT'];
    const futures = ['--market', 'futures', '--leverage', '3', '--margin', 'isolated'];
    const common = ['--exchange-url', sim.httpUrl, '--confirm-live', '--store', store];
    const funding = run([...args, ...futures, '--funding-rate', '0.0001', ...common]);
    expect(await funding.exited, 'funding').toBe(2);
    expect(funding.err).toContain('--funding-rate is for paper: live, the exchange charges funding');
    const hedge = run([...args, ...futures, '--position-mode', 'hedge', ...common]);
    expect(await hedge.exited, 'hedge').toBe(2);
    expect(hedge.err).toContain('--position-mode hedge is for backtests and paper bots');

    const bot = run([...args, ...futures, ...common]);
    try {
      const end = Date.now() + 60_000;
      while (!/live bot started/.test(bot.err)) {
        if (Date.now() > end || bot.p.exitCode !== null) throw new Error(`the bot did not start:\n${bot.err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(bot.err).toContain('using the exchange key from KEEL_API_KEY / KEEL_API_SECRET (binanceusdm,');
      expect(bot.err).toContain('reconcile: margin-mode-set: LINK/USDT:USDT: cross -> isolated margin');
      expect(bot.err).toContain('reconcile: leverage-set: LINK/USDT:USDT: 20x -> 3x');
      expect(exchangeBooks(sim)).toMatchObject({ leverage: 3, marginType: 'ISOLATED' });
      await sim.waitForSubscription('linkusdt@kline_1m', 30_000);
      bot.p.kill('SIGTERM');
      // It exits: ccxt's listen-key keep-alive timer (20 minutes) no longer holds it open.
      const code = await Promise.race([bot.exited, new Promise((r) => setTimeout(() => r('timeout'), 30_000))]);
      expect(code, bot.err).toBe(0);
      const report = JSON.parse(bot.out) as { mode: string; cash: number; futures?: unknown };
      expect(report.mode).toBe('live');
      expect(report.cash).toBe(10_000);
      expect(report.futures).toEqual({
        funding: 0,
        fundingPaid: 0,
        fundingReceived: 0,
        fundingPayments: 0,
        liquidations: 0,
        liquidationFees: 0,
        adlCloses: 0,
        settlementCloses: 0,
        warnings: [],
      });
      expect(bot.err).toMatch(/; futures: funding 0 \(paid 0, received 0, 0 payments\), 0 liquidations/);
    } finally {
      if (bot.p.exitCode === null) bot.p.kill('SIGKILL');
    }

    // The stored bot runs at 3x isolated: another leverage or margin mode is refused (exit 1, both
    // named, nothing set on the exchange) unless --reconfigure.
    const other = ['--market', 'futures', '--leverage', '5', '--margin', 'cross'];
    const refused = run([...args, ...other, ...common]);
    expect(await refused.exited, refused.err).toBe(1);
    expect(refused.err).toContain(
      'at 3x isolated margin, one-way; this start asks for sma-cross fast=10 slow=30 allocation=0.95 direction="both" on LINK/USDT:USDT at 5x cross margin, one-way (changed: LINK/USDT:USDT leverage 3x -> 5x; LINK/USDT:USDT margin isolated -> cross)',
    );
    expect(refused.err).toContain('--reconfigure');
    expect(exchangeBooks(sim)).toMatchObject({ leverage: 3, marginType: 'ISOLATED' });
    const again = run([...args, ...other, ...common, '--reconfigure']);
    try {
      const end = Date.now() + 60_000;
      while (!/live bot started/.test(again.err)) {
        if (Date.now() > end || again.p.exitCode !== null) throw new Error(`the bot did not start:\n${again.err}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(again.err).toContain('reconcile: margin-mode-set: LINK/USDT:USDT: isolated -> cross margin');
      expect(again.err).toContain('reconcile: leverage-set: LINK/USDT:USDT: 3x -> 5x');
      expect(again.err).toContain('reconfigured (--reconfigure)');
      expect(exchangeBooks(sim)).toMatchObject({ leverage: 5, marginType: 'CROSSED' });
      again.p.kill('SIGTERM');
      expect(await again.exited, again.err).toBe(0);
    } finally {
      if (again.p.exitCode === null) again.p.kill('SIGKILL');
    }
  }, 120_000);
});
