/** USDⓈ-M perpetual futures: Binance's margin, liquidation and funding formulas (docs/futures.md). */
export * from './book.ts';
export * from './brackets.ts';
export * from './flags.ts';
export * from './funding.ts';
export * from './liquidation.ts';
export * from './margin.ts';
export * from './position.ts';
