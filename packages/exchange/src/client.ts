import ccxt from 'ccxt';
import type { CcxtClient } from './gateway.ts';

/**
 * A ccxt.pro client (REST and WebSocket in one object: one per exchange account). ccxt's own
 * throttle is turned off because the gateway's token buckets do the limiting, on an injectable clock.
 */
export function createCcxtClient(exchangeId: string, options: object = {}): CcxtClient {
  const Ctor = (ccxt.pro as unknown as Record<string, new (o: Record<string, unknown>) => CcxtClient>)[exchangeId];
  if (!Ctor) throw new Error(`Unknown exchange "${exchangeId}" (ccxt.pro has no such id)`);
  return new Ctor({ enableRateLimit: false, ...options });
}

/**
 * Which credentials an exchange needs besides an api key and secret (ccxt's
 * `requiredCredentials`): OKX, KuCoin and others want a passphrase ("password"), a few a uid.
 * Throws for an id ccxt.pro does not know.
 */
export function credentialNeeds(exchangeId: string): { readonly password: boolean; readonly uid: boolean } {
  const c = createCcxtClient(exchangeId) as unknown as { requiredCredentials?: Record<string, boolean> };
  return { password: c.requiredCredentials?.['password'] === true, uid: c.requiredCredentials?.['uid'] === true };
}
