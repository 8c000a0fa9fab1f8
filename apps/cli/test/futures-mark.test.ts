// `keel backtest --market futures --mark <file>`: margins, unrealised PnL and liquidation on a
// mark-price series (Binance's markPriceKlines layout); `--position-mode hedge`: both sides held
// apart and shown. Oracle: the numbers computed by hand below on the hand-made bars of
// fixtures/futures (docs/futures.md, "mark price" and "Hedge mode").
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../test-support/shared.ts';
import { keelIn } from './in-process.ts';

const DIR = path.join(REPO_ROOT, 'fixtures', 'futures');
const BARS = path.join(DIR, 'LINKUSDT-1m-trades.csv');
const MARK = path.join(DIR, 'LINKUSDT-markPriceKlines-1m.csv');
const STRATEGY = path.join(DIR, 'buy-once.ts');

// One buy of 100 at bar 0's decision, filled at bar 1's open 10.000, isolated 10x, taker 0.05 %:
// commission 100 x 10 x 0.0005 = 0.5; isolated wallet 1,000 / 10 = 100.
const run = (...extra: string[]) =>
  keelIn([
    'backtest',
    '--strategy',
    STRATEGY,
    '--data',
    BARS,
    '--market',
    'futures',
    '--leverage',
    '10',
    '--margin',
    'isolated',
    '--funding-rate',
    '0',
    '--no-save',
    '--json',
    ...extra,
  ]);

describe('keel backtest --mark <file>', () => {
  it('unrealised PnL and liquidation on the mark, not the last price; a missing mark bar is a counted warning', async () => {
    const last = await run();
    const mark = await run('--mark', MARK);
    expect(last.code, last.err).toBe(0);
    expect(mark.code, mark.err).toBe(0);
    const a = JSON.parse(last.out);
    const b = JSON.parse(mark.out);
    // Bar 1 closes at 10.2, its mark bar at 10.1: unrealised 100 x (10.2 - 10) = 20 on the last
    // price, 100 x (10.1 - 10) = 10 on the mark: equity 10,019.5 and 10,009.5.
    expect(a.equity.values[1]).toBeCloseTo(10_019.5, 9);
    expect(b.equity.values[1]).toBeCloseTo(10_009.5, 9);
    // LP = (100 - 1,000) / (100 x 0.0065 - 100) = 900 / 99.35 = 9.0588827...
    const lp = 900 / 99.35;
    // On the last price bar 2's low 9.5 stays above it: no liquidation; the position is marked at
    // bar 3's close 9.7: equity 10,000 - 0.5 + 100 x (9.7 - 10) = 9,969.5.
    expect(a.futures.liquidations).toEqual([]);
    expect(a.finalValue).toBeCloseTo(9_969.5, 9);
    // On the mark, bar 2's mark low 9.0 crosses it: closed at LP, realised 100 x (LP - 10) =
    // -94.1117...; margin left 100 - 94.1117 = 5.8883; clearance min(1.25 % x 100 x LP = 11.32,
    // 5.8883) = 5.8883: the whole isolated margin. Final 10,000 - 0.5 - 100 = 9,899.5.
    expect(b.futures.liquidations).toHaveLength(1);
    const l = b.futures.liquidations[0];
    expect(l.liquidationPrice).toBeCloseTo(lp, 12);
    expect(l.price).toBeCloseTo(lp, 12);
    expect(l.realizedPnl).toBeCloseTo(100 * (lp - 10), 9);
    expect(l.clearanceFee).toBeCloseTo(100 - 100 * (10 - lp), 9);
    expect(l.time).toBe(1675209600000 + 3 * 60_000);
    expect(b.finalValue).toBeCloseTo(9_899.5, 9);
    expect(b.futures.markets[0].mark).toBe('LINKUSDT-markPriceKlines-1m.csv');
    expect(a.futures.markets[0].mark).toBeUndefined();
    // Bar 3 has no mark bar: counted, and named in the warnings.
    expect(b.futures.warnings).toEqual(['1 bar(s) had no mark-price bar: the traded price was the mark there']);
    expect(a.futures.warnings).toEqual([]);
  });

  it('--mark without --market futures is a usage error; mark bars of another timeframe are refused naming the file', async () => {
    const spot = await keelIn(['backtest', '--strategy', STRATEGY, '--data', BARS, '--mark', MARK, '--no-save']);
    expect(spot.code).toBe(2);
    expect(spot.err).toContain('--mark needs --market futures');
    const tf = await run('--mark', MARK, '--timeframe', '3m');
    expect(tf.code).toBe(1);
    expect(tf.err).toContain(`--mark ${MARK} holds 1m bars but the run is on 3m bars`);
    expect(tf.err).not.toContain('--help');
  });
});

