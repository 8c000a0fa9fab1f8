import type { FeedKey } from '../model/bar.ts';
import type { OrderState } from '../model/orders.ts';
import type { PositionSummary } from '../portfolio/account.ts';
import { summarizeTrades, type Trade } from './trades.ts';

/** One market's share of a run: its bars, its round trips, its open position and its refused orders. */
export interface PairStats extends FeedKey {
  readonly bars: number;
  /** Open time of the first and of the last bar replayed (NaN without bars). */
  readonly first: number;
  readonly last: number;
  readonly tradeCount: number;
  readonly winRate: number;
  readonly profitFactor: number;
  /** Net PnL of the closed round trips (after their fees), in the account currency. */
  readonly pnlNet: number;
  /** Fees of the closed round trips. */
  readonly fees: number;
  /** The position held at the end (0: flat) and its PnL marked at the last close. */
  readonly openSize: number;
  readonly unrealizedPnl: number;
  /** (pnlNet + unrealizedPnl) / the run's start value: what the market added to the total return. */
  readonly contribution: number;
  /** Orders refused before reaching the venue (risk rules, validation) and refused by it. */
  readonly denied: number;
  readonly rejected: number;
}

/**
 * Per-market statistics, one per feed's market in feed order (a market with several feeds once).
 * The totals are the run's own metrics; these split them: the closed trades' pnlNet and fees add
 * up to the run's trades, market by market.
 */
export function pairStats(input: {
  readonly feeds: readonly (FeedKey & { bars: number; first: number; last: number })[];
  readonly trades: readonly Trade[];
  readonly orders: readonly OrderState[];
  readonly positions: readonly PositionSummary[];
  readonly startValue: number;
}): PairStats[] {
  const bySymbol = new Map<string, Trade[]>();
  for (const t of input.trades) {
    let list = bySymbol.get(t.symbol);
    if (list === undefined) bySymbol.set(t.symbol, (list = []));
    list.push(t);
  }
  const denied = new Map<string, number>();
  const rejected = new Map<string, number>();
  for (const o of input.orders) {
    const m = o.status === 'denied' ? denied : o.status === 'rejected' ? rejected : undefined;
    if (m !== undefined) m.set(o.request.symbol, (m.get(o.request.symbol) ?? 0) + 1);
  }
  const out: PairStats[] = [];
  const seen = new Set<string>();
  for (const f of input.feeds) {
    if (seen.has(f.symbol)) continue;
    seen.add(f.symbol);
    const trades = bySymbol.get(f.symbol) ?? [];
    const s = summarizeTrades(trades.length, (i) => (trades[i] as Trade).pnlNet);
    let fees = 0;
    for (const t of trades) fees += t.fees;
    // A hedge-mode perpetual holds two positions: the net size, the unrealised PnL of both.
    let openSize = 0;
    let unrealizedPnl = 0;
    for (const p of input.positions)
      if (p.symbol === f.symbol && p.size !== 0) {
        openSize += p.size;
        unrealizedPnl += p.unrealizedPnl;
      }
    out.push({
      symbol: f.symbol,
      timeframe: f.timeframe,
      bars: f.bars,
      first: f.first,
      last: f.last,
      tradeCount: s.count,
      winRate: s.count > 0 ? s.wins / s.count : 0,
      profitFactor: s.grossLoss > 0 ? s.grossWin / s.grossLoss : s.grossWin > 0 ? Number.POSITIVE_INFINITY : 0,
      pnlNet: s.net,
      fees,
      openSize,
      unrealizedPnl,
      contribution: input.startValue > 0 ? (s.net + unrealizedPnl) / input.startValue : 0,
      denied: denied.get(f.symbol) ?? 0,
      rejected: rejected.get(f.symbol) ?? 0,
    });
  }
  return out;
}
