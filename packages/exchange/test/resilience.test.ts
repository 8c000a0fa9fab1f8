import { SeededRng } from '@keel/core';
import { describe, expect, it } from 'vitest';
import {
  backoffMs,
  binanceSpotLimits,
  CircuitBreaker,
  ManualTimer,
  RateLimiter,
  retryDelayMs,
  WeightWindow,
  windowReading,
} from '../src/index.ts';

describe('backoff: full jitter from a seeded RNG', () => {
  it('stays in [0, min(max, base*2^n)) and is the same sequence for the same seed', () => {
    const policy = { baseMs: 100, maxMs: 5_000 };
    const a = new SeededRng(42);
    const b = new SeededRng(42);
    for (let n = 0; n < 12; n++) {
      const d = backoffMs(n, policy, a);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(5_000, 100 * 2 ** n));
      expect(backoffMs(n, policy, b)).toBe(d);
    }
  });

  it('spreads: 1000 draws at the cap cover the interval (mean near cap/2)', () => {
    const rng = new SeededRng(1);
    const xs = Array.from({ length: 1000 }, () => backoffMs(10, { baseMs: 100, maxMs: 1_000 }, rng));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(450);
    expect(mean).toBeLessThan(550);
  });

  it('never retries sooner than Retry-After', () => {
    const rng = new SeededRng(3);
    for (let n = 0; n < 5; n++)
      expect(
        retryDelayMs(n, { baseMs: 100, maxMs: 1_000 }, rng, { kind: 'rate-limited', retryAfterMs: 3_000 }),
      ).toBeGreaterThanOrEqual(3_000);
  });

  it('rate-limited without a Retry-After waits the whole backoff step; other kinds are jittered from 0', () => {
    const policy = { baseMs: 100, maxMs: 1_000 };
    const rng = new SeededRng(4);
    for (let n = 0; n < 8; n++) {
      const cap = Math.min(1_000, 100 * 2 ** n);
      expect(retryDelayMs(n, policy, rng, { kind: 'rate-limited' })).toBe(cap);
      const d = retryDelayMs(n, policy, rng, { kind: 'in-doubt' });
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(cap);
    }
  });
});

describe('RateLimiter: token buckets on an injected timer', () => {
  const spec = {
    orders: { capacity: 2, refillPerSec: 1 },
    queries: { capacity: 10, refillPerSec: 10 },
    'market-data': { capacity: 5, refillPerSec: 5 },
  };

  it('lets a burst of `capacity` through, then paces at the refill rate', async () => {
    const timer = new ManualTimer(0);
    const lim = new RateLimiter(spec, timer);
    const done: number[] = [];
    for (let i = 0; i < 5; i++) void lim.acquire('orders').then(() => done.push(timer.now()));
    await timer.advance(0);
    expect(done).toEqual([0, 0]);
    await timer.advance(5_000);
    expect(done).toEqual([0, 0, 1_000, 2_000, 3_000]);
  });

  it('cancels (high priority) overtake queued creates', async () => {
    const timer = new ManualTimer(0);
    const lim = new RateLimiter(spec, timer);
    const order: string[] = [];
    await lim.acquire('orders');
    await lim.acquire('orders');
    void lim.acquire('orders').then(() => order.push('create-1'));
    void lim.acquire('orders').then(() => order.push('create-2'));
    void lim.acquire('orders', 1, 'high').then(() => order.push('cancel'));
    await timer.advance(3_000);
    expect(order).toEqual(['cancel', 'create-1', 'create-2']);
  });

  it('classes are independent; weights count; pause() holds a class until Retry-After', async () => {
    const timer = new ManualTimer(0);
    const lim = new RateLimiter(spec, timer);
    await lim.acquire('queries', 10);
    expect(lim.available('queries')).toBe(0);
    expect(lim.available('market-data')).toBe(5);
    lim.pause('market-data', 4_000);
    let at = -1;
    void lim.acquire('market-data').then(() => (at = timer.now()));
    await timer.advance(3_999);
    expect(at).toBe(-1);
    await timer.advance(1_000);
    expect(at).toBeGreaterThanOrEqual(4_000);
    expect(() => lim.acquire('orders', 3)).toThrow(/exceeds/);
  });

  it('Binance defaults stay a margin under the published limits (6000 weight/min, 100 orders/10 s)', () => {
    const l = binanceSpotLimits(0.2);
    expect(l.orders.refillPerSec * 10).toBeLessThanOrEqual(80);
    expect((l.queries.refillPerSec + l['market-data'].refillPerSec) * 60).toBeLessThanOrEqual(6000 * 0.8 + 1e-9);
  });
});

