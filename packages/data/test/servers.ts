import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { zipSync } from 'fflate';
import type { FullSeries } from '../src/schema.ts';

export interface TestServer {
  readonly url: string;
  readonly requests: string[];
  close(): Promise<void>;
}

async function listen(
  handler: (req: IncomingMessage, res: ServerResponse, url: URL) => void,
): Promise<TestServer & { server: Server }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    requests.push(`${url.pathname}${url.search}`);
    handler(req, res, url);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Serves files at exact paths (archives and .CHECKSUM files, as data.binance.vision lays them out). */
export async function startArchiveServer(files: Map<string, Uint8Array>): Promise<TestServer> {
  return listen((_req, res, url) => {
    const body = files.get(url.pathname);
    if (!body) {
      res.writeHead(404, { 'content-type': 'application/xml' });
      res.end('<Error><Code>NoSuchKey</Code></Error>');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/zip', 'content-length': body.length });
    res.end(body);
  });
}

/** A Binance archive: the CSV text zipped (as Binance does) plus its "<sha256>  <name>" checksum file. */
export function archiveFiles(pathNoExt: string, csv: string): [string, Uint8Array][] {
  const name = pathNoExt.slice(pathNoExt.lastIndexOf('/') + 1);
  const zip = zipSync({ [`${name}.csv`]: new TextEncoder().encode(csv) });
  const sha = createHash('sha256').update(zip).digest('hex');
  return [
    [`${pathNoExt}.zip`, zip],
    [`${pathNoExt}.zip.CHECKSUM`, new TextEncoder().encode(`${sha}  ${name}.zip\n`)],
  ];
}

export interface KlinesServerOptions {
  readonly symbol: string;
  readonly base: string;
  readonly quote: string;
  readonly bars: FullSeries;
  /** Status codes to answer the next /klines requests with, in order (then normal answers). */
  readonly failKlines?: number[];
  /** Answer every request with this status (an exchange that is down). */
  readonly down?: number;
  /** More markets served beside the first (exchangeInfo lists them, klines answers for them). */
  readonly more?: readonly {
    readonly symbol: string;
    readonly base: string;
    readonly quote: string;
    readonly bars: FullSeries;
  }[];
}

/**
 * A minimal Binance spot REST endpoint: /api/v3/exchangeInfo and /api/v3/klines (startTime,
 * endTime, limit; max 1000), in Binance's JSON layout. The shared 1m files have no quote volume,
 * trade count or taker volumes, so rows carry the 6 OHLCV fields plus close time only.
 */
export async function startKlinesServer(opts: KlinesServerOptions): Promise<TestServer> {
  const fail = [...(opts.failKlines ?? [])];
  const markets = [opts, ...(opts.more ?? [])];
  return listen((_req, res, url) => {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    // A venue that is down answers from its load balancer: an HTML page, not a Binance error body.
    const unavailable = (status: number) => {
      res.writeHead(status, { 'content-type': 'text/html' });
      res.end(`<html><body><h1>${status} Service Unavailable</h1></body></html>`);
    };
    if (opts.down) return unavailable(opts.down);
    if (url.pathname === '/api/v3/exchangeInfo') {
      return send(200, {
        timezone: 'UTC',
        serverTime: 1_706_745_600_000,
        rateLimits: [{ rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: 6000 }],
        exchangeFilters: [],
        symbols: markets.map((m) => ({
          symbol: m.symbol,
          status: 'TRADING',
          baseAsset: m.base,
          baseAssetPrecision: 8,
          quoteAsset: m.quote,
          quotePrecision: 8,
          quoteAssetPrecision: 8,
          baseCommissionPrecision: 8,
          quoteCommissionPrecision: 8,
          orderTypes: ['LIMIT', 'MARKET'],
          icebergAllowed: true,
          ocoAllowed: true,
          isSpotTradingAllowed: true,
          isMarginTradingAllowed: false,
          filters: [
            {
              filterType: 'PRICE_FILTER',
              minPrice: '0.01000000',
              maxPrice: '1000000.00000000',
              tickSize: '0.01000000',
            },
            { filterType: 'LOT_SIZE', minQty: '0.00001000', maxQty: '9000.00000000', stepSize: '0.00001000' },
            {
              filterType: 'NOTIONAL',
              minNotional: '5.00000000',
              applyMinToMarket: true,
              maxNotional: '9000000.00000000',
              applyMaxToMarket: false,
              avgPriceMins: 5,
            },
          ],
          permissions: [],
          permissionSets: [['SPOT']],
          defaultSelfTradePreventionMode: 'EXPIRE_MAKER',
          allowedSelfTradePreventionModes: ['EXPIRE_TAKER', 'EXPIRE_MAKER', 'EXPIRE_BOTH'],
        })),
      });
    }
    if (url.pathname === '/api/v3/klines') {
      const code = fail.shift();
      if (code === 429)
        return send(429, {
          code: -1003,
          msg: 'Too many requests; current limit of IP is 6000 request weight per 1 MINUTE.',
        });
      if (code !== undefined) return unavailable(code);
      const market = markets.find((m) => m.symbol === url.searchParams.get('symbol'));
      if (market === undefined) return send(400, { code: -1121, msg: 'Invalid symbol.' });
      const s = market.bars;
      const start = Number(url.searchParams.get('startTime') ?? 0);
      const end = Number(url.searchParams.get('endTime') ?? Number.MAX_SAFE_INTEGER);
      const limit = Math.min(1000, Number(url.searchParams.get('limit') ?? 500));
      const rows: unknown[] = [];
      for (let i = 0; i < s.length && rows.length < limit; i++) {
        const t = s.time[i] as number;
        if (t < start || t > end) continue;
        rows.push([
          t,
          String(s.open[i]),
          String(s.high[i]),
          String(s.low[i]),
          String(s.close[i]),
          String(s.volume[i]),
          t + 59_999,
        ]);
      }
      return send(200, rows);
    }
    // Binance's answer where its derivatives are out of reach (a restricted location).
    if (/^\/(fapi|dapi|eapi)/.test(url.pathname))
      return send(451, {
        code: 0,
        msg: 'Service unavailable from a restricted location according to b. Eligibility in https://www.binance.com/en/terms.',
      });
    send(404, { code: -1, msg: `no route ${url.pathname}` });
  });
}
