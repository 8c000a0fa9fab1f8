import {
  type BacktestResult,
  type ClientOrderId,
  isoUtc,
  newOrderState,
  type OrderRequest,
  runBacktest,
  SeededRng,
} from '@keel/core';
import { readBarsFile } from '@keel/data/csv';
import { getStrategy } from '@keel/strategies';
import { describe, expect, it } from 'vitest';
import { HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { IsoUtcFormatter, resultJsonChunks, resultToJson } from '../src/index.ts';
import { BTC_1M, HOSTILE, hostileRun, riskRun, syntheticBars } from './helpers.ts';

// The oracle: the in-memory JSON the CLI printed before it streamed (and what result.json held).
const inMemory = (r: BacktestResult): Buffer => Buffer.from(`${JSON.stringify(resultToJson(r), null, 1)}\n`, 'utf8');

function streamed(r: BacktestResult, opts: Parameters<typeof resultJsonChunks>[1] = {}): Buffer {
  const parts: Uint8Array[] = [];
  // A reused buffer is valid only until the next chunk: copy it, as a writer finishes with it.
  for (const c of resultJsonChunks(r, opts)) parts.push(opts.reuseBuffer ? c.slice() : c);
  return Buffer.concat(parts);
}

function expectSameBytes(actual: Buffer, expected: Buffer): void {
  if (actual.equals(expected)) return;
  let i = 0;
  while (i < actual.length && actual[i] === expected[i]) i++;
  const at = (b: Buffer) => JSON.stringify(b.subarray(Math.max(0, i - 80), i + 80).toString('utf8'));
  expect.fail(
    `streamed JSON differs from JSON.stringify at byte ${i} of ${expected.length} (streamed ${actual.length}):\n  streamed: ${at(actual)}\n  expected: ${at(expected)}`,
  );
}

const order = (request: Omit<OrderRequest, 'id' | 'symbol' | 'side' | 'amount' | 'timeInForce'>, k: number) =>
  newOrderState(
    {
      id: `o-${k}-é` as ClientOrderId,
      symbol: 'SYN/USDT',
      side: k % 2 ? 'sell' : 'buy',
      amount: 0.1 * k,
      timeInForce: 'GTC',
      ...request,
    } as OrderRequest,
    1_704_067_200_000 + k,
    Number.NaN,
  );

/** A result with every kind of value the JSON has to carry, including ones no engine run makes. */
function oddResult(): BacktestResult {
  const { result } = hostileRun(2_000);
  const n = result.equity.times.length;
  const times = Float64Array.from(result.equity.times);
  const values = Float64Array.from(result.equity.values);
  times[0] = -86_400_000 * 400 + 0.5; // before 1970, fractional ms
  times[1] = 1_704_067_200_123; // milliseconds
  times[2] = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
  times[3] = 42; // a time below the digit cache's range
  values[0] = Number.NaN;
  values[1] = Number.POSITIVE_INFINITY;
  values[2] = -0;
  values[3] = 1e21;
  values[n - 1] = 5e-324;
  return {
    ...result,
    params: {
      note: HOSTILE,
      nested: { deep: [1, null, 'ß', { z: 'last', a: 'first' }], empty: {}, none: [] },
      every: 25,
      unicode: 'naïve — 😀 \u0001 \u2028 "quotes" \\ back',
    },
    metrics: { ...result.metrics, profitFactor: Number.POSITIVE_INFINITY, sharpe: Number.NaN },
    orders: [
      ...result.orders.slice(0, 5),
      order({ type: 'limit', price: 101.5, postOnly: true, tag: 'entry\nline two' } as never, 1),
      order({ type: 'stop-market', stopPrice: 99, reduceOnly: true, ocoGroup: 'g1' } as never, 2),
      order({ type: 'stop-limit', stopPrice: 99, price: 98.5, parentId: 'o-1-é' } as never, 3),
      order({ type: 'trailing-stop', trail: { kind: 'percent', value: 0.02 }, expireAt: 1.5e12 } as never, 4),
      order({ type: 'trailing-stop', trail: { kind: 'amount', value: Number.NaN } } as never, 5),
    ],
    equity: { times, values },
    errors: [
      ...result.errors.slice(0, 3),
      { time: Number.NaN, hook: 'onBar', message: 'tab\tnewline\n quote" backslash\\ \u0000 émoji 😀 lone \ud800' },
    ],
  };
}

describe('resultJsonChunks: the streamed --json and result.json equal JSON.stringify of resultToJson, byte for byte', () => {
  it.skipIf(!HAS_SHARED_DATA)(
    'on a real file: sma-cross and bollinger-reversion over BTC/USDT 1m, January 2024 (44,640 bars)',
    () => {
      const series = readBarsFile(BTC_1M).series;
      for (const [name, params] of [
        ['sma-cross', { fast: 10, slow: 30 }],
        ['bollinger-reversion', {}],
      ] as const) {
        const r = runBacktest({
          strategy: getStrategy(name),
          params,
          data: [{ symbol: 'BTC/USDT', timeframe: '1m', series }],
          cash: 10_000,
          fee: 0.001,
        });
        expect(r.trades.length, `${name} trades`).toBeGreaterThan(100);
        expectSameBytes(streamed(r, { reuseBuffer: true }), inMemory(r));
      }
    },
  );

  it('on shorts, an open position, strategy errors, hostile and non-ASCII text, NaN, ±Infinity, -0, odd times and every order type', () => {
    const r = oddResult();
    expect(r.openTrades.length + r.errors.length).toBeGreaterThan(1);
    expectSameBytes(streamed(r), inMemory(r));
  });

  it('with risk settings, halts, locks and denials (the risk members and events)', () => {
    const { result } = riskRun();
    expect(result.riskEvents.length).toBeGreaterThan(2);
    expectSameBytes(streamed(result), inMemory(result));
  });

  it('on a multi-market run (the pairs member: one entry per market, odd numbers too)', () => {
    const r = runBacktest({
      strategy: getStrategy('sma-cross'),
      params: { fast: 10, slow: 30 },
      data: [
        { symbol: 'AAA/USDT', timeframe: '1m', series: syntheticBars(3_000, 7) },
        { symbol: 'BBB/USDT', timeframe: '1m', series: syntheticBars(3_000, 11) },
      ],
      perPair: {},
      cash: 10_000,
      fee: 0.001,
    });
    expect(r.pairs.map((p) => p.symbol)).toEqual(['AAA/USDT', 'BBB/USDT']);
    expect(r.pairs.every((p) => p.tradeCount > 0)).toBe(true);
    expectSameBytes(streamed(r), inMemory(r));
    const p0 = r.pairs[0]!;
    const odd: BacktestResult = {
      ...r,
      pairs: [{ ...p0, profitFactor: Number.POSITIVE_INFINITY, first: Number.NaN, pnlNet: -0, symbol: HOSTILE }],
    };
    expectSameBytes(streamed(odd), inMemory(odd));
  });

  it('on an empty run (no bars, no orders, no trades)', () => {
    const { result } = hostileRun(2_000);
    const empty: BacktestResult = {
      ...result,
      trades: [],
      openTrades: [],
      fills: [],
      orders: [],
      errors: [],
      params: {},
      equity: { times: new Float64Array(0), values: new Float64Array(0) },
    };
    expectSameBytes(streamed(empty), inMemory(empty));
  });

  it('whatever the chunk size, with fresh or reused buffers, and each chunk about the size asked for', () => {
    const r = oddResult();
    const expected = inMemory(r);
    for (const chunkBytes of [1, 7, 100, 4096]) {
      expectSameBytes(streamed(r, { chunkBytes }), expected);
      expectSameBytes(streamed(r, { chunkBytes, reuseBuffer: true }), expected);
    }
    const sizes = [...resultJsonChunks(r, { chunkBytes: 4096 })].map((c) => c.length);
    expect(sizes.length).toBeGreaterThan(10);
    // Every chunk but the last is handed out as soon as it passes the size: it exceeds it by at most one item.
    for (const s of sizes.slice(0, -1)) expect(s).toBeGreaterThanOrEqual(4096);
    expect(Math.max(...sizes)).toBeLessThan(4096 + 2048);
  });
});

describe('IsoUtcFormatter', () => {
  it('writes exactly what isoUtc writes, in time order and out of order', () => {
    const rng = new SeededRng(3);
    const f = new IsoUtcFormatter();
    const times: number[] = [0, -1, 86_399_999, 86_400_000, 951_782_400_000, 4_102_444_800_000, Number.NaN, 0.25];
    for (let t = 1_704_067_140_000; times.length < 5_000; t += 60_000) times.push(t);
    for (let i = 0; i < 5_000; i++) times.push(Math.floor((rng.next() - 0.3) * 5e12), (rng.next() - 0.5) * 1e13);
    for (const t of times) expect(f.format(t), String(t)).toBe(isoUtc(t));
  });
});
