import { describe, expect, it } from 'vitest';
import { type BacktestConfig, fixedBpsSlippage, runBacktest, volumeShareSlippage } from '../src/index.ts';
import { at, bars, scripted } from './helpers.ts';

// Oracle: the documented fill conventions (docs/conventions.md), computed by hand per bar.
const run = (
  series: ReturnType<typeof bars>,
  strategy: BacktestConfig['strategy'],
  extra: Partial<BacktestConfig> = {},
) =>
  runBacktest({
    strategy,
    data: [{ symbol: 'BTC/USDT', timeframe: '1m', series }],
    cash: 10_000,
    fee: 0.001,
    ...extra,
  });

const up = [100, 101, 99, 100.5];

describe('simulated venue', () => {
  it('a market order decided on bar t fills at bar t+1 open, taker fee = rate x notional', () => {
    const r = run(bars([up, [102, 103, 101, 102.5], up]), scripted(at(0, { type: 'market', side: 'buy', amount: 1 })));
    expect(r.fills).toHaveLength(1);
    expect(r.fills[0]).toMatchObject({ price: 102, amount: 1, liquidity: 'taker' });
    expect(r.fills[0]!.fee).toBe(1 * 0.001 * 102);
    expect(r.finalCash).toBeCloseTo(10_000 - 102 - 0.102, 10);
  });

  it('latencyBars=2 fills one bar later', () => {
    const r = run(
      bars([up, [102, 103, 101, 102.5], [104, 105, 103, 104]]),
      scripted(at(0, { type: 'market', side: 'buy', amount: 1 })),
      { latencyBars: 2 },
    );
    expect(r.fills[0]!.price).toBe(104);
  });

  it('a resting buy limit fills at its price as maker when the low reaches it; a gap below fills at the open', () => {
    const s = bars([up, [100, 100.5, 98, 99], [97, 99, 96, 98]]);
    const r = run(s, scripted(at(0, { type: 'limit', side: 'buy', amount: 1, price: 98.5 })), { makerFee: 0.0002 });
    expect(r.fills[0]).toMatchObject({ price: 98.5, liquidity: 'maker' });
    expect(r.fills[0]!.fee).toBeCloseTo(98.5 * 0.0002, 12);
    const g = run(
      bars([up, [100, 100.5, 99.5, 100], [97, 99, 96, 98]]),
      scripted(at(0, { type: 'limit', side: 'buy', amount: 1, price: 98.5 })),
    );
    expect(g.fills[0]).toMatchObject({ price: 97 });
  });

  it('a limit marketable on arrival fills at the open as taker; post-only is rejected instead', () => {
    const s = bars([up, [95, 96, 94, 95]]);
    const r = run(s, scripted(at(0, { type: 'limit', side: 'buy', amount: 1, price: 98 })));
    expect(r.fills[0]).toMatchObject({ price: 95, liquidity: 'taker' });
    const p = run(s, scripted(at(0, { type: 'limit', side: 'buy', amount: 1, price: 98, postOnly: true })));
    expect(p.fills).toHaveLength(0);
    expect(p.orders[0]!.status).toBe('rejected');
    expect(p.orders[0]!.reason).toMatch(/post-only/);
  });

  it('stop-market: a touch fills at the stop, a gap through fills at the open', () => {
    const buyThenStop = (rows: number[][]) =>
      run(
        bars(rows),
        scripted({
          0: (c) => void c.buy(1),
          1: (c) => void c.submit({ type: 'stop-market', side: 'sell', amount: 1, stopPrice: 97 }),
        }),
      );
    const touch = buyThenStop([up, up, [99, 100, 96, 98]]);
    expect(touch.fills[1]).toMatchObject({ side: 'sell', price: 97, liquidity: 'taker' });
    const gap = buyThenStop([up, up, [95, 96, 94, 95]]);
    expect(gap.fills[1]).toMatchObject({ side: 'sell', price: 95 });
  });

  it('stop-limit: triggers at the stop, then fills only at its limit or better', () => {
    // Bullish bar path O,L,H,C = 100, 99.8, 103, 102.5: the stop at 102 triggers, limit 101.5 is not reached after it.
    const r = run(
      bars([up, [100, 103, 99.8, 102.5], [102, 102.2, 101, 101.2]]),
      scripted(at(0, { type: 'stop-limit', side: 'buy', amount: 1, stopPrice: 102, price: 101.5 })),
    );
    expect(r.fills).toHaveLength(1);
    expect(r.fills[0]).toMatchObject({ price: 101.5, liquidity: 'maker' });
    expect(r.fills[0]!.time).toBe(r.equity.times[2]);
  });

  it('trailing stop (percent) follows the high and fills at high x (1 - pct)', () => {
    const r = run(
      bars([up, up, [100, 110, 100, 109], [109, 109.5, 104, 105]]),
      scripted({
        0: (c) => void c.buy(1),
        1: (c) =>
          void c.submit({ type: 'trailing-stop', side: 'sell', amount: 1, trail: { kind: 'percent', value: 5 } }),
      }),
    );
    expect(r.fills[1]!.side).toBe('sell');
    expect(r.fills[1]!.price).toBeCloseTo(110 * 0.95, 10);
  });

  it('bracket: the take-profit fills and cancels the stop-loss (one-cancels-other)', () => {
    const r = run(
      bars([up, up, [100, 100.5, 99.5, 100], [100, 106, 99, 105], up]),
      scripted({ 0: (c) => void c.bracket({ side: 'buy', amount: 1, takeProfit: 105, stopLoss: 95 }) }),
    );
    const tags = r.fills.map((f) => `${f.side}@${f.price}:${f.tag}`);
    expect(tags).toEqual(['buy@100:entry', 'sell@105:take-profit']);
    const sl = r.orders.find((o) => o.request.tag === 'stop-loss')!;
    expect(sl.status).toBe('cancelled');
    expect(sl.reason).toMatch(/OCO/);
    expect(r.openTrades).toHaveLength(0);
  });

  it('OCO pair: whichever the bar path reaches first wins', () => {
    // Bearish bar: O,H,L,C = 100, 103, 96, 97 -> the buy stop at 102 triggers before the buy limit at 97.
    const r = run(
      bars([up, [100, 103, 96, 97]]),
      scripted({
        0: (c) =>
          void c.oco(
            { type: 'stop-market', side: 'buy', amount: 1, stopPrice: 102 },
            { type: 'limit', side: 'buy', amount: 1, price: 97 },
          ),
      }),
    );
    expect(r.fills.map((f) => f.price)).toEqual([102]);
    expect(r.orders.map((o) => o.status).sort()).toEqual(['cancelled', 'filled']);
  });

  it('IOC not marketable at the open expires (as Binance expires it); GTD expires; each says why', () => {
    const s = bars([up, [100, 101, 99, 100], [100, 101, 97, 98]]);
    const ioc = run(s, scripted(at(0, { type: 'limit', side: 'buy', amount: 1, price: 98, timeInForce: 'IOC' })));
    expect(ioc.orders[0]!.status).toBe('expired');
    expect(ioc.orders[0]!.reason).toBe('IOC: expired with 0 of 1 filled (the rest could not fill at once)');
    const gtd = run(
      s,
      scripted(at(0, { type: 'limit', side: 'buy', amount: 1, price: 97.5, timeInForce: 'GTD', expireAt: s.time[2]! })),
    );
    expect(gtd.orders[0]!.status).toBe('expired');
    expect(gtd.orders[0]!.reason).toBe(`GTD: expired at ${new Date(s.time[2]!).toISOString()} with 0 of 1 filled`);
    expect(gtd.fills).toHaveLength(0);
  });

  it('volume-share slippage: partial fills across bars, capped at the participation rate', () => {
    const s = bars([up, [100, 101, 99, 100, 10], [100, 101, 99, 100, 10], [100, 101, 99, 100, 10]]);
    const r = run(s, scripted(at(0, { type: 'market', side: 'buy', amount: 5, timeInForce: 'GTC' })), {
      slippage: volumeShareSlippage(0.25, 0),
    });
    expect(r.fills.map((f) => f.amount)).toEqual([2.5, 2.5]);
    expect(r.orders[0]!.status).toBe('filled');
    const fok = run(s, scripted(at(0, { type: 'market', side: 'buy', amount: 5, timeInForce: 'FOK' })), {
      slippage: volumeShareSlippage(0.25, 0),
    });
    expect(fok.orders[0]!.status).toBe('expired');
    expect(fok.orders[0]!.reason).toBe('FOK: expired with 0 of 5 filled (the whole amount could not fill at once)');
  });

  it('an IOC limit order that the bar’s volume fills in part: the rest expires, it does not rest', () => {
    const s = bars([up, [100, 101, 99, 100, 10], [100, 101, 99, 100, 10]]);
    const r = run(s, scripted(at(0, { type: 'limit', side: 'buy', amount: 5, price: 100, timeInForce: 'IOC' })), {
      slippage: volumeShareSlippage(0.25, 0),
    });
    expect(r.fills.map((f) => f.amount)).toEqual([2.5]);
    expect(r.orders[0]!.status).toBe('expired');
    expect(r.orders[0]!.reason).toBe('IOC: expired with 2.5 of 5 filled (the rest could not fill at once)');
  });

  it('fixed bps slippage moves taker fills against the trader', () => {
    const r = run(bars([up, [100, 101, 99, 100]]), scripted(at(0, { type: 'market', side: 'buy', amount: 1 })), {
      slippage: fixedBpsSlippage(10),
    });
    expect(r.fills[0]!.price).toBeCloseTo(100.1, 10);
  });

  it('a buy the cash cannot cover is rejected with a reason; spot cannot sell what it does not hold', () => {
    const r = run(bars([up, up]), scripted(at(0, { type: 'market', side: 'buy', amount: 1000 })));
    expect(r.orders[0]!.status).toBe('rejected');
    expect(r.orders[0]!.reason).toMatch(/insufficient USDT/);
    const s = run(bars([up, up]), scripted(at(0, { type: 'market', side: 'sell', amount: 1 })));
    expect(s.orders[0]!.reason).toMatch(/insufficient BTC/);
  });

  it('reduce-only with nothing to reduce is cancelled; invalid input is denied, not thrown', () => {
    const r = run(bars([up, up]), scripted(at(0, { type: 'market', side: 'sell', amount: 1, reduceOnly: true })));
    expect(r.orders[0]!.status).toBe('cancelled');
    const d = run(bars([up, up]), scripted(at(0, { type: 'limit', side: 'buy', amount: -1, price: 100 })));
    expect(d.orders[0]!.status).toBe('denied');
    // Post-only rests on the book; IOC/FOK never rest: a contradiction, denied here as the live
    // gateway refuses it (Binance's LIMIT_MAKER takes no timeInForce).
    const p = run(
      bars([up, up]),
      scripted(at(0, { type: 'limit', side: 'buy', amount: 1, price: 90, postOnly: true, timeInForce: 'IOC' })),
    );
    expect(p.orders[0]!.status).toBe('denied');
    expect(p.orders[0]!.reason).toMatch(/post-only order rests on the book: timeInForce IOC/);
  });

  it('exchange filters: amounts round down to the step, below min notional is denied', () => {
    const s = bars([up, up]);
    const strat = scripted({ 0: (c) => void c.buy(0.123456789), 1: () => {} });
    const r = runBacktest({
      strategy: strat,
      data: [
        {
          symbol: 'BTC/USDT',
          timeframe: '1m',
          series: s,
          instrument: { tickSize: 0.01, stepSize: 0.001, minNotional: 5 },
        },
      ],
    });
    expect(r.orders[0]!.request.amount).toBe(0.123);
    const tiny = runBacktest({
      strategy: scripted(at(0, { type: 'market', side: 'buy', amount: 0.01 })),
      data: [{ symbol: 'BTC/USDT', timeframe: '1m', series: s, instrument: { stepSize: 0.001, minNotional: 5 } }],
    });
    expect(tiny.orders[0]!.status).toBe('denied');
    expect(tiny.orders[0]!.reason).toMatch(/min/);
  });

  it('fees in the base asset reduce the amount received', () => {
    const r = run(bars([up, up]), scripted(at(0, { type: 'market', side: 'buy', amount: 1 })), {
      feeAsset: 'received',
    });
    expect(r.fills[0]!.feeAsset).toBe('BTC');
    // The trade holds what the account holds: 1 bought, 0.001 of it paid as the fee.
    expect(r.openTrades[0]!.size).toBe(0.999);
    expect(r.finalCash).toBe(10_000 - 100);
  });

  it('fees in the asset received (Binance spot): the coin on a buy, the quote on a sell', () => {
    const r = run(bars([up, up, up, up]), scripted({ 0: (c) => void c.buy(1), 2: (c) => void c.close() }), {
      feeAsset: 'received',
    });
    // By hand: buy 1 at 100, 0.001 BTC fee -> 0.999 held; sell 0.999 at 100, 0.0999 USDT fee.
    expect(r.fills.map((f) => [f.side, f.amount, f.fee, f.feeAsset])).toEqual([
      ['buy', 1, 0.001, 'BTC'],
      ['sell', 0.999, 0.999 * 0.001 * 100, 'USDT'],
    ]);
    expect(r.finalCash).toBeCloseTo(10_000 - 100 + 99.9 - 0.0999, 10);
    expect(r.trades[0]!.fees).toBeCloseTo(0.001 * 100 + 0.0999, 12);
  });
});

