import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type BarSeries,
  defineInstrument,
  defineStrategy,
  type EngineEvent,
  type FeedKey,
  runBacktest,
  sliceSeries,
} from '@keel/core';
import { readBarsFile } from '@keel/data';
import { openStore, type Store } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { Bot, type BotConfig, BotSettingsChangedError, replaySource } from '../src/index.ts';
import { settingsChange } from '../src/settings.ts';
import { noParams } from './fixtures/strategies.ts';
import { PAPER_RESTART_SAFE } from './trade-ids.ts';

// The session report, settings that must not change silently, and one log line per order event:
// paper bots on real BTCUSDT 1m candles, real SQLite; the oracle is runBacktest on the same bars.
if (!HAS_SHARED_DATA) noteSkip('bot session report');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const quiet = () => {};
const MIN = 60_000;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe.skipIf(!HAS_SHARED_DATA)('paper bot: session report, settings, order log lines', () => {
  const series: BarSeries = HAS_SHARED_DATA
    ? sliceSeries(readBarsFile(dataFile('binance_BTCUSDT_1m_2024-01.csv.gz')).series, 0, 3_000)
    : (undefined as never);
  const feed = { symbol: 'BTC/USDT', timeframe: '1m' as const };
  const params = { fast: 5, slow: 12 };
  const cfg = (store: Store, botId: string, extra: Partial<BotConfig> = {}): BotConfig => ({
    botId,
    mode: 'paper',
    strategy: getStrategy('sma-cross'),
    params,
    feeds: [feed],
    instruments: [defineInstrument({ symbol: 'BTC/USDT' })],
    store,
    log: quiet,
    paperCash: 10_000,
    paperFee: 0.001,
    ...extra,
  });

  it('reports realised PnL gross, fees and net, round trips and ISO times (oracle: runBacktest)', async () => {
    const bt = runBacktest({
      strategy: getStrategy('sma-cross'),
      params,
      data: [{ ...feed, series }],
      cash: 10_000,
      fee: 0.001,
    });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'single.db')}` });
    const bot = new Bot(cfg(store, 'one'));
    await bot.start();
    await bot.run(replaySource(feed, series));
    const r = await bot.stop('done');
    expect(r.trades).toBe(bt.trades.length);
    expect(r.fills).toBe(bt.fills.length);
    const gross = bt.trades.reduce((x, t) => x + t.pnlGross, 0);
    expect(r.realizedPnlGross).toBeCloseTo(gross, 6);
    expect(r.fees).toBeCloseTo(bt.metrics.feesPaid, 6);
    expect(r.realizedPnlNet).toBeCloseTo(gross - bt.metrics.feesPaid, 6);
    expect(r.total).toEqual({
      fills: r.fills,
      trades: r.trades,
      realizedPnlGross: r.realizedPnlGross,
      fees: r.fees,
      realizedPnlNet: r.realizedPnlNet,
    });
    // The net is what happened to the cash: flat at the end, cash = start + net.
    if (bot.account.positions[0]!.size === 0) expect(bot.account.cash - 10_000).toBeCloseTo(r.realizedPnlNet, 6);
    expect([r.session, r.reason]).toEqual([1, 'done']);
    expect(r.startedAt).toMatch(ISO);
    expect(r.endedAt).toMatch(ISO);
    expect((await store.sessions.list('one')).map((s) => s.report)).toEqual([r]);
    await store.close();
  }, 120_000);

  it.skipIf(!PAPER_RESTART_SAFE)(
    'counts a round trip that spans a restart; totals over both sessions (oracle: runBacktest)',
    async () => {
      const bt = runBacktest({
        strategy: getStrategy('sma-cross'),
        params,
        data: [{ ...feed, series }],
        cash: 10_000,
        fee: 0.001,
      });
      // Restart in the middle of a long trade: its entry is in session 1, its exit in session 2.
      const spanning = bt.trades.find((t) => t.exitTime - t.entryTime >= 12 * MIN && t.entryTime > series.time[200]!);
      expect(spanning).toBeDefined();
      const split = series.time.indexOf(spanning!.entryTime) + 3;
      const store = await openStore({ url: `sqlite:${path.join(dir, 'report.db')}` });
      const a = new Bot(cfg(store, 'rep'));
      await a.start();
      await a.run(replaySource(feed, sliceSeries(series, 0, split)));
      const r1 = await a.stop('part one');
      expect(a.account.positions[0]!.size).toBeGreaterThan(0); // stopped while long
      const b = new Bot(cfg(store, 'rep'));
      await b.start();
      await b.run(replaySource(feed, series)); // bars before the split only warm it up
      const r2 = await b.stop('part two');

      const endOfOne = series.time[split - 1]! + MIN;
      const closedInOne = bt.trades.filter((t) => t.exitTime <= endOfOne);
      expect(r1.trades).toBe(closedInOne.length);
      expect(r2.trades).toBe(bt.trades.length - closedInOne.length); // the spanning trade counts here
      expect(r2.total.trades).toBe(bt.trades.length);
      expect(r2.total.fills).toBe(bt.fills.length);
      expect(r1.fills + r2.fills).toBe(bt.fills.length);

      // Gross is the trades' PnL before fees; fees are every fill's (an open trade's entry too).
      const gross = bt.trades.reduce((x, t) => x + t.pnlGross, 0);
      expect(r2.total.realizedPnlGross).toBeCloseTo(gross, 6);
      expect(r2.total.fees).toBeCloseTo(bt.metrics.feesPaid, 6);
      expect(r2.total.realizedPnlNet).toBeCloseTo(gross - bt.metrics.feesPaid, 6);
      expect(r1.realizedPnlNet + r2.realizedPnlNet).toBeCloseTo(r2.total.realizedPnlNet, 6);
      expect(r1.fees).toBeGreaterThan(0);
      // What the net says is what happened to the cash: flat at the end, cash = start + net.
      if (b.account.positions[0]!.size === 0) expect(b.account.cash - 10_000).toBeCloseTo(r2.total.realizedPnlNet, 6);
      else expect(bt.openTrades.length).toBe(1);

      expect(r1.startedAt).toMatch(ISO);
      expect(r1.endedAt).toMatch(ISO);
      expect([r1.session, r2.session]).toEqual([1, 2]);
      expect([r1.reason, r2.reason]).toEqual(['part one', 'part two']);
      // The stored report is the one returned.
      const sessions = await store.sessions.list('rep');
      expect(sessions.map((s) => s.report)).toEqual([r1, r2]);
      await store.close();
    },
    120_000,
  );

  it('a restart with other params, another strategy or another symbol is refused with both named; --reconfigure runs it', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'settings.db')}` });
    const first = new Bot(cfg(store, 'set'));
    await first.start();
    await first.run(replaySource(feed, sliceSeries(series, 0, 50)));
    await first.stop();

    // The same settings, given in another way (defaults spelt out): not a change.
    const same = new Bot(cfg(store, 'set', { params: { slow: 12, fast: 5, allocation: 0.95 } }));
    await same.start();
    await same.stop();

    const refused = async (extra: Partial<BotConfig>) => {
      const e = await new Bot(cfg(store, 'set', extra)).start().then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(BotSettingsChangedError);
      return (e as Error).message;
    };
    const p = await refused({ params: { fast: 6, slow: 12 } });
    expect(p).toContain(
      'was run as sma-cross fast=5 slow=12 allocation=0.95 direction="long" on BTC/USDT; this start asks for sma-cross fast=6 slow=12 allocation=0.95 direction="long" on BTC/USDT (changed: fast 5 -> 6)',
    );
    expect(p).toContain('--reconfigure');
    expect(await refused({ strategy: getStrategy('rsi-reversion'), params: {} })).toMatch(
      /was run as sma-cross .*; this start asks for rsi-reversion .*\(changed: strategy sma-cross -> rsi-reversion\)/,
    );
    const eth = { symbol: 'ETH/USDT', timeframe: '1m' as const };
    expect(await refused({ feeds: [eth], instruments: [defineInstrument({ symbol: 'ETH/USDT' })] })).toMatch(
      /on BTC\/USDT; this start asks for sma-cross .* on ETH\/USDT \(changed: symbols BTC\/USDT -> ETH\/USDT\)/,
    );
    // The same markets in another order: a close time's orders are numbered in that order.
    const two = (a: string, b: string) => [a, b].map((symbol) => ({ symbol, timeframe: '1m' as const }));
    const stored = {
      strategy: 'sma-cross',
      params: { fast: 5, slow: 12 },
      symbols: ['BTC/USDT', 'ETH/USDT'],
      risk: null,
      futures: null,
    } as unknown as Parameters<typeof settingsChange>[0];
    const start = (feeds: FeedKey[]) => ({ strategy: getStrategy('sma-cross'), params: { fast: 5, slow: 12 }, feeds });
    expect(settingsChange(stored, start(two('BTC/USDT', 'ETH/USDT')))).toBeUndefined();
    const swapped = settingsChange(stored, start(two('ETH/USDT', 'BTC/USDT')));
    expect(swapped).toBeDefined();
    expect(new BotSettingsChangedError('two', swapped!.stored, swapped!.requested).message).toContain(
      '(changed: the same markets in another order BTC/USDT,ETH/USDT -> ETH/USDT,BTC/USDT (the orders of a close time are numbered in this order: give --symbol as before))',
    );
    // Refused before anything was touched: no session started, the lock is free.
    expect((await store.sessions.list('set')).length).toBe(2);
    expect(await store.locks.holder('set')).toBeUndefined();

    const re = new Bot(cfg(store, 'set', { params: { fast: 6, slow: 12 }, reconfigure: true }));
    await re.start();
    await re.stop();
    expect((await store.bots.get('set'))?.params).toEqual({ fast: 6, slow: 12, allocation: 0.95, direction: 'long' });
    const events = await store.events.list('set');
    expect(events.some((e) => e.type === 'error')).toBe(false);
    await store.close();
  }, 60_000);

  it('a paper futures bot keeps its leverage, margin mode and position mode: a restart with others is refused, --reconfigure runs it; a bot stored before they were kept records them', async () => {
    const store = await openStore({ url: `sqlite:${path.join(dir, 'futures-settings.db')}` });
    const perp = { symbol: 'BTC/USDT:USDT', timeframe: '1m' as const };
    const fut = (
      leverage: number,
      marginMode: 'cross' | 'isolated' = 'isolated',
      positionMode: 'one-way' | 'hedge' = 'one-way',
    ): Partial<BotConfig> => ({
      feeds: [perp],
      instruments: [defineInstrument({ symbol: perp.symbol })],
      futures: () => ({ leverage, marginMode, positionMode, funding: null }),
    });
    const first = new Bot(cfg(store, 'fut', fut(3)));
    await first.start();
    await first.run(replaySource(perp, sliceSeries(series, 0, 20)));
    await first.stop();
    expect((await store.bots.get('fut'))?.futures).toEqual({
      [perp.symbol]: { leverage: 3, marginMode: 'isolated', positionMode: 'one-way' },
    });
    // The same settings: not a change.
    const same = new Bot(cfg(store, 'fut', fut(3)));
    await same.start();
    await same.stop();
    const refused = async (extra: Partial<BotConfig>) => {
      const e = await new Bot(cfg(store, 'fut', extra)).start().then(
        () => undefined,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(BotSettingsChangedError);
      return (e as Error).message;
    };
    expect(await refused(fut(5))).toContain(
      'on BTC/USDT:USDT at 3x isolated margin, one-way; this start asks for sma-cross fast=5 slow=12 allocation=0.95 direction="long" on BTC/USDT:USDT at 5x isolated margin, one-way (changed: BTC/USDT:USDT leverage 3x -> 5x)',
    );
    expect(await refused(fut(3, 'cross'))).toContain('(changed: BTC/USDT:USDT margin isolated -> cross)');
    expect(await refused(fut(3, 'isolated', 'hedge'))).toContain(
      '(changed: BTC/USDT:USDT position mode one-way -> hedge)',
    );
    const re = new Bot(cfg(store, 'fut', { ...fut(5, 'cross'), reconfigure: true }));
    await re.start();
    await re.stop();
    expect((await store.bots.get('fut'))?.futures).toEqual({
      [perp.symbol]: { leverage: 5, marginMode: 'cross', positionMode: 'one-way' },
    });

    // Stored before futures settings were kept (no futures column value): taken as they come, recorded.
    await store.bots.create({
      id: 'old',
      strategy: 'sma-cross',
      params,
      mode: 'paper',
      exchange: 'simulated',
      symbols: [perp.symbol],
    });
    const old = new Bot(cfg(store, 'old', fut(4)));
    await old.start();
    await old.stop();
    expect((await store.bots.get('old'))?.futures).toEqual({
      [perp.symbol]: { leverage: 4, marginMode: 'isolated', positionMode: 'one-way' },
    });
    expect(
      await new Bot(cfg(store, 'old', fut(2))).start().then(
        () => 'started',
        (e: Error) => e.name,
      ),
    ).toBe('BotSettingsChangedError');
    await store.close();
  }, 60_000);

  it('one log line per order sent, fill, cancel and denial: what, side, amount, symbol, price, id, reason (oracle: the engine events)', async () => {
    // Buys on bar 3 (fills on bar 4), rests a far limit on bar 6 (cancelled at shutdown), and
    // sends one order below the market's minimum notional on bar 8 (denied).
    const demo = defineStrategy({
      name: 'log-demo',
      params: noParams,
      warmup: 'none',
      onStart: () => ({ n: 0 }),
      onBar(ctx, s, bar) {
        s.n++;
        if (s.n === 3) ctx.buy(0.01);
        if (s.n === 6)
          ctx.submit({ type: 'limit', side: 'buy', amount: 0.01, price: bar.close - 500, timeInForce: 'GTC' });
        if (s.n === 8) ctx.buy(0.00001);
      },
    });
    const store = await openStore({ url: `sqlite:${path.join(dir, 'log.db')}` });
    const lines: { level: string; msg: string; data?: Record<string, unknown> }[] = [];
    const events: EngineEvent[] = [];
    const bot = new Bot(
      cfg(store, 'log', {
        strategy: demo,
        params: {},
        instruments: [defineInstrument({ symbol: 'BTC/USDT', stepSize: 0.00001, tickSize: 0.01, minNotional: 5 })],
        log: (level, msg, data) => void lines.push({ level, msg, ...(data ? { data } : {}) }),
        onEvent: (e) => void events.push(e),
      }),
    );
    await bot.start();
    await bot.run(replaySource(feed, sliceSeries(series, 0, 12)));
    await bot.stop();
    const orderLines = lines.filter((l) => l.data?.what !== undefined);
    const expected = events.flatMap((e) => {
      switch (e.type) {
        case 'order.submitted':
          return [['sent', e.order.request.id, e.order.request.amount, e.order.request.side]];
        case 'order.filled':
          return [['fill', e.order.request.id, e.fill.amount, e.fill.side]];
        case 'order.cancelled':
          return [['cancel', e.order.request.id, e.order.request.amount, e.order.request.side]];
        case 'order.denied':
          return [['deny', e.order.request.id, e.order.request.amount, e.order.request.side]];
        default:
          return [];
      }
    });
    expect(expected.map((x) => x[0])).toEqual(['sent', 'fill', 'sent', 'deny', 'cancel']);
    expect(orderLines.map((l) => [l.data!.what, l.data!.id, l.data!.amount, l.data!.side])).toEqual(expected);
    for (const l of orderLines) expect(l.data).toMatchObject({ symbol: 'BTC/USDT' });
    const fill = events.find((e) => e.type === 'order.filled') as Extract<EngineEvent, { type: 'order.filled' }>;
    const fillLine = orderLines.find((l) => l.data?.what === 'fill')!;
    expect(fillLine.data).toMatchObject({ price: fill.fill.price, fee: fill.fill.fee, feeAsset: 'USDT' });
    // The line reads the fee as a person would (0.01 x price x 0.1 %, to 10 significant digits);
    // the JSON fields above keep the double (0.42325500000000005).
    expect(fillLine.msg).toBe(
      `FILL    buy 0.01 BTC/USDT @ ${fill.fill.price}  fee ${Number((0.01 * fill.fill.price * 0.001).toPrecision(10))} USDT  id ${fill.order.request.id}  (filled 0.01)`,
    );
    const deny = orderLines.find((l) => l.data?.what === 'deny')!;
    expect(deny.level).toBe('warn');
    expect(deny.msg).toMatch(/^DENIED {2}buy 0\.00001 BTC\/USDT market ~[\d.]+ {2}id k\S+ {2}reason: .*notional/);
    const cancel = orderLines.find((l) => l.data?.what === 'cancel')!;
    expect(cancel.msg).toMatch(/^CANCEL {2}buy 0\.01 BTC\/USDT limit [\d.]+ {2}id k\S+ {2}reason: /);
    expect(orderLines.find((l) => l.data?.what === 'sent')!.msg).toMatch(
      /^SENT {4}buy 0\.01 BTC\/USDT market ~[\d.]+ {2}id k/,
    );
    await store.close();
  }, 60_000);
});
