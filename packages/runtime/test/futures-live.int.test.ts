// `keel live --market futures`: a live bot on a USDⓈ-M perpetual against the futures simulator
// (real ccxt binanceusdm client over loopback, real SQLite store, Binance's default USD-M fees
// 0.02 % / 0.05 %) on Binance's LINKUSDT 1m candles of 2023-02 with Binance's own funding archive.
// Oracle: the simulator's own records (its orders, positions, wallet, income history and
// liquidations), and the hand-computed numbers of docs/futures.md where they apply.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AnyStrategy, FeedKey, FuturesMarketSettings, MarginMode } from '@keel/core';
import { type ExchangeSim, readBarsFile, type SimBar, startExchangeSim } from '@keel/exchange-sim';
import { openStore, type Store } from '@keel/store';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { type PerpStep, perpScript } from './fixtures/strategies.ts';
import { KEY, type LiveRun, startLiveBot } from './live-harness.ts';

const BARS = dataFile('binance-futures-um_LINKUSDT_1m_2023-02.csv.gz');
const FUNDING = dataFile('binance-futures-um_LINKUSDT_fundingRate_2023-02.csv.gz');
if (!HAS_SHARED_DATA) noteSkip('futures-live.int.test.ts', BARS);

export const PERP: FeedKey = { symbol: 'LINK/USDT:USDT', timeframe: '1m' };
const T = (h: number, m = 0) => Date.UTC(2023, 1, 1, h, m);
const TAKER = 0.0005;

let bars: SimBar[] | undefined;
function linkBars(): SimBar[] {
  bars ??= readBarsFile(BARS);
  return bars;
}

/**
 * The futures simulator on LINKUSDT from `startTime`, one account (KEY); a one-level book holding
 * the bar's volume one tick wide, so a market buy fills at the price + 0.001 and a sell at the price.
 */
export function futuresSim(startTime: number, usdt = 10_000): Promise<ExchangeSim> {
  return startExchangeSim({
    market: 'futures',
    markets: [
      { symbol: 'LINK/USDT', bars: linkBars(), tickSize: 0.001, stepSize: 0.01, minNotional: 5, funding: FUNDING },
    ],
    accounts: [{ ...KEY, balances: { USDT: usdt } }],
    liquidity: { participation: 1, bookLevels: 1, spreadTicks: 1 },
    rateLimits: { weightPerMinute: 1_000_000 },
    startTime,
  });
}

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
}): Promise<LiveRun> {
  const run = await startLiveBot({
    strategy: o.strategy,
    store: o.store,
    exchange: o.sim,
    feed: PERP,
    botId: o.botId ?? 'perp',
    connect: { exchange: 'binanceusdm' },
    bot: { futures: settings(o.leverage, o.margin), onShutdown: 'cancel' },
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
      [T(8, 2), 'close'],
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
    // short 100 through 08:00, flat.
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
    await run.close();
  }, 120_000);
});
