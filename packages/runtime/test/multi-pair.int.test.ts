// One strategy over several markets in paper and live, as `keel backtest --symbol A,B,C` runs it:
// the real bin, each run its own process, killed with SIGKILL in the middle and restarted.
// Oracles: `keel backtest` of the same bars with the same settings (paper), the simulator's own
// records and `keel bots parity` (live: the backtest of the bars the bot saw).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BarSeries, type FeedKey, type Fill, runBacktest, sliceSeries } from '@keel/core';
import { readBarsFile } from '@keel/data';
import { systemTimer } from '@keel/exchange';
import { startExchangeSim } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { connectExchange, mergeSources } from '../src/index.ts';
import type { BarSource } from '../src/sources.ts';
import { fastConnect, KEY, keelProcess, simBars, toSeries, until } from './live-harness.ts';

if (!HAS_SHARED_DATA) noteSkip('multi-pair paper and live bots');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-multi-pair-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const PAIRS = ['BTC', 'ETH', 'BNB'] as const;
const bars = (coin: string, n: number): BarSeries =>
  sliceSeries(readBarsFile(dataFile(`binance_${coin}USDT_1m_2024-01.csv.gz`)).series, 0, n);

function writeCsv(file: string, s: BarSeries): string {
  const rows = ['time,open,high,low,close,volume'];
  for (let i = 0; i < s.length; i++)
    rows.push(`${s.time[i]},${s.open[i]},${s.high[i]},${s.low[i]},${s.close[i]},${s.volume[i]}`);
  writeFileSync(file, `${rows.join('\n')}\n`);
  return file;
}

/** The bin run to its end: exit code and output. */
async function keel(args: readonly string[], env: Record<string, string> = {}, cwd = dir) {
  const p = keelProcess(args, cwd, env);
  const code = await p.exited;
  return { code, out: p.out(), err: p.err() };
}

/** The oracle: `keel backtest` of the files (one per market, in order) with sma-cross and `--max-open-trades`, as JSON. */
async function backtestOf(files: readonly string[], symbols: string, maxOpenTrades: number) {
  const r = await keel([
    'backtest',
    '--strategy',
    'sma-cross',
    ...files.flatMap((f) => ['--data', f]),
    '--symbol',
    symbols,
    '--max-open-trades',
    String(maxOpenTrades),
    '--no-save',
    '--json',
  ]);
  expect(r.code, r.err).toBe(0);
  return JSON.parse(r.out) as {
    fills: Fill[];
    riskCounts: unknown;
    pairs: { symbol: string; tradeCount: number; pnlNet: number; fees: number; denied: number; openSize: number }[];
  };
}

const shape = (f: Pick<Fill, 'symbol' | 'side' | 'time' | 'price' | 'amount' | 'fee' | 'feeAsset'>) =>
  `${f.symbol} ${f.side} ${f.time} ${f.price} ${f.amount} ${f.fee} ${f.feeAsset}`;

