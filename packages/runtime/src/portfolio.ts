import { Account, defineInstrument, type Instrument, isTimeframe, type Rate, timeframeEnd } from '@keel/core';
import type { BotMode, BotRecord, Store } from '@keel/store';
import type { ExchangeBalance, ExchangeOrder } from './live/port.ts';
import { bookedFees } from './pnl.ts';
import { isSessionSetup, type SessionSetup } from './session.ts';

/** The last price known of a market: the close of the newest bar any bot of the store saw. */
export interface Mark {
  readonly price: number;
  /** Close time of that bar (UTC ms). */
  readonly at: number;
}

/** One position of a bot's books, priced at the mark. Prices and PnL in the market's quote. */
export interface BookPosition {
  readonly symbol: string;
  /** One side of a hedge-mode perpetual (absent: the market's one position). */
  readonly positionSide?: 'long' | 'short';
  readonly size: number;
  /** Average cost of the open size; null when flat. */
  readonly avgCost: number | null;
  readonly mark: number | null;
  readonly markAt: string | null;
  readonly realizedPnl: number;
  /** size × (mark − average cost); null when flat or without a mark. */
  readonly unrealizedPnl: number | null;
}

/** Money in the reporting currency; a part that could not be valued is named in `unvalued`. */
export interface Totals {
  readonly equity: number;
  /** Realised PnL before fees. */
  readonly realizedPnl: number;
  readonly unrealizedPnl: number;
  /** Every fee, each in the asset paid converted at the mark. */
  readonly fees: number;
  /** realizedPnl − fees. */
  readonly realizedPnlNet: number;
}

export interface BotBooks {
  readonly id: string;
  readonly exchange: string;
  readonly mode: BotMode;
  /** The bot's account currency (its markets' quote). */
  readonly currency: string;
  readonly cash: number;
  /** Other assets the bot's books hold (the base of its spot positions included). */
  readonly balances: Readonly<Record<string, number>>;
  readonly positions: readonly BookPosition[];
  /** Fees by the asset paid, as paid. */
  readonly feesByAsset: Readonly<Record<string, number>>;
  /** The books in the reporting currency. */
  readonly totals: Totals;
  /** What could not be converted into the reporting currency (no mark for it), and left out. */
  readonly unvalued: readonly string[];
}

export interface PortfolioReport {
  readonly currency: string;
  /** The newest mark used (ISO), or null when no bot has seen a bar. */
  readonly asOf: string | null;
  readonly marks: Readonly<Record<string, { readonly price: number; readonly at: string }>>;
  readonly bots: readonly BotBooks[];
  readonly byExchange: Readonly<Record<string, Totals>>;
  readonly total: Totals;
  readonly unvalued: readonly string[];
}

/**
 * Every bot's books from the store, priced at the marks (the newest close any bot saw of each
 * market) and converted into `currency`, per bot, per exchange and in total. The accounting is
 * core's `Account` (average cost, realised and unrealised PnL, equity); fees in any asset are
 * converted at the mark. Something with no mark is named in `unvalued`, never counted as zero.
 */
export async function portfolioOf(store: Store, opts: { readonly currency?: string } = {}): Promise<PortfolioReport> {
  const currency = (opts.currency ?? 'USDT').toUpperCase();
  const bots = await store.bots.list();
  const marks = await marksOf(store, bots);
  const rateIn =
    (to: string): Rate =>
    (asset) =>
      rateOf(marks, asset, to);
  const books: BotBooks[] = [];
  for (const b of bots) books.push(await botBooks(store, b, marks, currency, rateIn));
  const byExchange: Record<string, Totals> = {};
  for (const x of [...new Set(books.map((k) => k.exchange))].sort())
    byExchange[x] = sum(books.filter((k) => k.exchange === x).map((k) => k.totals));
  const newest = Math.max(...[...marks.values()].map((m) => m.at));
  return {
    currency,
    asOf: Number.isFinite(newest) ? new Date(newest).toISOString() : null,
    marks: Object.fromEntries(
      [...marks].sort(([a], [b]) => (a < b ? -1 : 1)).map(([s, m]) => [s, { price: m.price, at: isoOf(m.at) }]),
    ),
    bots: books,
    byExchange,
    total: sum(books.map((k) => k.totals)),
    unvalued: [...new Set(books.flatMap((k) => k.unvalued.map((u) => `${k.id}: ${u}`)))],
  };
}

