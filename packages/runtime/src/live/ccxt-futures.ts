import { type MarginMode, type Rng, SeededRng } from '@keel/core';
import { ccxtUndeclared, type ExchangeGateway, KeelExchangeError, retryDelayMs } from '@keel/exchange';
import {
  ExchangeFailure,
  type ExchangeForcedClose,
  type ExchangeFundingIncome,
  type ExchangeFuturesPosition,
  forcedCloseKind,
  type LiveFutures,
} from './port.ts';

type Raw = Record<string, unknown>;

/** Binance USDⓈ-M request weights of the endpoints read here (its API docs; forceOrders with a symbol). */
const USDM_WEIGHTS: Readonly<Record<string, number>> = {
  fapiPrivateGetPositionSideDual: 30,
  fapiPrivateV2GetAccount: 5,
  fapiPrivateV2GetPositionRisk: 5,
  fapiPrivatePostLeverage: 1,
  fapiPrivatePostMarginType: 1,
  fapiPrivateGetIncome: 30,
  fapiPublicGetFundingRate: 1,
  fapiPrivateGetForceOrders: 20,
  fapiPrivateGetUserTrades: 5,
  fapiPrivateGetAllOrders: 5,
};
type Call = (params?: Raw) => Promise<unknown>;

/**
 * The USDⓈ-M side of the port over ccxt's `binanceusdm`, through the gateway (its rate limits,
 * retries and circuit breakers). Binance's own endpoints are read as Binance answers them
 * (ccxt's implicit methods): ccxt's unified balance is the margin balance, not the wallet, and
 * its positions leave out a flat symbol's leverage and margin mode, which reconciliation needs.
 * `rng` jitters the funding watch's reconnect backoff (seeded by default, as the order tracker's).
 */
