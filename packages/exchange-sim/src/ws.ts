/**
 * WebSocket side: market streams (/ws, /ws/<stream>, /stream?streams=...) with the
 * SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS methods, listenKey user streams (/ws/<listenKey>),
 * and the WebSocket API (/ws-api/v3) with `userDataStream.subscribe.signature`, which is how
 * ccxt.pro 4.5 gets spot user data. Every outgoing message goes through the fault pipeline.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { bucketStart, INTERVAL_MS } from './bars.ts';
import type { Candle, Engine, EngineEvent, PublicTrade } from './engine.ts';
import { SimError } from './errors.ts';
import type { SimFaults, WsControl, WsFilter, WsKind } from './faults.ts';
import { assertNever, fmt } from './num.ts';
import { aggTradeJson, checkTimestamp, signatureMatches } from './rest.ts';
import type { SimOrder } from './types.ts';

interface Conn {
  ws: WebSocket;
  kind: WsKind;
  combined: boolean;
  streams: Set<string>;
  /** User data this connection receives: apiKey -> subscriptionId (ws-api) or -1 (listenKey). */
  users: Map<string, number>;
  listenKey: string | undefined;
  held: string | undefined;
}

export interface WsDeps {
  engine: Engine;
  faults: SimFaults;
  wall: () => number;
  listenKeys: Map<string, string>;
  /** The REST handlers, which the WebSocket API methods reuse. */
  rest: { run(routeKey: string, params: Record<string, string>, apiKey: string): unknown };
}

/** WebSocket API methods served, as the REST route they mirror (same params, same result). */
const WS_API_METHODS: Readonly<Record<string, { route: string; signed: boolean }>> = {
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
  'trades.aggregate': { route: 'GET /api/v3/aggTrades', signed: false },
  'ticker.24hr': { route: 'GET /api/v3/ticker/24hr', signed: false },
  'ticker.price': { route: 'GET /api/v3/ticker/price', signed: false },
  'ticker.book': { route: 'GET /api/v3/ticker/bookTicker', signed: false },
  avgPrice: { route: 'GET /api/v3/avgPrice', signed: false },
};

export class WsGateway implements WsControl {
  // Pongs are sent by hand so that a stalled connection also stops answering pings.
  private readonly wss = new WebSocketServer({ noServer: true, autoPong: false });
  private readonly conns = new Set<Conn>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private lastBooks = new Map<string, { bids: Map<number, number>; asks: Map<number, number> }>();
  private nextSubscriptionId = 0;
  private readonly subscribeWaiters: Array<{ stream: string; resolve: () => void }> = [];

