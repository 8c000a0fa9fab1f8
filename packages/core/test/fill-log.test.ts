import { describe, expect, it } from 'vitest';
import { FillLog } from '../src/engine/fill-log.ts';
import { ClientOrderId } from '../src/util/brand.ts';

describe('FillLog.clear', () => {
  it('forgets the fee values of the fills it forgets (a later fill at the same index has none)', () => {
    const log = new FillLog();
    // A fill whose fee was paid in BNB, valued at 0.25 USDT by the venue.
    log.push(ClientOrderId('a'), 't1', 'BTC/USDT', 'buy', 100, 1, 0.001, 'BNB', 'taker', 1, undefined, undefined, 0.25);
    expect(log.get(0).feeValue).toBe(0.25);
    log.clear();
    // A fill with its fee in the quote: no outside fee, so no feeValue.
    log.push(ClientOrderId('b'), 't2', 'BTC/USDT', 'sell', 110, 1, 0.11, 'USDT', 'taker', 2, undefined);
    expect(log.length).toBe(1);
    expect(log.get(0).feeValue).toBeUndefined();
  });
});
