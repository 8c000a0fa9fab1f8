// Shared setup of the runtime's integration tests: a live bot (in this process, or in its own
// process to be killed with SIGKILL) on the exchange simulator, through the real ccxt client.
// No vitest import here: the bot fixture (a plain node process) uses it too.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type AnyStrategy, type BarSeries, barSeries, type EngineEvent, type FeedKey, sliceSeries } from '@keel/core';
import { readBarsFile } from '@keel/data';
import { ManualTimer, type Timer } from '@keel/exchange';
import type { ExchangeSim, SimBar } from '@keel/exchange-sim';
import type { Store } from '@keel/store';
import { dataFile, HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import { Bot, type BotConfig, type ConnectOptions, connectExchange, type ExchangeConnection } from '../src/index.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
export const T0 = Date.UTC(2024, 0, 1);
export const MIN = 60_000;
export const FEED: FeedKey = { symbol: 'BTC/USDT', timeframe: '1m' };

export async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** Connection settings for loopback: production logic, short timeouts and retries. */
export function fastConnect(
  url: string,
  key: { apiKey: string; secret: string },
  botId: string,
  log: ConnectOptions['log'],
): ConnectOptions {
  return {
    exchange: 'binance',
    url,
    ...key,
    botId,
    symbols: [FEED.symbol],
    log,
    warmupBars: 0,
    pollMs: 300,
    staleAfterMs: 1_500,
    reconnectMaxMs: 500,
    ccxtOptions: { timeout: 1_500, options: { recvWindow: 59_000 } },
    gateway: {
      seed: 3,
      lookupDelayMs: 50,
      retry: { maxAttempts: 6, baseMs: 30, maxMs: 400 },
      breaker: { failureThreshold: 50, openMs: 500 },
    },
  };
}

/** The first `n` real BTCUSDT 1m candles of January 2024 (from ../shared; suites skip without it). */
export function realCandles(n: number): BarSeries {
  return HAS_SHARED_DATA
    ? sliceSeries(readBarsFile(dataFile('binance_BTCUSDT_1m_2024-01.csv.gz')).series, 0, n)
    : (undefined as never);
}

/** Bars as the simulator takes them, from a series (real candles from ../shared). */
export function simBars(series: BarSeries): SimBar[] {
  return Array.from({ length: series.length }, (_, i) => ({
    time: series.time[i]!,
    open: series.open[i]!,
    high: series.high[i]!,
    low: series.low[i]!,
    close: series.close[i]!,
    volume: series.volume[i]!,
  }));
}

/** The series a backtest takes, from the simulator's bars (the oracle runs on the same bars). */
export function toSeries(bars: readonly SimBar[]): BarSeries {
  const col = (k: 'time' | 'open' | 'high' | 'low' | 'close' | 'volume') => bars.map((b) => b[k]);
  return barSeries({
    time: col('time'),
    open: col('open'),
    high: col('high'),
    low: col('low'),
    close: col('close'),
    volume: col('volume'),
  });
}

/** A live bot in this process on the simulator; its GTD timer follows the simulator's replay clock. */
export interface LiveBot {
  readonly bot: Bot;
  readonly conn: ExchangeConnection;
  readonly timer: ManualTimer;
  /** Every engine event, in order. */
  readonly events: EngineEvent[];
  /** One bar on the simulator; resolves when the bot has handled the bar that closed and settled. */
  step(): Promise<void>;
  /** Moves the simulator and the timer to `t` (one replay event at a time) and lets the bot settle. */
  advanceTo(t: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startLiveBot(o: {
  sim: ExchangeSim;
  key: { apiKey: string; secret: string };
  store: Store;
  botId: string;
  strategy: AnyStrategy;
  params?: unknown;
  log?: ConnectOptions['log'];
  bot?: Partial<BotConfig>;
}): Promise<LiveBot> {
  const log = o.log ?? (() => {});
  const conn = await connectExchange(fastConnect(o.sim.httpUrl, o.key, o.botId, log));
  const timer = new ManualTimer(o.sim.now());
  const events: EngineEvent[] = [];
  const bot = new Bot({
    botId: o.botId,
    mode: 'live',
    strategy: o.strategy,
    params: o.params ?? {},
    feeds: [FEED],
    instruments: [await conn.instrument(FEED.symbol)],
    store: o.store,
    log,
    exchange: conn.live,
    exchangeName: 'binance',
    timer,
    lockTtlMs: 1_500,
    onEvent: (e) => events.push(e),
    ...o.bot,
  });
  await bot.start();
  const source = conn.candles(FEED, bot.lastHandled(FEED));
  const running = bot.run(source);
  await o.sim.waitForSubscription('btcusdt@kline_1m', 10_000);
  await o.sim.waitForSubscription(`user:${o.key.apiKey}`, 10_000);
  const syncTimer = () => timer.advance(o.sim.now() - timer.now());
  return {
    bot,
    conn,
    timer,
    events,
    async step() {
      const k = bot.barsHandled;
      o.sim.step();
      await syncTimer();
      await until(() => bot.barsHandled > k, 10_000, `bar ${k} to be handled`);
      await bot.settled();
    },
    async advanceTo(t) {
      while (o.sim.now() < t) {
        o.sim.tick();
        await syncTimer();
      }
      await bot.settled();
    },
    async stop() {
      await source.close();
      await running;
      await bot.stop();
      await conn.close();
    },
  };
}

/**
 * A live bot in its own process (fixtures/live-bot.ts), so that it can be killed with SIGKILL.
 * Its stdout lines are collected: `READY`, `BAR <time>`, `RECOVERY <kind> <detail>`,
 * `EVENT <type> <order id> <time> <stop level>`, `REPORT <json>`.
 */
export class BotProcess {
  readonly lines: string[] = [];
  readonly err: string[] = [];
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  constructor(
    simUrl: string,
    storeUrl: string,
    botId: string,
    key: { apiKey: string; secret: string },
    strategy = 'churn',
  ) {
    this.proc = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(here, 'fixtures/live-bot.ts'), simUrl, storeUrl, botId, strategy],
      {
        env: { ...process.env, KEEL_API_KEY: key.apiKey, KEEL_API_SECRET: key.secret },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let buf = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop() ?? '';
      this.lines.push(...parts);
    });
    this.proc.stderr!.on('data', (d: Buffer) => this.err.push(d.toString()));
    this.exited = new Promise((r) => this.proc.on('exit', (code) => r(code)));
  }
  bars(): number[] {
    return this.lines.filter((l) => l.startsWith('BAR ')).map((l) => Number(l.slice(4)));
  }
  async waitFor(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end || this.proc.exitCode !== null)
        throw new Error(
          `${this.proc.exitCode !== null ? `the bot exited (${this.proc.exitCode})` : 'timed out'} waiting for ${what}\nstdout:\n${this.lines.slice(-20).join('\n')}\nstderr:\n${this.err.join('').slice(-3000)}`,
        );
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  /** kill -9, then wait out the lock's TTL (1.5 s in the fixture) so that a restart may take it over. */
  async crash(): Promise<void> {
    this.proc.kill('SIGKILL');
    await this.exited;
    await new Promise((r) => setTimeout(r, 1_600));
  }
}

/**
 * The simulator's replay clock, read over HTTP (`GET /api/v3/time`) every 25 ms: what a bot in its
 * own process expires GTD orders by. `ready` resolves after the first read.
 */
export function simClockTimer(httpUrl: string): Timer & { ready: Promise<void>; stop(): void } {
  let t = Number.NaN;
  let stopped = false;
  const read = async () => {
    const r = await fetch(`${httpUrl}/api/v3/time`);
    t = ((await r.json()) as { serverTime: number }).serverTime;
  };
  const ready = read();
  const loop = setInterval(() => void read().catch(() => undefined), 25);
  loop.unref();
  return {
    ready,
    now: () => t,
    async sleep(ms, signal) {
      const until = t + ms;
      while (!stopped && !signal?.aborted && !(t >= until)) await new Promise((r) => setTimeout(r, 10).unref());
    },
    stop() {
      stopped = true;
      clearInterval(loop);
    },
  };
}