describe('brackets reach the venue only when the entry fills', () => {
  it('exits are sized to what is held: a fee in the base asset leaves less than was bought', () => {
    const r = run(
      bars([up, up, [100, 100.5, 99.5, 100], [100, 106, 99, 105], up]),
      scripted({ 0: (c) => void c.bracket({ side: 'buy', amount: 1, takeProfit: 105, stopLoss: 95 }) }),
      { feeAsset: 'received' },
    );
    // Bought 1, the 0.001 fee taken in BTC: 0.999 held, so both exits are for 0.999, not 1.
    const exits = r.orders.filter((o) => o.request.tag !== 'entry');
    expect(exits.map((o) => o.request.amount)).toEqual([0.999, 0.999]);
    expect(r.fills.map((f) => `${f.side} ${f.amount}@${f.price}`)).toEqual(['buy 1@100', 'sell 0.999@105']);
    // Selling the 0.999 held closes the round trip (before, the 0.001 paid as a fee kept it open
    // for ever). Net PnL by hand: 0.999 x (105 - 100) gross, less the fees in USDT: 0.001 BTC
    // x 100 on the entry (valued at its fill), 0.999 x 0.001 x 105 USDT on the exit (a sell's fee
    // is in the asset received).
    expect(r.openTrades).toEqual([]);
    expect(r.trades).toHaveLength(1);
    expect(r.trades[0]).toMatchObject({ size: 0.999, entryPrice: 100, exitPrice: 105 });
    expect(r.trades[0]!.pnlNet).toBeCloseTo(0.999 * 5 - 0.001 * 100 - 0.999 * 0.001 * 105, 12);
    expect(r.fills.map((f) => f.feeAsset)).toEqual(['BTC', 'USDT']);
  });

  it('an entry that never fills cancels its exits without them ever being working orders', () => {
    const s = bars([up, up, up]);
    const r = run(
      s,
      scripted({
        0: (c) => void c.bracket({ side: 'buy', amount: 1, entryPrice: 50, takeProfit: 120, stopLoss: 40 }),
        1: (c) => c.cancelAll(),
      }),
    );
    expect(r.fills).toHaveLength(0);
    expect(r.orders.map((o) => `${o.request.tag}:${o.status}`).sort()).toEqual([
      'entry:cancelled',
      'stop-loss:cancelled',
      'take-profit:cancelled',
    ]);
    const sl = r.orders.find((o) => o.request.tag === 'stop-loss')!;
    expect(sl.reason).toMatch(/ended unfilled|cancelled by strategy/);
  });
});

