// `keel bots parity`: one order's outcome on each side (the bot's, the backtest's) and what
// differs between them, for spot markets and the orders of perpetuals alike.
import { Account, type Fill, humanNumber, type Instrument, type OrderState, TERMINAL_STATUSES } from '@keel/core';
import {
  type Dated,
  differs,
  iso,
  type OrderOutcome,
  type ParityDifference,
  type ParityKind,
  round,
} from './parity-difference.ts';

/** A backtest's order as it ended, its fills (across the sessions it worked in) and the session it was decided in. */
export interface ModelOrder {
  readonly order: OrderState;
  readonly fills: readonly Fill[];
  readonly session: number;
}

/** The bars of one compared session: the closes of its first and last handled bar. */
export interface SessionRange {
  readonly seq: number;
  readonly from: number;
  readonly to: number;
  /** Its fills are stamped at the close of the bar they filled on (paper), not at an exchange's time (live). */
  readonly stamped: boolean;
}

export interface OrderComparisonInput {
  /** Every order the bot stored, and its stored fills by order id. */
  readonly botOrders: readonly OrderState[];
  readonly botFills: ReadonlyMap<string, readonly Fill[]>;
  /** The backtest's orders by client id. */
  readonly modelOrders: ReadonlyMap<string, ModelOrder>;
  readonly ranges: readonly SessionRange[];
  /** Per symbol, the open times of the bars handled (ascending): a fill's bar is found among them. */
  readonly handledBySymbol: ReadonlyMap<string, readonly number[]>;
  /** The backtest's orders still working after the last bar the bot handled. */
  readonly unsettled: ReadonlySet<string>;
  readonly instrumentOf: (symbol: string) => Instrument;
  readonly tol: number;
}

export interface OrderComparison {
  /** Every order difference, dated by its signal. */
  readonly differences: readonly Dated[];
  /** The bot's orders in scope (those of the compared sessions, or paired with the backtest's). */
  readonly botOrders: number;
  readonly matched: number;
  /** The fills of the bot's orders in scope. */
  readonly botFills: readonly Fill[];
  readonly notes: readonly string[];
}

/**
 * Pairs the bot's orders with the backtest's by client id (`signalOrderId`) and names what differs
 * for each pair, and each order only one side has.
 */
export function compareOrders(input: OrderComparisonInput): OrderComparison {
  const { modelOrders, ranges, handledBySymbol, unsettled, instrumentOf, tol } = input;
  const notes: string[] = [];
  const sessionOf = (t: number) => ranges.find((r) => t >= r.from && t <= r.to);
  const inScope = input.botOrders.filter((o) => modelOrders.has(o.request.id) || sessionOf(o.createdAt) !== undefined);
  const botById = new Map(inScope.map((o) => [o.request.id as string, o]));
  const barOf = (symbol: string, t: number): number | null => {
    const times = handledBySymbol.get(symbol);
    if (!times || times.length === 0) return null;
    let lo = 0;
    let hi = times.length - 1;
    if (t < (times[0] as number)) return null;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((times[mid] as number) <= t) lo = mid;
      else hi = mid - 1;
    }
    return times[lo] as number;
  };
  const ids = new Set<string>([...modelOrders.keys(), ...botById.keys()]);
  const differences: Dated[] = [];
  let matched = 0;
  const comparedBotFills: Fill[] = [];
  for (const id of ids) {
    const m = modelOrders.get(id);
    const b = botById.get(id);
    const order = (b ?? m?.order) as OrderState;
    const r = order.request;
    const inst = instrumentOf(r.symbol);
    const bFills = input.botFills.get(id) ?? [];
    comparedBotFills.push(...bFills);
    const botStamped = b ? (sessionOf(b.createdAt)?.stamped ?? true) : true;
    const bs = b ? outcome(b, bFills, inst, (t) => barOf(r.symbol, botStamped ? t - 1 : t)) : null;
    const ms = m ? outcome(m.order, m.fills, inst, (t) => barOf(r.symbol, t - 1)) : null;
    const bo = bs?.outcome ?? null;
    const mo = ms?.outcome ?? null;
    if (b && m) matched++;
    if (m && bo && mo && unsettled.has(id) && bo.filled > 0 && mo.filled === 0) {
      notes.push(
        `order ${id} (${r.side} ${r.amount} ${r.symbol}), decided on the last bar the bot handled, filled after it at ${bo.avgPrice}: the backtest has no later bar to fill it on; not compared`,
      );
      continue;
    }
    const session = m?.session ?? sessionOf(order.createdAt)?.seq ?? null;
    const ctx = {
      id,
      session,
      symbol: r.symbol,
      side: r.side,
      signalAt: iso(order.createdAt) as string,
      bot: bo,
      backtest: mo,
    };
    for (const d of compare(ctx, bo, mo, inst, tol, { bot: bs?.fees, backtest: ms?.fees }))
      differences.push({ at: order.createdAt, d });
  }
  return { differences, botOrders: botById.size, matched, botFills: comparedBotFills, notes };
}

