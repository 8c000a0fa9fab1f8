/**
 * Request authentication as Binance does it: the API key (header on REST, a param on the
 * WebSocket API), an HMAC-SHA256 signature with the account's secret, and the signed timestamp
 * checked against recvWindow on the wall clock (the client signs with its own clock).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { binanceError, mandatoryParam } from '../errors.ts';
import type { Params } from './params.ts';

const MAX_RECV_WINDOW = 60_000;

/** Who may call a route: anyone, any known API key, or a signed request. */
export type Security = 'none' | 'apiKey' | 'signed';

export function signatureMatches(payload: string, secret: string, signature: string): boolean {
  const expected = createHmac('sha256', secret).update(payload).digest();
  if (!/^[0-9a-fA-F]{64}$/.test(signature)) return false;
  return timingSafeEqual(expected, Buffer.from(signature, 'hex'));
}

/** Binance: reject when timestamp >= serverTime + 1000 or serverTime - timestamp > recvWindow. */
export function checkTimestamp(timestampRaw: string, recvWindowRaw: string | undefined, serverTime: number): void {
  const timestamp = Number(timestampRaw);
  if (!Number.isInteger(timestamp))
    throw binanceError(-1100, "Illegal characters found in parameter 'timestamp'; legal range is '^[0-9]{1,20}$'.");
  const recvWindow = recvWindowRaw === undefined ? 5000 : Number(recvWindowRaw);
  if (!(recvWindow > 0) || recvWindow > MAX_RECV_WINDOW)
    throw binanceError(-1131, 'recvWindow must be less than 60000');
  if (timestamp >= serverTime + 1000)
    throw binanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.");
  if (serverTime - timestamp > recvWindow)
    throw binanceError(-1021, 'Timestamp for this request is outside of the recvWindow.');
}

export interface Signer {
  /** The account's secret, undefined for an unknown API key. */
  secretOf(apiKey: string): string | undefined;
  /** The clock the signed timestamp is compared with (wall clock plus any injected skew). */
  serverTime(): number;
}

/**
 * A REST request: API key (-2014 format, -2015 unknown), then signature (-1022) and timestamp
 * (-1021). The signature covers totalParams: the query string concatenated with the body,
 * `signature` itself excluded. Returns the API key.
 */
export function authenticateRest(
  signer: Signer,
  security: Exclude<Security, 'none'>,
  headers: IncomingHttpHeaders,
  raw: { query: string; body: string },
  params: Params,
): string {
  const header = headers['x-mbx-apikey'];
  const apiKey = Array.isArray(header) ? header[0] : header;
  if (!apiKey || !/^[A-Za-z0-9_-]{1,128}$/.test(apiKey)) throw binanceError(-2014, 'API-key format invalid.', 401);
  const secret = signer.secretOf(apiKey);
  if (secret === undefined) throw binanceError(-2015, 'Invalid API-key, IP, or permissions for action.', 401);
  if (security === 'apiKey') return apiKey;
  if (!params.signature) throw mandatoryParam('signature');
  if (!params.timestamp) throw mandatoryParam('timestamp');
  const withoutSignature = (s: string): string =>
    s
      .split('&')
      .filter((kv) => kv !== '' && !kv.startsWith('signature='))
      .join('&');
  const payload = withoutSignature(raw.query) + withoutSignature(raw.body);
  if (!signatureMatches(payload, secret, params.signature))
    throw binanceError(-1022, 'Signature for this request is not valid.');
  checkTimestamp(params.timestamp, params.recvWindow, signer.serverTime());
  return apiKey;
}

/**
 * A WebSocket API request: the signature covers every param but `signature`, sorted by name,
 * joined as k=v&k=v. Returns the API key.
 */
export function authenticateWsApi(signer: Signer, params: Record<string, unknown>): string {
  const apiKey = typeof params.apiKey === 'string' ? params.apiKey : undefined;
  if (!apiKey) throw binanceError(-2014, 'API-key format invalid.');
  const secret = signer.secretOf(apiKey);
  if (secret === undefined) throw binanceError(-2015, 'Invalid API-key, IP, or permissions for action.', 401);
  const signature = typeof params.signature === 'string' ? params.signature : '';
  const payload = Object.keys(params)
    .filter((k) => k !== 'signature')
    .sort()
    .map((k) => `${k}=${String(params[k])}`)
    .join('&');
  if (!signatureMatches(payload, secret, signature))
    throw binanceError(-1022, 'Signature for this request is not valid.');
  checkTimestamp(
    String(params.timestamp ?? ''),
    params.recvWindow === undefined ? undefined : String(params.recvWindow),
    signer.serverTime(),
  );
  return apiKey;
}
