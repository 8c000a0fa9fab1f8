import { describe, expect, it } from 'vitest';
import { computeMetrics, defineInstrument, type Trade, TradeTracker } from '../src/index.ts';

const trade = (pnlNet: number): Trade => ({
  symbol: 'BTC/USDT',
  direction: 'long',
  entryTime: 0,
  exitTime: 1,
  entryPrice: 100,
  exitPrice: 100 + pnlNet,
  size: 1,
  pnlGross: pnlNet,
  fees: 0,
  pnlNet,
  returnPct: pnlNet,
  entryOrderId: 'a',
  exitOrderId: 'b',
});

describe('metrics (hand-computed oracle)', () => {
  const day = 86_400_000;
  const equity = Float64Array.from([100, 110, 99, 121, 121]);
  const times = Float64Array.from([1, 2, 3, 4, 5].map((i) => i * day));
  const m = computeMetrics({
    equity,
    times,
    exposed: Uint8Array.from([1, 1, 0, 1, 0]),
    trades: [trade(10), trade(-5), trade(20), trade(-5)],
    startValue: 100,
    barMs: day,
    feesPaid: 3,
    turnover: 500,
  });

  it('returns, drawdown and its duration', () => {
    expect(m.totalReturn).toBeCloseTo(0.21, 12);
    expect(m.maxDrawdown).toBeCloseTo((110 - 99) / 110, 12);
    expect(m.maxDrawdownDurationMs).toBe(day); // from the 110 peak (day 2) to the trough (day 3); recovered on day 4
    expect(m.maxDrawdownDurationBars).toBe(1);
  });

  it('trade statistics', () => {
    expect(m.tradeCount).toBe(4);
    expect(m.winRate).toBe(0.5);
    expect(m.profitFactor).toBe(3);
    expect(m.expectancy).toBe(5);
    expect(m.averageWin).toBe(15);
    expect(m.averageLoss).toBe(-5);
    expect(m.exposure).toBe(0.6);
    expect(m.turnover).toBe(5);
  });

  it('Sharpe and volatility from per-bar returns, annualised over 365 days', () => {
    const r = [0.1, 99 / 110 - 1, 121 / 99 - 1, 0];
    const r0 = [100 / 100 - 1, ...r];
    const mean = r0.reduce((a, b) => a + b) / r0.length;
    const sd = Math.sqrt(r0.reduce((a, b) => a + (b - mean) ** 2, 0) / (r0.length - 1));
    expect(m.sharpe).toBeCloseTo((mean / sd) * Math.sqrt(365), 9);
    expect(m.annualVolatility).toBeCloseTo(sd * Math.sqrt(365), 9);
    const years = 5 / 365;
    expect(m.cagr).toBeCloseTo(1.21 ** (1 / years) - 1, 6);
    expect(m.calmar).toBeCloseTo(m.cagr / m.maxDrawdown, 9);
  });
});

describe('annualised metrics over the real time span (hand-computed)', () => {
  it('a gap in the bars lengthens the span CAGR is taken over: two daily bars a year apart are a year, not two days', () => {
    const day = 86_400_000;
    // Bar closes at day 1 and day 366: the bars cover 366 days (first open at day 0).
    const m = computeMetrics({
      equity: Float64Array.from([100, 121]),
      times: Float64Array.from([day, 366 * day]),
      exposed: Uint8Array.from([1, 1]),
      trades: [],
      startValue: 100,
      barMs: day,
      feesPaid: 0,
      turnover: 0,
    });
    expect(m.cagr).toBeCloseTo(1.21 ** (365 / 366) - 1, 12);
    // Counting bars instead would give 2 days: 1.21^(365/2) - 1, about 1e15.
    expect(m.cagr).toBeLessThan(1);
  });
});

describe('TradeTracker: fills as the account books them', () => {
  const btc = defineInstrument({ symbol: 'BTC/USDT', stepSize: 0.001 });
  it('a spot buy whose fee is paid in BTC holds less than it bought; an exit leaving less than a step closes the trade', () => {
    const t = new TradeTracker([btc]);
    // Bought 0.01, 0.00001 BTC paid as the fee: 0.00999 held; the exit, rounded down to the
    // 0.001 step, sells 0.009 and leaves 0.00099, which cannot be sold.
    t.fill('BTC/USDT', 'buy', 40_000, 0.01, 0.00001, 'BTC', 1, 'a');
    expect(t.openTrades()[0]?.size).toBeCloseTo(0.00999, 12);
    t.fill('BTC/USDT', 'sell', 41_000, 0.009, 0.369, 'USDT', 2, 'b');
    expect(t.openTrades()).toEqual([]);
    expect(t.closed).toHaveLength(1);
    expect(t.closed[0]).toMatchObject({ size: 0.00999, entryPrice: 40_000, exitPrice: 41_000, exitOrderId: 'b' });
    expect(t.closed[0]!.fees).toBeCloseTo(0.00001 * 40_000 + 0.369, 12);
    // One step left is still a position: the trade stays open until it is sold.
    const u = new TradeTracker([btc]);
    u.fill('BTC/USDT', 'buy', 40_000, 0.01, 0, 'USDT', 1, 'c');
    u.fill('BTC/USDT', 'sell', 41_000, 0.009, 0, 'USDT', 2, 'd');
    expect(u.openTrades()[0]?.size).toBeCloseTo(0.001, 12);
    expect(u.closed).toHaveLength(0);
  });
});
