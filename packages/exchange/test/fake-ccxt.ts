import type { OHLCV, Order, Trade } from 'ccxt';
import * as ccxt from 'ccxt';
import type { CcxtClient } from '../src/index.ts';

/** A Binance-like spot market as ccxt describes it (TICK_SIZE precision mode). */
export const BTC_USDT = {
  id: 'BTCUSDT',
  symbol: 'BTC/USDT',
  base: 'BTC',
  quote: 'USDT',
  type: 'spot',
  spot: true,
  swap: false,
  option: false,
  contract: false,
  contractSize: undefined,
  precision: { price: 0.01, amount: 0.00001 },
  limits: { amount: { min: 0.00001, max: 9000 }, cost: { min: 5 }, price: { min: 0.01 } },
};

/** A ccxt order of BTC/USDT as ccxt's parseOrder returns it (client id c1, venue id v1), with overrides. */
export const ccxtOrder = (over: Partial<Order>): Order =>
  ({
    id: 'v1',
    clientOrderId: 'c1',
    symbol: 'BTC/USDT',
    type: 'limit',
    side: 'buy',
    amount: 1,
    filled: 0,
    price: 100,
    average: undefined,
    status: 'open',
    timestamp: 10,
    fee: { cost: 0, currency: 'USDT' },
    trades: [],
    info: {},
    ...over,
  }) as Order;

export type CreateFault = 'ok' | 'timeout-after-accept' | '5xx' | '429' | 'insufficient';

/**
 * An in-memory stand-in for a ccxt client, for unit tests of the gateway's logic: it keeps orders
 * by client id like Binance (a second create with an open order's client id is refused with
 * -2010 "Duplicate order sent.") and lets a test script faults per call.
 */
export class FakeExchange {
  readonly id = 'binance';
  readonly precisionMode = 4;
  markets: Record<string, unknown> | undefined;
  last_response_headers: Record<string, string> | undefined;
  enableLastResponseHeaders = false;
  readonly orders = new Map<string, Order>();
  createFaults: CreateFault[] = [];
  lookupFaults: Array<'5xx' | 'nonce'> = [];
  timeSyncs = 0;

  loadTimeDifference = async (): Promise<number> => {
    this.timeSyncs++;
    return 0;
  };
  createCalls = 0;
  loadCalls = 0;
  private seq = 1000;

  loadMarkets = async (): Promise<unknown> => {
    this.loadCalls++;
    this.markets = { 'BTC/USDT': BTC_USDT };
    return this.markets;
  };

  createOrder = async (
    symbol: string,
    type: string,
    side: string,
    amount: number,
    price?: number,
    params: Record<string, unknown> = {},
  ): Promise<Order> => {
    this.createCalls++;
    const fault = this.createFaults.shift() ?? 'ok';
    const cid = String(params['clientOrderId']);
    this.last_response_headers = {};
    if (fault === '5xx') throw new ccxt.ExchangeNotAvailable('binance 503 Service Unavailable');
    if (fault === '429') {
      this.last_response_headers = { 'Retry-After': '5' };
      throw new ccxt.DDoSProtection('binance 429 Too Many Requests');
    }
    if (fault === 'insufficient')
      throw new ccxt.InsufficientFunds('binance Account has insufficient balance for requested action.');
    const existing = this.orders.get(cid);
    if (existing && existing.status === 'open')
      throw new ccxt.InvalidOrder('binance {"code":-2010,"msg":"Duplicate order sent."}');
    const o = {
      id: String(this.seq++),
      clientOrderId: cid,
      symbol,
      type,
      side,
      amount,
      price: price ?? Number.NaN,
      filled: 0,
      remaining: amount,
      average: undefined,
      status: 'open',
      timestamp: 1,
      lastUpdateTimestamp: 1,
      fee: { cost: 0, currency: 'USDT' },
      trades: [],
      info: {},
    } as unknown as Order;
    this.orders.set(cid, o);
    if (fault === 'timeout-after-accept')
      throw new ccxt.RequestTimeout('binance POST https://api.binance.com/api/v3/order request timed out (10000 ms)');
    return { ...o };
  };

  fetchOrder = async (_id: string, _symbol?: string, params: Record<string, unknown> = {}): Promise<Order> => {
    if (this.lookupFaults.shift() === '5xx') throw new ccxt.ExchangeNotAvailable('binance 502 Bad Gateway');
    const o = this.orders.get(String(params['clientOrderId']));
    if (!o) throw new ccxt.OrderNotFound('binance {"code":-2013,"msg":"Order does not exist."}');
    return { ...o };
  };

