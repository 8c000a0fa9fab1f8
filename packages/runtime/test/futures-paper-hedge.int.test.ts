// A paper futures bot in hedge position mode (`keel paper --market futures --position-mode hedge`,
// the real bin, its own process) replaying two days of LINKUSDT USD-M 1m with Binance's funding
// archive, its long and short sides often held at once, killed with kill -9 half-way and started
// again. Oracle: the backtest of the same bars with the same settings: every fill (with its side),
// every funding payment (with its side), the final cash, each side's isolated wallet and position.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { type AnyStrategy, runBacktest } from '@keel/core';
import { readBarsFile, readFundingRateFile } from '@keel/data/csv';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip, REPO_ROOT } from '../../../test-support/shared.ts';
import { botParity } from '../src/parity.ts';
import { type KeelProcess, keelProcess, until } from './live-harness.ts';

const BARS = dataFile('binance-futures-um_LINKUSDT_1m_2023-02.csv.gz');
const FUNDING = dataFile('binance-futures-um_LINKUSDT_fundingRate_2023-02.csv.gz');
const BIN = path.join(REPO_ROOT, 'apps/cli/bin/keel.js');
const STRATEGY = path.join(REPO_ROOT, 'fixtures/futures/hedge-cross.ts');
const BOT = 'linkhedge';
const SYMBOL = 'LINK/USDT:USDT';
if (!HAS_SHARED_DATA) noteSkip('futures-paper-hedge.int.test.ts', BARS);

