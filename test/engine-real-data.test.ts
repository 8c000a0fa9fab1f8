// The engine on a month of real Binance candles. Core's own tests cannot read candle files
// (@keel/candles depends on @keel/core), so these live in the root test folder.

import { readBarsFile } from '@keel/candles';
import { type Bar, type BarSeries, defineStrategy, runBacktest, SMA, sliceSeries } from '@keel/core';
import { describe, expect, it } from 'vitest';
import { dataFile, HAS_SHARED_DATA, noteSkip } from '../test-support/shared.ts';

const anyParams = { safeParse: (x: unknown) => ({ success: true as const, data: x }) };

/** Records every bar each feed delivers, and trades on the 1h SMA. */
function mtfStrategy(log: string[]) {
  return defineStrategy({
    name: 'mtf-probe',
    params: anyParams,
    warmup: 'none',
    onStart(ctx) {
      ctx.subscribe({ timeframe: '1h' });
      if (ctx.symbol === 'BTC/USDT') ctx.subscribe({ symbol: 'ETH/USDT', timeframe: '1m' });
      return { sma: ctx.indicator(new SMA(3), { timeframe: '1h' }) };
    },
    onBar(ctx, s, bar: Bar, feed) {
      log.push(
        `${ctx.time}|${feed.symbol}@${feed.timeframe}|${bar.time}|${bar.open}|${bar.high}|${bar.low}|${bar.close}|${bar.volume.toFixed(8)}`,
      );
      if (feed.timeframe === '1h' && s.sma.ready) {
        if (bar.close > s.sma.value && ctx.position().size === 0) ctx.buy(0.01);
        else if (bar.close < s.sma.value && ctx.position().size > 0) ctx.close();
      }
      if (feed.symbol === 'ETH/USDT' && ctx.position('ETH/USDT').size === 0 && bar.close < bar.open * 0.999)
        ctx.buy(0.1, { symbol: 'ETH/USDT' });
    },
  });
}

if (!HAS_SHARED_DATA) noteSkip('engine on real data');

describe.skipIf(!HAS_SHARED_DATA)('engine on real data', () => {
  const btc = HAS_SHARED_DATA
    ? readBarsFile(dataFile('binance_BTCUSDT_1m_2024-01.csv.gz')).series
    : (undefined as unknown as BarSeries);
  const eth = HAS_SHARED_DATA
    ? readBarsFile(dataFile('binance_ETHUSDT_1m_2024-01.csv.gz')).series
    : (undefined as unknown as BarSeries);
  const hourly = HAS_SHARED_DATA
    ? readBarsFile(dataFile('binance_BTCUSDT_1h_2022-01-01_2025-12-02.csv.gz')).series
    : (undefined as unknown as BarSeries);

  const runOn = (n: number, log: string[]) =>
    runBacktest({
      strategy: mtfStrategy(log),
      data: [
        { symbol: 'BTC/USDT', timeframe: '1m', series: sliceSeries(btc, 0, n) },
        { symbol: 'ETH/USDT', timeframe: '1m', series: sliceSeries(eth, 0, n) },
      ],
      cash: 100_000,
      fee: 0.001,
    });

  it('1h bars built from 1m equal the exchange’s own 1h candles, delivered only when closed', () => {
    const log: string[] = [];
    runOn(btc.length, log);
    const hours = log.filter((l) => l.includes('BTC/USDT@1h'));
    expect(hours.length).toBe(744); // the lone 2024-02-01 00:00 bar does not complete an hour
    const start = hourly.time.indexOf(btc.time[0]!);
    for (let h = 0; h < hours.length; h++) {
      const [now, , t, o, hi, lo, c, v] = hours[h]!.split('|').map(Number);
      const i = start + h;
      expect(t).toBe(hourly.time[i]);
      expect(now, 'delivered at the hour’s close, not before').toBe(t! + 3_600_000);
      expect([o, hi, lo, c]).toEqual([hourly.open[i], hourly.high[i], hourly.low[i], hourly.close[i]]);
      expect(Math.abs(v! - hourly.volume[i]!) / hourly.volume[i]!).toBeLessThan(1e-9);
    }
  });

  it('no lookahead: results on a prefix equal the prefix of results on all the data', () => {
    const full: string[] = [];
    const rFull = runOn(20_000, full);
    for (const n of [1_000, 7_321, 12_345]) {
      const part: string[] = [];
      const r = runOn(n, part);
      expect(part).toEqual(full.slice(0, part.length));
      expect(Array.from(r.equity.values)).toEqual(Array.from(rFull.equity.values.subarray(0, n)));
      const fillsBefore = rFull.fills.filter((f) => f.time <= btc.time[n - 1]! + 60_000);
      expect(r.fills).toEqual(fillsBefore);
    }
  });

  it('multi-symbol: trades on both markets, the portfolio values both', () => {
    const log: string[] = [];
    const r = runOn(5_000, log);
    const symbols = new Set(r.fills.map((f) => f.symbol));
    expect(symbols).toEqual(new Set(['BTC/USDT', 'ETH/USDT']));
    expect(log.some((l) => l.includes('ETH/USDT@1m'))).toBe(true);
  });

  it('determinism: the same input gives a byte-identical result', () => {
    const a = JSON.stringify(runOn(10_000, []), (_k, v) => (v instanceof Float64Array ? Array.from(v) : v));
    const b = JSON.stringify(runOn(10_000, []), (_k, v) => (v instanceof Float64Array ? Array.from(v) : v));
    expect(a).toBe(b);
  });
});
