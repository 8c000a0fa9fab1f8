/**
 * The JSON shapes Binance USDⓈ-M (fapi) sends, built from the futures exchange's model: orders,
 * conditional (algo) orders, trades, positions, account and balance, brackets, funding, and the
 * user-data events. Decimals are strings as fapi prints them: prices at the tick's decimals,
 * quantities at the step's, amounts with up to 8 decimals.
 */
import { decimalsOf, formatToStep } from '@keel/core';
import type { AccountView, AssetView, FuturesMarket, PositionView } from './exchange/futures/ledger.ts';
import type { LiquidationRecord } from './exchange/futures/liquidation.ts';
import type {
  FuturesFill,
  FuturesTrade,
  IncomeRecord,
  SimAlgoOrder,
  SimFuturesOrder,
  SimPosition,
} from './exchange/futures/model.ts';
import { isOpenFuturesOrder } from './exchange/futures/model.ts';

/** The sim applies no self-trade prevention and reports Binance's default mode. */
const STP_MODE = 'EXPIRE_MAKER';
/** Binance's delivery date for perpetuals (2100-12-25). */
const PERPETUAL_DELIVERY = 4_133_404_800_000;

/** An amount (balance, PnL, commission): up to 8 decimals, no exponent, no trailing zeros. */
export function amt(x: number): string {
  return formatToStep(Math.abs(x) < 5e-9 ? 0 : x, 1e-8);
}

function px(m: FuturesMarket, x: number): string {
  return formatToStep(x, m.tickSize);
}

function qty(m: FuturesMarket, x: number): string {
  return formatToStep(x, m.stepSize);
}

/** A price that is not on the tick (an average, a liquidation price): 8 decimals. */
function fine(x: number): string {
  return amt(x);
}

export function futuresExchangeInfo(
  markets: readonly FuturesMarket[],
  now: number,
  weightPerMinute: number,
  statusOf: (symbol: string) => string,
): unknown {
  const assets = [...new Set(markets.map((m) => m.quote))];
  return {
    timezone: 'UTC',
    serverTime: now,
    futuresType: 'U_MARGINED',
    rateLimits: [
      { rateLimitType: 'REQUEST_WEIGHT', interval: 'MINUTE', intervalNum: 1, limit: weightPerMinute },
      { rateLimitType: 'ORDERS', interval: 'MINUTE', intervalNum: 1, limit: 1200 },
      { rateLimitType: 'ORDERS', interval: 'SECOND', intervalNum: 10, limit: 300 },
    ],
    exchangeFilters: [],
    assets: assets.map((asset) => ({ asset, marginAvailable: true, autoAssetExchange: '-10000' })),
    symbols: markets.map((m) => {
      const first = m.brackets[0];
      const tickDecimals = decimalsOf(m.tickSize);
      const stepDecimals = decimalsOf(m.stepSize);
      return {
        symbol: m.id,
        pair: m.id,
        contractType: 'PERPETUAL',
        deliveryDate: PERPETUAL_DELIVERY,
        onboardDate: m.bars[0]?.time ?? 0,
        status: statusOf(m.id),
        maintMarginPercent: ((first?.maintMarginRate ?? 0) * 100).toFixed(4),
        requiredMarginPercent: ((1 / (first?.maxLeverage ?? 1)) * 100).toFixed(4),
        baseAsset: m.base,
        quoteAsset: m.quote,
        marginAsset: m.quote,
        pricePrecision: tickDecimals,
        quantityPrecision: stepDecimals,
        baseAssetPrecision: 8,
        quotePrecision: 8,
        underlyingType: 'COIN',
        underlyingSubType: [],
        settlePlan: 0,
        triggerProtect: '0.0500',
        liquidationFee: m.clearanceRate.toFixed(6),
        marketTakeBound: '0.05',
        maxMoveOrderLimit: 10_000,
        filters: [
          { filterType: 'PRICE_FILTER', minPrice: px(m, m.tickSize), maxPrice: '1000000', tickSize: px(m, m.tickSize) },
          { filterType: 'LOT_SIZE', minQty: qty(m, m.minQty), maxQty: '10000000', stepSize: qty(m, m.stepSize) },
          { filterType: 'MARKET_LOT_SIZE', minQty: qty(m, m.minQty), maxQty: '10000000', stepSize: qty(m, m.stepSize) },
          { filterType: 'MAX_NUM_ORDERS', limit: 200 },
          { filterType: 'MAX_NUM_ALGO_ORDERS', limit: 10 },
          { filterType: 'MIN_NOTIONAL', notional: amt(m.minNotional) },
          { filterType: 'PERCENT_PRICE', multiplierUp: '1.0500', multiplierDown: '0.9500', multiplierDecimal: '4' },
        ],
        orderTypes: [
          'LIMIT',
          'MARKET',
          'STOP',
          'STOP_MARKET',
          'TAKE_PROFIT',
          'TAKE_PROFIT_MARKET',
          'TRAILING_STOP_MARKET',
        ],
        timeInForce: ['GTC', 'IOC', 'FOK', 'GTX', 'GTD'],
      };
    }),
  };
}

