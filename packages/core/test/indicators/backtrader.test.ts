/**
 * Oracle: backtrader's own indicator columns for BTCUSDT 1m 2024-01 (reference/backtrader). SMA and
 * RSI must be bit-identical (our backtests are matched to backtrader bar for bar), the Bollinger
 * bands within 1e-6, and CrossOver(SMA10, SMA30) equal to backtrader's CrossOver column.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Bollinger, CrossOver, RSI, SMA } from '../../src/indicators/index.ts';
import { BACKTRADER_DIR, BTC_1M, HAS_SHARED_DATA, loadBars, noteSkip, readCsv, readGz } from './load.ts';

const REF = path.join(BACKTRADER_DIR, 'binance_BTCUSDT_1m_2024-01', 'indicators_full.csv.gz');
const HAVE = HAS_SHARED_DATA && existsSync(REF);
if (!HAVE) noteSkip('indicators match backtrader', `backtrader reference ${REF}`);

describe.skipIf(!HAVE)('SMA, RSI, Bollinger and CrossOver match backtrader on BTCUSDT 1m 2024-01', () => {
  it('equal backtrader column by column on all 44,641 bars', () => {
    const d = loadBars(BTC_1M);
    const ref = readCsv(readGz(REF));
    const col = (k: string): number[] => ref.get(k)!.map((s) => (s === 'nan' ? Number.NaN : Number(s)));
    const [sma10, sma30, rsi14, top, mid, bot, cross] = [
      'sma10',
      'sma30',
      'rsi14',
      'bb_top',
      'bb_mid',
      'bb_bot',
      'crossover',
    ].map(col) as [number[], number[], number[], number[], number[], number[], number[]];
    expect(sma10.length).toBe(d.length);
    const f = new SMA(10);
    const s = new SMA(30);
    const r = new RSI(14);
    const bb = new Bollinger(20, 2);
    const x = new CrossOver();
    const bad: string[] = [];
    const same = (a: number, b: number) => (Number.isNaN(b) ? Number.isNaN(a) : a === b);
    const near = (a: number, b: number) => (Number.isNaN(b) ? Number.isNaN(a) : Math.abs(a - b) <= 1e-6);
    for (let i = 0; i < d.length; i++) {
      const bar = d.bars[i]!;
      f.update(bar);
      s.update(bar);
      r.update(bar);
      bb.update(bar);
      x.update(f.value, s.value);
      if (!same(f.value, sma10[i]!)) bad.push(`bar ${i} sma10 ${f.value} != ${sma10[i]}`);
      if (!same(s.value, sma30[i]!)) bad.push(`bar ${i} sma30 ${s.value} != ${sma30[i]}`);
      if (!same(r.value, rsi14[i]!)) bad.push(`bar ${i} rsi14 ${r.value} != ${rsi14[i]}`);
      if (!near(bb.upper, top[i]!)) bad.push(`bar ${i} bb_top ${bb.upper} vs ${top[i]}`);
      if (!near(bb.middle, mid[i]!)) bad.push(`bar ${i} bb_mid ${bb.middle} vs ${mid[i]}`);
      if (!near(bb.lower, bot[i]!)) bad.push(`bar ${i} bb_bot ${bb.lower} vs ${bot[i]}`);
      // backtrader's crossover is nan until both averages exist; ours reports 0 there.
      const want = Number.isNaN(cross[i]!) ? 0 : cross[i]!;
      if (x.value !== want) bad.push(`bar ${i} crossover ${x.value} != ${cross[i]}`);
      if (bad.length > 10) break;
    }
    expect(bad).toEqual([]);
  });
});
