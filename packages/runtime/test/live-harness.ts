// The runtime's live integration tests, shared: a live bot in this process against the exchange
// simulator (real ccxt client, loopback), stepped bar by bar; a live bot in its own process
// (fixtures/live-bot.ts), to be killed with SIGKILL; bars and clocks for both.
// No vitest import here: the bot fixture (a plain node process) uses it too.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type AnyStrategy,
  type BacktestResult,
  type BarSeries,
  defineInstrument,
  type EngineEvent,
  type FeedKey,
  type RiskConfig,
  runBacktest,
  seriesFromRows,
  sliceSeries,
} from '@keel/core';
import { readBarsFile } from '@keel/data';
import { ManualTimer, type Timer } from '@keel/exchange';
import {
  type ExchangeSim,
  type ExchangeSimOptions,
  readBarsFile as readSimBars,
  type SimAccountOptions,
  type SimBar,
  type SimMarketOptions,
  startExchangeSim,
} from '@keel/exchange-sim';
import type { Store } from '@keel/store';
import { dataFile, HAS_SHARED_DATA } from '../../../test-support/shared.ts';
import {
  Bot,
  type BotConfig,
  type ConnectOptions,
  connectExchange,
  type ExchangeConnection,
  type SessionReport,
} from '../src/index.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
export const KEY = { apiKey: 'live-key', secret: 'live-secret' };
export const T0 = Date.UTC(2024, 0, 1);
export const MIN = 60_000;
export const FEED: FeedKey = { symbol: 'BTC/USDT', timeframe: '1m' };

/** The keel bin as a user runs it: its output collected, its exit awaited. */
export interface KeelProcess {
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  /** What it wrote so far. */
  readonly out: () => string;
  readonly err: () => string;
}

