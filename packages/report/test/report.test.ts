import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runBacktest } from '@keel/core';
import { getStrategy } from '@keel/strategies';
import { afterAll, describe, expect, it } from 'vitest';
import {
  buildChartData,
  chooseBuckets,
  EQUITY_CSV_HEADER,
  equityToCsv,
  FILLS_CSV_HEADER,
  fillsToCsv,
  formatMetric,
  formatSummary,
  METRIC_SPECS,
  parseCsv,
  renderHtmlReport,
  resultToJson,
  TRADES_CSV_HEADER,
  tradesToCsv,
  writeReport,
} from '../src/index.ts';
import { HOSTILE, hostileRun, hostileStrategy, realRun, syntheticBars } from './helpers.ts';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'keel-report-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface TradeCols {
  count: number;
  timeUnitMs: number;
  entryDelta: number[];
  held: number[];
  entryPrice: number[];
  pnlNet: number[];
}

/** Decodes the page's compact trade columns the way report.js does. */
function decodeTrades(t: TradeCols): { entryTime: number; exitTime: number; entryPrice: number; pnlNet: number }[] {
  let entry = 0;
  return Array.from({ length: t.count }, (_, i) => {
    entry += (t.entryDelta[i] as number) * t.timeUnitMs;
    return {
      entryTime: entry,
      exitTime: entry + (t.held[i] as number) * t.timeUnitMs,
      entryPrice: t.entryPrice[i] as number,
      pnlNet: t.pnlNet[i] as number,
    };
  });
}

/** The embedded data script's JSON text (the report's own escaping makes it parseable as is). */
function embedded(html: string): Record<string, unknown> {
  const m = /<script type="application\/json" id="keel-data">([\s\S]*?)<\/script>/.exec(html);
  expect(m, 'the report embeds its data in <script type="application/json" id="keel-data">').not.toBeNull();
  return JSON.parse((m as RegExpExecArray)[1] as string) as Record<string, unknown>;
}

describe('renderHtmlReport on a real backtest (sma-cross 10/30, BTC/USDT 1m, January 2024)', () => {
  const { result, bars } = realRun();
  const html = renderHtmlReport(result, bars);

  it('is self-contained: no external script, stylesheet, image or frame, and a CSP that forbids fetching', () => {
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<(script|img|iframe|audio|video|source)\b[^>]*\ssrc\s*=/i);
    expect(html).not.toMatch(/<link\b[^>]*href\s*=\s*["']?(https?:)?\/\//i);
    expect(html).not.toMatch(/@import|url\(\s*["']?https?:/i);
    expect(html).toContain(`<meta http-equiv="Content-Security-Policy" content="default-src 'none';`);
    // The chart library is inlined: its license banner and global are in the page.
    expect(html).toContain('TradingView Lightweight Charts™ v5.');
    expect(html).toContain('LightweightCharts');
    expect(html.length, 'a 44k-bar month stays small').toBeLessThan(2_000_000);
  });

  it('shows every metric formatted, the trade count and the run header', () => {
    expect(result.trades.length).toBeGreaterThan(10);
    for (const [key, spec] of Object.entries(METRIC_SPECS)) {
      const value = result.metrics[key as keyof typeof result.metrics];
      const text = formatMetric(spec.kind, value, 'USDT');
      expect(html, `metric ${key}`).toContain(`<tr data-metric="${key}"`);
      expect(html, `metric ${key} = ${text}`).toContain(`>${text.replace(/&/g, '&amp;')}</td></tr>`);
    }
    expect(html).toContain(
      `<span class="count" id="trades-count">${result.trades.length.toLocaleString('en-US')}</span>`,
    );
    expect(html).toContain('sma-cross on BTC/USDT 1m');
    expect(html).toContain('<span class="chip">fast=10</span>');
    expect(html).toContain('2024-01-01T00:00:00Z → 2024-02-01T00:01:00Z');
  });

  it('embeds parseable JSON with one row per trade and the summary from resultToJson', () => {
    const data = embedded(html) as {
      result: { metrics: Record<string, number | null>; strategy: string };
      trades: TradeCols;
      chart: { candles: { time: number[] }; equity: number[]; markers: unknown[][] };
    };
    expect(data.result.strategy).toBe('sma-cross');
    expect(data.result.metrics).toEqual(resultToJson(result).metrics);
    const rows = decodeTrades(data.trades);
    expect(rows.length).toBe(result.trades.length);
    for (const [i, t] of result.trades.entries()) {
      const row = rows[i] as (typeof rows)[number];
      expect(row.entryTime).toBe(t.entryTime);
      expect(row.exitTime).toBe(t.exitTime);
      // Display precision: 7 significant digits for PnL, 10 for prices (result.json keeps the exact values).
      expect(Math.abs(row.pnlNet - t.pnlNet)).toBeLessThanOrEqual(Math.abs(t.pnlNet) * 1e-6);
      expect(row.entryPrice).toBe(Number(t.entryPrice.toPrecision(10)));
    }
    expect(data.chart.candles.time.length).toBeLessThanOrEqual(5_000);
    expect(data.chart.equity.length).toBe(data.chart.candles.time.length);
    // Every fill is in exactly one marker (markers merge fills per candle and side).
    expect(data.chart.markers.reduce((a, m) => a + (m[2] as number), 0)).toBe(result.fills.length);
  });

  it('is deterministic: two renders of the same input are byte-identical', () => {
    expect(renderHtmlReport(result, bars)).toBe(html);
    const again = runBacktest({
      strategy: getStrategy('sma-cross'),
      params: { fast: 10, slow: 30 },
      data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: bars }],
      cash: 10_000,
      fee: 0.001,
    });
    expect(renderHtmlReport(again, bars), 'a second backtest of the same bars renders the same bytes').toBe(html);
  });

  it('accepts the whole file series for a run restricted with from/to, and rejects bars that do not match', () => {
    const from = bars.time[1000] as number;
    const to = bars.time[3000] as number;
    const part = runBacktest({
      strategy: getStrategy('sma-cross'),
      data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: bars }],
      from,
      to,
    });
    const h = renderHtmlReport(part, bars);
    expect(h).toContain('2,000 candles, one per bar');
    expect(() => renderHtmlReport(part, syntheticBars(500, 3, Date.UTC(2020, 0, 1)))).toThrow(
      /not the ones the backtest replayed/,
    );
  });
});

