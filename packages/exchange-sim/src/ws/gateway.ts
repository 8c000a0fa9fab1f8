/**
 * The WebSocket side of the sim: accepts connections on /ws, /ws/<streams|listenKey>, /stream and
 * /ws-api/v3 (spot), and on /market/ws, /public/ws and /private/ws?listenKey=<key> (the USDⓈ-M
 * futures split), keeps their subscriptions, routes exchange events to market streams and user
 * data (formatted by the composition root's UserEventFormatter), and sends every outgoing message
 * through the WS faults (stall, delay, duplicate, reorder).
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { ExchangeEvent } from '../exchange/model.ts';
import type { SimVenue } from '../exchange/venue.ts';
import type { SimFaults, WsControl, WsFilter } from '../faults.ts';
import type { ListenKeys } from '../listen-keys.ts';
import { assertNever } from '../num.ts';
import type { Signer } from '../rest/signing.ts';
import { WsApi } from './api.ts';
import { type Connection, faultKindOf, type WsOutbound } from './connection.ts';
import { MarketStreams, normaliseStream } from './market-streams.ts';
import type { UserEventFormatter } from './user-data.ts';

/** Paths a market-stream connection may open on: spot's /ws and the futures split. */
const WS_BASES = ['/ws', '/market/ws', '/public/ws', '/private/ws'];
const STREAM_BASES = ['/stream', '/market/stream', '/public/stream'];

function baseOf(path: string, bases: readonly string[]): string | undefined {
  return bases.find((b) => path === b || path.startsWith(`${b}/`));
}

export interface WsGatewayOptions {
  exchange: SimVenue;
  /** Turns an account's exchange event into the Binance user-data payload (spot or futures). */
  userEvents: UserEventFormatter;
  faults: SimFaults;
  listenKeys: ListenKeys;
  signer: Signer;
  /** Runs a REST route's handler: the WebSocket API's methods mirror REST. */
  runRoute(routeKey: string, params: Record<string, string>, apiKey: string): unknown;
}

interface SubscriptionWaiter {
  stream: string;
  resolve: () => void;
}

export class WsGateway implements WsControl, WsOutbound {
  // Pongs are sent by hand so that a stalled connection also stops answering pings.
  private readonly wss = new WebSocketServer({ noServer: true, autoPong: false });
  private readonly conns = new Set<Connection>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly streams: MarketStreams;
  private readonly api: WsApi;
  private nextSubscriptionId = 0;
  private readonly subscriptionWaiters: SubscriptionWaiter[] = [];