  fetchOpenOrders = async (): Promise<Order[]> => {
    const fault = this.lookupFaults.shift();
    if (fault === '5xx') throw new ccxt.ExchangeNotAvailable('binance 502 Bad Gateway');
    if (fault === 'nonce')
      throw new ccxt.InvalidNonce(
        'binance {"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}',
      );
    return [...this.orders.values()].filter((o) => o.status === 'open').map((o) => ({ ...o }));
  };

  cancelOrder = async (_id: string, _symbol?: string, params: Record<string, unknown> = {}): Promise<Order> => {
    const o = this.orders.get(String(params['clientOrderId']));
    if (o?.status !== 'open') throw new ccxt.OrderNotFound('binance {"code":-2011,"msg":"Unknown order sent."}');
    o.status = 'canceled';
    return { ...o };
  };

  // Candles: REST from `bars`, stream from a script of responses.
  bars: OHLCV[] = [];
  stream: Array<OHLCV[] | Error | 'hang' | { readonly final: OHLCV }> = [];
  klineMessages = 0;

  /** Stands in for ccxt.pro binance's kline handler (which drops the `x` flag). */
  handleOHLCV(_ws: unknown, _message: unknown): void {
    this.klineMessages++;
  }
  streamWaiters: Array<() => void> = [];
  restCalls: Array<{ since: number | undefined; limit: number | undefined }> = [];
  unwatched = 0;

  fetchOHLCV = async (_s: string, _tf?: string, since?: number, limit?: number): Promise<OHLCV[]> => {
    this.restCalls.push({ since, limit });
    let xs = this.bars.filter((b) => since === undefined || (b[0] as number) >= since);
    if (since === undefined && limit !== undefined) xs = xs.slice(-limit);
    else if (limit !== undefined) xs = xs.slice(0, limit);
    return xs.map((b) => [...b] as OHLCV);
  };

  watchCalls = 0;
  onWatch: ((call: number) => void) | undefined;

  watchOHLCV = (): Promise<OHLCV[]> => {
    this.watchCalls++;
    this.onWatch?.(this.watchCalls);
    const next = this.stream.shift();
    if (next === undefined || next === 'hang') return new Promise(() => {});
    if (next instanceof Error) return Promise.reject(next);
    if (!Array.isArray(next)) {
      // A Binance kline message with x=true, passed through the (possibly wrapped) handler.
      const c = next.final;
      this.handleOHLCV(undefined, {
        e: 'kline',
        k: { s: 'BTCUSDT', i: '1m', t: c[0], o: c[1], h: c[2], l: c[3], c: c[4], v: c[5], x: true },
      });
      return Promise.resolve([[...c] as OHLCV]);
    }
    return Promise.resolve(next.map((b) => [...b] as OHLCV));
  };

  unWatchOHLCV = async (): Promise<void> => {
    this.unwatched++;
  };

  // User data: scripted streams; REST trades from `myTrades`.
  orderStream: Array<Order[] | Error | 'hang'> = [];
  tradeStream: Array<Trade[] | Error | 'hang'> = [];
  myTrades: Trade[] = [];
  restTradeCalls = 0;

  watchOrders = (): Promise<Order[]> => next(this.orderStream);
  watchMyTrades = (): Promise<Trade[]> => next(this.tradeStream);
  /** Replaces a stream script in place (the tracker keeps calling the same fake). */
  script<T>(list: Array<T[] | Error | 'hang'>, items: Array<T[] | Error | 'hang'>): void {
    list.splice(0, list.length, ...items);
  }

  fetchMyTrades = async (_s?: string, since?: number): Promise<Trade[]> => {
    this.restTradeCalls++;
    return this.myTrades.filter((t) => since === undefined || (t.timestamp ?? 0) >= since).map((t) => ({ ...t }));
  };
  close = async (): Promise<void> => {};

  asClient(): CcxtClient {
    return this as unknown as CcxtClient;
  }
}

/** The next scripted user-stream answer; an empty script means the stream is down. */
function next<T>(script: Array<T[] | Error | 'hang'>): Promise<T[]> {
  const n = script.shift();
  if (n === undefined)
    return Promise.reject(new ccxt.NetworkError('connection closed by remote server, closing code 1006'));
  if (n === 'hang') return new Promise(() => {});
  if (n instanceof Error) return Promise.reject(n);
  return Promise.resolve(n);
}
