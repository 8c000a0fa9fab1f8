// Keel backtest report: draws the charts and the trade list from the JSON embedded in the page.
// Plain ES2020 for the browser, inlined by @keel/report at render time (no modules, no network).
(() => {
  const dataEl = document.getElementById('keel-data');
  if (!dataEl) return;
  const data = JSON.parse(dataEl.textContent || '{}');
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  const nf = (d) => new Intl.NumberFormat('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  const fmt = (x, d) => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : nf(d).format(x));
  const priceDecimals = (x) => {
    if (!Number.isFinite(x) || x === 0) return 2;
    return Math.min(10, Math.max(2, 4 - Math.floor(Math.log10(Math.abs(x)))));
  };
  const fmtPrice = (x) => fmt(x, priceDecimals(x));
  const fmtAmount = (x) => {
    if (x === null || !Number.isFinite(x)) return 'n/a';
    return new Intl.NumberFormat('en-US', { maximumFractionDigits: 8 }).format(x);
  };
  const iso = (ms) => new Date(ms).toISOString().replace('.000Z', 'Z');
  const isoShort = (ms) => iso(ms).slice(0, 16).replace('T', ' ');
  const duration = (ms) => {
    const units = [
      ['y', 31536000000],
      ['d', 86400000],
      ['h', 3600000],
      ['m', 60000],
      ['s', 1000],
    ];
    for (let i = 0; i < units.length; i++) {
      const [u, size] = units[i];
      if (ms < size) continue;
      const q = Math.floor(ms / size);
      const next = units[i + 1];
      const q2 = next ? Math.floor((ms - q * size) / next[1]) : 0;
      return next && q2 > 0 ? `${q}${u} ${q2}${next[0]}` : `${q}${u}`;
    }
    return ms > 0 ? `${ms}ms` : '0s';
  };
  const signClass = (x) => (x > 0 ? 'pos' : x < 0 ? 'neg' : '');
  const el = (tag, attrs, text) => {
    const e = document.createElement(tag);
    if (attrs) for (const k of Object.keys(attrs)) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    return e;
  };

  // Fill markers ([time, side, count, amount, price]) by their time, for the legends.
  const byTime = (rows) => {
    const out = new Map();
    for (const m of rows) {
      const list = out.get(m[0]) || [];
      list.push(m);
      out.set(m[0], list);
    }
    return out;
  };
  const addFills = (add, rows) => {
    for (const m of rows || []) {
      const what = m[1] > 0 ? (m[2] > 1 ? `${m[2]} buys` : 'buy') : m[2] > 1 ? `${m[2]} sells` : 'sell';
      add(m[1] > 0 ? '▲' : '▼', `${what} ${fmtAmount(m[3])} @ ${fmtPrice(m[4])}`, m[1] > 0 ? 'pos' : 'neg');
    }
  };

  // ---- charts -------------------------------------------------------------------------------
  let chart = null;
  let candleSeries = null;
  let tradeLines = [];
  const chartEl = document.getElementById('chart');
  const legendEl = document.getElementById('legend');
  const c = data.chart;
  const LWC = window.LightweightCharts;
  if (chartEl && c && c.candles.time.length > 0 && LWC) {
    const n = c.candles.time.length;
    const candleData = new Array(n);
    const equityData = new Array(n);
    const ddData = new Array(n);
    const indexOf = new Map();
    for (let i = 0; i < n; i++) {
      const time = c.candles.time[i];
      indexOf.set(time, i);
      candleData[i] = {
        time,
        open: c.candles.open[i],
        high: c.candles.high[i],
        low: c.candles.low[i],
        close: c.candles.close[i],
      };
      equityData[i] = { time, value: c.equity[i] };
      ddData[i] = { time, value: c.drawdown[i] };
    }
    const fillsAt = byTime(c.markers);
    const theme = () => ({
      layout: {
        background: { type: 'solid', color: css('--panel') },
        textColor: css('--muted'),
        fontFamily: css('--sans'),
        panes: { separatorColor: css('--border'), separatorHoverColor: css('--grid') },
      },
      grid: { vertLines: { color: css('--grid') }, horzLines: { color: css('--grid') } },
      rightPriceScale: { borderColor: css('--border') },
      timeScale: { borderColor: css('--border') },
    });
    // Each pane of the strategy's own (an oscillator) adds height, so the price pane keeps its size.
    const extraPanes = new Set((c.plots || []).filter((p) => p.panel !== 'price').map((p) => p.panel)).size;
    if (extraPanes > 0) chartEl.style.height = `${600 + 130 * extraPanes}px`;
    chart = LWC.createChart(chartEl, {
      autoSize: true,
      ...theme(),
      crosshair: { mode: LWC.CrosshairMode.Normal },
      // A low minimum spacing lets fitContent show the whole run (up to maxPoints candles) at once.
      timeScale: {
        borderColor: css('--border'),
        timeVisible: true,
        secondsVisible: c.aggregation.timeframe === '1s',
        minBarSpacing: 0.05,
      },
    });
    const pd = c.priceDecimals;
    const up = css('--up');
    const down = css('--down');
    const candleOptions = (decimals) => ({
      upColor: up,
      downColor: down,
      borderVisible: false,
      wickUpColor: up,
      wickDownColor: down,
      priceFormat: { type: 'price', precision: decimals, minMove: 10 ** -decimals },
    });
    // Appends "key value" items to a legend element.
    const legendAdder = (container) => (key, v, cls) => {
      const s = el('span');
      s.appendChild(el('span', { class: 'k' }, key));
      s.appendChild(el('span', cls ? { class: cls } : undefined, v));
      container.appendChild(s);
    };
    const candles = chart.addSeries(LWC.CandlestickSeries, candleOptions(pd), 0);
    candles.setData(candleData);
    candleSeries = candles;
    // Volume as faint bars along the bottom fifth of the price pane, on its own hidden scale.
    const volume = chart.addSeries(
      LWC.HistogramSeries,
      { priceScaleId: 'volume', priceFormat: { type: 'volume' }, lastValueVisible: false, priceLineVisible: false },
      0,
    );
    volume.priceScale().applyOptions({ scaleMargins: { top: 0.82, bottom: 0 }, visible: false });
    const upVol = css('--up-soft');
    const downVol = css('--down-soft');
    const candleVolume = candleData.map((d, i) => ({
      time: d.time,
      value: c.candles.volume[i],
      color: d.close >= d.open ? upVol : downVol,
    }));
    volume.setData(candleVolume);

    // ---- the bars' own timeframe when zoomed in ----------------------------------------------
    // Merged candles keep a long run readable; zoomed in far enough that a bar of the run would be
    // a few pixels wide, the page swaps in the bars themselves (embedded as c.detail) and back.
    const detail = c.detail;
    const DETAIL_ENTER_PX = 4;
    const DETAIL_LEAVE_PX = 2;
    let raw = null;
    const decodeDetail = () => {
      if (raw) return raw;
      const m = detail.open.length;
      const scale = 10 ** detail.decimals;
      const out = { candles: new Array(m), volume: new Array(m), indexOf: new Map(), fillsAt: null };
      let t = detail.start - detail.step;
      let g = 0;
      let prev = 0;
      for (let i = 0; i < m; i++) {
        if (g < detail.gaps.length && detail.gaps[g] === i) {
          t += detail.gaps[g + 1];
          g += 2;
        } else t += detail.step;
        const o = prev + detail.open[i];
        const cl = o + detail.body[i];
        prev = cl;
        out.candles[i] = {
          time: t,
          open: o / scale,
          high: (Math.max(o, cl) + detail.upper[i]) / scale,
          low: (Math.min(o, cl) - detail.lower[i]) / scale,
          close: cl / scale,
        };
        out.volume[i] = { time: t, value: detail.volume[i], color: cl >= o ? upVol : downVol };
        out.indexOf.set(t, i);
      }
      out.fillsAt = byTime(detail.markers);
      raw = out;
      return raw;
    };
    let mode = 'merged';

    // ---- fill markers --------------------------------------------------------------------------
    // Always shown: when the candles are too narrow for an arrow each, the fills of a run of
    // candles (a power of two, aligned on the first candle, so panning does not move them) merge
    // into one arrow per side, labelled with how many fills it stands for.
    const MIN_MARKER_PX = 20;
    const markerApi = LWC.createSeriesMarkers(candles, []);
    const hintEl = document.getElementById('chart-hint');
    let group = 0;
    let markersMode = '';
    const markerList = (rows, idx, g) => {
      if (g === 1) {
        return rows.map((m) => ({
          time: m[0],
          position: m[1] > 0 ? 'atPriceBottom' : 'atPriceTop',
          price: m[4],
          shape: m[1] > 0 ? 'arrowUp' : 'arrowDown',
          color: m[1] > 0 ? up : down,
          text: m[2] > 1 ? String(m[2]) : '',
        }));
      }
      const acc = new Map();
      for (const m of rows) {
        const key = Math.floor(idx.get(m[0]) / g) * 2 + (m[1] > 0 ? 0 : 1);
        const a = acc.get(key);
        if (a) a.count += m[2];
        else acc.set(key, { time: m[0], side: m[1], count: m[2] });
      }
      return [...acc.values()]
        .sort((x, y) => x.time - y.time || y.side - x.side)
        .map((a) => ({
          time: a.time,
          position: a.side > 0 ? 'belowBar' : 'aboveBar',
          shape: a.side > 0 ? 'arrowUp' : 'arrowDown',
          color: a.side > 0 ? up : down,
          text: a.count > 1 ? String(a.count) : '',
        }));
    };
    // Index of the first of `times` at or after t (times ascending).
    const firstAtOrAfter = (times, t) => {
      let lo = 0;
      let hi = times.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (times[mid] < t) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    let rawTimes = null;
    const timesOf = (m) => {
      if (m === 'merged') return c.candles.time;
      if (!rawTimes) rawTimes = decodeDetail().candles.map((b) => b.time);
      return rawTimes;
    };
    let switching = false;
    // Swaps the candles for the other level and shows the same span of time, mapped through the
    // levels' own times (the logical range counts data points, which differ between the levels).
    const switchTo = (want, range) => {
      const from = timesOf(mode);
      const a = from[Math.max(0, Math.min(from.length - 1, Math.floor(range.from)))];
      const b = from[Math.max(0, Math.min(from.length - 1, Math.ceil(range.to)))];
      switching = true;
      if (want === 'own') {
        const r = decodeDetail();
        candles.setData(r.candles);
        volume.setData(r.volume);
      } else {
        candles.setData(candleData);
        volume.setData(candleVolume);
      }
      mode = want;
      const to = timesOf(want);
      const last = want === 'own' ? b + c.candleSeconds - detail.step : b;
      // The chart applies new data on its next frame and keeps the old logical range then: set the
      // range after that.
      requestAnimationFrame(() => {
        chart.timeScale().setVisibleLogicalRange({
          from: Math.max(0, firstAtOrAfter(to, a + 1) - 1),
          to: firstAtOrAfter(to, last + 1) - 1,
        });
        switching = false;
        updateView();
      });
    };
    const updateView = (given) => {
      if (switching) return;
      const ts = chart.timeScale();
      const range = given || ts.getVisibleLogicalRange();
      if (!range) return;
      const width = ts.width() || chartEl.clientWidth || 1;
      const spacing = width / Math.max(1, range.to - range.from);
      if (detail) {
        const barPx = mode === 'merged' ? spacing / c.aggregation.barsPerCandle : spacing;
        const want =
          mode === 'merged'
            ? barPx >= DETAIL_ENTER_PX
              ? 'own'
              : 'merged'
            : barPx < DETAIL_LEAVE_PX
              ? 'merged'
              : 'own';
        if (want !== mode) {
          switchTo(want, range);
          return;
        }
      }
      let g = 1;
      while (g * spacing < MIN_MARKER_PX && g < 1 << 20) g *= 2;
      if (g !== group || markersMode !== mode) {
        markerApi.setMarkers(
          mode === 'own' ? markerList(detail.markers, decodeDetail().indexOf, g) : markerList(c.markers, indexOf, g),
        );
        group = g;
        markersMode = mode;
      }
      const unit = mode === 'own' ? `${detail.timeframe} bars` : 'candles';
      if (hintEl)
        hintEl.textContent =
          mode === 'own'
            ? `Zoomed in: the ${detail.timeframe} bars themselves; equity and indicator lines stay at ${c.aggregation.timeframe || 'merged-candle'} points.`
            : g > 1
              ? `Each arrow stands for the fills of ${g} ${unit} (the number counts them): zoom in (scroll or drag) or click a trade to see them one by one.`
              : detail
                ? `Zoom in further to see the ${detail.timeframe} bars themselves.`
                : '';
      const root = document.documentElement.dataset;
      root.markers = 'on';
      root.markerGroup = String(g);
      root.bars = mode;
    };
    // The strategy's own lines: 'price' ones over the candles, each other panel in a pane of its
    // own under them (in the order the strategy declared them), then equity and drawdown.
    const plots = c.plots || [];
    const panels = [];
    for (const p of plots) if (p.panel !== 'price' && panels.indexOf(p.panel) < 0) panels.push(p.panel);
    const PLOT_COLOURS = ['#f59e0b', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16', '#64748b', '#ef4444', '#14b8a6'];
    const lineData = (values, times = c.candles.time) => {
      const out = new Array(times.length);
      for (let i = 0; i < times.length; i++) {
        const v = values[i];
        out[i] = v === null || v === undefined ? { time: times[i] } : { time: times[i], value: v };
      }
      return out;
    };
    const plotSeries = plots.map((p, k) => {
      const pane = p.panel === 'price' ? 0 : 1 + panels.indexOf(p.panel);
      const line = chart.addSeries(
        LWC.LineSeries,
        {
          color: PLOT_COLOURS[k % PLOT_COLOURS.length],
          lineWidth: 1,
          title: p.name,
          priceLineVisible: false,
          lastValueVisible: false,
          crosshairMarkerVisible: false,
          ...(p.panel === 'price' ? { priceFormat: { type: 'price', precision: pd, minMove: 10 ** -pd } } : {}),
        },
        pane,
      );
      line.setData(lineData(p.values));
      return line;
    });
    const equityPane = 1 + panels.length;
    const equity = chart.addSeries(
      LWC.LineSeries,
      {
        color: css('--accent'),
        lineWidth: 2,
        title: 'Equity',
        priceLineVisible: false,
        priceFormat: { type: 'price', precision: 2, minMove: 0.01 },
      },
      equityPane,
    );
    equity.setData(equityData);
    let bh = null;
    if (c.benchmark) {
      bh = chart.addSeries(
        LWC.LineSeries,
        {
          color: css('--muted'),
          lineWidth: 1,
          lineStyle: LWC.LineStyle.Dashed,
          title: 'Buy and hold',
          priceLineVisible: false,
          crosshairMarkerVisible: false,
          priceFormat: { type: 'price', precision: 2, minMove: 0.01 },
        },
        equityPane,
      );
      bh.setData(lineData(c.benchmark));
    }
    // The risk engine on the equity curve: account-wide halts (labelled squares) and their resumes
    // (labelled circles); locks on one market and their ends as small unlabelled dots (they can
    // be many: the risk card lists them).
    const riskMarkers = (c.riskMarkers || []).map((m) =>
      m[1] === 2 || m[1] === 0
        ? {
            time: m[0],
            position: 'aboveBar',
            shape: m[1] === 2 ? 'square' : 'circle',
            color: m[1] === 2 ? down : up,
            text: m[2],
          }
        : { time: m[0], position: 'belowBar', shape: 'circle', size: 0.4, color: css('--muted') },
    );
    if (riskMarkers.length > 0) LWC.createSeriesMarkers(equity, riskMarkers);
    equity.createPriceLine({
      price: data.result.startValue,
      color: css('--muted'),
      lineWidth: 1,
      lineStyle: LWC.LineStyle.Dashed,
      axisLabelVisible: true,
      title: 'start',
    });
    const dd = chart.addSeries(
      LWC.AreaSeries,
      {
        lineColor: down,
        topColor: css('--down-soft'),
        bottomColor: css('--down-soft'),
        lineWidth: 1,
        title: 'Drawdown',
        priceLineVisible: false,
        invertFilledArea: true,
        priceFormat: { type: 'custom', minMove: 0.01, formatter: (v) => `${v.toFixed(2)}%` },
      },
      equityPane + 1,
    );
    dd.setData(ddData);
    const panes = chart.panes();
    if (panes[0]) panes[0].setStretchFactor(3);
    for (let k = 1; k < equityPane; k++) if (panes[k]) panes[k].setStretchFactor(0.9);
    if (panes[equityPane]) panes[equityPane].setStretchFactor(1.3);
    if (panes[equityPane + 1]) panes[equityPane + 1].setStretchFactor(0.9);
    chart.timeScale().fitContent();
    // A read-only handle on what is drawn, for the browser tests and for a curious reader's console.
    window.keelReport = {
      chart,
      series: { candles, volume, plots: plotSeries, equity, benchmark: bh, drawdown: dd },
      markers: () => markerApi.markers(),
      mode: () => mode,
    };
    updateView();
    chart.timeScale().subscribeVisibleLogicalRangeChange(updateView);

    const quote = data.chart.currency || '';
    // The legend of candle i; zoomed in to the bars themselves, of bar k, with the lines' values at
    // the merged candle holding it (the lines keep the merged candles' points).
    const showLegend = (i, k) => {
      if (!legendEl) return;
      legendEl.textContent = '';
      if (i === undefined) return;
      const bar = k === undefined ? null : raw.candles[k];
      const time = bar ? bar.time : c.candles.time[i];
      const add = legendAdder(legendEl);
      const o = bar ? bar.open : c.candles.open[i];
      const cl = bar ? bar.close : c.candles.close[i];
      add('', `${isoShort(time * 1000)} UTC`);
      add('O', fmtPrice(o));
      add('H', fmtPrice(bar ? bar.high : c.candles.high[i]));
      add('L', fmtPrice(bar ? bar.low : c.candles.low[i]));
      add('C', fmtPrice(cl), signClass(cl - o));
      add('Vol', fmt(bar ? raw.volume[k].value : c.candles.volume[i], 2));
      for (const p of plots) add(p.name, p.panel === 'price' ? fmtPrice(p.values[i]) : fmt(p.values[i], 2));
      add('Equity', `${fmt(c.equity[i], 2)} ${quote}`.trim());
      if (c.benchmark) add('Buy and hold', `${fmt(c.benchmark[i], 2)} ${quote}`.trim());
      add('DD', `${fmt(c.drawdown[i], 2)} %`, c.drawdown[i] < 0 ? 'neg' : '');
      addFills(add, (bar ? raw.fillsAt : fillsAt).get(time));
    };
    // The merged candle holding time t: the last one that opens at or before it.
    const candleAt = (t) => {
      let lo = 0;
      let hi = n;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (c.candles.time[mid] <= t) lo = mid + 1;
        else hi = mid;
      }
      return Math.max(0, lo - 1);
    };
    showLegend(n - 1);
    chart.subscribeCrosshairMove((p) => {
      if (!p || p.time === undefined) return showLegend(n - 1);
      if (mode === 'own') {
        const k = raw.indexOf.get(p.time);
        if (k !== undefined) return showLegend(candleAt(p.time), k);
      }
      const i = indexOf.get(p.time);
      showLegend(i === undefined ? n - 1 : i);
    });
    // ---- one panel per other market of a run over several -------------------------------------
    // Its candles, its fills (merged as on the main chart) and the lines the strategy plots for it.
    const pairCharts = (c.pairs || []).map((p, k) => {
      const el2 = document.getElementById(`pair-chart-${k}`);
      const legend2 = document.getElementById(`pair-legend-${k}`);
      if (!el2 || p.candles.time.length === 0) return null;
      const m = p.candles.time.length;
      const pPanels = [];
      for (const l of p.plots) if (l.panel !== 'price' && pPanels.indexOf(l.panel) < 0) pPanels.push(l.panel);
      el2.style.height = `${320 + 110 * pPanels.length}px`;
      const ch = LWC.createChart(el2, {
        autoSize: true,
        ...theme(),
        crosshair: { mode: LWC.CrosshairMode.Normal },
        timeScale: { borderColor: css('--border'), timeVisible: true, minBarSpacing: 0.05 },
      });
      const ppd = priceDecimals(p.candles.close[m - 1]);
      const data2 = new Array(m);
      const idx2 = new Map();
      for (let i = 0; i < m; i++) {
        const time = p.candles.time[i];
        idx2.set(time, i);
        data2[i] = {
          time,
          open: p.candles.open[i],
          high: p.candles.high[i],
          low: p.candles.low[i],
          close: p.candles.close[i],
        };
      }
      const cs = ch.addSeries(LWC.CandlestickSeries, candleOptions(ppd), 0);
      cs.setData(data2);
      const lines = p.plots.map((l, j) => {
        const s2 = ch.addSeries(
          LWC.LineSeries,
          {
            color: PLOT_COLOURS[j % PLOT_COLOURS.length],
            lineWidth: 1,
            title: l.name,
            priceLineVisible: false,
            lastValueVisible: false,
            crosshairMarkerVisible: false,
          },
          l.panel === 'price' ? 0 : 1 + pPanels.indexOf(l.panel),
        );
        s2.setData(lineData(l.values, p.candles.time));
        return s2;
      });
      const mk = LWC.createSeriesMarkers(cs, []);
      let g2 = 0;
      const update2 = () => {
        const r = ch.timeScale().getVisibleLogicalRange();
        if (!r) return;
        const spacing = (ch.timeScale().width() || el2.clientWidth || 1) / Math.max(1, r.to - r.from);
        let g = 1;
        while (g * spacing < MIN_MARKER_PX && g < 1 << 20) g *= 2;
        if (g === g2) return;
        g2 = g;
        mk.setMarkers(markerList(p.markers, idx2, g));
        el2.dataset.markerGroup = String(g);
      };
      ch.timeScale().fitContent();
      update2();
      ch.timeScale().subscribeVisibleLogicalRangeChange(update2);
      const fills2 = byTime(p.markers);
      const legendAt = (i) => {
        if (!legend2) return;
        legend2.textContent = '';
        const add = legendAdder(legend2);
        add('', `${isoShort(p.candles.time[i] * 1000)} UTC`);
        add('O', fmtPrice(p.candles.open[i]));
        add('H', fmtPrice(p.candles.high[i]));
        add('L', fmtPrice(p.candles.low[i]));
        add('C', fmtPrice(p.candles.close[i]), signClass(p.candles.close[i] - p.candles.open[i]));
        for (const l of p.plots) add(l.name, l.panel === 'price' ? fmtPrice(l.values[i]) : fmt(l.values[i], 2));
        addFills(add, fills2.get(p.candles.time[i]));
      };
      legendAt(m - 1);
      ch.subscribeCrosshairMove((q) => {
        const i = q && q.time !== undefined ? idx2.get(q.time) : undefined;
        legendAt(i === undefined ? m - 1 : i);
      });
      return { chart: ch, series: { candles: cs, plots: lines }, markers: () => mk.markers() };
    });
    window.keelReport.pairs = pairCharts;

    const mq = window.matchMedia ? window.matchMedia('(prefers-color-scheme: dark)') : null;
    if (mq?.addEventListener)
      mq.addEventListener('change', () => {
        chart.applyOptions(theme());
        for (const p of pairCharts) if (p) p.chart.applyOptions(theme());
      });
  } else if (chartEl) {
    chartEl.style.height = 'auto';
    chartEl.appendChild(
      el('div', { class: 'empty' }, LWC ? 'No bars in this run: nothing to chart.' : 'The chart library did not load.'),
    );
  }

  // ---- trade list ----------------------------------------------------------------------------
  const t = data.trades;
  const body = document.getElementById('trades-body');
  if (!t || !body) return;
  const COLUMNS = [
    'n',
    'symbol',
    'direction',
    'entryTime',
    'exitTime',
    'entryPrice',
    'exitPrice',
    'size',
    'fees',
    'pnlNet',
    'returnPct',
  ];
  const COL = {};
  COLUMNS.forEach((name, i) => {
    COL[name] = i;
  });
  // Decode the compact columns (see tradeColumns in html.ts) into one array per trade.
  const rows = new Array(t.count);
  let entry = 0;
  for (let i = 0; i < t.count; i++) {
    entry += t.entryDelta[i] * t.timeUnitMs;
    rows[i] = [
      i + 1,
      t.symbol ? t.symbol[i] : 0,
      t.direction[i],
      entry,
      entry + t.held[i] * t.timeUnitMs,
      t.entryPrice[i],
      t.exitPrice[i],
      t.size[i],
      t.fees[i],
      t.pnlNet[i],
      t.returnPct[i],
    ];
  }
  const state = { key: 'n', asc: true, filter: 'all', page: 0, size: 50 };
  const filterEl = document.getElementById('trades-filter');
  const sizeEl = document.getElementById('trades-size');
  const infoEl = document.getElementById('trades-info');
  const prevEl = document.getElementById('trades-prev');
  const nextEl = document.getElementById('trades-next');
  const firstEl = document.getElementById('trades-first');
  const lastEl = document.getElementById('trades-last');
  const headers = document.querySelectorAll('table.trades th[data-key]');
  const multiSymbol = t.symbols.length > 1;

  const filtered = () => {
    const f = state.filter;
    const dir = COL.direction;
    const pnl = COL.pnlNet;
    const out =
      f === 'all'
        ? rows.slice()
        : rows.filter((r) =>
            f === 'long' ? r[dir] > 0 : f === 'short' ? r[dir] < 0 : f === 'win' ? r[pnl] > 0 : r[pnl] <= 0,
          );
    const k = state.key === 'duration' ? null : COL[state.key];
    const val = (r) => (k === null ? r[COL.exitTime] - r[COL.entryTime] : r[k]);
    out.sort((a, b) => {
      const d = val(a) - val(b) || a[COL.n] - b[COL.n];
      return state.asc ? d : -d;
    });
    return out;
  };

  const td = (text, cls) => el('td', cls ? { class: cls } : undefined, text);
  const render = () => {
    const list = filtered();
    const pages = Math.max(1, Math.ceil(list.length / state.size));
    if (state.page >= pages) state.page = pages - 1;
    const from = state.page * state.size;
    const slice = list.slice(from, from + state.size);
    const frag = document.createDocumentFragment();
    for (const r of slice) {
      const tr = el('tr');
      tr.dataset.entry = String(r[COL.entryTime]);
      tr.dataset.exit = String(r[COL.exitTime]);
      tr.dataset.n = String(r[COL.n]);
      tr.dataset.entryPrice = String(r[COL.entryPrice]);
      tr.dataset.exitPrice = String(r[COL.exitPrice]);
      tr.appendChild(td(String(r[COL.n]), 'num muted'));
      if (multiSymbol) tr.appendChild(td(t.symbols[r[COL.symbol]]));
      const dcell = el('td');
      const long = r[COL.direction] > 0;
      dcell.appendChild(el('span', { class: `dir ${long ? 'long' : 'short'}` }, long ? 'long' : 'short'));
      tr.appendChild(dcell);
      tr.appendChild(td(iso(r[COL.entryTime]), 'mono'));
      tr.appendChild(td(iso(r[COL.exitTime]), 'mono'));
      tr.appendChild(td(duration(r[COL.exitTime] - r[COL.entryTime]), 'num'));
      tr.appendChild(td(fmtPrice(r[COL.entryPrice]), 'num'));
      tr.appendChild(td(fmtPrice(r[COL.exitPrice]), 'num'));
      tr.appendChild(td(fmtAmount(r[COL.size]), 'num'));
      tr.appendChild(td(fmt(r[COL.fees], 2), 'num'));
      tr.appendChild(td(fmt(r[COL.pnlNet], 2), `num ${signClass(r[COL.pnlNet])}`));
      tr.appendChild(td(`${fmt(r[COL.returnPct], 2)} %`, `num ${signClass(r[COL.returnPct])}`));
      frag.appendChild(tr);
    }
    body.textContent = '';
    body.appendChild(frag);
    if (slice.length === 0) {
      const tr = el('tr');
      tr.appendChild(
        el(
          'td',
          { colspan: String(multiSymbol ? 12 : 11), class: 'empty' },
          rows.length === 0 ? 'No closed trades.' : 'No trades match the filter.',
        ),
      );
      body.appendChild(tr);
    }
    if (infoEl)
      infoEl.textContent =
        list.length === 0
          ? `0 of ${nf(0).format(rows.length)} trades`
          : `${nf(0).format(from + 1)}–${nf(0).format(from + slice.length)} of ${nf(0).format(list.length)} trades · page ${state.page + 1} of ${pages}`;
    if (prevEl) prevEl.disabled = state.page === 0;
    if (firstEl) firstEl.disabled = state.page === 0;
    if (nextEl) nextEl.disabled = state.page >= pages - 1;
    if (lastEl) lastEl.disabled = state.page >= pages - 1;
    headers.forEach((h) => {
      const on = h.getAttribute('data-key') === state.key;
      h.classList.toggle('sorted', on);
      h.classList.toggle('asc', on && state.asc);
    });
  };

  headers.forEach((h) => {
    h.addEventListener('click', () => {
      const key = h.getAttribute('data-key');
      if (state.key === key) state.asc = !state.asc;
      else {
        state.key = key;
        state.asc = key === 'n' || key === 'entryTime' || key === 'exitTime';
      }
      state.page = 0;
      render();
    });
  });
  if (filterEl)
    filterEl.addEventListener('change', () => {
      state.filter = filterEl.value;
      state.page = 0;
      render();
    });
  if (sizeEl)
    sizeEl.addEventListener('change', () => {
      state.size = Number(sizeEl.value) || 50;
      state.page = 0;
      render();
    });
  const go = (p) => () => {
    state.page = p(state.page);
    if (state.page < 0) state.page = 0;
    render();
  };
  if (prevEl)
    prevEl.addEventListener(
      'click',
      go((p) => p - 1),
    );
  if (nextEl)
    nextEl.addEventListener(
      'click',
      go((p) => p + 1),
    );
  if (firstEl)
    firstEl.addEventListener(
      'click',
      go(() => 0),
    );
  if (lastEl)
    lastEl.addEventListener(
      'click',
      go(() => Number.MAX_SAFE_INTEGER),
    );
  // A click on a trade zooms the chart to it, with some context on either side.
  body.addEventListener('click', (ev) => {
    const tr = ev.target?.closest ? ev.target.closest('tr[data-entry]') : null;
    if (!tr || !chart) return;
    const a = Number(tr.dataset.entry) / 1000;
    const b = Number(tr.dataset.exit) / 1000;
    // Enough context to read the trade: with the bars embedded, about 60 of them (the chart then
    // draws the bars themselves); otherwise 30 candles.
    const pad = Math.max((b - a) * 1.5, c.detail ? c.detail.step * 60 : (c.candleSeconds || 60) * 30);
    chart.timeScale().setVisibleRange({ from: a - pad, to: b + pad });
    // Dashed lines at the trade's entry and exit prices mark which trade is on show.
    for (const l of tradeLines) candleSeries.removePriceLine(l);
    const line = (price, title) =>
      candleSeries.createPriceLine({
        price,
        color: css('--accent'),
        lineWidth: 1,
        lineStyle: LWC.LineStyle.Dashed,
        axisLabelVisible: true,
        title,
      });
    tradeLines = [
      line(Number(tr.dataset.entryPrice), `#${tr.dataset.n} entry`),
      line(Number(tr.dataset.exitPrice), `#${tr.dataset.n} exit`),
    ];
    chartEl.scrollIntoView({ behavior: 'smooth', block: 'center' });
  });
  render();
})();
