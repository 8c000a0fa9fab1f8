import { type BarSeries, barSeries } from '../model/bar.ts';
import { SeededRng } from './rng.ts';

/** 2024-01-01T00:00:00Z in UTC ms. */
const JAN_1_2024 = 1_704_067_200_000;

export interface SyntheticBarsOptions {
  /** Seed of the generator: the same seed always gives the same bars (default 42). */
  readonly seed?: number;
  /** Open time of the first bar, UTC ms (default 2024-01-01T00:00Z). */
  readonly start?: number;
  /** Bar interval in ms (default 60,000: 1m bars). */
  readonly intervalMs?: number;
  /** Open of the first bar (default 40,000). */
  readonly price?: number;
  /** Prices are rounded to this many decimals, as an exchange's tick would (default 2). */
  readonly priceDecimals?: number;
  /** Starting per-bar volatility of log returns (default 0.0008; it then wanders in [0.0003, 0.004]). */
  readonly volatility?: number;
}

/**
 * A SYNTHETIC market, for demos and tests that run without real data: geometric Brownian motion
 * whose volatility clusters (a random walk in log volatility), so quiet and wild stretches alternate
 * as in real markets. Pure and deterministic: the randomness comes from core's seeded Rng only.
 * Every bar is consistent (low <= open, close <= high, prices > 0) and prices sit on the tick grid.
 * Whoever shows results computed on these bars must say that the market is synthetic.
 */
export function syntheticBars(count: number, opts: SyntheticBarsOptions = {}): BarSeries {
  if (!(Number.isInteger(count) && count >= 0))
    throw new Error(`syntheticBars: count must be an integer >= 0, got ${count}`);
  const rng = new SeededRng(opts.seed ?? 42);
  const start = opts.start ?? JAN_1_2024;
  const step = opts.intervalMs ?? 60_000;
  const scale = 10 ** (opts.priceDecimals ?? 2);
  const tick = 1 / scale;
  const round = (x: number): number => Math.max(tick, Math.round(x * scale) / scale);
  // Box-Muller; u is kept away from 0 so the log stays finite.
  const gauss = (): number => {
    const u = Math.max(rng.next(), 1e-12);
    const v = rng.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const time = new Float64Array(count);
  const open = new Float64Array(count);
  const high = new Float64Array(count);
  const low = new Float64Array(count);
  const close = new Float64Array(count);
  const volume = new Float64Array(count);
  let price = round(opts.price ?? 40_000);
  let vol = opts.volatility ?? 0.0008;
  for (let i = 0; i < count; i++) {
    vol = Math.min(0.004, Math.max(0.0003, vol * (1 + 0.05 * gauss())));
    const o = price;
    const c = round(o * Math.exp(vol * gauss()));
    const h = round(Math.max(o, c) * (1 + Math.abs(gauss()) * vol * 0.5));
    const l = round(Math.min(o, c) * (1 - Math.abs(gauss()) * vol * 0.5));
    time[i] = start + i * step;
    open[i] = o;
    close[i] = c;
    high[i] = Math.max(h, o, c);
    low[i] = Math.min(l, o, c);
    volume[i] = Math.round((5 + 20 * rng.next()) * 100) / 100;
    price = c;
  }
  return barSeries({ time, open, high, low, close, volume });
}
