import { type Bar, type Rng, SeededRng, type Timeframe, timeframeMs } from '@keel/core';
import type { OHLCV } from 'ccxt';
import * as ccxt from 'ccxt';
import { ccxtUndeclared } from './client.ts';
import type { ExchangeGateway } from './gateway.ts';
import { barFromOhlcv } from './normalize.ts';
import { type RetryPolicy, retryDelayMs } from './retry.ts';

/** A closed candle of one feed. */
export interface ClosedBar extends Bar {
  readonly symbol: string;
  readonly timeframe: Timeframe;
  /**
   * How many newer bars of this market had closed already when this one was handed over (its
   * consumer fell behind the stream, or a gap was filled from REST): its signals are late. Absent
   * for a bar handed over as the newest closed one.
   */
  readonly behind?: number;
}

export interface WatchCandlesOptions {
  readonly symbol: string;
  readonly timeframe: Timeframe;
  /** Bars of history to emit before live ones (REST backfill). Default 0: live only. */
  readonly backfill?: number;
  /** Resume point: emit only bars opening strictly after this time (e.g. the last stored bar). */
  readonly after?: number;
  /**
   * No WebSocket message for this long means the stream is stale: it is dropped and reopened.
   * Default max(2 x timeframe, 30 s); Binance pushes kline updates every ~2 s while a bar forms.
   */
  readonly staleAfterMs?: number;
  /** Reconnect backoff (full jitter). */
  readonly reconnect?: Partial<Pick<RetryPolicy, 'baseMs' | 'maxMs'>>;
  readonly rng?: Rng;
  readonly signal?: AbortSignal;
  /** Called on every reconnect (for logs and tests). */
  readonly onReconnect?: (reason: string, attempt: number) => void;
}

const REST_LIMIT = 1000;

type WatchClient = {
  watchOHLCV(
    symbol: string,
    timeframe?: string,
    since?: number,
    limit?: number,
    params?: Record<string, unknown>,
  ): Promise<OHLCV[]>;
  unWatchOHLCV?(symbol: string, timeframe?: string, params?: Record<string, unknown>): Promise<unknown>;
};

/**
 * Closed bars of one market and timeframe, each exactly once and in order, as an async iterator.
 *
 * - Start: REST backfill (fetchOHLCV) of `backfill` bars, then the WebSocket (ccxt.pro watchOHLCV).
 * - A bar is closed when its final update says so (Binance's kline `x` flag, which ccxt drops and
 *   `klineClosedFlags` keeps) or when a newer bar's open time arrives. The last REST bar is the
 *   forming one and is kept pending, not emitted.
 * - A pending bar is emitted only with final values. One whose values REST gave while it formed,
 *   or (where the client shows `x` flags) whose final update never came, is read again from REST
 *   once the stream shows a newer bar, before it is emitted: REST read at start or in a gap fill,
 *   and the bar closed before the stream's first message, would otherwise emit the bar without its
 *   last trades. The normal path (the `x` update arrives) makes no REST call.
 * - After every reconnect, and whenever the stream skips a bar, the gap is filled from REST since
 *   the pending bar's open time before the stream is trusted again. REST values win over stream
 *   values for the same open time.
 * - Staleness: no message within `staleAfterMs` drops the subscription and reconnects with backoff.
 */