async function botBooks(
  store: Store,
  b: BotRecord,
  marks: ReadonlyMap<string, Mark>,
  currency: string,
  rateIn: (to: string) => Rate,
): Promise<BotBooks> {
  const [positions, balances, fills, setups] = await Promise.all([
    store.positions.load(b.id),
    store.balances.load(b.id),
    store.fills.since(b.id, 0),
    store.setups.list(b.id),
  ]);
  const setup = [...setups]
    .reverse()
    .map((s) => s.setup)
    .find((s): s is SessionSetup => isSessionSetup(s));
  const instrument = (symbol: string): Instrument =>
    setup?.instruments.find((i) => i.symbol === symbol) ?? defineInstrument({ symbol });
  const botCurrency = setup?.start.currency ?? instrument(b.symbols[0] ?? 'BTC/USDT').quote;
  const account = new Account(botCurrency, balances.find((x) => x.asset === botCurrency)?.total ?? 0);
  const held = new Set(positions.filter((p) => p.size !== 0).map((p) => instrument(p.symbol).base));
  for (const x of balances)
    if (x.asset !== botCurrency && !held.has(x.asset) && x.total !== 0) account.adjust(x.asset, x.total);
  const unvalued: string[] = [];
  const out: BookPosition[] = [];
  for (const p of positions) {
    const inst = instrument(p.symbol);
    // A hedge-mode market's sides are two positions.
    const pos = account.position(inst, p.positionSide);
    pos.size = p.size;
    pos.avgPrice = p.size === 0 ? Number.NaN : p.avgPrice;
    pos.realizedPnl = p.realizedPnl;
    const m = marks.get(p.symbol);
    pos.lastPrice = m?.price ?? Number.NaN;
    if (p.size !== 0 && m === undefined) unvalued.push(`${p.size} ${inst.base} (no price for ${p.symbol})`);
    const flat = p.size === 0;
    out.push({
      symbol: p.symbol,
      ...(p.positionSide !== undefined ? { positionSide: p.positionSide } : {}),
      size: p.size,
      avgCost: flat ? null : p.avgPrice,
      mark: m?.price ?? null,
      markAt: m === undefined ? null : isoOf(m.at),
      realizedPnl: p.realizedPnl,
      unrealizedPnl: flat || m === undefined ? null : p.size * (m.price - p.avgPrice) * inst.contractSize,
    });
  }
  // The bot's currency in the reporting currency, and each part converted on its own, so that
  // what has no mark is left out and named rather than turning the whole into NaN.
  const toReport = (amount: number, asset: string, what: string): number => {
    if (amount === 0 || asset === currency) return amount;
    const r = rateOf(marks, asset, currency);
    if (Number.isFinite(r)) return amount * r;
    unvalued.push(`${what}: ${amount} ${asset} (no ${asset}/${currency} price)`);
    return 0;
  };
  const feesByAsset: Record<string, number> = {};
  // A fee paid outside its market (BNB) counts at the value the bot booked it at, where it has one.
  const unbooked: Record<string, number> = {};
  let bookedValue = 0;
  for (const f of fills) {
    if (f.fee === 0) continue;
    feesByAsset[f.feeAsset] = (feesByAsset[f.feeAsset] ?? 0) + f.fee;
    if (f.feeValue !== undefined) bookedValue += f.feeValue;
    else unbooked[f.feeAsset] = (unbooked[f.feeAsset] ?? 0) + f.fee;
  }
  const inBot = rateIn(botCurrency);
  let equity = toReport(account.cash, botCurrency, 'cash');
  for (const [asset, amount] of account.balances) {
    // What the bot's fees took from BNB is worth what they were booked at (as the bot counts it).
    const booked = bookedFees(fills, asset);
    const r = booked.amount > 0 ? booked.value / booked.amount : inBot(asset);
    equity += Number.isFinite(r)
      ? toReport(amount * r, botCurrency, asset)
      : toReport(amount, asset, `balance ${asset}`);
  }
  let realized = 0;
  let unrealized = 0;
  for (const p of account.positions) {
    realized += toReport(p.realizedPnl, p.instrument.quote, `realised PnL of ${p.instrument.symbol}`);
    if (p.size === 0 || !Number.isFinite(p.lastPrice)) continue;
    equity += toReport(account.positionValue(p), p.instrument.quote, `position ${p.instrument.symbol}`);
    unrealized += toReport(
      p.size * (p.lastPrice - p.avgPrice) * p.instrument.contractSize,
      p.instrument.quote,
      `unrealised PnL of ${p.instrument.symbol}`,
    );
  }
  let fees = toReport(bookedValue, botCurrency, 'fees');
  for (const [asset, amount] of Object.entries(unbooked)) fees += toReport(amount, asset, 'fees');
  return {
    id: b.id,
    exchange: b.exchange,
    mode: b.mode,
    currency: botCurrency,
    cash: account.cash,
    balances: Object.fromEntries(
      balances.filter((x) => x.asset !== botCurrency && x.total !== 0).map((x) => [x.asset, x.total]),
    ),
    positions: out,
    feesByAsset: Object.fromEntries(Object.entries(feesByAsset).sort(([a], [c]) => (a < c ? -1 : 1))),
    totals: { equity, realizedPnl: realized, unrealizedPnl: unrealized, fees, realizedPnlNet: realized - fees },
    unvalued,
  };
}