describe.skipIf(!HAS_SHARED_DATA)('several markets in one paper or live bot (the real bin)', () => {
  it('paper replay of three pairs, max-open-trades 2, kill -9 in the middle and restart: the fills of keel backtest', async () => {
    const N = 2_000;
    const files = PAIRS.map((c) => writeCsv(path.join(dir, `${c.toLowerCase()}.csv`), bars(c, N)));
    const symbols = PAIRS.map((c) => `${c}/USDT`).join(',');
    const bt = await backtestOf(files, symbols, 2);
    const want = bt.fills.map(shape);
    // Every pair trades, and the limit denies entries: the shared-cash rule is exercised.
    for (const c of PAIRS) expect(bt.fills.some((f) => f.symbol === `${c}/USDT`)).toBe(true);
    expect(JSON.stringify(bt.riskCounts)).toMatch(/max-open-trades/);

    const storeUrl = `sqlite:${path.join(dir, 'paper.db')}`;
    const args = [
      'paper',
      '--strategy',
      'sma-cross',
      '--symbol',
      symbols,
      ...files.flatMap((f) => ['--replay', f]),
      '--max-open-trades',
      '2',
      '--store',
      storeUrl,
      '--store-sync',
      'normal',
    ];
    const botId = 'sma-cross-BTCUSDT-ETHUSDT-BNBUSDT-paper';
    const first = keelProcess([...args, '--replay-delay-ms', '2'], dir);
    const store = await (async () => {
      await until(() => /paper bot started/.test(first.err()) || first.proc.exitCode !== null, 30_000, 'the bot');
      return openStore({ url: storeUrl });
    })();
    let crashedWith = 0;
    try {
      // kill -9 at a moment the store holds no working order (a paper order lives in the
      // simulated venue only and is closed at a restart): stopped first, looked at, then killed.
      for (;;) {
        await until(() => (first.err().match(/ FILL /g) ?? []).length >= 60, 60_000, '60 fills before the crash');
        first.proc.kill('SIGSTOP');
        if ((await store.orders.open(botId)).length === 0) break;
        first.proc.kill('SIGCONT');
        await new Promise((r) => setTimeout(r, 3));
      }
      crashedWith = (await store.fills.since(botId, 0)).length;
      first.proc.kill('SIGKILL');
      await first.exited;
    } finally {
      await store.close();
    }
    expect(crashedWith).toBeGreaterThan(0);
    expect(crashedWith).toBeLessThan(want.length);
    const restart = await keel(args);
    expect(restart.code, restart.err).toBe(0);
    expect(restart.err).toMatch(/took over the lock|no longer exists/);
    const report = JSON.parse(restart.out) as { session: number; bars: number };
    expect(report.session).toBe(2);
    // The restart resumed each feed after its own last handled bar: the two sessions handled every bar once.
    expect(report.bars).toBeLessThan(3 * N);

    const after = await openStore({ url: storeUrl });
    try {
      const got = (await after.fills.since(botId, 0)).map(shape);
      expect(got).toEqual(want);
    } finally {
      await after.close();
    }
    const parity = await keel(['bots', 'parity', botId, '--store', storeUrl]);
    expect(parity.code, parity.err).toBe(0);
    expect(parity.out).toContain(`the backtest of the ${3 * N} bars it handled in 2 session(s)`);
    expect(parity.out).toContain('No differences');
    const status = await keel(['bots', 'status', botId, '--store', storeUrl]);
    expect(status.out).toMatch(/symbols\s+BTC\/USDT, ETH\/USDT, BNB\/USDT/);
    expect(status.out).toMatch(/BTC\/USDT@1m .*, ETH\/USDT@1m .*, BNB\/USDT@1m /);
    const list = await keel(['bots', 'list', '--store', storeUrl]);
    expect(list.out).toContain('BTC/USDT,ETH/USDT,BNB/USDT');
  }, 240_000);

  it('live on two pairs against the simulator (real ccxt, fee in the coin), kill -9, SIGTERM and missed bars, restarts: orders per pair, none twice, parity clean', async () => {
    const N = 140;
    // Real candles, the volume scaled up so that the simulator's book fills each market order at the
    // open in one level, as the backtest does.
    const market = (coin: string) => ({
      symbol: `${coin}/USDT`,
      bars: simBars(bars(coin, N)).map((b) => ({ ...b, volume: b.volume * 1_000 })),
    });
    const btc = market('BTC');
    const markets = [btc, market('ETH')];
    const sim = await startExchangeSim({
      markets,
      accounts: [{ ...KEY, balances: { USDT: 10_000 } }],
      liquidity: { spreadTicks: 0, participation: 1 },
      startTime: btc.bars[0]!.time,
    });
    const params = { fast: 2, slow: 6 };
    // Bars whose signals the backtest acts on would be denied while catching up (--catch-up none):
    // the bot is down over three bars of each pair on which the backtest of the same bars decides
    // nothing, so that parity stays the whole oracle.
    const model = runBacktest({
      strategy: getStrategy('sma-cross'),
      params,
      data: markets.map((m) => ({ symbol: m.symbol, timeframe: '1m' as const, series: toSeries(m.bars) })),
      perPair: {},
      fee: 0.001,
      feeAsset: 'received',
    });
    const decided = new Set(model.orders.map((o) => o.createdAt));
    // The case equity sizing turns on: orders decided at a close at which the other pair's order
    // filled (at that bar's open), sized on an equity that holds the fill.
    const onOtherFill = model.orders.filter((o) =>
      model.fills.some((f) => f.symbol !== o.request.symbol && f.time === o.createdAt),
    );
    expect(onOtherFill.length).toBeGreaterThan(0);
    const closeOf = (i: number) => btc.bars[i]!.time + 60_000;
    let quiet = 90;
    while ([0, 1, 2].some((d) => decided.has(closeOf(quiet + d)))) quiet++;
    expect(quiet).toBeLessThan(N - 10);
    const storeUrl = `sqlite:${path.join(dir, 'live.db')}`;
    const botId = 'sma-cross-BTCUSDT-ETHUSDT-live';
    const args = [
      'live',
      '--strategy',
      'sma-cross',
      '--param',
      `fast=${params.fast}`,
      '--param',
      `slow=${params.slow}`,
      // The strategy's own sizing, orderTargetPercent of the equity: an entry decided at the close
      // of a bar in which the other pair's order filled (at that bar's open) sizes on an equity
      // that holds that fill, live as in the backtest (every market's fills of a close time
      // before any strategy decides).
      '--symbol',
      'BTC/USDT,ETH/USDT',
      '--exchange-url',
      sim.httpUrl,
      '--confirm-live',
      '--store',
      storeUrl,
      '--store-sync',
      'normal',
    ];
    const env = { KEEL_API_KEY: KEY.apiKey, KEEL_API_SECRET: KEY.secret };
    const store = await (async () => {
      const p = keelProcess(args, dir, env);
      await until(() => /live bot started/.test(p.err()) || p.proc.exitCode !== null, 30_000, 'the live bot');
      return { p, store: await openStore({ url: storeUrl }) };
    })();
    let bot = store.p;
    const db = store.store;
    const handled = async (t: number) => {
      const st = (await db.state.load(botId))?.state as { lastBarTime?: Record<string, number> } | undefined;
      const last = st?.lastBarTime ?? {};
      return last['BTC/USDT@1m'] === t && last['ETH/USDT@1m'] === t && (await db.orders.open(botId)).length === 0;
    };
    const subscribed = async () => {
      for (const s of ['btcusdt@kline_1m', 'ethusdt@kline_1m', `user:${KEY.apiKey}`])
        await sim.waitForSubscription(s, 20_000);
    };
    // Steps the simulator one bar and waits until the bot has handled both pairs' bar and its orders are done.
    const step = async (k: number) => {
      sim.step();
      const t = btc.bars[k - 1]!.time;
      await until(() => handled(t), 20_000, `both pairs' bar ${k - 1} handled (stderr: ${bot.err().slice(-2000)})`);
    };
    try {
      await subscribed();
      for (let k = 1; k <= 70; k++) await step(k);
      const before = sim.getOrders(KEY.apiKey).length;
      bot.proc.kill('SIGKILL');
      await bot.exited;
      bot = keelProcess(args, dir, env);
      await until(() => /live bot started/.test(bot.err()) || bot.proc.exitCode !== null, 30_000, 'the restart');
      expect(bot.err()).toMatch(/no longer exists|took over the lock/);
      await subscribed();
      await new Promise((r) => setTimeout(r, 300));
      for (let k = 71; k <= quiet; k++) await step(k);
      expect(sim.getOrders(KEY.apiKey).length).toBeGreaterThan(before);
      // SIGTERM, three bars of each pair close while the bot is down, restart: each pair catches up.
      bot.proc.kill('SIGTERM');
      expect(await bot.exited, bot.err()).toBe(0);
      for (let k = 0; k < 3; k++) sim.step();
      bot = keelProcess(args, dir, env);
      await until(() => /live bot started/.test(bot.err()) || bot.proc.exitCode !== null, 30_000, 'the second restart');
      await subscribed();
      await until(() => handled(btc.bars[quiet + 2]!.time), 20_000, `the catch-up (stderr: ${bot.err().slice(-2000)})`);
      for (let k = quiet + 4; k < N - 1; k++) await step(k);
      // Three close times of two markets: counted as close times, not bars x markets.
      expect(bot.err()).toMatch(
        /caught up on 3 close time\(s\) \(6 bars across 2 markets\) missed while the bot was down/,
      );
      bot.proc.kill('SIGTERM');
      expect(await bot.exited, bot.err()).toBe(0);
    } finally {
      bot.proc.kill('SIGKILL');
      await db.close();
      await sim.close();
    }
    const orders = sim.getOrders(KEY.apiKey);
    const ids = orders.map((o) => o.clientOrderId);
    expect(new Set(ids).size, 'a client order id sent twice').toBe(ids.length);
    // Orders for each pair, each filled; every exchange fill recorded once by the bot.
    for (const s of ['BTCUSDT', 'ETHUSDT']) expect(orders.filter((o) => o.symbol === s).length).toBeGreaterThan(3);
    expect(orders.every((o) => o.status === 'FILLED')).toBe(true);
    const after = await openStore({ url: storeUrl });
    try {
      const fills = await after.fills.since(botId, 0);
      expect(fills.length).toBe(orders.reduce((a, o) => a + o.fills.length, 0));
      // The fee in the coin bought (Binance's default), per pair.
      expect(new Set(fills.filter((f) => f.side === 'buy').map((f) => f.feeAsset))).toEqual(new Set(['BTC', 'ETH']));
    } finally {
      await after.close();
    }
    const parity = await keel(['bots', 'parity', botId, '--store', storeUrl, '--fee-asset', 'received']);
    expect(parity.code, parity.err).toBe(0);
    expect(parity.out).toContain('in 3 session(s)');
    expect(parity.out, parity.out).toContain('No differences');
  }, 240_000);

  it("live streams: a pair's bar held back past the bound is read from the exchange by REST (real ccxt), in order; its late copy dropped", async () => {
    const N = 12;
    const market = (coin: string) => ({ symbol: `${coin}/USDT`, bars: simBars(bars(coin, N)) });
    const btc = market('BTC');
    const sim = await startExchangeSim({ markets: [btc, market('ETH')], startTime: btc.bars[0]!.time });
    const feeds: FeedKey[] = [
      { symbol: 'BTC/USDT', timeframe: '1m' },
      { symbol: 'ETH/USDT', timeframe: '1m' },
    ];
    const conn = await connectExchange({
      ...fastConnect(sim.httpUrl, KEY, 'late', () => {}),
      symbols: feeds.map((f) => f.symbol),
    });
    const late = btc.bars[4]!.time;
    const [btcStream, ethStream] = feeds.map((f) => conn.candles(f)) as [BarSource, BarSource];
    // BTC's bar of minute 4 reaches the merge 3 s after it closed: its stream is slow that once.
    const slowBtc: BarSource = {
      close: () => btcStream.close(),
      nextBar: (f, after) => btcStream.nextBar?.(f, after) ?? Promise.resolve(undefined),
      async *[Symbol.asyncIterator]() {
        for await (const ev of btcStream) {
          if (ev.bar.time === late) await new Promise((r) => setTimeout(r, 3_000));
          yield ev;
        }
      },
    };
    const logs: string[] = [];
    const merged = mergeSources(feeds, [slowBtc, ethStream], {
      lateAfterMs: 300,
      timer: systemTimer,
      log: (_l, m) => logs.push(m),
    });
    const seen: string[] = [];
    const closes: number[] = [];
    const reading = (async () => {
      for await (const ev of merged) {
        seen.push(`${ev.feed.symbol}@${(ev.bar.time - btc.bars[0]!.time) / 60_000} ${ev.bar.close}`);
        if (ev.feed.symbol === 'BTC/USDT') closes.push(ev.bar.close);
      }
    })();
    try {
      for (const f of ['btcusdt@kline_1m', 'ethusdt@kline_1m']) await sim.waitForSubscription(f, 10_000);
      for (let k = 1; k < N - 1; k++) {
        sim.step();
        await until(() => seen.length >= 2 * k, 10_000, `both bars of minute ${k - 1}: ${seen.join(', ')}`);
      }
      await new Promise((r) => setTimeout(r, 3_200)); // the held-back copy arrives, and is dropped
    } finally {
      await merged.close();
      await reading;
      await conn.close();
      await sim.close();
    }
    // Oracle: the simulator's own bars, in the backtest's order (close time, then BTC before ETH).
    const want = Array.from({ length: N - 2 }, (_, m) => [
      `BTC/USDT@${m} ${btc.bars[m]!.close}`,
      `ETH/USDT@${m} ${bars('ETH', N).close[m]}`,
    ]).flat();
    expect(seen).toEqual(want);
    expect(logs.join('\n')).toMatch(
      /the BTC\/USDT 1m bar of 2024-01-01T00:04:00.000Z had not come by stream \d+ ms after the other feeds' bars closing at 2024-01-01T00:05:00.000Z: read from the exchange/,
    );
  }, 60_000);

  it('paper perpetuals on two pairs (leverage, funding, both directions): keel bots parity replays them as a two-market perpetual backtest, no difference', async () => {
    const files = (['BTC', 'ETH'] as const).map((c) => writeCsv(path.join(dir, `p-${c}.csv`), bars(c, 1_500)));
    const storeUrl = `sqlite:${path.join(dir, 'perp.db')}`;
    const run = await keel([
      'paper',
      '--strategy',
      'sma-cross',
      '--param',
      'direction=both',
      '--market',
      'futures',
      '--leverage',
      '2',
      '--funding-rate',
      '0.0001',
      '--symbol',
      'BTC/USDT,ETH/USDT',
      ...files.flatMap((f) => ['--replay', f]),
      '--store',
      storeUrl,
      '--store-sync',
      'normal',
    ]);
    expect(run.code, run.err).toBe(0);
    expect(run.err).toContain('paper bot started: sma-cross on BTC/USDT:USDT, ETH/USDT:USDT 1m');
    const report = JSON.parse(run.out) as { fills: number; futures: { fundingPayments: number } };
    expect(report.fills).toBeGreaterThan(10);
    // Every 8 h on each market's position: both were charged.
    expect(report.futures.fundingPayments).toBeGreaterThan(1);
    const parity = await keel(['bots', 'parity', 'sma-cross-BTCUSDT-ETHUSDT-perp-paper', '--store', storeUrl]);
    expect(parity.code, parity.err).toBe(0);
    expect(parity.out).toMatch(/funding: bot -?[\d.]+ in \d+ payment\(s\)/);
    expect(parity.out).toContain('No differences');
  }, 120_000);

  it('keel.yaml: paper.symbol and paper.replay as lists, max-open-trades: the same session as the flags; its report per market is the backtest per-pair table', async () => {
    const files = (['BTC', 'ETH'] as const).map((c) => writeCsv(path.join(dir, `y-${c}.csv`), bars(c, 600)));
    const flags = await keel([
      'paper',
      '--strategy',
      'sma-cross',
      '--symbol',
      'BTC/USDT,ETH/USDT',
      ...files.flatMap((f) => ['--replay', f]),
      '--max-open-trades',
      '1',
      '--store',
      `sqlite:${path.join(dir, 'flags.db')}`,
    ]);
    expect(flags.code, flags.err).toBe(0);
    const cwd = path.join(dir, 'yaml');
    mkdirSync(cwd);
    writeFileSync(
      path.join(cwd, 'keel.yaml'),
      `strategy: sma-cross\npaper:\n  symbol: [BTC/USDT, ETH/USDT]\n  replay: [${files.join(', ')}]\n  max-open-trades: 1\n`,
    );
    const yaml = await keel(['paper'], {}, cwd);
    expect(yaml.code, yaml.err).toBe(0);
    const keep = (r: string) => {
      const { startedAt, endedAt, ...rest } = JSON.parse(r) as Record<string, unknown>;
      return rest;
    };
    const report = keep(yaml.out);
    expect(report).toEqual(keep(flags.out));
    expect(report.fills).toBeGreaterThan(0);
    expect(JSON.stringify(report.risk)).toMatch(/max-open-trades/);
    // The session per market, against the backtest's per-pair table of the same bars and settings.
    const bt = await backtestOf(files, 'BTC/USDT,ETH/USDT', 1);
    const want = bt.pairs;
    const pairs = report.pairs as {
      symbol: string;
      trades: number;
      realizedPnlNet: number;
      fees: number;
      denied: number;
    }[];
    expect(pairs.map((p) => [p.symbol, p.trades, p.denied])).toEqual(
      want.map((p) => [p.symbol, p.tradeCount, p.denied]),
    );
    expect(want.reduce((a, p) => a + p.denied, 0)).toBeGreaterThan(0);
    for (const [i, p] of want.entries())
      if (p.openSize === 0) {
        expect(pairs[i]?.realizedPnlNet).toBeCloseTo(p.pnlNet, 6);
        expect(pairs[i]?.fees).toBeCloseTo(p.fees, 6);
      }
    expect(yaml.err).toMatch(/per market: BTC\/USDT \d+ round trips, .* net, .* fees, \d+ denied; ETH\/USDT /);
  }, 120_000);

  it('a list of markets is never one market: each bad input is refused naming it', async () => {
    const file = writeCsv(path.join(dir, 'one.csv'), bars('BTC', 50));
    const paper = (symbol: string, ...more: string[]) =>
      keel(['paper', '--strategy', 'sma-cross', '--symbol', symbol, '--replay', file, ...more]);
    // The input of the bug: two markets, one file. Before, one market named "BTC/USDT,ETH/USDT".
    const two = await paper('BTC/USDT,ETH/USDT');
    expect(two.code).toBe(2);
    expect(two.err).toContain(
      "keel paper: --replay: 1 file for 2 markets (BTC/USDT, ETH/USDT): give one --replay per market, in --symbol's order",
    );
    expect(two.err).not.toMatch(/FILL/);
    for (const [symbol, says] of [
      ['BTC/USDT,', '"BTC/USDT,": entry 2 is empty (a stray comma?)'],
      ['BTC/USDT,,ETH/USDT', '"BTC/USDT,,ETH/USDT": entry 2 is empty'],
      ['BTC/USDT;ETH/USDT', '"BTC/USDT;ETH/USDT" is not a market: expected BASE/QUOTE'],
      ['BTC/USDT ETH/USDT', '"BTC/USDT ETH/USDT" is not a market'],
      ['BTCXYZ', '"BTCXYZ" is not a market'],
      ['BTC/USDT,btc/usdt', 'BTC/USDT is listed twice'],
      [
        'BTC/USDT,ETH/BTC',
        'the markets must share one quote currency (they share one cash balance): BTC/USDT is in USDT, ETH/BTC is in BTC',
      ],
    ] as const) {
      const r = await paper(symbol);
      expect(r.code, `${symbol}: ${r.err}`).toBe(2);
      expect(r.err).toContain(`keel paper: --symbol: ${says}`);
    }
    // Live, before any key or connection is looked at; the environment and keel.yaml the same way.
    const live = await keel(['live', '--strategy', 'sma-cross', '--symbol', 'BTC/USDT;ETH/USDT', '--confirm-live'], {
      KEEL_API_KEY: 'k',
      KEEL_API_SECRET: 's',
    });
    expect(live.code).toBe(2);
    expect(live.err).toContain('keel live: --symbol: "BTC/USDT;ETH/USDT" is not a market');
    const env = await keel(['paper', '--strategy', 'sma-cross', '--replay', file], { KEEL_SYMBOL: 'BTC/USDT;ETH' });
    expect(env.code).not.toBe(0);
    expect(env.err).toMatch(/KEEL_SYMBOL.*must look like BTC\/USDT/);
    // A backtest's list is read by the same rule.
    const bt = await keel(['backtest', '--strategy', 'sma-cross', '--data', file, '--symbol', 'BTC/USDT;ETH/USDT']);
    expect(bt.code).toBe(2);
    expect(bt.err).toContain('--symbol: "BTC/USDT;ETH/USDT" is not a market');
  }, 120_000);
});
