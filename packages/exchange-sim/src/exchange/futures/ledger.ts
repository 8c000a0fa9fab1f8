/**
 * Futures accounts: the USDT wallet, per-symbol leverage and margin type, the position mode,
 * positions with their isolated margin, fills settled into realised PnL and commission, funding
 * payments, and the account view (margin balance, maintenance, available balance, liquidation
 * prices) computed with core's formulas. Amounts are rounded to 8 decimals as Binance keeps them.
 *
 * Conventions (docs/futures.md): opening an isolated position moves fill notional / leverage from
 * the cross wallet into the position's isolated wallet; reducing releases the same share of it;
 * realised PnL, commissions and liquidation fees are booked to the wallet (funding of an isolated
 * position to its isolated wallet too). The wallet balance includes the isolated wallets; the
 * cross wallet is the wallet minus them.
 */
import {
  applyPositionFill,
  availableBalance,
  fundingPayment,
  initialMargin,
  liquidationInputs,
  liquidationPrice,
  maintenanceMargin,
  maxNotionalAtLeverage,
  type PositionSide,
  positionNotional,
  reducingQty,
  unrealizedPnl,
} from '@keel/core';
import { decimalsOf, roundAssetAmount, roundTo } from '../../num.ts';
import type { SimAccountOptions } from '../../types.ts';
import type { MarketState } from '../model.ts';
import {
  type FuturesMarketSpec,
  type FuturesTrade,
  type IncomeRecord,
  type IncomeType,
  type MarginType,
  positionKey,
  type SimFuturesOrder,
  type SimPosition,
} from './model.ts';

/** A futures market as replayed: the replay state plus the contract's margin rules. */
export type FuturesMarket = MarketState & FuturesMarketSpec;

export interface SymbolSettings {
  leverage: number;
  marginType: MarginType;
}

interface Account {
  apiKey: string;
  secret: string;
  wallet: Map<string, number>;
  dualSide: boolean;
  settings: Map<string, SymbolSettings>;
  positions: Map<string, SimPosition>;
  trades: FuturesTrade[];
  income: IncomeRecord[];
  updateTime: number;
}

/** A position with everything the account endpoints and events report about it. */
export interface PositionView {
  position: SimPosition;
  markPrice: number;
  /** Signed notional at the mark (negative for shorts, as Binance reports it). */
  notional: number;
  unrealizedProfit: number;
  initialMargin: number;
  maintMargin: number;
  leverage: number;
  marginType: MarginType;
  /** 0 when none (Binance's convention). */
  liquidationPrice: number;
  maxNotional: number;
  /** Initial margin held by open orders that would open or grow this position side. */
  openOrderInitialMargin: number;
}

/** One settlement asset of an account, as /fapi/v3/account lists it. */
export interface AssetView {
  asset: string;
  walletBalance: number;
  unrealizedProfit: number;
  marginBalance: number;
  maintMargin: number;
  initialMargin: number;
  positionInitialMargin: number;
  openOrderInitialMargin: number;
  crossWalletBalance: number;
  crossUnPnl: number;
  availableBalance: number;
  updateTime: number;
}

export interface AccountView {
  assets: AssetView[];
  positions: PositionView[];
}

/** What the account view needs from outside the ledger. */
export interface MarketLookup {
  market(id: string): FuturesMarket | undefined;
}

export interface LedgerDefaults {
  leverage: number;
  marginType: MarginType;
}

export class FuturesLedger {
  private readonly accounts = new Map<string, Account>();
  private nextTranId = 9_000_001;

  constructor(
    private readonly markets: MarketLookup,
    private readonly defaults: LedgerDefaults,
  ) {}

  add(a: SimAccountOptions): void {
    if (a.payFeesWithBnb === true)
      throw new Error(
        `account ${a.apiKey}: payFeesWithBnb is a spot setting; the USD-M simulator charges every commission in USDT (no BNB fee discount)`,
      );
    if (this.accounts.has(a.apiKey)) throw new Error(`account with apiKey ${a.apiKey} already exists`);
    const wallet = new Map<string, number>();
    for (const [asset, amount] of Object.entries(a.balances)) wallet.set(asset, amount);
    this.accounts.set(a.apiKey, {
      apiKey: a.apiKey,
      secret: a.secret,
      wallet,
      dualSide: false,
      settings: new Map(),
      positions: new Map(),
      trades: [],
      income: [],
      updateTime: 0,
    });
  }