/** The newest close of every market any bot of the store saw (its bar log). */
async function marksOf(store: Store, bots: readonly BotRecord[]): Promise<Map<string, Mark>> {
  const rows = await store.db
    .selectFrom('bot_bars')
    .select(['feed', 'time', 'close'])
    .where(
      'bot_id',
      'in',
      bots.map((b) => b.id),
    )
    .orderBy('time')
    .execute()
    .catch(() => []);
  const marks = new Map<string, Mark>();
  for (const r of rows) {
    // A feed id is `SYMBOL@timeframe`; the close time is the open time plus the bar.
    const [symbol, tf] = r.feed.split('@') as [string, string];
    const at = isTimeframe(tf) ? timeframeEnd(tf, Number(r.time)) : Number(r.time);
    const had = marks.get(symbol);
    if (had === undefined || at >= had.at) marks.set(symbol, { price: Number(r.close), at });
  }
  return marks;
}

/** One unit of `asset` in `to`: 1 for itself, through the asset/to market or the inverse of to/asset; NaN without. */
export function rateOf(marks: ReadonlyMap<string, Mark>, asset: string, to: string): number {
  if (asset === to) return 1;
  const direct = marks.get(`${asset}/${to}`);
  if (direct !== undefined && direct.price > 0) return direct.price;
  const inverse = marks.get(`${to}/${asset}`);
  if (inverse !== undefined && inverse.price > 0) return 1 / inverse.price;
  return Number.NaN;
}

function sum(ts: readonly Totals[]): Totals {
  const z = { equity: 0, realizedPnl: 0, unrealizedPnl: 0, fees: 0, realizedPnlNet: 0 };
  for (const t of ts) {
    z.equity += t.equity;
    z.realizedPnl += t.realizedPnl;
    z.unrealizedPnl += t.unrealizedPnl;
    z.fees += t.fees;
    z.realizedPnlNet += t.realizedPnlNet;
  }
  return z;
}

function isoOf(t: number): string {
  return new Date(t).toISOString();
}

/** One line of a reconciliation: what the bot's books say of an asset or an order, and the exchange. */
export interface ReconcileItem {
  readonly kind:
    | 'balance-equal'
    /** The account holds more than the bot's books: the user's own coins (or another bot's), not this bot's. */
    | 'not-the-bots'
    /** The bot's books claim more than the account holds: moved, sold or lost outside the bot. */
    | 'missing-on-exchange'
    | 'order-equal'
    /** An order the bot's books hold open that the exchange does not list as open. */
    | 'order-not-open-on-exchange'
    /** An open exchange order of this bot (its client id) that its books do not hold. */
    | 'order-unknown-to-bot'
    /** Both have the order open, with different filled amounts. */
    | 'order-filled-differs';
  readonly asset?: string;
  readonly orderId?: string;
  readonly books: number | null;
  readonly exchange: number | null;
  readonly detail: string;
}

