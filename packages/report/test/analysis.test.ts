import { runBacktest, seriesFromRows } from '@keel/core';
import { describe, expect, it } from 'vitest';
import {
  buildChartData,
  buildDetailBars,
  type DetailBars,
  formatSummary,
  marketChanges,
  monthlyReturns,
  pairCharts,
  renderHtmlReport,
  resultJsonChunks,
  resultToJson,
  returnHistogram,
} from '../src/index.ts';
import { FIXTURE_T0, fixtureRun, fixtureStrategy, multiFixtureRun, realRun } from './helpers.ts';

/**
 * The hand-made fixture (helpers.ts), worked out by hand, fee 0.1 %:
 *   equity at each close: 1000; 1000 - 100.1 + 110 = 1009.9; 1009.9 - 1 * 110 ... = 1009.79 (flat);
 *   1009.79 - 99.099 + 121 = 1031.691; 1031.57 (flat); 1031.57 - 220.22 + 242 = 1053.35.
 *   trades: +9.79 USDT (9.79 %), +21.78 USDT (22 %).
 *   buy and hold: 1000 / 100.1 = 9.99000999 BTC, fee 0.999; at the closes 100, 110, 99, 121, 110,
 *   121: 999.000999, 1098.901099, 989.010989, 1208.791209, 1098.901099, 1208.791209.
 */
const { result, bars } = fixtureRun();

describe('the fixture run matches its hand computation (the oracle for everything below)', () => {
  it('equity, trades and plots', () => {
    expect(Array.from(result.equity.values).map((v) => Number(v.toFixed(6)))).toEqual([
      1000, 1009.9, 1009.79, 1031.691, 1031.57, 1053.35,
    ]);
    expect(result.trades.map((t) => [Number(t.pnlNet.toFixed(9)), Number(t.returnPct.toFixed(9))])).toEqual([
      [9.79, 9.79],
      [21.78, 22],
    ]);
    expect(result.plots?.map((p) => Array.from(p.values))).toEqual([
      [Number.NaN, 105, 104.5, 110, 115.5, 115.5],
      [Number.NaN, 10, -11, 22, -11, 11],
    ]);
  });
});

describe('the buy-and-hold benchmark in --json, result.json and the summary', () => {
  it('resultToJson carries the figures, hand-computed', () => {
    const b = resultToJson(result).benchmark;
    expect(b?.kind).toBe('buy-and-hold');
    expect(b?.marketChange).toBeCloseTo(0.21, 12);
    expect(b?.fee).toBeCloseTo(0.999000999, 9);
    expect(b?.finalValue).toBeCloseTo(1208.791208791, 9);
    expect(b?.totalReturn).toBeCloseTo(0.208791208791, 12);
    expect(b?.maxDrawdown).toBeCloseTo(0.1, 12);
    expect(b?.markets.length).toBe(1);
    const m = b?.markets[0];
    expect(m?.symbol).toBe('BTC/USDT');
    expect(m?.firstOpen).toBe(100);
    expect(m?.lastClose).toBe(121);
    expect(m?.amount).toBeCloseTo(1000 / 100.1, 12);
    expect(m?.cash).toBeCloseTo(0, 9);
  });

  it('the streamed JSON writes the same bytes, and null for a result without a benchmark', () => {
    const text = (r: typeof result) => Buffer.concat([...resultJsonChunks(r)]).toString('utf8');
    expect(text(result)).toBe(`${JSON.stringify(resultToJson(result), null, 1)}\n`);
    const { benchmark: _, ...without } = result;
    expect(resultToJson(without).benchmark).toBeNull();
    expect(text(without)).toBe(`${JSON.stringify(resultToJson(without), null, 1)}\n`);
  });

  it('the terminal summary shows the market change and buy and hold with its model', () => {
    const s = formatSummary(result);
    expect(s).toContain('market change: 21.00 % (BTC/USDT 100.00 -> 121.00, first open to last close)');
    expect(s).toContain(
      'buy and hold:  20.88 % (1,208.79 USDT, max drawdown 10.00 %): all the cash in at the first open, taker fee 1.00 USDT, no slippage, no exit fee',
    );
  });
});

