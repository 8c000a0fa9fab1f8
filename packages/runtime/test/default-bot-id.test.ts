import { describe, expect, it } from 'vitest';
import { orderIdPrefix } from '../src/bot-engine.ts';
import { defaultBotId } from '../src/cli.ts';

// The id `keel paper|live` gives a bot without --bot-id (docs/live.md, "Several markets").
describe('defaultBotId', () => {
  it('one market as before; several joined in order; past four, the first two, the count and a hash of the list', () => {
    expect(defaultBotId('sma-cross', ['BTC/USDT'], false, 'live')).toBe('sma-cross-BTCUSDT-live');
    expect(defaultBotId('sma-cross', ['LINK/USDT'], true, 'paper')).toBe('sma-cross-LINKUSDT-perp-paper');
    expect(defaultBotId('sma-cross', ['BTC/USDT', 'ETH/USDT'], false, 'paper')).toBe('sma-cross-BTCUSDT-ETHUSDT-paper');
    const six = ['BTC/USDT', 'ETH/USDT', 'BNB/USDT', 'SOL/USDT', 'XRP/USDT', 'ADA/USDT'];
    const id = defaultBotId('sma-cross', six, false, 'live');
    expect(id).toMatch(/^sma-cross-BTCUSDT-ETHUSDT-6pairs-[0-9a-f]{6}-live$/);
    // Stable for the same list; another list (or order) is another bot.
    expect(defaultBotId('sma-cross', [...six], false, 'live')).toBe(id);
    expect(defaultBotId('sma-cross', [...six].reverse(), false, 'live')).not.toBe(id);
    expect(defaultBotId('sma-cross', [...six.slice(0, 5), 'DOT/USDT'], false, 'live')).not.toBe(id);
    // Paper and live of the same list never share client order ids.
    expect(orderIdPrefix(defaultBotId('sma-cross', six, false, 'paper'))).not.toBe(orderIdPrefix(id));
  });
});
