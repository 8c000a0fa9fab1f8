// `sessionBook` (parity-futures.ts): where the backtest of a session takes its mark from, and that
// parity says so. Invariants of the recorded setup; the replay on recorded marks is checked end to
// end, with its oracles, in futures-paper-mark.int.test.ts.
import { Account, defineInstrument, seriesFromRows } from '@keel/core';
import { describe, expect, it } from 'vitest';
import { sessionBook } from '../src/parity-futures.ts';
import type { SessionFutures, SessionPerpetual } from '../src/session.ts';

const SYMBOL = 'LINK/USDT:USDT';
const inst = defineInstrument({ symbol: SYMBOL });
const book = { v: 1, isolatedWallets: {}, lateFunding: 0, missingMark: 0, negativeWallet: 0 } as const;
const marks = seriesFromRows([{ time: 0, open: 10, high: 10, low: 9, close: 9.5, volume: 0 }]);

function build(market: SessionPerpetual) {
  const futures: SessionFutures = { markets: { [SYMBOL]: market }, book };
  const notes: string[] = [];
  const b = sessionBook(
    {
      seq: 1,
      futures,
      account: new Account('USDT', 1_000),
      instruments: [inst],
      recorded: [],
      rates: new Map(),
      marks: new Map([[SYMBOL, marks]]),
    },
    notes,
  );
  return { mark: b.summary().markets[0]?.mark, notes };
}

describe('parity: the mark a session is replayed with', () => {
  it('live: the traded price, and a note says the exchange marked on its own mark price', () => {
    const live = build({ leverage: 3, marginMode: 'cross' });
    expect(live.mark).toBeUndefined();
    expect(live.notes).toContainEqual(
      expect.stringContaining(
        `${SYMBOL}: the exchange charged funding and liquidated on its own mark price (each payment records the mark it was charged at), which the bot does not record per bar; the backtest takes the traded price as the mark`,
      ),
    );
  });

  it('paper with recorded marks: those marks, no note', () => {
    const paper = build({ leverage: 3, marginMode: 'cross', funding: null, markSource: 'm.csv', marks: 'x' });
    expect(paper.mark).toBe('m.csv');
    expect(paper.notes).toEqual([]);
  });

  it('paper recorded before Keel kept its marks: the traded price, with the note', () => {
    const old = build({ leverage: 3, marginMode: 'cross', funding: null, markSource: 'm.csv' });
    expect(old.mark).toBeUndefined();
    expect(old.notes).toEqual([
      "session 1: LINK/USDT:USDT's paper session used mark bars (m.csv); the backtest takes the traded price as the mark",
    ]);
  });
});
