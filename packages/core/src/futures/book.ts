/**
 * The engine's futures book: what a USDⓈ-M account adds to the spot books of `Account` when the
 * engine simulates the exchange (backtest). The Account stays the wallet (its cash is the USDT
 * wallet balance: realised PnL and commissions) and holds each symbol's signed position and
 * entry; this book adds per-symbol leverage and margin mode, isolated wallets, the mark price,
 * funding on the series' schedule, the margin check of an opening order, and liquidation. Every
 * number comes from the formulas beside it (docs/futures.md); the order of one bar is the one
 * written there: fills (the venue), funding, mark-to-market, liquidation.
 *
 * Positions are one-way (one signed position per symbol): the engine's strategy API has no
 * position side. Hedge mode is the simulator's and the live exchange's (docs/futures.md).
 */
import type { Bar, BarSeries } from '../model/bar.ts';
import { type Instrument, roundToStep } from '../model/instrument.ts';
import { isoUtc } from '../model/timeframe.ts';
import type { Account, Position } from '../portfolio/account.ts';
import { DEFAULT_USDM_BRACKETS, maxLeverageOf, maxNotionalAtLeverage, type NotionalBracket } from './brackets.ts';
import { type FundingRateSeries, fundingGaps, fundingPayment } from './funding.ts';
import { liquidationClearanceFee, liquidationInputs, liquidationPrice } from './liquidation.ts';
import {
  availableBalance,
  initialMargin,
  isLiquidatable,
  type MarginMode,
  maintenanceMargin,
  positionNotional,
  unrealizedPnl,
} from './margin.ts';
import { reducingQty } from './position.ts';

/** Binance's USDⓈ-M clearance rate for most contracts (exchangeInfo `liquidationFee` 0.012500). */
export const DEFAULT_LIQUIDATION_FEE = 0.0125;

/** How one perpetual market is traded: leverage, margin mode, its rules, its funding and mark. */
export interface FuturesMarketSettings {
  /** 1 to the brackets' highest leverage. */
  readonly leverage: number;
  readonly marginMode: MarginMode;
  /** Notional tiers; default `DEFAULT_USDM_BRACKETS`. */
  readonly brackets?: readonly NotionalBracket[];
  /** Liquidation clearance rate; default `DEFAULT_LIQUIDATION_FEE`. */
  readonly clearanceRate?: number;
  /**
   * Funding rates to charge. `null` says deliberately none (every slot of the run is then a
   * warning, never a silent zero).
   */
  readonly funding: FundingRateSeries | null;
  /** Where the funding came from, for warnings ("binance-...fundingRate_2023-02.csv.gz"). */
  readonly fundingSource?: string;
  /**
   * Mark-price bars (Binance's markPriceKlines) on the same times as the traded bars. Without it
   * the mark is the traded price (docs/futures.md): the bar's open at funding, its low (a long) or
   * high (a short) for liquidation, its close for unrealised PnL.
   */
  readonly mark?: BarSeries;
  /** Where the mark bars came from, for the summary ("markPriceKlines-...csv"). */
  readonly markSource?: string;
}

/** A funding payment charged to a position. */
export interface FundingRecord {
  readonly symbol: string;
  /** The exchange's funding time. */
  readonly time: number;
  readonly rate: number;
  readonly markPrice: number;
  /** The position it was charged on (signed). */
  readonly size: number;
  /** Cash flow to the account: > 0 received, < 0 paid. */
  readonly payment: number;
}

/** A forced close. */
export interface LiquidationRecord {
  readonly symbol: string;
  /** Close time of the bar in which the mark crossed the liquidation price. */
  readonly time: number;
  readonly marginMode: MarginMode;
  /** The position closed (signed) and its entry. */
  readonly size: number;
  readonly entryPrice: number;
  /** Binance's liquidation price before rounding; the close is at `price` (on the tick). */
  readonly liquidationPrice: number;
  readonly price: number;
  readonly realizedPnl: number;
  /** The clearance fee (not a trading fee): rate x notional, capped by the margin left. */
  readonly clearanceFee: number;
}