describe('escaping and odd results', () => {
  const { result, bars } = hostileRun();

  it('escapes every text it shows: strategy errors, params and tags cannot inject markup', () => {
    expect(result.errors.length).toBeGreaterThan(0);
    expect(result.openTrades.length).toBe(1);
    const html = renderHtmlReport(result, bars, { title: `Title ${HOSTILE}`, notes: [`Note ${HOSTILE}`] });
    expect(html).not.toContain('<img');
    expect(html.match(/<\/script>/g)?.length, 'only the three real script elements close').toBe(3);
    expect(html).toContain('&lt;/script&gt;&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &#39;quoted&#39;');
    expect(html).toContain('<title>Title &lt;/script&gt;');
    expect(html).toContain('Strategy errors <span class="count">30</span>');
    const data = embedded(html) as { result: { errors: { message: string }[]; params: { note: string } } };
    expect(data.result.errors[0]?.message).toContain(HOSTILE);
    expect(data.result.params.note).toBe(HOSTILE);
    expect(html).toContain('Open at the end');
  });

  it('charts the primary feed of a multi-feed run and says which feed is primary', () => {
    const other = syntheticBars(bars.length, 99);
    const multi = runBacktest({
      strategy: hostileStrategy,
      data: [
        { symbol: 'SYN/USDT', timeframe: '1m', series: bars },
        { symbol: 'ALT/USDT', timeframe: '1m', series: other },
      ],
      allowShortSpot: true,
    });
    const html = renderHtmlReport(multi, bars);
    expect(html).toContain('SYN/USDT 1m, ALT/USDT 1m <span class="muted">(the first is the primary feed');
    expect(multi.equity.values.length).toBe(bars.length);
  });

  it('renders a run with no bars in range without throwing', () => {
    const empty = runBacktest({
      strategy: getStrategy('sma-cross'),
      data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: bars }],
      from: 0,
      to: 1,
    });
    const html = renderHtmlReport(empty, bars);
    expect(html).toContain('No orders.');
    expect((embedded(html) as { chart: { candles: { time: unknown[] } } }).chart.candles.time).toEqual([]);
    expect(formatSummary(empty)).toContain('no bars in range');
  });
});

