declare const brand: unique symbol;
/** A nominal type: a string that is only assignable where its brand is expected. */
export type Brand<T, B extends string> = T & { readonly [brand]: B };

export type ClientOrderId = Brand<string, 'ClientOrderId'>;
export type VenueOrderId = Brand<string, 'VenueOrderId'>;
export type TradeId = Brand<string, 'TradeId'>;
export type StrategyId = Brand<string, 'StrategyId'>;
/** A market symbol in ccxt's unified form, e.g. "BTC/USDT" or "BTC/USDT:USDT". */
export type MarketSymbol = Brand<string, 'MarketSymbol'>;

export const ClientOrderId = (s: string): ClientOrderId => s as ClientOrderId;
export const VenueOrderId = (s: string): VenueOrderId => s as VenueOrderId;
export const TradeId = (s: string): TradeId => s as TradeId;
export const StrategyId = (s: string): StrategyId => s as StrategyId;
export const MarketSymbol = (s: string): MarketSymbol => s as MarketSymbol;
