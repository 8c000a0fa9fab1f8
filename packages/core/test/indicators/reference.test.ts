/**
 * Indicators TA-Lib does not have. Oracle: a straightforward reference written here from the
 * textbook definition, recomputing every window from scratch (O(n·period), no state carried
 * between bars except where the definition itself is recursive: EMA, Wilder ATR, SuperTrend).
 */
import { describe, expect, it } from 'vitest';
import {
  CMF,
  Donchian,
  HMA,
  Ichimoku,
  type Indicator,
  Keltner,
  SuperTrend,
  VWAP,
  VWMA,
  ZScore,
} from '../../src/indicators/index.ts';
import { BTC_1D, BTC_1M, type Columns, HAS_SHARED_DATA, loadBars, noteSkip } from './load.ts';

const N1M = 6000;

function stream(ind: Indicator, d: Columns, fields: readonly string[]): Record<string, number[]> {
  const out: Record<string, number[]> = Object.fromEntries(fields.map((f) => [f, [] as number[]]));
  const rec = ind as unknown as Record<string, number>;
  for (const bar of d.bars) {
    ind.update(bar);
    for (const f of fields) out[f]!.push(rec[f] as number);
  }
  return out;
}

/** Problems where ours and ref differ: NaN must match NaN, numbers within 1e-9 relative. */
function diff(label: string, ours: readonly number[], ref: readonly number[]): string[] {
  const bad: string[] = [];
  for (let i = 0; i < ref.length && bad.length < 5; i++) {
    const a = ours[i] as number;
    const b = ref[i] as number;
    if (Number.isNaN(b) ? !Number.isNaN(a) : !(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b))))
      bad.push(`${label}[${i}]: ours ${a}, reference ${b}`);
  }
  return bad;
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const windowOf = (xs: readonly number[], i: number, n: number) => xs.slice(i - n + 1, i + 1);
const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function naiveWma(xs: readonly number[], n: number): number[] {
  return xs.map((_, i) => {
    if (i < n - 1) return Number.NaN;
    let s = 0;
    for (let j = 0; j < n; j++) s += (n - j) * (xs[i - j] as number);
    return s / ((n * (n + 1)) / 2);
  });
}

function naiveEma(xs: readonly number[], n: number): number[] {
  const k = 2 / (n + 1);
  const out: number[] = [];
  let e = Number.NaN;
  xs.forEach((x, i) => {
    if (i === n - 1) e = mean(windowOf(xs, i, n));
    else if (i >= n) e = e + k * (x - e);
    out.push(i >= n - 1 ? e : Number.NaN);
  });
  return out;
}

/** Wilder's ATR: mean of the first n true ranges (bars 1..n), then (prev·(n−1) + tr)/n. */
function naiveAtr(d: Columns, n: number): number[] {
  const tr = range(d.length).map((i) =>
    i === 0
      ? Number.NaN
      : Math.max(d.high[i]! - d.low[i]!, Math.abs(d.high[i]! - d.close[i - 1]!), Math.abs(d.low[i]! - d.close[i - 1]!)),
  );
  const out: number[] = [];
  let a = Number.NaN;
  for (let i = 0; i < d.length; i++) {
    if (i === n) a = mean(tr.slice(1, n + 1));
    else if (i > n) a = (a * (n - 1) + tr[i]!) / n;
    out.push(a);
  }
  return out;
}

const hi = (d: Columns, i: number, n: number) => Math.max(...windowOf(d.high, i, n));
const lo = (d: Columns, i: number, n: number) => Math.min(...windowOf(d.low, i, n));
const tp = (d: Columns, i: number) => (d.high[i]! + d.low[i]! + d.close[i]!) / 3;

if (!HAS_SHARED_DATA) noteSkip('indicators match their naive references');

