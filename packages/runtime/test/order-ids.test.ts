import { CLIENT_ORDER_ID_RE } from '@keel/exchange';
import { describe, expect, it } from 'vitest';
import { exitOrderId, keptOrderId, orderOwner, parkOrderId, signalOrderId } from '../src/index.ts';

// The client order ids a bot gives its orders. Oracle: Binance's rule for newClientOrderId
// (^[.A-Z:/a-z0-9_-]{1,36}$, which the gateway enforces before sending) and the invariants the
// exactly-once rules stand on: the same signal gives the same id in every process; different
// bots, bars and sequences never share one.
describe('signalOrderId and the ids derived from it', () => {
  const bots = [
    'bot-1',
    'bot-2',
    'sma-cross-BTCUSDT-paper',
    'sma-cross-BTCUSDT-live',
    'a very long bot name with spaces',
    'émoji 🚀 bot',
    'x',
    'ABCDEFGHIJKL',
    'ABCDEFGHIJKLM',
  ];
  const bars = [
    Date.UTC(2024, 0, 1),
    Date.UTC(2024, 0, 1, 0, 1),
    Date.UTC(2031, 5, 15, 12, 34),
    Date.UTC(2099, 11, 31, 23, 59),
  ];

  it('is deterministic: the same bot, bar and sequence give the same id', () => {
    for (const b of bots) expect(signalOrderId(b, bars[2]!, 3)).toBe(signalOrderId(b, bars[2]!, 3));
  });

  it('is distinct per bot, bar and sequence, and every id (and its exit, park and kept-leg ids) is one Binance takes', () => {
    const ids = new Set<string>();
    let n = 0;
    for (const b of bots)
      for (const t of bars)
        for (let seq = 1; seq <= 150; seq++) {
          const id = signalOrderId(b, t, seq);
          for (const x of [id, exitOrderId(id), parkOrderId(id), keptOrderId(id)]) {
            expect(x, `${b} @ ${t} #${seq}`).toMatch(CLIENT_ORDER_ID_RE);
            ids.add(x);
            n++;
          }
          expect(orderOwner(b, id)).toBe('this-bot');
          expect(orderOwner(b, exitOrderId(id))).toBe('this-bot');
          expect(orderOwner(b, keptOrderId(id))).toBe('this-bot');
        }
    expect(ids.size).toBe(n);
  });

  it("tells this bot's ids from another bot's and from foreign ones", () => {
    const mine = signalOrderId('bot-1', bars[0]!, 1);
    const theirs = signalOrderId('bot-2', bars[0]!, 1);
    expect(orderOwner('bot-1', mine)).toBe('this-bot');
    expect(orderOwner('bot-1', theirs)).toBe('other-keel-bot');
    expect(orderOwner('bot-1', 'web_1234567890abcdef')).toBe('foreign');
  });
});
