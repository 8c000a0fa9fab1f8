import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { botParity } from '../src/parity.ts';
import { type PerpStep, perpScript } from './fixtures/strategies.ts';
import { exchangeBooks, expectBooksEqual, expectStored, stepTo, testStores } from './futures-live-books.ts';
import { futuresConnect, futuresSim, KEY, LINK_USDM_BARS, PERP, perpBot, startLiveBot, until } from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('futures-live-adl.int.test.ts', LINK_USDM_BARS);

const T = (h: number, m = 0) => Date.UTC(2023, 1, 1, h, m);
const { dir, open, newStore } = testStores('futures-live-adl');

describe.skipIf(!HAS_SHARED_DATA)('live futures: the exchange auto-deleverages the bot’s position', () => {
  it('while it runs: two partial ADLs (the same client id) from the stream before the next bar, then the rest from the per-bar poll with the stream stalled; each once, books equal the exchange’s', async () => {
    const sim = await futuresSim(T(7, 50));
    open.push(sim);
    const store = await newStore();
    const logs: string[] = [];
    // 5x isolated long of 100 (bought one tick over the 07:51 open: 6.847), and a sell limit far
    // above resting (the exchange cancels it with the ADL).
    const steps = new Map<number, PerpStep>([
      [T(7, 50), { buy: 100 }],
      [T(7, 51), { sell: 20, limit: 7.5 }],
    ]);
    const run = await startLiveBot({
      strategy: perpScript(steps),
      store,
      exchange: sim,
      feed: PERP,
      botId: 'adl',
      connect: futuresConnect(sim.httpUrl, 'adl', () => {}),
      bot: { futures: () => ({ leverage: 5, marginMode: 'isolated', funding: null }), onShutdown: 'cancel' },
      log: (l, m) => logs.push(`${l} ${m}`),
    });
    await stepTo(run, T(7, 53));
    expect(exchangeBooks(sim)).toMatchObject({ size: 100, entry: 6.847 });
    expect(exchangeBooks(sim).isolatedWallet).toBeCloseTo(136.94, 8);
    expectBooksEqual(run, 'before the ADL');

    // ADL of 40 at the last price: reported on the stream, applied at once (no bar closes).
    const bars = run.bot.barsHandled;
    const first = sim.autoDeleverage(KEY.apiKey, PERP.symbol, 40);
    expect(first).toMatchObject({ autoCloseType: 'ADL', clearanceFee: 0 });
    expect(first.order).toMatchObject({ clientOrderId: 'adl_autoclose', status: 'FILLED', executedQty: 40 });
    expect(first.order.fills.map((f) => f.commission)).toEqual([0]);
    await until(() => (run.bot.account.find(PERP.symbol)?.size ?? 0) === 60, 10_000, 'the ADL to be applied');
    expect(run.bot.barsHandled).toBe(bars);
    // The sell limit the exchange cancelled with it arrives as a cancel.
    await until(() => run.events.some((e) => e.type === 'order.cancelled'), 10_000, 'the limit’s cancel');
    await run.bot.settled();
    // 60 % of the isolated wallet stays; the 40 closed realise 40 x (price - 6.847), no fee.
    expect(exchangeBooks(sim)).toMatchObject({ size: 60, entry: 6.847 });
    expect(exchangeBooks(sim).isolatedWallet).toBeCloseTo(136.94 * 0.6, 8);
    expect(first.realizedPnl).toBeCloseTo(40 * (first.price - 6.847), 9);
    expectBooksEqual(run, 'after the partial ADL');
    expect(run.bot.account.find(PERP.symbol)?.avgPrice).toBeCloseTo(6.847, 12);
    const adl = async () => (await store.events.list('adl')).filter((e) => e.type === 'futures.adl');
    await until(async () => (await adl()).length === 1, 10_000, 'the ADL event to be stored');
    expect((await adl())[0]?.payload).toEqual({
      symbol: PERP.symbol,
      time: first.order.time,
      marginMode: 'isolated',
      size: 100,
      entryPrice: 6.847,
      closed: 40,
      price: first.price,
      realizedPnl: expect.closeTo(first.realizedPnl, 9),
      fee: 0,
      id: String(first.order.orderId),
    });
    expect(logs).toContainEqual(
      expect.stringMatching(
        new RegExp(
          `^warn ADL: the exchange closed 40 of 100 LINK/USDT:USDT at ${first.price} \\(long; order ${first.order.orderId}, adl_autoclose, fee 0\\), 60 left$`,
        ),
      ),
    );
    expect((await store.positions.load('adl')).find((p) => p.symbol === PERP.symbol)?.size).toBe(60);

    // Another 40: Binance gives every ADL close the same client id, `adl_autoclose`; this one is
    // an update of another order (its own id), applied from the stream too.
    const again = sim.autoDeleverage(KEY.apiKey, PERP.symbol, 40);
    expect(again.order.clientOrderId).toBe('adl_autoclose');
    await until(() => (run.bot.account.find(PERP.symbol)?.size ?? 0) === 20, 10_000, 'the second ADL to be applied');
    expect(run.bot.barsHandled).toBe(bars);
    await run.bot.settled();
    expectBooksEqual(run, 'after the second partial ADL');
    expect(exchangeBooks(sim).isolatedWallet).toBeCloseTo(136.94 * 0.2, 8);

    // The user-data stream stalls; the exchange deleverages the rest. Nothing arrives until the
    // next bar closes: the poll after it reads the forced-order history and applies it.
    sim.faults.stallWebSockets({ kind: 'user' });
    const second = sim.autoDeleverage(KEY.apiKey, PERP.symbol);
    expect(second.order.executedQty).toBe(20);
    await new Promise((r) => setTimeout(r, 300));
    expect(run.bot.account.find(PERP.symbol)?.size).toBe(20);
    await run.step();
    await until(() => (run.bot.account.find(PERP.symbol)?.size ?? 0) === 0, 10_000, 'the last ADL to be applied');
    await run.bot.settled();
    expectBooksEqual(run, 'after the whole ADL');
    expect(exchangeBooks(sim)).toMatchObject({ size: 0, isolatedWallet: 0 });
    // The stream comes back with the held update: read again, nothing applied twice.
    sim.faults.resumeWebSockets();
    await stepTo(run, T(7, 56));
    expect((await adl()).map((e) => (e.payload as { closed: number }).closed)).toEqual([40, 40, 20]);
    expectBooksEqual(run, 'after the stream came back');
    expect(logs.filter((l) => l.startsWith('warn ADL: '))).toHaveLength(3);
    const report = await run.bot.stop('test');
    expect(report.futures).toMatchObject({ adlCloses: 3, liquidations: 0, liquidationFees: 0, warnings: [] });
    await run.close();
    // `keel bots parity` says why the backtest's position differs from then on.
    const parity = (await botParity(store, 'adl', { strategies: () => perpScript(steps) })).result;
    expect(parity.notes).toContainEqual(expect.stringContaining('3 ADL close(s) by the exchange (auto-deleveraging)'));
  }, 120_000);

  it('while it was down (kill -9): the ADL is applied at the next start, once across restarts; books equal the exchange’s', async () => {
    const sim = await futuresSim(T(7, 50));
    const storeUrl = `sqlite:${path.join(dir, 'down.db')}`;
    const env = {
      KEEL_TEST_MARKET: 'futures',
      KEEL_TEST_LEVERAGE: '4',
      KEEL_TEST_MARGIN: 'isolated',
      KEEL_TEST_SCRIPT: JSON.stringify([[T(7, 50), { buy: 100 }]]),
    };
    const { start, stepThrough } = perpBot(sim, storeUrl, 'down', env);
    let bot = await start();
    try {
      for (let t = T(7, 50); t <= T(7, 52); t += 60_000) await stepThrough(bot, t);
      expect(exchangeBooks(sim)).toMatchObject({ size: 100, entry: 6.847 });
      await bot.crash();

      // Down: the exchange deleverages 30 at 6.9 (a profit of 30 x 0.053 = 1.59, no fee).
      while (sim.now() < T(7, 55)) sim.step();
      const adl = sim.autoDeleverage(KEY.apiKey, PERP.symbol, 30, 6.9);
      expect(adl.realizedPnl).toBeCloseTo(1.59, 9);
      const down = exchangeBooks(sim);
      expect(down).toMatchObject({ size: 70, entry: 6.847 });
      // 684.7 / 4 = 171.175 at the entry; 70 % of it stays.
      expect(down.isolatedWallet).toBeCloseTo(119.8225, 8);

      bot = await start();
      const recovery = bot.lines.filter((l) => l.startsWith('RECOVERY '));
      expect(recovery.filter((l) => l.startsWith('RECOVERY adl-recovered '))).toEqual([
        `RECOVERY adl-recovered the exchange closed 30 of 100 LINK/USDT:USDT at 6.9 (long; order ${adl.order.orderId}, adl_autoclose, fee 0), 70 left, while the bot was down`,
      ]);
      // Nothing differs: position, entry, wallet and isolated wallet are the exchange's.
      expect(recovery.filter((l) => /-difference /.test(l))).toEqual([]);
      const state = bot.lines.find((l) => l.startsWith('STATE '))!.split(' ');
      expect(Number(state[1])).toBe(70);
      expect(Number(state[2])).toBeCloseTo(down.wallet, 8);
      const events = bot.lines.filter((l) => l.startsWith('EVENT futures.adl '));
      expect(events).toHaveLength(1);
      expect(JSON.parse(events[0]!.slice('EVENT futures.adl '.length)).adl).toMatchObject({
        size: 100,
        closed: 30,
        price: 6.9,
        realizedPnl: expect.closeTo(1.59, 9),
        fee: 0,
        id: String(adl.order.orderId),
      });
      await stepThrough(bot, T(7, 55));
      bot.proc.kill('SIGTERM');
      await bot.waitFor(() => bot.lines.some((l) => l.startsWith('REPORT ')), 'the report');
      await bot.exited;

      // A restart (after a graceful stop) finds nothing new.
      bot = await start();
      expect(bot.lines.filter((l) => l.startsWith('RECOVERY ') && /-recovered |-difference /.test(l))).toEqual([]);
      expect(Number(bot.lines.find((l) => l.startsWith('STATE '))!.split(' ')[1])).toBe(70);
      bot.proc.kill('SIGTERM');
      await bot.waitFor(() => bot.lines.some((l) => l.startsWith('REPORT ')), 'the report');
      await bot.exited;
      await expectStored(storeUrl, 'down', sim, { type: 'futures.adl', events: 1, size: 70 });
    } finally {
      if (bot.proc.exitCode === null) await bot.crash();
      await sim.close();
    }
  }, 120_000);
});
