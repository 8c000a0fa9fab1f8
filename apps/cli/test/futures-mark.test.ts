// `keel backtest --market futures --mark <file>`: margins, unrealised PnL and liquidation on a
// mark-price series (Binance's markPriceKlines layout). Oracle: the numbers computed by hand below
// on the hand-made bars of fixtures/futures (docs/futures.md, "mark price").
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

  it('mark bars of another timeframe, or --mark without --market futures, are usage errors', async () => {
    const spot = await keelIn(['backtest', '--strategy', STRATEGY, '--data', BARS, '--mark', MARK, '--no-save']);
    expect(spot.code).toBe(2);
    expect(spot.err).toContain('--mark needs --market futures');
    const tf = await run('--mark', MARK, '--timeframe', '3m');
    expect(tf.code).toBe(2);
    expect(tf.err).toContain('holds 1m bars but the run is on 3m bars');
  });
});