describe('order history', () => {
  // Invariant: finished orders are kept in columns and rebuilt when read; the rebuilt objects must
  // equal the live objects as they were when each order ended (the oracle: copies taken from the
  // engine's events at that moment).
  it('finished orders read back equal to the live orders at their end, keys included', () => {
    const atEnd = new Map<string, unknown>();
    const s = bars([up, [100, 100.5, 98, 99], [99, 106, 98, 105], [105, 106, 90, 92], up, up]);
    const r = run(
      s,
      scripted({
        0: (c) => {
          c.buy(1);
          c.submit({ type: 'limit', side: 'buy', amount: 1, price: 98.5, tag: 'dip' });
          c.submit({ type: 'limit', side: 'buy', amount: 1, price: 50, timeInForce: 'IOC' });
          c.submit({ type: 'market', side: 'buy', amount: -1 });
          c.bracket({ side: 'buy', amount: 1, takeProfit: 105, stopLoss: 95 });
        },
        3: (c) => void c.close(),
        4: (c) =>
          void c.submit({ type: 'trailing-stop', side: 'sell', amount: 1, trail: { kind: 'percent', value: 5 } }),
      }),
      {
        onEvent: (e) => {
          if ('order' in e && ['denied', 'rejected', 'filled', 'cancelled', 'expired'].includes(e.order.status))
            atEnd.set(e.order.request.id, structuredClone(e.order));
        },
      },
    );
    const statuses = new Set(r.orders.map((o) => o.status));
    for (const st of ['filled', 'cancelled', 'denied'] as const) expect(statuses.has(st), st).toBe(true);
    expect(atEnd.size).toBeGreaterThanOrEqual(6);
    for (const o of r.orders) {
      const end = atEnd.get(o.request.id);
      if (end !== undefined) expect(o, `order ${o.request.id}`).toStrictEqual(end);
    }
  });
});
