/**
 * Binance USD-M (one-way mode) expires a resting reduce-only order as soon as the position it
 * reduces is closed ("expired due to current position has been closed"); the futures simulator
 * and a live bot do the same (docs/live.md), so a backtest must too: otherwise a take-profit left
 * from a closed position fills against the next one in the backtest and never live. Bars and
 * fills by hand: market orders fill at the next bar's open, a resting limit at its price.
 */
import { describe, expect, it } from 'vitest';
import { type ClientOrderId, type FuturesMarketSettings, runBacktest } from '../src/index.ts';
import { bars, scripted, T0 } from './helpers.ts';

const PERP = 'LINK/USDT:USDT';
const MIN = 60_000;
const futures = (): FuturesMarketSettings => ({ leverage: 2, marginMode: 'cross', funding: null });

function run(symbol: string) {
  let tp = '' as ClientOrderId;
  const r = runBacktest({
    strategy: scripted({
      0: (ctx) => void ctx.buy(10),
      1: (ctx) => {
        tp = ctx.submit({ type: 'limit', side: 'sell', amount: 10, price: 110, reduceOnly: true });
      },
      2: (ctx) => void ctx.close(),
      4: (ctx) => void ctx.buy(10),
    }),
    data: [
      {
        symbol,
        timeframe: '1m',
        instrument: { tickSize: 0.001, stepSize: 1 },
        series: bars([
          [100, 100, 100, 100, 100],
          [100, 101, 99, 100, 100], // bar 1: the long of 10 fills at 100
          [100, 101, 99, 100, 100], // bar 2: the take-profit rests (arrives here)
          [101, 102, 100, 101, 100], // bar 3: the close fills at 101: flat
          [101, 102, 100, 101, 100],
          [102, 103, 101, 102, 100], // bar 5: a new long of 10 at 102
          [102, 111, 101, 110, 100], // bar 6: reaches the old take-profit's 110
          [110, 110, 110, 110, 100],
        ]),
      },
    ],
    cash: 10_000,
    ...(symbol === PERP ? { futures } : {}),
  });
  return { r, tp: r.orders.find((o) => o.request.id === tp)! };
}

describe('a resting reduce-only order on a perpetual whose position is closed', () => {
  it('expires when the close fills (bar 3), so it never fills against the next position', () => {
    const { r, tp } = run(PERP);
    expect(tp.status).toBe('expired');
    expect(tp.reason).toBe('reduce-only: expired with 0 of 10 filled (the position it reduces was closed)');
    expect(r.fills.map((f) => [f.side, f.amount, f.price])).toEqual([
      ['buy', 10, 100],
      ['sell', 10, 101],
      ['buy', 10, 102],
    ]);
    // At the close's fill (the venue reports at the bar's close time), not later.
    expect(tp.updatedAt).toBe(r.fills[1]?.time);
    expect(tp.updatedAt).toBe(T0 + 4 * MIN);
    // The second long is still held at the end: nothing sold it at 110.
    expect(r.portfolio.positions.find((p) => p.symbol === PERP)?.size).toBe(10);
  });

  it('spot keeps it (Binance spot has no reduce-only: Keel checks it locally, at the fill)', () => {
    const { r, tp } = run('LINK/USDT');
    expect(tp.status).toBe('filled');
    expect(r.fills.map((f) => [f.side, f.amount, f.price])).toEqual([
      ['buy', 10, 100],
      ['sell', 10, 101],
      ['buy', 10, 102],
      ['sell', 10, 110],
    ]);
  });
});

describe('IOC and FOK orders that cannot fill at once, spot and perpetual', () => {
  // As Binance: spot expires both (EXPIRED); USD-M expires the IOC and refuses the FOK (-5021).
  function unfilled(symbol: string) {
    let ioc = '' as ClientOrderId;
    let fok = '' as ClientOrderId;
    const r = runBacktest({
      strategy: scripted({
        0: (ctx) => {
          ioc = ctx.submit({ type: 'limit', side: 'buy', amount: 1, price: 90, timeInForce: 'IOC' });
          fok = ctx.submit({ type: 'limit', side: 'buy', amount: 1, price: 90, timeInForce: 'FOK' });
        },
      }),
      data: [
        {
          symbol,
          timeframe: '1m',
          instrument: { tickSize: 0.001, stepSize: 1 },
          series: bars([
            [100, 100, 100, 100, 100],
            [100, 101, 99, 100, 100],
          ]),
        },
      ],
      cash: 10_000,
      ...(symbol === PERP ? { futures } : {}),
    });
    const of = (id: ClientOrderId) => r.orders.find((o) => o.request.id === id)!;
    return { ioc: of(ioc), fok: of(fok) };
  }

  it('spot: both expire, each saying why', () => {
    const { ioc, fok } = unfilled('LINK/USDT');
    expect([ioc.status, ioc.reason]).toEqual([
      'expired',
      'IOC: expired with 0 of 1 filled (the rest could not fill at once)',
    ]);
    expect([fok.status, fok.reason]).toEqual([
      'expired',
      'FOK: expired with 0 of 1 filled (the whole amount could not fill at once)',
    ]);
  });

  it('perpetual: the IOC expires, the FOK is refused', () => {
    const { ioc, fok } = unfilled(PERP);
    expect(ioc.status).toBe('expired');
    expect([fok.status, fok.reason]).toEqual(['rejected', 'FOK: refused, it could not fill at once in full']);
  });
});
