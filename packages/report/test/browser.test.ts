import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeReport } from '../src/index.ts';
import { FIXTURE_T0, fixtureRun, hostileRun, multiFixtureRun, realRun, riskRun } from './helpers.ts';

/**
 * Opens written reports in a real Chromium from disk (file://) with networking off, the way a user
 * double-clicks report.html, and checks what a person would see. Skips with a note when Chromium
 * is not installed, unless KEEL_REQUIRE_SERVICES=1, where a missing browser fails the suite.
 */
/** KEEL_CHROMIUM_PATH points elsewhere (e.g. a developer's own Chrome); CI uses Debian's package. */
const CHROMIUM = process.env.KEEL_CHROMIUM_PATH ?? '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const REQUIRED = process.env.KEEL_REQUIRE_SERVICES === '1';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** Screenshots are kept (not cleaned up) so a person can look at them after the run. */
export const SCREENSHOT_DIR = path.join(os.tmpdir(), 'keel-report-screenshots');

if (!HAS_CHROMIUM && !REQUIRED) {
  console.warn(
    `[skip] report browser check: ${CHROMIUM} is not installed (apt-get install -y chromium); set KEEL_REQUIRE_SERVICES=1 to make this a failure`,
  );
}

describe.skipIf(!HAS_CHROMIUM && !REQUIRED)('the HTML report in Chromium, opened from disk', () => {
  let browser: Browser;

  beforeAll(async () => {
    expect(HAS_CHROMIUM, `${CHROMIUM} is required (KEEL_REQUIRE_SERVICES=1): apt-get install -y chromium`).toBe(true);
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });
  afterAll(async () => {
    await browser?.close();
  });

  /** Opens a page and records everything that would mean the report is broken or not self-contained. */
  async function open(
    file: string,
    colorScheme: 'light' | 'dark' = 'light',
  ): Promise<{ page: Page; problems: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1360, height: 900 }, colorScheme });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('dialog', (d) => {
      problems.push(`dialog opened: ${d.message()}`);
      void d.dismiss();
    });
    page.on('request', (r) => {
      if (!/^(file|data|about):/.test(r.url())) problems.push(`network request: ${r.url()}`);
    });
    await page.goto(pathToFileURL(file).href);
    await page.waitForSelector('#chart canvas');
    // Strings, not functions: this code runs in the page, and the test's tsconfig has no DOM types.
    await page.locator('html[data-markers]').waitFor({ state: 'attached' });
    return { page, problems };
  }

  it('renders the charts, the metrics and the paginated trade list of a real run with no errors or requests', async () => {
    const { result, bars } = realRun();
    const paths = writeReport(path.join(SCREENSHOT_DIR, 'sma-cross-btc'), result, bars);
    const { page, problems } = await open(paths.html);

    const canvases = await page.$$eval('#chart canvas', (cs) =>
      cs.map((c) => c as unknown as { width: number; height: number }).map((c) => ({ w: c.width, h: c.height })),
    );
    expect(canvases.length, 'price, equity and drawdown panes draw on canvases').toBeGreaterThanOrEqual(3);
    const drawn = canvases.filter((c) => c.w > 100 && c.h > 50);
    expect(drawn.length, JSON.stringify(canvases)).toBeGreaterThanOrEqual(3);
    const box = await page.locator('#chart').boundingBox();
    expect(box?.height).toBeGreaterThan(400);

    const n = result.trades.length;
    const fmt = (x: number) => x.toLocaleString('en-US');
    expect(await page.textContent('#trades-info')).toBe(`1–50 of ${fmt(n)} trades · page 1 of ${Math.ceil(n / 50)}`);
    expect(await page.locator('#trades-body tr').count()).toBe(Math.min(50, n));
    expect(await page.textContent('#legend')).toContain('Equity');
    expect(await page.textContent('#metrics')).toContain('Sharpe ratio');

    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'report-light.png'), fullPage: true });
    await page.locator('#charts').screenshot({ path: path.join(SCREENSHOT_DIR, 'charts-light.png') });

    await page.click('#trades-next');
    expect(await page.textContent('#trades-info')).toMatch(/^51–100 of /);
    // Sorting by PnL (descending on first click) puts the best trade first.
    await page.click('th[data-key="pnlNet"]');
    const best = Math.max(...result.trades.map((t) => t.pnlNet));
    expect(await page.textContent('#trades-body tr:first-child td:nth-child(10)')).toBe(
      best.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }),
    );
    // Zoomed out, a month of fills would bury the candles: markers appear after clicking a trade.
    await page.click('#trades-body tr:first-child');
    // A locator, not a string predicate: Playwright evals string predicates in the page, which the
    // report's Content-Security-Policy (no 'unsafe-eval') rightly refuses in current Chromium.
    await page.locator('html[data-markers="on"]').waitFor({ state: 'attached' });
    await page.waitForTimeout(400);
    await page.locator('#charts').screenshot({ path: path.join(SCREENSHOT_DIR, 'charts-trade.png') });
    expect(problems).toEqual([]);
    console.info(`[report] screenshots in ${SCREENSHOT_DIR}`);
    await page.close();
  });

  it('marks the halts on the equity curve and lists the risk events, with no errors', async () => {
    const { result, bars } = riskRun();
    const paths = writeReport(path.join(SCREENSHOT_DIR, 'risk'), result, bars);
    const { page, problems } = await open(paths.html);
    const text = (await page.textContent('#risk')) ?? '';
    expect(text).toContain('max-drawdown');
    expect(text).toContain('flatten');
    expect(text).toContain('Denied orders');
    // The markers are handed to the chart as data (the canvas holds the drawing).
    const data = JSON.parse((await page.textContent('#keel-data')) ?? '{}') as { chart: { riskMarkers: unknown[] } };
    expect(data.chart.riskMarkers.length).toBeGreaterThan(0);
    await page.locator('#charts').screenshot({ path: path.join(SCREENSHOT_DIR, 'charts-risk.png') });
    await page.locator('#risk').screenshot({ path: path.join(SCREENSHOT_DIR, 'risk-card.png') });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows hostile strategy text as text (no script runs) and works in dark mode', async () => {
    const { result, bars } = hostileRun();
    const paths = writeReport(path.join(SCREENSHOT_DIR, 'hostile'), result, bars, {
      notes: ['Synthetic prices: a seeded random walk, not a real market.'],
    });
    const { page, problems } = await open(paths.html, 'dark');
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.textContent('#errors')).toContain('</script><img src=x onerror="alert(1)">');
    const bg = await page.evaluate('getComputedStyle(document.body).backgroundColor');
    expect(bg, 'dark theme background').toBe('rgb(15, 18, 22)');
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'report-dark.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('draws the buy-and-hold line, the strategy plots, the monthly table and the histogram of a hand-computed run', async () => {
    const { result, bars } = fixtureRun();
    const paths = writeReport(path.join(SCREENSHOT_DIR, 'fixture'), result, bars);
    const { page, problems } = await open(paths.html);
    const D = 86_400;
    const t0 = FIXTURE_T0 / 1000;
    // What the chart holds, read through the page's own handle (the canvas has the drawing).
    const drawn = JSON.parse(
      (await page.evaluate(`JSON.stringify({
        panes: keelReport.chart.panes().length,
        benchmark: keelReport.series.benchmark.data(),
        benchmarkTitle: keelReport.series.benchmark.options().title,
        benchmarkPane: keelReport.series.benchmark.getPane().paneIndex(),
        plots: keelReport.series.plots.map((s) => ({ title: s.options().title, pane: s.getPane().paneIndex(), data: s.data() })),
        equityPane: keelReport.series.equity.getPane().paneIndex(),
      })`)) as string,
    ) as {
      panes: number;
      benchmark: { time: number; value?: number }[];
      benchmarkTitle: string;
      benchmarkPane: number;
      plots: { title: string; pane: number; data: { time: number; value?: number }[] }[];
      equityPane: number;
    };
    // Price (with the SMA), the strategy's "change" pane, equity (with buy and hold), drawdown.
    expect(drawn.panes).toBe(4);
    expect(drawn.benchmarkTitle).toBe('Buy and hold');
    expect(drawn.benchmarkPane).toBe(drawn.equityPane);
    expect(drawn.equityPane).toBe(2);
    // 1000 / 100.1 BTC at the closes 100, 110, 99, 121, 110, 121 (see analysis.test.ts).
    expect(drawn.benchmark.map((p) => [p.time - t0, Number(p.value?.toFixed(4))])).toEqual([
      [0, 999.001],
      [D, 1098.9011],
      [2 * D, 989.011],
      [3 * D, 1208.7912],
      [4 * D, 1098.9011],
      [5 * D, 1208.7912],
    ]);
    expect(drawn.plots.map((p) => [p.title, p.pane])).toEqual([
      ['SMA 2', 0],
      ['change', 1],
    ]);
    // The first bar has no SMA yet: no point there (a gap, not a zero).
    const byDay = (data: { time: number; value?: number }[]) =>
      data.filter((p) => p.value !== undefined).map((p) => [(p.time - t0) / D, p.value]);
    expect(byDay(drawn.plots[0]?.data ?? [])).toEqual([
      [1, 105],
      [2, 104.5],
      [3, 110],
      [4, 115.5],
      [5, 115.5],
    ]);
    expect(byDay(drawn.plots[1]?.data ?? [])).toEqual([
      [1, 10],
      [2, -11],
      [3, 22],
      [4, -11],
      [5, 11],
    ]);

    // What a person reads: hovering the third candle puts its values in the legend.
    const x = Number(await page.evaluate(`keelReport.chart.timeScale().timeToCoordinate(${t0 + 2 * D})`));
    const box = await page.locator('#chart').boundingBox();
    expect(box).not.toBeNull();
    await page.mouse.move((box?.x ?? 0) + x, (box?.y ?? 0) + 120);
    const legend = (await page.textContent('#legend')) ?? '';
    expect(legend).toContain('2024-01-31 00:00 UTC');
    expect(legend).toContain('SMA 2104.50');
    expect(legend).toContain('change-11.00');
    expect(legend).toContain('Buy and hold989.01 USDT');
    expect(legend).toContain('Equity1,009.79 USDT');

    expect(await page.textContent('.kpis')).toContain('Buy and hold20.88 %');
    const months = await page.$$eval('#monthly tr[data-year="2024"] td', (tds) => tds.map((td) => td.textContent));
    expect(months.slice(0, 2)).toEqual(['0.98 %', '4.31 %']);
    expect(months[12]).toBe('5.33 %');
    // The histogram: bins of 0.5 % from 9.5 to 22.5, a bar of full height at each end, none between.
    const bins = await page.$$eval('#histogram g.bin', (gs) =>
      gs.map((g) => {
        const r = g.querySelector('rect') as unknown as { getBoundingClientRect(): { height: number } };
        return [g.getAttribute('data-lo'), g.getAttribute('data-count'), Math.round(r.getBoundingClientRect().height)];
      }),
    );
    expect(bins.length).toBe(26);
    expect(bins[0]?.slice(0, 2)).toEqual(['9.5', '1']);
    expect(bins[25]?.slice(0, 2)).toEqual(['22', '1']);
    expect(bins[0]?.[2]).toBeGreaterThan(50);
    expect(bins[25]?.[2]).toBe(bins[0]?.[2]);
    expect(bins.slice(1, 25).every((b) => b[2] === 0)).toBe(true);
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'fixture.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows every fill at the default zoom, merged per run of candles with counts, and the 1m bars themselves when zoomed in', async () => {
    const { result, bars } = realRun();
    const paths = writeReport(path.join(SCREENSHOT_DIR, 'sma-cross-markers'), result, bars);
    const { page, problems } = await open(paths.html);
    type Marker = { time: number; text?: string; shape: string };
    const state = async () =>
      JSON.parse(
        (await page.evaluate(
          'JSON.stringify({ mode: keelReport.mode(), group: Number(document.documentElement.dataset.markerGroup), markers: keelReport.markers(), candles: keelReport.series.candles.data().length, hint: document.getElementById("chart-hint").textContent })',
        )) as string,
      ) as { mode: string; group: number; markers: Marker[]; candles: number; hint: string };
    // A marker stands for as many fills as its label says (no label: one).
    const fillsShown = (ms: Marker[]) => ms.reduce((a, m) => a + (m.text ? Number(m.text) : 1), 0);
    const fills = result.fills.filter((f) => f.symbol === 'BTC/USDT').length;
    expect(fills).toBeGreaterThan(1000);

    const zoomedOut = await state();
    expect(zoomedOut.mode).toBe('merged');
    expect(zoomedOut.group, 'a month of 15m candles is too dense for an arrow per candle').toBeGreaterThan(1);
    expect(fillsShown(zoomedOut.markers), 'every fill is counted in some marker').toBe(fills);
    expect(
      zoomedOut.markers.filter((m) => m.shape === 'arrowUp').reduce((a, m) => a + (m.text ? Number(m.text) : 1), 0),
    ).toBe(result.fills.filter((f) => f.side === 'buy').length);
    // Few enough to read: about one per 20 px of chart per side.
    expect(zoomedOut.markers.length).toBeLessThanOrEqual(2 * Math.ceil(zoomedOut.candles / zoomedOut.group));
    expect(zoomedOut.markers.length).toBeLessThan(300);
    expect(zoomedOut.hint).toContain(`fills of ${zoomedOut.group} candles`);

    // A click on a trade zooms to it: close enough that the chart draws the 1m bars themselves.
    await page.click('#trades-body tr:nth-child(3)');
    await page.locator('html[data-bars="own"]').waitFor({ state: 'attached' });
    await page.waitForTimeout(300);
    const zoomed = await state();
    expect(zoomed.candles).toBe(bars.length);
    expect(zoomed.hint).toContain('the 1m bars themselves');
    expect(fillsShown(zoomed.markers)).toBe(fills);
    // The bars drawn are the file's own rows (the oracle), not merged candles.
    const trade = result.trades[2];
    expect(trade).toBeDefined();
    const row = Math.round(((trade?.entryTime ?? 0) - (bars.time[0] as number)) / 60_000) - 1;
    const drawn = JSON.parse(
      (await page.evaluate(`JSON.stringify(keelReport.series.candles.data()[${row}])`)) as string,
    ) as { time: number; open: number; high: number; low: number; close: number };
    expect(drawn).toEqual({
      time: (bars.time[row] as number) / 1000,
      open: bars.open[row],
      high: bars.high[row],
      low: bars.low[row],
      close: bars.close[row],
    });
    const range = JSON.parse(
      (await page.evaluate('JSON.stringify(keelReport.chart.timeScale().getVisibleRange())')) as string,
    ) as { from: number; to: number };
    expect(range.from * 1000).toBeLessThanOrEqual(trade?.entryTime ?? 0);
    expect(range.to * 1000).toBeGreaterThanOrEqual((trade?.exitTime ?? 0) - 60_000);
    await page.locator('#charts').screenshot({ path: path.join(SCREENSHOT_DIR, 'charts-own-bars.png') });

    // Zoomed out again: back to the merged candles.
    await page.evaluate('keelReport.chart.timeScale().fitContent()');
    await page.locator('html[data-bars="merged"]').waitFor({ state: 'attached' });
    await page.waitForTimeout(300);
    const back = await state();
    expect(back.candles).toBe(zoomedOut.candles);
    expect(fillsShown(back.markers)).toBe(fills);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('gives a run over two markets a chart panel for the other market, with its candles, fills and plot line', async () => {
    const { result, bars, eth } = multiFixtureRun();
    const paths = writeReport(path.join(SCREENSHOT_DIR, 'two-markets'), result, bars, { feedSeries: [bars, eth] });
    const { page, problems } = await open(paths.html);
    await page.waitForSelector('#pair-chart-0 canvas');
    const drawn = JSON.parse(
      (await page.evaluate(`JSON.stringify({
        candles: keelReport.pairs[0].series.candles.data(),
        line: keelReport.pairs[0].series.plots.map((s) => ({ title: s.options().title, data: s.data() })),
        markers: keelReport.pairs[0].markers(),
        mainLines: keelReport.series.plots.map((s) => s.options().title),
      })`)) as string,
    ) as {
      candles: { time: number; close: number }[];
      line: { title: string; data: { time: number; value?: number }[] }[];
      markers: { time: number; shape: string; text?: string }[];
      mainLines: string[];
    };
    const t0 = FIXTURE_T0 / 1000;
    const D = 86_400;
    expect(drawn.candles.map((b) => b.close)).toEqual([20, 22, 24, 23, 21, 22]);
    expect(drawn.markers.map((m) => [(m.time - t0) / D, m.shape, m.text ?? ''])).toEqual([
      [1, 'arrowUp', ''],
      [3, 'arrowDown', ''],
    ]);
    expect(drawn.line.map((l) => l.title)).toEqual(['ETH SMA 2']);
    expect(drawn.line[0]?.data.filter((p) => p.value !== undefined).map((p) => p.value)).toEqual([
      21, 23, 23.5, 22, 21.5,
    ]);
    expect(drawn.mainLines).toEqual(['SMA 2']);
    const rows = await page.$$eval('#markets tbody tr', (trs) => trs.map((tr) => tr.getAttribute('data-market')));
    expect(rows).toEqual(['BTC/USDT', 'ETH/USDT']);
    expect(await page.textContent('#pair-legend-0')).toContain('ETH SMA 221.50');
    await page.locator('#markets').screenshot({ path: path.join(SCREENSHOT_DIR, 'markets.png') });
    expect(problems).toEqual([]);
    await page.close();
  });
});
