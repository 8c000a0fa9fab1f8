import { createHash } from 'node:crypto';
import { parseBarsCsv } from '@keel/candles';
import type { Rng, Timeframe } from '@keel/core';
import { isoUtc, SeededRng, timeframeEnd, timeframeStart } from '@keel/core';
import { DEFAULT_RETRY, httpStatusKind, type RetryPolicy } from '@keel/exchange';
import { unzipSync } from 'fflate';
import type { QuarantinedBar } from '../qc.ts';
import { type MarketType, toFullSeries } from '../schema.ts';
import type { BarBatch, BarSource, FetchRequest, SourceHooks } from './port.ts';
import { realSleep, retrySource, SourceError, sourceError } from './retry.ts';

export const BINANCE_ARCHIVE_BASE = 'https://data.binance.vision';

export interface BinanceArchiveOptions {
  /** Base URL (default https://data.binance.vision); tests point it at a loopback server. */
  readonly baseUrl?: string;
  readonly retry?: RetryPolicy;
  readonly rng?: Rng;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Verify the .CHECKSUM file (default true). A mismatch is an error, never a warning. */
  readonly verifyChecksum?: boolean;
}

const MARKET_PATH: Record<MarketType, string> = { spot: 'spot', usdm: 'futures/um', coinm: 'futures/cm' };

/** Path of one archive under the base URL, exactly as Binance lays them out. */
export function archivePath(
  market: MarketType,
  symbol: string,
  tf: Timeframe,
  period: 'monthly' | 'daily',
  date: string,
): string {
  return `/data/${MARKET_PATH[market]}/${period}/klines/${symbol}/${tf}/${symbol}-${tf}-${date}.zip`;
}

/**
 * Binance public data archives (data.binance.vision): monthly zip klines, falling back to daily
 * zips for months whose monthly file does not exist yet (the current month). Each zip is checked
 * against its .CHECKSUM (sha256) before it is parsed.
 */
export class BinanceArchiveSource implements BarSource {
  readonly kind = 'archive' as const;
  readonly name: string;
  private readonly base: string;
  private readonly retry: RetryPolicy;
  private readonly rng: Rng;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly verify: boolean;

  constructor(opts: BinanceArchiveOptions = {}) {
    this.base = (opts.baseUrl ?? BINANCE_ARCHIVE_BASE).replace(/\/$/, '');
    this.name = `binance-archive(${this.base})`;
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.rng = opts.rng ?? new SeededRng(1);
    this.sleep = opts.sleep ?? realSleep;
    this.verify = opts.verifyChecksum ?? true;
  }

  private async get(url: string): Promise<Uint8Array | null> {
    return retrySource(
      async () => {
        let res: Response;
        try {
          res = await fetch(url);
        } catch (e) {
          const f = sourceError(e);
          throw new SourceError(f.kind, `GET ${url}: ${f.message}`, e);
        }
        if (res.status === 404) return null;
        if (!res.ok) throw new SourceError(httpStatusKind(res.status), `GET ${url}: HTTP ${res.status}`);
        return new Uint8Array(await res.arrayBuffer());
      },
      this.retry,
      { rng: this.rng, sleep: this.sleep },
    );
  }

  private async archive(path: string, hooks?: SourceHooks): Promise<BarBatch | null> {
    const url = `${this.base}${path}`;
    const zip = await this.get(url);
    if (!zip) return null;
    const name = path.slice(path.lastIndexOf('/') + 1);
    if (this.verify) {
      const sumFile = await this.get(`${url}.CHECKSUM`);
      if (!sumFile) throw new SourceError('not-found', `${url}.CHECKSUM is missing: refusing an unverified archive`);
      const expected = new TextDecoder().decode(sumFile).trim().split(/\s+/)[0]?.toLowerCase() ?? '';
      const actual = createHash('sha256').update(zip).digest('hex');
      if (expected !== actual)
        throw new SourceError('fatal', `${name}: sha256 ${actual} does not match its .CHECKSUM ${expected}`);
    }
    let entries: Record<string, Uint8Array>;
    try {
      entries = unzipSync(zip);
    } catch (e) {
      throw new SourceError('fatal', `${name}: not a valid zip (${(e as Error).message})`);
    }
    const csvName = Object.keys(entries).find((k) => k.endsWith('.csv'));
    if (!csvName) throw new SourceError('fatal', `${name}: the zip holds no .csv file`);
    const parsed = parseBarsCsv(new TextDecoder().decode(entries[csvName]), `${name}/${csvName}`);
    hooks?.onNote?.(`${name}: ${parsed.series.length} bars`);
    const quarantined: QuarantinedBar[] = parsed.quarantined.map((q) => ({
      row: -1,
      rule: q.rule,
      message: q.message,
      time: Number.NaN,
      values: [],
      file: `${name}/${csvName}`,
      line: q.line,
    }));
    return {
      raw: { bytes: zip, url, name },
      series: toFullSeries(parsed.series),
      rowsIn: parsed.rowsIn,
      quarantined,
      servedBy: this.base,
      file: `${name}/${csvName}`,
    };
  }

  async *fetch(req: FetchRequest, hooks?: SourceHooks): AsyncIterable<BarBatch> {
    const { market, timeframe, since, until } = req;
    const months: number[] = [];
    for (let m = timeframeStart('1M', since); m < until; m = timeframeEnd('1M', m)) months.push(m);
    let done = 0;
    for (const m of months) {
      const monthly = await this.archive(
        archivePath(market.marketType, market.symbol, timeframe, 'monthly', isoUtc(m).slice(0, 7)),
        hooks,
      );
      if (monthly) {
        yield monthly;
      } else {
        const end = Math.min(timeframeEnd('1M', m), until);
        for (let d = Math.max(m, timeframeStart('1d', since)); d < end; d += 86_400_000) {
          const daily = await this.archive(
            archivePath(market.marketType, market.symbol, timeframe, 'daily', isoUtc(d).slice(0, 10)),
            hooks,
          );
          if (daily) yield daily;
          else
            hooks?.onNote?.(
              `no archive for ${market.symbol} ${timeframe} ${isoUtc(d).slice(0, 10)} (not published yet?)`,
            );
        }
      }
      hooks?.onProgress?.(++done, months.length);
    }
  }
}
