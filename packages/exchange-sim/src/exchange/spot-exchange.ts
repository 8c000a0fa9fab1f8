/**
 * The simulated spot exchange without its protocol: markets replayed from candles
 * (`MarketReplay`), accounts and balances (`Ledger`), the synthetic book (`SyntheticBook`) and the
 * matching engine with its OCO lists (`MatchingEngine`). No I/O and no wall clock: time is the
 * replay clock, which moves only in `advanceTo`. Everything observable leaves as an
 * `ExchangeEvent`; the REST and WS layers turn those into Binance shapes.
 */
import type { SimAccountOptions, SimBalance, SimOrder } from '../types.ts';
import { checkBnbMarkets } from './bnb-fees.ts';
import { Ledger } from './ledger.ts';
import { MatchingEngine, type PlaceOrderRequest } from './matching.ts';
import type { AccountTrade, MarketState, OrderList } from './model.ts';
import type { PlaceOcoRequest } from './order-lists.ts';
import { ReplayExchange, type ReplayExchangeOptions } from './replay-exchange.ts';

export interface SpotExchangeOptions extends ReplayExchangeOptions {
  accounts: SimAccountOptions[];
}

export class SpotExchange extends ReplayExchange {
  readonly kind = 'spot' as const;
  readonly ledger = new Ledger();
  readonly matching: MatchingEngine;

  constructor(opts: SpotExchangeOptions) {
    super(opts);
    this.matching = new MatchingEngine({
      replay: this.replay,
      ledger: this.ledger,
      book: this.book,
      fees: opts.fees,
      emit: (e) => this.emit(e),
    });
    for (const a of opts.accounts) this.addAccount(a);
  }

  protected override onPriceMove(m: MarketState, from: number, to: number, withinBar: boolean): void {
    this.matching.onPriceMove(m, from, to, withinBar);
  }

  override addAccount(a: SimAccountOptions): void {
    if (a.payFeesWithBnb === true) checkBnbMarkets(a.apiKey, this.markets.values());
    this.ledger.add(a);
  }

  /** Binance's "use BNB to pay fees" (spotBNBBurn) for the account; refused without a BNB market to price it. */
  setPayFeesWithBnb(apiKey: string, on: boolean): void {
    if (on) checkBnbMarkets(apiKey, this.markets.values());
    this.ledger.setPayFeesWithBnb(apiKey, on);
  }

  paysFeesWithBnb(apiKey: string): boolean {
    return this.ledger.paysFeesWithBnb(apiKey);
  }

  override secretOf(apiKey: string): string | undefined {
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
