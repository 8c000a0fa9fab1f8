/**
 * The running simulator: one HTTP server carrying the REST API, the WebSocket side and (with
 * `admin`) the admin endpoint, around a `SpotExchange` (Binance spot) or a `FuturesExchange`
 * (Binance USDⓈ-M). This is the composition root of the package: the wall clock and timers are
 * read here and handed to the parts that need them.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { handleAdminRequest, isAdminPath, isLoopbackHost } from './admin.ts';
import { checkBars, inferIntervalMs, readBarsFile, syntheticBars } from './bars.ts';
import { FuturesExchange } from './exchange/futures/futures-exchange.ts';
import type { AccountView } from './exchange/futures/ledger.ts';
import type { LiquidationRecord } from './exchange/futures/liquidation.ts';
import type { IncomeRecord, SimAlgoOrder, SimFuturesOrder } from './exchange/futures/model.ts';
import type { MarketSpec } from './exchange/model.ts';
import { SpotExchange } from './exchange/spot-exchange.ts';
import type { SimMarketKind, SimVenue } from './exchange/venue.ts';
import { type FaultExchangeHooks, type ForcedOrderSummary, type OrderRejection, SimFaults } from './faults.ts';
import { DEFAULT_FUTURES_FEES, futuresMarketSpec } from './futures-venue.ts';
import { ListenKeys } from './listen-keys.ts';
import { accountRoutes } from './rest/account.ts';
import { futuresAccountRoutes } from './rest/futures/account.ts';
import { futuresMarketDataRoutes } from './rest/futures/market-data.ts';
import { futuresOrderRoutes } from './rest/futures/orders.ts';
import { marketDataRoutes } from './rest/market-data.ts';
import { orderListRoutes } from './rest/order-lists.ts';
import { orderRoutes } from './rest/orders.ts';
import { FUTURES_ORDER_WINDOWS, SPOT_ORDER_WINDOWS } from './rest/rate-limits.ts';
import type { RouteTable } from './rest/routes.ts';
import { RestApi } from './rest/server.ts';
import type { ExchangeSimOptions, SimAccountOptions, SimBalance, SimBar, SimOrder } from './types.ts';
import { futuresUserEvents } from './ws/futures-user-data.ts';
import { WsGateway } from './ws/gateway.ts';
import { spotUserEvents, type UserEventFormatter } from './ws/user-data.ts';

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
  /** Which Binance protocol it speaks: `spot` (/api/v3) or `futures` (USDⓈ-M, /fapi). */
  readonly market: SimMarketKind;
  /** What the futures options leave uncovered (funding data missing over the replay); shown by the CLI. */
  readonly warnings: readonly string[];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  /** @internal use startExchangeSim */
  constructor(
    private readonly server: Server,
    private readonly exchange: SimVenue,
    private readonly rest: RestApi,
    private readonly ws: WsGateway,
    parts: {
      faults: SimFaults;
      host: string;
      admin: boolean;
      spot: SpotExchange | undefined;
      futures: FuturesExchange | undefined;
      warnings: readonly string[];
    },
  ) {
    const addr = server.address() as AddressInfo;
    this.port = addr.port;
    const host = parts.host.includes(':') ? `[${parts.host}]` : parts.host;
    this.httpUrl = `http://${host}:${addr.port}`;
    this.wsUrl = `ws://${host}:${addr.port}`;
    this.faults = parts.faults;
    this.admin = parts.admin;
    this.market = exchange.kind;
    this.spot = parts.spot;
    this.futures = parts.futures;
    this.warnings = parts.warnings;
  }

  private readonly spot: SpotExchange | undefined;
  private readonly futures: FuturesExchange | undefined;

  /**
   * REST requests received so far per `METHOD /path` (`GET /fapi/v1/userTrades`), every one that
   * arrived, whatever its answer: for tests that hold a client to the requests it makes.
   */
  requestCounts(): Record<string, number> {
    return Object.fromEntries(this.rest.requests);
  }

  /**
   * The most REST requests of each `METHOD /path` the simulator had in hand at once (arrived, not
   * yet answered) so far: for tests that hold a client to how many requests it sends together
   * (with `faults.holdHttpResponses` keeping each in hand for a while).
   */
  requestConcurrency(): Record<string, number> {
    return Object.fromEntries(this.rest.peaks);
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

  /** Spot: free and locked balances. */
  getBalances(apiKey: string): Record<string, SimBalance> {
    return this.spotExchange().balances(apiKey);
  }

  /** Spot: every order of the account. */
  getOrders(apiKey: string): SimOrder[] {
    return this.spotExchange().ordersOf(apiKey);
  }

  /**
   * Futures: the account at the current prices (the mark price is the last price): per asset
   * wallet, margin balance, maintenance and available balance; per position size, entry,
   * unrealised PnL, margins and liquidation price (core's formulas).
   */
  futuresAccount(apiKey: string): AccountView {
    const f = this.futuresExchange();
    const view = f.ledger.view(apiKey, f.matching.openOrders(apiKey));
    return { assets: view.assets, positions: view.positions.map((pv) => ({ ...pv, position: { ...pv.position } })) };
  }

  /** Futures: every order of the account (triggered conditional orders and liquidations included). */
  futuresOrders(apiKey: string): SimFuturesOrder[] {
    return this.futuresExchange().matching.ordersOf(apiKey);
  }

  /** Futures: every conditional (algo) order of the account. */
  algoOrders(apiKey: string): SimAlgoOrder[] {
    return this.futuresExchange().algos.algosOf(apiKey);
  }

  /** Futures: every forced close (liquidations, ADL and settlement closes), optionally of one account. */
  liquidations(apiKey?: string): LiquidationRecord[] {
    return this.futuresExchange().liquidation.liquidations(apiKey);
  }

  /**
   * Futures, an admin/test hook: the exchange auto-deleverages the account's position in `symbol`
   * (unified or Binance symbol): `qty` of it (default all) closed at `price` (default the last
   * price) by an `adl_autoclose` order, no fee; its open orders in the symbol cancelled. Returns
   * the forced close (also in `liquidations()`, with autoCloseType ADL).
   */
  autoDeleverage(apiKey: string, symbol: string, qty?: number, price?: number): LiquidationRecord {
    return this.futuresExchange().liquidation.autoDeleverage(apiKey, binanceSymbol(symbol), qty, price);
  }

  /**
   * An admin/test hook: Binance delists the market `symbol` (unified or Binance symbol).
   * Futures: exchangeInfo says SETTLING, new orders are refused (-4141 "Symbol is closed."), every
   * account's open orders in it are cancelled, and (unless `settle: false`) every position is
   * closed at the settlement `price` (default the last price) by a `settlement_autoclose-` order,
   * charged the taker fee. Returns the settlement closes (also in `liquidations()`, autoCloseType
   * SETTLEMENT; not in forceOrders).
   * Spot: trading halts: exchangeInfo says BREAK, new orders are refused (-1013 "Market is
   * closed."), every account's open orders in it are cancelled by the exchange; the coins stay in
   * the accounts (no settlement: `price` and `settle` are refused). Returns no closes.
   */
  delist(symbol: string, opts: { price?: number; settle?: boolean } = {}): LiquidationRecord[] {
    if (this.market === 'spot') {
      if (opts.price !== undefined || opts.settle === false)
        throw new Error(
          'delist: a spot pair has no settlement (no price, no later settle): its coins stay in the accounts',
        );
      this.spotExchange().matching.halt(binanceSymbol(symbol));
      return [];
    }
    return this.futuresExchange().delist(binanceSymbol(symbol), opts);
  }

  /** Spot, an admin/test hook: trading resumes in a pair halted by `delist` (status TRADING again). */
  relist(symbol: string): void {
    this.spotExchange().matching.resume(binanceSymbol(symbol));
  }

  /** Futures, an admin/test hook: settles a contract delisted with `settle: false` (see `delist`). */
  settle(symbol: string, price?: number): LiquidationRecord[] {
    return this.futuresExchange().liquidation.settle(binanceSymbol(symbol), price);
  }

  /** Futures: the account's income history (realised PnL, commission, funding, clearance). */
  income(apiKey: string): IncomeRecord[] {
    return this.futuresExchange()
      .ledger.income(apiKey)
      .map((r) => ({ ...r }));
  }

  private spotExchange(): SpotExchange {
    if (!this.spot) throw new Error('this simulator speaks USD-M futures: use futuresAccount() / futuresOrders()');
    return this.spot;
  }

  private futuresExchange(): FuturesExchange {
    if (!this.futures) throw new Error('this simulator speaks spot: use getBalances() / getOrders()');
    return this.futures;
  }

  /** Last traded price of a market (unified or Binance symbol). */
  price(symbol: string): number {
    const m = this.exchange.market((symbol.split(':')[0] ?? '').replace('/', ''));
    if (!m) throw new Error(`unknown market ${symbol}`);
    return m.price;
  }

  /** Streams currently subscribed by WS clients, e.g. `btcusdt@kline_1m` or `user:<apiKey>`. */
  subscriptions(): string[] {
    return this.ws.subscriptions();
  }

  /** How many open WebSocket connections carry the account's user data. */
  userConnections(apiKey: string): number {
    return this.ws.userConnections(apiKey);
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
    // A contract's unified symbol carries its settle asset (LINK/USDT:USDT); the id is the pair's.
    const [base, quote] = (m.symbol.split(':')[0] ?? '').split('/');
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

interface Venue {
  venue: SimVenue;
  routes: RouteTable;
  userEvents: UserEventFormatter;
  hooks: FaultExchangeHooks;
  spot: SpotExchange | undefined;
  futures: FuturesExchange | undefined;
  warnings: string[];
}

/** The replay and book settings, spot or futures. */
function replayOptions(opts: ExchangeSimOptions, startTime: number) {
  return {
    participation: opts.liquidity?.participation ?? 0.1,
    bookLevels: opts.liquidity?.bookLevels ?? 20,
    spreadTicks: opts.liquidity?.spreadTicks ?? 1,
    startTime,
  };
}

/** What the order faults do, on either matching engine. */
/** `LINK/USDT:USDT` (ccxt's unified symbol) or `LINKUSDT` as Binance spells it. */
function binanceSymbol(symbol: string): string {
  return (symbol.split(':')[0] ?? '').replace('/', '');
}

function faultHooks(
  matching: {
    rejectOrders(r: OrderRejection | undefined): void;
    forceFillOpenOrders(apiKey: string): number;
    expireInMatch(apiKey: string, clientOrderId: string): boolean;
  },
  futures?: FuturesExchange,
): FaultExchangeHooks {
  const summary = (rs: LiquidationRecord[]): ForcedOrderSummary[] =>
    rs.map((r) => ({
      apiKey: r.apiKey,
      clientOrderId: r.order.clientOrderId,
      orderId: r.order.orderId,
      side: r.order.side,
      qty: r.order.executedQty,
      price: r.price,
    }));
  return {
    rejectOrders: (rejection) => matching.rejectOrders(rejection),
    forceFill: (apiKey) => matching.forceFillOpenOrders(apiKey),
    expireInMatch: (apiKey, id) => matching.expireInMatch(apiKey, id),
    ...(futures
      ? {
          futures: {
            autoDeleverage: (apiKey, symbol, qty, price) =>
              summary([futures.liquidation.autoDeleverage(apiKey, binanceSymbol(symbol), qty, price)]),
            delist: (symbol, opts) => summary(futures.delist(binanceSymbol(symbol), opts)),
            settle: (symbol, price) => summary(futures.liquidation.settle(binanceSymbol(symbol), price)),
          },
        }
      : {}),
  };
}

function spotVenue(
  opts: ExchangeSimOptions,
  markets: MarketSpec[],
  startTime: number,
  weightPerMinute: number,
  listenKeys: ListenKeys,
): Venue {
  const exchange = new SpotExchange({
    ...replayOptions(opts, startTime),
    markets,
    accounts: opts.accounts ?? [],
    fees: opts.fees ?? DEFAULT_FEES,
  });
  return {
    venue: exchange,
    routes: {
      ...marketDataRoutes(exchange, weightPerMinute),
      ...accountRoutes(exchange, listenKeys),
      ...orderRoutes(exchange),
      ...orderListRoutes(exchange),
    },
    userEvents: spotUserEvents(exchange),
    hooks: {
      ...faultHooks(exchange.matching),
      spot: {
        delist: (symbol) => exchange.matching.halt(binanceSymbol(symbol)),
        relist: (symbol) => exchange.matching.resume(binanceSymbol(symbol)),
      },
    },
    spot: exchange,
    futures: undefined,
    warnings: [],
  };
}

function futuresVenue(
  opts: ExchangeSimOptions,
  markets: MarketSpec[],
  startTime: number,
  weightPerMinute: number,
  listenKeys: ListenKeys,
): Venue {
  const warnings: string[] = [];
  const specs = markets.map((spec, i) => {
    const r = futuresMarketSpec(spec, opts.markets[i] ?? { symbol: spec.symbol }, startTime);
    warnings.push(...r.warnings);
    return r.spec;
  });
  const leverage = opts.futures?.defaultLeverage ?? 20;
  if (!Number.isInteger(leverage) || leverage < 1)
    throw new Error(`futures.defaultLeverage must be a whole number >= 1, got ${leverage}`);
  const exchange = new FuturesExchange({
    ...replayOptions(opts, startTime),
    markets: specs,
    accounts: opts.accounts ?? [],
    fees: opts.fees ?? DEFAULT_FUTURES_FEES,
    defaultLeverage: leverage,
    defaultMarginType: opts.futures?.defaultMarginMode === 'isolated' ? 'ISOLATED' : 'CROSSED',
  });
  return {
    venue: exchange,
    routes: {
      ...futuresMarketDataRoutes(exchange, weightPerMinute),
      ...futuresAccountRoutes(exchange, listenKeys),
      ...futuresOrderRoutes(exchange),
    },
    userEvents: futuresUserEvents(exchange),
    hooks: faultHooks(exchange.matching, exchange),
    spot: undefined,
    futures: exchange,
    warnings,
  };
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
  const startTime = opts.startTime ?? Math.min(...markets.map((m) => m.bars[0]?.time ?? Number.POSITIVE_INFINITY));
  const futures = opts.market === 'futures';
  const rateLimits = {
    // Binance USDⓈ-M allows 2400 request weight a minute, spot 6000.
    weightPerMinute: opts.rateLimits?.weightPerMinute ?? (futures ? 2400 : 6000),
    banAfter: opts.rateLimits?.banAfter ?? 5,
    banMs: opts.rateLimits?.banMs ?? 120_000,
  };
  const listenKeys = new ListenKeys();
  const built = (futures ? futuresVenue : spotVenue)(opts, markets, startTime, rateLimits.weightPerMinute, listenKeys);
  const exchange = built.venue;
  // The faults act on the WS gateway, which reads the faults on every send: the gateway is
  // reached through this closure, built just below.
  const faults: SimFaults = new SimFaults(
    { drop: (filter, apiKey): number => ws.drop(filter, apiKey) },
    wall,
    built.hooks,
  );
  const rest = new RestApi({
    routes: built.routes,
    secretOf: (apiKey) => exchange.secretOf(apiKey),
    faults,
    wall,
    rateLimits,
    orderWindows: futures ? FUTURES_ORDER_WINDOWS : SPOT_ORDER_WINDOWS,
  });
  const ws: WsGateway = new WsGateway({
    exchange,
    userEvents: built.userEvents,
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
  const sim = new ExchangeSim(server, exchange, rest, ws, {
    faults,
    host,
    admin,
    spot: built.spot,
    futures: built.futures,
    warnings: built.warnings,
  });
  if (opts.speed !== undefined && opts.speed > 0) sim.run(opts.speed, wall);
  return sim;
}
