// A paper futures bot (`keel paper --market futures`, the real bin, its own process) replaying
// two days of LINKUSDT USD-M 1m with Binance's funding archive, killed with kill -9 half-way and
// started again. Oracle: the backtest of the same bars with the same settings. Every fill the
// runs made (in the store) is the backtest's, price, amount and fee; every funding payment
// (journaled as futures.funding) is the backtest's; the final cash is the backtest's.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { runBacktest } from '@keel/core';
import { readBarsFile, readFundingRateFile } from '@keel/data/csv';
import { openStore } from '@keel/store';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { botParity } from '../src/parity.ts';
import { type KeelProcess, keelProcess, until } from './live-harness.ts';

const BARS = dataFile('binance-futures-um_LINKUSDT_1m_2023-02.csv.gz');
const FUNDING = dataFile('binance-futures-um_LINKUSDT_fundingRate_2023-02.csv.gz');
const BOT = 'linkperp';
if (!HAS_SHARED_DATA) noteSkip('futures-paper.int.test.ts', BARS);

const dir = mkdtempSync(path.join(tmpdir(), 'keel-futures-paper-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function paper(replay: string, store: string, delayMs: number): KeelProcess {
  const args = [
    'paper',
    '--strategy',
    'sma-cross',
    '--param',
    'direction=both',
    '--symbol',
    'LINK/USDT',
    '--market',
    'futures',
    '--leverage',
    '3',
    '--margin',
    'isolated',
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
  'paper futures = the backtest of the same bars, through a kill -9 (the real bin)',
  () => {
    it('fill for fill and funding for funding, with the isolated margin carried over the restart', async () => {
      // The first two days (2,880 bars, funding at 00:00, 08:00, 16:00) as a file the bot replays.
      const lines = gunzipSync(readFileSync(BARS)).toString('utf8').split('\n');
      const replay = path.join(dir, 'LINKUSDT-2d.csv');
      writeFileSync(replay, `${lines.slice(0, 1 + 2 * 1440).join('\n')}\n`);
      const storeUrl = `sqlite:${path.join(dir, 'paper.db')}`;

      const first = paper(replay, storeUrl, 8);
      const peek = await openStore({ url: storeUrl });
      try {
        // Half-way through, at a moment with no order in flight (a paper order lives in the bot
        // only: one in flight at a crash is lost, as documented), kill -9.
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

        const second = paper(replay, storeUrl, 0);
        expect(await second.exited, second.err().slice(-3000)).toBe(0);
        expect(second.err()).toContain('paper bot started');
        // The session's summary shows funding and liquidations apart from the fees.
        expect(second.err()).toMatch(
          /; futures: funding -?[\d.]+ \(paid [\d.]+, received [\d.]+, \d+ payments\), 0 liquidations/,
        );

        // The oracle: the backtest of the same bars, the same strategy, settings and fee.
        const series = readBarsFile(replay).series;
        const funding = readFundingRateFile(FUNDING, { symbol: 'LINK/USDT:USDT' }).series;
        const bt = runBacktest({
          strategy: getStrategy('sma-cross'),
          params: { direction: 'both' },
          data: [{ symbol: 'LINK/USDT:USDT', timeframe: '1m', series }],
          cash: 10_000,
          fee: 0.0005,
          futures: () => ({ leverage: 3, marginMode: 'isolated', funding }),
        });
        expect(bt.fills.length).toBeGreaterThan(fillsAtCrash);
        const fills = await peek.fills.since(BOT, 0);
        const row = (f: { time: number; side: string; price: number; amount: number; fee: number }) =>
          `${f.time} ${f.side} ${f.price} ${f.amount} ${f.fee}`;
        expect(fills.map(row)).toEqual(bt.fills.map(row));
        const events = await peek.events.list(BOT);
        const paid = events
          .filter((e) => e.type === 'futures.funding')
          .map((e) => e.payload as { time: number; markPrice: number; size: number; payment: number });
        const pay = (p: { time: number; markPrice: number; size: number; payment: number }) =>
          `${p.time} ${p.markPrice} ${p.size} ${p.payment}`;
        expect(paid.length).toBeGreaterThan(2);
        expect(paid.map(pay)).toEqual(bt.futures!.payments.map(pay));
        const cash = (await peek.balances.load(BOT)).find((b) => b.asset === 'USDT')?.total;
        expect(cash).toBe(bt.finalCash);
        // The isolated margin went through the restart: the saved book holds the backtest's.
        const st = (await peek.state.load(BOT))?.state as { futures?: { isolatedWallets: Record<string, number> } };
        const wallet = bt.futures?.markets[0]?.isolatedWallet;
        expect(wallet).toBeGreaterThan(0);
        expect(st.futures?.isolatedWallets['LINK/USDT:USDT']).toBe(wallet);

        // `keel bots parity` replays both sessions as perpetuals (margin, funding, the isolated
        // wallet carried over the restart): the bot did exactly what the backtest of its bars did,
        // funding payment for funding payment.
        const parity = (await botParity(peek, BOT)).result;
        expect(parity.sessions.length).toBe(2);
        expect(parity.differences).toEqual([]);
        expect(parity.fills.backtest).toBe(bt.fills.length);
        expect(parity.futures?.backtest).toEqual(parity.futures?.bot);
        expect(parity.futures?.bot.payments).toBe(paid.length);
        expect(parity.futures?.bot.funding).toBe(paid.reduce((a, p) => a + p.payment, 0));
        // The command as a user runs it says so, with the funding on each side.
        const reportDir = path.join(dir, 'parity-report');
        const cli = keelProcess(['bots', 'parity', BOT, '--store', storeUrl, '--report', reportDir], dir);
        expect(await cli.exited, cli.err()).toBe(0);
        // The report's Futures card: the backtest's funding over both sessions.
        const html = readFileSync(path.join(reportDir, 'report.html'), 'utf8');
        expect(html).toContain('<section class="card" id="futures">');
        expect(html).toContain(`funding ${parity.futures?.backtest.funding.toFixed(2)}`);
        expect(cli.out()).toContain(
          `funding: bot ${parity.futures?.bot.funding.toFixed(2)} in ${paid.length} payment(s), 0 liquidation(s); backtest ${parity.futures?.bot.funding.toFixed(2)} in ${paid.length} payment(s), 0 liquidation(s)`,
        );
        expect(cli.out()).toContain('No differences: the bot did exactly what the backtest of its bars did.');
      } finally {
        if (first.proc.exitCode === null) first.proc.kill('SIGKILL');
        await peek.close();
      }
    }, 180_000);
  },
);
