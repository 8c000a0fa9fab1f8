/**
 * The Binance REST API over node:http: each request goes through the HTTP faults (held answers,
 * error bursts, 429 storms), request weight, authentication, then its route. The composition
 * root gives the route table: spot's (market-data.ts, account.ts, orders.ts, order-lists.ts) or
 * USDⓈ-M futures' (futures/).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { binanceError, SimError } from '../errors.ts';
import type { SimFaults } from '../faults.ts';
import type { Params } from './params.ts';
import { OrderCounts, type RateLimitOptions, RequestWeight } from './rate-limits.ts';
import type { RouteTable } from './routes.ts';
import { authenticateRest, type Signer } from './signing.ts';

export interface RestApiOptions {
  routes: RouteTable;
  /** An account's secret (undefined for an unknown API key). */
  secretOf(apiKey: string): string | undefined;
  faults: SimFaults;
  /** The wall clock: rate-limit windows, bans, and what a signed timestamp is compared with. */
  wall: () => number;
  rateLimits: RateLimitOptions;
  /** The ORDERS windows counted per account (spot: 10 s and a day; USDⓈ-M: 10 s and a minute). */
  orderWindows: ConstructorParameters<typeof OrderCounts>[0];
}

/** A computed answer, written now or later (a held response). */
interface Reply {
  status: number;
  text: string;
  headers: Record<string, string>;
}

interface RawRequest {
  method: string;
  path: string;
  query: string;
  body: string;
  headers: IncomingMessage['headers'];
  /** The caller's IP: request weight is counted per IP, as on Binance. */
  ip: string;
}

export class RestApi {
  private readonly routes: RouteTable;
  private readonly weight: RequestWeight;
  private readonly orders: OrderCounts;
  /** Requests received per `METHOD /path`, for tests that count what a client asks (`sim.requestCounts`). */
  readonly requests = new Map<string, number>();
  /**
   * The most requests of each `METHOD /path` in hand at once (arrived, not yet answered), for tests
   * that hold a client to how many it sends together (`sim.requestConcurrency`).
   */
  readonly peaks = new Map<string, number>();
  private readonly inHand = new Map<string, number>();
  private readonly signer: Signer;
  private readonly held = new Set<ServerResponse>();
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: RestApiOptions) {
    this.weight = new RequestWeight(opts.rateLimits);
    this.orders = new OrderCounts(opts.orderWindows);
    this.signer = {
      secretOf: (apiKey) => opts.secretOf(apiKey),
      serverTime: () => opts.wall() + opts.faults.clockSkewMs,
    };
    this.routes = opts.routes;
  }

  /** The request signer, shared with the WebSocket API. */
  get requestSigner(): Signer {
    return this.signer;
  }

  /** Runs a route's handler directly: the WebSocket API's methods reuse the REST semantics. */
  run(routeKey: string, params: Params, apiKey: string): unknown {
    const route = this.routes[routeKey];
    if (!route) throw binanceError(-1020, 'This operation is not supported.');
    return route.handler({ params, apiKey });
  }

  /** Ends held responses and timers (server shutdown). */
  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const res of this.held) res.destroy();
    this.held.clear();
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const method = (req.method ?? 'GET').toUpperCase();
    const path = url.pathname.replace(/\/+$/, '');
    const key = `${method} ${path}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
    const n = (this.inHand.get(key) ?? 0) + 1;
    this.inHand.set(key, n);
    if (n > (this.peaks.get(key) ?? 0)) this.peaks.set(key, n);
    res.on('close', () => this.inHand.set(key, (this.inHand.get(key) ?? 1) - 1));
    const raw: RawRequest = {
      method,
      path,
      query: url.search.startsWith('?') ? url.search.slice(1) : url.search,
      body: await readBody(req),
      headers: req.headers,
      ip: clientIp(req),
    };
    const faults = this.opts.faults;
    const hold = faults.take(faults.holds, raw.method, raw.path);
    if (!hold) {
      writeReply(res, this.answer(raw));
      return;
    }
    this.held.add(res);
    res.on('close', () => this.held.delete(res));
    // execute: the request takes effect now and only its response is lost or late.
    const early = hold.execute ? this.answer(raw) : undefined;
    if (hold.ms === undefined) return; // never answered: the client times out
    const t = setTimeout(() => {
      this.timers.delete(t);
      this.held.delete(res);
      if (res.destroyed) return;
      writeReply(res, early ?? this.answer(raw));
    }, hold.ms);
    this.timers.add(t);
  }

  private answer(raw: RawRequest): Reply {
    const faults = this.opts.faults;
    const burst = faults.take(faults.errorBursts, raw.method, raw.path);
    if (burst) {
      const status = burst.status ?? 503;
      if (burst.body === 'json')
        return reply(status, { code: -1001, msg: 'Internal error; unable to process your request. Please try again.' });
      return {
        status,
        text: `<html><head><title>${status}</title></head><body><h1>${status} Service Temporarily Unavailable</h1></body></html>`,
        headers: { 'content-type': 'text/html' },
      };
    }
    const route = this.routes[`${raw.method} ${raw.path}`];
    const params: Params = {};
    for (const [k, v] of new URLSearchParams(raw.query)) params[k] = v;
    for (const [k, v] of new URLSearchParams(raw.body)) params[k] = v;

    const now = this.opts.wall();
    const charged = this.weight.charge(
      raw.ip,
      now,
      route ? route.weight(params) : 1,
      () => faults.take(faults.storms, raw.method, raw.path) !== undefined,
    );
    // Binance's Date header is its server time: the minute a weight reading belongs to.
    const date = { date: new Date(now).toUTCString() };
    if (charged.type === 'limited') return reply(charged.status, charged.body, { ...charged.headers, ...date });
    let headers = { ...charged.headers, ...date };
    if (!route) return reply(404, { code: -1000, msg: `Unknown endpoint ${raw.method} ${raw.path}` }, headers);
    try {
      const apiKey =
        route.security === 'none'
          ? ''
          : authenticateRest(this.signer, route.security, raw.headers, { query: raw.query, body: raw.body }, params);
      // Orders are counted per account (API key), weight per IP.
      if (route.orders !== undefined) {
        const counted = this.orders.count(apiKey, now, route.orders);
        if (counted.type === 'limited') return reply(counted.status, counted.body, headers);
        headers = { ...headers, ...counted.headers };
      }
      return reply(200, route.handler({ params, apiKey }), headers);
    } catch (e) {
      if (e instanceof SimError) return reply(e.http, e.body(), headers);
      const message = e instanceof Error ? e.message : String(e);
      return reply(
        500,
        { code: -1000, msg: `An unknown error occurred while processing the request. (${message})` },
        headers,
      );
    }
  }
}

function reply(status: number, body: unknown, headers: Record<string, string> = {}): Reply {
  return { status, text: JSON.stringify(body), headers };
}

function writeReply(res: ServerResponse, r: Reply): void {
  res.writeHead(r.status, {
    'content-type': 'application/json;charset=UTF-8',
    ...r.headers,
    'content-length': Buffer.byteLength(r.text),
  });
  res.end(r.text);
}

/** The caller's address, an IPv4-mapped IPv6 address as its IPv4 form. */
function clientIp(req: IncomingMessage): string {
  const a = req.socket.remoteAddress ?? '';
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