describe('chart data: benchmark and plot lines on the candle times', () => {
  it('one value per bar when not merged', () => {
    const c = buildChartData(result, bars, 100);
    expect(c.benchmark?.map((v) => Number(v.toFixed(6)))).toEqual([
      999.000999, 1098.901099, 989.010989, 1208.791209, 1098.901099, 1208.791209,
    ]);
    expect(c.plots).toEqual([
      { name: 'SMA 2', panel: 'price', values: [Number.NaN, 105, 104.5, 110, 115.5, 115.5] },
      { name: 'change', panel: 'change', values: [Number.NaN, 10, -11, 22, -11, 11] },
    ]);
  });

  it('merged candles take the value at the close of their last bar', () => {
    // maxPoints 2: the six days (a Monday to a Saturday) become one weekly candle.
    const c = buildChartData(result, bars, 2);
    expect(c.aggregation.timeframe).toBe('1w');
    expect(c.candles.time).toEqual([FIXTURE_T0 / 1000]);
    expect(c.benchmark?.map((v) => Number(v.toFixed(6)))).toEqual([1208.791209]);
    expect(c.plots.map((p) => p.values)).toEqual([[115.5], [11]]);
  });
});

describe('monthlyReturns', () => {
  it('on the fixture: a bar counts in the month it opened in (the Jan 31 bar closes on Feb 1)', () => {
    const years = monthlyReturns(result.equity, result.startValue);
    expect(years.length).toBe(1);
    const y = years[0];
    expect(y?.year).toBe(2024);
    expect(y?.months[0]?.return).toBeCloseTo(1009.79 / 1000 - 1, 12);
    expect(y?.months[1]?.return).toBeCloseTo(1053.35 / 1009.79 - 1, 12);
    expect(y?.months.slice(2).every((m) => m === null)).toBe(true);
    expect(y?.total).toBeCloseTo(0.05335, 12);
  });

  it('across years, with a month without bars, compounding to the total return', () => {
    const t = (y: number, m: number, d: number) => Date.UTC(y, m - 1, d);
    const equity = {
      times: Float64Array.from([t(2023, 11, 15), t(2023, 12, 31), t(2024, 2, 10), t(2024, 2, 20)]),
      values: Float64Array.from([110, 99, 120, 118.8]),
    };
    const years = monthlyReturns(equity, 100);
    expect(years.map((y) => y.year)).toEqual([2023, 2024]);
    expect(years[0]?.months[10]?.return).toBeCloseTo(0.1, 12);
    expect(years[0]?.months[11]?.return).toBeCloseTo(-0.1, 12);
    expect(years[0]?.total).toBeCloseTo(-0.01, 12);
    expect(years[1]?.months[0]).toBeNull();
    expect(years[1]?.months[1]?.return).toBeCloseTo(118.8 / 99 - 1, 12);
    expect(years[1]?.total).toBeCloseTo(0.2, 12);
    expect((1 + (years[0]?.total ?? 0)) * (1 + (years[1]?.total ?? 0)) - 1).toBeCloseTo(118.8 / 100 - 1, 12);
    expect(monthlyReturns({ times: new Float64Array(0), values: new Float64Array(0) }, 100)).toEqual([]);
  });
});

describe('returnHistogram', () => {
  it('picks the smallest nice width with at most 30 bins, aligned on 0, lower edge included', () => {
    const h = returnHistogram([-1.5, -0.2, 0, 0.3, 0.4, 0.6, 2.1]);
    // 0.1 would need 37 bins (-1.5 .. 2.1); 0.2 needs 19: [-1.6, -1.4) .. [2.0, 2.2).
    expect(h.width).toBe(0.2);
    expect(h.bins.length).toBe(19);
    expect(h.bins[0]).toEqual({ lo: -1.6, hi: -1.4, count: 1 });
    const at = (lo: number) => h.bins.find((b) => b.lo === lo)?.count;
    expect(at(-0.2)).toBe(1);
    expect(at(0)).toBe(1); // exactly 0 % is in [0, 0.2)
    expect(at(0.2)).toBe(1); // 0.3
    expect(at(0.4)).toBe(1); // 0.4 is the lower edge of [0.4, 0.6)
    expect(at(0.6)).toBe(1); // 0.6 / 0.2 is 2.9999999999999996 in floating point
    expect(h.bins[18]).toEqual({ lo: 2, hi: 2.2, count: 1 });
    expect(h.bins.reduce((a, b) => a + b.count, 0)).toBe(7);
  });

  it('on the fixture trades (9.79 % and 22 %): bins of 0.5 % from 9.5 to 22.5', () => {
    const h = returnHistogram(result.trades.map((t) => t.returnPct));
    expect(h.width).toBe(0.5);
    expect(h.bins.length).toBe(26);
    expect(h.bins[0]).toEqual({ lo: 9.5, hi: 10, count: 1 });
    expect(h.bins[25]).toEqual({ lo: 22, hi: 22.5, count: 1 });
  });

  it('counts and leaves out non-finite returns; no trades, no bins', () => {
    const h = returnHistogram([1, Number.NaN, Number.POSITIVE_INFINITY]);
    expect(h.skipped).toBe(2);
    expect(h.count).toBe(1);
    expect(h.bins).toEqual([{ lo: 1, hi: 1.001, count: 1 }]);
    expect(returnHistogram([]).bins).toEqual([]);
  });
});

