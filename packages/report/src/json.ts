import type {
  BacktestResult,
  Benchmark,
  Fill,
  FuturesSummary,
  Metrics,
  OpenTrade,
  OrderRequest,
  OrderState,
  PairStats,
  RiskEvent,
  Trade,
} from '@keel/core';
import { assertNever, isoUtc, riskConfigInput } from '@keel/core';

/**
 * The backtest result as plain JSON: what `keel backtest --json` prints, what result.json holds and
 * what the HTML report embeds. Rules: typed arrays become arrays, NaN and ±Infinity become null (JSON
 * has neither), every time in ms has its ISO-8601 UTC twin beside it (`entryTime` + `entryTimeIso`),
 * and keys come in a fixed order (objects are built field by field; free-form values such as
 * strategy params have their keys sorted), so the same result always serialises to the same bytes.
 */

export type Json = null | boolean | number | string | readonly Json[] | { readonly [k: string]: Json };

export const RESULT_JSON_FORMAT = 'keel.backtest-result';
export const RESULT_JSON_VERSION = 1;

// The object types of the JSON are type aliases, not interfaces: an interface is not assignable to
// Json's index signature, and the HTML report embeds them as Json.
export type FeedJson = {
  readonly symbol: string;
  readonly timeframe: string;
  readonly bars: number;
  /** Open time of the first and of the last bar replayed. */
  readonly first: number | null;
  readonly firstIso: string | null;
  readonly last: number | null;
  readonly lastIso: string | null;
};

export type MetricsJson = { readonly [K in keyof Metrics]: number | null };

/** One market's share of the run (PairStats), numbers JSON-safe, times with their ISO twins. */
export interface PairJson extends FeedJson {
  readonly tradeCount: number;
  readonly winRate: number | null;
  readonly profitFactor: number | null;
  readonly pnlNet: number | null;
  readonly fees: number | null;
  readonly openSize: number | null;
  readonly unrealizedPnl: number | null;
  readonly openFees: number | null;
  readonly funding: number | null;
  readonly contribution: number | null;
  readonly denied: number;
  readonly rejected: number;
  readonly cancelledAtFill: number;
}

/** The buy-and-hold benchmark's figures (docs/report.md states the model); its curve is in the HTML report. */
export interface BenchmarkJson {
  readonly kind: 'buy-and-hold';
  readonly marketChange: number | null;
  readonly fee: number | null;
  readonly startValue: number | null;
  readonly finalValue: number | null;
  readonly totalReturn: number | null;
  readonly maxDrawdown: number | null;
  readonly markets: readonly {
    readonly symbol: string;
    readonly firstOpen: number | null;
    readonly lastClose: number | null;
    readonly marketChange: number | null;
    readonly amount: number | null;
    readonly fee: number | null;
    readonly cash: number | null;
  }[];
}

export interface TradeJson {
  readonly symbol: string;
  readonly direction: 'long' | 'short';
  readonly entryTime: number;
  readonly entryTimeIso: string | null;
  readonly exitTime: number;
  readonly exitTimeIso: string | null;
  readonly entryPrice: number | null;
  readonly exitPrice: number | null;
  readonly size: number | null;
  readonly pnlGross: number | null;
  readonly fees: number | null;
  readonly pnlNet: number | null;
  readonly returnPct: number | null;
  readonly entryOrderId: string;
  readonly exitOrderId: string;
}

export type OpenTradeJson = {
  readonly symbol: string;
  readonly direction: 'long' | 'short';
  readonly entryTime: number;
  readonly entryTimeIso: string | null;
  readonly entryPrice: number | null;
  readonly size: number | null;
  readonly fees: number | null;
};

export interface FillJson {
  readonly time: number;
  readonly timeIso: string | null;
  readonly orderId: string;
  readonly tradeId: string;
  readonly symbol: string;
  readonly side: 'buy' | 'sell';
  readonly price: number | null;
  readonly amount: number | null;
  readonly fee: number | null;
  readonly feeAsset: string;
  readonly liquidity: 'maker' | 'taker';
  readonly tag: string | null;
  /** Hedge mode only: the side the fill traded. */
  readonly positionSide?: string;
}