describe('resultToJson', () => {
  const { result } = hostileRun();
  const json = resultToJson(result);

  it('is JSON-safe: JSON.stringify round-trips it exactly (no NaN, no Infinity, no typed arrays)', () => {
    const text = JSON.stringify(json);
    expect(JSON.parse(text)).toEqual(json);
    expect(text).not.toMatch(/NaN|Infinity/);
    expect(Array.isArray(json.equity.values)).toBe(true);
  });

  it('turns NaN and Infinity into null and puts ISO times next to ms', () => {
    const open = json.orders.find((o) => o.status !== 'filled');
    expect(open?.avgPrice, 'avgPrice is NaN before any fill').toBeNull();
    expect(json.orders[0]?.stopLevel).toBeNull();
    const inf = resultToJson({ ...result, metrics: { ...result.metrics, profitFactor: Number.POSITIVE_INFINITY } });
    expect(inf.metrics.profitFactor).toBeNull();
    const t = json.trades[0];
    expect(t?.entryTimeIso).toBe(new Date(t?.entryTime as number).toISOString().replace('.000Z', 'Z'));
    expect(json.equity.timesIso[0]).toBe(new Date(json.equity.times[0] as number).toISOString().replace('.000Z', 'Z'));
    expect(json.fills[0]?.tag).toContain(HOSTILE);
  });

  it('has a stable key order (equal results serialise to equal bytes; params keys sorted)', () => {
    expect(Object.keys(json)).toEqual([
      'format',
      'version',
      'strategy',
      'params',
      'feeds',
      'startValue',
      'finalValue',
      'finalCash',
      'metrics',
      'pairs',
      'benchmark',
      'trades',
      'openTrades',
      'fills',
      'orders',
      'equity',
      'errors',
      'risk',
      'riskCounts',
      'riskEvents',
    ]);
    expect(json.risk).toBeNull();
    expect(json.riskEvents).toEqual([]);
    expect(Object.keys(json.params as object)).toEqual(['every', 'note']);
    const reordered = resultToJson({ ...result, params: { note: HOSTILE, every: 25 } });
    expect(JSON.stringify(reordered)).toBe(JSON.stringify(json));
    expect(Object.keys(json.metrics)).toEqual(Object.keys(METRIC_SPECS));
  });
});

describe('CSV exports', () => {
  const { result } = hostileRun();

  it('have a header and one row per trade, per fill and per equity point, quoting text with commas and quotes', () => {
    const trades = parseCsv(tradesToCsv(result));
    expect(trades[0]).toEqual([...TRADES_CSV_HEADER]);
    expect(trades.length - 1).toBe(result.trades.length);
    const fills = parseCsv(fillsToCsv(result));
    expect(fills[0]).toEqual([...FILLS_CSV_HEADER]);
    expect(fills.length - 1).toBe(result.fills.length);
    expect(fills[1]?.[FILLS_CSV_HEADER.indexOf('tag')], 'the hostile tag survives the round trip').toBe(
      `tag ${HOSTILE}`,
    );
    for (const r of fills) expect(r.length).toBe(FILLS_CSV_HEADER.length);
    const equity = parseCsv(equityToCsv(result));
    expect(equity[0]).toEqual([...EQUITY_CSV_HEADER]);
    expect(equity.length - 1).toBe(result.equity.values.length);
  });

  it('write numbers at full precision (the CSV value is the engine value)', () => {
    const trades = parseCsv(tradesToCsv(result));
    const i = TRADES_CSV_HEADER.indexOf('pnl_net');
    for (const [k, t] of result.trades.entries()) expect(Number(trades[k + 1]?.[i])).toBe(t.pnlNet);
    const eq = parseCsv(equityToCsv(result));
    for (const [k, v] of result.equity.values.entries()) expect(Number(eq[k + 1]?.[2])).toBe(v);
  });
});

describe('writeReport', () => {
  it('creates the folder and writes report.html, result.json and the three CSV files', () => {
    const { result, bars } = hostileRun(1_000);
    const dir = path.join(tmp, 'nested', 'out');
    const paths = writeReport(dir, result, bars);
    expect(Object.keys(paths)).toEqual(['html', 'json', 'trades', 'equity', 'fills']);
    for (const p of Object.values(paths)) expect(existsSync(p), p).toBe(true);
    expect(path.basename(paths.html)).toBe('report.html');
    expect(readFileSync(paths.html, 'utf8')).toBe(renderHtmlReport(result, bars));
    expect(JSON.parse(readFileSync(paths.json, 'utf8'))).toEqual(resultToJson(result));
    expect(readFileSync(paths.fills, 'utf8')).toBe(fillsToCsv(result));
  });
});

