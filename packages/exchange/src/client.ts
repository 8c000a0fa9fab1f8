import { createHmac } from 'node:crypto';
import ccxt from 'ccxt';
import type { CcxtClient } from './gateway.ts';

/**
 * A ccxt object seen through members it has at run time but its typings do not declare: ccxt.pro's
 * watch and unWatch methods, Binance's raw endpoints, `markets` by symbol, `last_http_response`,
 * `hmac`, the exchange classes by id. The one unchecked view of ccxt: `T` names only members the
 * object really has, optional where not every exchange has them (and callers test those).
 */
export function ccxtUndeclared<T extends object>(x: object): T {
  return x as T;
}

/**
 * A ccxt.pro client (REST and WebSocket in one object: one per exchange account). ccxt's own
 * throttle is turned off because the gateway's token buckets do the limiting, on an injectable clock.
 */
export function createCcxtClient(exchangeId: string, options: object = {}): CcxtClient {
  const Ctor = ccxtUndeclared<Record<string, new (o: Record<string, unknown>) => CcxtClient>>(ccxt.pro)[exchangeId];
  if (!Ctor) throw new Error(`Unknown exchange "${exchangeId}" (ccxt.pro has no such id)`);
  const client = new Ctor({ enableRateLimit: false, ...options });
  useNativeHmac(ccxtUndeclared<{ hmac?: CcxtHmac }>(client));
  unrefDelays(ccxtUndeclared<CcxtDelays>(client));
  return client;
}

/** The Binance market families a client can load: spot, USDⓈ-M (linear), COIN-M (inverse). */
export type BinanceMarketFamily = 'spot' | 'linear' | 'inverse';

/**
 * ccxt options that make a Binance client load only the family of markets it trades, or undefined
 * for another exchange. By default ccxt's binance loads the spot, USDⓈ-M and COIN-M exchangeInfo
 * (three requests, megabytes) and, with keys, the currencies (a sapi call of weight 10) at every
 * start: a spot bot or download then fails to start wherever fapi/dapi is unreachable (blocked in
 * the user's country, down for maintenance) and waits for markets it never uses.
 */
export function binanceMarketOptions(
  exchangeId: string,
  family: BinanceMarketFamily,
): Record<string, unknown> | undefined {
  const own: BinanceMarketFamily | undefined =
    exchangeId === 'binance'
      ? family
      : exchangeId === 'binanceusdm'
        ? 'linear'
        : exchangeId === 'binancecoinm'
          ? 'inverse'
          : undefined;
  if (own === undefined) return undefined;
  return {
    defaultType: own === 'spot' ? 'spot' : own === 'linear' ? 'future' : 'delivery',
    fetchMarkets: { types: [own] },
    fetchCurrencies: false,
    fetchMargins: false,
  };
}

type CcxtDelays = {
  delay?: (ms: number, method: unknown, ...args: unknown[]) => void;
  spawn: (method: unknown, ...args: unknown[]) => unknown;
};

/**
 * ccxt schedules its housekeeping with `delay`, a bare timer that `close()` never clears: Binance
 * USD-M's user stream keeps its listen key alive every 20 minutes that way, so a stopped
 * `keel live --market futures` would stay up for 20 minutes after its report. Unreferenced, the
 * timer still fires while the client is in use (its sockets keep the process running) and no
 * longer holds a finished process open.
 */
function unrefDelays(client: CcxtDelays): void {
  if (typeof client.delay !== 'function') return;
  client.delay = (ms, method, ...args) => {
    setTimeout(() => void client.spawn(method, ...args), ms).unref();
  };
}

type Bytes = string | Uint8Array;
type CcxtHmac = (request: Bytes, secret: Bytes, hash: HashFn, digest?: string) => unknown;
type HashFn = { readonly outputLen?: number; readonly blockLen?: number };

/** ccxt's hash functions (noble-hashes) told apart by their output and block sizes. */
const NODE_HASH: Record<string, string> = {
  '32/64': 'sha256',
  '48/128': 'sha384',
  '64/128': 'sha512',
  '20/64': 'sha1',
};

/**
 * ccxt signs private requests with a pure-JavaScript HMAC (noble-hashes), on the order's way out
 * (the live latency path, docs/live.md). Node's native HMAC gives
 * the same bytes. Each (hash, digest) pair is checked once against ccxt's own result before it
 * is trusted; anything unknown or different stays with ccxt's implementation.
 */
function useNativeHmac(client: { hmac?: CcxtHmac }): void {
  const own = client.hmac;
  if (typeof own !== 'function') return;
  const checked = new Map<HashFn, Map<string, boolean>>();
  client.hmac = (request, secret, hash, digest = 'hex') => {
    const alg = NODE_HASH[`${hash?.outputLen}/${hash?.blockLen}`];
    if (alg === undefined || (digest !== 'hex' && digest !== 'base64')) return own(request, secret, hash, digest);
    let byDigest = checked.get(hash);
    if (byDigest === undefined) checked.set(hash, (byDigest = new Map()));
    const ok = byDigest.get(digest);
    if (ok === false) return own(request, secret, hash, digest);
    const mine = createHmac(alg, secret).update(request).digest(digest);
    if (ok === undefined) {
      const same = mine === own(request, secret, hash, digest);
      byDigest.set(digest, same);
      if (!same) return own(request, secret, hash, digest);
    }
    return mine;
  };
}

/**
 * Which credentials an exchange needs besides an api key and secret (ccxt's
 * `requiredCredentials`): OKX, KuCoin and others want a passphrase ("password"), a few a uid.
 * Throws for an id ccxt.pro does not know.
 */
export function credentialNeeds(exchangeId: string): { readonly password: boolean; readonly uid: boolean } {
  const c = ccxtUndeclared<{ requiredCredentials?: Record<string, boolean> }>(createCcxtClient(exchangeId));
  return { password: c.requiredCredentials?.['password'] === true, uid: c.requiredCredentials?.['uid'] === true };
}
