/**
 * What every simulated exchange shares, spot or futures: markets replayed from candles
 * (`MarketReplay`), the synthetic book around the replayed price, the replay clock, and the event
 * feed everything observable leaves through. A subclass adds its accounts and matching and says
 * what a price move does (`onPriceMove`).
 */
import type { SimAccountOptions, SimFeeOptions } from '../types.ts';
import { SyntheticBook } from './book.ts';
import type { ExchangeEvent, ExchangeListener, MarketSpec, MarketState } from './model.ts';
import { MarketReplay } from './replay.ts';
import type { SimMarketKind, SimVenue } from './venue.ts';

export interface ReplayExchangeOptions {
  markets: MarketSpec[];
  fees: SimFeeOptions;
  /** Share of a bar's volume the accounts' orders may fill per side. */
  participation: number;
  /** Levels per side of the synthetic book. */
  bookLevels: number;
  /** Best ask minus best bid, in ticks. */
  spreadTicks: number;
  startTime: number;
}

export abstract class ReplayExchange implements SimVenue {
  abstract readonly kind: SimMarketKind;
  readonly replay: MarketReplay;
  readonly book: SyntheticBook;
  readonly fees: SimFeeOptions;
  private readonly listeners: ExchangeListener[] = [];

  constructor(opts: ReplayExchangeOptions) {
    this.fees = opts.fees;
    this.book = new SyntheticBook(opts.bookLevels, opts.spreadTicks);
    this.replay = new MarketReplay({
      markets: opts.markets,
      participation: opts.participation,
      startTime: opts.startTime,
      emit: (e) => this.emit(e),
      // Called only while the replay advances, after the subclass is constructed.
      onPriceMove: (m, from, to, withinBar) => this.onPriceMove(m, from, to, withinBar),
    });
  }

  /** The replayed price of `m` moved from `from` to `to` (within a bar: continuously). */
  protected abstract onPriceMove(m: MarketState, from: number, to: number, withinBar: boolean): void;

  abstract addAccount(a: SimAccountOptions): void;
  abstract secretOf(apiKey: string): string | undefined;

  on(listener: ExchangeListener): void {
    this.listeners.push(listener);
  }

  protected emit(e: ExchangeEvent): void {
    for (const l of this.listeners) l(e);
  }

  /** The replay clock, UTC ms. */
  now(): number {
    return this.replay.now();
  }

  /** Smallest bar interval over all markets: what `step()` moves by. */
  get baseIntervalMs(): number {
    return this.replay.baseIntervalMs;
  }

  get markets(): ReadonlyMap<string, MarketState> {
    return this.replay.markets;
  }

  /** A market by its Binance id (`BTCUSDT`). */
  market(id: string): MarketState | undefined {
    return this.replay.market(id);
  }

  nextEvent(): number {
    return this.replay.nextEvent();
  }

  advanceTo(t: number): void {
    this.replay.advanceTo(t);
  }
}

/** The list kept under `key`, created empty on first use. */
export function listIn<K, V>(map: Map<K, V[]>, key: K): V[] {
  let list = map.get(key);
  if (!list) {
    list = [];
    map.set(key, list);
  }
  return list;
}
