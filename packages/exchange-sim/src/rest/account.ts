/**
 * Account routes: balances and commission rates, the listenKey user-data stream, and the sapi
 * endpoints ccxt's loadMarkets calls with its default options (capital config, margin pairs),
 * answered minimally: the sim has no wallet and no margin.
 */
import { binanceError, mandatoryParam } from '../errors.ts';
import { BNB, BNB_FEE_MULTIPLIER } from '../exchange/bnb-fees.ts';
import type { SpotExchange } from '../exchange/spot-exchange.ts';
import type { ListenKeys } from '../listen-keys.ts';
import { binanceDecimal } from '../num.ts';
import { marketParam, type Params } from './params.ts';
import { fixedWeight, type RouteTable } from './routes.ts';

export function accountRoutes(exchange: SpotExchange, listenKeys: ListenKeys): RouteTable {
  const existingListenKey = (p: Params): string => {
    if (!p.listenKey) throw mandatoryParam('listenKey');
    if (listenKeys.ownerOf(p.listenKey) === undefined) throw binanceError(-1125, 'This listenKey does not exist.');
    return p.listenKey;
  };
  return {
    'GET /api/v3/account': {
      security: 'signed',
      weight: fixedWeight(20),
      handler: ({ apiKey, params }) => accountInfo(exchange, apiKey, params.omitZeroBalances === 'true'),
    },
    'GET /api/v3/account/commission': {
      security: 'signed',
      weight: fixedWeight(20),
      handler: ({ apiKey, params }) => commission(exchange, apiKey, marketParam(exchange, params).id),
    },
    // Binance's "use BNB to pay fees" switch (spotBNBBurn); interest in BNB is a margin matter.
    'GET /sapi/v1/bnbBurn': {
      security: 'signed',
      weight: fixedWeight(1),
      handler: ({ apiKey }) => bnbBurn(exchange, apiKey),
    },
    'POST /sapi/v1/bnbBurn': {
      security: 'signed',
      weight: fixedWeight(1),
      handler: ({ apiKey, params }) => {
        const on = params.spotBNBBurn;
        if (on !== undefined && on !== 'true' && on !== 'false')
          throw binanceError(
            -1100,
            "Illegal characters found in parameter 'spotBNBBurn'; legal range is 'true, false'.",
          );
        if (on !== undefined) {
          try {
            exchange.setPayFeesWithBnb(apiKey, on === 'true');
          } catch (e) {
            throw binanceError(-1000, (e as Error).message);
          }
        }
        return bnbBurn(exchange, apiKey);
      },
    },
    'GET /sapi/v1/asset/tradeFee': {
      security: 'signed',
      weight: fixedWeight(1),
      handler: ({ params }) =>
        [...exchange.markets.values()]
          .filter((m) => !params.symbol || m.id === params.symbol)
          .map((m) => ({
            symbol: m.id,
            makerCommission: String(exchange.fees.maker),
            takerCommission: String(exchange.fees.taker),
          })),
    },
    'POST /api/v3/userDataStream': {
      security: 'apiKey',
      weight: fixedWeight(2),
      handler: ({ apiKey }) => ({ listenKey: listenKeys.open(apiKey) }),
    },
    'PUT /api/v3/userDataStream': {
      security: 'apiKey',
      weight: fixedWeight(2),
      handler: ({ params }) => {
        existingListenKey(params);
        return {};
      },
    },
    'DELETE /api/v3/userDataStream': {
      security: 'apiKey',
      weight: fixedWeight(2),
      handler: ({ params }) => {
        listenKeys.close(existingListenKey(params));
        return {};
      },
    },
    'GET /sapi/v1/capital/config/getall': {
      security: 'signed',
      weight: fixedWeight(10),
      handler: ({ apiKey }) => coins(exchange, apiKey),
    },
    'GET /sapi/v1/margin/allPairs': { security: 'apiKey', weight: fixedWeight(1), handler: () => [] },
    'GET /sapi/v1/margin/isolated/allPairs': { security: 'signed', weight: fixedWeight(10), handler: () => [] },
  };
}

function accountInfo(exchange: SpotExchange, apiKey: string, omitZeroBalances: boolean): unknown {
  const fees = exchange.fees;
  const basisPoints = (rate: number): number => Math.round(rate * 10_000);
  return {
    makerCommission: basisPoints(fees.maker),
    takerCommission: basisPoints(fees.taker),
    buyerCommission: 0,
    sellerCommission: 0,
    commissionRates: {
      maker: binanceDecimal(fees.maker),
      taker: binanceDecimal(fees.taker),
      buyer: binanceDecimal(0),
      seller: binanceDecimal(0),
    },
    canTrade: true,
    canWithdraw: true,
    canDeposit: true,
    brokered: false,
    requireSelfTradePrevention: false,
    preventSor: false,
    updateTime: exchange.now(),
    accountType: 'SPOT',
    balances: Object.entries(exchange.balances(apiKey))
      .filter(([, b]) => !omitZeroBalances || b.free > 0 || b.locked > 0)
      .map(([asset, b]) => ({ asset, free: binanceDecimal(b.free), locked: binanceDecimal(b.locked) })),
    permissions: ['SPOT'],
    uid: 0,
  };
}

function bnbBurn(exchange: SpotExchange, apiKey: string): unknown {
  return { spotBNBBurn: exchange.paysFeesWithBnb(apiKey), interestBNBBurn: false };
}

function commission(exchange: SpotExchange, apiKey: string, symbol: string): unknown {
  const f = exchange.fees;
  const rates = (maker: number, taker: number) => ({
    maker: binanceDecimal(maker),
    taker: binanceDecimal(taker),
    buyer: binanceDecimal(0),
    seller: binanceDecimal(0),
  });
  return {
    symbol,
    standardCommission: rates(f.maker, f.taker),
    specialCommission: rates(0, 0),
    taxCommission: rates(0, 0),
    // `discount` is what a standard commission paid in BNB is multiplied by (see bnb-fees.ts).
    discount: {
      enabledForAccount: exchange.paysFeesWithBnb(apiKey),
      enabledForSymbol: true,
      discountAsset: BNB,
      discount: binanceDecimal(BNB_FEE_MULTIPLIER),
    },
  };
}

/** One coin per asset held or traded, with no network enabled for deposit or withdrawal. */
function coins(exchange: SpotExchange, apiKey: string): unknown {
  const balances = exchange.balances(apiKey);
  const assets = new Set<string>(Object.keys(balances));
  for (const m of exchange.markets.values()) {
    assets.add(m.base);
    assets.add(m.quote);
  }
  return [...assets].sort().map((coin) => ({
    coin,
    name: coin,
    depositAllEnable: false,
    withdrawAllEnable: false,
    free: binanceDecimal(balances[coin]?.free ?? 0),
    locked: binanceDecimal(balances[coin]?.locked ?? 0),
    freeze: '0',
    withdrawing: '0',
    ipoing: '0',
    ipoable: '0',
    storage: '0',
    isLegalMoney: false,
    trading: true,
    networkList: [
      {
        network: coin,
        coin,
        name: coin,
        isDefault: true,
        depositEnable: false,
        withdrawEnable: false,
        withdrawFee: '0',
        withdrawMin: '0',
        withdrawMax: '0',
        withdrawIntegerMultiple: '0.00000001',
        depositDust: '0.00000001',
      },
    ],
  }));
}