/**
 * What a restarted bot needs of the book that its Account and store do not hold: the isolated
 * wallets and the warning counters (funding and liquidations are journaled as events).
 */
export interface FuturesBookState {
  readonly v: 1;
  readonly isolatedWallets: Readonly<Record<string, number>>;
  readonly lateFunding: number;
  readonly missingMark: number;
  readonly negativeWallet: number;
}

/** What a run's futures side did, for the result and its summary. */
export interface FuturesSummary {
  readonly markets: readonly {
    readonly symbol: string;
    readonly leverage: number;
    readonly marginMode: MarginMode;
    readonly funding: string;
    /** The isolated wallet at the end (0 in cross margin or flat). */
    readonly isolatedWallet: number;
    /** Where the mark came from, when a mark-price series was given (else the mark is the last price). */
    readonly mark?: string;
  }[];
  /** Net funding: > 0 received, < 0 paid. */
  readonly funding: number;
  readonly fundingPaid: number;
  readonly fundingReceived: number;
  readonly fundingEvents: number;
  /** Every funding payment, in time order. */
  readonly payments: readonly FundingRecord[];
  readonly liquidations: readonly LiquidationRecord[];
  readonly liquidationFees: number;
  /** Missing funding data, funding charged late (no bar at its time), a missing mark bar... */
  readonly warnings: readonly string[];
}

interface Market {
  readonly inst: Instrument;
  readonly leverage: number;
  readonly marginMode: MarginMode;
  readonly brackets: readonly NotionalBracket[];
  readonly clearanceRate: number;
  readonly funding: FundingRateSeries | null;
  readonly fundingSource: string;
  readonly mark: BarSeries | undefined;
  readonly markSource: string;
  /** Next funding event to charge. */
  fundingCursor: number;
  /** The mark bar at or before the traded bar. */
  markCursor: number;
  /** The isolated wallet (Binance's `isolatedWallet`); 0 in cross margin. */
  isolatedWallet: number;
  position: Position;
  /** Mark price now (the bar's close or the mark bar's close). */
  mark_: number;
  /** First bar seen: funding before it is history. */
  started: boolean;
  firstTime: number;
  lastTime: number;
}

/**
 * The futures side of an account in the engine. `beforeFill` with each fill of a perpetual (the
 * engine calls it just before `Account.applyFill`), `onBar` with each bar after the venue has
 * matched it; `marginCheck` is the simulated venue's check of an order on arrival.
 */
export class FuturesBook {
  private readonly markets = new Map<string, Market>();
  private readonly list: Market[] = [];
  private last: Market | undefined;
  private readonly x = liquidationInputs();
  readonly funding: FundingRecord[] = [];
  readonly liquidations: LiquidationRecord[] = [];
  private readonly warnings: string[] = [];
  private lateFunding = 0;
  private missingMark = 0;
  private negativeWallet = 0;

  constructor(
    private readonly account: Account,
    instruments: readonly Instrument[],
    settings: (inst: Instrument) => FuturesMarketSettings,
  ) {
    for (const inst of instruments) {
      if (inst.kind !== 'perpetual') continue;
      const s = settings(inst);
      const brackets = s.brackets ?? DEFAULT_USDM_BRACKETS;
      const maxLev = maxLeverageOf(brackets);
      if (!(Number.isFinite(s.leverage) && s.leverage >= 1 && s.leverage <= maxLev))
        throw new Error(`${inst.symbol}: leverage ${s.leverage} must be between 1 and ${maxLev} (its brackets)`);
      const clearanceRate = s.clearanceRate ?? DEFAULT_LIQUIDATION_FEE;
      if (!(clearanceRate >= 0 && clearanceRate < 1))
        throw new Error(`${inst.symbol}: liquidation clearance rate ${clearanceRate} must be in [0, 1)`);
      const position = account.position(inst);
      position.leverage = s.leverage;
      const m: Market = {
        inst,
        leverage: s.leverage,
        marginMode: s.marginMode,
        brackets,
        clearanceRate,
        funding: s.funding,
        fundingSource: s.fundingSource ?? (s.funding === null ? 'none given' : 'the funding series given'),
        mark: s.mark,
        markSource: s.markSource ?? 'the mark series given',
        fundingCursor: 0,
        markCursor: 0,
        isolatedWallet: 0,
        position,
        mark_: Number.NaN,
        started: false,
        firstTime: Number.NaN,
        lastTime: Number.NaN,
      };
      this.markets.set(inst.symbol, m);
      this.list.push(m);
    }
  }

