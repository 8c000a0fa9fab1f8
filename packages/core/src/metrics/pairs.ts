import type { FeedKey } from '../model/bar.ts';
import { type OrderState, refusalOf } from '../model/orders.ts';
import type { PositionSummary } from '../portfolio/account.ts';
import { profitFactor } from './stats.ts';
import { type OpenTrade, summarizeTrades, type Trade } from './trades.ts';

/** One market's share of a run: its bars, its round trips, its open position and its refused orders. */
export interface PairStats extends FeedKey {
  readonly bars: number;
  /** Open time of the first and of the last bar replayed (NaN without bars). */
  readonly first: number;
  readonly last: number;
  readonly tradeCount: number;
  /** NaN without closed trades (as the run's own). */
  readonly winRate: number;
  readonly profitFactor: number;
  /** Net PnL of the closed round trips (after their fees), in the account currency. */
  readonly pnlNet: number;
  /**
   * Every fee of the market's fills, valued as the run's `feesPaid` (the markets' fees add up to
   * it): the closed round trips' and the open position's (`openFees`).
   */
  readonly fees: number;
  /** The position held at the end (0: flat) and its PnL marked at the last close (before fees). */
  readonly openSize: number;
  readonly unrealizedPnl: number;
  /** Fees paid on the open position's fills (in `fees`, in no closed trade's `pnlNet`). */
  readonly openFees: number;
  /** Funding received (> 0) or paid (< 0) on a perpetual; 0 on spot. */
  readonly funding: number;
  /**
   * (pnlNet + unrealizedPnl - openFees + funding) / the run's start value: what the market added
   * to the total return (the markets' contributions add up to it).
   */
  readonly contribution: number;
  /** Orders refused before reaching the venue (risk rules, validation), by it, and at the fill. */
  readonly denied: number;
  readonly rejected: number;
  readonly cancelledAtFill: number;
}

/**
 * Per-market statistics, one per feed's market in feed order (a market with several feeds once).
 * The totals are the run's own metrics; these split them: the closed trades' pnlNet add up to the
 * run's trades, the fees to its fees paid, the contributions to its total return.
 */
export function pairStats(input: {
  readonly feeds: readonly (FeedKey & { bars: number; first: number; last: number })[];
  readonly trades: readonly Trade[];
  readonly openTrades: readonly OpenTrade[];
  readonly orders: readonly OrderState[];
  readonly positions: readonly PositionSummary[];
  readonly funding: readonly { readonly symbol: string; readonly payment: number }[];
  readonly startValue: number;
}): PairStats[] {
  const bySymbol = new Map<string, Trade[]>();
  for (const t of input.trades) {
    let list = bySymbol.get(t.symbol);
    if (list === undefined) bySymbol.set(t.symbol, (list = []));
    list.push(t);
  }
  const refused = {
    denied: new Map<string, number>(),
    rejected: new Map<string, number>(),
    'cancelled-at-fill': new Map<string, number>(),
  };
  for (const o of input.orders) {
    const r = refusalOf(o);
    if (r !== null) refused[r].set(o.request.symbol, (refused[r].get(o.request.symbol) ?? 0) + 1);
  }
  const out: PairStats[] = [];
  const seen = new Set<string>();
  for (const f of input.feeds) {
    if (seen.has(f.symbol)) continue;
    seen.add(f.symbol);
    const trades = bySymbol.get(f.symbol) ?? [];
    const s = summarizeTrades(trades.length, (i) => (trades[i] as Trade).pnlNet);
    // A hedge-mode perpetual holds two positions: the net size, the PnL and fees of both.
    let openSize = 0;
    let unrealizedPnl = 0;
    let fees = 0;
    for (const p of input.positions)
      if (p.symbol === f.symbol) {
        fees += p.fees;
        if (p.size !== 0) {
          openSize += p.size;
          unrealizedPnl += p.unrealizedPnl;
        }
      }
    let openFees = 0;
    for (const t of input.openTrades) if (t.symbol === f.symbol) openFees += t.fees;
    let funding = 0;
    for (const r of input.funding) if (r.symbol === f.symbol) funding += r.payment;
    out.push({
      symbol: f.symbol,
      timeframe: f.timeframe,
      bars: f.bars,
      first: f.first,
      last: f.last,
      tradeCount: s.count,
      winRate: s.count > 0 ? s.wins / s.count : Number.NaN,
      profitFactor: profitFactor(s.count, s.grossWin, s.grossLoss),
      pnlNet: s.net,
      fees,
      openSize,
      unrealizedPnl,
      openFees,
      funding,
      contribution: input.startValue > 0 ? (s.net + unrealizedPnl - openFees + funding) / input.startValue : 0,
      denied: refused.denied.get(f.symbol) ?? 0,
      rejected: refused.rejected.get(f.symbol) ?? 0,
      cancelledAtFill: refused['cancelled-at-fill'].get(f.symbol) ?? 0,
    });
  }
  return out;
}
