import { type Rng, SeededRng } from '@keel/core';
import type { Balances, Order, Ticker } from 'ccxt';
import { ccxtUndeclared } from './client.ts';
import type { BalanceRow, ExchangeGateway } from './gateway.ts';
import { type ExchangeOrder, fromCcxtOrder } from './normalize.ts';
import { type RetryPolicy, retryDelayMs } from './retry.ts';

/**
 * What the WebSocket streams have told us, kept so that a read can be answered while REST is
 * failing — only where that is safe (docs/exchange.md, "REST falling back to stream data"):
 *
 * - A user-stream value is served only if the stream has been connected WITHOUT A BREAK since
 *   the value was last confirmed by REST (or, for an order, since the stream announced its
 *   creation). One drop and it is unusable until REST confirms it again: messages may have been
 *   lost in the gap.
 * - "Connected since" starts when the subscription is confirmed (ccxt's `authenticate()`
 *   resolves), and a REST confirmation counts only if it was REQUESTED after that moment, so every
 *   change after the REST answer is on the stream.
 * - Nothing is served older than `maxAgeMs` since it was last confirmed (by REST, or by any message
 *   on its stream, which proves the stream was alive and in order up to then). A quiet stream
 *   cannot prove it is alive, so a quiet account's cache expires.
 * - The cache never answers "this order does not exist": absence from it proves nothing.
 */
export interface StreamCacheOptions {
  /** Markets whose orders and tickers are followed. */
  readonly symbols: readonly string[];
  /** Longest time since a value was last confirmed for it to be served. */
  readonly maxAgeMs?: { readonly balance?: number; readonly orders?: number; readonly ticker?: number };
  /** Follow `watchTicker` for each symbol (default true). */
  readonly tickers?: boolean;
  readonly reconnect?: Partial<Pick<RetryPolicy, 'baseMs' | 'maxMs'>>;
  readonly rng?: Rng;
  readonly onError?: (stream: string, e: unknown) => void;
}

export const DEFAULT_CACHE_MAX_AGE = { balance: 60_000, orders: 60_000, ticker: 10_000 } as const;

export type CacheAnswer<T> =
  | { readonly ok: true; readonly value: T; readonly asOf: number }
  | { readonly ok: false; readonly reason: string };

export interface CachedTicker {
  readonly symbol: string;
  readonly last: number;
  readonly bid: number;
  readonly ask: number;
  /** The exchange's timestamp of the ticker. */
  readonly timestamp: number;
}

/** One continuous connection of a stream: from the confirmed subscription to the first error. */
interface Epoch {
  readonly id: number;
  since: number;
  lastMessageAt: number;
}

interface StreamState {
  readonly name: string;
  epoch: Epoch | undefined;
  /** Why and when the last epoch ended (for the error message). */
  down: { at: number; why: string } | undefined;
}

interface OrderEntry {
  order: ExchangeOrder;
  /** The last time this state was confirmed (REST request time or stream receipt). */
  confirmedAt: number;
  /** The epoch of its symbol's order stream in which REST confirmed it, or the stream saw it created. */
  anchorEpoch: number | undefined;
}

const TERMINAL: ReadonlySet<string> = new Set(['filled', 'cancelled', 'expired', 'rejected']);

/** How far an order has got: an update never moves it backwards (streams and REST race). */
function progress(o: ExchangeOrder): number {
  return (TERMINAL.has(o.status) ? 2 : 0) + (o.filled > 0 ? 1 : 0) + o.filled / Math.max(o.amount, 1e-300) / 2;
}

type UserClient = {
  authenticate?: (params?: object) => Promise<unknown>;
  balance?: unknown;
  watchBalance(params?: object): Promise<Balances>;
  watchOrders(symbol?: string): Promise<Order[]>;
  watchTicker(symbol: string): Promise<Ticker>;
};