  /** The state to save with each handled bar (see FuturesBookState). */
  snapshot(): FuturesBookState {
    const isolatedWallets: Record<string, number> = {};
    for (const m of this.list) if (m.isolatedWallet !== 0) isolatedWallets[m.inst.symbol] = m.isolatedWallet;
    return {
      v: 1,
      isolatedWallets,
      lateFunding: this.lateFunding,
      missingMark: this.missingMark,
      negativeWallet: this.negativeWallet,
    };
  }

  /** Takes a saved state back (a restarted bot, before its first bar). */
  restore(s: FuturesBookState): void {
    if (s.v !== 1) throw new Error(`futures book state version ${String(s.v)} is not 1`);
    for (const m of this.list) m.isolatedWallet = s.isolatedWallets[m.inst.symbol] ?? 0;
    this.lateFunding = s.lateFunding;
    this.missingMark = s.missingMark;
    this.negativeWallet = s.negativeWallet;
  }

  /** The leverage of a perpetual market, 1 for any other. */
  leverage(symbol: string): number {
    return this.markets.get(symbol)?.leverage ?? 1;
  }

  /** The isolated wallet of a market's position (0 in cross margin or flat). */
  isolatedWallet(symbol: string): number {
    return this.markets.get(symbol)?.isolatedWallet ?? 0;
  }

  /** The cross wallet: the wallet balance less every isolated wallet. */
  crossWallet(): number {
    let w = this.account.cash;
    for (const m of this.list) w -= m.isolatedWallet;
    return w;
  }

  /** The mark price of a market now (NaN before its first bar). */
  markPrice(symbol: string): number {
    return this.markets.get(symbol)?.mark_ ?? Number.NaN;
  }

  /**
   * Margin balance of a position (isolated: its wallet + its unrealised PnL) or of the cross
   * account (cross wallet + every cross position's unrealised PnL), at the marks now.
   */
  marginBalance(symbol: string): number {
    const m = this.markets.get(symbol);
    if (m === undefined) return Number.NaN;
    const p = m.position;
    if (m.marginMode === 'isolated') return m.isolatedWallet + unrealizedPnl(p.size, entry(p), m.mark_);
    let b = this.crossWallet();
    for (const o of this.list)
      if (o.marginMode === 'cross') b += unrealizedPnl(o.position.size, entry(o.position), o.mark_);
    return b;
  }

  /** Maintenance margin against `marginBalance(symbol)`: the position's, or every cross position's. */
  maintenance(symbol: string): number {
    const m = this.markets.get(symbol);
    if (m === undefined) return Number.NaN;
    if (m.marginMode === 'isolated') return maintenanceMargin(positionNotional(m.position.size, m.mark_), m.brackets);
    let mm = 0;
    for (const o of this.list)
      if (o.marginMode === 'cross') mm += maintenanceMargin(positionNotional(o.position.size, o.mark_), o.brackets);
    return mm;
  }

  /** Binance's liquidation price of the market's position at the marks now (0: none). */
  liquidationPrice(symbol: string): number {
    const m = this.markets.get(symbol);
    return m === undefined ? 0 : this.lp(m);
  }

