import { Agent, createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkBars, inferIntervalMs, readBarsFile, syntheticBars } from './bars.ts';
import { Engine, type EngineMarket } from './engine.ts';
import { SimFaults } from './faults.ts';
import { RestApi } from './rest.ts';
import type { ExchangeSimOptions, SimAccountOptions, SimBalance, SimBar, SimOrder } from './types.ts';
import { WsGateway } from './ws.ts';

/** A running simulator: one HTTP server carrying REST and WebSocket on the same port. */
export class ExchangeSim {
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string;
  /** `ws://127.0.0.1:<port>`; market streams at /ws and /stream, the WS API at /ws-api/v3. */
  readonly wsUrl: string;
  readonly port: number;
  readonly faults: SimFaults;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  /** @internal use startExchangeSim */
  constructor(
    private readonly server: Server,
    private readonly engine: Engine,
    private readonly rest: RestApi,
    private readonly ws: WsGateway,
    faults: SimFaults,
    host: string,
  ) {
    const addr = server.address() as AddressInfo;
    this.port = addr.port;
    this.httpUrl = `http://${host}:${addr.port}`;
    this.wsUrl = `ws://${host}:${addr.port}`;
    this.faults = faults;
  }

  /** The replay clock, UTC ms. */
  now(): number {
    return this.engine.now();
  }

  /** The bar interval `step()` moves by (the smallest over the markets). */
  get intervalMs(): number {
    return this.engine.baseIntervalMs;
  }

  /**
   * Moves the clock forward by n bars (to the n-th next bar boundary): closes the current bar
   * (kline x=true) and replays the next bar's opening tick. Returns the new time.
   */
  step(n = 1): number {
    const iv = this.engine.baseIntervalMs;
    let t = this.engine.now();
    for (let i = 0; i < n; i++) t = Math.floor(t / iv) * iv + iv;
    this.engine.advanceTo(t);
    return t;
  }

  /** Replays the next intra-bar price-path event (one of the 4 ticks or a bar close). */
  tick(n = 1): number {
    for (let i = 0; i < n; i++) {
      const t = this.engine.nextEvent();
      if (!Number.isFinite(t)) break;
      this.engine.advanceTo(t);
    }
    return this.engine.now();
  }

  /** Replays every event up to time t (UTC ms). */
  advanceTo(time: number): void {
    this.engine.advanceTo(time);
  }

  addAccount(account: SimAccountOptions): void {
    this.engine.addAccount(account);
  }

  getBalances(apiKey: string): Record<string, SimBalance> {
    return this.engine.balances(apiKey);
  }

  getOrders(apiKey: string): SimOrder[] {
    return this.engine.ordersOf(apiKey);
  }

  /** Last traded price of a market (unified or Binance symbol). */
  price(symbol: string): number {
    const m = this.engine.market(symbol.replace('/', ''));
    if (!m) throw new Error(`unknown market ${symbol}`);
    return m.price;
  }

  /** Streams currently subscribed by WS clients, e.g. `btcusdt@kline_1m` or `user:<apiKey>`. */
  subscriptions(): string[] {
    return this.ws.subscriptions();
  }

