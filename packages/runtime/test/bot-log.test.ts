import { ClientOrderId, newOrderState, type OrderRequest } from '@keel/core';
import { describe, expect, it } from 'vitest';
import { formatOrderLine, orderLogLine, repeatingWarning } from '../src/bot-log.ts';

describe('repeatingWarning: an error that repeats every few seconds for hours', () => {
  it('logs the first, then once per 10 minutes with the count, and a new message at once', () => {
    const lines: string[] = [];
    let now = 0;
    const warn = repeatingWarning(
      (level, msg) => lines.push(`${level} ${msg}`),
      () => now,
      'execution stream',
    );
    // An IP ban: the tracker's poll fails every 5 s for 25 minutes.
    for (; now < 25 * 60_000; now += 5_000) warn('IpBanned: banned until 03:30');
    warn('ECONNRESET'); // something else: said at once, after the count of the ban's repeats
    expect(lines).toEqual([
      'warn execution stream: IpBanned: banned until 03:30',
      'warn execution stream: IpBanned: banned until 03:30 (119 more time(s) in the last 10 min)',
      'warn execution stream: IpBanned: banned until 03:30 (119 more time(s) in the last 10 min)',
      'warn execution stream: the previous error came 59 more time(s)',
      'warn execution stream: ECONNRESET',
    ]);
  });
});

describe('order lines for people', () => {
  it('amounts, prices and fees to 10 significant digits: no binary noise of summed doubles', () => {
    // 0.1 + 0.2 = 0.30000000000000004 and the tester's fill sums and fees, by hand.
    expect(
      formatOrderLine({
        what: 'fill',
        side: 'buy',
        amount: 0.1 + 0.2,
        symbol: 'BTC/USDT',
        type: 'market',
        price: 26064.77,
        id: 'k-1',
        fee: 9.499712009300001,
        feeAsset: 'USDT',
        filled: 0.36146999999999996,
      }),
    ).toBe('FILL    buy 0.3 BTC/USDT @ 26064.77  fee 9.499712009 USDT  id k-1  (filled 0.36147)');
  });
});

describe('orderLogLine: a refused order', () => {
  const rejected = (tag: string | undefined) => {
    const req: OrderRequest = {
      type: 'stop-market',
      id: ClientOrderId('k-1'),
      symbol: 'BTC/USDT',
      side: 'sell',
      amount: 0.01,
      timeInForce: 'GTC',
      stopPrice: 39_200,
      reduceOnly: true,
      ...(tag !== undefined ? { tag } : {}),
    };
    const order = newOrderState(req, 0, 40_000);
    return orderLogLine({ type: 'order.rejected', time: 0, order, reason: 'insufficient balance' })?.level;
  };
  it('a stop or exit the exchange rejects leaves the position unprotected: an error line (the bot counts those in its errors); another order: a warning', () => {
    expect(['stop-loss', 'take-profit', 'trailing-stop', 'roi', 'time-exit', 'risk-flatten'].map(rejected)).toEqual(
      Array(6).fill('error'),
    );
    expect([undefined, 'entry'].map(rejected)).toEqual(['warn', 'warn']);
  });
});
