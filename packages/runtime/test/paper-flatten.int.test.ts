// `keel paper --flatten` stopped by SIGTERM while long, through the real bin (its own process):
// the flatten sells the position where a backtest fills a market order decided at the last bar's
// close, at the next bar's open, with the paper fee; the order row says filled, the position and
// balance rows are what the fills add up to, and the session report has nothing left open.
// Oracles: the candle file (the next bar's open), the backtest of the bars the bot handled (every
// fill before the flatten), and arithmetic on the fills (the cash row).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { runBacktest, sliceSeries } from '@keel/core';
import { readBarsFile } from '@keel/data/csv';
import { openStore, type Store } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip, REPO_ROOT } from '../../../test-support/shared.ts';
import { realCandles, simBars, startSim, until } from './live-harness.ts';

const BIN = path.join(REPO_ROOT, 'apps/cli/bin/keel.js');
const FEE = 0.001;
if (!HAS_SHARED_DATA) noteSkip('paper --flatten on SIGTERM');

const dir = mkdtempSync(path.join(tmpdir(), 'keel-paper-flatten-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `keel paper` of sma-cross(3, 8) on BTC/USDT with --flatten, JSON log lines on stderr. */
function paper(botId: string, store: string, source: string[]) {
  const args = [
    BIN,
    'paper',
    '--strategy',
    'sma-cross',
    '--param',
    'fast=3',
    '--param',
    'slow=8',
    '--symbol',
    'BTC/USDT',
    ...source,
    '--store',
    store,
    '--bot-id',
    botId,
    '--flatten',
    '--log-format',
    'json',
  ];
  const proc: ChildProcess = spawn(process.execPath, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  let out = '';
  proc.stderr?.on('data', (d: Buffer) => void (err += d.toString()));
  proc.stdout?.on('data', (d: Buffer) => void (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  const logs = () =>
    err
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { proc, exited, logs, err: () => err, out: () => out };
}

/** Long, with nothing in flight: the last logged fill is a buy and no order was sent after it. */
const longAndIdle = (logs: Record<string, unknown>[]) => {
  const orders = logs.filter((l) => l.what === 'fill' || l.what === 'sent');
  const last = orders.at(-1);
  return last?.what === 'fill' && last.side === 'buy';
};

async function lastHandled(store: Store, botId: string): Promise<number> {
  const st = (await store.state.load(botId))?.state as { lastBarTime?: Record<string, number> } | undefined;
  return Object.values(st?.lastBarTime ?? {})[0] as number;
}

/** What the flatten must have left: a filled order at `price`, flat rows, cash = the fills' sum. */
async function expectFlattened(store: Store, botId: string, price: number, report: Record<string, unknown>) {
  const orders = await store.orders.list(botId);
  const flatten = orders.filter((o) => o.request.tag === 'flatten');
  expect(flatten, 'one flatten order').toHaveLength(1);
  const f = flatten[0]!;
  expect(f.status, `the flatten order: ${f.reason ?? ''}`).toBe('filled');
  expect(f.avgPrice, "the flatten's price: the open of the bar after the last handled").toBe(price);
  const fills = await store.fills.since(botId, 0);
  const ff = fills.filter((x) => x.orderId === f.request.id);
  expect(ff).toHaveLength(1);
  expect(ff[0]!.fee, 'the paper fee on the flatten').toBeCloseTo(ff[0]!.amount * price * FEE, 9);
  let size = 0;
  let cash = 10_000;
  for (const x of fills) {
    size += x.side === 'buy' ? x.amount : -x.amount;
    cash += (x.side === 'buy' ? -1 : 1) * x.amount * x.price - x.fee;
  }
  expect(size, 'the fills add up to a flat position').toBeCloseTo(0, 12);
  expect((await store.positions.get(botId, 'BTC/USDT'))?.size ?? 0, 'position row').toBeCloseTo(0, 12);
  const balances = Object.fromEntries((await store.balances.load(botId)).map((b) => [b.asset, b.total]));
  expect(balances.BTC ?? 0, 'BTC balance row').toBeCloseTo(0, 12);
  expect(balances.USDT, 'cash row vs the fills').toBeCloseTo(cash, 6);
  expect(report.openOrders, 'nothing left open').toBe(0);
  expect(report.cash).toBeCloseTo(cash, 6);
  expect(report.equity).toBeCloseTo(cash, 6);
  expect(await store.orders.open(botId)).toEqual([]);
  return { fills, flatten: f };
}

describe.skipIf(!HAS_SHARED_DATA)('keel paper --flatten, stopped by SIGTERM while long (the real bin)', () => {
  it('replay: the flatten fills at the open of the next bar of the file; the fills before it are the backtest’s', async () => {
    const lines = gunzipSync(readFileSync(dataFile('binance_BTCUSDT_1m_2024-01.csv.gz')))
      .toString('utf8')
      .split('\n');
    const replay = path.join(dir, 'btc-300.csv');
    writeFileSync(replay, `${lines.slice(0, 301).join('\n')}\n`);
    const storeUrl = `sqlite:${path.join(dir, 'replay.db')}`;
    const bot = paper('pfr', storeUrl, ['--replay', replay, '--replay-delay-ms', '300']);
    try {
      await until(
        () => bot.logs().some((l) => l.what === 'fill') && longAndIdle(bot.logs()),
        60_000,
        'a long position',
      );
      bot.proc.kill('SIGTERM');
      expect(await bot.exited, bot.err().slice(-3000)).toBe(0);
    } finally {
      if (bot.proc.exitCode === null) bot.proc.kill('SIGKILL');
    }
    const series = readBarsFile(replay).series;
    const store = await openStore({ url: storeUrl });
    try {
      const last = await lastHandled(store, 'pfr');
      const i = Array.from(series.time).indexOf(last);
      expect(i).toBeGreaterThan(8);
      const next = series.open[i + 1] as number;
      const report = JSON.parse(bot.out()) as Record<string, unknown>;
      const { fills, flatten } = await expectFlattened(store, 'pfr', next, report);
      // Every fill before the flatten is the backtest's of the bars the bot handled.
      const bt = runBacktest({
        strategy: getStrategy('sma-cross'),
        params: { fast: 3, slow: 8 },
        data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: sliceSeries(series, 0, i + 1) }],
        cash: 10_000,
        fee: FEE,
      });
      const row = (f: { time: number; side: string; price: number; amount: number; fee: number }) =>
        `${f.time} ${f.side} ${f.price} ${f.amount} ${f.fee}`;
      expect(fills.filter((f) => f.orderId !== flatten.request.id).map(row)).toEqual(bt.fills.map(row));
      const held = bt.portfolio.positions.find((p) => p.symbol === 'BTC/USDT')?.size ?? 0;
      expect(held, 'the backtest is long where the bot was stopped').toBeGreaterThan(0);
      expect(flatten.filled).toBe(held);
      // The backtest's convention: a market order decided at bar i's close is stamped at bar i+1's close.
      const ff = fills.find((f) => f.orderId === flatten.request.id)!;
      expect(ff.time).toBe((series.time[i + 1] as number) + 60_000);
    } finally {
      await store.close();
    }
  }, 120_000);

  it('the replay ends while long: no bar to fill the flatten at, so it is cancelled with that reason and the rows keep the position', async () => {
    const all = readBarsFile(dataFile('binance_BTCUSDT_1m_2024-01.csv.gz')).series;
    const backtest = (n: number) =>
      runBacktest({
        strategy: getStrategy('sma-cross'),
        params: { fast: 3, slow: 8 },
        data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: sliceSeries(all, 0, n) }],
        cash: 10_000,
        fee: FEE,
      });
    // The first length at which the backtest ends long with no order in flight.
    let n = 60;
    let bt = backtest(n);
    const longAtEnd = (r: typeof bt) =>
      (r.portfolio.positions.find((p) => p.symbol === 'BTC/USDT')?.size ?? 0) > 0 &&
      r.orders.every((o) => o.status === 'filled' || o.status === 'cancelled');
    while (!longAtEnd(bt)) bt = backtest(++n);
    const lines = gunzipSync(readFileSync(dataFile('binance_BTCUSDT_1m_2024-01.csv.gz')))
      .toString('utf8')
      .split('\n');
    const replay = path.join(dir, `btc-${n}.csv`);
    writeFileSync(replay, `${lines.slice(0, n + 1).join('\n')}\n`);
    const storeUrl = `sqlite:${path.join(dir, 'ended.db')}`;
    const bot = paper('pfe', storeUrl, ['--replay', replay]);
    expect(await bot.exited, bot.err().slice(-3000)).toBe(0);
    const store = await openStore({ url: storeUrl });
    try {
      const last = all.time[n - 1] as number;
      expect(await lastHandled(store, 'pfe')).toBe(last);
      const flatten = (await store.orders.list('pfe')).filter((o) => o.request.tag === 'flatten');
      expect(flatten).toHaveLength(1);
      expect(flatten[0]!.status).toBe('cancelled');
      expect(flatten[0]!.reason).toBe(
        `paper flatten not filled: no BTC/USDT 1m bar after ${new Date(last).toISOString()} to fill at`,
      );
      const held = bt.portfolio.positions.find((p) => p.symbol === 'BTC/USDT')!.size;
      expect((await store.positions.get('pfe', 'BTC/USDT'))?.size).toBe(held);
      const balances = Object.fromEntries((await store.balances.load('pfe')).map((b) => [b.asset, b.total]));
      expect(balances.BTC).toBe(held);
      expect(balances.USDT).toBeCloseTo(bt.finalCash, 6);
      expect(await store.orders.open('pfe')).toEqual([]);
      const report = JSON.parse(bot.out()) as Record<string, unknown>;
      expect(report.openOrders).toBe(0);
      expect(bot.err()).toContain('paper flatten not filled: no BTC/USDT 1m bar after');
    } finally {
      await store.close();
    }
  }, 120_000);

  it('exchange data (the simulator over loopback): the flatten fills at the open of the bar forming after the last', async () => {
    const bars = simBars(realCandles(200));
    const sim = await startSim({ bars });
    const storeUrl = `sqlite:${path.join(dir, 'sim.db')}`;
    const bot = paper('pfx', storeUrl, ['--exchange-url', sim.httpUrl]);
    const store = await openStore({ url: storeUrl });
    try {
      await until(() => bot.logs().some((l) => String(l.msg).includes('paper bot started')), 30_000, 'the start');
      await sim.waitForSubscription('btcusdt@kline_1m', 10_000);
      for (let k = 0; k < 150 && !(bot.logs().some((l) => l.what === 'fill') && longAndIdle(bot.logs())); k++) {
        const before = (await lastHandled(store, 'pfx')) ?? 0;
        sim.step();
        await until(async () => ((await lastHandled(store, 'pfx')) ?? 0) > before, 10_000, 'the next bar handled');
      }
      expect(longAndIdle(bot.logs()), 'the bot went long').toBe(true);
      // The bar after the last handled one is forming in the simulator: the flatten fills at its open.
      bot.proc.kill('SIGTERM');
      expect(await bot.exited, bot.err().slice(-3000)).toBe(0);
      const last = await lastHandled(store, 'pfx');
      const next = bars.find((b) => b.time === last + 60_000)!;
      expect(sim.now(), 'the simulator is at the open of that bar').toBe(next.time);
      await expectFlattened(store, 'pfx', next.open, JSON.parse(bot.out()) as Record<string, unknown>);
    } finally {
      if (bot.proc.exitCode === null) bot.proc.kill('SIGKILL');
      await store.close();
      await sim.close();
    }
  }, 120_000);
});