/** Fills by their order's client id, in the order given. */
export function groupFills(fills: readonly Fill[]): Map<string, Fill[]> {
  const m = new Map<string, Fill[]>();
  for (const f of fills) {
    let l = m.get(f.orderId);
    if (l === undefined) {
      l = [];
      m.set(f.orderId, l);
    }
    l.push(f);
  }
  return m;
}

/** What the fee comparison needs of an outcome beyond what it reports. */
export interface FeeCheck {
  /**
   * How far its fee (valued in the quote currency) can be from the exact one because the exchange
   * rounds each commission to 8 decimals of its asset: half a unit per fill.
   */
  readonly rounding: number;
  /** The fee assets as compared (a valued fee in BNB counts as one in the quote), joined. */
  readonly assets: string;
  /** A fee in it had no value (not counted in `fee`). */
  readonly unvalued: boolean;
}

/**
 * How an order ended on one side: its fills summed (fees valued in the quote currency), and the
 * bar it first filled on (`barAt`: the open time of the bar holding a fill time).
 */
export function outcome(
  o: OrderState,
  fills: readonly Fill[],
  inst: Instrument,
  barAt: (t: number) => number | null,
): { readonly outcome: OrderOutcome; readonly fees: FeeCheck } {
  const r = o.request;
  let filled = 0;
  let value = 0;
  let fee = 0;
  const assets = new Set<string>();
  /** The fee assets as compared: a valued fee in BNB counts as one in the quote. */
  const compared = new Set<string>();
  let unvalued = false;
  const valuer = new Account(inst.quote, 0);
  for (const f of fills) {
    filled += f.amount;
    value += f.amount * f.price;
    if (f.fee !== 0) {
      assets.add(f.feeAsset);
      // The account's valuation: a fee in the coin at its fill's price; one paid outside the market
      // (BNB) at the value the bot booked it at, none if it had none.
      const v = f.feeValue ?? valuer.feeValue(inst, f.price, f.fee, f.feeAsset);
      if (Number.isFinite(v)) fee += v;
      else unvalued = true;
      // A valued fee paid outside the market is paid, like one in the quote, from what the market leaves alone.
      compared.add(f.feeAsset === inst.base || !Number.isFinite(v) ? f.feeAsset : inst.quote);
    }
  }
  if (fills.length === 0 && o.filled > 0) {
    // Fills not in the store (recorded before their trade ids were): the order row has the totals.
    filled = o.filled;
    value = o.filled * o.avgPrice;
  }
  const first = fills[0];
  const bar = first ? barAt(first.time) : null;
  let rounding = 0;
  for (const f of fills)
    if (f.fee !== 0)
      rounding += 0.5e-8 * (f.feeAsset === inst.quote ? 1 : f.feeValue !== undefined ? f.feeValue / f.fee : f.price);
  const out: OrderOutcome = {
    type: r.type,
    status: o.status,
    amount: r.amount,
    price: r.type === 'limit' || r.type === 'stop-limit' ? r.price : r.type === 'stop-market' ? r.stopPrice : null,
    filled,
    avgPrice: filled > 0 ? value / filled : null,
    fee,
    feeAssets: [...assets].sort(),
    fillBar: bar === null ? null : iso(bar),
    fillCount: fills.length,
    reason: o.reason ?? null,
    tag: r.tag ?? null,
  };
  return { outcome: out, fees: { rounding, assets: [...compared].sort().join(), unvalued } };
}

const NOT_ACTED = new Set(['denied', 'rejected']);
const TERMINAL = new Set<string>(TERMINAL_STATUSES);

