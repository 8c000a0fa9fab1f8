/**
 * USDⓈ-M account routes: account and balance (v2 and v3, what ccxt's fetchBalance and
 * fetchPositions call), positionRisk (v2, v3), leverage brackets, leverage, margin type, position
 * mode, isolated margin, symbol and account configuration, commission rate, income, and the
 * listenKey of the user-data stream.
 */
import { maxNotionalAtLeverage } from '@keel/core';
import {
  futuresAccountJson,
  futuresBalanceJson,
  incomeJson,
  leverageBracketJson,
  positionRiskV2Json,
  positionRiskV3Json,
} from '../../binance-futures-json.ts';
import { binanceError, mandatoryParam } from '../../errors.ts';
import type { FuturesExchange } from '../../exchange/futures/futures-exchange.ts';
import type { FuturesMarket } from '../../exchange/futures/ledger.ts';
import type { ListenKeys } from '../../listen-keys.ts';
import { binanceDecimal } from '../../num.ts';
import { decimalParam, intParam, limitParam, marketParam, type Params, timeParam } from '../params.ts';
import { fixedWeight, type RouteTable, weightBySymbol } from '../routes.ts';

export function futuresAccountRoutes(exchange: FuturesExchange, listenKeys: ListenKeys): RouteTable {
  const signed = (weight: number | ((p: Params) => number), handler: (apiKey: string, p: Params) => unknown) => ({
    security: 'signed' as const,
    weight: typeof weight === 'number' ? fixedWeight(weight) : weight,
    handler: ({ apiKey, params }: { apiKey: string; params: Params }) => handler(apiKey, params),
  });
  const view = (apiKey: string) => exchange.ledger.view(apiKey, exchange.matching.openOrders(apiKey));
  const market = (id: string): FuturesMarket | undefined => exchange.market(id);
  const symbolFilter = (p: Params): string | undefined => (p.symbol ? marketParam(exchange, p).id : undefined);
  const account = (version: 2 | 3) => (apiKey: string) =>
    futuresAccountJson(view(apiKey), market, exchange.now(), version, exchange.ledger.dualSide(apiKey));
  const positionRisk = (version: 2 | 3) => (apiKey: string, p: Params) => {
    const symbol = symbolFilter(p);
    const sides = exchange.ledger.sidesOf(apiKey);
    if (version === 2) {
      // v2 lists every side of every contract in the account's position mode, flat ones included.
      for (const m of exchange.markets.values())
        if (symbol === undefined || m.id === symbol)
          for (const side of sides) exchange.ledger.position(apiKey, m.id, side);
    }
    return view(apiKey)
      .positions.filter((pv) => symbol === undefined || pv.position.symbol === symbol)
      .filter((pv) => (version === 3 ? pv.position.size !== 0 : sides.includes(pv.position.positionSide)))
      .map((pv) => {
        const m = market(pv.position.symbol) as FuturesMarket;
        return version === 3 ? positionRiskV3Json(m, pv) : positionRiskV2Json(m, pv);
      });
  };
  const existingListenKey = (p: Params): string => {
    const key = p.listenKey;
    if (key !== undefined && listenKeys.ownerOf(key) === undefined)
      throw binanceError(-1125, 'This listenKey does not exist.');
    return key ?? '';
  };
  return {
    'GET /fapi/v2/account': signed(5, account(2)),
    'GET /fapi/v3/account': signed(5, account(3)),
    'GET /fapi/v2/balance': signed(5, (apiKey) => futuresBalanceJson(view(apiKey), exchange.now())),
    'GET /fapi/v3/balance': signed(5, (apiKey) => futuresBalanceJson(view(apiKey), exchange.now())),
    'GET /fapi/v2/positionRisk': signed(5, positionRisk(2)),
    'GET /fapi/v3/positionRisk': signed(5, positionRisk(3)),
    'GET /fapi/v1/leverageBracket': signed(1, (_apiKey, p) => {
      if (p.symbol) return leverageBracketJson(marketParam(exchange, p) as FuturesMarket);
      return [...exchange.markets.values()].map((m) => leverageBracketJson(m as FuturesMarket));
    }),
    'POST /fapi/v1/leverage': signed(1, (apiKey, p) => {
      const m = marketParam(exchange, p);
      const leverage = intParam(p.leverage);
      if (leverage === undefined) throw mandatoryParam('leverage');
      const r = exchange.setLeverage(apiKey, m.id, leverage);
      return { leverage: r.leverage, maxNotionalValue: String(r.maxNotionalValue), symbol: m.id };
    }),
    'POST /fapi/v1/marginType': signed(1, (apiKey, p) => {
      const m = marketParam(exchange, p);
      if (p.marginType === undefined) throw mandatoryParam('marginType');
      if (p.marginType !== 'ISOLATED' && p.marginType !== 'CROSSED')
        throw binanceError(-4044, 'Balance Type is invalid.');
      exchange.setMarginType(apiKey, m.id, p.marginType);
      return { code: 200, msg: 'success' };
    }),
    'POST /fapi/v1/positionSide/dual': signed(1, (apiKey, p) => {
      if (p.dualSidePosition !== 'true' && p.dualSidePosition !== 'false') throw mandatoryParam('dualSidePosition');
      exchange.setPositionMode(apiKey, p.dualSidePosition === 'true');
      return { code: 200, msg: 'success' };
    }),
    'GET /fapi/v1/positionSide/dual': signed(30, (apiKey) => ({ dualSidePosition: exchange.ledger.dualSide(apiKey) })),
    'POST /fapi/v1/positionMargin': signed(1, (apiKey, p) => {
      const m = marketParam(exchange, p);
      const amount = decimalParam(p, 'amount');
      if (amount === undefined) throw mandatoryParam('amount');
      if (p.type !== '1' && p.type !== '2') throw mandatoryParam('type');
      const side = exchange.matching.resolvePositionSide(apiKey, p.positionSide);
      exchange.modifyIsolatedMargin(apiKey, m.id, side, amount, p.type === '1');
      return { amount, code: 200, msg: 'Successfully modify position margin.', type: Number(p.type) };
    }),
    'GET /fapi/v1/symbolConfig': signed(5, (apiKey, p) => {
      const symbol = symbolFilter(p);
      return [...exchange.markets.values()]
        .filter((m) => symbol === undefined || m.id === symbol)
        .map((m) => {
          const s = exchange.ledger.settings(apiKey, m.id);
          return {
            symbol: m.id,
            marginType: s.marginType,
            isAutoAddMargin: 'false',
            leverage: s.leverage,
            maxNotionalValue: String(maxNotionalAtLeverage((m as FuturesMarket).brackets, s.leverage)),
          };
        });
    }),
    'GET /fapi/v1/accountConfig': signed(5, (apiKey) => ({
      feeTier: 0,
      canTrade: true,
      canDeposit: true,
      canWithdraw: true,
      dualSidePosition: exchange.ledger.dualSide(apiKey),
      updateTime: 0,
      multiAssetsMargin: false,
      tradeGroupId: -1,
    })),
    'GET /fapi/v1/multiAssetsMargin': signed(30, () => ({ multiAssetsMargin: false })),
    'GET /fapi/v1/commissionRate': signed(20, (_apiKey, p) => ({
      symbol: marketParam(exchange, p).id,
      makerCommissionRate: binanceDecimal(exchange.fees.maker),
      takerCommissionRate: binanceDecimal(exchange.fees.taker),
    })),
    'GET /fapi/v1/income': signed(30, (apiKey, p) => {
      const symbol = symbolFilter(p);
      const start = timeParam(p.startTime, Number.NEGATIVE_INFINITY);
      const end = timeParam(p.endTime, Number.POSITIVE_INFINITY);
      const limit = limitParam(p.limit, 100, 1000);
      const rows = exchange.ledger
        .income(apiKey)
        .filter(
          (r) =>
            (symbol === undefined || r.symbol === symbol) &&
            (p.incomeType === undefined || r.incomeType === p.incomeType) &&
            r.time >= start &&
            r.time <= end,
        );
      return (p.startTime !== undefined ? rows.slice(0, limit) : rows.slice(-limit)).map(incomeJson);
    }),
    'POST /fapi/v1/listenKey': {
      security: 'apiKey',
      weight: fixedWeight(1),
      handler: ({ apiKey }) => ({ listenKey: listenKeys.open(apiKey) }),
    },
    'PUT /fapi/v1/listenKey': {
      security: 'apiKey',
      weight: fixedWeight(1),
      handler: ({ apiKey, params }) => {
        existingListenKey(params);
        return { listenKey: listenKeys.open(apiKey) };
      },
    },
    'DELETE /fapi/v1/listenKey': {
      security: 'apiKey',
      weight: fixedWeight(1),
      handler: ({ apiKey }) => {
        listenKeys.close(listenKeys.open(apiKey));
        return {};
      },
    },
    'GET /fapi/v1/apiTradingStatus': signed(weightBySymbol(1, 10), () => ({ indicators: {}, updateTime: 0 })),
  };
}
