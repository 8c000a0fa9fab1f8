import { type BarSeries, barSeries, SeededRng } from '@keel/core';

/**
 * A clearly labelled SYNTHETIC market (geometric Brownian motion with volatility clusters), used
 * only when no real data is available, so the demo runs on a fresh clone with no network.
 */
export function syntheticBars(n: number, seed = 42, start = Date.UTC(2024, 0, 1), stepMs = 60_000): BarSeries {
  const rng = new SeededRng(seed);
  const gauss = () => {
    const u = Math.max(rng.next(), 1e-12);
    const v = rng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const t = new Float64Array(n);
  const o = new Float64Array(n);
  const h = new Float64Array(n);
  const l = new Float64Array(n);
  const c = new Float64Array(n);
  const v = new Float64Array(n);
  let price = 40_000;
  let vol = 0.0008;
  for (let i = 0; i < n; i++) {
    vol = Math.min(0.004, Math.max(0.0003, vol * (1 + 0.05 * gauss())));
    const open = price;
    const close = open * Math.exp(vol * gauss());
    const hi = Math.max(open, close) * (1 + Math.abs(gauss()) * vol * 0.5);
    const lo = Math.min(open, close) * (1 - Math.abs(gauss()) * vol * 0.5);
    t[i] = start + i * stepMs;
    o[i] = round2(open);
    c[i] = round2(close);
    h[i] = Math.max(round2(hi), o[i]!, c[i]!);
    l[i] = Math.min(round2(lo), o[i]!, c[i]!);
    v[i] = round2(5 + 20 * rng.next());
    price = c[i]!;
  }
  return barSeries({ time: t, open: o, high: h, low: l, close: c, volume: v });
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