function avgPrice(m: FuturesMarket, o: SimFuturesOrder): string {
  return o.executedQty > 0 ? fine(o.cumQuote / (o.executedQty * m.contractSize)) : '0';
}

/** An order as POST/GET/DELETE /fapi/v1/order return it. */
export function futuresOrderJson(m: FuturesMarket, o: SimFuturesOrder): unknown {
  return {
    orderId: o.orderId,
    symbol: o.symbol,
    status: o.status,
    clientOrderId: o.clientOrderId,
    price: px(m, o.price),
    avgPrice: avgPrice(m, o),
    origQty: qty(m, o.origQty),
    executedQty: qty(m, o.executedQty),
    cumQty: qty(m, o.executedQty),
    cumQuote: amt(o.cumQuote),
    timeInForce: o.timeInForce,
    type: o.type,
    reduceOnly: o.reduceOnly,
    closePosition: o.closePosition,
    side: o.side,
    positionSide: o.positionSide,
    stopPrice: px(m, o.stopPrice),
    workingType: 'CONTRACT_PRICE',
    priceProtect: false,
    origType: o.origType,
    priceMatch: 'NONE',
    selfTradePreventionMode: STP_MODE,
    goodTillDate: o.goodTillDate,
    time: o.time,
    updateTime: o.updateTime,
  };
}

/** A conditional order as the Algo Order API returns it. */
export function algoOrderJson(m: FuturesMarket, a: SimAlgoOrder, actual?: SimFuturesOrder): unknown {
  return {
    algoId: a.algoId,
    clientAlgoId: a.clientAlgoId,
    algoType: 'CONDITIONAL',
    orderType: a.orderType,
    symbol: a.symbol,
    side: a.side,
    positionSide: a.positionSide,
    timeInForce: a.timeInForce,
    quantity: qty(m, a.quantity),
    algoStatus: a.algoStatus,
    actualOrderId: a.actualOrderId,
    actualPrice: actual ? avgPrice(m, actual) : '0',
    triggerPrice: px(m, a.triggerPrice),
    price: px(m, a.price),
    icebergQuantity: null,
    selfTradePreventionMode: STP_MODE,
    workingType: 'CONTRACT_PRICE',
    priceMatch: 'NONE',
    closePosition: a.closePosition,
    priceProtect: false,
    reduceOnly: a.reduceOnly,
    activatePrice: '',
    callbackRate: '',
    createTime: a.createTime,
    updateTime: a.updateTime,
    triggerTime: a.triggerTime,
    goodTillDate: 0,
  };
}

export function futuresTradeJson(m: FuturesMarket, t: FuturesTrade): unknown {
  return {
    buyer: t.side === 'BUY',
    commission: amt(t.commission),
    commissionAsset: t.commissionAsset,
    id: t.id,
    maker: t.isMaker,
    orderId: t.orderId,
    price: px(m, t.price),
    qty: qty(m, t.qty),
    quoteQty: amt(t.quoteQty),
    realizedPnl: amt(t.realizedPnl),
    side: t.side,
    positionSide: t.positionSide,
    symbol: t.symbol,
    time: t.time,
  };
}

