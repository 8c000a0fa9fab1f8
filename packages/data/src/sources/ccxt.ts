import { parseBarsCsv } from '@keel/candles';
import type { Clock, Rng } from '@keel/core';
import { isoUtc, isRetryable, SeededRng, timeframeEnd, timeframeMs } from '@keel/core';
import { binanceMarketOptions, ccxtUndeclared, DEFAULT_RETRY, type RetryPolicy } from '@keel/exchange';
import * as ccxt from 'ccxt';
import { allocSeries, type FullSeries } from '../schema.ts';
import type { BarBatch, BarSource, FetchRequest, SourceHooks } from './port.ts';
import { realSleep, retrySource, SourceError, sourceError } from './retry.ts';

/** One exchange the source may use; the first is primary, the others are failovers for the same market. */
export interface CcxtEndpoint {
  /** ccxt exchange id, e.g. 'binance'. */
  readonly id: string;
  /** Extra ccxt constructor options (urls, options, timeout...). */
  readonly config?: object;
  /** Symbol in ccxt's unified form on this exchange ('BTC/USDT'); default derived from the request. */
  readonly symbol?: string;
  /** A label for reports (default: id). */
  readonly label?: string;
}

export interface CcxtSourceOptions {
  readonly endpoints: readonly CcxtEndpoint[];
  readonly clock?: Clock;
  readonly retry?: RetryPolicy;
  readonly rng?: Rng;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Bars per request (default 1000, Binance spot's maximum). */
  readonly pageSize?: number;
  /** Injected exchange factory (tests); default constructs the ccxt class by id. */
  readonly create?: (e: CcxtEndpoint) => ccxt.Exchange;
}

export function unifiedSymbol(symbol: string, marketType: string): string {
  if (symbol.includes('/')) return symbol;
  const m = /^(.+?)(USDT|USDC|BUSD|FDUSD|TUSD|BTC|ETH|BNB|EUR|TRY|USD)$/.exec(symbol);
  if (!m)
    throw new SourceError('not-found', `cannot split ${symbol} into base/quote; pass the unified symbol (BASE/QUOTE)`);
  return marketType === 'usdm'
    ? `${m[1]}/${m[2]}:${m[2]}`
    : marketType === 'coinm'
      ? `${m[1]}/USD:${m[1]}`
      : `${m[1]}/${m[2]}`;
}

/**
 * Any ccxt exchange over REST. Paginates fetchOHLCV from `since`, lets ccxt's rate limiter pace the
 * requests (enableRateLimit), retries transient and rate-limited errors with backoff and jitter, and
 * fails over to the next configured exchange when one stays down. Unfinished bars (whose period
 * has not closed by the clock) are never returned. The raw zone keeps the HTTP body of every page.
 */
export class CcxtSource implements BarSource {
  readonly kind = 'rest' as const;
  readonly name: string;
  private readonly clock: Clock;
  private readonly retry: RetryPolicy;
  private readonly rng: Rng;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly pageSize: number;
  // Per endpoint and market type: a Binance client loads the markets of one type only.
  private readonly exchanges = new Map<CcxtEndpoint, Map<string, ccxt.Exchange>>();
  private active = 0;
  private readonly marketsLoaded = new WeakSet<ccxt.Exchange>();

  constructor(private readonly opts: CcxtSourceOptions) {
    if (opts.endpoints.length === 0) throw new Error('CcxtSource needs at least one endpoint');
    this.name = `ccxt(${opts.endpoints.map((e) => e.label ?? e.id).join(' -> ')})`;
    this.clock = opts.clock ?? { now: () => Date.now() };
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.rng = opts.rng ?? new SeededRng(7);
    this.sleep = opts.sleep ?? realSleep;
    this.pageSize = opts.pageSize ?? 1000;
  }

  private exchange(e: CcxtEndpoint, marketType: string): ccxt.Exchange {
    let byType = this.exchanges.get(e);
    if (!byType) this.exchanges.set(e, (byType = new Map()));
    let ex = byType.get(marketType);
    if (!ex) {
      if (this.opts.create) ex = this.opts.create(e);
      else {
        const Ctor = ccxtUndeclared<Record<string, new (c: object) => ccxt.Exchange>>(ccxt)[e.id];
        if (typeof Ctor !== 'function') throw new SourceError('fatal', `ccxt has no exchange "${e.id}"`);
        // Binance: only the family of markets downloaded is loaded (spot needs no fapi/dapi).
        const family = marketType === 'usdm' ? 'linear' : marketType === 'coinm' ? 'inverse' : 'spot';
        const config = (e.config ?? {}) as { options?: object };
        ex = new Ctor({
          enableRateLimit: true,
          ...config,
          options: { ...binanceMarketOptions(e.id, family), ...(config.options ?? {}) },
        });
      }
      byType.set(marketType, ex);
    }
    return ex;
  }

  /** Closes ccxt's HTTP agents so a test process can exit. */
  async close(): Promise<void> {
    for (const byType of this.exchanges.values()) for (const ex of byType.values()) await ex.close?.();
  }