describe('WeightWindow: the IP’s weight per minute, raised to the exchange’s reading, never lowered', () => {
  const spec = { limit: 100, published: 120, windowMs: 60_000, header: 'x-mbx-used-weight-1m' };
  it('takes a higher reading of the current window, ignores a lower one and one of another window', () => {
    const full: number[] = [];
    const w = new WeightWindow(spec, (e) => full.push(e.resumeAt));
    const t = 600_000; // a minute's start
    w.take(10, t + 1_000);
    w.observe(70, t + 2_000, t + 2_500); // others on the IP sent 60
    expect(w.usedAt(t + 3_000)).toBe(70);
    w.observe(40, t + 3_000, t + 3_000); // an older answer, arrived late
    expect(w.usedAt(t + 3_000)).toBe(70);
    w.observe(95, t - 1_000, t + 4_000); // the previous minute's reading
    expect(w.usedAt(t + 4_000)).toBe(70);
    expect(w.waitMs(30, t + 5_000)).toBe(0);
    w.take(30, t + 5_000);
    expect(w.waitMs(1, t + 6_000)).toBe(54_000); // full: the next minute
    expect(full).toEqual([t + 60_000]);
    expect(w.waitMs(1, t + 60_000)).toBe(0);
    w.pause(t + 70_000);
    expect(w.waitMs(1, t + 61_000)).toBe(9_000);
  });

  it('reads Binance’s header and Date as ccxt hands them over (capitalised)', () => {
    const weight = 'x-mbx-used-weight-1m';
    expect(windowReading({ 'X-Mbx-Used-Weight-1m': '1234', Date: 'Mon, 01 Jan 2024 00:10:05 GMT' }, weight)).toEqual({
      used: 1234,
      serverTime: Date.UTC(2024, 0, 1, 0, 10, 5),
    });
    expect(windowReading({ 'x-mbx-used-weight-1m': '7' }, weight)).toEqual({ used: 7, serverTime: undefined });
    expect(windowReading({ 'Content-Type': 'application/json' }, weight)).toBeUndefined();
    expect(windowReading({ 'X-Mbx-Order-Count-10s': '42' }, 'x-mbx-order-count-10s')).toMatchObject({ used: 42 });
  });

  it('the limiter holds every class to the window', async () => {
    const timer = new ManualTimer(0);
    const lim = new RateLimiter(binanceSpotLimits(0.2), timer);
    expect(lim.window?.spec).toMatchObject({ limit: 4_800, published: 6_000 });
    lim.window?.observe(4_790, 0, 0);
    await lim.acquire('queries', 10);
    let at = -1;
    void lim.acquire('market-data', 2).then(() => (at = timer.now()));
    // Orders and cancels may use the margin under the exchange's 6,000: reads keep it for them.
    let placed = -1;
    await lim.acquire('orders', 1).then(() => (placed = timer.now()));
    expect(placed).toBe(0);
    // At the exchange's own limit even they wait.
    lim.window?.observe(6_000, 0, 0);
    void lim.acquire('orders', 1).then(() => (placed = timer.now()));
    await timer.advance(59_000);
    expect(at).toBe(-1);
    expect(placed).toBe(0);
    await timer.advance(1_000);
    expect(at).toBe(60_000);
    expect(placed).toBe(60_000);
  });
});

