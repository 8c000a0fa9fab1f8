import { describe, expect, it } from 'vitest';
import { exchangeClock } from '../src/live/exchange-clock.ts';

// The bot's clock read from the exchange: against a replay at 60x it runs at 60x.
// Oracle: the exchange's own time, given here as a function of a hand-moved local clock.
describe('exchangeClock', () => {
  const T = 1_704_067_200_000;

  it('extrapolates between readings at the measured rate, and never goes backwards', async () => {
    let local = 0;
    let speed = 60;
    let server = T;
    const clock = exchangeClock(async () => server, { local: () => local, pollMs: 3_600_000 });
    await clock.ready;
    expect(clock.now()).toBe(T);
    local = 100; // one rate is known only after two readings: 1 until then
    expect(clock.now()).toBe(T + 100);
    server = T + 100 * speed;
    await clock.poll();
    expect(clock.now()).toBe(T + 6_000);
    local = 150;
    expect(clock.now()).toBe(T + 9_000); // 50 local ms at 60x
    // The replay slows to 1x: the next reading is behind the extrapolation; the clock holds
    // rather than going back, then follows the new rate.
    speed = 1;
    server = T + 6_000 + 50 * speed;
    await clock.poll();
    expect(clock.now()).toBe(T + 9_000);
    local = 3_150;
    expect(clock.now()).toBe(T + 6_050 + 3_000); // read at T + 6,050 (local 150), now at 1x
    clock.stop();
  });

  it('extrapolates no further than one poll interval, and stands still while the replay is paused', async () => {
    let local = 0;
    let server = T;
    const clock = exchangeClock(async () => server, { local: () => local, pollMs: 1_000 });
    await clock.ready;
    local = 100;
    server = T + 6_000; // 60x
    await clock.poll();
    local = 5_000; // no reading for 4.9 s: at most 1 s of it is extrapolated
    expect(clock.now()).toBe(T + 6_000 + 1_000 * 60);
    await clock.poll(); // paused: still T + 6,000, and the clock holds where it got to
    local = 9_000;
    expect(clock.now()).toBe(T + 66_000);
    clock.stop();
  });

  it('sleeps in exchange time: 6 s of a 60x replay pass well under 6 s of wall time; an abort ends it early', async () => {
    const p0 = performance.now();
    const clock = exchangeClock(async () => T + (performance.now() - p0) * 60, { pollMs: 10 });
    await clock.ready;
    await new Promise((r) => setTimeout(r, 30)); // two readings: the rate is known
    const from = clock.now();
    const wall = performance.now();
    await clock.sleep(6_000);
    expect(clock.now()).toBeGreaterThanOrEqual(from + 6_000);
    // In exchange time: a wall-clock sleep would take 6 s (a wide bound, not a timing).
    expect(performance.now() - wall).toBeLessThan(3_000);
    const ctl = new AbortController();
    const long = clock.sleep(3_600_000, ctl.signal);
    ctl.abort();
    await long; // resolves, never rejects
    clock.stop();
  });
});