describe('keel backtest --position-mode hedge', () => {
  const hedge = (strategy: string, ...extra: string[]) =>
    keelIn([
      'backtest',
      '--strategy',
      path.join(DIR, strategy),
      '--data',
      BARS,
      '--market',
      'futures',
      '--leverage',
      '10',
      '--position-mode',
      'hedge',
      '--funding-rate',
      '0',
      '--no-save',
      ...extra,
    ]);

  it('both sides held apart: --json and the summary show each side at the end', async () => {
    const r = await hedge('hedge-once.ts', '--json', '--report', 'rep-hedge');
    expect(r.code, r.err).toBe(0);
    // The report lists the sides; fills.csv names each fill's side.
    expect(readFileSync(path.join('rep-hedge', 'report.html'), 'utf8')).toContain(
      '<li>LINK/USDT:USDT short side: 40 @ 10, unrealised 12.00, liquidation price none</li>',
    );
    const csv = readFileSync(path.join('rep-hedge', 'fills.csv'), 'utf8').trim().split('\n');
    expect(csv[0]?.endsWith(',tag,position_side')).toBe(true);
    expect(csv.slice(1).map((l) => l.split(',').at(-1))).toEqual(['long', 'short']);
    const j = JSON.parse(r.out);
    // LONG 100 and SHORT 40 at bar 1's open 10 (fees 0.5 + 0.2), held to bar 3's close 9.7:
    // unrealised LONG 100 x (9.7 - 10) = -30, SHORT -40 x (9.7 - 10) = +12; final 10,000 - 0.7 - 18.
    expect(j.finalValue).toBeCloseTo(9981.3, 9);
    const m = j.futures.markets[0];
    expect(m.positionMode).toBe('hedge');
    expect(
      m.sides.map((x: { positionSide: string; size: number; entryPrice: number }) => [
        x.positionSide,
        x.size,
        x.entryPrice,
      ]),
    ).toEqual([
      ['long', 100, 10],
      ['short', -40, 10],
    ]);
    expect(m.sides[0].unrealizedPnl).toBeCloseTo(-30, 9);
    expect(m.sides[1].unrealizedPnl).toBeCloseTo(12, 9);
    // Cross hedge LP = (9,999.3 - 1,000 + 400) / (0.65 + 0.26 - 100 + 40) < 0: none.
    expect(m.sides[0].liquidationPrice).toBe(0);
    expect(j.openTrades.map((t: { direction: string; size: number }) => [t.direction, t.size])).toEqual([
      ['long', 100],
      ['short', 40],
    ]);
    const text = await hedge('hedge-once.ts');
    expect(text.out).toContain('futures: LINK/USDT:USDT 10.00x cross hedge, funding: a constant 0 every 8 h');
    expect(text.out).toContain('LINK/USDT:USDT long side: 100 @ 10, unrealised -30.00, liquidation price none');
    expect(text.out).toContain('LINK/USDT:USDT short side: 40 @ 10, unrealised 12.00, liquidation price none');
  });

  it('a one-way strategy in hedge mode: its order is denied with the reason', async () => {
    const r = await hedge('buy-once.ts', '--json');
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.orders[0].status).toBe('denied');
    expect(j.orders[0].reason).toBe(
      "LINK/USDT:USDT is in hedge mode: an order must name its positionSide ('long' or 'short')",
    );
    const bad = await hedge('buy-once.ts', '--position-mode', 'both');
    expect(bad.code).toBe(2);
  });

  it('keel paper --replay --mark: the same liquidation on the mark as the backtest', async () => {
    const r = await keelIn([
      'paper',
      '--strategy',
      STRATEGY,
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
      '--replay',
      BARS,
      '--mark',
      MARK,
      '--store',
      'sqlite:./paper-mark.db',
    ]);
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    // The backtest above: liquidated on the mark, 10,000 - 0.5 - 100 left.
    expect(j.cash).toBeCloseTo(9_899.5, 9);
    expect(j.futures.liquidations).toBe(1);
    expect(j.futures.liquidationFees).toBeCloseTo(100 - 100 * (10 - 900 / 99.35), 9);
    expect(j.futures.warnings).toEqual(['1 bar(s) had no mark-price bar: the traded price was the mark there']);
  });

  it('keel paper takes --mark only with --replay', async () => {
    const m = await keelIn([
      'paper',
      '--strategy',
      'sma-cross',
      '--symbol',
      'LINK/USDT',
      '--market',
      'futures',
      '--mark',
      MARK,
    ]);
    expect(m.code).toBe(2);
    expect(m.err).toContain('--mark needs --replay');
  });
});