  /**
   * An order on arrival (simulated venue): the initial margin of what it opens, at `price`, with
   * its taker fee, must fit in the available balance, and the position after it must stay within
   * the notional the leverage allows. Reducing orders always pass. A reason, or null.
   */
  marginCheck(symbol: string, side: 'buy' | 'sell', amount: number, price: number, fee: number): string | null {
    const m = this.markets.get(symbol);
    if (m === undefined || !(price > 0)) return null;
    const size = m.position.size;
    const qty = side === 'buy' ? amount : -amount;
    const opening = amount - reducingQty(size, qty);
    if (opening <= 0) return null;
    const after = Math.abs(size + qty);
    const cap = maxNotionalAtLeverage(m.brackets, m.leverage);
    const c = m.inst.contractSize;
    if (positionNotional(after, price, c) > cap)
      return `position of ${after} ${m.inst.base} at ${price} exceeds the ${cap} ${m.inst.quote} notional allowed at ${m.leverage}x`;
    const need = initialMargin(positionNotional(opening, price, c), m.leverage) + fee;
    let crossUpnl = 0;
    let crossIm = 0;
    for (const o of this.list) {
      if (o.marginMode !== 'cross' || o.position.size === 0) continue;
      const mark = Number.isNaN(o.mark_) ? o.position.lastPrice : o.mark_;
      crossUpnl += unrealizedPnl(o.position.size, entry(o.position), mark, o.inst.contractSize);
      // A reversing order closes this position first: only what stays of it holds margin.
      const held = o === m ? Math.abs(size) - (amount - opening) : o.position.size;
      crossIm += initialMargin(positionNotional(held, mark, o.inst.contractSize), o.leverage);
    }
    // An isolated position being reversed releases its isolated wallet and its PnL at the price.
    const released =
      m.marginMode === 'isolated' && amount > opening
        ? m.isolatedWallet + unrealizedPnl(size, entry(m.position), price, c)
        : 0;
    const avail = availableBalance(this.crossWallet() + released, crossUpnl, crossIm, 0);
    if (need > avail)
      return `insufficient margin: opening ${opening} ${m.inst.base} at ${price} and ${m.leverage}x needs ${need} ${m.inst.quote} (initial margin and fee), ${avail} available`;
    return null;
  }

  /**
   * Before a fill of `qty` (signed) at `price` is applied to the Account: an isolated position's
   * wallet releases the share being closed and takes `opening notional / leverage` from the cross
   * wallet (what the simulator does, docs/futures.md). Cross positions need nothing here.
   */
  beforeFill(symbol: string, qty: number, price: number): void {
    const m = this.market(symbol);
    if (m === undefined || m.marginMode !== 'isolated') return;
    const before = m.position.size;
    const closing = reducingQty(before, qty);
    const released = before === 0 ? 0 : (m.isolatedWallet * closing) / Math.abs(before);
    const opening = Math.abs(qty) - closing;
    m.isolatedWallet =
      m.isolatedWallet - released + initialMargin(positionNotional(opening, price, m.inst.contractSize), m.leverage);
    // Flat: what is left of the isolated wallet returns to the cross wallet (it is in the wallet).
    if (Math.abs(qty) === closing && closing === Math.abs(before)) m.isolatedWallet = 0;
  }

  /**
   * One closed bar of a perpetual, after the venue matched it: funding due in it, the mark, then
   * the liquidation test on the bar's adverse extreme. Returns the liquidation, or null.
   */
  onBar(symbol: string, bar: Bar, closeTime: number): LiquidationRecord | null {
    const m = this.market(symbol);
    if (m === undefined) return null;
    const t = bar.time;
    if (!m.started) {
      m.started = true;
      m.firstTime = t;
      // Funding before the first bar's open was paid before the run began.
      if (m.funding !== null) m.fundingCursor = firstAtOrAfter(m.funding, t);
    }
    m.lastTime = closeTime;
    let open = bar.open;
    let low = bar.low;
    let high = bar.high;
    let close = bar.close;
    const mk = m.mark;
    if (mk !== undefined) {
      let j = m.markCursor;
      while (j < mk.length && (mk.time[j] as number) < t) j++;
      m.markCursor = j;
      if (j < mk.length && (mk.time[j] as number) === t) {
        open = mk.open[j] as number;
        low = mk.low[j] as number;
        high = mk.high[j] as number;
        close = mk.close[j] as number;
      } else this.missingMark++;
    }
    const f = m.funding;
    if (f !== null) {
      let i = m.fundingCursor;
      while (i < f.length && (f.time[i] as number) < closeTime) {
        const ft = f.time[i] as number;
        // A funding time in a gap of the data is charged at the next bar's open, and counted.
        if (ft < t) this.lateFunding++;
        this.charge(m, ft, f.rate[i] as number, open);
        i++;
      }
      m.fundingCursor = i;
    }
    m.mark_ = close;
    m.position.lastPrice = close;
    const p = m.position;
    if (p.size === 0) return null;
    const extreme = p.size > 0 ? low : high;
    if (!this.liquidatableAt(m, extreme)) return null;
    return this.liquidate(m, extreme, closeTime);
  }

