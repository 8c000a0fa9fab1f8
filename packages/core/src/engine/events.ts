import type { ExchangeCloseRecord, FundingRecord, LiquidationRecord } from '../futures/book.ts';
import type { Fill, OrderState } from '../model/orders.ts';
import type { RiskDenial, RiskHalt } from '../risk/events.ts';

/** What the engine reports to its observers (the bot's journal and log, a backtest's `onEvent`). */
export type EngineEvent =
  | {
      readonly type: 'order.denied';
      readonly time: number;
      readonly order: OrderState;
      readonly reason: string;
      /** Present when the risk engine denied it: the rule and the numbers. */
      readonly denial?: RiskDenial;
    }
  | { readonly type: 'order.submitted'; readonly time: number; readonly order: OrderState }
  | { readonly type: 'order.accepted'; readonly time: number; readonly order: OrderState }
  | { readonly type: 'order.rejected'; readonly time: number; readonly order: OrderState; readonly reason: string }
  | { readonly type: 'order.triggered'; readonly time: number; readonly order: OrderState }
  | { readonly type: 'order.filled'; readonly time: number; readonly order: OrderState; readonly fill: Fill }
  | { readonly type: 'order.cancelled'; readonly time: number; readonly order: OrderState; readonly reason: string }
  | { readonly type: 'order.expired'; readonly time: number; readonly order: OrderState; readonly reason: string }
  | {
      readonly type: 'strategy.error';
      readonly time: number;
      readonly hook: string;
      readonly message: string;
      readonly stack?: string;
    }
  | { readonly type: 'strategy.log'; readonly time: number; readonly message: string }
  /** Entries halted (account) or locked (one symbol) by a risk rule; see docs/risk.md. */
  | { readonly type: 'risk.halt'; readonly time: number; readonly halt: RiskHalt }
  | {
      readonly type: 'risk.resume';
      readonly time: number;
      readonly halt: RiskHalt;
      /** `user`: resumeTrading(); `expiry`: a lock's time ran out. */
      readonly by: 'user' | 'expiry';
    }
  /** A perpetual's position closed by the liquidation engine (docs/futures.md). */
  | { readonly type: 'futures.liquidation'; readonly time: number; readonly liquidation: LiquidationRecord }
  /** Live: part or all of a perpetual's position closed by the exchange's auto-deleveraging. */
  | { readonly type: 'futures.adl'; readonly time: number; readonly adl: ExchangeCloseRecord }
  /** Live: a delisted perpetual's position closed by the exchange at the settlement price. */
  | { readonly type: 'futures.settlement'; readonly time: number; readonly settlement: ExchangeCloseRecord }
  /** A funding payment charged to a perpetual's position (> 0 received). */
  | { readonly type: 'futures.funding'; readonly time: number; readonly funding: FundingRecord };

export type EngineEventType = EngineEvent['type'];