describe.skipIf(!HAS_SHARED_DATA)(
  'indicators without a TA-Lib counterpart match a naive reference on real bars',
  () => {
    const d1m = () => loadBars(BTC_1M, N1M);

    it('HMA(20) matches the naive WMA(2·WMA(n/2) − WMA(n), √n) reference', () => {
      for (const n of [20, 9]) {
        const d = d1m();
        const half = naiveWma(d.close, Math.floor(n / 2));
        const full = naiveWma(d.close, n);
        const raw = d.close.map((_, i) => 2 * half[i]! - full[i]!);
        const sq = Math.floor(Math.sqrt(n));
        const ref = raw.map((_, i) =>
          i < n - 1 + sq - 1 ? Number.NaN : naiveWma(raw.slice(i - sq + 1, i + 1), sq)[sq - 1]!,
        );
        expect(diff(`HMA(${n})`, stream(new HMA(n), d, ['value']).value!, ref)).toEqual([]);
      }
    });

    it('VWMA(20) matches the naive Σ(close·volume)/Σvolume reference', () => {
      const d = d1m();
      const ref = range(d.length).map((i) => {
        if (i < 19) return Number.NaN;
        let pv = 0;
        let v = 0;
        for (let j = i - 19; j <= i; j++) {
          pv += d.close[j]! * d.volume[j]!;
          v += d.volume[j]!;
        }
        return pv / v;
      });
      expect(diff('VWMA', stream(new VWMA(20), d, ['value']).value!, ref)).toEqual([]);
    });

    it('VWAP matches the naive session (UTC day) and rolling references', () => {
      const d = d1m();
      const day = (i: number) => Math.floor(d.time[i]! / 86_400_000);
      const vwap = (from: number, to: number) => {
        let pv = 0;
        let v = 0;
        for (let j = from; j <= to; j++) {
          pv += tp(d, j) * d.volume[j]!;
          v += d.volume[j]!;
        }
        return pv / v;
      };
      const session = range(d.length).map((i) => {
        let s = i;
        while (s > 0 && day(s - 1) === day(i)) s--;
        return vwap(s, i);
      });
      expect(diff('VWAP(day)', stream(new VWAP('day'), d, ['value']).value!, session)).toEqual([]);
      // The session restarts at each UTC midnight: the first bar of a day is its own typical price.
      const midnight = range(d.length).find((i) => i > 0 && day(i) !== day(i - 1))!;
      expect(session[midnight]).toBeCloseTo(tp(d, midnight), 9);
      const rolling = range(d.length).map((i) => (i < 59 ? Number.NaN : vwap(i - 59, i)));
      expect(diff('VWAP(rolling,60)', stream(new VWAP('rolling', 60), d, ['value']).value!, rolling)).toEqual([]);
    });

    it('ZScore(20) matches the naive two-pass (x − mean)/σ reference', () => {
      for (const d of [d1m(), loadBars(BTC_1D)]) {
        const ref = range(d.length).map((i) => {
          if (i < 19) return Number.NaN;
          const w = windowOf(d.close, i, 20);
          const m = mean(w);
          const sd = Math.sqrt(mean(w.map((x) => (x - m) ** 2)));
          return sd === 0 ? 0 : (d.close[i]! - m) / sd;
        });
        expect(diff('ZScore', stream(new ZScore(20), d, ['value']).value!, ref)).toEqual([]);
      }
    });

    it('CMF(20) matches the naive Σ(mfm·volume)/Σvolume reference', () => {
      const d = d1m();
      const mfv = range(d.length).map((i) => {
        const r = d.high[i]! - d.low[i]!;
        return r > 0 ? ((d.close[i]! - d.low[i]! - (d.high[i]! - d.close[i]!)) / r) * d.volume[i]! : 0;
      });
      const ref = range(d.length).map((i) =>
        i < 19
          ? Number.NaN
          : windowOf(mfv, i, 20).reduce((a, b) => a + b, 0) / windowOf(d.volume, i, 20).reduce((a, b) => a + b, 0),
      );
      expect(diff('CMF', stream(new CMF(20), d, ['value']).value!, ref)).toEqual([]);
    });

    it('Donchian(20) matches the naive highest-high / lowest-low reference', () => {
      const d = d1m();
      const got = stream(new Donchian(20), d, ['upper', 'lower', 'value']);
      const up = range(d.length).map((i) => (i < 19 ? Number.NaN : hi(d, i, 20)));
      const dn = range(d.length).map((i) => (i < 19 ? Number.NaN : lo(d, i, 20)));
      expect([
        ...diff('upper', got.upper!, up),
        ...diff('lower', got.lower!, dn),
        ...diff(
          'middle',
          got.value!,
          up.map((u, i) => (u + dn[i]!) / 2),
        ),
      ]).toEqual([]);
    });

    it('Keltner(20,2,10) matches the naive EMA ± 2·Wilder-ATR reference', () => {
      const d = d1m();
      const got = stream(new Keltner(20, 2, 10), d, ['value', 'upper', 'lower']);
      const e = naiveEma(d.close, 20);
      const a = naiveAtr(d, 10);
      const ok = (i: number) => i >= 19;
      expect([
        ...diff(
          'middle',
          got.value!,
          e.map((x, i) => (ok(i) ? x : Number.NaN)),
        ),
        ...diff(
          'upper',
          got.upper!,
          e.map((x, i) => (ok(i) ? x + 2 * a[i]! : Number.NaN)),
        ),
        ...diff(
          'lower',
          got.lower!,
          e.map((x, i) => (ok(i) ? x - 2 * a[i]! : Number.NaN)),
        ),
      ]).toEqual([]);
    });

    it('SuperTrend(10,3) matches the naive TradingView-style reference', () => {
      for (const d of [d1m(), loadBars(BTC_1D)]) {
        const atr = naiveAtr(d, 10);
        const line: number[] = [];
        const dirs: number[] = [];
        let fu = Number.NaN;
        let fl = Number.NaN;
        let dir = 0;
        for (let i = 0; i < d.length; i++) {
          if (Number.isNaN(atr[i]!)) {
            line.push(Number.NaN);
            dirs.push(0);
            continue;
          }
          const mid = (d.high[i]! + d.low[i]!) / 2;
          const bu = mid + 3 * atr[i]!;
          const bl = mid - 3 * atr[i]!;
          if (dir === 0) {
            fu = bu;
            fl = bl;
            dir = -1;
          } else {
            const pc = d.close[i - 1]!;
            fu = bu < fu || pc > fu ? bu : fu;
            fl = bl > fl || pc < fl ? bl : fl;
            dir = dir === -1 ? (d.close[i]! > fu ? 1 : -1) : d.close[i]! < fl ? -1 : 1;
          }
          line.push(dir === 1 ? fl : fu);
          dirs.push(dir);
        }
        const got = stream(new SuperTrend(10, 3), d, ['value', 'direction']);
        expect([...diff('value', got.value!, line), ...diff('direction', got.direction!, dirs)]).toEqual([]);
        expect(new Set(dirs.slice(11))).toEqual(new Set([1, -1]));
      }
    });

    it('Ichimoku(9,26,52,26) matches the naive midpoint reference, cloud displaced without lookahead', () => {
      const d = d1m();
      const mid = (i: number, n: number) => (i < n - 1 ? Number.NaN : (hi(d, i, n) + lo(d, i, n)) / 2);
      const tenkan = range(d.length).map((i) => mid(i, 9));
      const kijun = range(d.length).map((i) => mid(i, 26));
      const senkouA = range(d.length).map((i) => (tenkan[i]! + kijun[i]!) / 2);
      const senkouB = range(d.length).map((i) => mid(i, 52));
      const past = (xs: number[], i: number) => (i >= 26 ? xs[i - 26]! : Number.NaN);
      const got = stream(new Ichimoku(9, 26, 52, 26), d, [
        'tenkan',
        'kijun',
        'senkouA',
        'senkouB',
        'cloudA',
        'cloudB',
        'chikou',
        'value',
      ]);
      expect([
        ...diff('tenkan', got.tenkan!, tenkan),
        ...diff('kijun', got.kijun!, kijun),
        ...diff('value', got.value!, kijun),
        ...diff('senkouA', got.senkouA!, senkouA),
        ...diff('senkouB', got.senkouB!, senkouB),
        ...diff(
          'cloudA',
          got.cloudA!,
          range(d.length).map((i) => past(senkouA, i)),
        ),
        ...diff(
          'cloudB',
          got.cloudB!,
          range(d.length).map((i) => past(senkouB, i)),
        ),
        ...diff('chikou', got.chikou!, d.close),
      ]).toEqual([]);
    });
  },
);
