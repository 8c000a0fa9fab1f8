import { Agent } from 'node:http';
import type { ExchangeSim } from './sim.ts';

/**
 * Constructor options for the ccxt client of the sim's protocol, every URL pointing at it:
 * `new ccxt.binance(...)` / `new ccxt.pro.binance(...)` for a spot sim, `new ccxt.binanceusdm(...)`
 * / `new ccxt.pro.binanceusdm(...)` for a futures sim. loadMarkets is kept to the one endpoint the
 * sim serves (`fetchMarkets`: spot or linear only, `fetchCurrencies: false` so no sapi
 * capital/config/getall, `fetchMargins: false` so no sapi margin/allPairs). ccxt refuses plain
 * `ws://` URLs unless it has an `httpAgent`, so one (without keep-alive, so it holds no sockets
 * open) is provided.
 */
export interface CcxtExtraConfig {
  timeout?: number;
  enableRateLimit?: boolean;
  verbose?: boolean;
  /** Merged over the sim's options (e.g. `{ recvWindow: 60000 }`). */
  options?: Record<string, unknown>;
  [key: string]: unknown;
}

/** What `ccxtConfigFor` returns: assignable to ccxt's constructor arguments without a cast. */
export interface CcxtSimConfig {
  apiKey?: string;
  secret?: string;
  timeout?: number;
  enableRateLimit?: boolean;
  verbose?: boolean;
  httpAgent: Agent;
  urls: { api: Record<string, unknown> };
  options: Record<string, unknown>;
}

export function ccxtConfigFor(
  sim: Pick<ExchangeSim, 'httpUrl' | 'wsUrl'> & Partial<Pick<ExchangeSim, 'market'>>,
  key?: { apiKey: string; secret: string },
  extra: CcxtExtraConfig = {},
): CcxtSimConfig {
  const rest = `${sim.httpUrl}/api/v3`;
  const extraOptions = extra.options ?? {};
  const futures = sim.market === 'futures';
  const fapi = (v: number): string => `${sim.httpUrl}/fapi/v${v}`;
  return {
    ...(key ? { apiKey: key.apiKey, secret: key.secret } : {}),
    httpAgent: new Agent({ keepAlive: false }),
    ...extra,
    urls: {
      api: {
        public: rest,
        private: rest,
        v3: rest,
        v1: `${sim.httpUrl}/api/v1`,
        sapi: `${sim.httpUrl}/sapi/v1`,
        sapiV2: `${sim.httpUrl}/sapi/v2`,
        sapiV3: `${sim.httpUrl}/sapi/v3`,
        sapiV4: `${sim.httpUrl}/sapi/v4`,
        fapiPublic: fapi(1),
        fapiPublicV2: fapi(2),
        fapiPublicV3: fapi(3),
        fapiPrivate: fapi(1),
        fapiPrivateV2: fapi(2),
        fapiPrivateV3: fapi(3),
        fapiData: `${sim.httpUrl}/futures/data`,
        dapiPublic: `${sim.httpUrl}/dapi/v1`,
        dapiPrivate: `${sim.httpUrl}/dapi/v1`,
        dapiPrivateV2: `${sim.httpUrl}/dapi/v2`,
        ws: {
          spot: `${sim.wsUrl}/ws`,
          margin: `${sim.wsUrl}/ws`,
          // ccxt derives /market/ws, /public/ws and /private/ws?listenKey= from this.
          future: `${sim.wsUrl}/ws`,
          delivery: `${sim.wsUrl}/ws`,
          'ws-api': {
            spot: `${sim.wsUrl}/ws-api/v3`,
            future: `${sim.wsUrl}/ws-fapi/v1`,
            delivery: `${sim.wsUrl}/ws-dapi/v1`,
          },
        },
      },
    },
    options: {
      defaultType: futures ? 'swap' : 'spot',
      fetchMarkets: { types: [futures ? 'linear' : 'spot'] },
      fetchCurrencies: false,
      fetchMargins: false,
      adjustForTimeDifference: false,
      ...extraOptions,
    },
  };
}
