// A paper perpetual bot on mark-price bars (`keel paper --market futures --mark <file>`, the real
// bin, its own process), killed with kill -9 while long and started again; after the restart the
// mark, not the traded price, crosses the liquidation price. `keel bots parity` replays both
// sessions on the marks each session's book read (recorded with the bars it handled): no
// difference. Oracles: the paper session's own liquidation (its journal), the liquidation price
// and the wallet computed by hand below, and the mark file itself for what was recorded.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AnyStrategy, LiquidationRecord } from '@keel/core';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../test-support/shared.ts';
import { botParity } from '../src/parity.ts';
import { isSessionSetup, markFeedId, type SessionSetup } from '../src/session.ts';
import { type KeelProcess, keelProcess, until } from './live-harness.ts';

const STRATEGY = path.join(REPO_ROOT, 'fixtures/futures/buy-at.ts');
const BOT = 'linkmark';
const SYMBOL = 'LINK/USDT:USDT';
const T0 = Date.UTC(2023, 1, 1);
const MIN = 60_000;

const dir = mkdtempSync(path.join(tmpdir(), 'keel-futures-paper-mark-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Traded bars and their mark bars (open, high, low, close). Bar 7's traded low 9.5 stays above the
// liquidation price; its mark low 9.0 crosses it.
const TRADED: readonly (readonly [number, number, number, number])[] = [
  [10, 10, 10, 10],
  [10, 10.3, 9.9, 10.2],
  [10.2, 10.3, 10.1, 10.2],
  [10.2, 10.3, 10.1, 10.2],
  [10.2, 10.3, 10.1, 10.2],
  [10.2, 10.3, 10.1, 10.2],
  [10.2, 10.3, 10.1, 10.2],
  [10.2, 10.2, 9.5, 9.6],
  [9.6, 9.7, 9.5, 9.6],
  [9.6, 9.7, 9.5, 9.6],
  [9.6, 9.7, 9.5, 9.6],
  [9.6, 9.7, 9.5, 9.6],
];
const MARK: readonly (readonly [number, number, number, number])[] = [
  [10, 10, 10, 10],
  [10, 10.2, 9.9, 10.1],
  [10.1, 10.2, 10, 10.1],
  [10.1, 10.2, 10, 10.1],
  [10.1, 10.2, 10, 10.1],
  [10.1, 10.2, 10, 10.1],
  [10.1, 10.2, 10, 10.1],
  [10.1, 10.1, 9, 9.2],
  [9.2, 9.3, 9.1, 9.2],
  [9.2, 9.3, 9.1, 9.2],
  [9.2, 9.3, 9.1, 9.2],
  [9.2, 9.3, 9.1, 9.2],
];

/** Binance's klines layout (12 columns), one row a minute from T0. */
function klines(file: string, rows: readonly (readonly [number, number, number, number])[]): string {
  const head =
    'open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,taker_buy_quote_volume,ignore';
  const lines = rows.map(([o, h, l, c], k) => {
    const t = T0 + k * MIN;
    return `${t},${o},${h},${l},${c},1000,${t + MIN - 1},${1000 * c},10,500,${500 * c},0`;
  });
  writeFileSync(file, `${[head, ...lines].join('\n')}\n`);
  return file;
}

function paper(bars: string, mark: string, store: string, delayMs: number): KeelProcess {
  return keelProcess(
    [
      'paper',
      '--strategy',
      STRATEGY,
      '--param',
      `at=${T0}`,
      '--symbol',
      'LINK/USDT',
      '--market',
      'futures',
      '--leverage',
      '10',
      '--margin',
      'isolated',
      '--funding-rate',
      '0',
      '--mark',
      mark,
      '--replay',
      bars,
      '--replay-delay-ms',
      String(delayMs),
      '--store',
      store,
      '--store-sync',
      'normal',
      '--bot-id',
      BOT,
    ],
    dir,
  );
}

describe('keel bots parity of a paper perpetual on mark bars, through a kill -9', () => {
  it('the mark liquidates the position after the restart; parity replays on the recorded marks: no difference', async () => {
    const bars = klines(path.join(dir, 'LINKUSDT-1m.csv'), TRADED);
    const mark = klines(path.join(dir, 'LINKUSDT-markPriceKlines-1m.csv'), MARK);
    const storeUrl = `sqlite:${path.join(dir, 'paper.db')}`;
    const strategy = (await import(STRATEGY)).default as AnyStrategy;

    const first = paper(bars, mark, storeUrl, 400);
    const peek = await openStore({ url: storeUrl });
    try {
      // Long 100 (bought at bar 1's open), before bar 7: kill -9.
      const lastBar = async () => {
        const st = (await peek.state.load(BOT))?.state as { lastBarTime?: Record<string, number> } | undefined;
        return Object.values(st?.lastBarTime ?? {})[0] ?? 0;
      };
      await until(async () => (await lastBar()) >= T0 + 3 * MIN, 30_000, 'the paper bot to handle bar 3');
      first.proc.kill('SIGKILL');
      expect(await first.exited).toBe(null);
      expect(await lastBar(), 'bar 7 must come after the restart').toBeLessThan(T0 + 7 * MIN);
      const held = (await peek.positions.load(BOT)).find((p) => p.symbol === SYMBOL);
      expect(held?.size).toBe(100);

      const second = paper(bars, mark, storeUrl, 0);
      expect(await second.exited, second.err().slice(-3000)).toBe(0);
      expect(second.err()).toContain('LIQUIDATED');

      // Hand-computed: 100 LINK bought at 10.000, 10x isolated: isolated wallet 1,000 / 10 = 100;
      // LP = (100 - 1,000) / (100 x 0.65 % - 100) = 900 / 99.35 = 9.05888...; bar 7's mark low 9.0
      // crosses it (its traded low 9.5 does not). Closed at LP (the replay's tick is 0): realised
      // 100 x (LP - 10) = -94.1117; clearance min(1.25 % x 100 x LP, 100 - 94.1117) = 5.8883, the
      // whole isolated margin left. Wallet 10,000 - 0.5 commission (0.05 % of 1,000) - 100.
      const lp = 900 / 99.35;
      const events = await peek.events.list(BOT);
      const liquidations = events
        .filter((e) => e.type === 'futures.liquidation')
        .map((e) => e.payload as LiquidationRecord);
      expect(liquidations).toHaveLength(1);
      const paid = liquidations[0] as LiquidationRecord;
      expect(paid.time).toBe(T0 + 8 * MIN);
      expect(paid.size).toBe(100);
      expect(paid.entryPrice).toBe(10);
      expect(paid.liquidationPrice).toBeCloseTo(lp, 12);
      expect(paid.price).toBeCloseTo(lp, 12);
      expect(paid.realizedPnl).toBeCloseTo(100 * (lp - 10), 9);
      expect(paid.clearanceFee).toBeCloseTo(100 - 100 * (10 - lp), 9);
      const cash = (await peek.balances.load(BOT)).find((b) => b.asset === 'USDT')?.total;
      expect(cash).toBeCloseTo(9_899.5, 9);

      // Each session recorded the mark bar its book read with every bar it handled: the file's.
      const setups = (await peek.setups.list(BOT)).map((s) => s.setup).filter(isSessionSetup);
      expect(setups).toHaveLength(2);
      for (const s of setups) expect(s.futures?.markets[SYMBOL]?.marks).toBe(markFeedId(SYMBOL));
      const recorded = await peek.barLog.range(BOT, markFeedId(SYMBOL), T0, T0 + 11 * MIN);
      expect(recorded.length).toBe(MARK.length);
      expect(Array.from(recorded.low)).toEqual(MARK.map((m) => m[2]));
      expect(Array.from(recorded.close)).toEqual(MARK.map((m) => m[3]));

      // Parity: both sessions, on the marks they read. The backtest liquidates as the paper bot did.
      const run = await botParity(peek, BOT, { strategies: () => strategy });
      const parity = run.result;
      expect(parity.sessions).toHaveLength(2);
      expect(parity.differences).toEqual([]);
      expect(parity.notes.filter((n) => /mark/.test(n))).toEqual([]);
      expect(parity.futures?.bot.liquidations).toBe(1);
      expect(parity.futures?.backtest).toEqual(parity.futures?.bot);
      const replayed = run.backtest.futures?.liquidations[0];
      expect(replayed?.time).toBe(paid.time);
      expect(replayed?.price).toBe(paid.price);
      expect(replayed?.clearanceFee).toBe(paid.clearanceFee);
      expect(run.backtest.finalCash).toBe(cash);
      expect(run.backtest.futures?.markets[0]?.mark).toBe(mark);
      // The command as a user runs it says so.
      const cli = keelProcess(['bots', 'parity', BOT, '--store', storeUrl, '--strategy', STRATEGY], dir);
      expect(await cli.exited, cli.err()).toBe(0);
      expect(cli.out()).toContain('No differences: the bot did exactly what the backtest of its bars did.');

      // The same sessions as a Keel that did not record the marks saw them: the backtest marks on
      // the traded price, is never liquidated, and parity names the liquidation and says why.
      for (const { seq, setup } of await peek.setups.list(BOT)) {
        const s = setup as SessionSetup;
        const f = s.futures;
        if (f === undefined) continue;
        const { marks: _, ...market } = f.markets[SYMBOL] as NonNullable<(typeof f.markets)[string]>;
        await peek.setups.save(BOT, seq, { ...s, futures: { ...f, markets: { [SYMBOL]: market } } });
      }
      const before = (await botParity(peek, BOT, { strategies: () => strategy })).result;
      expect(before.differences.map((d) => d.kind)).toEqual(['liquidation']);
      expect(before.differences[0]?.detail).toContain('the backtest was not');
      expect(before.futures?.backtest.liquidations).toBe(0);
      expect(before.notes).toContainEqual(
        expect.stringContaining(
          `paper session used mark bars (${mark}); the backtest takes the traded price as the mark`,
        ),
      );
    } finally {
      if (first.proc.exitCode === null) first.proc.kill('SIGKILL');
      await peek.close();
    }
  });
});