function marginTypeName(pv: PositionView): 'isolated' | 'cross' {
  return pv.marginType === 'ISOLATED' ? 'isolated' : 'cross';
}

/** GET /fapi/v3/positionRisk (open positions only). */
export function positionRiskV3Json(m: FuturesMarket, pv: PositionView): unknown {
  const p = pv.position;
  const isolated = pv.marginType === 'ISOLATED';
  return {
    symbol: p.symbol,
    positionSide: p.positionSide,
    positionAmt: qty(m, p.size),
    entryPrice: fine(p.entryPrice),
    markPrice: fine(pv.markPrice),
    unRealizedProfit: amt(pv.unrealizedProfit),
    liquidationPrice: fine(pv.liquidationPrice),
    isolatedMargin: isolated ? amt(p.isolatedWallet + pv.unrealizedProfit) : '0',
    notional: amt(pv.notional),
    marginAsset: m.quote,
    isolatedWallet: isolated ? amt(p.isolatedWallet) : '0',
    initialMargin: amt(pv.initialMargin + pv.openOrderInitialMargin),
    maintMargin: amt(pv.maintMargin),
    positionInitialMargin: amt(pv.initialMargin),
    openOrderInitialMargin: amt(pv.openOrderInitialMargin),
    adl: 0,
    bidNotional: '0',
    askNotional: '0',
    updateTime: p.updateTime,
  };
}

/** GET /fapi/v2/positionRisk (every side of every symbol, with leverage and margin type). */
export function positionRiskV2Json(m: FuturesMarket, pv: PositionView): unknown {
  const p = pv.position;
  const isolated = pv.marginType === 'ISOLATED';
  return {
    symbol: p.symbol,
    positionAmt: qty(m, p.size),
    entryPrice: fine(p.entryPrice),
    markPrice: fine(pv.markPrice),
    unRealizedProfit: amt(pv.unrealizedProfit),
    liquidationPrice: fine(pv.liquidationPrice),
    leverage: String(pv.leverage),
    maxNotionalValue: amt(pv.maxNotional),
    marginType: marginTypeName(pv),
    isolatedMargin: isolated ? amt(p.isolatedWallet + pv.unrealizedProfit) : '0.00000000',
    isAutoAddMargin: 'false',
    positionSide: p.positionSide,
    notional: amt(pv.notional),
    isolatedWallet: isolated ? amt(p.isolatedWallet) : '0',
    updateTime: p.updateTime,
  };
}

function assetJson(a: AssetView, now: number, v2: boolean): Record<string, unknown> {
  return {
    asset: a.asset,
    walletBalance: amt(a.walletBalance),
    unrealizedProfit: amt(a.unrealizedProfit),
    marginBalance: amt(a.marginBalance),
    maintMargin: amt(a.maintMargin),
    initialMargin: amt(a.initialMargin),
    positionInitialMargin: amt(a.positionInitialMargin),
    openOrderInitialMargin: amt(a.openOrderInitialMargin),
    crossWalletBalance: amt(a.crossWalletBalance),
    crossUnPnl: amt(a.crossUnPnl),
    availableBalance: amt(a.availableBalance),
    maxWithdrawAmount: amt(a.availableBalance),
    ...(v2 ? { marginAvailable: true } : {}),
    // ccxt skips an asset whose updateTime is 0 (never updated): a funded asset has one.
    updateTime: a.updateTime || now,
  };
}