  has(apiKey: string): boolean {
    return this.accounts.has(apiKey);
  }

  secretOf(apiKey: string): string | undefined {
    return this.accounts.get(apiKey)?.secret;
  }

  apiKeys(): string[] {
    return [...this.accounts.keys()];
  }

  walletBalance(apiKey: string, asset: string): number {
    return this.account(apiKey).wallet.get(asset) ?? 0;
  }

  dualSide(apiKey: string): boolean {
    return this.account(apiKey).dualSide;
  }

  setDualSide(apiKey: string, dual: boolean): void {
    this.account(apiKey).dualSide = dual;
  }

  settings(apiKey: string, symbol: string): SymbolSettings {
    const acc = this.account(apiKey);
    let s = acc.settings.get(symbol);
    if (!s) {
      s = { leverage: this.defaults.leverage, marginType: this.defaults.marginType };
      acc.settings.set(symbol, s);
    }
    return s;
  }

  /** The position of one side (created flat on first use). */
  position(apiKey: string, symbol: string, side: PositionSide): SimPosition {
    const acc = this.account(apiKey);
    const key = positionKey(symbol, side);
    let p = acc.positions.get(key);
    if (!p) {
      p = {
        symbol,
        positionSide: side,
        size: 0,
        entryPrice: 0,
        isolatedWallet: 0,
        accumulatedRealized: 0,
        updateTime: 0,
      };
      acc.positions.set(key, p);
    }
    return p;
  }

  /** The account's positions (live objects), optionally of one symbol; flat ones included. */
  positions(apiKey: string, symbol?: string): SimPosition[] {
    return [...this.account(apiKey).positions.values()].filter((p) => symbol === undefined || p.symbol === symbol);
  }

  /** The sides an account's symbol has in its position mode. */
  sidesOf(apiKey: string): readonly PositionSide[] {
    return this.account(apiKey).dualSide ? ['LONG', 'SHORT'] : ['BOTH'];
  }

  trades(apiKey: string, symbol: string): FuturesTrade[] {
    return this.account(apiKey).trades.filter((t) => t.symbol === symbol);
  }

  income(apiKey: string): IncomeRecord[] {
    return this.account(apiKey).income;
  }

  /**
   * Settles one fill of signed `qty` at `price` into a position: size and entry (core's
   * applyPositionFill), isolated margin moved in or released, realised PnL and commission booked
   * to the wallet. Returns the realised PnL.
   */
  settleFill(
    apiKey: string,
    m: FuturesMarket,
    side: PositionSide,
    qty: number,
    price: number,
    commission: number,
    time: number,
    tradeId: number,
    commissionIncome: 'COMMISSION' | 'INSURANCE_CLEAR' = 'COMMISSION',
  ): number {
    const acc = this.account(apiKey);
    const pos = this.position(apiKey, m.id, side);
    const s = this.settings(apiKey, m.id);
    const before = pos.size;
    const closing = reducingQty(before, qty);
    if (s.marginType === 'ISOLATED') {
      const released = before === 0 ? 0 : (pos.isolatedWallet * closing) / Math.abs(before);
      const opening = Math.abs(qty) - closing;
      pos.isolatedWallet = roundAssetAmount(
        pos.isolatedWallet - released + initialMargin(positionNotional(opening, price, m.contractSize), s.leverage),
      );
    }
    const realized = roundAssetAmount(applyPositionFill(pos, qty, price, m.contractSize));
    pos.size = roundTo(pos.size, decimalsOf(m.stepSize));
    if (pos.size === 0) {
      pos.entryPrice = 0;
      // What is left of an isolated wallet after the realised loss goes back to the cross wallet.
      pos.isolatedWallet = 0;
    }
    pos.accumulatedRealized = roundAssetAmount(pos.accumulatedRealized + realized);
    pos.updateTime = time;
    this.credit(acc, m.quote, realized - commission, time);
    if (realized !== 0) this.book(acc, m.id, 'REALIZED_PNL', realized, m.quote, time, String(tradeId));
    if (commission !== 0) this.book(acc, m.id, commissionIncome, -commission, m.quote, time, String(tradeId));
    return realized;
  }

