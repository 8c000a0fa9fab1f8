import { describe, expect, it } from 'vitest';
import { FeePrices } from '../src/live/fee-prices.ts';

describe('FeePrices: the BNB price a live bot values its BNB fees at', () => {
  it('reads each watched asset against the quote; a failed read keeps the last price and says so once', async () => {
    const answers: (number | Error)[] = [310, new Error('timeout'), new Error('timeout'), 312];
    const asked: string[] = [];
    const lines: string[] = [];
    const p = new FeePrices(
      'USDT',
      async (symbol) => {
        asked.push(symbol);
        const a = answers.shift();
        if (a instanceof Error) throw a;
        return a as number;
      },
      (level, msg) => lines.push(`${level} ${msg}`),
    );
    expect(p.watch('USDT')).toBe(false); // the quote is never read
    expect(p.watch('BNB')).toBe(true);
    expect(p.watch('BNB')).toBe(false);
    await p.refresh();
    expect(p.price('BNB')).toBe(310);
    await p.refresh();
    await p.refresh();
    expect(p.price('BNB')).toBe(310);
    await p.refresh();
    expect(p.price('BNB')).toBe(312);
    expect(asked).toEqual(['BNB/USDT', 'BNB/USDT', 'BNB/USDT', 'BNB/USDT']);
    expect(lines).toEqual([
      'warn fee prices: could not read BNB/USDT (timeout): fees paid in BNB are valued at the last price read, 310',
      'info fee prices: BNB/USDT read again (312)',
    ]);
  });

  it('the books’ BNB debt is worth what its fees were booked at: 0.1 BNB for 30 and 0.1 for 32 -> 310 a BNB', () => {
    const p = new FeePrices(
      'USDT',
      async () => 400,
      () => {},
    );
    // Never read, nothing booked: no price (the fee is not valued), and the debt is left out of the equity.
    expect(p.price('BNB')).toBeNaN();
    expect(p.bookedPrice('BNB')).toBe(0);
    p.book('BNB', 0.1, 30);
    p.book('BNB', 0.05, undefined); // not valued: not part of the average
    p.book('BNB', 0.1, 32);
    expect(p.bookedPrice('BNB')).toBeCloseTo(310, 10);
  });
});
