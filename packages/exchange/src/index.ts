export * from './breaker.ts';
export * from './candles.ts';
export {
  type BinanceMarketFamily,
  binanceMarketOptions,
  ccxtUndeclared,
  createCcxtClient,
  credentialNeeds,
} from './client.ts';
export * from './client-id.ts';
export * from './errors.ts';
export * from './gateway.ts';
export * from './instrument.ts';
export * from './limiter.ts';
export * from './normalize.ts';
export * from './retry.ts';
export * from './stream-cache.ts';
export * from './timer.ts';
export * from './tracker.ts';
export * from './weight-window.ts';