  constructor(private readonly d: WsDeps) {
    d.engine.on((e) => this.onEngine(e));
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://sim');
      const path = url.pathname.replace(/\/+$/, '');
      const isApi = path.startsWith('/ws-api');
      const isStream = path === '/stream' || path.startsWith('/stream/');
      const isWs = path === '/ws' || path.startsWith('/ws/');
      if (!isApi && !isStream && !isWs) {
        socket.write('HTTP/1.1 404 Not Found\r\n\r\n');
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const conn: Conn = {
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
          if (!this.d.faults.isStalled(this.kindOf(conn))) ws.pong(data);
        });
        if (isWs && path.length > 4) this.subscribePath(conn, path.slice(4));
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

  // ---------------------------------------------------------------- test helpers

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
      const waiter = { stream, resolve: () => {} };
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.subscribeWaiters.splice(this.subscribeWaiters.indexOf(waiter), 1);
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
      this.subscribeWaiters.push(waiter);
    });
  }

  private notifySubscribed(): void {
    const have = new Set(this.subscriptions());
    for (const w of [...this.subscribeWaiters]) {
      if (have.has(w.stream)) {
        this.subscribeWaiters.splice(this.subscribeWaiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }

  // ---------------------------------------------------------------- faults

  drop(filter: WsFilter, apiKey?: string): number {
    let n = 0;
    for (const c of [...this.conns]) {
      const kind = filter.kind ?? 'all';
      const isUser = c.users.size > 0 || c.kind === 'api' || c.listenKey !== undefined;
      const match =
        kind === 'all' ||
        (kind === 'user' ? isUser : kind === 'api' ? c.kind === 'api' : c.kind === 'market' && !isUser);
      if (!match) continue;
      if (apiKey !== undefined && !c.users.has(apiKey)) continue;
      c.ws.terminate();
      this.conns.delete(c);
      n++;
    }
    return n;
  }

  private kindOf(c: Conn): WsKind {
    return c.users.size > 0 || c.listenKey ? 'user' : c.kind;
  }

  private send(c: Conn, payload: unknown): void {
    const f = this.d.faults;
    if (f.isStalled(this.kindOf(c))) return;
    let text = JSON.stringify(payload);
    if (c.held !== undefined) {
      // The held message goes out right after the one that follows it on this connection.
      const earlier = c.held;
      c.held = undefined;
      this.raw(c, text);
      text = earlier;
    } else if (f.reorder > 0) {
      f.reorder -= 1;
      c.held = text;
      return;
    }
    this.raw(c, text);
    if (f.duplicate > 0) {
      f.duplicate -= 1;
      this.raw(c, text);
    }
  }

  private raw(c: Conn, text: string): void {
    const f = this.d.faults;
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

  // ---------------------------------------------------------------- inbound

  private subscribePath(conn: Conn, rest: string): void {
    for (const part of rest.split('/')) {
      if (!part) continue;
      const owner = this.d.listenKeys.get(part);
      if (owner) {
        conn.listenKey = part;
        conn.users.set(owner, -1);
      } else if (part.includes('@')) this.addStream(conn, part);
      // Anything else (ccxt appends a stream index such as /ws/0) is accepted and ignored.
    }
    this.notifySubscribed();
  }

  private addStream(conn: Conn, stream: string): boolean {
    const [sym, ch] = stream.split('@', 2) as [string, string | undefined];
    if (!ch || !this.d.engine.market(sym.toUpperCase())) return false;
    conn.streams.add(stream.toLowerCase() === stream ? stream : `${sym.toLowerCase()}@${ch}`);
    return true;
  }

  private onMessage(conn: Conn, text: string): void {
    let msg: { id?: unknown; method?: unknown; params?: unknown };
    try {
      msg = JSON.parse(text) as typeof msg;
    } catch {
      this.send(conn, { code: 3, msg: 'Invalid JSON: expected value at line 1 column 1' });
      return;
    }
    if (conn.kind === 'api') {
      this.onApiRequest(conn, msg);
      return;
    }
    const id = msg.id ?? null;
    const params = Array.isArray(msg.params) ? (msg.params as unknown[]).map(String) : [];
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

  private onApiRequest(conn: Conn, msg: { id?: unknown; method?: unknown; params?: unknown }): void {
    const id = msg.id ?? null;
    const params = (typeof msg.params === 'object' && msg.params !== null ? msg.params : {}) as Record<string, unknown>;
    const ok = (result: unknown): void => this.send(conn, { id, status: 200, result, rateLimits: [] });
    const fail = (status: number, code: number, text: string): void =>
      this.send(conn, { id, status, error: { code, msg: text } });
    try {
      switch (msg.method) {
        case 'ping':
          ok({});
          return;
        case 'time':
          ok({ serverTime: this.d.engine.now() });
          return;
        case 'userDataStream.subscribe.signature': {
          const apiKey = this.verifySigned(params);
          const subscriptionId = this.nextSubscriptionId++;
          conn.users.set(apiKey, subscriptionId);
          ok({ subscriptionId });
          this.notifySubscribed();
          return;
        }
        case 'userDataStream.unsubscribe': {
          const sid = params.subscriptionId;
          for (const [k, v] of conn.users) if (sid === undefined || v === sid) conn.users.delete(k);
          ok({});
          return;
        }
        default: {
          const m = typeof msg.method === 'string' ? WS_API_METHODS[msg.method] : undefined;
          if (!m) {
            fail(400, -1020, 'This operation is not supported.');
            return;
          }
          const apiKey = m.signed ? this.verifySigned(params) : '';
          const args: Record<string, string> = {};
          for (const [k, v] of Object.entries(params)) {
            if (['apiKey', 'signature', 'timestamp', 'recvWindow', 'returnRateLimits'].includes(k)) continue;
            args[k] = typeof v === 'string' ? v : JSON.stringify(v);
          }
          ok(this.d.rest.run(m.route, args, apiKey));
        }
      }
    } catch (e) {
      if (e instanceof SimError) fail(e.http, e.code, e.message);
      else fail(500, -1000, (e as Error).message);
    }
  }

  /** WS-API signatures cover every param but `signature`, sorted by name, joined as k=v&k=v. */
  private verifySigned(params: Record<string, unknown>): string {
    const apiKey = typeof params.apiKey === 'string' ? params.apiKey : undefined;
    if (!apiKey) throw new SimError(400, -2014, 'API-key format invalid.');
    const secret = this.d.engine.secretOf(apiKey);
    if (secret === undefined) throw new SimError(401, -2015, 'Invalid API-key, IP, or permissions for action.');
    const signature = typeof params.signature === 'string' ? params.signature : '';
    const payload = Object.keys(params)
      .filter((k) => k !== 'signature')
      .sort()
      .map((k) => `${k}=${String(params[k])}`)
      .join('&');
    if (!signatureMatches(payload, secret, signature))
      throw new SimError(400, -1022, 'Signature for this request is not valid.');
    checkTimestamp(
      String(params.timestamp ?? ''),
      params.recvWindow === undefined ? undefined : String(params.recvWindow),
      this.d.wall() + this.d.faults.clockSkewMs,
    );
    return apiKey;
  }

  closeListenKey(listenKey: string): void {
    for (const c of this.conns) {
      if (c.listenKey === listenKey) {
        this.send(c, { e: 'listenKeyExpired', E: this.d.engine.now(), listenKey });
        c.users.clear();
      }
    }
  }

  // ---------------------------------------------------------------- outbound

  private publish(stream: string, data: unknown): void {
    for (const c of this.conns) {
      if (!c.streams.has(stream)) continue;
      this.send(c, c.combined ? { stream, data } : data);
    }
  }

  private publishUser(apiKey: string, event: unknown): void {
    for (const c of this.conns) {
      const sid = c.users.get(apiKey);
      if (sid === undefined) continue;
      this.send(
        c,
        c.kind === 'api' ? { subscriptionId: sid, event } : c.combined ? { stream: c.listenKey, data: event } : event,
      );
    }
  }

  private wants(prefix: string): boolean {
    for (const c of this.conns) for (const s of c.streams) if (s.startsWith(prefix)) return true;
    return false;
  }

  private onEngine(e: EngineEvent): void {
    if (this.conns.size === 0) {
      if (e.type === 'tick') this.lastBooks.delete(e.symbol);
      return;
    }
    switch (e.type) {
      case 'trade':
        this.onTrade(e.symbol, e.trade);
        return;
      case 'tick':
        this.onTick(e.symbol);
        return;
      case 'barClose':
        this.onBarClose(e.symbol, e.bar.time);
        return;
      case 'execution':
        this.publishUser(
          e.apiKey,
          executionReport(e.order, e.execType, this.d.engine.now(), e.fill, e.cancelClientOrderId),
        );
        return;
      case 'balance': {
        const balances = this.d.engine.balances(e.apiKey);
        const now = this.d.engine.now();
        this.publishUser(e.apiKey, {
          e: 'outboundAccountPosition',
          E: now,
          u: now,
          B: e.assets.map((a) => ({ a, f: fmt(balances[a]?.free ?? 0), l: fmt(balances[a]?.locked ?? 0) })),
        });
        return;
      }
      default:
        assertNever(e);
    }
  }

  private onTrade(id: string, t: PublicTrade): void {
    const s = id.toLowerCase();
    const E = this.d.engine.now();
    this.publish(`${s}@trade`, {
      e: 'trade',
      E,
      s: id,
      t: t.id,
      p: fmt(t.price),
      q: fmt(t.qty),
      T: t.time,
      m: t.isBuyerMaker,
      M: true,
    });
    this.publish(`${s}@aggTrade`, { e: 'aggTrade', E, s: id, ...aggTradeJson(t) });
  }

  private onTick(id: string): void {
    const engine = this.d.engine;
    const m = engine.market(id)!;
    const s = id.toLowerCase();
    const E = engine.now();
    for (const [name, ms] of Object.entries(INTERVAL_MS)) {
      if (ms < m.intervalMs || ms % m.intervalMs !== 0 || !this.wants(`${s}@kline_${name}`)) continue;
      const c = engine.candles(m, ms, bucketStart(E, ms), undefined, 1)[0];
      if (c) this.publish(`${s}@kline_${name}`, klineEvent(id, name, ms, c, false, E));
    }
    const book = engine.book(m);
    if (this.wants(`${s}@bookTicker`)) {
      this.publish(`${s}@bookTicker`, {
        u: book.lastUpdateId,
        s: id,
        b: fmt(book.bids[0]?.[0] ?? 0),
        B: fmt(book.bids[0]?.[1] ?? 0),
        a: fmt(book.asks[0]?.[0] ?? 0),
        A: fmt(book.asks[0]?.[1] ?? 0),
      });
    }
    // Diff depth: levels that changed since the last tick, with U = u = the book's update id.
    const prev = this.lastBooks.get(id);
    const next = { bids: new Map(book.bids), asks: new Map(book.asks) };
    this.lastBooks.set(id, next);
    const diff = (a: Map<number, number> | undefined, b: Map<number, number>): string[][] => {
      const out: string[][] = [];
      for (const [p, q] of b) if (a?.get(p) !== q) out.push([fmt(p), fmt(q)]);
      if (a) for (const p of a.keys()) if (!b.has(p)) out.push([fmt(p), fmt(0)]);
      return out;
    };
    const depthEvent = {
      e: 'depthUpdate',
      E,
      s: id,
      U: book.lastUpdateId,
      u: book.lastUpdateId,
      b: diff(prev?.bids, next.bids),
      a: diff(prev?.asks, next.asks),
    };
    this.publish(`${s}@depth`, depthEvent);
    this.publish(`${s}@depth@100ms`, depthEvent);
    for (const lv of [5, 10, 20]) {
      const partial = {
        lastUpdateId: book.lastUpdateId,
        bids: book.bids.slice(0, lv).map(([p, q]) => [fmt(p), fmt(q)]),
        asks: book.asks.slice(0, lv).map(([p, q]) => [fmt(p), fmt(q)]),
      };
      this.publish(`${s}@depth${lv}`, partial);
      this.publish(`${s}@depth${lv}@100ms`, partial);
    }
    if (this.wants(`${s}@ticker`) || this.wants(`${s}@miniTicker`)) {
      const st = engine.ticker24h(m);
      const change = st.close - st.open;
      this.publish(`${s}@ticker`, {
        e: '24hrTicker',
        E,
        s: id,
        p: fmt(change),
        P: (st.open > 0 ? (change / st.open) * 100 : 0).toFixed(3),
        w: fmt(st.volume > 0 ? st.quoteVolume / st.volume : st.close),
        x: fmt(st.open),
        c: fmt(m.price),
        Q: fmt(m.trades[m.trades.length - 1]?.qty ?? 0),
        b: fmt(book.bids[0]?.[0] ?? 0),
        B: fmt(book.bids[0]?.[1] ?? 0),
        a: fmt(book.asks[0]?.[0] ?? 0),
        A: fmt(book.asks[0]?.[1] ?? 0),
        o: fmt(st.open),
        h: fmt(st.high),
        l: fmt(st.low),
        v: fmt(st.volume),
        q: fmt(st.quoteVolume),
        O: st.openTime,
        C: E,
        F: m.trades[0]?.id ?? -1,
        L: m.trades[m.trades.length - 1]?.id ?? -1,
        n: st.trades,
      });
      this.publish(`${s}@miniTicker`, {
        e: '24hrMiniTicker',
        E,
        s: id,
        c: fmt(m.price),
        o: fmt(st.open),
        h: fmt(st.high),
        l: fmt(st.low),
        v: fmt(st.volume),
        q: fmt(st.quoteVolume),
      });
    }
  }

  private onBarClose(id: string, barTime: number): void {
    const engine = this.d.engine;
    const m = engine.market(id)!;
    const s = id.toLowerCase();
    const end = barTime + m.intervalMs;
    for (const [name, ms] of Object.entries(INTERVAL_MS)) {
      if (ms < m.intervalMs || ms % m.intervalMs !== 0 || !this.wants(`${s}@kline_${name}`)) continue;
      const start = bucketStart(barTime, ms);
      if (start + ms !== end) continue;
      const c = engine.candles(m, ms, start, start, 1)[0];
      if (c) this.publish(`${s}@kline_${name}`, klineEvent(id, name, ms, c, true, engine.now()));
    }
  }
}

function klineEvent(
  id: string,
  name: string,
  ms: number,
  c: Omit<Candle, 'closed'>,
  closed: boolean,
  E: number,
): unknown {
  return {
    e: 'kline',
    E,
    s: id,
    k: {
      t: c.time,
      T: c.time + ms - 1,
      s: id,
      i: name,
      f: -1,
      L: -1,
      o: fmt(c.open),
      c: fmt(c.close),
      h: fmt(c.high),
      l: fmt(c.low),
      v: fmt(c.volume),
      n: c.trades,
      x: closed,
      q: fmt(c.quoteVolume),
      V: fmt(c.volume / 2),
      Q: fmt(c.quoteVolume / 2),
      B: '0',
    },
  };
}

function executionReport(
  o: SimOrder,
  execType: string,
  now: number,
  fill:
    | { tradeId: number; price: number; qty: number; commission: number; commissionAsset: string; isMaker: boolean }
    | undefined,
  cancelClientOrderId: string | undefined,
): unknown {
  return {
    e: 'executionReport',
    E: now,
    s: o.symbol,
    c: cancelClientOrderId ?? o.clientOrderId,
    S: o.side,
    o: o.type,
    f: o.timeInForce ?? 'GTC',
    q: fmt(o.origQty),
    p: fmt(o.price),
    P: fmt(o.stopPrice),
    F: fmt(0),
    g: o.orderListId,
    C: cancelClientOrderId ? o.clientOrderId : '',
    x: execType,
    X: o.status,
    r: 'NONE',
    i: o.orderId,
    l: fmt(fill?.qty ?? 0),
    z: fmt(o.executedQty),
    L: fmt(fill?.price ?? 0),
    n: fmt(fill?.commission ?? 0),
    N: fill?.commissionAsset ?? null,
    T: now,
    t: fill?.tradeId ?? -1,
    v: 0,
    I: 0,
    w: o.isWorking && (o.status === 'NEW' || o.status === 'PARTIALLY_FILLED'),
    m: fill?.isMaker ?? false,
    M: false,
    O: o.time,
    Z: fmt(o.cummulativeQuoteQty),
    Y: fmt(fill ? fill.price * fill.qty : 0),
    Q: fmt(o.origQuoteOrderQty),
    W: o.workingTime,
    V: 'EXPIRE_MAKER',
  };
}
