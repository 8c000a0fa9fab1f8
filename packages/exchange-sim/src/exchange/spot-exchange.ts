/**
 * The simulated spot exchange without its protocol: markets replayed from candles
 * (`MarketReplay`), accounts and balances (`Ledger`), the synthetic book (`SyntheticBook`) and the
 * matching engine with its OCO lists (`MatchingEngine`). No I/O and no wall clock: time is the
 * replay clock, which moves only in `advanceTo`. Everything observable leaves as an
 * `ExchangeEvent`; the REST and WS layers turn those into Binance shapes.
 */
import type { SimAccountOptions, SimBalance, SimFeeOptions, SimOrder } from '../types.ts';
import { SyntheticBook } from './book.ts';
import { Ledger } from './ledger.ts';
import { MatchingEngine, type PlaceOrderRequest } from './matching.ts';
import type { AccountTrade, ExchangeEvent, ExchangeListener, MarketSpec, MarketState, OrderList } from './model.ts';
import type { PlaceOcoRequest } from './order-lists.ts';
import { MarketReplay } from './replay.ts';
import type { SimVenue } from './venue.ts';

export interface SpotExchangeOptions {
  markets: MarketSpec[];
  accounts: SimAccountOptions[];
  fees: SimFeeOptions;
  /** Share of a bar's volume the accounts' orders may fill per side. */
  participation: number;
  /** Levels per side of the synthetic book. */
  bookLevels: number;
  /** Best ask minus best bid, in ticks. */
  spreadTicks: number;
  startTime: number;
}

export class SpotExchange implements SimVenue {
  readonly kind = 'spot' as const;
  readonly replay: MarketReplay;
  readonly ledger = new Ledger();
  readonly book: SyntheticBook;
  readonly matching: MatchingEngine;
  readonly fees: SimFeeOptions;
  private readonly listeners: ExchangeListener[] = [];

  constructor(opts: SpotExchangeOptions) {
    this.fees = opts.fees;
    this.book = new SyntheticBook(opts.bookLevels, opts.spreadTicks);
    const emit = (e: ExchangeEvent): void => {
      for (const l of this.listeners) l(e);
    };
    this.replay = new MarketReplay({
      markets: opts.markets,
      participation: opts.participation,
      startTime: opts.startTime,
      emit,
      onPriceMove: (m, from, to, withinBar) => this.matching.onPriceMove(m, from, to, withinBar),
    });
    this.matching = new MatchingEngine({
      replay: this.replay,
      ledger: this.ledger,
      book: this.book,
      fees: opts.fees,
      emit,
    });
    for (const a of opts.accounts) this.ledger.add(a);
  }

  on(listener: ExchangeListener): void {
    this.listeners.push(listener);
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

  addAccount(a: SimAccountOptions): void {
    this.ledger.add(a);
  }

  secretOf(apiKey: string): string | undefined {
    return this.ledger.secretOf(apiKey);
  }

  balances(apiKey: string): Record<string, SimBalance> {
    return this.ledger.balances(apiKey);
  }

  myTrades(apiKey: string, symbolId: string): AccountTrade[] {
    return this.ledger.trades(apiKey, symbolId);
  }

  placeOrder(apiKey: string, req: PlaceOrderRequest): SimOrder {
    return this.matching.placeOrder(apiKey, req);
  }

  placeOco(apiKey: string, req: PlaceOcoRequest): { list: OrderList; orders: SimOrder[] } {
    return this.matching.placeOco(apiKey, req);
  }

  cancelOrder(
    apiKey: string,
    symbolId: string,
    orderId: number | undefined,
    origClientOrderId: string | undefined,
    newClientOrderId: string | undefined,
  ): SimOrder {
    return this.matching.cancelOrder(apiKey, symbolId, orderId, origClientOrderId, newClientOrderId);
  }

  queryOrder(
    apiKey: string,
    symbolId: string,
    orderId: number | undefined,
    origClientOrderId: string | undefined,
  ): SimOrder {
    return this.matching.queryOrder(apiKey, symbolId, orderId, origClientOrderId);
  }

  ordersOf(apiKey: string, symbolId?: string): SimOrder[] {
    return this.matching.ordersOf(apiKey, symbolId);
  }

  openOrders(apiKey: string, symbolId?: string): SimOrder[] {
    return this.matching.openOrders(apiKey, symbolId);
  }

  orderList(apiKey: string, orderListId: number | undefined, listClientOrderId: string | undefined): OrderList {
    return this.matching.lists.find(apiKey, orderListId, listClientOrderId);
  }
}