/** What differs between the bot's order (`b`) and the backtest's (`m`) of one signal, in the order a person reads it. */
export function compare(
  ctx: Omit<ParityDifference, 'kind' | 'detail' | 'cost'>,
  b: OrderOutcome | null,
  m: OrderOutcome | null,
  inst: Instrument,
  tol: number,
  fees: { readonly bot: FeeCheck | undefined; readonly backtest: FeeCheck | undefined },
): ParityDifference[] {
  const out: ParityDifference[] = [];
  const add = (kind: ParityKind, detail: string, cost: number | null = null) =>
    out.push({ ...ctx, kind, detail, cost });
  // For people: 10 significant digits (an average of fills' prices is a noisy double); --json's fields keep them whole.
  const n = (x: number | null) => (x === null ? String(x) : humanNumber(x));
  const what = (x: OrderOutcome) =>
    `${ctx.side} ${n(x.amount)} ${ctx.symbol} ${x.type}${x.price !== null ? ` ${n(x.price)}` : ''}${x.tag ? ` (${x.tag})` : ''}`;
  const ended = (x: OrderOutcome) => `${x.status}${x.reason ? ` (${x.reason})` : ''}`;
  const q = inst.quote;
  if (m === null && b === null) return out;
  if (b === null) {
    const mm = m as OrderOutcome;
    if (!NOT_ACTED.has(mm.status))
      add('missing-order', `the backtest placed ${what(mm)}; the bot has no order for this signal`);
    return out;
  }
  if (m === null) {
    const why =
      b.tag === 'flatten'
        ? ' (it closed the position at shutdown: --flatten)'
        : b.tag === 'adopted'
          ? ' (adopted from the exchange: not the strategy’s)'
          : '';
    add('extra-order', `the bot placed ${what(b)}${why}; the backtest did not`);
    return out;
  }
  const bActed = !NOT_ACTED.has(b.status);
  const mActed = !NOT_ACTED.has(m.status);
  if (!bActed && !mActed) return out;
  if (!bActed) {
    add(
      'not-acted',
      `signal not acted on: the bot's ${what(b)} was ${ended(b)}; the backtest's ${m.filled > 0 ? `filled ${n(m.filled)} at ${n(m.avgPrice)}` : `was ${m.status}`}`,
    );
    return out;
  }
  if (!mActed) {
    add('extra-order', `the bot placed ${what(b)}; the backtest's was ${ended(m)}`);
    return out;
  }
  if (differs(b.amount, m.amount, tol))
    add('amount', `the bot asked for ${b.amount}, the backtest for ${m.amount} (${ctx.side} ${ctx.symbol} ${b.type})`);
  if (m.filled > 0 && b.filled === 0) {
    add(
      'unfilled',
      `the backtest filled ${n(m.filled)} at ${n(m.avgPrice)}; the bot's order ended ${ended(b)} unfilled`,
    );
    return out;
  }
  if (b.filled > 0 && m.filled === 0) {
    add(
      'extra-fill',
      TERMINAL.has(m.status)
        ? `the bot filled ${n(b.filled)} at ${n(b.avgPrice)}; the backtest's order ended ${ended(m)} unfilled`
        : `the bot filled ${n(b.filled)} at ${n(b.avgPrice)}; the backtest's order was still working when the bars of its session ran out (the bot filled it while it was down, or after a restart that did not carry it)`,
    );
    return out;
  }
  if (b.filled === 0 && m.filled === 0) return out;
  if (b.fillCount === 0) {
    add(
      'fills-not-recorded',
      `the bot's order is ${b.status} with ${n(b.filled)} filled, but the store has none of its fills (the backtest filled ${n(m.filled)} at ${n(m.avgPrice)}): fees, fill times and PnL from the store miss them`,
    );
    return out;
  }
  if (differs(b.filled, m.filled, tol))
    add('filled-amount', `the bot filled ${n(b.filled)}, the backtest ${n(m.filled)}`);
  const bp = b.avgPrice as number;
  const mp = m.avgPrice as number;
  if (differs(bp, mp, tol)) {
    const against = ctx.side === 'buy' ? bp - mp : mp - bp;
    const bps = (against / mp) * 10_000;
    const cost = against * Math.min(b.filled, m.filled);
    add(
      'price',
      `filled at ${n(bp)} against the backtest's ${n(mp)}: slippage ${round(bps, 2)} bps ${bps >= 0 ? 'against' : 'in favour of'} the bot (${round(cost, 6)} ${q})`,
      cost,
    );
  }
  if (b.fillBar !== m.fillBar)
    add(
      'time',
      `filled on the bar opening ${b.fillBar ?? '(outside the bars seen)'}, the backtest on the bar opening ${m.fillBar}`,
    );
  const bf = fees.bot;
  const mf = fees.backtest;
  const sameAssets = (bf?.assets ?? b.feeAssets.join()) === (mf?.assets ?? m.feeAssets.join());
  // Binance books each fill's commission to 8 decimals of its asset: within that it is the model's fee.
  const rounding = (bf?.rounding ?? 0) + (mf?.rounding ?? 0);
  if (!sameAssets || (differs(b.fee, m.fee, tol) && Math.abs(b.fee - m.fee) > rounding)) {
    const cost = b.fee - m.fee;
    add(
      'fee',
      `fee ${round(b.fee, 8)} ${q}${b.feeAssets.length > 0 ? ` (charged in ${b.feeAssets.join(', ')}${bf?.unvalued ? '; a fee in it had no price: not valued, not counted' : ''})` : ''} against the model's ${round(m.fee, 8)} ${q}${m.feeAssets.length > 0 ? ` (in ${m.feeAssets.join(', ')})` : ''}`,
      cost,
    );
  }
  return out;
}