export async function* watchCandles(
  gw: ExchangeGateway,
  opts: WatchCandlesOptions,
): AsyncGenerator<ClosedBar, void, undefined> {
  const { symbol, timeframe } = opts;
  const tfMs = timeframeMs(timeframe);
  const staleAfterMs = opts.staleAfterMs ?? Math.max(2 * tfMs, 30_000);
  const policy = { baseMs: opts.reconnect?.baseMs ?? 500, maxMs: opts.reconnect?.maxMs ?? 30_000 };
  const rng = opts.rng ?? new SeededRng(7);
  const client = ccxtUndeclared<WatchClient>(gw.client);
  const timer = gw.timer;

  let lastEmitted = opts.after ?? Number.NEGATIVE_INFINITY;
  let pending: OHLCV | undefined;
  /** The pending bar's values came from REST at a time it may still have been forming. */
  let pendingFromRest = false;
  const out: ClosedBar[] = [];

  const toBar = (c: OHLCV): ClosedBar => ({ symbol, timeframe, ...barFromOhlcv(c) });

  const closedFlags = klineClosedFlags(gw.client);
  let marketId: string | undefined; // known once markets are loaded

  /** The `x` flag key of a bar, or undefined when this client's flags cannot be read. */
  const flagOf = (openTime: number): string | undefined =>
    closedFlags !== undefined && marketId !== undefined ? flagKey(marketId, timeframe, openTime) : undefined;

  const emitPending = (p: OHLCV): void => {
    out.push(toBar(p));
    lastEmitted = p[0] as number;
  };

  /**
   * Feeds candles in; queues bars that became closed. REST candles opening at or after
   * `closedBefore` may still have been forming when read (known-closed ones open before it).
   */
  const ingest = (
    candles: readonly OHLCV[],
    from: 'stream' | 'rest',
    closedBefore = Number.POSITIVE_INFINITY,
  ): void => {
    const sorted = [...candles]
      .filter((c) => typeof c[0] === 'number')
      .sort((a, b) => (a[0] as number) - (b[0] as number));
    for (const c of sorted) {
      const t = c[0] as number;
      if (t <= lastEmitted) continue; // already emitted: a replay, a duplicate or a late update
      if (pending !== undefined && t > (pending[0] as number)) emitPending(pending);
      else if (pending !== undefined && t < (pending[0] as number)) continue; // out of order: older than pending
      pending = c;
      pendingFromRest = from === 'rest' && t >= closedBefore;
    }
    // Binance's kline `x` flag: the final update of a bar says so itself; no need to wait for the next bar.
    if (from === 'stream' && pending !== undefined && !pendingFromRest) {
      const k = flagOf(pending[0] as number);
      if (k !== undefined && closedFlags?.has(k)) {
        emitPending(pending);
        pending = undefined;
        pendingFromRest = false;
      }
    }
  };

  /**
   * Whether stream candles `r` would emit the pending bar with values that may not be final: a
   * newer bar arrives, and the pending bar's last values came from REST while it formed or
   * (where `x` flags are seen) its final update never came.
   */
  const wouldEmitUnfinal = (r: readonly OHLCV[]): boolean => {
    if (pending === undefined) return false;
    const p = pending[0] as number;
    let newer = false;
    let updated = false;
    for (const c of r) {
      if (c[0] === p) updated = true;
      else if ((c[0] as number) > p) newer = true;
    }
    if (!newer) return false;
    const streamed = updated || !pendingFromRest;
    const k = flagOf(p);
    return k === undefined ? !streamed : !(streamed && closedFlags?.has(k));
  };

  /**
   * REST bars from `since` (inclusive) up to now, paging. Inside the reconnect loop (`once`) each
   * request is tried once: that loop's backoff is the only retry, so no retry loop runs inside
   * another. `closedBefore`: bars opening before it are known to be closed (the stream has shown
   * a newer one), so REST's values of them are final.
   */
  const restFill = async (
    since: number | undefined,
    limit?: number,
    once = false,
    closedBefore = Number.NEGATIVE_INFINITY,
  ): Promise<void> => {
    let from = since;
    for (let page = 0; page < 100; page++) {
      const batch = await gw.fetchOHLCV(symbol, timeframe, from, limit ?? REST_LIMIT, { retry: !once });
      ingest(batch, 'rest', closedBefore);
      if (limit !== undefined || batch.length < REST_LIMIT) return;
      const last = batch.at(-1)?.[0];
      if (typeof last !== 'number' || (from !== undefined && last < from)) return;
      from = last;
    }
  };

  const gapStart = (): number | undefined =>
    pending !== undefined ? (pending[0] as number) : Number.isFinite(lastEmitted) ? lastEmitted + tfMs : undefined;

  // Start: backfill or resume.
  await gw.loadMarkets();
  marketId = ccxtUndeclared<{ markets?: Record<string, { id?: string }> }>(gw.client).markets?.[symbol]?.id;
  if (opts.after !== undefined) await restFill(opts.after + tfMs);
  else if ((opts.backfill ?? 0) > 0) await restFill(undefined, (opts.backfill ?? 0) + 1);
  else {
    await restFill(undefined, 2);
    // Live only: what existed before we started is history, not news.
    out.length = 0;
    if (pending !== undefined) lastEmitted = (pending[0] as number) - tfMs;
  }

  let attempt = 0;
  let needFill = false;
  // Staleness: one watchdog per stream, not a timer (and an AbortController) per message: those
  // cost more than the rest of a kline's handling on the live latency path. It fires
  // `staleAfterMs` after the current watch started, waking the wait below; it runs only while a
  // watch is pending (a consumer that stops pulling leaves no timer behind).
  let watchStartedAt = timer.now();
  let wake: (() => void) | undefined;
  let watchdogRunning = false;
  const stop = new AbortController();
  const onAbort = () => {
    stop.abort();
    wake?.();
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const watchdog = async (): Promise<void> => {
    watchdogRunning = true;
    try {
      while (!stop.signal.aborted && wake !== undefined) {
        const due = watchStartedAt + staleAfterMs - timer.now();
        if (due > 0) await timer.sleep(due, stop.signal);
        else {
          watchStartedAt = timer.now(); // one report per silent period
          wake();
        }
      }
    } finally {
      watchdogRunning = false;
    }
  };
  try {
    while (!opts.signal?.aborted) {
      while (out.length > 0) {
        const b = out.shift() as ClosedBar;
        // Newer bars already closed behind it: say how many (one object more, only then).
        yield out.length > 0 ? { ...b, behind: out.length } : b;
      }
      if (opts.signal?.aborted) break;
      try {
        if (needFill) {
          await restFill(gapStart(), undefined, true);
          needFill = false;
          continue;
        }
        watchStartedAt = timer.now();
        const watch = client.watchOHLCV(symbol, timeframe);
        let r: OHLCV[] | 'stale';
        try {
          const next = new Promise<OHLCV[] | 'stale'>((resolve, reject) => {
            wake = () => resolve('stale');
            watch.then(resolve, reject);
          });
          if (!watchdogRunning) void watchdog();
          r = await next;
        } finally {
          wake = undefined;
        }
        if (opts.signal?.aborted) break;
        if (r === 'stale') throw new StaleStream(`no ${symbol} ${timeframe} candle message for ${staleAfterMs} ms`);
        const first = r[0]?.[0];
        const nextUnseen = pending !== undefined ? (pending[0] as number) + tfMs : lastEmitted + tfMs;
        const skipped = typeof first === 'number' && Number.isFinite(nextUnseen) && first > nextUnseen;
        if (skipped || wouldEmitUnfinal(r)) {
          // The stream skipped at least one whole bar, or would close the pending bar without its
          // final values: take them from REST first (every bar before the newest streamed one
          // has closed, so REST's values of them are final).
          const newest = r.reduce((m, c) => Math.max(m, typeof c[0] === 'number' ? c[0] : m), Number.NEGATIVE_INFINITY);
          await restFill(gapStart(), undefined, true, newest);
        }
        ingest(r, 'stream');
        attempt = 0;
      } catch (e) {
        if (opts.signal?.aborted) break;
        const reason = e instanceof Error ? e.message : String(e);
        opts.onReconnect?.(reason, attempt);
        if (e instanceof StaleStream) dropKlineConnection(gw, symbol, timeframe);
        await timer.sleep(retryDelayMs(attempt, policy, rng), opts.signal);
        attempt++;
        needFill = true;
      }
    }
  } finally {
    stop.abort();
    opts.signal?.removeEventListener('abort', onAbort);
    // The consumer stopped (break, return or abort): release the exchange subscription.
    void client.unWatchOHLCV?.(symbol, timeframe)?.catch(() => {});
  }
}

const flagKey = (marketId: string, timeframe: string, openTime: number) => `${marketId}|${timeframe}|${openTime}`;
const FLAGS = new WeakMap<object, Set<string>>();

/**
 * ccxt parses Binance klines to plain OHLCV arrays and drops the `x` (bar closed) flag. This wraps
 * the client's kline handler, once per client, to remember which (market, interval, open time)
 * the exchange has declared closed. Best effort: clients without such a handler return undefined
 * and bars then close when the next bar's open time arrives.
 */
function klineClosedFlags(client: object): Set<string> | undefined {
  const existing = FLAGS.get(client);
  if (existing) return existing;
  const c = client as { handleOHLCV?: (ws: unknown, message: unknown) => unknown };
  const original = c.handleOHLCV;
  if (typeof original !== 'function') return undefined;
  const flags = new Set<string>();
  c.handleOHLCV = function (this: unknown, ws: unknown, message: unknown) {
    const r = original.call(this, ws, message);
    const k = (message as { k?: { s?: unknown; i?: unknown; t?: unknown; x?: unknown } } | undefined)?.k;
    if (k?.x === true && typeof k.s === 'string' && typeof k.i === 'string' && typeof k.t === 'number') {
      // Kept, not consumed: every watcher of the same feed on this client reads it.
      flags.add(flagKey(k.s, k.i, k.t));
      if (flags.size > 10_000) flags.delete(flags.values().next().value as string);
    }
    return r;
  };
  FLAGS.set(client, flags);
  return flags;
}

interface CcxtWsClient {
  subscriptions?: Record<string, unknown>;
  onError?(e: Error): void;
  close?(): unknown;
}

/**
 * Tears down the WebSocket carrying this kline stream, the way ccxt itself does on a ping-pong
 * timeout (onError rejects the futures and unregisters the client, close() ends the transport), so
 * the next watchOHLCV dials a fresh connection. An UNSUBSCRIBE would be answered on the same
 * silent connection, i.e. never. Other streams on that connection reconnect too (and gap-fill).
 */
function dropKlineConnection(gw: ExchangeGateway, symbol: string, timeframe: string): void {
  const ex = ccxtUndeclared<{
    clients?: Record<string, CcxtWsClient>;
    markets?: Record<string, { id?: string }>;
  }>(gw.client);
  const id = (ex.markets?.[symbol]?.id ?? symbol.replace('/', '')).toLowerCase();
  const needle = `${id}@kline_${timeframe}`;
  let dropped = 0;
  for (const c of Object.values(ex.clients ?? {})) {
    if (
      !Object.keys(c.subscriptions ?? {}).some(
        (k) => k.toLowerCase().includes(needle) || k.includes(`ohlcv::${symbol}::${timeframe}`),
      )
    )
      continue;
    try {
      c.onError?.(new ccxt.NetworkError(`stale ${symbol} ${timeframe} kline stream`));
      c.close?.();
    } catch {
      // already closing
    }
    dropped++;
  }
  if (dropped === 0)
    void ccxtUndeclared<WatchClient>(gw.client)
      .unWatchOHLCV?.(symbol, timeframe)
      .catch(() => {});
}

class StaleStream extends Error {
  override name = 'StaleStream';
}