/** GET /fapi/v2/account and /fapi/v3/account. */
export function futuresAccountJson(
  view: AccountView,
  market: (id: string) => FuturesMarket | undefined,
  now: number,
  version: 2 | 3,
  dualSide: boolean,
): unknown {
  const sum = (f: (a: AssetView) => number): string => amt(view.assets.reduce((s, a) => s + f(a), 0));
  const positions = view.positions
    .filter((pv) => version === 2 || pv.position.size !== 0)
    .map((pv) => {
      const p = pv.position;
      const m = market(p.symbol) as FuturesMarket;
      const isolated = pv.marginType === 'ISOLATED';
      const base = {
        symbol: p.symbol,
        positionSide: p.positionSide,
        positionAmt: qty(m, p.size),
        unrealizedProfit: amt(pv.unrealizedProfit),
        isolatedMargin: isolated ? amt(p.isolatedWallet + pv.unrealizedProfit) : '0',
        notional: amt(pv.notional),
        isolatedWallet: isolated ? amt(p.isolatedWallet) : '0',
        initialMargin: amt(pv.initialMargin),
        maintMargin: amt(pv.maintMargin),
        updateTime: p.updateTime,
      };
      if (version === 3) return base;
      return {
        ...base,
        leverage: String(pv.leverage),
        entryPrice: fine(p.entryPrice),
        positionInitialMargin: amt(pv.initialMargin),
        openOrderInitialMargin: amt(pv.openOrderInitialMargin),
        isolated,
        maxNotional: amt(pv.maxNotional),
        bidNotional: '0',
        askNotional: '0',
      };
    });
  return {
    ...(version === 2
      ? {
          feeTier: 0,
          canTrade: true,
          canDeposit: true,
          canWithdraw: true,
          feeBurn: false,
          tradeGroupId: -1,
          updateTime: 0,
          multiAssetsMargin: false,
          dualSidePosition: dualSide,
        }
      : {}),
    totalInitialMargin: sum((a) => a.initialMargin),
    totalMaintMargin: sum((a) => a.maintMargin),
    totalWalletBalance: sum((a) => a.walletBalance),
    totalUnrealizedProfit: sum((a) => a.unrealizedProfit),
    totalMarginBalance: sum((a) => a.marginBalance),
    totalPositionInitialMargin: sum((a) => a.positionInitialMargin),
    totalOpenOrderInitialMargin: sum((a) => a.openOrderInitialMargin),
    totalCrossWalletBalance: sum((a) => a.crossWalletBalance),
    totalCrossUnPnl: sum((a) => a.crossUnPnl),
    availableBalance: sum((a) => a.availableBalance),
    maxWithdrawAmount: sum((a) => a.availableBalance),
    assets: view.assets.map((a) => assetJson(a, now, version === 2)),
    positions,
  };
}

/** GET /fapi/v2/balance and /fapi/v3/balance. */
export function futuresBalanceJson(view: AccountView, now: number): unknown {
  return view.assets.map((a) => ({
    accountAlias: 'SgsR',
    asset: a.asset,
    balance: amt(a.walletBalance),
    crossWalletBalance: amt(a.crossWalletBalance),
    crossUnPnl: amt(a.crossUnPnl),
    availableBalance: amt(a.availableBalance),
    maxWithdrawAmount: amt(a.availableBalance),
    marginAvailable: true,
    updateTime: a.updateTime || now,
  }));
}

/** One contract of GET /fapi/v1/leverageBracket (numbers, as Binance sends them). */
export function leverageBracketJson(m: FuturesMarket): unknown {
  return {
    symbol: m.id,
    notionalCoef: 1,
    brackets: m.brackets.map((b) => ({
      bracket: b.bracket,
      initialLeverage: b.maxLeverage,
      notionalCap: b.notionalCap,
      notionalFloor: b.notionalFloor,
      maintMarginRatio: b.maintMarginRate,
      cum: b.cum,
    })),
  };
}

export function incomeJson(r: IncomeRecord): unknown {
  return {
    symbol: r.symbol,
    incomeType: r.incomeType,
    income: amt(r.income),
    asset: r.asset,
    info: r.info,
    time: r.time,
    tranId: r.tranId,
    tradeId: r.tradeId,
  };
}

/**
 * A forced close as GET /fapi/v1/forceOrders lists it: the forced order, a liquidation as a LIMIT
 * order (Binance's example lists `"type": "LIMIT", "origType": "LIMIT"` for an `autoclose-` order;
 * the user-data stream says LIQUIDATION).
 */
export function forceOrderJson(m: FuturesMarket, l: LiquidationRecord): unknown {
  const o = l.order;
  return futuresOrderJson(m, o.type === 'LIQUIDATION' ? { ...o, type: 'LIMIT', origType: 'LIMIT' } : o);
}