describe('order-count windows: the account’s new orders, raised to the exchange’s reading', () => {
  it('new orders wait for the next window when the account’s count is full; cancels do not; reported once a window', async () => {
    const timer = new ManualTimer(0);
    const full: { used: number; windowMs: number; resumeAt: number }[] = [];
    const lim = new RateLimiter(binanceSpotLimits(0.2), timer, (which, e) => {
      if (which === 'order-count') full.push({ used: e.used, windowMs: e.windowMs, resumeAt: e.resumeAt });
    });
    expect(lim.orderWindows.map((w) => w.spec)).toMatchObject([
      { limit: 80, published: 100, windowMs: 10_000, header: 'x-mbx-order-count-10s' },
      { limit: 160_000, published: 200_000, windowMs: 86_400_000, header: 'x-mbx-order-count-1d' },
    ]);
    // Another bot on the account has placed 79 orders this 10 s window: one more fits, not two.
    lim.orderWindows[0]?.observe(79, 0, 0);
    await lim.acquire('orders', 1, 'normal', { orders: 1 });
    const placed: number[] = [];
    for (let i = 0; i < 3; i++)
      void lim.acquire('orders', 1, 'normal', { orders: 1 }).then(() => placed.push(timer.now()));
    // A cancel counts no order: it goes at once, past the waiting creates.
    let cancelled = -1;
    await lim.acquire('orders', 1, 'high').then(() => (cancelled = timer.now()));
    expect(cancelled).toBe(0);
    await timer.advance(9_999);
    expect(placed).toEqual([]);
    await timer.advance(1);
    expect(placed).toEqual([10_000, 10_000, 10_000]);
    expect(full).toEqual([{ used: 80, windowMs: 10_000, resumeAt: 10_000 }]);
    expect(lim.orderWindows[1]?.usedAt(10_000)).toBe(4);
  });

  it('a create whose signal is aborted while it waits leaves the queue at once, taking nothing', async () => {
    const timer = new ManualTimer(0);
    const lim = new RateLimiter(binanceSpotLimits(0.2), timer);
    lim.orderWindows[0]?.observe(80, 0, 0);
    const ctl = new AbortController();
    const waiting = lim.acquire('orders', 1, 'normal', { orders: 1, signal: ctl.signal });
    let next = -1;
    void lim.acquire('orders', 1, 'normal', { orders: 1 }).then(() => (next = timer.now()));
    await timer.advance(3_000);
    ctl.abort(new Error('signal expired'));
    await expect(waiting).rejects.toThrow('signal expired');
    await timer.advance(7_000);
    expect(next).toBe(10_000);
    // Only the one that went was counted in the day's window.
    expect(lim.orderWindows[1]?.usedAt(10_000)).toBe(1);
  });
});

describe('CircuitBreaker: closed -> open -> half-open -> closed/open', () => {
  it('opens after the threshold, probes once after openMs, closes on success', async () => {
    const timer = new ManualTimer(0);
    const b = new CircuitBreaker({ failureThreshold: 3, openMs: 10_000, halfOpenProbes: 1 }, timer);
    for (let i = 0; i < 2; i++) {
      expect(b.tryPass()).toBe(true);
      b.failure();
    }
    expect(b.state).toBe('closed');
    b.success(); // a success resets the count: failures must be consecutive
    for (let i = 0; i < 3; i++) {
      expect(b.tryPass()).toBe(true);
      b.failure();
    }
    expect(b.state).toBe('open');
    expect(b.tryPass()).toBe(false);
    await timer.advance(9_999);
    expect(b.tryPass()).toBe(false);
    await timer.advance(1);
    expect(b.state).toBe('half-open');
    expect(b.tryPass()).toBe(true);
    expect(b.tryPass()).toBe(false); // one probe at a time
    b.success();
    expect(b.state).toBe('closed');
  });

  it('a failed probe re-opens for another full openMs', async () => {
    const timer = new ManualTimer(0);
    const b = new CircuitBreaker({ failureThreshold: 1, openMs: 1_000, halfOpenProbes: 1 }, timer);
    b.failure();
    await timer.advance(1_000);
    expect(b.tryPass()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    await timer.advance(999);
    expect(b.state).toBe('open');
    await timer.advance(1);
    expect(b.state).toBe('half-open');
  });
});
