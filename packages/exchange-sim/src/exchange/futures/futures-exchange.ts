/**
 * The simulated USDⓈ-M futures exchange without its protocol: contracts replayed from candles
 * (MarketReplay, shared with spot), the synthetic book (shared), accounts and positions
 * (FuturesLedger), the matching engine (FuturesMatching), conditional orders (AlgoOrders),
 * funding on its schedule (FundingSchedule) and liquidation (LiquidationEngine). The mark price is
 * the last replayed price (the data has no mark-price series). No I/O and no wall clock.
 *
 * On each tick of a contract: conditional orders the path reached trigger, resting orders it
 * crossed fill, then every account holding the contract is checked for liquidation. At each
 * funding time (between ticks, in time order) every position of the contract pays or receives
 * funding at the mark, then the accounts are checked again.
 */
import { maxLeverageOf, maxNotionalAtLeverage, type PositionSide } from '@keel/core';
import { binanceError } from '../../errors.ts';
import type { SimAccountOptions, SimBar } from '../../types.ts';
import type { MarketState } from '../model.ts';
import { pricePath, TICKS_PER_BAR } from '../replay.ts';
import { ReplayExchange, type ReplayExchangeOptions } from '../replay-exchange.ts';
import type { MarkPriceInfo } from '../venue.ts';
import { AlgoOrders } from './algo-orders.ts';
import { FundingSchedule } from './funding-schedule.ts';
import { FuturesLedger, type FuturesMarket } from './ledger.ts';
import { LiquidationEngine, type LiquidationRecord } from './liquidation.ts';
import { FuturesMatching } from './matching.ts';
import type { FuturesAccountEvent, FuturesMarketSpec, MarginType } from './model.ts';

export interface FuturesExchangeOptions extends ReplayExchangeOptions {
  markets: FuturesMarketSpec[];
  accounts: SimAccountOptions[];
  /** Leverage of a symbol an account has not set (Binance: 20). */
  defaultLeverage: number;
  /** Margin type of a symbol an account has not set (Binance: CROSSED). */
  defaultMarginType: MarginType;
}

export class FuturesExchange extends ReplayExchange {
  readonly kind = 'futures' as const;
  readonly ledger: FuturesLedger;
  readonly matching: FuturesMatching;
  readonly algos: AlgoOrders;
  readonly liquidation: LiquidationEngine;
  private readonly funding: FundingSchedule;

  constructor(opts: FuturesExchangeOptions) {
    super(opts);
    const market = (id: string): FuturesMarket | undefined => this.market(id);
    const emit = (e: FuturesAccountEvent): void => this.emit(e);
    this.ledger = new FuturesLedger({ market }, { leverage: opts.defaultLeverage, marginType: opts.defaultMarginType });
    this.matching = new FuturesMatching({
      replay: this.replay,
      ledger: this.ledger,
      book: this.book,
      fees: opts.fees,
      market,
      emit,
    });
    this.algos = new AlgoOrders({ replay: this.replay, ledger: this.ledger, matching: this.matching, market, emit });
    this.liquidation = new LiquidationEngine({
      replay: this.replay,
      ledger: this.ledger,
      matching: this.matching,
      algos: this.algos,
      market,
    });
    this.funding = new FundingSchedule(new Map(opts.markets.map((m) => [m.id, m.funding])), opts.startTime);
    for (const a of opts.accounts) this.ledger.add(a);
  }

  override market(id: string): FuturesMarket | undefined {
    return this.replay.market(id) as FuturesMarket | undefined;
  }

  override nextEvent(): number {
    return Math.min(this.replay.nextEvent(), this.funding.nextTime());
  }

  /** Replays every event up to t, funding events in their place between the price ticks. */
  override advanceTo(t: number): void {
    for (;;) {
      const f = this.funding.nextTime();
      if (f > t) break;
      this.replay.advanceTo(f);
      for (const ev of this.funding.takeDue(f)) this.applyFunding(ev.symbol, ev.rate, ev.time);
    }
    this.replay.advanceTo(t);
  }

