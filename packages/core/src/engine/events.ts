import type { Fill, OrderState } from '../model/orders.ts';

/** What the engine reports to its observers (journal, recorder, live dashboard). */
export type EngineEvent =
  | { readonly type: 'order.denied'; readonly time: number; readonly order: OrderState; readonly reason: string }
  | { readonly type: 'order.submitted'; readonly time: number; readonly order: OrderState }
  | { readonly type: 'order.accepted'; readonly time: number; readonly order: OrderState }
  | { readonly type: 'order.rejected'; readonly time: number; readonly order: OrderState; readonly reason: string }
  | { readonly type: 'order.triggered'; readonly time: number; readonly order: OrderState }
  | { readonly type: 'order.filled'; readonly time: number; readonly order: OrderState; readonly fill: Fill }
  | { readonly type: 'order.cancelled'; readonly time: number; readonly order: OrderState; readonly reason: string }
  | { readonly type: 'order.expired'; readonly time: number; readonly order: OrderState }
  | {
      readonly type: 'strategy.error';
      readonly time: number;
      readonly hook: string;
      readonly message: string;
      readonly stack?: string;
    }
  | { readonly type: 'strategy.log'; readonly time: number; readonly message: string };

export type EngineEventType = EngineEvent['type'];
