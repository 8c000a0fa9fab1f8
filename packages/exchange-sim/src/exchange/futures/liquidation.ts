/**
 * The liquidation engine. After every move of a contract's mark price (the last price) and after
 * funding, each account holding the contract is checked with core's formulas:
 *
 * - an isolated position whose margin balance (isolated wallet + unrealised PnL) has reached its
 *   maintenance margin is closed whole at its liquidation price;
 * - when the cross margin balance (cross wallet + cross unrealised PnL) has reached the cross
 *   maintenance margin, every cross position of the account is closed: the contract's positions
 *   at their (shared) liquidation price, the others at their mark.
 *
 * The price path between two ticks is continuous, so the mark crossed the liquidation price on
 * the way: the forced fill is at that price (rounded to the tick), also when the replay gaps past
 * it (the insurance fund takes the difference, as on Binance, where a user's loss ends at the
 * margin). Open orders of the account in the contract are cancelled first. The forced order is a
 * LIQUIDATION order with Binance's client id shape (`autoclose-<19 digits>`), IOC, reduce-only,
 * reported on the user-data stream with execution type CALCULATED (Binance's USDⓈ-M user-data
 * docs: "CALCULATED - Liquidation Execution") and listed by forceOrders as a LIMIT order (Binance's
 * example); its commission is the clearance fee: clearanceRate x notional, capped by the margin
 * left after the loss (core's liquidationClearanceFee), so a balance never goes below zero.
 *
 * The same engine makes the exchange's other closes, on command (admin/test hooks, nothing in the
 * replay calls them): auto-deleveraging (`autoDeleverage`) and the settlement of a delisted
 * contract (`settle`).
 */
import { isLiquidatable, liquidationClearanceFee, positionNotional, roundToStep } from '@keel/core';
import { isMultipleOf, roundAssetAmount } from '../../num.ts';
import type { MarketReplay } from '../replay.ts';
import type { AlgoOrders } from './algo-orders.ts';
import type { FuturesLedger, FuturesMarket, PositionView } from './ledger.ts';
import type { FuturesMatching, InternalOrder } from './matching.ts';
import type { SimFuturesOrder, SimPosition } from './model.ts';

/**
 * One forced close, as `sim.liquidations()` reports it: a liquidation, an auto-deleveraging (ADL)
 * close (`autoDeleverage`) or a delisted contract's settlement close (`settle`).
 * `GET /fapi/v1/forceOrders` lists the first two (Binance's `autoCloseType` knows only those).
 */
export interface LiquidationRecord {
  /**
   * Binance's `autoCloseType`: LIQUIDATION (margin ran out) or ADL (a profitable position
   * reduced); SETTLEMENT (the contract was delisted) is the simulator's own word for the third.
   */
  autoCloseType: 'LIQUIDATION' | 'ADL' | 'SETTLEMENT';
  apiKey: string;
  symbol: string;
  order: SimFuturesOrder;
  /** The liquidation price by Binance's formula, before rounding to the tick (ADL, settlement: the close price). */
  liquidationPrice: number;
  /** Where the forced order filled (the liquidation price on the tick). */
  price: number;
  realizedPnl: number;
  clearanceFee: number;
  marginMode: 'isolated' | 'cross';
}

export interface LiquidationEngineOptions {
  replay: MarketReplay;
  ledger: FuturesLedger;
  matching: FuturesMatching;
  algos: AlgoOrders;
  market(id: string): FuturesMarket | undefined;
}

export class LiquidationEngine {
  private readonly records: LiquidationRecord[] = [];
  private seq = 0;

  constructor(private readonly opts: LiquidationEngineOptions) {}

  /** Every forced close so far (copies), optionally of one account. */
  liquidations(apiKey?: string): LiquidationRecord[] {
    return this.records.filter((r) => apiKey === undefined || r.apiKey === apiKey).map((r) => ({ ...r }));
  }

