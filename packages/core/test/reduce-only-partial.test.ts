/**
 * A reduce-only order that fills in parts (volume-share slippage: at most `participation` of a
 * bar's volume per bar) keeps working until it fills or the position is closed, as Binance keeps a
 * partly filled reduce-only order open (docs/conventions.md). Fills computed by hand: participation
 * 0.1 with no price impact, a resting limit fills at its price as maker (or at the open when a
 * later bar opens at it).
 */
import { describe, expect, it } from 'vitest';
import { type ClientOrderId, type FuturesMarketSettings, runBacktest, volumeShareSlippage } from '../src/index.ts';
import { bars, scripted, T0 } from './helpers.ts';

const PERP = 'LINK/USDT:USDT';
const MIN = 60_000;
const futures = (): FuturesMarketSettings => ({ leverage: 2, marginMode: 'cross', funding: null });

function run(entry: number) {
  let tp = '' as ClientOrderId;
  const r = runBacktest({
    strategy: scripted({
      0: (ctx) => void ctx.buy(entry),
      1: (ctx) => {
        tp = ctx.submit({ type: 'limit', side: 'sell', amount: 10, price: 105, reduceOnly: true });
      },
    }),
    data: [
      {
        symbol: PERP,
        timeframe: '1m',
        instrument: { tickSize: 0.001, stepSize: 1 },
        series: bars([
          [100, 100, 100, 100, 100],
          // Capacity 10: the entry fills whole at the open, 100.
          [100, 100, 100, 100, 100],
          // Reaches 105: capacity 3 fills 3 of the take-profit at 105 (maker).
          [100, 106, 100, 105, 30],
          // Opens at 105: capacity 3 again, at the open.
          [105, 106, 104, 105, 30],
          // Capacity 10: the rest.
          [105, 106, 104, 105, 100],
          [105, 105, 105, 105, 100],
        ]),
      },
    ],
    cash: 10_000,
    futures,
    slippage: volumeShareSlippage(0.1, 0),
  });
  return { r, tp: r.orders.find((o) => o.request.id === tp)! };
}

describe('a reduce-only order filled in parts', () => {
  it('keeps working while the position is open: 3 + 3 + 4 of a long of 10, then filled', () => {
    const { r, tp } = run(10);
    expect(r.fills.filter((f) => f.side === 'sell').map((f) => [f.amount, f.price, f.time])).toEqual([
      [3, 105, T0 + 3 * MIN],
      [3, 105, T0 + 4 * MIN],
      [4, 105, T0 + 5 * MIN],
    ]);
    expect(tp.status).toBe('filled');
    expect(tp.filled).toBe(10);
    expect(r.portfolio.positions.find((p) => p.symbol === PERP)?.size ?? 0).toBe(0);
  });

  it('expires once the position is closed, and only then: 3, then the 2 still held, of a long of 5', () => {
    const { r, tp } = run(5);
    expect(r.fills.filter((f) => f.side === 'sell').map((f) => [f.amount, f.price, f.time])).toEqual([
      [3, 105, T0 + 3 * MIN],
      [2, 105, T0 + 4 * MIN],
    ]);
    // As Binance USDⓈ-M expires the rest of a reduce-only order whose position it closed.
    expect(tp.status).toBe('expired');
    expect(tp.filled).toBe(5);
    expect(tp.reason).toBe('reduce-only: expired with 5 of 10 filled (the position it reduces was closed)');
    expect(r.portfolio.positions.find((p) => p.symbol === PERP)?.size ?? 0).toBe(0);
  });
});