  /**
   * Applies one funding event to the account's positions in the market (core's fundingPayment at
   * the mark); returns the positions charged and the total paid (< 0) or received (> 0).
   */
  applyFunding(
    apiKey: string,
    m: FuturesMarket,
    rate: number,
    markPrice: number,
    time: number,
  ): { positions: SimPosition[]; total: number } {
    const acc = this.account(apiKey);
    const charged: SimPosition[] = [];
    let total = 0;
    for (const pos of this.positions(apiKey, m.id)) {
      if (pos.size === 0) continue;
      const pay = roundAssetAmount(fundingPayment(pos.size, markPrice, rate, m.contractSize));
      if (pay === 0) continue;
      if (this.settings(apiKey, m.id).marginType === 'ISOLATED')
        pos.isolatedWallet = roundAssetAmount(pos.isolatedWallet + pay);
      this.credit(acc, m.quote, pay, time);
      this.book(acc, m.id, 'FUNDING_FEE', pay, m.quote, time);
      charged.push(pos);
      total += pay;
    }
    return { positions: charged, total: roundAssetAmount(total) };
  }

  /** Moves margin into (> 0) or out of (< 0) an isolated position (POST /fapi/v1/positionMargin). */
  adjustIsolatedMargin(apiKey: string, symbol: string, side: PositionSide, amount: number): void {
    const pos = this.position(apiKey, symbol, side);
    pos.isolatedWallet = roundAssetAmount(pos.isolatedWallet + amount);
  }

  /**
   * The account seen at the markets' current prices (the mark price is the last price): every
   * asset's balances and margins and every open position's margins and liquidation price.
   */
  view(apiKey: string, openOrders: readonly SimFuturesOrder[]): AccountView {
    const acc = this.account(apiKey);
    // An open order's position side exists (flat) so that its margin has a place to go.
    for (const o of openOrders) this.position(apiKey, o.symbol, o.positionSide);
    const positions: PositionView[] = [];
    const byAsset = new Map<string, InternalAsset>();
    for (const [asset, wallet] of acc.wallet) byAsset.set(asset, emptyAsset(asset, wallet, acc.updateTime));
    for (const pos of acc.positions.values()) {
      const m = this.markets.market(pos.symbol);
      if (!m) continue;
      const s = this.settings(apiKey, pos.symbol);
      const mark = m.price;
      const notional = positionNotional(pos.size, mark, m.contractSize);
      positions.push({
        position: pos,
        markPrice: mark,
        notional: Math.sign(pos.size) * notional,
        unrealizedProfit: unrealizedPnl(pos.size, pos.entryPrice, mark, m.contractSize),
        initialMargin: initialMargin(notional, s.leverage),
        maintMargin: maintenanceMargin(notional, m.brackets),
        leverage: s.leverage,
        marginType: s.marginType,
        liquidationPrice: 0,
        maxNotional: maxNotionalAtLeverage(m.brackets, s.leverage),
        openOrderInitialMargin: 0,
      });
    }
    for (const o of openOrders) {
      const m = this.markets.market(o.symbol);
      const pv = positions.find((x) => x.position.symbol === o.symbol && x.position.positionSide === o.positionSide);
      if (!m || !pv || o.reduceOnly || o.closePosition) continue;
      const remaining = o.origQty - o.executedQty;
      const signed = o.side === 'BUY' ? remaining : -remaining;
      const opening = Math.abs(signed) - reducingQty(pv.position.size, signed);
      pv.openOrderInitialMargin += initialMargin(
        positionNotional(opening, o.price > 0 ? o.price : m.price, m.contractSize),
        pv.leverage,
      );
    }
    for (const pv of positions) {
      const m = this.markets.market(pv.position.symbol) as FuturesMarket;
      const a = assetOf(byAsset, m.quote, acc.updateTime);
      a.unrealizedProfit += pv.unrealizedProfit;
      a.maintMargin += pv.maintMargin;
      a.openOrderInitialMargin += pv.openOrderInitialMargin;
      a.positionInitialMargin += pv.initialMargin;
      if (pv.marginType === 'ISOLATED') {
        a.isolatedWallets += pv.position.isolatedWallet;
      } else {
        a.crossUnPnl += pv.unrealizedProfit;
        a.crossPositionInitialMargin += pv.initialMargin;
      }
    }
    for (const a of byAsset.values()) {
      a.crossWalletBalance = a.walletBalance - a.isolatedWallets;
      a.marginBalance = a.walletBalance + a.unrealizedProfit;
      a.initialMargin = a.positionInitialMargin + a.openOrderInitialMargin;
      a.availableBalance = availableBalance(
        a.crossWalletBalance,
        a.crossUnPnl,
        a.crossPositionInitialMargin,
        a.openOrderInitialMargin,
      );
    }
    for (const pv of positions) pv.liquidationPrice = this.liquidationPriceOf(pv, positions, byAsset);
    return { assets: [...byAsset.values()].map(publicAsset), positions };
  }

