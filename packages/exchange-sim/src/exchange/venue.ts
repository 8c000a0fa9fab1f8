/**
 * What the transports (REST pipeline, WebSocket gateway, market streams) and the composition root
 * need of an exchange, spot or futures: the replay and its book, the clock, accounts' secrets,
 * and the event feed.
 */
import type { SimAccountOptions, SimFeeOptions } from '../types.ts';
import type { SyntheticBook } from './book.ts';
import type { ExchangeListener, MarketState } from './model.ts';
import type { MarketReplay } from './replay.ts';

/** Which Binance protocol a simulator speaks. */
export type SimMarketKind = 'spot' | 'futures';

/** What a mark-price stream reports for a contract (futures only). */
export interface MarkPriceInfo {
  markPrice: number;
  indexPrice: number;
  /** The rate of the coming funding (Binance's `r` / `lastFundingRate`), 0 when none is scheduled. */
  fundingRate: number;
  /** Time of the coming funding, 0 when none is scheduled. */
  nextFundingTime: number;
  /** Hours between fundings at the coming one (8 when none is scheduled). */
  fundingIntervalHours: number;
}

export interface SimVenue {
  readonly kind: SimMarketKind;
  readonly replay: MarketReplay;
  readonly book: SyntheticBook;
  readonly fees: SimFeeOptions;
  /** Smallest bar interval over all markets: what `step()` moves by. */
  readonly baseIntervalMs: number;
  readonly markets: ReadonlyMap<string, MarketState>;
  now(): number;
  /** A market by its Binance id (`BTCUSDT`). */
  market(id: string): MarketState | undefined;
  /** Time of the next replay (or funding) event; +Infinity when there is none. */
  nextEvent(): number;
  advanceTo(t: number): void;
  on(listener: ExchangeListener): void;
  secretOf(apiKey: string): string | undefined;
  addAccount(a: SimAccountOptions): void;
  /** Futures: the mark price and funding of a contract; undefined for spot. */
  markPriceInfo?(symbol: string): MarkPriceInfo | undefined;
}
