import { runBacktest } from '@keel/core';
import { readBarsFile, readFundingRateFile } from '@keel/data/csv';
import { getStrategy } from '@keel/strategies';
import { describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { renderHtmlReport, resultFromJson, resultToJson } from '../src/index.ts';
import { hostileRun, multiFixtureRun, realRun, riskRun } from './helpers.ts';

const text = (j: unknown) => JSON.stringify(j, null, 1);

/** A perpetual run with funding and liquidations (LINKUSDT USD-M 1m, February 2023, 50x isolated). */
function futuresRun() {
  const bars = readBarsFile(dataFile('binance-futures-um_LINKUSDT_1m_2023-02.csv.gz')).series;
  const funding = readFundingRateFile(dataFile('binance-futures-um_LINKUSDT_fundingRate_2023-02.csv.gz'), {
    symbol: 'LINK/USDT:USDT',
  }).series;
  return runBacktest({
    strategy: getStrategy('sma-cross'),
    params: { fast: 10, slow: 30, direction: 'both' },
    data: [{ symbol: 'LINK/USDT:USDT', timeframe: '1m', series: bars, instrument: { tickSize: 0.001 } }],
    cash: 200,
    fee: 0.0005,
    futures: () => ({ leverage: 50, marginMode: 'isolated', funding, fundingSource: 'the real series' }),
  });
}

describe('resultFromJson: a result read back from its JSON', () => {
  it('gives the same JSON again, byte for byte (real, hostile, risk events, several markets, futures)', () => {
    const runs = [
      ['real', realRun().result],
      ['hostile', hostileRun(2_000).result],
      ['risk', riskRun().result],
      ['markets', multiFixtureRun().result],
      ...(HAS_SHARED_DATA ? [['futures', futuresRun()] as const] : []),
    ] as const;
    for (const [name, r] of runs) {
      const json = resultToJson(r);
      const back = resultFromJson(JSON.parse(text(json)));
      expect(text(resultToJson(back)) === text(json), name).toBe(true);
    }
  });

  it('draws the same HTML report as the run itself (params in JSON key order; the benchmark curve and plots given)', () => {
    const { result, bars } = realRun();
    expect(result.benchmark).toBeDefined();
    expect(result.plots?.length).toBeGreaterThan(0);
    const back = resultFromJson(JSON.parse(text(resultToJson(result))), {
      ...(result.benchmark ? { benchmarkValues: result.benchmark.values } : {}),
      ...(result.plots ? { plots: result.plots } : {}),
    });
    // The JSON sorts free-form keys (params) for stable bytes; the page lists params in that order.
    const sorted = { ...result, params: JSON.parse(text(resultToJson(result).params)) };
    expect(renderHtmlReport(back, bars) === renderHtmlReport(sorted, bars)).toBe(true);
  });

  it('refuses what is not a result', () => {
    expect(() => resultFromJson({ format: 'other' })).toThrow(/not a Keel backtest result/);
  });
});