  private async page(
    req: FetchRequest,
    since: number,
    hooks?: SourceHooks,
  ): Promise<{ rows: number[][]; body: string; url: string; servedBy: string }> {
    const eps = this.opts.endpoints;
    let lastErr: unknown;
    // Start from the endpoint that worked last; move on when one stays down.
    for (let k = 0; k < eps.length; k++) {
      const idx = (this.active + k) % eps.length;
      const ep = eps[idx] as CcxtEndpoint;
      const ex = this.exchange(ep, req.market.marketType);
      const symbol = ep.symbol ?? unifiedSymbol(req.market.symbol, req.market.marketType);
      try {
        const rows = await retrySource(
          async () => {
            // A failed loadMarkets stays cached in ccxt as a rejected promise: reload until it succeeds.
            await ex.loadMarkets(!this.marketsLoaded.has(ex));
            this.marketsLoaded.add(ex);
            return (await ex.fetchOHLCV(symbol, req.timeframe, since, this.pageSize)) as number[][];
          },
          this.retry,
          {
            rng: this.rng,
            sleep: this.sleep,
            headers: () => ex.last_response_headers as Record<string, unknown> | undefined,
            onRetry: (a, d, e) =>
              hooks?.onNote?.(
                `${ep.label ?? ep.id}: retry ${a} in ${Math.round(d)} ms after ${e.message.slice(0, 120)}`,
              ),
          },
        );
        if (idx !== this.active) hooks?.onNote?.(`failed over to ${ep.label ?? ep.id}`);
        this.active = idx;
        const last = ccxtUndeclared<{ last_http_response?: unknown }>(ex).last_http_response;
        const body = typeof last === 'string' && last.length > 0 ? last : JSON.stringify(rows);
        return {
          rows,
          body,
          url: `${ep.id}:fetchOHLCV(${symbol},${req.timeframe},${since},${this.pageSize})`,
          servedBy: ep.label ?? ep.id,
        };
      } catch (e) {
        lastErr = e;
        // Only an unavailable exchange is a reason to fail over; a rejected request would fail anywhere.
        if (!isRetryable(sourceError(e).kind)) throw e;
        hooks?.onNote?.(`${ep.label ?? ep.id} is unavailable (${(e as Error).message.slice(0, 160)})`);
      }
    }
    throw lastErr instanceof SourceError
      ? lastErr
      : new SourceError('transient', `every configured exchange failed: ${(lastErr as Error)?.message}`, lastErr);
  }

  async *fetch(req: FetchRequest, hooks?: SourceHooks): AsyncIterable<BarBatch> {
    const tfMs = timeframeMs(req.timeframe);
    const now = this.clock.now();
    const until = Math.min(req.until, now);
    const total = Math.max(1, Math.ceil((until - req.since) / tfMs));
    let since = req.since;
    while (since < until) {
      const { rows, body, url, servedBy } = await this.page(req, since, hooks);
      const kept = rows.filter(
        (r) =>
          (r[0] as number) >= since && (r[0] as number) < until && timeframeEnd(req.timeframe, r[0] as number) <= now,
      );
      if (kept.length === 0) break;
      const series = this.toSeries(kept, body);
      const raw = {
        bytes: new TextEncoder().encode(body),
        url,
        name: `${req.market.symbol}-${req.timeframe}-${isoUtc(since).replace(/[:]/g, '')}.json`,
      };
      yield { raw, series, rowsIn: kept.length, quarantined: [], servedBy };
      const lastT = kept[kept.length - 1]?.[0] as number;
      hooks?.onProgress?.(Math.min(total, Math.round((lastT - req.since) / tfMs) + 1), total);
      const next = timeframeEnd(req.timeframe, lastT);
      if (next <= since) break;
      since = next;
    }
  }

  /** ccxt rows are [t, o, h, l, c, v]; when the body is Binance's 12-column klines, take the extras from it. */
  private toSeries(rows: number[][], body: string): FullSeries {
    const s = allocSeries(rows.length);
    rows.forEach((r, i) => {
      s.time[i] = r[0] as number;
      s.open[i] = r[1] as number;
      s.high[i] = r[2] as number;
      s.low[i] = r[3] as number;
      s.close[i] = r[4] as number;
      s.volume[i] = r[5] as number;
    });
    s.quoteVolume.fill(Number.NaN);
    s.trades.fill(Number.NaN);
    s.takerBuyVolume.fill(Number.NaN);
    if (body.startsWith('[[')) {
      try {
        const arr = JSON.parse(body) as unknown[][];
        if (arr.length > 0 && (arr[0] as unknown[]).length >= 11) {
          const csv = arr.map((r) => r.join(',')).join('\n');
          const p = parseBarsCsv(csv, 'klines');
          const byTime = new Map<number, number>();
          for (let j = 0; j < p.series.length; j++) byTime.set(p.series.time[j] as number, j);
          for (let i = 0; i < s.length; i++) {
            const j = byTime.get(s.time[i] as number);
            if (j === undefined) continue;
            s.quoteVolume[i] = p.series.quoteVolume?.[j] ?? Number.NaN;
            s.trades[i] = p.series.trades?.[j] ?? Number.NaN;
            s.takerBuyVolume[i] = p.series.takerBuyVolume?.[j] ?? Number.NaN;
          }
        }
      } catch {
        // Not Binance's layout: the extras stay NaN.
      }
    }
    return s;
  }
}