  /**
   * Auto-deleverages the account's position in `symbol` as Binance does when a liquidation cannot
   * be absorbed by the book and the insurance fund: `qty` of it (default all) is closed at `price`
   * (default the last price, on the tick) by an order with the client id `adl_autoclose` (a LIMIT
   * GTC order, as forceOrders lists it), reported on the user-data stream with execution type
   * CALCULATED, listed by forceOrders with autoCloseType ADL and in the user trades; no clearance
   * fee and no commission. The account's open orders in the symbol are cancelled first (their
   * cancels are reported as order updates). An admin/test hook: nothing in the replay calls it.
   */
  autoDeleverage(apiKey: string, symbol: string, qty?: number, price?: number): LiquidationRecord {
    const { ledger, matching, algos } = this.opts;
    const m = this.opts.market(symbol);
    if (!m) throw new Error(`autoDeleverage: unknown market ${symbol}`);
    const p = ledger.positions(apiKey, m.id).find((x) => x.size !== 0);
    if (!p) throw new Error(`autoDeleverage: account ${apiKey} holds no position in ${m.id}`);
    const held = Math.abs(p.size);
    const q = qty ?? held;
    if (!(q > 0) || q > held + 1e-12 || !isMultipleOf(q, m.stepSize))
      throw new Error(`autoDeleverage: ${q} is not a quantity of the ${held} held (step ${m.stepSize})`);
    const at = price ?? roundToStep(m.price, m.tickSize, 'nearest');
    if (!(at > 0) || !isMultipleOf(at, m.tickSize))
      throw new Error(`autoDeleverage: price ${at} is not on the tick ${m.tickSize}`);
    matching.cancelAll(apiKey, m.id);
    algos.cancelAll(apiKey, m.id);
    const { order, realized } = matching.fillForced(
      apiKey,
      closing(m, p, q, at, { type: 'LIMIT', timeInForce: 'GTC', reduceOnly: false, clientOrderId: 'adl_autoclose' }),
      { commission: 0, income: 'COMMISSION', execType: 'CALCULATED' },
    );
    return this.recordClose('ADL', apiKey, m, order, at, realized);
  }

  /**
   * Settles a delisted contract as Binance does at the delisting time: every position of every
   * account in `symbol` is closed whole at the settlement price `price` (Binance: the average of
   * the index price over the last 30 minutes; here given, default the last price on the tick) by
   * an order with a `settlement_autoclose-<19 digits>` client id (Binance's USDⓈ-M user-data docs:
   * "settlement order for delisting or delivery"), a LIMIT IOC order at that price, charged the
   * taker fee (Binance's delisting FAQ: "the settlement fee will be the same as the taker fee"),
   * reported on the user-data stream as a TRADE and in the user trades, the order history and the
   * income (REALIZED_PNL, COMMISSION); not in forceOrders. The contract must be delisted first (its
   * open orders are cancelled then).
   */
  settle(symbol: string, price?: number): LiquidationRecord[] {
    const { ledger, matching, replay } = this.opts;
    const m = this.opts.market(symbol);
    if (!m) throw new Error(`settle: unknown market ${symbol}`);
    if (matching.status(m.id) === 'TRADING') throw new Error(`settle: ${m.id} is trading; delist it first`);
    const at = price ?? roundToStep(m.price, m.tickSize, 'nearest');
    if (!(at > 0) || !isMultipleOf(at, m.tickSize))
      throw new Error(`settle: price ${at} is not on the tick ${m.tickSize}`);
    const out: LiquidationRecord[] = [];
    for (const apiKey of ledger.apiKeys())
      for (const p of ledger.positions(apiKey, m.id)) {
        if (p.size === 0) continue;
        const { order, realized } = matching.fillForced(
          apiKey,
          closing(m, p, Math.abs(p.size), at, {
            type: 'LIMIT',
            timeInForce: 'IOC',
            reduceOnly: true,
            clientOrderId: `settlement_autoclose-${this.idDigits(replay.now())}`,
          }),
          { commission: undefined, income: 'COMMISSION', execType: 'TRADE' },
        );
        out.push(this.recordClose('SETTLEMENT', apiKey, m, order, at, realized));
      }
    return out;
  }

  /** Records an ADL or settlement close (no clearance fee, filled at `price`); returns a copy. */
  private recordClose(
    autoCloseType: 'ADL' | 'SETTLEMENT',
    apiKey: string,
    m: FuturesMarket,
    order: SimFuturesOrder,
    price: number,
    realizedPnl: number,
  ): LiquidationRecord {
    const rec: LiquidationRecord = {
      autoCloseType,
      apiKey,
      symbol: m.id,
      order,
      liquidationPrice: price,
      price,
      realizedPnl,
      clearanceFee: 0,
      marginMode: this.opts.ledger.settings(apiKey, m.id).marginType === 'ISOLATED' ? 'isolated' : 'cross',
    };
    this.records.push(rec);
    return { ...rec };
  }

  /** The 19 digits after a forced order's client id prefix: the time and a sequence number. */
  private idDigits(now: number): string {
    return `${now}${String(this.seq++ % 1_000_000).padStart(6, '0')}`;
  }

