/**
 * A futures run in the report: fees, funding and liquidations apart in the terminal summary, in
 * result.json (the streamed producer byte-equal to resultToJson) and in the HTML report. Run on
 * LINKUSDT USD-M 1m, February 2023, with Binance's own funding series; 50x isolated on a small
 * account so that some positions are liquidated.
 */
import { type BacktestResult, runBacktest } from '@keel/core';
import { readBarsFile, readFundingRateFile } from '@keel/data/csv';
import { getStrategy } from '@keel/strategies';
import { describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { formatSummary, renderHtmlReport, resultJsonChunks, resultToJson } from '../src/index.ts';

const BARS = dataFile('binance-futures-um_LINKUSDT_1m_2023-02.csv.gz');
const FUNDING = dataFile('binance-futures-um_LINKUSDT_fundingRate_2023-02.csv.gz');

function futuresRun(): { result: BacktestResult; bars: ReturnType<typeof readBarsFile>['series'] } {
  const bars = readBarsFile(BARS).series;
  const funding = readFundingRateFile(FUNDING, { symbol: 'LINK/USDT:USDT' }).series;
  const result = runBacktest({
    strategy: getStrategy('sma-cross'),
    params: { fast: 10, slow: 30, direction: 'both' },
    data: [{ symbol: 'LINK/USDT:USDT', timeframe: '1m', series: bars, instrument: { tickSize: 0.001 } }],
    cash: 200,
    fee: 0.0005,
    makerFee: 0.0002,
    futures: () => ({ leverage: 50, marginMode: 'isolated', funding, fundingSource: 'the real series' }),
  });
  return { result, bars };
}

describe.skipIf(!HAS_SHARED_DATA)('a futures result in the report', () => {
  const { result, bars } = futuresRun();
  const f = result.futures!;

  it('has liquidations and funding, each apart from the trading fees', () => {
    expect(f.liquidations.length).toBeGreaterThan(0);
    expect(f.fundingEvents).toBeGreaterThan(0);
    let sum = 0;
    for (const p of f.payments) sum += p.payment;
    expect(sum).toBeCloseTo(f.funding, 9);
    expect(f.fundingPaid - f.fundingReceived).toBeCloseTo(-f.funding, 9);
  });

  it('streamed JSON equals JSON.stringify of resultToJson, byte for byte, with the futures member', () => {
    const parts: Uint8Array[] = [];
    for (const c of resultJsonChunks(result, { reuseBuffer: true })) parts.push(c.slice());
    const streamed = Buffer.concat(parts);
    const json = resultToJson(result);
    expect(streamed.equals(Buffer.from(`${JSON.stringify(json, null, 1)}\n`, 'utf8'))).toBe(true);
    expect(json.futures?.liquidations.length).toBe(f.liquidations.length);
    expect(json.futures?.fundingPayments.length).toBe(f.fundingEvents);
    expect(json.futures?.markets).toEqual([
      {
        symbol: 'LINK/USDT:USDT',
        leverage: 50,
        marginMode: 'isolated',
        funding: 'the real series',
        isolatedWallet: f.markets[0]!.isolatedWallet,
      },
    ]);
  });

  it('the summary shows fees, funding and liquidations apart, and each liquidation', () => {
    const text = formatSummary(result);
    expect(text).toContain('futures: LINK/USDT:USDT 50.00x isolated, funding: the real series');
    expect(text).toMatch(
      /trading fees [\d,.]+ {3}funding -?[\d,.]+ \(paid [\d,.]+, received [\d,.]+, \d+ payments\) {3}liquidations \d+/,
    );
    expect(text).toContain('liquidated: ');
  });

  it('the HTML report has a futures card and marks liquidations on the equity curve', () => {
    const html = renderHtmlReport(result, bars);
    expect(html).toContain('<section class="card" id="futures">');
    expect(html).toContain('data-futures="funding"');
    expect(html).toContain('data-futures="liquidation-fees"');
    expect(html).toContain('<tr class="liquidation">');
    expect(html).toContain('liquidation: LINK/USDT:USDT at ');
  });

  it('a spot result has no futures member, line or card', () => {
    const spot = runBacktest({
      strategy: getStrategy('sma-cross'),
      data: [{ symbol: 'LINK/USDT', timeframe: '1m', series: bars }],
    });
    expect('futures' in resultToJson(spot)).toBe(false);
    expect(formatSummary(spot)).not.toContain('futures:');
    expect(renderHtmlReport(spot, bars)).not.toContain('id="futures"');
  });
});