  /**
   * Binance's liquidation price of a position (core's liquidationPrice): isolated on its own
   * wallet; cross on the cross wallet with every other cross contract's maintenance margin and
   * unrealised PnL, the symbol's LONG and SHORT together in hedge mode.
   */
  private liquidationPriceOf(
    pv: PositionView,
    all: readonly PositionView[],
    assets: Map<string, InternalAsset>,
  ): number {
    const pos = pv.position;
    if (pos.size === 0) return 0;
    const m = this.markets.market(pos.symbol) as FuturesMarket;
    const x = liquidationInputs();
    const place = (p: SimPosition): void => {
      if (p.positionSide === 'BOTH') {
        x.bothSize = p.size;
        x.bothEntry = p.entryPrice;
      } else if (p.positionSide === 'LONG') {
        x.longSize = p.size;
        x.longEntry = p.entryPrice;
      } else {
        x.shortSize = -p.size;
        x.shortEntry = p.entryPrice;
      }
    };
    if (pv.marginType === 'ISOLATED') {
      x.walletBalance = pos.isolatedWallet;
      place(pos);
    } else {
      x.walletBalance = assets.get(m.quote)?.crossWalletBalance ?? 0;
      for (const other of all) {
        if (other.marginType !== 'CROSSED' || other.position.size === 0) continue;
        if (other.position.symbol === pos.symbol) place(other.position);
        else {
          x.otherMaintenance += other.maintMargin;
          x.otherUnrealizedPnl += other.unrealizedProfit;
        }
      }
    }
    return liquidationPrice(x, m.brackets);
  }

  private credit(acc: Account, asset: string, amount: number, time: number): void {
    acc.wallet.set(asset, roundAssetAmount((acc.wallet.get(asset) ?? 0) + amount));
    acc.updateTime = time;
  }

  private book(
    acc: Account,
    symbol: string,
    type: IncomeType,
    income: number,
    asset: string,
    time: number,
    tradeId = '',
  ): void {
    const tranId = this.nextTranId++;
    acc.income.push({ tranId, symbol, incomeType: type, income, asset, time, tradeId, info: '' });
  }

  recordTrade(apiKey: string, t: FuturesTrade): void {
    this.account(apiKey).trades.push(t);
  }

  private account(apiKey: string): Account {
    const acc = this.accounts.get(apiKey);
    if (!acc) throw new Error(`no account with apiKey ${apiKey}`);
    return acc;
  }
}

interface InternalAsset extends AssetView {
  crossPositionInitialMargin: number;
  isolatedWallets: number;
}

function emptyAsset(asset: string, wallet: number, updateTime: number): InternalAsset {
  return {
    asset,
    walletBalance: wallet,
    unrealizedProfit: 0,
    marginBalance: wallet,
    maintMargin: 0,
    initialMargin: 0,
    positionInitialMargin: 0,
    openOrderInitialMargin: 0,
    crossWalletBalance: wallet,
    crossUnPnl: 0,
    availableBalance: wallet,
    updateTime,
    crossPositionInitialMargin: 0,
    isolatedWallets: 0,
  };
}

function assetOf(byAsset: Map<string, InternalAsset>, asset: string, updateTime: number): InternalAsset {
  let a = byAsset.get(asset);
  if (!a) {
    a = emptyAsset(asset, 0, updateTime);
    byAsset.set(asset, a);
  }
  return a;
}

function publicAsset(a: InternalAsset): AssetView {
  const { crossPositionInitialMargin: _cross, isolatedWallets: _isolated, ...rest } = a;
  return rest;
}
