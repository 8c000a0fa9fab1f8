/**
 * The WebSocket API (/ws-api/v3): `{id, method, params}` requests answered `{id, status, result}`
 * or `{id, status, error}`. Besides ping, time and the user-data subscription (how ccxt.pro 4.5
 * gets spot user data), each method mirrors a REST route with the same params and result.
 */
import { SimError } from '../errors.ts';
import type { SimVenue } from '../exchange/venue.ts';
import { authenticateWsApi, type Signer } from '../rest/signing.ts';

/** WebSocket API methods served, as the REST route they mirror (same params, same result). */
const REST_MIRRORS: Readonly<Record<string, { route: string; signed: boolean }>> = {
  'order.place': { route: 'POST /api/v3/order', signed: true },
  'order.test': { route: 'POST /api/v3/order/test', signed: true },
  'order.cancel': { route: 'DELETE /api/v3/order', signed: true },
  'order.cancelReplace': { route: 'POST /api/v3/order/cancelReplace', signed: true },
  'order.status': { route: 'GET /api/v3/order', signed: true },
  'openOrders.status': { route: 'GET /api/v3/openOrders', signed: true },
  'openOrders.cancelAll': { route: 'DELETE /api/v3/openOrders', signed: true },
  allOrders: { route: 'GET /api/v3/allOrders', signed: true },
  myTrades: { route: 'GET /api/v3/myTrades', signed: true },
  'account.status': { route: 'GET /api/v3/account', signed: true },
  exchangeInfo: { route: 'GET /api/v3/exchangeInfo', signed: false },
  depth: { route: 'GET /api/v3/depth', signed: false },
  klines: { route: 'GET /api/v3/klines', signed: false },
  'trades.recent': { route: 'GET /api/v3/trades', signed: false },
  'trades.historical': { route: 'GET /api/v3/historicalTrades', signed: false },
  'trades.aggregate': { route: 'GET /api/v3/aggTrades', signed: false },
  'ticker.24hr': { route: 'GET /api/v3/ticker/24hr', signed: false },
  'ticker.price': { route: 'GET /api/v3/ticker/price', signed: false },
  'ticker.book': { route: 'GET /api/v3/ticker/bookTicker', signed: false },
  avgPrice: { route: 'GET /api/v3/avgPrice', signed: false },
};

/** Params that authenticate or shape the answer, not the request the REST route sees. */
const SESSION_PARAMS = new Set(['apiKey', 'signature', 'timestamp', 'recvWindow', 'returnRateLimits']);

/** What a request may do to the connection it came on. */
export interface WsApiSession {
  /** Starts user data for the account on this connection; returns the subscription id. */
  subscribeUser(apiKey: string): number;
  /** Stops one subscription, or all when the id is undefined. */
  unsubscribeUser(subscriptionId: unknown): void;
  reply(payload: unknown): void;
}

export interface WsApiOptions {
  exchange: SimVenue;
  signer: Signer;
  /** Runs a REST route's handler (same params, same result). */
  runRoute(routeKey: string, params: Record<string, string>, apiKey: string): unknown;
}

export class WsApi {
  constructor(private readonly opts: WsApiOptions) {}

  handle(session: WsApiSession, msg: { id?: unknown; method?: unknown; params?: unknown }): void {
    const id = msg.id ?? null;
    const params: Record<string, unknown> =
      typeof msg.params === 'object' && msg.params !== null ? { ...msg.params } : {};
    const ok = (result: unknown): void => session.reply({ id, status: 200, result, rateLimits: [] });
    const fail = (status: number, code: number, text: string): void =>
      session.reply({ id, status, error: { code, msg: text } });
    try {
      switch (msg.method) {
        case 'ping':
          ok({});
          return;
        case 'time':
          ok({ serverTime: this.opts.exchange.now() });
          return;
        case 'userDataStream.subscribe.signature':
          ok({ subscriptionId: session.subscribeUser(authenticateWsApi(this.opts.signer, params)) });
          return;
        case 'userDataStream.unsubscribe':
          session.unsubscribeUser(params.subscriptionId);
          ok({});
          return;
        default: {
          const mirror = typeof msg.method === 'string' ? REST_MIRRORS[msg.method] : undefined;
          if (!mirror) {
            fail(400, -1020, 'This operation is not supported.');
            return;
          }
          const apiKey = mirror.signed ? authenticateWsApi(this.opts.signer, params) : '';
          const args: Record<string, string> = {};
          for (const [k, v] of Object.entries(params)) {
            if (SESSION_PARAMS.has(k)) continue;
            args[k] = typeof v === 'string' ? v : JSON.stringify(v);
          }
          ok(this.opts.runRoute(mirror.route, args, apiKey));
        }
      }
    } catch (e) {
      if (e instanceof SimError) fail(e.http, e.code, e.message);
      else fail(500, -1000, e instanceof Error ? e.message : String(e));
    }
  }
}