  /** Funding's warnings and the run's own, for the summary; `from`/`to` bound the funding check. */
  summary(): FuturesSummary {
    const warnings = [...this.warnings];
    let paid = 0;
    let received = 0;
    for (const r of this.funding) {
      if (r.payment < 0) paid -= r.payment;
      else received += r.payment;
    }
    for (const m of this.list) {
      if (!m.started) continue;
      const gaps = m.funding === null ? null : fundingGaps(m.funding, m.firstTime, m.lastTime - 1);
      if (m.funding === null)
        warnings.push(`${m.inst.symbol}: no funding data: funding was not charged (pass a funding file or a rate)`);
      else
        for (const g of gaps ?? [])
          warnings.push(
            `${m.inst.symbol}: no funding data for ${g.missing} funding time(s) between ${isoUtc(g.after)} and ${isoUtc(g.before)} (${m.fundingSource}); none was charged there`,
          );
    }
    if (this.lateFunding > 0)
      warnings.push(
        `${this.lateFunding} funding event(s) fell in a gap of the bars and were charged at the next bar's open`,
      );
    if (this.missingMark > 0)
      warnings.push(`${this.missingMark} bar(s) had no mark-price bar: the traded price was the mark there`);
    if (this.negativeWallet > 0) warnings.push(`the wallet balance went below zero ${this.negativeWallet} time(s)`);
    let liquidationFees = 0;
    for (const l of this.liquidations) liquidationFees += l.clearanceFee;
    return {
      markets: this.list.map((m) => ({
        symbol: m.inst.symbol,
        leverage: m.leverage,
        marginMode: m.marginMode,
        funding: m.fundingSource,
        isolatedWallet: m.isolatedWallet,
        ...(m.mark !== undefined ? { mark: m.markSource } : {}),
      })),
      funding: received - paid,
      fundingPaid: paid,
      fundingReceived: received,
      fundingEvents: this.funding.length,
      payments: this.funding,
      liquidations: this.liquidations,
      liquidationFees,
      warnings,
    };
  }

  private market(symbol: string): Market | undefined {
    const l = this.last;
    if (l !== undefined && l.inst.symbol === symbol) return l;
    const m = this.markets.get(symbol);
    if (m !== undefined) this.last = m;
    return m;
  }

  private charge(m: Market, time: number, rate: number, mark: number): void {
    const p = m.position;
    if (p.size === 0) return;
    const pay = fundingPayment(p.size, mark, rate, m.inst.contractSize);
    if (pay === 0) return;
    if (m.marginMode === 'isolated') m.isolatedWallet += pay;
    this.account.adjust(m.inst.settle, pay);
    if (this.account.cash < 0) this.negativeWallet++;
    this.funding.push({ symbol: m.inst.symbol, time, rate, markPrice: mark, size: p.size, payment: pay });
  }

  /** Margin balance at or below maintenance with the market's mark at `price` (others at theirs). */
  private liquidatableAt(m: Market, price: number): boolean {
    const p = m.position;
    const c = m.inst.contractSize;
    const upnl = unrealizedPnl(p.size, entry(p), price, c);
    const mm = maintenanceMargin(positionNotional(p.size, price, c), m.brackets);
    if (m.marginMode === 'isolated') return isLiquidatable(m.isolatedWallet + upnl, mm);
    let balance = this.crossWallet() + upnl;
    let maint = mm;
    for (let k = 0; k < this.list.length; k++) {
      const o = this.list[k] as Market;
      if (o === m || o.marginMode !== 'cross' || o.position.size === 0) continue;
      balance += unrealizedPnl(o.position.size, entry(o.position), o.mark_, o.inst.contractSize);
      maint += maintenanceMargin(positionNotional(o.position.size, o.mark_, o.inst.contractSize), o.brackets);
    }
    return isLiquidatable(balance, maint);
  }

