import type {
  BacktestResult,
  Benchmark,
  ClientOrderId,
  Fill,
  FundingRecord,
  FuturesSummary,
  HedgeSide,
  LiquidationRecord,
  Metrics,
  OpenTrade,
  OrderRequest,
  OrderState,
  PairStats,
  PlotColumn,
  RiskCounts,
  RiskEvent,
  Timeframe,
  Trade,
  VenueOrderId,
} from '@keel/core';
import { parseRiskConfig } from '@keel/core';
import { quoteOf } from './format.ts';
import {
  type BenchmarkJson,
  type FeedJson,
  type FillJson,
  type FuturesJson,
  METRIC_KEYS,
  type OrderJson,
  type PairJson,
  RESULT_JSON_FORMAT,
  type ResultJson,
  type TradeJson,
} from './json.ts';

/**
 * A result read back from its JSON (result.json, `keel backtest --json`, a saved run): what the
 * report needs to be drawn again. JSON has no NaN or infinity (they were written as null and come
 * back as NaN), and it does not carry the account's books: `portfolio` holds the final cash and
 * value and the positions the open trades name, not the fees by asset. Nor does it carry the
 * benchmark's curve and the strategy's plots: pass them as `benchmarkValues` (else every point is
 * NaN) and `plots` (else none).
 */
export function resultFromJson(
  json: unknown,
  opts: { readonly benchmarkValues?: Float64Array; readonly plots?: readonly PlotColumn[] } = {},
): BacktestResult {
  const j = json as ResultJson;
  if (j === null || typeof j !== 'object' || j.format !== RESULT_JSON_FORMAT)
    throw new Error(`not a Keel backtest result (format "${(j as { format?: unknown })?.format}")`);
  const feeds = j.feeds.map((f) => ({ ...feedFrom(f) }));
  const metrics = {} as Record<keyof Metrics, number>;
  for (const k of METRIC_KEYS) metrics[k] = n(j.metrics[k]);
  const risk = j.risk === null ? null : parseRiskConfig(j.risk as Parameters<typeof parseRiskConfig>[0]);
  if (risk !== null && !risk.ok) throw new Error(`the result's risk settings do not parse: ${risk.error.message}`);
  const times = Float64Array.from(j.equity.times, n);
  const values = Float64Array.from(j.equity.values, n);
  const openTrades: OpenTrade[] = j.openTrades.map((t) => ({
    symbol: t.symbol,
    direction: t.direction,
    entryTime: t.entryTime,
    entryPrice: n(t.entryPrice),
    size: n(t.size),
    fees: n(t.fees),
  }));
  const finalValue = n(j.finalValue);
  const finalCash = n(j.finalCash);
  return {
    strategy: j.strategy,
    params: j.params,
    feeds,
    startValue: n(j.startValue),
    finalValue,
    finalCash,
    metrics,
    trades: j.trades.map(tradeFrom),
    openTrades,
    fills: j.fills.map(fillFrom),
    orders: j.orders.map(orderFrom),
    equity: { times, values },
    errors: j.errors.map((e) => ({ time: e.time, hook: e.hook, message: e.message })),
    risk: risk === null ? null : risk.config,
    // Parsed JSON in the shape resultToJson writes it (the round-trip test holds the two equal):
    // the type system cannot follow a value through JSON.parse.
    riskEvents: j.riskEvents.map(withoutIso) as unknown as RiskEvent[],
    riskCounts: j.riskCounts as unknown as RiskCounts,
    portfolio: {
      currency: quoteOf(feeds[0]?.symbol ?? '') ?? '',
      cash: finalCash,
      equity: finalValue,
      realizedPnl: Number.NaN,
      unrealizedPnl: Number.NaN,
      feesPaid: metrics.feesPaid,
      feesByAsset: {},
      unvaluedFees: {},
      balances: {},
      positions: openTrades.map((t) => ({
        symbol: t.symbol,
        size: t.direction === 'long' ? t.size : -t.size,
        avgPrice: t.entryPrice,
        lastPrice: Number.NaN,
        value: Number.NaN,
        unrealizedPnl: Number.NaN,
        realizedPnl: Number.NaN,
        fees: t.fees,
      })),
    },
    pairs: (j.pairs ?? []).map(pairFrom),
    unwarmed: (j.unwarmed ?? []).map((u) => ({
      symbol: u.symbol,
      timeframe: u.timeframe as Timeframe,
      needed: u.needed,
      bars: n(u.bars),
    })),
    ...(j.benchmark !== null && j.benchmark !== undefined
      ? {
          benchmark: benchmarkFrom(
            j.benchmark,
            opts.benchmarkValues ?? new Float64Array(times.length).fill(Number.NaN),
          ),
        }
      : {}),
    ...(j.futures !== undefined ? { futures: futuresFrom(j.futures) } : {}),
    ...(opts.plots !== undefined ? { plots: opts.plots } : {}),
  };
}

function benchmarkFrom(b: BenchmarkJson, values: Float64Array): Benchmark {
  return {
    kind: b.kind,
    marketChange: n(b.marketChange),
    fee: n(b.fee),
    startValue: n(b.startValue),
    finalValue: n(b.finalValue),
    totalReturn: n(b.totalReturn),
    maxDrawdown: n(b.maxDrawdown),
    markets: b.markets.map((m) => ({
      symbol: m.symbol,
      firstOpen: n(m.firstOpen),
      lastClose: n(m.lastClose),
      marketChange: n(m.marketChange),
      amount: n(m.amount),
      fee: n(m.fee),
      cash: n(m.cash),
    })),
    values,
  };
}

