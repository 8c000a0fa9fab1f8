import { startExchangeSim } from '@keel/exchange-sim';
import { describe, expect, it } from 'vitest';
import { connectExchange } from '../src/index.ts';
import { fastConnect, KEY, MIN, T0 } from './live-harness.ts';

// `keel live --clock exchange`: the bot's clock is the exchange's, read through the gateway. Against
// the simulator replaying at 60x it follows the replay, not the wall clock. Oracle: the
// simulator's own replay clock. Real ccxt client on loopback.
describe('the exchange clock against a replay at 60x (real ccxt, loopback)', () => {
  it('follows the replay’s clock and runs at its speed', async () => {
    const bars = Array.from({ length: 200 }, (_, i) => {
      const o = 40_000 + i;
      return { time: T0 + i * MIN, open: o, high: o + 5, low: o - 5, close: o + 1, volume: 10 };
    });
    const sim = await startExchangeSim({
      markets: [{ symbol: 'BTC/USDT', bars }],
      accounts: [{ ...KEY, balances: { USDT: 1_000 } }],
      startTime: T0,
      speed: 60,
    });
    const conn = await connectExchange(fastConnect(sim.httpUrl, KEY, 'clock', () => {}));
    const clock = conn.clock({ pollMs: 200 });
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    try {
      await clock.ready;
      await wait(600); // a few readings: the rate is known
      // Within half a second of replay (30 s of market time) of the simulator's own clock.
      expect(Math.abs(clock.now() - sim.now())).toBeLessThan(30_000);
      const c0 = clock.now();
      const w0 = Date.now();
      await wait(1_000);
      const ran = clock.now() - c0;
      const wall = Date.now() - w0;
      expect(ran).toBeGreaterThan(30 * wall); // a wall clock would have moved `wall` ms
      // Two minutes of market time pass in about two seconds.
      const s0 = clock.now();
      await clock.sleep(2 * MIN);
      expect(clock.now()).toBeGreaterThanOrEqual(s0 + 2 * MIN);
      expect(sim.now()).toBeGreaterThanOrEqual(s0 + 2 * MIN - 30_000);
    } finally {
      clock.stop();
      await conn.close();
      await sim.close();
    }
  }, 30_000);
});
