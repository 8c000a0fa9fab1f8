import { createHmac } from 'node:crypto';

/** What ccxt's `sign()` returns and its `fetch()` takes. */
export interface SignedRequest {
  readonly url: string;
  readonly method: 'POST';
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** The parts of ccxt's binance client the signer reads. */
interface BinanceSigningClient {
  readonly id: string;
  readonly apiKey?: string;
  readonly secret?: string;
  readonly urls?: { readonly api?: Readonly<Record<string, unknown>> };
  readonly options?: { readonly recvWindow?: unknown };
  nonce(): number;
}

/**
 * A signed `POST /api/v3/<path>` on Binance spot, built as ccxt's binance `sign()` builds it
 * (ccxt's "private" API): `timestamp` (ccxt's nonce: its clock minus the measured time
 * difference) first, then the request's fields in order, then the client's `recvWindow` option;
 * form-encoded; an HMAC-SHA256 hex signature appended; the API key header. A test holds the
 * result byte-equal to ccxt's own `sign()` on a frozen clock.
 *
 * ccxt's sign, with its generic parameter handling and encoding, was the largest part of Keel's
 * processing between an order's decision and its request leaving (docs/live.md#latency).
 * Undefined when ccxt must sign: RSA and Ed25519 keys, missing credentials (ccxt raises the
 * proper authentication error), a recvWindow that is not an integer, a request that sets its own.
 */
export function signBinancePrivatePost(
  client: BinanceSigningClient,
  path: string,
  request: Readonly<Record<string, string | number>>,
): SignedRequest | undefined {
  const { apiKey, secret } = client;
  if (client.id !== 'binance' || !apiKey || !secret || secret.includes('PRIVATE KEY')) return undefined;
  const base = client.urls?.api?.['private'];
  if (typeof base !== 'string' || 'recvWindow' in request || 'timestamp' in request) return undefined;
  const recvWindow = client.options?.recvWindow;
  if (recvWindow !== undefined && !Number.isSafeInteger(recvWindow)) return undefined;
  let query = `timestamp=${client.nonce()}`;
  for (const k in request) query += `&${formEncode(k)}=${formEncode(String(request[k]))}`;
  if (recvWindow !== undefined) query += `&recvWindow=${recvWindow}`;
  const signature = createHmac('sha256', secret).update(query).digest('hex');
  return {
    url: `${base}/${path}`,
    method: 'POST',
    headers: { 'X-MBX-APIKEY': apiKey, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: `${query}&signature=${signature}`,
  };
}

const UNRESERVED = /^[A-Za-z0-9\-_.~]*$/;

/** RFC 3986 percent-encoding, as ccxt's urlencode (qs) does: `!'()*` are encoded too. */
function formEncode(s: string): string {
  if (UNRESERVED.test(s)) return s;
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