  /** Resolves once some client subscribes to the stream (tests: subscribe, then step). */
  waitForSubscription(stream: string, timeoutMs = 5000): Promise<void> {
    return this.ws.waitForSubscription(stream, timeoutMs);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.rest.close();
    this.ws.close();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** @internal starts the wall-clock replay at `speed` x real time. */
  run(speed: number, wall: () => number): void {
    const wall0 = wall();
    const sim0 = this.engine.now();
    this.timer = setInterval(() => this.engine.advanceTo(sim0 + (wall() - wall0) * speed), 50);
    this.timer.unref();
  }
}

const DEFAULT_FEES = { maker: 0.001, taker: 0.001 };
/** Where seeded synthetic bars start when a market has no data and no startTime is given. */
const SYNTHETIC_START = Date.UTC(2024, 0, 1);

export async function startExchangeSim(opts: ExchangeSimOptions): Promise<ExchangeSim> {
  if (opts.markets.length === 0) throw new Error('startExchangeSim: at least one market is required');
  const wall = opts.wallClock ?? Date.now;
  const markets: EngineMarket[] = opts.markets.map((m, i) => {
    const [base, quote] = m.symbol.split('/');
    if (!base || !quote) throw new Error(`market symbol must be BASE/QUOTE, got "${m.symbol}"`);
    const bars: SimBar[] =
      typeof m.bars === 'string'
        ? readBarsFile(m.bars)
        : m.bars === undefined
          ? syntheticBars({ start: opts.startTime ?? SYNTHETIC_START, seed: i + 1 })
          : [...m.bars];
    if (bars.length === 0) throw new Error(`market ${m.symbol} has no bars to replay`);
    checkBars(bars, `market ${m.symbol}`);
    const stepSize = m.stepSize ?? 0.00001;
    return {
      symbol: m.symbol,
      id: `${base}${quote}`,
      base,
      quote,
      tickSize: m.tickSize ?? 0.01,
      stepSize,
      minQty: m.minQty ?? stepSize,
      minNotional: m.minNotional ?? 5,
      bars,
      intervalMs: inferIntervalMs(bars),
    };
  });
  const startTime = opts.startTime ?? Math.min(...markets.map((m) => m.bars[0]!.time));
  const engine = new Engine({
    markets,
    accounts: opts.accounts ?? [],
    fees: opts.fees ?? DEFAULT_FEES,
    participation: opts.liquidity?.participation ?? 0.1,
    bookLevels: opts.liquidity?.bookLevels ?? 20,
    spreadTicks: opts.liquidity?.spreadTicks ?? 1,
    startTime,
  });
  const listenKeys = new Map<string, string>();
  // The WS gateway and the faults refer to each other; the gateway is built first.
  let faults: SimFaults | undefined;
  let rest: RestApi | undefined;
  const ws = new WsGateway({
    engine,
    get faults() {
      return faults!;
    },
    get rest() {
      return rest!;
    },
    wall,
    listenKeys,
  });
  faults = new SimFaults(ws, wall, {
    rejectNextOrder: (code, msg) => engine.rejectNextOrder(code, msg),
    forceFill: (apiKey) => engine.forceFillOpenOrders(apiKey),
  });
  rest = new RestApi({
    engine,
    faults,
    wall,
    weightPerMinute: opts.rateLimits?.weightPerMinute ?? 6000,
    banAfter: opts.rateLimits?.banAfter ?? 5,
    banMs: opts.rateLimits?.banMs ?? 120_000,
    listenKeys,
    onListenKeyClosed: (k) => ws.closeListenKey(k),
  });
  const server = createServer((req, res) => {
    rest!.handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: -1000, msg: String(e) }));
    });
  });
  server.keepAliveTimeout = 1000;
  ws.attach(server);
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const sim = new ExchangeSim(server, engine, rest, ws, faults, host);
  if (opts.speed !== undefined && opts.speed > 0) sim.run(opts.speed, wall);
  return sim;
}

/**
 * Constructor options for `new ccxt.binance(...)` / `new ccxt.pro.binance(...)` against the sim:
 * every spot URL points at it, and loadMarkets is kept to the one endpoint the sim serves
 * (`fetchMarkets: spot only`, `fetchCurrencies: false` so no sapi capital/config/getall,
 * `fetchMargins: false` so no sapi margin/allPairs). ccxt refuses plain `ws://` URLs unless it
 * has an `httpAgent`, so one (without keep-alive, so it holds no sockets open) is provided.
 */
export interface CcxtExtraConfig {
  timeout?: number;
  enableRateLimit?: boolean;
  verbose?: boolean;
  /** Merged over the sim's options (e.g. `{ recvWindow: 60000 }`). */
  options?: Record<string, unknown>;
  [key: string]: unknown;
}

/** What `ccxtConfigFor` returns: assignable to ccxt's constructor arguments without a cast. */
export interface CcxtSimConfig {
  apiKey?: string;
  secret?: string;
  timeout?: number;
  enableRateLimit?: boolean;
  verbose?: boolean;
  httpAgent: Agent;
  urls: { api: Record<string, unknown> };
  options: Record<string, unknown>;
}

export function ccxtConfigFor(
  sim: Pick<ExchangeSim, 'httpUrl' | 'wsUrl'>,
  key?: { apiKey: string; secret: string },
  extra: CcxtExtraConfig = {},
): CcxtSimConfig {
  const rest = `${sim.httpUrl}/api/v3`;
  const extraOptions = extra.options ?? {};
  return {
    ...(key ? { apiKey: key.apiKey, secret: key.secret } : {}),
    httpAgent: new Agent({ keepAlive: false }),
    ...extra,
    urls: {
      api: {
        public: rest,
        private: rest,
        v3: rest,
        v1: `${sim.httpUrl}/api/v1`,
        sapi: `${sim.httpUrl}/sapi/v1`,
        sapiV2: `${sim.httpUrl}/sapi/v2`,
        sapiV3: `${sim.httpUrl}/sapi/v3`,
        sapiV4: `${sim.httpUrl}/sapi/v4`,
        fapiPublic: `${sim.httpUrl}/fapi/v1`,
        dapiPublic: `${sim.httpUrl}/dapi/v1`,
        ws: {
          spot: `${sim.wsUrl}/ws`,
          margin: `${sim.wsUrl}/ws`,
          'ws-api': { spot: `${sim.wsUrl}/ws-api/v3` },
        },
      },
    },
    options: {
      defaultType: 'spot',
      fetchMarkets: { types: ['spot'] },
      fetchCurrencies: false,
      fetchMargins: false,
      adjustForTimeDifference: false,
      ...extraOptions,
    },
  };
}
