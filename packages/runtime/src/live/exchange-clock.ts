import { systemTimer, type Timer } from '@keel/exchange';

export interface ExchangeClock extends Timer {
  /** Resolves after the first reading of the exchange's time. */
  readonly ready: Promise<void>;
  /** Reads the exchange's time once more (the interval does this on its own). */
  poll(): Promise<void>;
  stop(): void;
}

export interface ExchangeClockOptions {
  /** How often the exchange's time is read (default 1 s). */
  readonly pollMs?: number;
  /** The local monotonic clock (default `performance.now`). */
  readonly local?: () => number;
}

/**
 * The exchange's own clock as the bot's timer (`keel live --clock exchange`): what GTD orders
 * expire by. Against a real exchange it is the wall clock within the network delay; against
 * `keel exchange-sim --speed 60` replaying a past period it is the replay's clock, running 60
 * times faster, which the wall clock would not follow (a GTD order would live 60 times too long in
 * market time).
 *
 * The exchange's time is read every `pollMs`; in between it is extrapolated from the last reading
 * at the rate measured between the last two (1 against a real exchange, the replay speed against
 * the simulator, 0 while a replay is paused), never further than one interval ahead. It never
 * goes backwards.
 */
export function exchangeClock(readTime: () => Promise<number>, opts: ExchangeClockOptions = {}): ExchangeClock {
  const local = opts.local ?? (() => performance.now());
  let at = Number.NaN; // local time of the last reading
  let server = Number.NaN; // the exchange's time then
  let rate = 1;
  let last = Number.NaN; // the last value handed out: never go backwards
  let stopped = false;
  const poll = async () => {
    const t = await readTime();
    const l = local();
    if (Number.isFinite(server) && l > at && t >= server) {
      const measured = (t - server) / (l - at);
      if (Number.isFinite(measured)) rate = measured; // 0: the exchange's clock stands still
    }
    server = t;
    at = l;
  };
  // Never more than one poll interval ahead of the last reading.
  const horizon = opts.pollMs ?? 1_000;
  const now = () => {
    const t = server + Math.min(local() - at, horizon) * rate;
    last = Number.isNaN(last) || t > last ? t : last;
    return last;
  };
  const ready = poll();
  const loop = setInterval(() => void poll().catch(() => undefined), opts.pollMs ?? 1_000);
  loop.unref();
  return {
    ready,
    poll,
    now,
    async sleep(ms, signal) {
      const until = now() + ms;
      while (!stopped && !signal?.aborted) {
        const left = until - now();
        if (left <= 0) return;
        // Wake at the extrapolated instant, and at least every 250 ms to follow a changed rate.
        await systemTimer.sleep(Math.min(250, Math.max(1, rate > 0 ? left / rate : 250)), signal);
      }
    },
    stop() {
      stopped = true;
      clearInterval(loop);
    },
  };
}
