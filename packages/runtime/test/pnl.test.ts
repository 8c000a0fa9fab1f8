import { ClientOrderId, defineInstrument, type Fill } from '@keel/core';
import { describe, expect, it } from 'vitest';
import { outsideFeesNote, pnlOf, pnlSince } from '../src/pnl.ts';

const BTC = defineInstrument({ symbol: 'BTC/USDT' });

let trade = 0;

function fill(f: Partial<Fill> & Pick<Fill, 'side' | 'price' | 'fee' | 'feeAsset'>): Fill {
  return {
    orderId: ClientOrderId('k-1'),
    tradeId: String(++trade),
    symbol: 'BTC/USDT',
    amount: 1,
    liquidity: 'taker',
    time: 0,
    ...f,
  };
}

describe('PnlBook: fees paid in BNB (neither base nor quote)', () => {
  // Hand-computed: buy 1 @ 100 and sell 1 @ 110, each paying 0.00025 BNB of commission
  // (0.075 % of the notional at BNB = 300: 0.075 and 0.0825 USDT); the second has no value.
  const valued = fill({ side: 'buy', price: 100, fee: 0.00025, feeAsset: 'BNB', feeValue: 0.075 });
  const unvalued = fill({ side: 'sell', price: 110, fee: 0.000275, feeAsset: 'BNB' });

  it('counts a valued one at its booked value and names the other as not valued, never as zero', () => {
    const t = pnlOf([valued, unvalued], [BTC]);
    expect(t.realizedPnlGross).toBe(10);
    expect(t.fees).toBeCloseTo(0.075, 12);
    expect(t.realizedPnlNet).toBeCloseTo(9.925, 12);
    expect(t.otherFees).toEqual({ BNB: 0.000275 });
    expect(t.feesPaidOutside).toEqual({ BNB: expect.closeTo(0.000525, 12) });
    expect(outsideFeesNote(t)).toBe(
      '; fees paid in 0.00025 BNB (in the fees at their value); not valued: 0.000275 BNB (no price; left out of the fees)',
    );
  });

  it('a session’s share: only what came after its start', () => {
    const before = pnlOf([valued], [BTC]);
    const after = pnlOf([valued, unvalued], [BTC]);
    expect(pnlSince(after, before)).toMatchObject({
      otherFees: { BNB: 0.000275 },
      feesPaidOutside: { BNB: expect.closeTo(0.000275, 12) },
    });
    expect(outsideFeesNote(pnlOf([valued], [BTC]))).toBe('; fees paid in 0.00025 BNB (in the fees at their value)');
    expect(outsideFeesNote(pnlOf([fill({ side: 'buy', price: 100, fee: 0.001, feeAsset: 'BTC' })], [BTC]))).toBe('');
  });
});
