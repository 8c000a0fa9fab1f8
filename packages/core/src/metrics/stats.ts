import { summarizeTrades, type Trade, type TradeSummary } from './trades.ts';

export interface Metrics {
  readonly startValue: number;
  readonly finalValue: number;
  readonly totalReturn: number;
  readonly cagr: number;
  readonly annualVolatility: number;
  readonly sharpe: number;
  readonly sortino: number;
  readonly calmar: number;
  readonly maxDrawdown: number;
  /** Longest time under a previous peak, in ms and bars. */
  readonly maxDrawdownDurationMs: number;
  readonly maxDrawdownDurationBars: number;
  readonly tradeCount: number;
  /** NaN with no closed trade (as profitFactor and expectancy; averageWin with no win, averageLoss with no loss). */
  readonly winRate: number;
  /** Infinity with no losing trade. */
  readonly profitFactor: number;
  readonly expectancy: number;
  readonly averageWin: number;
  readonly averageLoss: number;
  readonly exposure: number;
  readonly feesPaid: number;
  readonly turnover: number;
  readonly bars: number;
  readonly periodsPerYear: number;
}

const YEAR_MS = 365 * 86_400_000;

/**
 * Statistics from the equity curve (one value per primary bar, at its close) and the closed trades.
 * Returns are simple per-bar returns; annualisation assumes 24/7 markets (365 days). CAGR is over
 * the span the bars cover (first open to last close), gaps included.
 */
export function computeMetrics(input: {
  equity: Float64Array;
  times: Float64Array;
  exposed: Uint8Array;
  /** The closed trades, or their totals (TradeTracker.summary(): no Trade objects needed). */
  trades: readonly Pick<Trade, 'pnlNet'>[] | TradeSummary;
  startValue: number;
  barMs: number;
  feesPaid: number;
  turnover: number;
}): Metrics {
  const { equity, times, trades, startValue } = input;
  const n = equity.length;
  const finalValue = n > 0 ? (equity[n - 1] as number) : startValue;
  const periodsPerYear = YEAR_MS / input.barMs;
  let sum = 0;
  let sumSq = 0;
  let downSq = 0;
  let prev = startValue;
  let peak = startValue;
  let maxDd = 0;
  let ddStart = n > 0 ? (times[0] as number) : 0;
  let ddStartBar = 0;
  let maxDdMs = 0;
  let maxDdBars = 0;
  let exposedBars = 0;
  for (let i = 0; i < n; i++) {
    const v = equity[i] as number;
    const r = prev !== 0 ? v / prev - 1 : 0;
    sum += r;
    sumSq += r * r;
    if (r < 0) downSq += r * r;
    prev = v;
    if (v >= peak) {
      peak = v;
      ddStart = times[i] as number;
      ddStartBar = i;
    } else {
      const dd = (peak - v) / peak;
      if (dd > maxDd) maxDd = dd;
      const dur = (times[i] as number) - ddStart;
      if (dur > maxDdMs) maxDdMs = dur;
      if (i - ddStartBar > maxDdBars) maxDdBars = i - ddStartBar;
    }
    if (input.exposed[i]) exposedBars++;
  }
  const mean = n > 0 ? sum / n : 0;
  const variance = n > 1 ? Math.max(0, (sumSq - n * mean * mean) / (n - 1)) : 0;
  const std = Math.sqrt(variance);
  const downside = n > 0 ? Math.sqrt(downSq / n) : 0;
  // The real time the bars cover (first open to last close), not their count times the bar length:
  // the two differ by the gaps in the data, and a CAGR over "n bars" of a gappy series overstates.
  const years = n > 0 ? ((times[n - 1] as number) - (times[0] as number) + input.barMs) / YEAR_MS : 0;
  const totalReturn = startValue > 0 ? finalValue / startValue - 1 : 0;
  const cagr = years > 0 && finalValue > 0 ? (finalValue / startValue) ** (1 / years) - 1 : years > 0 ? -1 : 0;
  const sharpe = std > 0 ? (mean / std) * Math.sqrt(periodsPerYear) : 0;
  const sortino = downside > 0 ? (mean / downside) * Math.sqrt(periodsPerYear) : 0;
  const { count, wins, grossWin, grossLoss, net } =
    'count' in trades ? trades : summarizeTrades(trades.length, (i) => (trades[i] as Pick<Trade, 'pnlNet'>).pnlNet);
  const losses = count - wins;
  return {
    startValue,
    finalValue,
    totalReturn,
    cagr,
    annualVolatility: std * Math.sqrt(periodsPerYear),
    sharpe,
    sortino,
    calmar: maxDd > 0 ? cagr / maxDd : 0,
    maxDrawdown: maxDd,
    maxDrawdownDurationMs: maxDdMs,
    maxDrawdownDurationBars: maxDdBars,
    tradeCount: count,
    // Undefined without the trades they average (NaN: "n/a" in the summary, null in JSON), not 0:
    // a run with no trade did not lose them all.
    winRate: count > 0 ? wins / count : Number.NaN,
    profitFactor: profitFactor(count, grossWin, grossLoss),
    expectancy: count > 0 ? net / count : Number.NaN,
    averageWin: wins > 0 ? grossWin / wins : Number.NaN,
    averageLoss: losses > 0 ? -grossLoss / losses : Number.NaN,
    exposure: n > 0 ? exposedBars / n : 0,
    feesPaid: input.feesPaid,
    turnover: startValue > 0 ? input.turnover / startValue : 0,
    bars: n,
    periodsPerYear,
  };
}

/** Gross win / gross loss of closed trades: Infinity with no loss, NaN with no trade. */
export function profitFactor(count: number, grossWin: number, grossLoss: number): number {
  if (count === 0) return Number.NaN;
  return grossLoss > 0 ? grossWin / grossLoss : grossWin > 0 ? Number.POSITIVE_INFINITY : 0;
}
