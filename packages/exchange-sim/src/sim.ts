/**
 * The running simulator: one HTTP server carrying the REST API, the WebSocket side and (with
 * `admin`) the admin endpoint, around a `SpotExchange`. This is the composition root of the
 * package: the wall clock and timers are read here and handed to the parts that need them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleAdminRequest, isAdminPath, isLoopbackHost } from './admin.ts';
import { checkBars, inferIntervalMs, readBarsFile, syntheticBars } from './bars.ts';
import type { MarketSpec } from './exchange/model.ts';
import { SpotExchange } from './exchange/spot-exchange.ts';
import { SimFaults } from './faults.ts';
import { ListenKeys } from './listen-keys.ts';
import { RestApi } from './rest/server.ts';
import type { ExchangeSimOptions, SimAccountOptions, SimBalance, SimBar, SimOrder } from './types.ts';
import { WsGateway } from './ws/gateway.ts';

/** A running simulator: one HTTP server carrying REST and WebSocket on the same port. */
export class ExchangeSim {
  /** `http://127.0.0.1:<port>` */
  readonly httpUrl: string;
  /** `ws://127.0.0.1:<port>`; market streams at /ws and /stream, the WS API at /ws-api/v3. */
  readonly wsUrl: string;
  readonly port: number;
  readonly faults: SimFaults;
  /** Whether the admin endpoint (`keel exchange-sim fault`) is served. */
  readonly admin: boolean;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  /** @internal use startExchangeSim */
  constructor(
    private readonly server: Server,
    private readonly exchange: SpotExchange,
    private readonly rest: RestApi,
    private readonly ws: WsGateway,
    parts: { faults: SimFaults; host: string; admin: boolean },
  ) {
    const addr = server.address() as AddressInfo;
    this.port = addr.port;
    const host = parts.host.includes(':') ? `[${parts.host}]` : parts.host;
    this.httpUrl = `http://${host}:${addr.port}`;
    this.wsUrl = `ws://${host}:${addr.port}`;
    this.faults = parts.faults;
    this.admin = parts.admin;
  }

  /** The replay clock, UTC ms. */
  now(): number {
    return this.exchange.now();
  }

  /** The bar interval `step()` moves by (the smallest over the markets). */
  get intervalMs(): number {
    return this.exchange.baseIntervalMs;
  }

  /**
   * Moves the clock forward by n bars (to the n-th next bar boundary): closes the current bar
   * (kline x=true) and replays the next bar's opening tick. Returns the new time.
   */
  step(n = 1): number {
    const interval = this.exchange.baseIntervalMs;
    let t = this.exchange.now();
    for (let i = 0; i < n; i++) t = Math.floor(t / interval) * interval + interval;
    this.exchange.advanceTo(t);
    return t;
  }

  /** Replays the next intra-bar price-path event (one of the 4 ticks or a bar close). */
  tick(n = 1): number {
    for (let i = 0; i < n; i++) {
      const t = this.exchange.nextEvent();
      if (!Number.isFinite(t)) break;
      this.exchange.advanceTo(t);
    }
    return this.exchange.now();
  }

  /** Replays every event up to time t (UTC ms). */
  advanceTo(time: number): void {
    this.exchange.advanceTo(time);
  }

  addAccount(account: SimAccountOptions): void {
    this.exchange.addAccount(account);
  }

  getBalances(apiKey: string): Record<string, SimBalance> {
    return this.exchange.balances(apiKey);
  }

  getOrders(apiKey: string): SimOrder[] {
    return this.exchange.ordersOf(apiKey);
  }

  /** Last traded price of a market (unified or Binance symbol). */
  price(symbol: string): number {
    const m = this.exchange.market(symbol.replace('/', ''));
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
    const sim0 = this.exchange.now();
    this.timer = setInterval(() => this.exchange.advanceTo(sim0 + (wall() - wall0) * speed), 50);
    this.timer.unref();
  }
}

const DEFAULT_FEES = { maker: 0.001, taker: 0.001 };
/** Where seeded synthetic bars start when a market has no data and no startTime is given. */
const SYNTHETIC_START = Date.UTC(2024, 0, 1);

function marketSpecs(opts: ExchangeSimOptions): MarketSpec[] {
  return opts.markets.map((m, i) => {
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
}

export async function startExchangeSim(opts: ExchangeSimOptions): Promise<ExchangeSim> {
  if (opts.markets.length === 0) throw new Error('startExchangeSim: at least one market is required');
  const host = opts.host ?? '127.0.0.1';
  const admin = opts.admin === true;
  if (admin && !isLoopbackHost(host))
    throw new Error(
      `the admin endpoint needs a loopback host (127.0.0.1, ::1 or localhost), got "${host}": it must never be reachable from another machine`,
    );
  const wall = opts.wallClock ?? Date.now;
  const markets = marketSpecs(opts);
  const exchange = new SpotExchange({
    markets,
    accounts: opts.accounts ?? [],
    fees: opts.fees ?? DEFAULT_FEES,
    participation: opts.liquidity?.participation ?? 0.1,
    bookLevels: opts.liquidity?.bookLevels ?? 20,
    spreadTicks: opts.liquidity?.spreadTicks ?? 1,
    startTime: opts.startTime ?? Math.min(...markets.map((m) => m.bars[0]?.time ?? Number.POSITIVE_INFINITY)),
  });
  const listenKeys = new ListenKeys();
  // The faults act on the WS gateway, which reads the faults on every send: the gateway is
  // reached through this closure, built just below.
  const faults: SimFaults = new SimFaults({ drop: (filter, apiKey): number => ws.drop(filter, apiKey) }, wall, {
    rejectOrders: (rejection) => exchange.matching.rejectOrders(rejection),
    forceFill: (apiKey) => exchange.matching.forceFillOpenOrders(apiKey),
  });
  const rest = new RestApi({
    exchange,
    faults,
    wall,
    rateLimits: {
      weightPerMinute: opts.rateLimits?.weightPerMinute ?? 6000,
      banAfter: opts.rateLimits?.banAfter ?? 5,
      banMs: opts.rateLimits?.banMs ?? 120_000,
    },
    listenKeys,
  });
  const ws: WsGateway = new WsGateway({
    exchange,
    faults,
    listenKeys,
    signer: rest.requestSigner,
    runRoute: (route, params, apiKey) => rest.run(route, params, apiKey),
  });
  const server = createServer((req, res) => {
    const handled = isAdminPath(req.url)
      ? handleAdminRequest(req, res, { enabled: admin, faults })
      : rest.handle(req, res);
    handled.catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: -1000, msg: String(e) }));
    });
  });
  server.keepAliveTimeout = 1000;
  ws.attach(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const sim = new ExchangeSim(server, exchange, rest, ws, { faults, host, admin });
  if (opts.speed !== undefined && opts.speed > 0) sim.run(opts.speed, wall);
  return sim;
}
