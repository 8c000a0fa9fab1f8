/**
 * The streaming contract, checked on every indicator in the registry with its default params.
 * No oracle: these are invariants (see the oracle tests for values).
 * - the first defined `value` is at index `lookback`, everything before is NaN, nothing after is;
 * - `ready` flips exactly at `lookback`;
 * - reset() then replaying the same bars gives bit-identical outputs;
 * - outputs on a prefix of the bars equal the prefix of the outputs;
 * - updates allocate nothing that survives, and (allowing for V8's boxing of doubles at calls it
 *   does not inline) nothing per update.
 */
import v8 from 'node:v8';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { INDICATORS, type Indicator } from '../../src/indicators/index.ts';
import type { Bar } from '../../src/model/bar.ts';
import { BTC_1M, HAS_SHARED_DATA, loadBars, noteSkip } from './load.ts';

/** Real bars, then 60 flat zero-volume bars (a halted market) to exercise the zero-division guards. */
function contractBars(): Bar[] {
  const real = loadBars(BTC_1M, 2500).bars;
  const last = real[real.length - 1]!;
  const flat = Array.from({ length: 60 }, (_, i): Bar => {
    const c = last.close;
    // Same property order as the loader's bars, so every bar has one hidden class.
    return {
      time: last.time + (i + 1) * 60_000,
      open: c,
      high: c,
      low: c,
      close: c,
      volume: 0,
      quoteVolume: Number.NaN,
      trades: Number.NaN,
      takerBuyVolume: Number.NaN,
    };
  });
  return [...real, ...flat];
}

function record(ind: Indicator, bars: readonly Bar[], fields: readonly string[]): number[][] {
  const rec = ind as unknown as Record<string, number>;
  return bars.map((b) => {
    ind.update(b);
    return fields.map((f) => rec[f] as number);
  });
}

function sameBits(a: number[][], b: number[][]): string | null {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    for (let j = 0; j < x.length; j++) if (!Object.is(x[j], y[j])) return `bar ${i} output ${j}: ${x[j]} vs ${y[j]}`;
  }
  return null;
}

if (!HAS_SHARED_DATA) noteSkip('indicator contract');

describe.skipIf(!HAS_SHARED_DATA)('every registered indicator honours the streaming contract', () => {
  const names = Object.keys(INDICATORS);

  it('the registry holds at least 35 indicators, each with defaults and numeric outputs', () => {
    expect(names.length).toBeGreaterThanOrEqual(35);
    for (const name of names) {
      const f = INDICATORS[name]!;
      const ind = f();
      expect(ind.name, name).toMatch(/\S/);
      for (const out of f.outputs)
        expect(typeof (ind as unknown as Record<string, unknown>)[out], `${name}.${out}`).toBe('number');
    }
  });

  it('the registry rejects unknown or mistyped params with a readable message', () => {
    expect(() => INDICATORS.SMA!({ perod: 10 })).toThrow(/SMA: unknown parameter "perod"/);
    expect(() => INDICATORS.SMA!({ period: '10' })).toThrow(/must be a number/);
    expect(() => INDICATORS.SMA!({ source: 'mid' })).toThrow(/source must be one of/);
    expect(() => INDICATORS.SMA!({ period: 0 })).toThrow(/period must be an integer >= 1/);
    expect(INDICATORS.MACD!({ fast: 5 }).name).toBe('MACD(5,26,9)');
  });

  for (const name of names) {
    it(`${name}: warm-up matches lookback, reset replays bit for bit, prefixes agree`, () => {
      const bars = contractBars();
      const f = INDICATORS[name]!;
      const fields = ['value', ...f.outputs.filter((o) => o !== 'value')];
      const ind = f();
      const L = ind.lookback;
      expect(Number.isInteger(L) && L >= 0, `${name}.lookback = ${L}`).toBe(true);

      const problems: string[] = [];
      const rec = ind as unknown as Record<string, number>;
      const full: number[][] = [];
      for (let i = 0; i < bars.length; i++) {
        const ret = ind.update(bars[i]!);
        full.push(fields.map((k) => rec[k] as number));
        const v = ind.value;
        if (!Object.is(ret, v)) problems.push(`bar ${i}: update returned ${ret}, value is ${v}`);
        if (i < L && !Number.isNaN(v)) problems.push(`bar ${i} < lookback ${L}: value ${v}, expected NaN`);
        if (i >= L && !Number.isFinite(v)) problems.push(`bar ${i} >= lookback ${L}: value ${v}, expected a number`);
        if (ind.ready !== i >= L) problems.push(`bar ${i}: ready ${ind.ready} with lookback ${L}`);
        if (problems.length > 5) break;
      }
      expect(problems).toEqual([]);

      ind.reset();
      expect(Number.isNaN(ind.value) && !ind.ready, `${name} after reset`).toBe(true);
      expect(sameBits(record(ind, bars, fields), full), `${name}: replay after reset`).toBeNull();

      for (const k of [L, L + 1, 1000]) {
        expect(
          sameBits(record(f(), bars.slice(0, k), fields), full.slice(0, k)),
          `${name}: prefix of ${k} bars`,
        ).toBeNull();
      }
    });
  }

  it('updates retain no memory and allocate nothing per update beyond V8 number boxes', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const bars = contractBars();
    const used = () => v8.getHeapStatistics().used_heap_size;
    const N = 50_000;
    const problems: string[] = [];
    const report: string[] = [];
    for (const name of names) {
      const ind = INDICATORS[name]!();
      // A driver per indicator (distinct source, so its own feedback): the call site stays monomorphic
      // as in a strategy holding one indicator, and what we measure is the indicator, not the loop.
      const drive = new Function(
        'ind',
        'bars',
        'n',
        `// ${name}\nfor (let i = 0; i < n; i++) ind.update(bars[i % bars.length]);`,
      ) as (ind: Indicator, bars: readonly Bar[], n: number) => void;
      drive(ind, bars, 20_000);
      const measure = (): number => {
        const profiler = new v8.GCProfiler();
        profiler.start();
        const u0 = used();
        drive(ind, bars, N);
        const u1 = used();
        let freed = 0;
        for (const s of profiler.stop().statistics)
          freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
        return (u1 - u0 + freed) / N;
      };
      // The smaller of two rounds: one-off JIT work (code, feedback) can land in either, not both.
      const perUpdate = Math.min(measure(), measure(), measure());
      // Retention: a leak grows with the number of updates, while the JIT's one-off code and
      // feedback do not. So compare two equal rounds after a full GC each.
      // Two rounds, the smaller counts: late JIT work (optimised code, deopts) under a loaded
      // machine lands in one round, a leak lands in both.
      const retainedRound = (): number => {
        gc();
        const r0 = used();
        drive(ind, bars, N);
        gc();
        return used() - r0;
      };
      const retained = Math.min(retainedRound(), retainedRound());
      report.push(`${name} ${perUpdate.toFixed(1)}B`);
      if (retained > 256 * 1024) problems.push(`${name}: ${retained} bytes retained by ${N} more updates`);
      // V8 boxes a double (16 bytes, dies young) passed to or returned from a call it does not
      // inline, e.g. update's own result when update is too big to inline. Allow two such boxes;
      // the smallest array allocated per update ([a, b]: 64 bytes) already fails.
      if (perUpdate > 48) problems.push(`${name}: ${perUpdate.toFixed(1)} bytes allocated per update`);
    }
    console.log(`transient bytes per update: ${report.join(', ')}`);
    expect(problems).toEqual([]);
  });
});