export interface ReconcileReport {
  readonly botId: string;
  readonly items: readonly ReconcileItem[];
  /** Items that are differences the bot cannot explain (everything but equal and not-the-bots). */
  readonly differences: number;
}

/**
 * A bot's books against the exchange's account: each asset the bot's books hold (its cash, its
 * positions' coins, other balances) against the account's total, and the bot's open orders
 * against the exchange's open orders with this bot's client ids. What the account holds beyond
 * the books is the user's own (`not-the-bots`), not a difference of the bot's.
 */
export async function reconcileBooks(
  store: Store,
  botId: string,
  exchange: {
    fetchBalances(): Promise<Record<string, ExchangeBalance>>;
    fetchOpenOrders(symbols: readonly string[]): Promise<ExchangeOrder[]>;
  },
  opts: { readonly isOwnOrder: (clientOrderId: string) => boolean; readonly tolerance?: number },
): Promise<ReconcileReport> {
  const b = await store.bots.get(botId);
  if (!b) throw new Error(`no bot "${botId}" in this store`);
  const tol = opts.tolerance ?? 1e-9;
  const [balances, positions, open, exBalances, exOpen] = await Promise.all([
    store.balances.load(botId),
    store.positions.load(botId),
    store.orders.open(botId),
    exchange.fetchBalances(),
    exchange.fetchOpenOrders(b.symbols),
  ]);
  const books = new Map<string, number>();
  for (const x of balances) books.set(x.asset, x.total);
  for (const p of positions) {
    const base = defineInstrument({ symbol: p.symbol }).base;
    if (!books.has(base)) books.set(base, p.size);
  }
  const items: ReconcileItem[] = [];
  for (const asset of [...books.keys()].sort()) {
    const mine = books.get(asset) as number;
    const total = exBalances[asset]?.total ?? 0;
    const d = total - mine;
    if (Math.abs(d) <= tol * Math.max(1, Math.abs(mine)))
      items.push({ kind: 'balance-equal', asset, books: mine, exchange: total, detail: `${asset}: ${mine} in both` });
    else if (d > 0)
      items.push({
        kind: 'not-the-bots',
        asset,
        books: mine,
        exchange: total,
        detail: `${asset}: the account holds ${total}, the bot's books ${mine}: ${d} ${asset} are not the bot's (the user's own, or another bot's); the bot never trades them`,
      });
    else
      items.push({
        kind: 'missing-on-exchange',
        asset,
        books: mine,
        exchange: total,
        detail: `${asset}: the bot's books hold ${mine}, the account only ${total}: ${-d} ${asset} were moved, sold or lost outside the bot`,
      });
  }
  const exById = new Map(exOpen.map((o) => [o.clientOrderId, o]));
  for (const o of open) {
    const id = o.request.id as string;
    const x = exById.get(id);
    if (x === undefined)
      items.push({
        kind: 'order-not-open-on-exchange',
        orderId: id,
        books: o.filled,
        exchange: null,
        detail: `order ${id} (${o.request.side} ${o.request.amount} ${o.request.symbol}) is open in the bot's books, not on the exchange`,
      });
    else if (Math.abs(x.filled - o.filled) > tol * Math.max(1, o.request.amount))
      items.push({
        kind: 'order-filled-differs',
        orderId: id,
        books: o.filled,
        exchange: x.filled,
        detail: `order ${id}: filled ${o.filled} in the bot's books, ${x.filled} on the exchange`,
      });
    else
      items.push({
        kind: 'order-equal',
        orderId: id,
        books: o.filled,
        exchange: x.filled,
        detail: `order ${id} open in both`,
      });
  }
  const mine = new Set(open.map((o) => o.request.id as string));
  for (const x of exOpen)
    if (!mine.has(x.clientOrderId) && opts.isOwnOrder(x.clientOrderId))
      items.push({
        kind: 'order-unknown-to-bot',
        orderId: x.clientOrderId,
        books: null,
        exchange: x.filled,
        detail: `order ${x.clientOrderId} (${x.side} ${x.amount} ${x.symbol}) is open on the exchange with this bot's id, but not in its books`,
      });
  const differences = items.filter(
    (i) => i.kind !== 'balance-equal' && i.kind !== 'not-the-bots' && i.kind !== 'order-equal',
  ).length;
  return { botId, items, differences };
}