export function keelProcess(args: readonly string[], cwd: string, env: Record<string, string> = {}): KeelProcess {
  const proc = spawn(process.execPath, [path.join(here, '../../../apps/cli/bin/keel.js'), ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => void (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => void (err += d.toString()));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { proc, exited, out: () => out, err: () => err };
}

export async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** The USDⓈ-M perpetual of the futures tests, and Binance's LINKUSDT USD-M 1m candles and funding of 2023-02. */
export const PERP: FeedKey = { symbol: 'LINK/USDT:USDT', timeframe: '1m' };
export const LINK_USDM_BARS = dataFile('binance-futures-um_LINKUSDT_1m_2023-02.csv.gz');
export const LINK_USDM_FUNDING = dataFile('binance-futures-um_LINKUSDT_fundingRate_2023-02.csv.gz');

let linkBars: SimBar[] | undefined;

/**
 * The futures simulator on LINKUSDT (LINK_USDM_BARS, with Binance's funding archive) from
 * `startTime`, one account (KEY) with `usdt`, Binance's default USD-M fees; a one-level book
 * holding the bar's volume one tick wide, so a market buy fills at the price + 0.001 and a sell at
 * the price; rate limits out of the way of a bot stepped bar after bar.
 */
export function futuresSim(startTime: number, usdt = 10_000): Promise<ExchangeSim> {
  linkBars ??= readSimBars(LINK_USDM_BARS);
  return startExchangeSim({
    market: 'futures',
    markets: [
      {
        symbol: 'LINK/USDT',
        bars: linkBars,
        tickSize: 0.001,
        stepSize: 0.01,
        minNotional: 5,
        funding: LINK_USDM_FUNDING,
      },
    ],
    accounts: [{ ...KEY, balances: { USDT: usdt } }],
    liquidity: { participation: 1, bookLevels: 1, spreadTicks: 1 },
    rateLimits: { weightPerMinute: 1_000_000 },
    startTime,
  });
}

/**
 * A bot on the futures simulator reads the exchange's funding and forced-order histories after
 * every bar it holds a position through (Binance weight 55: income, forceOrders, allOrders): stepped bar after bar, that is more
 * than Binance's budget per second, which the simulator's own limit is raised to allow. The
 * gateway's token buckets (Binance USDⓈ-M's budget by default) are raised to match, so they do not
 * pace the test.
 */
export function futuresConnect(url: string, botId: string, log: ConnectOptions['log']): ConnectOptions {
  const c = fastConnect(url, KEY, botId, log);
  const bucket = { capacity: 1_000_000, refillPerSec: 1_000_000 };
  return {
    ...c,
    exchange: 'binanceusdm',
    symbols: [PERP.symbol],
    gateway: { ...c.gateway, limits: { orders: bucket, queries: bucket, 'market-data': bucket } },
  };
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

/**
 * A paper bot on BTC/USDT 1m as `keel paper` sets one up: 10,000 USDT, fee 0.1 %, quiet log;
 * `over` adds or replaces settings.
 */
export function paperBotConfig(
  store: Store,
  botId: string,
  strategy: AnyStrategy,
  over: Partial<BotConfig> = {},
): BotConfig {
  return {
    botId,
    mode: 'paper',
    strategy,
    params: {},
    feeds: [FEED],
    instruments: [defineInstrument({ symbol: FEED.symbol })],
    store,
    log: () => {},
    paperCash: 10_000,
    paperFee: 0.001,
    ...over,
  };
}

/** `n` quiet minutes from T0: opens 10 apart, a 40-wide range (hand-made; for order-path tests). */
export function quietBars(n: number): SimBar[] {
  return Array.from({ length: n }, (_, i) => {
    const o = 40_000 + 10 * i;
    return { time: T0 + i * MIN, open: o, high: o + 20, low: o - 20, close: o + 5, volume: 50 };
  });
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

/**
 * The oracle of a live run on `bars`: the backtest of the bars its bot handled, with its market's
 * filters, 10,000 USDT and the fee model given (`fee`, `feeAsset`).
 */
export function backtestOfRun(
  run: LiveRun,
  bars: readonly SimBar[],
  strategy: AnyStrategy,
  params: unknown,
  fees: { readonly fee: number; readonly feeAsset: 'quote' | 'received' },
): BacktestResult {
  return runBacktest({
    strategy,
    params,
    data: [{ ...FEED, series: toSeries(bars.slice(0, run.bot.barsHandled)), instrument: run.bot.cfg.instruments[0]! }],
    cash: 10_000,
    ...fees,
  });
}

/**
 * The backtest of `bars` as Binance spot trades BTC/USDT (tick 0.01, step 0.00001) for 10,000
 * USDT with its default fee, 0.1 % taken in the coin received: the oracle of a live run on them.
 * `feeAsset: 'quote'`: the paper bot's fee model (0.1 % in USDT), the oracle of a paper run.
 */
export function binanceSpotBacktest(
  strategy: AnyStrategy,
  bars: readonly SimBar[],
  risk?: RiskConfig,
  feeAsset: 'received' | 'quote' = 'received',
): BacktestResult {
  return runBacktest({
    strategy,
    data: [
      {
        symbol: 'BTC/USDT',
        timeframe: '1m',
        series: toSeries(bars),
        instrument: defineInstrument({ symbol: 'BTC/USDT', tickSize: 0.01, stepSize: 0.00001 }),
      },
    ],
    cash: 10_000,
    fee: 0.001,
    feeAsset,
    ...(risk ? { risk } : {}),
  });
}

/** The series a backtest takes, from the simulator's bars (the oracle runs on the same bars). */
export function toSeries(bars: readonly SimBar[]): BarSeries {
  return seriesFromRows(bars);
}

/**
 * The simulator's wall clock (its rate-limit windows, a 429's Retry-After), which a test moves
 * forward: `toMinuteEnd` jumps it to `msBefore` ms before the end of a minute, so that a storm's
 * Retry-After (the rest of Binance's weight window) is short and known. The jump is anything up to
 * a minute, while the client signs its requests with this machine's clock: the simulator's
 * timestamp check is therefore kept on the machine's clock (`skewServerClock` by minus the jumps).
 * Without that, a jump close to a minute plus a request's latency on a loaded machine put every
 * signed request outside the 59 s recvWindow (-1021, which no re-sync cures against a replaying
 * exchange): the bot could place nothing for the rest of the test.
 */
export function movableWallClock(): {
  now: () => number;
  toMinuteEnd(msBefore: number, sim: Pick<ExchangeSim, 'faults'>): void;
} {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    toMinuteEnd(msBefore, sim) {
      const w = Date.now() + offset;
      offset += (((60_000 - msBefore - (w % 60_000)) % 60_000) + 60_000) % 60_000;
      sim.faults.skewServerClock(-offset);
    },
  };
}

/**
 * The simulator with one account (KEY) and the BTC/USDT market on `bars`, replayed from the first;
 * `markets` are more markets beside it (BNB/USDT for an account paying its fees with BNB), `account`
 * more settings of the account (`payFeesWithBnb`).
 */
export function startSim(o: {
  readonly bars: readonly SimBar[];
  readonly balances?: Record<string, number>;
  readonly sim?: Partial<ExchangeSimOptions>;
  readonly markets?: readonly SimMarketOptions[];
  readonly account?: Partial<SimAccountOptions>;
}): Promise<ExchangeSim> {
  return startExchangeSim({
    ...o.sim,
    markets: [{ symbol: FEED.symbol, bars: [...o.bars] }, ...(o.markets ?? [])],
    accounts: [{ ...KEY, balances: o.balances ?? { USDT: 100_000 }, ...o.account }],
    startTime: o.bars[0]!.time,
  });
}

/**
 * Binance's BNBUSDT 1m candles of January 2024 over the minutes of `bars` (from ../shared): the
 * market that prices a commission paid in BNB.
 */
export function bnbMarket(bars: readonly SimBar[]): SimMarketOptions {
  const from = bars[0]!.time;
  const to = bars.at(-1)!.time;
  bnbBars ??= readSimBars(dataFile('binance_BNBUSDT_1m_2024-01.csv.gz'));
  return {
    symbol: 'BNB/USDT',
    bars: bnbBars.filter((b) => b.time >= from && b.time <= to),
    tickSize: 0.01,
    stepSize: 0.001,
  };
}
let bnbBars: SimBar[] | undefined;

export interface LiveRun {
  readonly sim: ExchangeSim;
  readonly bot: Bot;
  readonly conn: ExchangeConnection;
  /** The bot's GTD timer: it follows the simulator's replay clock. */
  readonly timer: ManualTimer;
  /** Every engine event, in order. */
  readonly events: EngineEvent[];
  /** Steps the simulator one bar; resolves when the bot has handled the bar that closed and settled. */
  step(): Promise<void>;
  /** Moves the simulator and the timer to `t` (one replay event at a time) and lets the bot settle. */
  advanceTo(t: number): Promise<void>;
  /** Stops the bot (graceful; open orders kept unless `bot.onShutdown` says otherwise) and the simulator it started. */
  close(): Promise<void>;
}

/**
 * A live bot in this process, on `exchange` (a running simulator) or on a simulator started here
 * on `bars` (closed with the run).
 */
export async function startLiveBot(opts: {
  readonly strategy: AnyStrategy;
  readonly store: Store;
  readonly exchange?: ExchangeSim;
  readonly bars?: readonly SimBar[];
  readonly balances?: Record<string, number>;
  readonly sim?: Partial<ExchangeSimOptions>;
  /** More markets and account settings of the simulator started here (see startSim). */
  readonly markets?: readonly SimMarketOptions[];
  readonly account?: Partial<SimAccountOptions>;
  readonly botId?: string;
  readonly onSend?: (clientOrderId: string) => void;
  readonly log?: (level: string, msg: string) => void;
  /** Anything else of the bot's configuration (unknownOrders, onShutdown, ...). */
  readonly bot?: Partial<BotConfig>;
  /** The market (default FEED) and connection settings besides fastConnect's (e.g. binanceusdm). */
  readonly feed?: FeedKey;
  readonly connect?: Partial<ConnectOptions>;
}): Promise<LiveRun> {
  const own = opts.exchange === undefined;
  const sim =
    opts.exchange ??
    (await startSim({
      bars: opts.bars ?? [],
      ...(opts.balances ? { balances: opts.balances } : {}),
      ...(opts.sim ? { sim: opts.sim } : {}),
      ...(opts.markets ? { markets: opts.markets } : {}),
      ...(opts.account ? { account: opts.account } : {}),
    }));
  const log = opts.log ?? ((l: string, m: string) => process.env.KEEL_DEBUG && process.stderr.write(`${l} ${m}\n`));
  const botId = opts.botId ?? 'lt';
  const feed = opts.feed ?? FEED;
  const conn = await connectExchange({
    ...fastConnect(sim.httpUrl, KEY, botId, log),
    symbols: [feed.symbol],
    ...opts.connect,
  });
  const timer = new ManualTimer(sim.now());
  const events: EngineEvent[] = [];
  const bot = new Bot({
    botId,
    mode: 'live',
    strategy: opts.strategy,
    params: {},
    feeds: [feed],
    instruments: [await conn.instrument(feed.symbol)],
    store: opts.store,
    log,
    exchange: conn.live,
    exchangeName: opts.connect?.exchange ?? 'binance',
    onShutdown: 'keep',
    timer,
    onEvent: (e) => events.push(e),
    ...(opts.onSend ? { onSend: opts.onSend } : {}),
    ...opts.bot,
  });
  try {
    await bot.start();
  } catch (e) {
    await conn.close();
    if (own) await sim.close();
    throw e;
  }
  const source = conn.candles(feed, bot.lastHandled(feed));
  const running = bot.run(source);
  const stream = feed.symbol.split(':')[0]!.replace('/', '').toLowerCase();
  await sim.waitForSubscription(`${stream}@kline_${feed.timeframe}`, 10_000);
  await sim.waitForSubscription(`user:${KEY.apiKey}`, 10_000);
  const syncTimer = () => timer.advance(sim.now() - timer.now());
  return {
    sim,
    bot,
    conn,
    timer,
    events,
    async step() {
      const k = bot.barsHandled;
      sim.step();
      await syncTimer();
      await until(() => bot.barsHandled > k, 10_000, `bar ${k} to be handled`);
      await bot.settled();
    },
    async advanceTo(t) {
      while (sim.now() < t) {
        sim.tick();
        await syncTimer();
      }
      await bot.settled();
    },
    async close() {
      try {
        await source.close();
        await running;
        await bot.stop('test');
      } finally {
        await conn.close();
        if (own) await sim.close();
      }
    },
  };
}

/**
 * Steps `run` through the bars after its first up to the one before the last of `n` (each handled
 * and settled), then stops it; returns its session report as it stood before the stop, and the
 * orders the engine denied or the exchange rejected (`id: reason`), which a round-trip test expects none of.
 */
export async function runThrough(run: LiveRun, n: number): Promise<{ report: SessionReport; refused: string[] }> {
  let report: SessionReport;
  try {
    for (let k = 1; k < n - 1; k++) await run.step();
    report = run.bot.report();
  } finally {
    await run.close();
  }
  const refused = run.events.flatMap((e) =>
    e.type === 'order.denied' || e.type === 'order.rejected' ? [`${e.order.request.id}: ${e.reason}`] : [],
  );
  return { report, refused };
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
    env: Record<string, string> = {},
  ) {
    this.proc = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(here, 'fixtures/live-bot.ts'), simUrl, storeUrl, botId, strategy],
      {
        env: { ...process.env, KEEL_API_KEY: key.apiKey, KEEL_API_SECRET: key.secret, ...env },
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
  /** kill -9 (a restart takes the dead process's SQLite lock over at once). */
  async crash(): Promise<void> {
    this.proc.kill('SIGKILL');
    await this.exited;
  }
}

/**
 * A perpetual bot in its own process (`BotProcess`, the `perp` script of fixtures/live-bot.ts) on
 * the futures simulator: `start` one and wait until it is ready and follows the candles;
 * `stepThrough` the replay past bar `t` and wait until the bot has handled it and settled its orders.
 */
export function perpBot(
  sim: ExchangeSim,
  storeUrl: string,
  botId: string,
  env: Record<string, string>,
): { start(): Promise<BotProcess>; stepThrough(p: BotProcess, t: number): Promise<void> } {
  return {
    async start() {
      const p = new BotProcess(sim.httpUrl, storeUrl, botId, KEY, 'perp', env);
      await p.waitFor(() => p.lines.includes('READY'), 'the bot to start', 30_000);
      await sim.waitForSubscription('linkusdt@kline_1m', 10_000);
      return p;
    },
    async stepThrough(p, t) {
      while (sim.now() < t + 60_000) sim.step();
      await p.waitFor(() => p.lines.includes(`SETTLED ${t}`), `bar ${new Date(t).toISOString()} and its orders`);
    },
  };
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