  private lp(m: Market): number {
    const p = m.position;
    if (p.size === 0) return 0;
    const x = this.x;
    x.bothSize = p.size;
    x.bothEntry = entry(p);
    x.longSize = 0;
    x.shortSize = 0;
    x.otherMaintenance = 0;
    x.otherUnrealizedPnl = 0;
    if (m.marginMode === 'isolated') x.walletBalance = m.isolatedWallet;
    else {
      x.walletBalance = this.crossWallet();
      for (const o of this.list) {
        if (o === m || o.marginMode !== 'cross' || o.position.size === 0) continue;
        x.otherMaintenance += maintenanceMargin(positionNotional(o.position.size, o.mark_), o.brackets);
        x.otherUnrealizedPnl += unrealizedPnl(o.position.size, entry(o.position), o.mark_);
      }
    }
    return liquidationPrice(x, m.brackets);
  }

  /**
   * Closes the position whole at its liquidation price on the tick (the mark crossed it on the
   * way; when the bar gaps past it the close is still there: the insurance fund takes the rest),
   * then charges the clearance fee out of the margin left. Cross margin closes every cross
   * position: this one at its liquidation price, the others at their marks.
   */
  private liquidate(m: Market, extreme: number, closeTime: number): LiquidationRecord {
    const lpRaw = this.lp(m);
    const lp = lpRaw > 0 ? lpRaw : extreme;
    const victims: { m: Market; price: number; lp: number }[] = [
      { m, price: roundToStep(lp, m.inst.tickSize, 'nearest'), lp },
    ];
    let left = m.marginMode === 'isolated' ? m.isolatedWallet : this.crossWallet();
    if (m.marginMode === 'cross')
      for (const o of this.list)
        if (o !== m && o.marginMode === 'cross' && o.position.size !== 0)
          victims.push({ m: o, price: o.mark_, lp: o.mark_ });
    for (const v of victims) {
      const p = v.m.position;
      left += Math.abs(p.size) * (v.price - entry(p)) * Math.sign(p.size) * v.m.inst.contractSize;
    }
    let first: LiquidationRecord | undefined;
    for (const v of victims) {
      const p = v.m.position;
      const size = p.size;
      const entryPrice = entry(p);
      const qty = Math.abs(size);
      const fee = liquidationClearanceFee(
        positionNotional(qty, v.price, v.m.inst.contractSize),
        v.m.clearanceRate,
        left,
      );
      left -= fee;
      const realizedBefore = p.realizedPnl;
      this.beforeFill(v.m.inst.symbol, -size, v.price);
      this.account.applyFill(v.m.inst, size > 0 ? 'sell' : 'buy', v.price, qty, 0, v.m.inst.settle);
      this.account.adjust(v.m.inst.settle, -fee);
      v.m.mark_ = v.price;
      if (this.account.cash < 0) this.negativeWallet++;
      const rec: LiquidationRecord = {
        symbol: v.m.inst.symbol,
        time: closeTime,
        marginMode: v.m.marginMode,
        size,
        entryPrice,
        liquidationPrice: v.lp,
        price: v.price,
        realizedPnl: p.realizedPnl - realizedBefore,
        clearanceFee: fee,
      };
      this.liquidations.push(rec);
      first ??= rec;
    }
    return first as LiquidationRecord;
  }
}

function entry(p: Position): number {
  return p.size === 0 ? 0 : p.avgPrice;
}

function firstAtOrAfter(s: FundingRateSeries, t: number): number {
  let lo = 0;
  let hi = s.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((s.time[mid] as number) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
