/**
 * Binance: newClientOrderId must match ^[.A-Z:/a-z0-9_-]{1,36}$. Ids are made by the runtime
 * (`signalOrderId`: bot, signal bar, sequence); the gateway refuses any other shape unsent.
 */
export const CLIENT_ORDER_ID_RE = /^[.A-Z:/a-z0-9_-]{1,36}$/;
