import { type BacktestResult, ClientOrderId, newOrderState, type OrderState } from '@keel/core';
import { describe, expect, it } from 'vitest';
import { reasonKind, refusedOrderLines } from '../src/summary.ts';

/** An order of `symbol` ended with `status` and `reason`, as the engine leaves it. */
function ended(i: number, status: OrderState['status'], reason: string): OrderState {
  const o = newOrderState(
    {
      id: ClientOrderId(`o${i}`),
      symbol: 'LINK/USDT:USDT',
      side: 'buy',
      type: 'market',
      amount: 1,
      timeInForce: 'IOC',
    },
    0,
    7,
  );
  o.status = status;
  o.reason = reason;
  return o;
}

const lines = (orders: OrderState[]) =>
  refusedOrderLines({ orders } as Pick<BacktestResult, 'orders'> as BacktestResult);

describe('refused orders in the terminal summary', () => {
  it('are counted by the rule their reason names, amounts taken out, with an example of the first kinds only', () => {
    // Oracle: the reasons written out by hand; 820 margin rejections of 820 sizes are one kind.
    const margin = (q: number, p: number) =>
      `position of ${q} LINK at ${p} exceeds the 50000 USDT notional allowed at 50x`;
    expect(reasonKind(margin(71818.44297615628, 6.962))).toBe(
      'position of N LINK at N exceeds the N USDT notional allowed at Nx',
    );
    expect(reasonKind('insufficient USDT at fill: 0.23 at 42592.9 costs 10019.9, the account has 10000')).toBe(
      'insufficient USDT at fill',
    );
    expect(reasonKind('nothing held of 1000SHIB to sell (-1e-9)')).toBe('nothing held of 1000SHIB to sell (N)');
    const orders = [
      ...Array.from({ length: 820 }, (_, i) => ended(i, 'rejected', margin(60_000 + i * 17.3, 7 + i / 1000))),
      ended(900, 'cancelled', 'insufficient USDT at fill: 2 at 7.1 costs 14.2, the account has 3'),
      ended(901, 'cancelled', 'cancelled by strategy'),
      ended(902, 'denied', 'max-open-orders: 4 open, at most 4'),
      ended(903, 'denied', 'cooldown: 30m after a loss'),
      ended(904, 'denied', 'cooldown: 30m after a loss'),
    ];
    const out = lines(orders);
    expect(out).toEqual([
      'refused orders: 824 (denied 3, rejected by the venue 820, cancelled by the venue at the fill 1)',
      '  820 x position of N LINK at N exceeds the N USDT notional allowed at Nx',
      '      first: position of 60000 LINK at 7 exceeds the 50000 USDT notional allowed at 50x',
      '  2 x cooldown',
      '      first: cooldown: 30m after a loss',
      '  1 x insufficient USDT at fill',
      '      first: insufficient USDT at fill: 2 at 7.1 costs 14.2, the account has 3',
      '  1 more, of 1 other kind (every order is in the report and --json)',
    ]);
    expect(out.join('\n').length).toBeLessThan(600);
  });
});