describe('downsampling', () => {
  it('merges bars into exchange-aligned candles whose OHLCV equals a brute-force aggregation of the bars', () => {
    const { result, bars } = hostileRun(12_000);
    const c = buildChartData(result, bars, 1_000);
    // 12,000 1m bars: 5m gives 2,400 candles, 15m gives 800 <= 1,000.
    expect(c.aggregation).toEqual({ timeframe: '15m', barsPerCandle: 15, candles: 800, bars: 12_000 });
    for (let k = 0; k < c.aggregation.candles; k += 37) {
      const t0 = (c.candles.time[k] as number) * 1000;
      const idx: number[] = [];
      for (let i = 0; i < bars.length; i++)
        if ((bars.time[i] as number) >= t0 && (bars.time[i] as number) < t0 + 900_000) idx.push(i);
      expect(idx.length).toBe(15);
      const first = idx[0] as number;
      const last = idx[idx.length - 1] as number;
      expect(c.candles.open[k]).toBe(bars.open[first]);
      expect(c.candles.close[k]).toBe(bars.close[last]);
      expect(c.candles.high[k]).toBe(Math.max(...idx.map((i) => bars.high[i] as number)));
      expect(c.candles.low[k]).toBe(Math.min(...idx.map((i) => bars.low[i] as number)));
      expect(c.equity[k]).toBeCloseTo(result.equity.values[last] as number, 4);
    }
  });

  it('counts only bars that exist: a long gap does not create empty candles, and huge spans fall back to fixed groups', () => {
    const t = new Float64Array(6_000);
    for (let i = 0; i < 6_000; i++) t[i] = Date.UTC(2024, 0, 1) + (i < 3_000 ? i : i + 500_010) * 60_000;
    const gap = chooseBuckets(t, 0, t.length, '1m', 1_000);
    // 6,000 bars: 5m would give 1,200 candles; 15m gives 400 (200 per side of the gap, none inside it).
    expect(gap.aggregation.timeframe).toBe('15m');
    expect(gap.aggregation.candles).toBe(400);
    const days = new Float64Array(20_000);
    for (let i = 0; i < days.length; i++) days[i] = i * 86_400_000;
    const fixed = chooseBuckets(days, 0, days.length, '1d', 100);
    expect(fixed.aggregation).toEqual({ timeframe: null, barsPerCandle: 200, candles: 100, bars: 20_000 });
    expect(fixed.bucketOf[199]).toBe(0);
    expect(fixed.bucketOf[200]).toBe(1);
  });

  it('keeps a one-million-bar run under 5 MB with at most maxPoints candles', () => {
    const bars = syntheticBars(1_000_000, 5);
    const result = runBacktest({
      strategy: getStrategy('sma-cross'),
      params: { fast: 50, slow: 200 },
      data: [{ symbol: 'SYN/USDT', timeframe: '1m', series: bars }],
      fee: 0.001,
    });
    const html = renderHtmlReport(result, bars);
    const data = embedded(html) as {
      chart: { aggregation: { candles: number; timeframe: string } };
      trades: TradeCols;
    };
    expect(data.chart.aggregation.candles).toBeLessThanOrEqual(5_000);
    expect(data.chart.aggregation.timeframe).toBe('4h');
    expect(data.trades.count).toBe(result.trades.length);
    expect(html.length, `${result.trades.length} trades`).toBeLessThan(5_000_000);
  });
});

describe('formatSummary', () => {
  it('is an aligned plain-text table with the key metrics, the trade count and the final value', () => {
    const { result } = realRun();
    const s = formatSummary(result);
    expect(s).toContain('sma-cross on BTC/USDT 1m');
    expect(s).toContain('params: fast=10 slow=30 allocation=0.95');
    expect(s).toMatch(new RegExp(`Trades +${result.trades.length.toLocaleString('en-US')}\\n`));
    expect(s).toContain(formatMetric('money', result.finalValue, 'USDT'));
    expect(s).toMatch(/^[\x20-\x7e\n]*$/);
    // Aligned: the value columns end at the same place on every metric line.
    const rows = s.split('\n').filter((l) => l.startsWith('  '));
    expect(rows.length).toBe(8);
    expect(new Set(rows.map((l) => l.length)).size, 'right values right-aligned').toBe(1);
    // Left values right-aligned: some column p ends a value on every row, with the gap after it.
    const first = rows[0] as string;
    const ends = [...first.matchAll(/\S(?= {5})/g)].map((m) => m.index as number);
    expect(
      ends.some((p) => rows.every((l) => l[p] !== ' ' && l.slice(p + 1, p + 6) === '     ')),
      s,
    ).toBe(true);
  });
});