const dir = mkdtempSync(path.join(tmpdir(), 'keel-futures-paper-hedge-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function paper(replay: string, store: string, delayMs: number): KeelProcess {
  const args = [
    'paper',
    '--strategy',
    STRATEGY,
    '--symbol',
    'LINK/USDT',
    '--market',
    'futures',
    '--leverage',
    '3',
    '--margin',
    'isolated',
    '--position-mode',
    'hedge',
    '--funding',
    FUNDING,
    '--replay',
    replay,
    '--replay-delay-ms',
    String(delayMs),
    '--store',
    store,
    '--store-sync',
    'normal',
    '--bot-id',
    BOT,
  ];
  return keelProcess(args, dir);
}

describe.skipIf(!HAS_SHARED_DATA)(
  'paper futures in hedge mode = the backtest of the same bars, through a kill -9',
  () => {
    it('fill for fill with their sides, funding for funding, both sides and their isolated wallets over the restart', async () => {
      const lines = gunzipSync(readFileSync(BARS)).toString('utf8').split('\n');
      const replay = path.join(dir, 'LINKUSDT-2d.csv');
      writeFileSync(replay, `${lines.slice(0, 1 + 2 * 1440).join('\n')}\n`);
      const storeUrl = `sqlite:${path.join(dir, 'paper.db')}`;

      // The oracle: the backtest of the same bars, the same strategy, settings and fee.
      const strategy = (await import(STRATEGY)).default as AnyStrategy;
      const series = readBarsFile(replay).series;
      const funding = readFundingRateFile(FUNDING, { symbol: SYMBOL }).series;
      const bt = runBacktest({
        strategy,
        data: [{ symbol: SYMBOL, timeframe: '1m', series }],
        cash: 10_000,
        fee: 0.0005,
        futures: () => ({ leverage: 3, marginMode: 'isolated', funding, positionMode: 'hedge' }),
      });
      expect(bt.errors).toEqual([]);
      // Both sides traded, and held together at some funding time.
      expect(new Set(bt.fills.map((f) => f.positionSide))).toEqual(new Set(['long', 'short']));
      const fundingTimes = new Map<number, Set<string | undefined>>();
      for (const p of bt.futures!.payments) {
        if (!fundingTimes.has(p.time)) fundingTimes.set(p.time, new Set());
        fundingTimes.get(p.time)?.add(p.positionSide);
      }
      expect(
        [...fundingTimes.values()].some((s) => s.size === 2),
        'both sides held at a funding time',
      ).toBe(true);

      const first = paper(replay, storeUrl, 8);
      const peek = await openStore({ url: storeUrl });
      try {
        const half = Date.UTC(2023, 1, 2, 0, 30);
        await until(
          async () => {
            const st = (await peek.state.load(BOT))?.state as { lastBarTime?: Record<string, number> } | undefined;
            const t = Object.values(st?.lastBarTime ?? {})[0] ?? 0;
            return t >= half && (await peek.orders.open(BOT)).length === 0;
          },
          60_000,
          'the paper bot to pass half-way with no order in flight',
        );
        first.proc.kill('SIGKILL');
        expect(await first.exited).toBe(null);
        expect((await peek.orders.open(BOT)).length, 'an order was in flight at the kill').toBe(0);
        const fillsAtCrash = (await peek.fills.since(BOT, 0)).length;
        expect(fillsAtCrash).toBeGreaterThan(2);
        expect(bt.fills.length).toBeGreaterThan(fillsAtCrash);

        const second = paper(replay, storeUrl, 0);
        expect(await second.exited, second.err().slice(-3000)).toBe(0);
        expect(second.err()).toContain('paper bot started');

        const fills = await peek.fills.since(BOT, 0);
        const row = (f: {
          time: number;
          side: string;
          price: number;
          amount: number;
          fee: number;
          positionSide?: string;
        }) => `${f.time} ${f.positionSide} ${f.side} ${f.price} ${f.amount} ${f.fee}`;
        expect(fills.map(row)).toEqual(bt.fills.map(row));
        const events = await peek.events.list(BOT);
        type Pay = { time: number; markPrice: number; size: number; payment: number; positionSide?: string };
        const paid = events.filter((e) => e.type === 'futures.funding').map((e) => e.payload as Pay);
        const pay = (p: Pay) => `${p.time} ${p.positionSide} ${p.markPrice} ${p.size} ${p.payment}`;
        expect(paid.map(pay)).toEqual(bt.futures!.payments.map(pay));
        const cash = (await peek.balances.load(BOT)).find((b) => b.asset === 'USDT')?.total;
        expect(cash).toBe(bt.finalCash);
        // Each side's position and isolated wallet went through the restart.
        const positions = (await peek.positions.load(BOT)).map((p) => [p.positionSide, p.size]);
        expect(positions).toEqual(
          bt.portfolio.positions.filter((p) => p.size !== 0 || true).map((p) => [p.positionSide, p.size]),
        );
        const st = (await peek.state.load(BOT))?.state as { futures?: { isolatedWallets: Record<string, number> } };
        const sides = bt.futures?.markets[0]?.sides ?? [];
        for (const s of sides)
          expect(st.futures?.isolatedWallets[`${SYMBOL} ${s.positionSide}`] ?? 0, `${s.positionSide} wallet`).toBe(
            s.isolatedWallet,
          );
        // `keel bots status` lists each side.
        const status = spawnSync(process.execPath, [BIN, 'bots', 'status', BOT, '--store', storeUrl], {
          cwd: dir,
          encoding: 'utf8',
        });
        expect(status.status, status.stderr).toBe(0);
        expect(status.stdout).toContain(`${SYMBOL} long`);
        expect(status.stdout).toContain(`${SYMBOL} short`);
        // `keel bots parity` replays both sessions in hedge mode, each side with its own margin and
        // funding: no difference, the same funding on each side.
        const parity = (await botParity(peek, BOT, { strategies: () => strategy })).result;
        expect(parity.sessions.length).toBe(2);
        expect(parity.differences).toEqual([]);
        expect(parity.futures?.backtest).toEqual(parity.futures?.bot);
        expect(parity.futures?.bot.payments).toBe(bt.futures?.payments.length);
        // Started again in one-way mode: refused as a change of its stored settings; with
        // --reconfigure, refused while it holds a side, with the reason.
        const held = bt.portfolio.positions.find((p) => p.size !== 0);
        expect(held, 'a side is held at the end').toBeDefined();
        const oneWayArgs = (...more: string[]) => [
          BIN,
          'paper',
          '--strategy',
          STRATEGY,
          '--symbol',
          'LINK/USDT',
          '--market',
          'futures',
          '--leverage',
          '3',
          '--margin',
          'isolated',
          '--replay',
          replay,
          '--store',
          storeUrl,
          '--bot-id',
          BOT,
          ...more,
        ];
        const changed = spawnSync(process.execPath, oneWayArgs(), { cwd: dir, encoding: 'utf8' });
        expect(changed.status).toBe(1);
        expect(changed.stderr).toContain(`(changed: ${SYMBOL} position mode hedge -> one-way)`);
        const oneWay = spawnSync(process.execPath, oneWayArgs('--reconfigure'), { cwd: dir, encoding: 'utf8' });
        expect(oneWay.status).not.toBe(0);
        expect(oneWay.stderr).toContain(
          `side (hedge mode): it cannot start in one-way position mode; start it in the mode it holds the position in`,
        );
        // Refused: the stored settings stay hedge.
        const again = spawnSync(process.execPath, oneWayArgs(), { cwd: dir, encoding: 'utf8' });
        expect(again.stderr).toContain(`(changed: ${SYMBOL} position mode hedge -> one-way)`);
      } finally {
        if (first.proc.exitCode === null) first.proc.kill('SIGKILL');
        await peek.close();
      }
    }, 180_000);

    it('--flatten on SIGTERM closes each side with an order on that side, at the next bar of the replay', async () => {
      // fixtures/futures: LONG 100 and SHORT 40 open at bar 1's open (10); stopped while both are held.
      const bars = path.join(REPO_ROOT, 'fixtures/futures/LINKUSDT-1m-trades.csv');
      const storeUrl = `sqlite:${path.join(dir, 'flatten.db')}`;
      const proc = spawn(
        process.execPath,
        [
          BIN,
          'paper',
          '--strategy',
          path.join(REPO_ROOT, 'fixtures/futures/hedge-once.ts'),
          '--symbol',
          'LINK/USDT',
          '--market',
          'futures',
          '--leverage',
          '10',
          '--position-mode',
          'hedge',
          '--funding-rate',
          '0',
          '--replay',
          bars,
          '--replay-delay-ms',
          '1500',
          '--store',
          storeUrl,
          '--bot-id',
          'hedgeflat',
          '--flatten',
        ],
        { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      proc.stdout?.on('data', (d: Buffer) => void (out += d.toString()));
      proc.stderr?.on('data', (d: Buffer) => void (err += d.toString()));
      const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
      const store = await openStore({ url: storeUrl });
      try {
        await until(async () => (await store.fills.since('hedgeflat', 0)).length === 2, 30_000, 'both sides opened');
        proc.kill('SIGTERM');
        expect(await exited, err.slice(-3000)).toBe(0);
        const series = readBarsFile(bars).series;
        const st = (await store.state.load('hedgeflat'))?.state as { lastBarTime?: Record<string, number> };
        const last = Object.values(st.lastBarTime ?? {})[0] as number;
        const next = series.open[Array.from(series.time).indexOf(last) + 1] as number;
        expect(next).toBeGreaterThan(0);
        const flatten = (await store.orders.list('hedgeflat')).filter((o) => o.request.tag === 'flatten');
        expect(flatten.map((o) => [o.request.positionSide, o.request.side, o.status, o.filled, o.avgPrice])).toEqual([
          ['long', 'sell', 'filled', 100, next],
          ['short', 'buy', 'filled', 40, next],
        ]);
        const positions = await store.positions.load('hedgeflat');
        expect(positions.map((p) => [p.positionSide, p.size])).toEqual([
          ['long', 0],
          ['short', 0],
        ]);
        // The cash: 10,000 less four taker fees (0.05 %), plus 100 x (next - 10) - 40 x (next - 10).
        const fees = (100 * 10 + 40 * 10 + 100 * next + 40 * next) * 0.0005;
        const report = JSON.parse(out) as { cash: number; openOrders: number };
        expect(report.openOrders).toBe(0);
        expect(report.cash).toBeCloseTo(10_000 - fees + 60 * (next - 10), 9);
      } finally {
        if (proc.exitCode === null) proc.kill('SIGKILL');
        await store.close();
      }
    }, 60_000);
  },
);