export function binanceUsdmFutures(gw: ExchangeGateway, rng: Rng = new SeededRng(23)): LiveFutures {
  const client = gw.client as unknown as Record<string, Call> & {
    market(symbol: string): { id: string };
  };
  const idOf = (symbol: string): string => client.market(symbol).id;
  const call = async <T>(endpoint: 'orders' | 'queries' | 'market-data', method: string, params: Raw): Promise<T> => {
    const fn = client[method];
    if (typeof fn !== 'function') throw new Error(`Invariant violated: ccxt has no ${method}`);
    try {
      return (await gw.call(endpoint, method, () => fn.call(client, params), {
        weight: USDM_WEIGHTS[method] ?? 1,
      })) as T;
    } catch (e) {
      throw e instanceof KeelExchangeError ? new ExchangeFailure(e.kind, e.message, e) : e;
    }
  };
  const num = (x: unknown): number => (x === undefined || x === null || x === '' ? 0 : Number(x));

  return {
    async account(symbols) {
      const dual = await call<Raw>('queries', 'fapiPrivateGetPositionSideDual', {});
      const acct = await call<Raw>('queries', 'fapiPrivateV2GetAccount', {});
      const wallet: Record<string, number> = {};
      for (const a of (acct.assets as Raw[] | undefined) ?? []) wallet[String(a.asset)] = num(a.walletBalance);
      const positions: ExchangeFuturesPosition[] = [];
      // One request for every symbol: positionRisk without a symbol lists every contract (v2: flat
      // ones too, with their leverage and margin type), at the weight of one.
      const all = symbols.length === 0 ? [] : await call<Raw[]>('queries', 'fapiPrivateV2GetPositionRisk', {});
      for (const symbol of symbols) {
        const id = idOf(symbol);
        const rows = all.filter((x) => x.symbol === id);
        // One-way mode: the BOTH row; hedge mode has LONG and SHORT rows (refused by the caller).
        const r = rows.find((x) => x.positionSide === 'BOTH') ?? rows[0];
        if (r === undefined) continue;
        positions.push({
          symbol,
          size: num(r.positionAmt),
          entryPrice: num(r.entryPrice),
          leverage: num(r.leverage),
          marginMode: String(r.marginType).toLowerCase() === 'isolated' ? 'isolated' : 'cross',
          isolatedWallet: num(r.isolatedWallet),
        });
      }
      const hedge = dual.dualSidePosition === true || dual.dualSidePosition === 'true';
      return { positionMode: hedge ? 'hedge' : 'one-way', wallet, positions };
    },
    async setLeverage(symbol, leverage) {
      await call('orders', 'fapiPrivatePostLeverage', { symbol: idOf(symbol), leverage });
    },
    async setMarginMode(symbol, mode: MarginMode) {
      await call('orders', 'fapiPrivatePostMarginType', {
        symbol: idOf(symbol),
        marginType: mode === 'isolated' ? 'ISOLATED' : 'CROSSED',
      });
    },
    async fundingIncome(symbol, since) {
      const rows = await call<Raw[]>('queries', 'fapiPrivateGetIncome', {
        symbol: idOf(symbol),
        incomeType: 'FUNDING_FEE',
        startTime: since,
        limit: 1000,
      });
      return rows
        .map(
          (r): ExchangeFundingIncome => ({
            id: String(r.tranId),
            symbol,
            time: num(r.time),
            amount: num(r.income),
            asset: String(r.asset),
          }),
        )
        .sort((a, b) => a.time - b.time);
    },
    async fundingRates(symbol, since) {
      const rows = await call<Raw[]>('market-data', 'fapiPublicGetFundingRate', {
        symbol: idOf(symbol),
        startTime: since,
        limit: 1000,
      });
      return rows.map((r) => ({
        time: num(r.fundingTime),
        rate: num(r.fundingRate),
        markPrice: r.markPrice === undefined || r.markPrice === '' ? Number.NaN : Number(r.markPrice),
      }));
    },
    async forcedCloses(symbol, since, known) {
      const id = idOf(symbol);
      // Without autoCloseType Binance lists both kinds, liquidations and ADL closes, in one request;
      // an ADL close carries the client id `adl_autoclose`.
      const forced = await call<Raw[]>('queries', 'fapiPrivateGetForceOrders', {
        symbol: id,
        startTime: since,
        limit: 100,
      });
      // A delisted contract's settlement close (`settlement_autoclose-`) is no forced order there
      // (autoCloseType knows LIQUIDATION and ADL only): it is in the order history. Without a start
      // time Binance lists the most recent orders, and a settlement is the last order a contract
      // ever has.
      const recent = await call<Raw[]>('queries', 'fapiPrivateGetAllOrders', { symbol: id, limit: 50 });
      const settlements = recent.filter(
        (r) =>
          forcedCloseKind(String(r.clientOrderId ?? ''), '') === 'settlement' &&
          r.status === 'FILLED' &&
          num(r.updateTime ?? r.time) >= since,
      );
      const out: ExchangeForcedClose[] = [];
      for (const r of [...forced, ...settlements]) {
        const orderId = String(r.orderId);
        if (known?.(orderId) === true) continue;
        let fee = Number.NaN;
        try {
          const trades = await call<Raw[]>('queries', 'fapiPrivateGetUserTrades', { symbol: id, orderId });
          if (trades.length > 0) fee = trades.reduce((s, t) => s + num(t.commission), 0);
        } catch {
          // Said by the caller: a forced close whose fee is unknown is a counted warning.
        }
        const clientOrderId = String(r.clientOrderId ?? '');
        const kind = forcedCloseKind(clientOrderId, '');
        out.push({
          kind: kind === 'adl' || kind === 'settlement' ? kind : 'liquidation',
          id: orderId,
          clientOrderId,
          symbol,
          price: num(r.avgPrice),
          orderPrice: num(r.price),
          amount: num(r.executedQty),
          time: num(r.updateTime ?? r.time),
          fee,
        });
      }
      return out.sort((a, b) => a.time - b.time);
    },
    watchFunding(h) {
      // ccxt keeps one connection per user-data stream (the listen key's URL): watchBalance shares
      // it with the order tracker's watchOrders/watchMyTrades. Each ACCOUNT_UPDATE resolves it with
      // the message as `info`; it is awaited again at once (before the next message can arrive),
      // so none is skipped while the connection holds.
      const client = ccxtUndeclared<{ watchBalance(): Promise<{ info?: unknown }> }>(gw.client);
      const ctl = new AbortController();
      const stopped = new Promise<'stop'>((r) => ctl.signal.addEventListener('abort', () => r('stop'), { once: true }));
      const loop = (async () => {
        let attempt = 0;
        while (!ctl.signal.aborted) {
          try {
            const p = client.watchBalance();
            p.catch(() => {});
            const b = await Promise.race([p, stopped]);
            if (b === 'stop') return;
            attempt = 0;
            const info = b.info as Raw | undefined;
            if (info?.e === 'ACCOUNT_UPDATE' && (info.a as Raw | undefined)?.m === 'FUNDING_FEE') h.onFunding();
          } catch (e) {
            if (ctl.signal.aborted) return;
            h.onError(e instanceof Error ? e : new Error(String(e)));
            await gw.timer.sleep(retryDelayMs(attempt++, { baseMs: 500, maxMs: 30_000 }, rng), ctl.signal);
          }
        }
      })();
      return async () => {
        ctl.abort();
        await loop.catch(() => undefined);
      };
    },
  };
}