export interface OrderJson {
  readonly request: { readonly [k: string]: Json };
  readonly status: string;
  readonly filled: number | null;
  readonly avgPrice: number | null;
  readonly fee: number | null;
  readonly createdAt: number;
  readonly createdAtIso: string | null;
  readonly updatedAt: number;
  readonly updatedAtIso: string | null;
  readonly venueOrderId: string | null;
  readonly triggered: boolean;
  readonly stopLevel: number | null;
  readonly reason: string | null;
  readonly decisionPrice: number | null;
  readonly active: boolean;
}

export type ErrorJson = {
  readonly time: number;
  readonly timeIso: string | null;
  readonly hook: string;
  readonly message: string;
};

export interface EquityJson {
  /** Close time of each primary bar. */
  readonly times: readonly number[];
  readonly timesIso: readonly string[];
  readonly values: readonly (number | null)[];
}

export interface UnwarmedJson {
  readonly symbol: string;
  readonly timeframe: string;
  readonly needed: number;
  readonly bars: number | null;
}

export interface ResultJson {
  readonly format: typeof RESULT_JSON_FORMAT;
  readonly version: typeof RESULT_JSON_VERSION;
  readonly strategy: string;
  readonly params: Json;
  readonly feeds: readonly FeedJson[];
  readonly startValue: number | null;
  readonly finalValue: number | null;
  readonly finalCash: number | null;
  readonly metrics: MetricsJson;
  /** Each market's share, in feed order (one entry for a single-market run). */
  readonly pairs: readonly PairJson[];
  /** Buy-and-hold of the primary market over the same bars; null for a result without one. */
  readonly benchmark: BenchmarkJson | null;
  /**
   * Only when onBar never ran on a feed: the strategy's warm-up (`needed` bars) is longer than the
   * feed's `bars` (null for a feed resampled by the engine).
   */
  readonly unwarmed?: readonly UnwarmedJson[];
  readonly trades: readonly TradeJson[];
  readonly openTrades: readonly OpenTradeJson[];
  readonly fills: readonly FillJson[];
  readonly orders: readonly OrderJson[];
  readonly equity: EquityJson;
  readonly errors: readonly ErrorJson[];
  /** The risk settings in the CLI's grammar, or null without any. */
  readonly risk: { readonly risk: readonly string[]; readonly sizing: readonly string[]; readonly exits: Json } | null;
  /** Denials and halts counted by rule. */
  readonly riskCounts: Json;
  /** Every denial, halt, resume and notice: time, rule, action and the numbers (docs/risk.md). */
  readonly riskEvents: readonly RiskEventJson[];
  /** Perpetual runs only (absent in a spot run): funding, liquidations and warnings, each apart from fees. */
  readonly futures?: FuturesJson;
}

/** A run's futures side (docs/futures.md): funding and liquidations kept apart from trading fees. */
export interface FuturesJson {
  readonly markets: readonly {
    readonly symbol: string;
    readonly leverage: number;
    readonly marginMode: string;
    readonly funding: string;
    readonly isolatedWallet: number | null;
    /** Where the mark came from (absent: the mark is the last price). */
    readonly mark?: string;
    /** Hedge mode only: each side at the end. */
    readonly positionMode?: 'hedge';
    readonly sides?: readonly {
      readonly positionSide: string;
      readonly size: number | null;
      readonly entryPrice: number | null;
      readonly unrealizedPnl: number | null;
      readonly isolatedWallet: number | null;
      readonly liquidationPrice: number | null;
    }[];
  }[];
  /** Net funding: > 0 received, < 0 paid. */
  readonly funding: number | null;
  readonly fundingPaid: number | null;
  readonly fundingReceived: number | null;
  readonly fundingEvents: number;
  readonly liquidationFees: number | null;
  readonly liquidations: readonly { readonly [k: string]: Json }[];
  readonly fundingPayments: readonly { readonly [k: string]: Json }[];
  readonly warnings: readonly string[];
}

/** A risk event with its time's ISO twin (and its end's, for a halt); numbers JSON-safe. */
export type RiskEventJson = { readonly time: number; readonly timeIso: string | null } & { readonly [k: string]: Json };

