import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type BacktestResult, runBacktest } from '@keel/core';
import { readBarsFile } from '@keel/data';
import { describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../../../test-support/shared.ts';
import { getStrategy, STRATEGIES } from '../src/index.ts';

/**
 * Golden masters: each built-in strategy on a named real data file has expected statistics and a
 * hash of its order list. A change that moves them is a conscious change: regenerate with
 *   KEEL_UPDATE_GOLDEN=1 npx vitest run packages/strategies/test/golden.test.ts
 * and explain the difference in the commit.
 */
const GOLDEN_FILE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'golden.json');
const CASES: Record<string, { file: string; symbol: string; timeframe: '1m' | '1h' | '1d' }> = {
  'sma-cross': { file: 'binance_BTCUSDT_1m_2024-01.csv.gz', symbol: 'BTC/USDT', timeframe: '1m' },
  'rsi-reversion': { file: 'binance_ETHUSDT_1m_2024-01.csv.gz', symbol: 'ETH/USDT', timeframe: '1m' },
  'bollinger-reversion': {
    file: 'binance_BTCUSDT_1h_2022-01-01_2025-12-02.csv.gz',
    symbol: 'BTC/USDT',
    timeframe: '1h',
  },
  'ema-cross': { file: 'binance_BTCUSDT_1m_2022-06-15_2022-07-19.csv.gz', symbol: 'BTC/USDT', timeframe: '1m' },
  macd: { file: 'binance_ETHUSDT_1m_2023-10-07_2023-11-10.csv.gz', symbol: 'ETH/USDT', timeframe: '1m' },
  'donchian-breakout': { file: 'binance_BTCUSDT_1d_2017-08-17_2026-01-05.csv.gz', symbol: 'BTC/USDT', timeframe: '1d' },
};

export function orderListHash(r: BacktestResult): string {
  const h = createHash('sha256');
  for (const o of r.orders) {
    const q = o.request;
    h.update(
      `${q.id}|${q.type}|${q.side}|${q.amount}|${o.status}|${o.filled}|${o.avgPrice}|${o.fee}|${o.createdAt}|${o.updatedAt}\n`,
    );
  }
  return h.digest('hex');
}

function stats(r: BacktestResult) {
  const m = r.metrics;
  return {
    finalValue: r.finalValue,
    finalCash: r.finalCash,
    trades: r.trades.length,
    orders: r.orders.length,
    totalReturn: m.totalReturn,
    maxDrawdown: m.maxDrawdown,
    sharpe: m.sharpe,
    winRate: m.winRate,
    feesPaid: m.feesPaid,
    orderListHash: orderListHash(r),
  };
}

if (!HAS_SHARED_DATA) noteSkip('golden masters');

describe.skipIf(!HAS_SHARED_DATA)('golden masters of the built-in strategies', () => {
  const golden: Record<string, ReturnType<typeof stats>> = existsSync(GOLDEN_FILE)
    ? JSON.parse(readFileSync(GOLDEN_FILE, 'utf8'))
    : {};
  const update = process.env.KEEL_UPDATE_GOLDEN === '1';
  const fresh: Record<string, ReturnType<typeof stats>> = {};
  for (const name of Object.keys(STRATEGIES)) {
    it(`${name} has a golden master on a named real file`, () => {
      const c = CASES[name];
      expect(c, `no golden-master case for built-in strategy ${name}`).toBeDefined();
      const series = readBarsFile(dataFile(c!.file)).series;
      const r = runBacktest({
        strategy: getStrategy(name),
        data: [{ symbol: c!.symbol, timeframe: c!.timeframe, series }],
        cash: 10_000,
        fee: 0.001,
      });
      expect(r.trades.length, 'a golden master that never trades proves nothing').toBeGreaterThan(3);
      const s = stats(r);
      fresh[name] = s;
      if (update) {
        writeFileSync(GOLDEN_FILE, `${JSON.stringify({ ...golden, ...fresh }, null, 2)}\n`);
        return;
      }
      expect(golden[name], `no golden master recorded for ${name}: run with KEEL_UPDATE_GOLDEN=1`).toBeDefined();
      expect(s).toEqual(golden[name]);
    });
  }
});