  override addAccount(a: SimAccountOptions): void {
    this.ledger.add(a);
  }

  override secretOf(apiKey: string): string | undefined {
    return this.ledger.secretOf(apiKey);
  }

  markPriceInfo(symbol: string): MarkPriceInfo | undefined {
    const m = this.market(symbol);
    if (!m) return undefined;
    const next = this.funding.next(symbol);
    return {
      markPrice: m.price,
      indexPrice: m.price,
      fundingRate: next?.rate ?? 0,
      nextFundingTime: next?.time ?? 0,
      fundingIntervalHours: next?.intervalHours ?? 8,
    };
  }

  /**
   * The replayed price of a contract at time t (the price-path tick in force then), NaN before
   * its data: the mark a past funding was charged at.
   */
  priceAt(symbol: string, t: number): number {
    const m = this.market(symbol);
    if (!m) return Number.NaN;
    let lo = 0;
    let hi = m.bars.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((m.bars[mid] as SimBar).time <= t) lo = mid + 1;
      else hi = mid;
    }
    const bar = m.bars[lo - 1];
    if (!bar) return Number.NaN;
    if (t >= bar.time + m.intervalMs) return bar.close;
    const k = Math.min(TICKS_PER_BAR - 1, Math.floor(((t - bar.time) * TICKS_PER_BAR) / m.intervalMs));
    return pricePath(bar)[k] as number;
  }

  /** Past funding events of a contract (GET /fapi/v1/fundingRate). */
  fundingHistory(symbol: string, start: number, end: number) {
    return this.funding.history(symbol, this.now(), start, end);
  }

  /**
   * Delists a contract (an admin/test hook) as Binance does: its exchangeInfo status becomes
   * SETTLING, new orders are refused (-4141 "Symbol is closed."), every account's open and
   * conditional orders in it are cancelled (reported as order and algo updates), and, unless
   * `settle` is false, every position is settled at once at `price` (LiquidationEngine.settle; a
   * later `settle` does it otherwise). Returns the settlement closes.
   */
  delist(symbol: string, opts: { price?: number; settle?: boolean } = {}): LiquidationRecord[] {
    const m = this.market(symbol);
    if (!m) throw new Error(`delist: unknown market ${symbol}`);
    if (this.matching.status(m.id) !== 'TRADING') throw new Error(`delist: ${m.id} is delisted already`);
    this.matching.delist(m.id);
    for (const apiKey of this.ledger.apiKeys()) {
      this.matching.cancelAll(apiKey, m.id);
      this.algos.cancelAll(apiKey, m.id);
    }
    return opts.settle === false ? [] : this.liquidation.settle(m.id, opts.price);
  }

  /** POST /fapi/v1/leverage: 1 to the first tier's maximum (-4028); a position must fit the new cap (-2027). */
  setLeverage(apiKey: string, symbol: string, leverage: number): { leverage: number; maxNotionalValue: number } {
    const m = this.requireMarket(symbol);
    if (!Number.isInteger(leverage) || leverage < 1 || leverage > maxLeverageOf(m.brackets))
      throw binanceError(-4028, `Leverage ${leverage} is not valid`);
    const s = this.ledger.settings(apiKey, symbol);
    const cap = maxNotionalAtLeverage(m.brackets, leverage);
    const held = this.ledger.positions(apiKey, symbol).reduce((n, p) => n + Math.abs(p.size) * m.price, 0);
    if (held > cap) throw binanceError(-2027, 'Exceeded the maximum allowable position at current leverage.');
    if (s.marginType === 'ISOLATED' && leverage < s.leverage && held > 0)
      throw binanceError(-4161, 'Leverage reduction is not supported in Isolated Margin Mode with open positions');
    s.leverage = leverage;
    this.emit({ type: 'accountConfig', apiKey, symbol, leverage });
    return { leverage, maxNotionalValue: cap };
  }

  /** POST /fapi/v1/marginType: not the same again (-4046), no position (-4048) or open order (-4047) in the symbol. */
  setMarginType(apiKey: string, symbol: string, marginType: MarginType): void {
    this.requireMarket(symbol);
    const s = this.ledger.settings(apiKey, symbol);
    if (s.marginType === marginType) throw binanceError(-4046, 'No need to change margin type.');
    if (this.matching.openOrders(apiKey, symbol).length > 0 || this.algos.openAlgos(apiKey, symbol).length > 0)
      throw binanceError(-4047, 'Margin type cannot be changed if there exists open orders.');
    if (this.ledger.positions(apiKey, symbol).some((p) => p.size !== 0))
      throw binanceError(-4048, 'Margin type cannot be changed if there exists position.');
    s.marginType = marginType;
  }

  /** POST /fapi/v1/positionSide/dual: not the same again (-4059), no open order (-4067) or position (-4068) anywhere. */
  setPositionMode(apiKey: string, dualSide: boolean): void {
    if (this.ledger.dualSide(apiKey) === dualSide) throw binanceError(-4059, 'No need to change position side.');
    if (this.matching.openOrders(apiKey).length > 0 || this.algos.openAlgos(apiKey).length > 0)
      throw binanceError(-4067, 'Position side cannot be changed if there exists open orders.');
    if (this.ledger.positions(apiKey).some((p) => p.size !== 0))
      throw binanceError(-4068, 'Position side cannot be changed if there exists position.');
    this.ledger.setDualSide(apiKey, dualSide);
  }

  /** POST /fapi/v1/positionMargin: adds (type 1) or removes (type 2) isolated margin. */
  modifyIsolatedMargin(apiKey: string, symbol: string, side: PositionSide, amount: number, add: boolean): void {
    const m = this.requireMarket(symbol);
    const s = this.ledger.settings(apiKey, symbol);
    const pos = this.ledger.position(apiKey, symbol, side);
    if (s.marginType !== 'ISOLATED' || pos.size === 0) throw binanceError(-4051, 'Isolated balance insufficient.');
    const view = this.ledger.view(apiKey, this.matching.openOrders(apiKey));
    if (add) {
      const available = view.assets.find((a) => a.asset === m.quote)?.availableBalance ?? 0;
      if (amount > available) throw binanceError(-2019, 'Margin is insufficient.');
    } else {
      const pv = view.positions.find((p) => p.position === pos);
      const removable = pos.isolatedWallet + Math.min(0, pv?.unrealizedProfit ?? 0) - (pv?.initialMargin ?? 0);
      if (amount > removable) throw binanceError(-4051, 'Isolated balance insufficient.');
    }
    this.ledger.adjustIsolatedMargin(apiKey, symbol, side, add ? amount : -amount);
    this.emit({ type: 'accountUpdate', apiKey, reason: 'ADJUSTMENT', balanceChanges: {}, positions: [{ ...pos }] });
    this.liquidation.check(m);
  }

  private requireMarket(symbol: string): FuturesMarket {
    const m = this.market(symbol);
    if (!m) throw binanceError(-1121, 'Invalid symbol.');
    return m;
  }

  protected override onPriceMove(market: MarketState, from: number, to: number, withinBar: boolean): void {
    const m = market as FuturesMarket;
    this.algos.onPriceMove(m, from, to, withinBar);
    this.matching.expireDue(m, this.now());
    this.matching.onPriceMove(m, from, to);
    this.liquidation.check(m);
  }

  private applyFunding(symbol: string, rate: number, time: number): void {
    const m = this.market(symbol);
    if (!m || !Number.isFinite(m.price)) return;
    for (const apiKey of this.ledger.apiKeys()) {
      const { positions, total } = this.ledger.applyFunding(apiKey, m, rate, m.price, time);
      if (positions.length === 0) continue;
      // Binance: a cross position's funding is reported with the balance only, an isolated one
      // with its position too.
      const isolated = this.ledger.settings(apiKey, symbol).marginType === 'ISOLATED';
      this.emit({
        type: 'accountUpdate',
        apiKey,
        reason: 'FUNDING_FEE',
        balanceChanges: { [m.quote]: total },
        positions: isolated ? positions.map((p) => ({ ...p })) : [],
      });
    }
    this.liquidation.check(m);
  }
}