describe('the HTML report of the fixture', () => {
  const html = renderHtmlReport(result, bars);

  it('shows buy and hold and the market change next to the strategy', () => {
    expect(html).toContain('<div class="label">Buy and hold</div><div class="value pos">20.88 %</div>');
    expect(html).toContain('market change 21.00 %');
    expect(html).toContain(
      '<dd data-benchmark="market-change">21.00 % (BTC/USDT 100.00 -&gt; 121.00, first open to last close)</dd>',
    );
  });

  it('has the monthly returns table and the trade-return histogram, hand-computed', () => {
    const monthly = /<section class="card" id="monthly">[\s\S]*?<\/section>/.exec(html)?.[0] ?? '';
    // January 1009.79 / 1000; February 1053.35 / 1009.79; the year 1053.35 / 1000 (5.335 %, which
    // is 5.33499... in floating point and shows as the total return does).
    expect(monthly).toContain(
      '<tr data-year="2024"><th>2024</th><td class="num pos">0.98 %</td><td class="num pos">4.31 %</td><td class="num muted">·</td>',
    );
    expect(monthly).toContain('<td class="num total pos">5.33 %</td>');
    expect(html).toContain('<g class="bin pos" data-lo="9.5" data-hi="10" data-count="1">');
    expect(html).toContain('<g class="bin pos" data-lo="22" data-hi="22.5" data-count="1">');
    expect(html.match(/<g class="bin /g)?.length).toBe(26);
  });

  it('is deterministic', () => {
    expect(renderHtmlReport(fixtureRun().result, bars)).toBe(html);
  });
});

/** Decodes the embedded bars the way report.js does. */
function decodeDetail(d: DetailBars): { time: number; open: number; high: number; low: number; close: number }[] {
  const scale = 10 ** d.decimals;
  let t = d.start - d.step;
  let g = 0;
  let prev = 0;
  return d.open.map((dOpen, i) => {
    if (g < d.gaps.length && d.gaps[g] === i) {
      t += d.gaps[g + 1] as number;
      g += 2;
    } else t += d.step;
    const o = prev + dOpen;
    const c = o + (d.body[i] as number);
    prev = c;
    return {
      time: t,
      open: o / scale,
      high: (Math.max(o, c) + (d.upper[i] as number)) / scale,
      low: (Math.min(o, c) - (d.lower[i] as number)) / scale,
      close: c / scale,
    };
  });
}

describe('buildDetailBars: the bars embedded for the zoomed-in chart', () => {
  it('decode to the replayed bars exactly (a month of BTC/USDT minutes: 2 decimals)', () => {
    const { result, bars } = realRun();
    const d = buildDetailBars(result, bars);
    const decoded = decodeDetail(d);
    expect(decoded.length).toBe(bars.length);
    for (let i = 0; i < bars.length; i++) {
      const b = decoded[i];
      if (
        b?.time !== (bars.time[i] as number) / 1000 ||
        b.open !== bars.open[i] ||
        b.high !== bars.high[i] ||
        b.low !== bars.low[i] ||
        b.close !== bars.close[i]
      ) {
        expect.fail(
          `bar ${i} decodes to ${JSON.stringify(b)}, the file has ${bars.open[i]} ${bars.high[i]} ${bars.low[i]} ${bars.close[i]}`,
        );
      }
    }
    expect(d.markers.reduce((a, m) => a + m[2], 0)).toBe(result.fills.length);
  });

  it('keep gaps in time, and draw prices no grid of 8 decimals holds at 10 significant digits', () => {
    const rows = [0, 1, 2, 5, 6].map((k, i) => {
      const p = 100 / 3 + i;
      return {
        time: FIXTURE_T0 + k * 60_000,
        open: p,
        high: p + 1 / 7,
        low: p - 1 / 7,
        close: p + 1 / 9,
        volume: 1 / 3,
      };
    });
    const series = seriesFromRows(rows);
    const result = runBacktest({ strategy: fixtureStrategy, data: [{ symbol: 'X/USDT', timeframe: '1m', series }] });
    const d = buildDetailBars(result, series);
    expect(d.step).toBe(60);
    expect(d.gaps).toEqual([3, 180]);
    expect(d.decimals).toBe(8);
    expect(d.volume).toEqual([0.3333, 0.3333, 0.3333, 0.3333, 0.3333]);
    const decoded = decodeDetail(d);
    expect(decoded.map((b) => b.time * 1000)).toEqual(rows.map((r) => r.time));
    decoded.forEach((b, i) => {
      const r = rows[i] as (typeof rows)[number];
      for (const k of ['open', 'high', 'low', 'close'] as const) expect(b[k]).toBeCloseTo(r[k], 8);
    });
  });
});

describe('a run over two markets: the markets table and a chart panel per other market (hand-computed)', () => {
  const { result, bars, eth } = multiFixtureRun();

  it("rows: each market's share (result.pairs) and its own move, hand-computed", () => {
    expect(result.pairs.map((p) => [p.symbol, p.tradeCount, Number(p.pnlNet.toFixed(9)), p.openSize])).toEqual([
      ['BTC/USDT', 2, 31.57, 2], // 9.79 + 21.78; 2 bought at 110 and held
      ['ETH/USDT', 1, 39.56, 0], // 10 x (24 - 20) less 0.2 and 0.24
    ]);
    const changes = marketChanges(result, [bars, eth]);
    expect(changes.get('BTC/USDT')).toBeCloseTo(0.21, 12);
    expect(changes.get('ETH/USDT')).toBeCloseTo(0.1, 12);
    // Without ETH's bars: the benchmark held the primary only, so ETH's move is unknown.
    expect(marketChanges(result, [bars]).get('ETH/USDT')).toBeNaN();
  });

  it('the ETH panel: its own candles, its two fills and its own SMA line', () => {
    const [c] = pairCharts(result, [bars, eth], 5000);
    expect(c?.symbol).toBe('ETH/USDT');
    expect(c?.candles.close).toEqual([20, 22, 24, 23, 21, 22]);
    const day = (k: number) => FIXTURE_T0 / 1000 + k * 86_400;
    // Filled at the open of bar 1 and of bar 3: the markers sit on those candles.
    expect(c?.markers).toEqual([
      [day(1), 1, 1, 10, 20],
      [day(3), -1, 1, 10, 24],
    ]);
    expect(c?.plots).toEqual([{ name: 'ETH SMA 2', panel: 'price', values: [Number.NaN, 21, 23, 23.5, 22, 21.5] }]);
    // The main chart keeps the primary's line only.
    expect(buildChartData(result, bars, 5000).plots.map((p) => p.name)).toEqual(['SMA 2']);
  });

  it('the page: a markets card with a row per market and one panel, and none for a single market', () => {
    const html = renderHtmlReport(result, bars, { feedSeries: [bars, eth] });
    const card = /<section class="card" id="markets">[\s\S]*?<\/section>/.exec(html)?.[0] ?? '';
    expect(card).toContain('<tr data-market="ETH/USDT"><td>ETH/USDT <span class="muted">1d</span></td>');
    // 39.56 of the 1,000 start value: 3.96 %; no order refused.
    expect(card).toContain('<td class="num pos">3.96 %</td><td class="num">0</td>');
    expect(card).toContain('<td class="num pos">39.56 USDT</td>');
    expect(card).toContain('<td class="num pos">10.00 %</td>');
    expect(card.match(/class="pair-chart"/g)?.length).toBe(1);
    const without = renderHtmlReport(result, bars);
    expect(without).toContain('bars were not given to the report');
    expect(renderHtmlReport(fixtureRun().result, bars)).not.toContain('id="markets"');
  });
});