  constructor(private readonly opts: WsGatewayOptions) {
    this.streams = new MarketStreams(opts.exchange, this);
    this.api = new WsApi({ exchange: opts.exchange, signer: opts.signer, runRoute: opts.runRoute });
    opts.exchange.on((e) => this.onExchangeEvent(e));
    opts.listenKeys.onClosed((k) => this.onListenKeyClosed(k));
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://sim');
      const path = url.pathname.replace(/\/+$/, '');
      const isApi = path.startsWith('/ws-api') || path.startsWith('/ws-fapi');
      const streamBase = baseOf(path, STREAM_BASES);
      const wsBase = isApi ? undefined : baseOf(path, WS_BASES);
      const isStream = streamBase !== undefined;
      if (!isApi && !isStream && wsBase === undefined) {
        socket.write('HTTP/1.1 404 Not Found\r\n\r\n');
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const conn: Connection = {
          ws,
          kind: isApi ? 'api' : 'market',
          combined: isStream,
          streams: new Set(),
          users: new Map(),
          listenKey: undefined,
          held: undefined,
        };
        this.conns.add(conn);
        ws.on('close', () => this.conns.delete(conn));
        ws.on('error', () => this.conns.delete(conn));
        ws.on('message', (data) => this.onMessage(conn, data.toString()));
        ws.on('ping', (data) => {
          if (!this.opts.faults.isStalled(faultKindOf(conn))) ws.pong(data);
        });
        if (wsBase !== undefined && path.length > wsBase.length)
          this.subscribePath(conn, path.slice(wsBase.length + 1));
        const listenKey = url.searchParams.get('listenKey');
        if (listenKey) this.subscribePath(conn, listenKey);
        if (isStream)
          for (const s of (url.searchParams.get('streams') ?? '').split('/')) if (s) this.addStream(conn, s);
      });
    });
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const c of this.conns) c.ws.terminate();
    this.conns.clear();
    this.wss.close();
  }

  /** How many open connections carry the user data of `apiKey` (a client should need one). */
  userConnections(apiKey: string): number {
    let n = 0;
    for (const c of this.conns) if (c.users.has(apiKey)) n++;
    return n;
  }

  /** Streams currently subscribed across connections (`btcusdt@kline_1m`, `user:<apiKey>`). */
  subscriptions(): string[] {
    const out = new Set<string>();
    for (const c of this.conns) {
      for (const s of c.streams) out.add(s);
      for (const k of c.users.keys()) out.add(`user:${k}`);
    }
    return [...out];
  }

  waitForSubscription(stream: string, timeoutMs: number): Promise<void> {
    if (this.subscriptions().includes(stream)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiter: SubscriptionWaiter = { stream, resolve: () => {} };
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.subscriptionWaiters.splice(this.subscriptionWaiters.indexOf(waiter), 1);
        reject(
          new Error(
            `no subscription to ${stream} within ${timeoutMs} ms (have: ${this.subscriptions().join(', ') || 'none'})`,
          ),
        );
      }, timeoutMs);
      this.timers.add(t);
      waiter.resolve = () => {
        clearTimeout(t);
        this.timers.delete(t);
        resolve();
      };
      this.subscriptionWaiters.push(waiter);
    });
  }

  /** The drop fault: terminates matching connections without a close frame. Returns how many. */
  drop(filter: WsFilter, apiKey?: string): number {
    let n = 0;
    const kind = filter.kind ?? 'all';
    for (const c of [...this.conns]) {
      const carriesUser = c.users.size > 0 || c.kind === 'api' || c.listenKey !== undefined;
      const match =
        kind === 'all' ||
        (kind === 'user' ? carriesUser : kind === 'api' ? c.kind === 'api' : c.kind === 'market' && !carriesUser);
      if (!match) continue;
      if (apiKey !== undefined && !c.users.has(apiKey)) continue;
      c.ws.terminate();
      this.conns.delete(c);
      n++;
    }
    return n;
  }

  publish(stream: string, data: unknown): void {
    for (const c of this.conns) {
      if (!c.streams.has(stream)) continue;
      this.send(c, c.combined ? { stream, data } : data);
    }
  }

  wants(prefix: string): boolean {
    for (const c of this.conns) for (const s of c.streams) if (s.startsWith(prefix)) return true;
    return false;
  }

  publishUser(apiKey: string, event: unknown): void {
    for (const c of this.conns) {
      const subscriptionId = c.users.get(apiKey);
      if (subscriptionId === undefined) continue;
      if (c.kind === 'api') this.send(c, { subscriptionId, event });
      else this.send(c, c.combined ? { stream: c.listenKey, data: event } : event);
    }
  }

  private notifySubscribed(): void {
    const have = new Set(this.subscriptions());
    for (const w of [...this.subscriptionWaiters]) {
      if (have.has(w.stream)) {
        this.subscriptionWaiters.splice(this.subscriptionWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  /** Sends through the WS faults: stalled connections drop it, reorder holds it back, duplicate repeats it. */
  private send(c: Connection, payload: unknown): void {
    const f = this.opts.faults;
    if (f.isStalled(faultKindOf(c))) return;
    let text = JSON.stringify(payload);
    if (c.held !== undefined) {
      // The held message goes out right after the one that follows it on this connection.
      const earlier = c.held;
      c.held = undefined;
      this.write(c, text);
      text = earlier;
    } else if (f.reorder > 0) {
      f.reorder -= 1;
      c.held = text;
      return;
    }
    this.write(c, text);
    if (f.duplicate > 0) {
      f.duplicate -= 1;
      this.write(c, text);
    }
  }

  /** Writes to the socket, after the delay fault's wait when one is pending. */
  private write(c: Connection, text: string): void {
    const f = this.opts.faults;
    if (f.delay && f.delay.count > 0) {
      f.delay.count -= 1;
      const t = setTimeout(() => {
        this.timers.delete(t);
        if (c.ws.readyState === WebSocket.OPEN) c.ws.send(text);
      }, f.delay.ms);
      this.timers.add(t);
      if (f.delay.count <= 0) f.delay = undefined;
      return;
    }
    if (c.ws.readyState === WebSocket.OPEN) c.ws.send(text);
  }

  /** `/ws/<a>/<b>`: stream names and listenKeys; anything else (ccxt appends /ws/0) is ignored. */
  private subscribePath(conn: Connection, rest: string): void {
    for (const part of rest.split('/')) {
      if (!part) continue;
      const owner = this.opts.listenKeys.ownerOf(part);
      if (owner) {
        conn.listenKey = part;
        conn.users.set(owner, -1);
      } else if (part.includes('@')) this.addStream(conn, part);
    }
    this.notifySubscribed();
  }

  private addStream(conn: Connection, stream: string): boolean {
    const name = normaliseStream(this.opts.exchange, stream);
    if (name === undefined) return false;
    conn.streams.add(name);
    return true;
  }

  private onMessage(conn: Connection, text: string): void {
    let msg: { id?: unknown; method?: unknown; params?: unknown };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      this.send(conn, { code: 3, msg: 'Invalid JSON: expected value at line 1 column 1' });
      return;
    }
    if (conn.kind === 'api') {
      this.api.handle(
        {
          subscribeUser: (apiKey) => {
            const subscriptionId = this.nextSubscriptionId++;
            conn.users.set(apiKey, subscriptionId);
            queueMicrotask(() => this.notifySubscribed());
            return subscriptionId;
          },
          unsubscribeUser: (subscriptionId) => {
            for (const [k, v] of conn.users)
              if (subscriptionId === undefined || v === subscriptionId) conn.users.delete(k);
          },
          reply: (payload) => this.send(conn, payload),
        },
        msg,
      );
      return;
    }
    this.onStreamControl(conn, msg);
  }

  /** SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS on a market-stream connection. */
  private onStreamControl(conn: Connection, msg: { id?: unknown; method?: unknown; params?: unknown }): void {
    const id = msg.id ?? null;
    const params = Array.isArray(msg.params) ? msg.params.map(String) : [];
    switch (msg.method) {
      case 'SUBSCRIBE': {
        const bad = params.find((s) => !this.addStream(conn, s));
        if (bad !== undefined)
          this.send(conn, { error: { code: 2, msg: `Invalid request: invalid stream ${bad}` }, id });
        else this.send(conn, { result: null, id });
        this.notifySubscribed();
        return;
      }
      case 'UNSUBSCRIBE':
        for (const s of params) conn.streams.delete(s);
        this.send(conn, { result: null, id });
        return;
      case 'LIST_SUBSCRIPTIONS':
        this.send(conn, { result: [...conn.streams], id });
        return;
      case 'SET_PROPERTY':
      case 'GET_PROPERTY':
        this.send(conn, { result: msg.method === 'GET_PROPERTY' ? false : null, id });
        return;
      default:
        this.send(conn, { error: { code: 2, msg: `Invalid request: unknown method ${String(msg.method)}` }, id });
    }
  }

  private onListenKeyClosed(listenKey: string): void {
    for (const c of this.conns) {
      if (c.listenKey === listenKey) {
        this.send(c, { e: 'listenKeyExpired', E: this.opts.exchange.now(), listenKey });
        c.users.clear();
      }
    }
  }

  private onExchangeEvent(e: ExchangeEvent): void {
    if (this.conns.size === 0) {
      if (e.type === 'tick') this.streams.forget(e.symbol);
      return;
    }
    const exchange = this.opts.exchange;
    switch (e.type) {
      case 'trade':
        this.streams.onTrade(e.symbol, e.trade);
        return;
      case 'tick': {
        const m = exchange.market(e.symbol);
        if (m) {
          this.streams.onTick(m);
          this.streams.onMarkPrice(m);
        }
        return;
      }
      case 'barClose': {
        const m = exchange.market(e.symbol);
        if (m) this.streams.onBarClose(m, e.bar.time);
        return;
      }
      case 'execution':
      case 'balance':
      case 'listStatus':
      case 'futuresOrder':
      case 'algoOrder':
      case 'accountUpdate':
      case 'accountConfig': {
        const payload = this.opts.userEvents(e);
        if (payload !== undefined) this.publishUser(e.apiKey, payload);
        return;
      }
      default:
        assertNever(e);
    }
  }
}
