/**
 * The columnar drivers are the streaming indicators run over a column, not a second implementation:
 * each column must equal, bit for bit (Object.is), what the indicator returns bar by bar on real
 * bars. Their NaN rules are checked against a naive recomputation (oracle: the window definition).
 */
import { describe, expect, it } from 'vitest';
import {
  ADX,
  ATR,
  adxColumn,
  atrColumn,
  Bollinger,
  bollingerColumns,
  Donchian,
  donchianColumns,
  EMA,
  emaColumn,
  type Indicator,
  MACD,
  MFI,
  macdColumns,
  mfiColumn,
  OBV,
  obvColumn,
  ROC,
  RollingRange,
  RSI,
  rocColumn,
  rollingExtremeColumn,
  rollingVwapColumn,
  rsiColumn,
  SMA,
  SmaCore,
  smaColumn,
  VWAP,
  windowSumColumn,
  ZScore,
  zscoreColumn,
} from '../../src/indicators/index.ts';
import { barSeries } from '../../src/model/bar.ts';
import { BTC_1M, ETH_1H, HAS_SHARED_DATA, loadBars, noteSkip } from './load.ts';

function firstDiff(label: string, a: ArrayLike<number>, b: ArrayLike<number>): string | null {
  if (a.length !== b.length) return `${label}: length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++)
    if (!Object.is(a[i], b[i])) return `${label} row ${i}: column ${a[i]}, streaming ${b[i]}`;
  return null;
}

/** The indicator's field after each bar, as a column. */
function streamed(ind: Indicator, bars: ReturnType<typeof loadBars>['bars'], field = 'value'): Float64Array {
  const rec = ind as unknown as Record<string, number>;
  return Float64Array.from(bars, (b) => {
    ind.update(b);
    return rec[field] as number;
  });
}

if (!HAS_SHARED_DATA) noteSkip('columnar drivers');

describe.skipIf(!HAS_SHARED_DATA)('columnar drivers equal the streaming indicators bit for bit', () => {
  for (const [label, file, n] of [
    ['BTCUSDT 1m 2024-01 (first 20,000 bars)', BTC_1M, 20_000],
    ['ETHUSDT 1h (first 12,000 bars, with the zero-volume halt bar)', ETH_1H, 12_000],
  ] as const) {
    it(label, () => {
      const d = loadBars(file, n);
      const s = barSeries(d);
      const c = s.close;
      const v = s.volume;
      const volumeBars = d.bars.map((b) => ({ ...b, close: b.volume }));
      const problems = [
        firstDiff('EMA(12)', emaColumn(c, 12), streamed(new EMA(12), d.bars)),
        firstDiff('RSI(14)', rsiColumn(c, 14), streamed(new RSI(14), d.bars)),
        firstDiff('MACD line', macdColumns(c, 12, 26, 9).macd, streamed(new MACD(12, 26, 9), d.bars, 'macd')),
        firstDiff('MACD hist', macdColumns(c, 12, 26, 9).histogram, streamed(new MACD(), d.bars, 'histogram')),
        firstDiff('SMA(20)', smaColumn(c, 20), streamed(new SMA(20), d.bars)),
        firstDiff('ROC(20)', rocColumn(c, 20), streamed(new ROC(20), d.bars)),
        firstDiff('ZScore(20)', zscoreColumn(c, 20), streamed(new ZScore(20), d.bars)),
        firstDiff('ZScore(100) of volume', zscoreColumn(v, 100), streamed(new ZScore(100), volumeBars)),
        firstDiff('Bollinger upper', bollingerColumns(c, 20, 2).upper, streamed(new Bollinger(20, 2), d.bars, 'upper')),
        firstDiff('Bollinger lower', bollingerColumns(c, 20, 2).lower, streamed(new Bollinger(20, 2), d.bars, 'lower')),
        firstDiff('ATR(14)', atrColumn(s, 14), streamed(new ATR(14), d.bars)),
        firstDiff('ADX(14)', adxColumn(s, 14), streamed(new ADX(14), d.bars)),
        firstDiff('MFI(14)', mfiColumn(s, 14), streamed(new MFI(14), d.bars)),
        firstDiff('OBV', obvColumn(s), streamed(new OBV(), d.bars)),
        firstDiff('VWAP(rolling 20)', rollingVwapColumn(s, 20), streamed(new VWAP('rolling', 20), d.bars)),
        firstDiff('Donchian upper', donchianColumns(s, 60).upper, streamed(new Donchian(60), d.bars, 'upper')),
        firstDiff('Donchian lower', donchianColumns(s, 60).lower, streamed(new Donchian(60), d.bars, 'lower')),
      ];
      // The window sum is the SMA's own exact sum, and the rolling extreme the range indicators' deque.
      const sma = new SmaCore(20);
      const sums = Float64Array.from(v, (x) => {
        sma.push(x);
        return sma.sum;
      });
      problems.push(firstDiff('window sum(20) of volume', windowSumColumn(v, 20), sums));
      const range = new RollingRange(14);
      const highs = Float64Array.from(c, (x, i) => {
        range.push({ high: x, low: x });
        return i >= 13 ? range.max : Number.NaN;
      });
      problems.push(firstDiff('rolling max(14) of close', rollingExtremeColumn(c, 14, 'max'), highs));
      expect(problems.filter((p) => p !== null)).toEqual([]);
    });
  }
});

describe('NaN rows in a column', () => {
  // A column with a NaN warm-up and two NaN holes.
  const x = Float64Array.from({ length: 120 }, (_, i) =>
    i < 7 || i === 40 || i === 41 || i === 90 ? Number.NaN : 100 + Math.sin(i * 0.7) * 5 + i * 0.1,
  );
  const naiveWindow = (w: number, f: (win: number[]) => number) =>
    Array.from(x, (_, i) => {
      if (i < w - 1) return Number.NaN;
      const win = Array.from(x.subarray(i - w + 1, i + 1));
      return win.some(Number.isNaN) ? Number.NaN : f(win);
    });

  it('a window indicator is NaN while a NaN row is inside its window, then equals the clean-window value', () => {
    const w = 10;
    const mean = naiveWindow(w, (win) => win.reduce((a, b) => a + b, 0) / w);
    const sum = naiveWindow(w, (win) => win.reduce((a, b) => a + b, 0));
    const max = naiveWindow(w, (win) => Math.max(...win));
    const z = naiveWindow(w, (win) => {
      const m = win.reduce((a, b) => a + b, 0) / w;
      const sd = Math.sqrt(win.reduce((a, b) => a + (b - m) ** 2, 0) / w);
      return ((win[w - 1] as number) - m) / sd;
    });
    const got = {
      sma: smaColumn(x, w),
      sum: windowSumColumn(x, w),
      max: rollingExtremeColumn(x, w, 'max'),
      z: zscoreColumn(x, w),
    };
    for (let i = 0; i < x.length; i++) {
      for (const [name, ours, ref] of [
        ['sma', got.sma[i], mean[i]],
        ['sum', got.sum[i], sum[i]],
        ['max', got.max[i], max[i]],
        ['zscore', got.z[i], z[i]],
      ] as const) {
        if (Number.isNaN(ref as number)) expect(ours, `${name} row ${i}`).toBeNaN();
        else expect(Math.abs((ours as number) - (ref as number)), `${name} row ${i}`).toBeLessThan(1e-9);
      }
    }
    // ROC looks back `period` rows: NaN while either end of the lag is NaN.
    const roc = rocColumn(x, 5);
    for (let i = 0; i < x.length; i++) {
      const a = x[i] as number;
      const b = x[i - 5] as number;
      const span = Array.from(x.subarray(Math.max(0, i - 5), i + 1));
      if (i < 5 || span.some(Number.isNaN)) expect(roc[i], `roc row ${i}`).toBeNaN();
      else expect(roc[i]).toBe((a / b - 1) * 100);
    }
  });

  it('a recursive indicator skips NaN rows: the same as the indicator fed only the finite values', () => {
    const finite = Array.from(x).filter((v) => !Number.isNaN(v));
    const ema = new EMA(5);
    const ref = finite.map((v) => ema.push(v));
    const col = emaColumn(x, 5);
    const kept = Array.from(col).filter((_, i) => !Number.isNaN(x[i] as number));
    expect(kept).toEqual(ref);
    for (let i = 0; i < x.length; i++) if (Number.isNaN(x[i] as number)) expect(col[i]).toBeNaN();
  });
});