/** A finite number, or null for NaN and ±Infinity. */
export function finiteOrNull(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

/** Shared by every call: results list their times in order, so the formatter's day cache hits. */
let iso: IsoUtcFormatter | undefined;

export function isoOrNull(ms: number): string | null {
  if (!Number.isFinite(ms)) return null;
  iso ??= new IsoUtcFormatter();
  return iso.format(ms);
}

function isTypedArray(v: unknown): v is ArrayLike<number | bigint> {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

/**
 * Any value to JSON-safe form: typed arrays to arrays, non-finite numbers to null, bigints to
 * decimal strings, object keys sorted, undefined members dropped (and undefined array items to
 * null, as JSON.stringify does). Cycles are a bug in the caller and throw.
 */
export function toJsonValue(v: unknown, seen: Set<object> = new Set()): Json {
  switch (typeof v) {
    case 'number':
      return finiteOrNull(v);
    case 'string':
    case 'boolean':
      return v;
    case 'bigint':
      return v.toString();
    case 'undefined':
    case 'function':
    case 'symbol':
      return null;
    case 'object': {
      if (v === null) return null;
      if (seen.has(v)) throw new Error('toJsonValue: the value has a cycle');
      seen.add(v);
      try {
        if (isTypedArray(v)) return Array.from(v as ArrayLike<number | bigint>, (x) => toJsonValue(x, seen));
        if (Array.isArray(v)) return v.map((x) => toJsonValue(x, seen));
        if (v instanceof Date) return Number.isFinite(v.getTime()) ? v.toISOString() : null;
        if (v instanceof Map) return toJsonValue(Object.fromEntries(v), seen);
        if (v instanceof Set) return toJsonValue([...v], seen);
        const out: Record<string, Json> = {};
        for (const k of Object.keys(v).sort()) {
          const x = (v as Record<string, unknown>)[k];
          if (x === undefined || typeof x === 'function' || typeof x === 'symbol') continue;
          out[k] = toJsonValue(x, seen);
        }
        return out;
      } finally {
        seen.delete(v);
      }
    }
  }
}

export function feedToJson(f: BacktestResult['feeds'][number]): FeedJson {
  return {
    symbol: f.symbol,
    timeframe: f.timeframe,
    bars: f.bars,
    first: finiteOrNull(f.first),
    firstIso: isoOrNull(f.first),
    last: finiteOrNull(f.last),
    lastIso: isoOrNull(f.last),
  };
}

export function feedsToJson(feeds: BacktestResult['feeds']): FeedJson[] {
  return feeds.map(feedToJson);
}

/** Every Metrics field, in the order the report shows them; a new field is a compile error here. */
export const METRIC_KEYS: readonly (keyof Metrics)[] = (() => {
  const keys: Record<keyof Metrics, true> = {
    startValue: true,
    finalValue: true,
    totalReturn: true,
    cagr: true,
    annualVolatility: true,
    sharpe: true,
    sortino: true,
    calmar: true,
    maxDrawdown: true,
    maxDrawdownDurationMs: true,
    maxDrawdownDurationBars: true,
    tradeCount: true,
    winRate: true,
    profitFactor: true,
    expectancy: true,
    averageWin: true,
    averageLoss: true,
    exposure: true,
    feesPaid: true,
    turnover: true,
    bars: true,
    periodsPerYear: true,
  };
  return Object.keys(keys) as (keyof Metrics)[];
})();

export function metricsToJson(m: Metrics): MetricsJson {
  const out = {} as Record<keyof Metrics, number | null>;
  for (const k of METRIC_KEYS) out[k] = finiteOrNull(m[k]);
  return out;
}

export function pairToJson(p: PairStats): PairJson {
  return {
    ...feedToJson(p),
    tradeCount: p.tradeCount,
    winRate: finiteOrNull(p.winRate),
    profitFactor: finiteOrNull(p.profitFactor),
    pnlNet: finiteOrNull(p.pnlNet),
    fees: finiteOrNull(p.fees),
    openSize: finiteOrNull(p.openSize),
    unrealizedPnl: finiteOrNull(p.unrealizedPnl),
    openFees: finiteOrNull(p.openFees),
    funding: finiteOrNull(p.funding),
    contribution: finiteOrNull(p.contribution),
    denied: p.denied,
    rejected: p.rejected,
    cancelledAtFill: p.cancelledAtFill,
  };
}

export function benchmarkToJson(b: Benchmark | undefined): BenchmarkJson | null {
  if (b === undefined) return null;
  return {
    kind: b.kind,
    marketChange: finiteOrNull(b.marketChange),
    fee: finiteOrNull(b.fee),
    startValue: finiteOrNull(b.startValue),
    finalValue: finiteOrNull(b.finalValue),
    totalReturn: finiteOrNull(b.totalReturn),
    maxDrawdown: finiteOrNull(b.maxDrawdown),
    markets: b.markets.map((m) => ({
      symbol: m.symbol,
      firstOpen: finiteOrNull(m.firstOpen),
      lastClose: finiteOrNull(m.lastClose),
      marketChange: finiteOrNull(m.marketChange),
      amount: finiteOrNull(m.amount),
      fee: finiteOrNull(m.fee),
      cash: finiteOrNull(m.cash),
    })),
  };
}

export function tradeToJson(t: Trade): TradeJson {
  return {
    symbol: t.symbol,
    direction: t.direction,
    entryTime: t.entryTime,
    entryTimeIso: isoOrNull(t.entryTime),
    exitTime: t.exitTime,
    exitTimeIso: isoOrNull(t.exitTime),
    entryPrice: finiteOrNull(t.entryPrice),
    exitPrice: finiteOrNull(t.exitPrice),
    size: finiteOrNull(t.size),
    pnlGross: finiteOrNull(t.pnlGross),
    fees: finiteOrNull(t.fees),
    pnlNet: finiteOrNull(t.pnlNet),
    returnPct: finiteOrNull(t.returnPct),
    entryOrderId: t.entryOrderId,
    exitOrderId: t.exitOrderId,
  };
}

export function openTradeToJson(t: OpenTrade): OpenTradeJson {
  return {
    symbol: t.symbol,
    direction: t.direction,
    entryTime: t.entryTime,
    entryTimeIso: isoOrNull(t.entryTime),
    entryPrice: finiteOrNull(t.entryPrice),
    size: finiteOrNull(t.size),
    fees: finiteOrNull(t.fees),
  };
}

export function fillToJson(f: Fill): FillJson {
  return {
    time: f.time,
    timeIso: isoOrNull(f.time),
    orderId: f.orderId,
    tradeId: f.tradeId,
    symbol: f.symbol,
    side: f.side,
    price: finiteOrNull(f.price),
    amount: finiteOrNull(f.amount),
    fee: finiteOrNull(f.fee),
    feeAsset: f.feeAsset,
    liquidity: f.liquidity,
    tag: f.tag ?? null,
    ...(f.positionSide !== undefined ? { positionSide: f.positionSide } : {}),
  };
}

/** The request's fields in a fixed order; fields the request does not have are left out. */
function requestToJson(r: OrderRequest): Record<string, Json> {
  const out: Record<string, Json> = {
    id: r.id,
    symbol: r.symbol,
    side: r.side,
    type: r.type,
    amount: finiteOrNull(r.amount),
  };
  switch (r.type) {
    case 'market':
      break;
    case 'limit':
      out.price = finiteOrNull(r.price);
      break;
    case 'stop-market':
      out.stopPrice = finiteOrNull(r.stopPrice);
      break;
    case 'stop-limit':
      out.stopPrice = finiteOrNull(r.stopPrice);
      out.price = finiteOrNull(r.price);
      break;
    case 'trailing-stop':
      out.trail = { kind: r.trail.kind, value: finiteOrNull(r.trail.value) };
      break;
    default:
      return assertNever(r, 'order request');
  }
  out.timeInForce = r.timeInForce;
  if (r.expireAt !== undefined) {
    out.expireAt = finiteOrNull(r.expireAt);
    out.expireAtIso = isoOrNull(r.expireAt);
  }
  if (r.postOnly !== undefined) out.postOnly = r.postOnly;
  if (r.reduceOnly !== undefined) out.reduceOnly = r.reduceOnly;
  if (r.tag !== undefined) out.tag = r.tag;
  if (r.ocoGroup !== undefined) out.ocoGroup = r.ocoGroup;
  if (r.parentId !== undefined) out.parentId = r.parentId;
  if (r.positionSide !== undefined) out.positionSide = r.positionSide;
  if (r.replaces !== undefined) out.replaces = r.replaces;
  return out;
}

export function orderToJson(o: OrderState): OrderJson {
  return {
    request: requestToJson(o.request),
    status: o.status,
    filled: finiteOrNull(o.filled),
    avgPrice: finiteOrNull(o.avgPrice),
    fee: finiteOrNull(o.fee),
    createdAt: o.createdAt,
    createdAtIso: isoOrNull(o.createdAt),
    updatedAt: o.updatedAt,
    updatedAtIso: isoOrNull(o.updatedAt),
    venueOrderId: o.venueOrderId ?? null,
    triggered: o.triggered,
    stopLevel: finiteOrNull(o.stopLevel),
    reason: o.reason ?? null,
    decisionPrice: finiteOrNull(o.decisionPrice),
    active: o.active,
  };
}

export function riskEventToJson(e: RiskEvent): RiskEventJson {
  const { time, ...rest } = e;
  const out: Record<string, Json> = { time, timeIso: isoOrNull(time) };
  for (const [k, v] of Object.entries(rest)) {
    out[k] = toJsonValue(v);
    if ((k === 'until' || k === 'since') && typeof v === 'number') out[`${k}Iso`] = isoOrNull(v);
  }
  return out as RiskEventJson;
}

export function futuresToJson(f: FuturesSummary): FuturesJson {
  return {
    markets: f.markets.map((m) => ({
      symbol: m.symbol,
      leverage: m.leverage,
      marginMode: m.marginMode,
      funding: m.funding,
      isolatedWallet: finiteOrNull(m.isolatedWallet),
      ...(m.mark !== undefined ? { mark: m.mark } : {}),
      ...(m.sides !== undefined
        ? {
            positionMode: 'hedge' as const,
            sides: m.sides.map((x) => ({
              positionSide: x.positionSide,
              size: finiteOrNull(x.size),
              entryPrice: finiteOrNull(x.entryPrice),
              unrealizedPnl: finiteOrNull(x.unrealizedPnl),
              isolatedWallet: finiteOrNull(x.isolatedWallet),
              liquidationPrice: finiteOrNull(x.liquidationPrice),
            })),
          }
        : {}),
    })),
    funding: finiteOrNull(f.funding),
    fundingPaid: finiteOrNull(f.fundingPaid),
    fundingReceived: finiteOrNull(f.fundingReceived),
    fundingEvents: f.fundingEvents,
    liquidationFees: finiteOrNull(f.liquidationFees),
    liquidations: f.liquidations.map((l) => ({
      symbol: l.symbol,
      time: l.time,
      timeIso: isoOrNull(l.time),
      marginMode: l.marginMode,
      size: finiteOrNull(l.size),
      entryPrice: finiteOrNull(l.entryPrice),
      liquidationPrice: finiteOrNull(l.liquidationPrice),
      price: finiteOrNull(l.price),
      realizedPnl: finiteOrNull(l.realizedPnl),
      clearanceFee: finiteOrNull(l.clearanceFee),
      ...(l.positionSide !== undefined ? { positionSide: l.positionSide } : {}),
    })),
    fundingPayments: f.payments.map((r) => ({
      symbol: r.symbol,
      time: r.time,
      timeIso: isoOrNull(r.time),
      rate: finiteOrNull(r.rate),
      markPrice: finiteOrNull(r.markPrice),
      size: finiteOrNull(r.size),
      payment: finiteOrNull(r.payment),
      ...(r.positionSide !== undefined ? { positionSide: r.positionSide } : {}),
    })),
    warnings: [...f.warnings],
  };
}

export function errorToJson(e: BacktestResult['errors'][number]): ErrorJson {
  return { time: e.time, timeIso: isoOrNull(e.time), hook: e.hook, message: e.message };
}

export function equityToJson(eq: BacktestResult['equity']): EquityJson {
  const n = eq.times.length;
  const times = new Array<number>(n);
  const timesIso = new Array<string>(n);
  const values = new Array<number | null>(n);
  const iso = new IsoUtcFormatter();
  for (let i = 0; i < n; i++) {
    const t = eq.times[i] as number;
    times[i] = t;
    timesIso[i] = iso.format(t);
    values[i] = finiteOrNull(eq.values[i] as number);
  }
  return { times, timesIso, values };
}

/** `{ unwarmed }` when a feed never warmed up, else nothing (the member is left out). */
export function unwarmedToJson(result: BacktestResult): { unwarmed?: UnwarmedJson[] } {
  const u = result.unwarmed ?? [];
  if (u.length === 0) return {};
  return {
    unwarmed: u.map((x) => ({
      symbol: x.symbol,
      timeframe: x.timeframe,
      needed: x.needed,
      bars: finiteOrNull(x.bars),
    })),
  };
}

/** The whole result as JSON-safe data with a stable key order (see the module comment). */
export function resultToJson(result: BacktestResult): ResultJson {
  return {
    format: RESULT_JSON_FORMAT,
    version: RESULT_JSON_VERSION,
    strategy: result.strategy,
    params: toJsonValue(result.params),
    feeds: feedsToJson(result.feeds),
    startValue: finiteOrNull(result.startValue),
    finalValue: finiteOrNull(result.finalValue),
    finalCash: finiteOrNull(result.finalCash),
    metrics: metricsToJson(result.metrics),
    pairs: result.pairs.map(pairToJson),
    benchmark: benchmarkToJson(result.benchmark),
    ...unwarmedToJson(result),
    trades: result.trades.map(tradeToJson),
    openTrades: result.openTrades.map(openTradeToJson),
    fills: result.fills.map(fillToJson),
    orders: result.orders.map(orderToJson),
    equity: equityToJson(result.equity),
    errors: result.errors.map(errorToJson),
    risk: result.risk === null ? null : (toJsonValue(riskConfigInput(result.risk)) as ResultJson['risk']),
    riskCounts: toJsonValue(result.riskCounts),
    riskEvents: result.riskEvents.map(riskEventToJson),
    ...(result.futures !== undefined ? { futures: futuresToJson(result.futures) } : {}),
  };
}

/** "00" to "59": hours, minutes and seconds as ISO writes them. */
const TWO_DIGITS = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));

