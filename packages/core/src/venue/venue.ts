import type { Bar } from '../model/bar.ts';
import type { Liquidity, OrderState } from '../model/orders.ts';
import type { ClientOrderId } from '../util/brand.ts';
import type { ExpiryCause } from './expiry.ts';

/** What a venue tells the engine about an order. Discriminated on `type`. */
export type VenueReport =
  | { readonly type: 'accepted'; readonly id: ClientOrderId; readonly time: number; readonly venueOrderId?: string }
  | { readonly type: 'rejected'; readonly id: ClientOrderId; readonly time: number; readonly reason: string }
  | { readonly type: 'triggered'; readonly id: ClientOrderId; readonly time: number }
  | {
      readonly type: 'fill';
      readonly id: ClientOrderId;
      readonly time: number;
      readonly tradeId: string;
      readonly price: number;
      readonly amount: number;
      readonly fee: number;
      readonly feeAsset: string;
      /**
       * A fee paid outside the market (BNB) valued in the account currency by the venue (a live
       * venue reads its asset's price); absent: the engine values it at its own rate, or not at all.
       */
      readonly feeValue?: number;
      readonly liquidity: Liquidity;
    }
  | { readonly type: 'cancelled'; readonly id: ClientOrderId; readonly time: number; readonly reason: string }
  | {
      readonly type: 'expired';
      readonly id: ClientOrderId;
      readonly time: number;
      /** Why, as decided where the expiry happened; the engine names it (`expiryReason`). */
      readonly cause: ExpiryCause;
      /** What the exchange said, for the cause `exchange`. */
      readonly detail?: string | undefined;
    };

/**
 * Receives a venue's reports. A report is only valid during the call: a venue may reuse the object
 * for its next report (the simulated venue does, for accepts and fills), so copy what you keep.
 */
export type ReportSink = (r: VenueReport) => void;

/**
 * The execution port. The simulated venue (backtest and paper) and the live ccxt venue implement
 * it; the engine cannot tell them apart. Reports come back through the sink given at connect().
 */
export interface Venue {
  connect(sink: ReportSink): void;
  submit(order: OrderState, now: number): void;
  cancel(id: ClientOrderId, now: number, reason: string): void;
  /** Called with every closed execution bar; the simulated venue matches here, a live venue ignores it. */
  onBar(symbol: string, bar: Bar, now: number): void;
}