/** A record of numbers and texts back from JSON: ISO twins dropped, null numbers NaN. */
function record<T>(r: { readonly [k: string]: unknown }, numbers: readonly string[]): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    if (k.endsWith('Iso')) continue;
    out[k] = v === null && numbers.includes(k) ? Number.NaN : v;
  }
  return out as T;
}

function futuresFrom(f: FuturesJson): FuturesSummary {
  return {
    markets: f.markets.map((m) => ({
      symbol: m.symbol,
      leverage: m.leverage,
      marginMode: m.marginMode as FuturesSummary['markets'][number]['marginMode'],
      funding: m.funding,
      isolatedWallet: n(m.isolatedWallet),
      ...(m.mark !== undefined ? { mark: m.mark } : {}),
      ...(m.sides !== undefined
        ? {
            positionMode: 'hedge' as const,
            sides: m.sides.map((x) => ({
              positionSide: x.positionSide as HedgeSide,
              size: n(x.size),
              entryPrice: n(x.entryPrice),
              unrealizedPnl: n(x.unrealizedPnl),
              isolatedWallet: n(x.isolatedWallet),
              liquidationPrice: n(x.liquidationPrice),
            })),
          }
        : {}),
    })),
    funding: n(f.funding),
    fundingPaid: n(f.fundingPaid),
    fundingReceived: n(f.fundingReceived),
    fundingEvents: f.fundingEvents,
    payments: f.fundingPayments.map((r) => record<FundingRecord>(r, ['rate', 'markPrice', 'size', 'payment'])),
    liquidations: f.liquidations.map((r) =>
      record<LiquidationRecord>(r, ['size', 'entryPrice', 'liquidationPrice', 'price', 'realizedPnl', 'clearanceFee']),
    ),
    liquidationFees: n(f.liquidationFees),
    warnings: [...f.warnings],
  };
}

const n = (x: number | null | undefined): number => (x === null || x === undefined ? Number.NaN : x);

function feedFrom(f: FeedJson) {
  return { symbol: f.symbol, timeframe: f.timeframe as Timeframe, bars: f.bars, first: n(f.first), last: n(f.last) };
}

function pairFrom(p: PairJson): PairStats {
  return {
    ...feedFrom(p),
    tradeCount: p.tradeCount,
    winRate: n(p.winRate),
    profitFactor: n(p.profitFactor),
    pnlNet: n(p.pnlNet),
    fees: n(p.fees),
    openSize: n(p.openSize),
    unrealizedPnl: n(p.unrealizedPnl),
    // Absent from a result.json written before these were kept.
    openFees: n(p.openFees ?? 0),
    funding: n(p.funding ?? 0),
    contribution: n(p.contribution),
    denied: p.denied,
    rejected: p.rejected,
    cancelledAtFill: p.cancelledAtFill ?? 0,
  };
}

function tradeFrom(t: TradeJson): Trade {
  return {
    symbol: t.symbol,
    direction: t.direction,
    entryTime: t.entryTime,
    exitTime: t.exitTime,
    entryPrice: n(t.entryPrice),
    exitPrice: n(t.exitPrice),
    size: n(t.size),
    pnlGross: n(t.pnlGross),
    fees: n(t.fees),
    pnlNet: n(t.pnlNet),
    returnPct: n(t.returnPct),
    entryOrderId: t.entryOrderId,
    exitOrderId: t.exitOrderId,
  };
}

function fillFrom(f: FillJson): Fill {
  return {
    time: f.time,
    orderId: f.orderId as ClientOrderId,
    tradeId: f.tradeId,
    symbol: f.symbol,
    side: f.side,
    price: n(f.price),
    amount: n(f.amount),
    fee: n(f.fee),
    feeAsset: f.feeAsset,
    liquidity: f.liquidity,
    ...(f.tag !== null ? { tag: f.tag } : {}),
    ...(f.positionSide !== undefined ? { positionSide: f.positionSide as HedgeSide } : {}),
  } as Fill;
}

function orderFrom(o: OrderJson): OrderState {
  const r = o.request as Record<string, unknown>;
  const request: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    if (k.endsWith('Iso')) continue;
    if (k === 'trail' && v !== null && typeof v === 'object')
      request[k] = { ...(v as object), value: n((v as { value: number | null }).value) };
    else request[k] = v === null && k !== 'tag' ? Number.NaN : v;
  }
  return {
    // The request's own fields, as orderToJson wrote them (see riskEvents in resultFromJson).
    request: request as unknown as OrderRequest,
    status: o.status as OrderState['status'],
    filled: n(o.filled),
    avgPrice: n(o.avgPrice),
    fee: n(o.fee),
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
    ...(o.venueOrderId !== null ? { venueOrderId: o.venueOrderId as VenueOrderId } : {}),
    triggered: o.triggered,
    stopLevel: n(o.stopLevel),
    ...(o.reason !== null ? { reason: o.reason } : {}),
    decisionPrice: n(o.decisionPrice),
    active: o.active,
  };
}

function withoutIso(e: { readonly [k: string]: unknown }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(e)) if (!k.endsWith('Iso')) out[k] = v;
  return out;
}