/** The user-data ORDER_TRADE_UPDATE event. */
export function orderTradeUpdate(
  m: FuturesMarket,
  o: SimFuturesOrder,
  execType: string,
  fill: FuturesFill | undefined,
  now: number,
): unknown {
  return {
    e: 'ORDER_TRADE_UPDATE',
    E: now,
    T: now,
    o: {
      s: o.symbol,
      c: o.clientOrderId,
      S: o.side,
      o: o.type,
      f: o.timeInForce,
      q: qty(m, o.origQty),
      p: px(m, o.price),
      ap: avgPrice(m, o),
      sp: px(m, o.stopPrice),
      x: execType,
      X: o.status,
      i: o.orderId,
      l: qty(m, fill?.qty ?? 0),
      z: qty(m, o.executedQty),
      L: px(m, fill?.price ?? 0),
      ...(fill ? { N: fill.commissionAsset, n: amt(fill.commission) } : {}),
      T: now,
      t: fill?.tradeId ?? 0,
      b: '0',
      a: '0',
      m: fill?.isMaker ?? false,
      R: o.reduceOnly,
      wt: 'CONTRACT_PRICE',
      ot: o.origType,
      ps: o.positionSide,
      cp: o.closePosition,
      rp: amt(fill?.realizedPnl ?? 0),
      pP: false,
      si: 0,
      ss: 0,
      V: STP_MODE,
      pm: 'NONE',
      gtd: o.goodTillDate,
      er: String(o.expiryReason),
      w: isOpenFuturesOrder(o),
    },
  };
}

/** The user-data ALGO_UPDATE event. */
export function algoUpdate(
  m: FuturesMarket,
  a: SimAlgoOrder,
  actual: SimFuturesOrder | undefined,
  now: number,
): unknown {
  return {
    e: 'ALGO_UPDATE',
    T: now,
    E: now,
    o: {
      caid: a.clientAlgoId,
      aid: a.algoId,
      at: 'CONDITIONAL',
      o: a.orderType,
      s: a.symbol,
      S: a.side,
      ps: a.positionSide,
      f: a.timeInForce,
      q: qty(m, a.quantity),
      X: a.algoStatus,
      ai: a.actualOrderId,
      ap: actual ? avgPrice(m, actual) : '0',
      aq: qty(m, actual?.executedQty ?? 0),
      act: actual?.type ?? '',
      tp: px(m, a.triggerPrice),
      p: px(m, a.price),
      V: STP_MODE,
      wt: 'CONTRACT_PRICE',
      pm: 'NONE',
      cp: a.closePosition,
      pP: false,
      R: a.reduceOnly,
      tt: a.triggerTime,
      gtd: 0,
      rm: a.algoStatus === 'REJECTED' ? 'Order rejected when triggered' : '',
    },
  };
}

/** The user-data ACCOUNT_UPDATE event. */
export function accountUpdate(
  reason: string,
  assets: readonly AssetView[],
  balanceChanges: Readonly<Record<string, number>>,
  positions: readonly { position: SimPosition; view: PositionView | undefined; market: FuturesMarket }[],
  now: number,
): unknown {
  return {
    e: 'ACCOUNT_UPDATE',
    E: now,
    T: now,
    a: {
      m: reason,
      B: assets.map((a) => ({
        a: a.asset,
        wb: amt(a.walletBalance),
        cw: amt(a.crossWalletBalance),
        bc: amt(balanceChanges[a.asset] ?? 0),
      })),
      P: positions.map(({ position: p, view, market: m }) => ({
        s: p.symbol,
        pa: qty(m, p.size),
        ep: fine(p.entryPrice),
        cr: amt(p.accumulatedRealized),
        up: amt(view?.unrealizedProfit ?? 0),
        mt: view?.marginType === 'ISOLATED' ? 'isolated' : 'cross',
        iw: amt(view?.marginType === 'ISOLATED' ? p.isolatedWallet : 0),
        ps: p.positionSide,
        ma: m.quote,
      })),
    },
  };
}