  /** Checks every account with a position in `m` at the current prices. */
  check(m: FuturesMarket): void {
    const { ledger, matching } = this.opts;
    if (!Number.isFinite(m.price)) return;
    for (const apiKey of ledger.apiKeys()) {
      if (!ledger.positions(apiKey, m.id).some((p) => p.size !== 0)) continue;
      const view = ledger.view(apiKey, matching.openOrders(apiKey));
      for (const pv of view.positions) {
        const p = pv.position;
        if (p.symbol !== m.id || p.size === 0 || pv.marginType !== 'ISOLATED') continue;
        if (isLiquidatable(p.isolatedWallet + pv.unrealizedProfit, pv.maintMargin))
          this.liquidate(apiKey, [pv], 'isolated', p.isolatedWallet);
      }
      const cross = view.positions.filter((pv) => pv.marginType === 'CROSSED' && pv.position.size !== 0);
      if (!cross.some((pv) => pv.position.symbol === m.id)) continue;
      const asset = view.assets.find((a) => a.asset === m.quote);
      if (!asset) continue;
      const maint = cross.reduce((s, pv) => s + pv.maintMargin, 0);
      if (isLiquidatable(asset.crossWalletBalance + asset.crossUnPnl, maint))
        this.liquidate(apiKey, cross, 'cross', asset.crossWalletBalance);
    }
  }

  /**
   * Closes the positions: the liquidation price of each (its mark when it has none), the realised
   * loss, then the clearance fees in turn out of what is left of `wallet` (the isolated wallet or
   * the cross wallet).
   */
  private liquidate(
    apiKey: string,
    positions: readonly PositionView[],
    marginMode: 'isolated' | 'cross',
    wallet: number,
  ): void {
    const { matching, algos, replay } = this.opts;
    const now = replay.now();
    for (const symbol of new Set(positions.map((pv) => pv.position.symbol))) {
      matching.cancelAll(apiKey, symbol);
      algos.cancelAll(apiKey, symbol);
    }
    const plan = positions.map((pv) => {
      const p = pv.position;
      const m = this.opts.market(p.symbol) as FuturesMarket;
      const lp = pv.liquidationPrice > 0 ? pv.liquidationPrice : pv.markPrice;
      const price = roundToStep(lp, m.tickSize, 'nearest');
      // The same arithmetic as core's applyPositionFill on a full close.
      const realized = roundAssetAmount(Math.abs(p.size) * (price - p.entryPrice) * Math.sign(p.size) * m.contractSize);
      return { pv, m, lp, price, realized };
    });
    let left = wallet + plan.reduce((s, x) => s + x.realized, 0);
    for (const { pv, m, lp, price, realized } of plan) {
      const p = pv.position;
      const qty = Math.abs(p.size);
      const fee = roundAssetAmount(
        liquidationClearanceFee(positionNotional(qty, price, m.contractSize), m.clearanceRate, left),
      );
      left -= fee;
      const { order, realized: booked } = matching.fillForced(
        apiKey,
        closing(m, p, qty, price, {
          type: 'LIQUIDATION',
          timeInForce: 'IOC',
          reduceOnly: true,
          clientOrderId: `autoclose-${this.idDigits(now)}`,
        }),
        { commission: fee, income: 'INSURANCE_CLEAR', execType: 'CALCULATED' },
      );
      this.records.push({
        autoCloseType: 'LIQUIDATION',
        apiKey,
        symbol: m.id,
        order,
        liquidationPrice: lp,
        price,
        realizedPnl: booked,
        clearanceFee: fee,
        marginMode,
      });
      if (booked !== realized) throw new Error(`liquidation: booked PnL ${booked} differs from planned ${realized}`);
    }
  }
}

/** The exchange's own order closing `qty` of position `p` at `price` (a liquidation, ADL or settlement). */
function closing(
  m: FuturesMarket,
  p: SimPosition,
  qty: number,
  price: number,
  o: { type: 'LIMIT' | 'LIQUIDATION'; timeInForce: 'GTC' | 'IOC'; reduceOnly: boolean; clientOrderId: string },
): InternalOrder {
  return {
    market: m,
    side: p.size > 0 ? 'SELL' : 'BUY',
    positionSide: p.positionSide,
    type: o.type,
    origType: o.type,
    timeInForce: o.timeInForce,
    price,
    stopPrice: 0,
    qty,
    reduceOnly: o.reduceOnly,
    closePosition: false,
    clientOrderId: o.clientOrderId,
  };
}
