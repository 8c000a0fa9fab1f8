import { Agent } from 'node:http';
import type { ExchangeSim } from './sim.ts';

/**
 * Constructor options for `new ccxt.binance(...)` / `new ccxt.pro.binance(...)` against the sim:
 * every spot URL points at it, and loadMarkets is kept to the one endpoint the sim serves
 * (`fetchMarkets: spot only`, `fetchCurrencies: false` so no sapi capital/config/getall,
 * `fetchMargins: false` so no sapi margin/allPairs). ccxt refuses plain `ws://` URLs unless it
 * has an `httpAgent`, so one (without keep-alive, so it holds no sockets open) is provided.
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
  sim: Pick<ExchangeSim, 'httpUrl' | 'wsUrl'>,
  key?: { apiKey: string; secret: string },
  extra: CcxtExtraConfig = {},
): CcxtSimConfig {
  const rest = `${sim.httpUrl}/api/v3`;
  const extraOptions = extra.options ?? {};
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
        fapiPublic: `${sim.httpUrl}/fapi/v1`,
        dapiPublic: `${sim.httpUrl}/dapi/v1`,
        ws: {
          spot: `${sim.wsUrl}/ws`,
          margin: `${sim.wsUrl}/ws`,
          'ws-api': { spot: `${sim.wsUrl}/ws-api/v3` },
        },
      },
    },
    options: {
      defaultType: 'spot',
      fetchMarkets: { types: ['spot'] },
      fetchCurrencies: false,
      fetchMargins: false,
      adjustForTimeDifference: false,
      ...extraOptions,
    },
  };
}