/**
 * isoUtc for many timestamps in time order: the date part is computed once per day (by isoUtc
 * itself) and the time of day by arithmetic, so an equity curve of a million bars does not pay the
 * calendar arithmetic a million times. Returns exactly what isoUtc returns (tested).
 */
export class IsoUtcFormatter {
  private day = Number.NaN;
  private prefix = '';
  /** The parts of the last time split(): hours, minutes, seconds and milliseconds of the day. */
  hh = 0;
  mm = 0;
  ss = 0;
  ms = 0;

  /** Splits a finite time: returns its date part ("2024-01-31T") and sets hh, mm, ss and ms. */
  split(t: number): string {
    const days = Math.floor(t / 86_400_000);
    if (days !== this.day) {
      const d = isoUtc(days * 86_400_000);
      this.day = days;
      this.prefix = d.slice(0, d.indexOf('T') + 1);
    }
    let r = t - days * 86_400_000;
    this.hh = Math.floor(r / 3_600_000);
    r -= this.hh * 3_600_000;
    this.mm = Math.floor(r / 60_000);
    r -= this.mm * 60_000;
    this.ss = Math.floor(r / 1000);
    this.ms = r - this.ss * 1000;
    return this.prefix;
  }

  format(t: number): string {
    if (!Number.isFinite(t)) return isoUtc(t);
    const date = this.split(t);
    const ms = this.ms;
    return `${date}${TWO_DIGITS[this.hh]}:${TWO_DIGITS[this.mm]}:${TWO_DIGITS[this.ss]}${ms ? '.' + String(ms).padStart(3, '0') : ''}Z`;
  }
}