const iso = (t: number) => new Date(t).toISOString();
const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export class StreamCache {
  private running = false;
  private readonly ctl = new AbortController();
  private readonly loops: Promise<void>[] = [];
  private readonly rng: Rng;
  private readonly maxAge: { balance: number; orders: number; ticker: number };
  private epochs = 0;

  private readonly balanceStream: StreamState = { name: 'user stream (balance)', epoch: undefined, down: undefined };
  private readonly orderStreams = new Map<string, StreamState>();
  /** The last REST balance and when it was requested, in which balance epoch. */
  private balanceBase: { rows: readonly BalanceRow[]; requestedAt: number; epoch: number | undefined } | undefined;
  /** The stream's balance since the current epoch began (ccxt's merged state, reset at each epoch). */
  private streamBalance: Map<string, BalanceRow> = new Map();
  private readonly orders = new Map<string, OrderEntry>();
  private readonly openBase = new Map<string, { requestedAt: number; epoch: number | undefined }>();
  private readonly tickers = new Map<string, { ticker: CachedTicker; receivedAt: number }>();

  constructor(
    private readonly gw: ExchangeGateway,
    private readonly opts: StreamCacheOptions,
  ) {
    this.rng = opts.rng ?? new SeededRng(17);
    this.maxAge = { ...DEFAULT_CACHE_MAX_AGE, ...opts.maxAgeMs };
    for (const s of opts.symbols)
      this.orderStreams.set(s, { name: `user stream (orders ${s})`, epoch: undefined, down: undefined });
    gw.useStreamCache(this);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const client = ccxtUndeclared<UserClient>(this.gw.client);
    this.loops.push(
      this.loop(
        this.balanceStream,
        () => {
          // ccxt merges balance messages into one object that outlives reconnects; starting it
          // empty makes it "everything the stream said in this epoch", coalesced messages included.
          client.balance = {};
          this.streamBalance = new Map();
        },
        async (epoch) => {
          const b = await client.watchBalance();
          this.streamBalance = balanceRows(b);
          epoch.lastMessageAt = this.gw.timer.now();
        },
      ),
    );
    for (const [symbol, st] of this.orderStreams) {
      this.loops.push(
        this.loop(
          st,
          () => {},
          async (epoch) => {
            // Symbol-scoped: ccxt keeps separate "new updates" counters per scope, so this does not
            // take updates away from an OrderTracker that watches all orders.
            const list = await client.watchOrders(symbol);
            const now = this.gw.timer.now();
            epoch.lastMessageAt = now;
            for (const o of list) {
              if (!o.id) continue;
              const x = fromCcxtOrder(o);
              // Binance's executionReport says NEW when the order was just created: seen from birth.
              const born = (o.info as { x?: unknown } | undefined)?.x === 'NEW';
              this.record(x, now, born ? epoch.id : undefined);
            }
          },
        ),
      );
      if (this.opts.tickers !== false) {
        this.loops.push(
          this.loop(
            { name: `market stream (ticker ${symbol})`, epoch: undefined, down: undefined },
            () => {},
            async () => {
              const t = await client.watchTicker(symbol);
              this.tickers.set(symbol, {
                ticker: {
                  symbol,
                  last: t.last ?? Number.NaN,
                  bid: t.bid ?? Number.NaN,
                  ask: t.ask ?? Number.NaN,
                  timestamp: t.timestamp ?? 0,
                },
                receivedAt: this.gw.timer.now(),
              });
            },
            false,
          ),
        );
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.ctl.abort();
    await Promise.allSettled(this.loops);
  }

  /** Connection state per stream, for status displays and tests. */
  status(): Record<string, { connected: boolean; since?: number; lastMessageAt?: number; downSince?: number }> {
    const out: Record<string, { connected: boolean; since?: number; lastMessageAt?: number; downSince?: number }> = {};
    for (const s of [this.balanceStream, ...this.orderStreams.values()]) {
      out[s.name] = s.epoch
        ? { connected: true, since: s.epoch.since, lastMessageAt: s.epoch.lastMessageAt }
        : { connected: false, ...(s.down ? { downSince: s.down.at } : {}) };
    }
    return out;
  }

  /**
   * Runs one stream: establish (subscription confirmed) -> epoch begins -> messages, until an
   * error ends the epoch; then backoff and again.
   */
  private async loop(
    st: StreamState,
    onEpoch: () => void,
    next: (epoch: Epoch) => Promise<void>,
    authenticated = true,
  ): Promise<void> {
    const client = ccxtUndeclared<UserClient>(this.gw.client);
    const policy = { baseMs: this.opts.reconnect?.baseMs ?? 500, maxMs: this.opts.reconnect?.maxMs ?? 30_000 };
    const stopped = new Promise<'stop'>((r) =>
      this.ctl.signal.addEventListener('abort', () => r('stop'), { once: true }),
    );
    let attempt = 0;
    while (this.running) {
      try {
        if (authenticated && client.authenticate) {
          const a = client.authenticate();
          a.catch(() => {});
          if ((await Promise.race([a, stopped])) === 'stop') return;
        }
        const epoch: Epoch = { id: ++this.epochs, since: this.gw.timer.now(), lastMessageAt: 0 };
        onEpoch();
        // Without a confirmed subscription (an exchange whose ccxt client has no authenticate()),
        // the connection counts from its first message: only that proves the stream is live.
        const confirmed = !authenticated || client.authenticate !== undefined;
        if (confirmed) this.begin(st, epoch);
        for (;;) {
          const p = next(epoch);
          p.catch(() => {});
          if ((await Promise.race([p, stopped])) === 'stop') return;
          if (st.epoch !== epoch) {
            epoch.since = this.gw.timer.now();
            this.begin(st, epoch);
          }
          attempt = 0;
        }
      } catch (e) {
        st.epoch = undefined;
        st.down = { at: this.gw.timer.now(), why: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
        if (!this.running) return;
        this.opts.onError?.(st.name, e);
        await this.gw.timer.sleep(retryDelayMs(attempt++, policy, this.rng), this.ctl.signal);
      }
    }
  }

  private begin(st: StreamState, epoch: Epoch): void {
    st.epoch = epoch;
    st.down = undefined;
  }

  // ------------------------------------------------------------------ fed by the gateway (REST)

  /** A full REST balance, requested at `requestedAt`. */
  restBalance(rows: readonly BalanceRow[], requestedAt: number): void {
    this.balanceBase = { rows, requestedAt, epoch: this.epochFor(this.balanceStream, requestedAt) };
  }

  /** An order state REST returned to a request sent at `requestedAt`. */
  restOrder(o: ExchangeOrder, requestedAt: number): void {
    const st = this.orderStreams.get(o.symbol);
    this.record(o, requestedAt, st ? this.epochFor(st, requestedAt) : undefined);
  }

  /** The complete list of open orders of `symbol`, requested at `requestedAt`. */
  restOpenOrders(symbol: string, list: readonly ExchangeOrder[], requestedAt: number): void {
    const st = this.orderStreams.get(symbol);
    const epoch = st ? this.epochFor(st, requestedAt) : undefined;
    for (const o of list) this.record(o, requestedAt, epoch);
    this.openBase.set(symbol, { requestedAt, epoch });
  }

  /** The epoch a REST answer belongs to: only if its request left after the subscription was confirmed. */
  private epochFor(st: StreamState, requestedAt: number): number | undefined {
    return st.epoch && st.epoch.since <= requestedAt ? st.epoch.id : undefined;
  }

  private record(o: ExchangeOrder, at: number, anchorEpoch: number | undefined): void {
    const id = o.clientOrderId;
    if (id === undefined) return;
    const cur = this.orders.get(id);
    if (cur === undefined) {
      this.orders.set(id, { order: o, confirmedAt: at, anchorEpoch });
    } else {
      if (progress(o) >= progress(cur.order)) cur.order = o;
      cur.confirmedAt = Math.max(cur.confirmedAt, at);
      if (anchorEpoch !== undefined) cur.anchorEpoch = anchorEpoch;
    }
    if (this.orders.size > 10_000) this.orders.delete(this.orders.keys().next().value as string);
  }

  // ------------------------------------------------------------------ answers

  /** Whether the exchange has ever reported this client order id (existence is permanent). */
  seen(clientOrderId: string): ExchangeOrder | undefined {
    return this.orders.get(clientOrderId)?.order;
  }

  balance(): CacheAnswer<BalanceRow[]> {
    const st = this.balanceStream;
    const bad = this.usable(st, this.balanceBase?.epoch, 'REST balance');
    if (bad) return { ok: false, reason: bad };
    // usable() found the stream connected and the base anchored in its epoch: both exist.
    const base = this.balanceBase as NonNullable<typeof this.balanceBase>;
    const asOf = Math.max(base.requestedAt, (st.epoch as Epoch).lastMessageAt);
    const stale = this.stale('balance', asOf, this.maxAge.balance);
    if (stale) return { ok: false, reason: stale };
    const merged = new Map(base.rows.map((r) => [r.asset, r]));
    for (const [a, r] of this.streamBalance) merged.set(a, r);
    const value = [...merged.values()]
      .filter((r) => r.total !== 0 || r.free !== 0 || r.used !== 0)
      .sort((a, b) => (a.asset < b.asset ? -1 : a.asset > b.asset ? 1 : 0));
    return { ok: true, value, asOf };
  }

  order(clientOrderId: string, symbol: string): CacheAnswer<ExchangeOrder> {
    const st = this.orderStreams.get(symbol);
    if (!st) return { ok: false, reason: `${symbol} is not among the markets the stream cache follows` };
    const e = this.orders.get(clientOrderId);
    const bad = this.usable(
      st,
      e?.anchorEpoch,
      `REST answer for order ${clientOrderId} (nor its creation on the stream)`,
    );
    if (bad) return { ok: false, reason: bad };
    // usable() found the stream connected and the entry anchored in its epoch: both exist.
    const entry = e as OrderEntry;
    const asOf = Math.max(entry.confirmedAt, (st.epoch as Epoch).lastMessageAt);
    const stale = this.stale(`order ${clientOrderId}`, asOf, this.maxAge.orders);
    return stale ? { ok: false, reason: stale } : { ok: true, value: entry.order, asOf };
  }

  openOrders(symbol: string): CacheAnswer<ExchangeOrder[]> {
    const st = this.orderStreams.get(symbol);
    if (!st) return { ok: false, reason: `${symbol} is not among the markets the stream cache follows` };
    const base = this.openBase.get(symbol);
    const bad = this.usable(st, base?.epoch, `REST list of open ${symbol} orders`);
    if (bad) return { ok: false, reason: bad };
    // usable() found the stream connected and the list anchored in its epoch: both exist.
    const epoch = st.epoch as Epoch;
    const asOf = Math.max((base as NonNullable<typeof base>).requestedAt, epoch.lastMessageAt);
    const stale = this.stale(`open ${symbol} orders`, asOf, this.maxAge.orders);
    if (stale) return { ok: false, reason: stale };
    // Every order anchored in this epoch is current: REST saw it (the base list included) or the
    // stream saw it born, and the stream has carried every change since.
    const value = [...this.orders.values()]
      .filter((x) => x.anchorEpoch === epoch.id && x.order.symbol === symbol && !TERMINAL.has(x.order.status))
      .map((x) => x.order);
    return { ok: true, value, asOf };
  }

  ticker(symbol: string): CacheAnswer<CachedTicker> {
    const t = this.tickers.get(symbol);
    if (!t) return { ok: false, reason: `no ${symbol} ticker has arrived on the market stream` };
    const stale = this.stale(`${symbol} ticker`, t.receivedAt, this.maxAge.ticker);
    return stale ? { ok: false, reason: stale } : { ok: true, value: t.ticker, asOf: t.receivedAt };
  }

  /** Why a user-stream value anchored in `anchor` cannot be served now; undefined when it can. */
  private usable(st: StreamState, anchor: number | undefined, what: string): string | undefined {
    if (!st.epoch) {
      return st.down
        ? `the ${st.name} is not connected (dropped at ${iso(st.down.at)}: ${st.down.why})`
        : `the ${st.name} is not connected`;
    }
    if (anchor !== st.epoch.id) {
      return `there is no ${what} since the ${st.name} (re)connected at ${iso(st.epoch.since)}: anything that changed before then may be missing from the stream`;
    }
    return undefined;
  }

  private stale(what: string, asOf: number, maxAge: number): string | undefined {
    const age = this.gw.timer.now() - asOf;
    return age > maxAge
      ? `the cached ${what} is stale: last confirmed ${secs(age)} ago (at ${iso(asOf)}), more than the ${secs(maxAge)} allowed`
      : undefined;
  }
}

/** ccxt's balance structure as rows, assets with nothing in them left out. */
export function balanceRows(b: Balances): Map<string, BalanceRow> {
  const rows = new Map<string, BalanceRow>();
  // ccxt types these three as one Balance; they are per-asset maps (its "balance structure").
  const total = (b.total ?? {}) as Record<string, number | undefined>;
  const free = (b.free ?? {}) as Record<string, number | undefined>;
  const used = (b.used ?? {}) as Record<string, number | undefined>;
  for (const asset of Object.keys({ ...total, ...free, ...used })) {
    const f = free[asset] ?? 0;
    const u = used[asset] ?? 0;
    rows.set(asset, { asset, free: f, used: u, total: total[asset] ?? f + u });
  }
  return rows;
}
