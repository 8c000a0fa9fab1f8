import { createHash } from 'node:crypto';
import { ClientOrderId } from '@keel/core';

/** Binance: newClientOrderId must match ^[.A-Z:/a-z0-9_-]{1,36}$. */
export const CLIENT_ORDER_ID_RE = /^[.A-Z:/a-z0-9_-]{1,36}$/;
const MAX_LEN = 36;

/**
 * The client order id for a signal, deterministic: the same bot and signal key give the same id on
 * every run and every process, so a restarted bot re-sending a signal lands on the order it already
 * placed (the exchange refuses the duplicate or our lookup finds it). Shape: `k` + up to 8 chars of
 * the bot id (readability in the exchange UI) + `-` + 22 base64url chars of SHA-256 (132 bits,
 * collisions are not a practical concern). At most 32 chars.
 */
export function clientOrderId(botId: string, signalKey: string): ClientOrderId {
  if (botId === '' || signalKey === '') throw new Error('clientOrderId needs a non-empty botId and signalKey');
  const prefix = botId.replace(/[^A-Za-z0-9]/g, '').slice(0, 8);
  const hash = createHash('sha256').update(botId).update('\u0000').update(signalKey).digest('base64url').slice(0, 22);
  const id = `k${prefix}-${hash}`;
  if (id.length > MAX_LEN || !CLIENT_ORDER_ID_RE.test(id))
    throw new Error(`Invariant violated: bad client order id ${id}`);
  return ClientOrderId(id);
}
