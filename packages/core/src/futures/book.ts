/**
 * The engine's futures book: what a USDⓈ-M account adds to the spot books of `Account` when the
 * engine simulates the exchange (backtest). The Account stays the wallet (its cash is the USDT
 * wallet balance: realised PnL and commissions) and holds each symbol's signed position and
 * entry; this book adds per-symbol leverage and margin mode, isolated wallets, the mark price,
 * funding on the series' schedule, the margin check of an opening order, and liquidation. Every
 * number comes from the formulas beside it (docs/futures.md); the order of one bar is the one
 * written there: fills (the venue), funding, mark-to-market, liquidation.
 *
 * Position mode per market: one-way (one signed position per symbol, the Account's) or hedge (a
 * long and a short position side by side, the Account's two positions of the symbol, each order
 * naming the side it trades). Each position is a `Leg` here: its isolated wallet, its funding,
 * its share of the cross account or its own liquidation (docs/futures.md, "Hedge mode").
 */
import { type Bar, type BarSeries, readBar } from '../model/bar.ts';
import { closesExactly, type Instrument, roundToStep } from '../model/instrument.ts';
import type { HedgeSide } from '../model/orders.ts';
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
  type PositionMode,
  positionNotional,
  unrealizedPnl,
} from './margin.ts';
import { reducingQty } from './position.ts';

/** Binance's USDⓈ-M clearance rate for most contracts (exchangeInfo `liquidationFee` 0.012500). */
export const DEFAULT_LIQUIDATION_FEE = 0.0125;

/** How one perpetual market is traded: leverage, margin mode, its rules, its funding and mark. */
/**
 * Funding stamped this close after a bar's open counts as at the open (charged before the bar's
 * fills, FuturesBook.onOpen). Binance stamps its funding a few milliseconds after the hour.
 */
export const FUNDING_AT_OPEN_MS = 1_000;

export interface FuturesMarketSettings {
  /** 1 to the brackets' highest leverage. */
  readonly leverage: number;
  readonly marginMode: MarginMode;
  /**
   * 'one-way' (default): one signed position. 'hedge': a long and a short position apart; every
   * order then names the side it trades (`positionSide`), and an order that closes a side only
   * reduces it.
   */
  readonly positionMode?: PositionMode;
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
  /** Live: the exchange's id of the payment (Binance's income `tranId`), so it is applied once. */
  readonly id?: string;
  /** Hedge mode: the side charged (absent in one-way mode). */
  readonly positionSide?: HedgeSide;
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
  /** Live: the exchange's id of the forced order (Binance's `autoclose-` order), so it is applied once. */
  readonly id?: string;
  /** Hedge mode: the side closed (absent in one-way mode). */
  readonly positionSide?: HedgeSide;
}

/**
 * A close the exchange made of its own accord other than a liquidation (live only): an
 * auto-deleveraging (ADL) close (part or all of a profitable position, no fee) or a delisted
 * contract's settlement (the whole position at the settlement price, the taker fee). Realised PnL
 * as for any reducing fill, an isolated wallet released in proportion; no clearance fee.
 */
export interface ExchangeCloseRecord {
  readonly symbol: string;
  readonly time: number;
  readonly marginMode: MarginMode;
  /** The position before the close (signed) and its entry. */
  readonly size: number;
  readonly entryPrice: number;
  /** How much of it was closed (absolute; at most what was held). */
  readonly closed: number;
  readonly price: number;
  readonly realizedPnl: number;
  /** The commission of the close's trades (Binance: none on an ADL close, the taker fee on a settlement). */
  readonly fee: number;
  /**
   * The exchange's id of the order (Binance's `adl_autoclose` or `settlement_autoclose-` order),
   * so it is applied once.
   */
  readonly id: string;
}

/**
 * Who charges funding and liquidates: `simulated` (a backtest, a paper bot: this book, on the
 * bars) or `exchange` (a live bot: the exchange does both and reports them; the book only marks
 * to the bars and records what the exchange reported, through `exchangeFunding` and
 * `exchangeLiquidation`).
 */
export type FuturesVenue = 'simulated' | 'exchange';

/** A funding payment as the exchange reported it (its income record and the rate it charged). */
export interface ExchangeFunding {
  readonly id: string;
  readonly time: number;
  /** NaN when the exchange's rate history has no row for it (a warning of the book's). */
  readonly rate: number;
  readonly markPrice: number;
  /** The bot's position at the funding time (signed): what it was charged on. */
  readonly size: number;
  /** Cash flow to the account: > 0 received, < 0 paid. */
  readonly payment: number;
}

/** A forced close as the exchange reported it (its `autoclose-` order and that order's trades). */
export interface ExchangeLiquidation {
  readonly id: string;
  readonly time: number;
  /** The fill price (the order's average price). */
  readonly price: number;
  /** The forced order's price (Binance's bankruptcy price). */
  readonly liquidationPrice: number;
  /** What the exchange closed (absolute); the bot's own position is closed whole. */
  readonly amount: number;
  /** The order's commission: the clearance fee. */
  readonly clearanceFee: number;
}

/** An ADL or settlement close as the exchange reported it (its order and that order's trades). */
export interface ExchangeClose {
  readonly id: string;
  readonly time: number;
  /** The fill price (the order's average price). */
  readonly price: number;
  /** What the exchange closed (absolute). */
  readonly amount: number;
  /** The commission of its trades. */
  readonly fee: number;
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

/** One side of a hedge-mode market at the end of a run. */
export interface HedgeSideSummary {
  readonly positionSide: HedgeSide;
  /** Signed: the long side >= 0, the short side <= 0. */
  readonly size: number;
  /** NaN when flat. */
  readonly entryPrice: number;
  readonly unrealizedPnl: number;
  readonly isolatedWallet: number;
  /** 0: none (flat, or no price can liquidate it). */
  readonly liquidationPrice: number;
}

/** What a run's futures side did, for the result and its summary. */
export interface FuturesSummary {
  readonly markets: readonly {
    readonly symbol: string;
    readonly leverage: number;
    readonly marginMode: MarginMode;
    readonly funding: string;
    /** The isolated wallet at the end (0 in cross margin or flat; hedge mode: both sides'). */
    readonly isolatedWallet: number;
    /** Present in hedge mode only: each side at the end. */
    readonly positionMode?: 'hedge';
    readonly sides?: readonly HedgeSideSummary[];
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

/** One position of a market: the one-way position, or one side of a hedge. */
interface Leg {
  readonly m: Market;
  /** undefined: one-way. */
  readonly side: HedgeSide | undefined;
  readonly position: Position;
  /** The isolated wallet (Binance's `isolatedWallet`); 0 in cross margin. */
  isolatedWallet: number;
}

interface Market {
  readonly inst: Instrument;
  readonly leverage: number;
  readonly marginMode: MarginMode;
  readonly hedge: boolean;
  readonly brackets: readonly NotionalBracket[];
  readonly clearanceRate: number;
  readonly funding: FundingRateSeries | null;
  readonly fundingSource: string;
  readonly mark: BarSeries | undefined;
  readonly markSource: string;
  /** One leg (one-way) or two (hedge: long, then short). */
  readonly legs: readonly Leg[];
  /** Next funding event to charge. */
  fundingCursor: number;
  /** The mark bar at or before the traded bar. */
  markCursor: number;
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
  /** Every position of every market, in market order (a hedge market's long, then its short). */
  private readonly legs: Leg[] = [];
  private last: Market | undefined;
  private readonly x = liquidationInputs();
  readonly funding: FundingRecord[] = [];
  readonly liquidations: LiquidationRecord[] = [];
  /** Live: the exchange's ADL closes (a backtest never has one: the engine does not simulate ADL). */
  readonly adl: ExchangeCloseRecord[] = [];
  /** Live: the exchange's settlement closes of a delisted contract (a backtest never has one). */
  readonly settlements: ExchangeCloseRecord[] = [];
  private readonly warnings: string[] = [];
  private lateFunding = 0;
  private missingMark = 0;
  private negativeWallet = 0;

  constructor(
    private readonly account: Account,
    instruments: readonly Instrument[],
    settings: (inst: Instrument) => FuturesMarketSettings,
    readonly venue: FuturesVenue = 'simulated',
  ) {
    for (const inst of instruments) {
      if (inst.kind !== 'perpetual') continue;
      const s = settings(inst);
      const brackets = s.brackets ?? DEFAULT_USDM_BRACKETS;
      const maxLev = maxLeverageOf(brackets);
      // Live, the exchange's own brackets decide (it refuses a leverage above them at start).
      const top = venue === 'exchange' ? Number.POSITIVE_INFINITY : maxLev;
      if (!(Number.isFinite(s.leverage) && s.leverage >= 1 && s.leverage <= top))
        throw new Error(`${inst.symbol}: leverage ${s.leverage} must be between 1 and ${maxLev} (its brackets)`);
      const clearanceRate = s.clearanceRate ?? DEFAULT_LIQUIDATION_FEE;
      if (!(clearanceRate >= 0 && clearanceRate < 1))
        throw new Error(`${inst.symbol}: liquidation clearance rate ${clearanceRate} must be in [0, 1)`);
      const mode = s.positionMode ?? 'one-way';
      if (mode !== 'one-way' && mode !== 'hedge')
        throw new Error(`${inst.symbol}: position mode ${String(mode)} must be one-way or hedge`);
      const legs: Leg[] = [];
      const m: Market = {
        inst,
        leverage: s.leverage,
        marginMode: s.marginMode,
        hedge: mode === 'hedge',
        brackets,
        clearanceRate,
        funding: s.funding,
        fundingSource:
          venue === 'exchange'
            ? 'the exchange'
            : (s.fundingSource ?? (s.funding === null ? 'none given' : 'the funding series given')),
        mark: s.mark,
        markSource: s.markSource ?? 'the mark series given',
        legs,
        fundingCursor: 0,
        markCursor: 0,
        mark_: Number.NaN,
        started: false,
        firstTime: Number.NaN,
        lastTime: Number.NaN,
      };
      for (const side of mode === 'hedge' ? (['long', 'short'] as const) : [undefined]) {
        const position = side === undefined ? account.position(inst) : account.position(inst, side);
        position.leverage = s.leverage;
        legs.push({ m, side, position, isolatedWallet: 0 });
      }
      this.legs.push(...legs);
      this.markets.set(inst.symbol, m);
      this.list.push(m);
    }
  }

  /** The state to save with each handled bar (see FuturesBookState). */
  snapshot(): FuturesBookState {
    const isolatedWallets: Record<string, number> = {};
    for (const l of this.legs) if (l.isolatedWallet !== 0) isolatedWallets[legKey(l)] = l.isolatedWallet;
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
    for (const l of this.legs) l.isolatedWallet = s.isolatedWallets[legKey(l)] ?? 0;
    this.lateFunding = s.lateFunding;
    this.missingMark = s.missingMark;
    this.negativeWallet = s.negativeWallet;
  }

  /** The leverage of a perpetual market, 1 for any other. */
  leverage(symbol: string): number {
    return this.markets.get(symbol)?.leverage ?? 1;
  }

  /** The margin mode of a perpetual market (undefined for any other). */
  marginMode(symbol: string): MarginMode | undefined {
    return this.markets.get(symbol)?.marginMode;
  }

  /** True for a hedge-mode perpetual: its orders name the side they trade. */
  isHedge(symbol: string): boolean {
    return this.markets.get(symbol)?.hedge === true;
  }

  /** True when some market is in hedge mode. */
  get anyHedge(): boolean {
    for (const m of this.list) if (m.hedge) return true;
    return false;
  }

  /**
   * What is wrong with an order's `positionSide` for its market, or null: a hedge-mode perpetual
   * needs one, anything else must not have one.
   */
  positionSideError(symbol: string, positionSide: HedgeSide | undefined): string | null {
    const hedge = this.markets.get(symbol)?.hedge === true;
    if (hedge && positionSide === undefined)
      return `${symbol} is in hedge mode: an order must name its positionSide ('long' or 'short')`;
    if (!hedge && positionSide !== undefined)
      return `positionSide '${positionSide}' is for a hedge-mode perpetual; ${symbol} is ${this.markets.has(symbol) ? 'in one-way mode' : 'not a perpetual'}`;
    return null;
  }

  /** The isolated wallet of a market's position, or of both sides of a hedge (0 in cross margin or flat). */
  isolatedWallet(symbol: string, side?: HedgeSide): number {
    const m = this.markets.get(symbol);
    if (m === undefined) return 0;
    let w = 0;
    for (const l of m.legs) if (side === undefined || l.side === side) w += l.isolatedWallet;
    return w;
  }

  /** Live: the isolated wallet as the exchange reports it (reconciliation, docs/futures.md). */
  setIsolatedWallet(symbol: string, wallet: number): void {
    const m = this.markets.get(symbol);
    if (m !== undefined) this.oneWayLeg(m).isolatedWallet = m.marginMode === 'isolated' ? wallet : 0;
  }

  /** Live trades one-way perpetuals only (hedge accounts are refused at start): the one leg. */
  private oneWayLeg(m: Market): Leg {
    if (m.hedge) throw new Error(`Invariant violated: ${m.inst.symbol} is in hedge mode, which live trading refuses`);
    return m.legs[0] as Leg;
  }

  /** A warning for the summary: something the book could not apply or check, said and counted. */
  warn(message: string): void {
    this.warnings.push(message);
  }

  /**
   * Live: a funding payment the exchange charged: to the wallet and, while a position is held
   * isolated, to the isolated wallet, as `charge` does with a simulated one. Returns its record.
   */
  exchangeFunding(symbol: string, f: ExchangeFunding): FundingRecord {
    const m = this.markets.get(symbol);
    if (m === undefined)
      throw new Error(`Invariant violated: funding for ${symbol}, which is not a perpetual of this book`);
    return this.bookFunding(this.oneWayLeg(m), {
      symbol,
      time: f.time,
      rate: f.rate,
      markPrice: f.markPrice,
      size: f.size,
      payment: f.payment,
      id: f.id,
    });
  }

  /**
   * Live: a forced close the exchange made. The position closes whole at the exchange's fill
   * price and the clearance fee is taken from the wallet, as `liquidate` does with a simulated
   * one; an amount other than the position held is a warning (the exchange closed what it held).
   */
  exchangeLiquidation(symbol: string, x: ExchangeLiquidation): LiquidationRecord {
    const m = this.markets.get(symbol);
    if (m === undefined)
      throw new Error(`Invariant violated: liquidation of ${symbol}, which is not a perpetual of this book`);
    const l = this.oneWayLeg(m);
    const p = l.position;
    const size = p.size;
    const entryPrice = entry(p);
    if (Math.abs(Math.abs(size) - x.amount) > 1e-9 * Math.max(1, x.amount))
      this.warn(
        `${symbol}: the exchange liquidated ${x.amount} (order ${x.id}) while this bot held ${size}: its position is closed whole`,
      );
    const realizedPnl = this.closeWhole(l, x.price, x.clearanceFee);
    l.isolatedWallet = 0;
    const rec: LiquidationRecord = {
      symbol,
      time: x.time,
      marginMode: m.marginMode,
      size,
      entryPrice,
      liquidationPrice: x.liquidationPrice,
      price: x.price,
      realizedPnl,
      clearanceFee: x.clearanceFee,
      id: x.id,
    };
    this.liquidations.push(rec);
    return rec;
  }

  /**
   * Live: an ADL close or a settlement close the exchange made. The position is reduced by what
   * was closed (at most what the bot held: more is a warning, the rest was not the bot's) at the
   * exchange's fill price, as a reducing fill: realised PnL at that price, an isolated wallet
   * released in proportion; its commission leaves the wallet. Nothing held: a warning, nothing
   * applied. A settlement closes the exchange's whole position: anything the bot still holds after
   * it is a warning (its books and the exchange's differ; the next start names it).
   */
  exchangeClose(kind: 'adl' | 'settlement', symbol: string, x: ExchangeClose): ExchangeCloseRecord {
    const m = this.markets.get(symbol);
    if (m === undefined)
      throw new Error(`Invariant violated: ${kind} close of ${symbol}, which is not a perpetual of this book`);
    const l = this.oneWayLeg(m);
    const p = l.position;
    const size = p.size;
    const entryPrice = entry(p);
    const closed = Math.min(x.amount, Math.abs(size));
    const did = kind === 'adl' ? 'auto-deleveraged' : 'settled';
    if (x.amount > Math.abs(size) + 1e-9 * Math.max(1, x.amount))
      this.warn(
        `${symbol}: the exchange ${did} ${x.amount} (order ${x.id}) while this bot held ${size}: ${closed === 0 ? 'nothing of it was this bot’s; not applied' : `${closed} of it applied (the rest was not this bot’s)`}`,
      );
    const realizedBefore = p.realizedPnl;
    if (closed > 0) {
      this.beforeFill(symbol, size > 0 ? -closed : closed, x.price);
      this.account.applyFill(m.inst, size > 0 ? 'sell' : 'buy', x.price, closed, x.fee, m.inst.settle);
    } else if (x.fee !== 0) this.account.adjust(m.inst.settle, -x.fee);
    if (this.account.cash < 0) this.negativeWallet++;
    if (kind === 'settlement' && p.size !== 0)
      this.warn(
        `${symbol}: the exchange settled ${x.amount} (order ${x.id}) while this bot held ${size}: ${p.size} is left in its books that the exchange no longer holds`,
      );
    const rec: ExchangeCloseRecord = {
      symbol,
      time: x.time,
      marginMode: m.marginMode,
      size,
      entryPrice,
      closed,
      price: x.price,
      realizedPnl: p.realizedPnl - realizedBefore,
      fee: x.fee,
      id: x.id,
    };
    (kind === 'adl' ? this.adl : this.settlements).push(rec);
    return rec;
  }

  /** The cross wallet: the wallet balance less every isolated wallet. */
  crossWallet(): number {
    let w = this.account.cash;
    for (let k = 0; k < this.legs.length; k++) w -= (this.legs[k] as Leg).isolatedWallet;
    return w;
  }

  /** The mark price of a market now (NaN before its first bar). */
  markPrice(symbol: string): number {
    return this.markets.get(symbol)?.mark_ ?? Number.NaN;
  }

  /**
   * Margin balance of a position (isolated: its wallet + its unrealised PnL) or of the cross
   * account (cross wallet + every cross position's unrealised PnL), at the marks now. `side`: the
   * side of a hedge-mode market (its isolated position).
   */
  marginBalance(symbol: string, side?: HedgeSide): number {
    const l = this.leg(symbol, side);
    if (l === undefined) return Number.NaN;
    if (l.m.marginMode === 'isolated') return l.isolatedWallet + legPnl(l, l.m.mark_);
    let b = this.crossWallet();
    for (const o of this.legs) if (o.m.marginMode === 'cross') b += legPnl(o, o.m.mark_);
    return b;
  }

  /** Maintenance margin against `marginBalance(symbol, side)`: the position's, or every cross position's. */
  maintenance(symbol: string, side?: HedgeSide): number {
    const l = this.leg(symbol, side);
    if (l === undefined) return Number.NaN;
    if (l.m.marginMode === 'isolated') return legMaintenance(l, l.m.mark_);
    let mm = 0;
    for (const o of this.legs) if (o.m.marginMode === 'cross') mm += legMaintenance(o, o.m.mark_);
    return mm;
  }

  /** Binance's liquidation price of the market's position (or hedge side) at the marks now (0: none). */
  liquidationPrice(symbol: string, side?: HedgeSide): number {
    const l = this.leg(symbol, side);
    return l === undefined ? 0 : this.lp(l);
  }

  /**
   * An order on arrival (simulated venue): the initial margin of what it opens, at `price`, with
   * its taker fee, must fit in the available balance, and the position after it must stay within
   * the notional the leverage allows. Reducing orders always pass. A reason, or null.
   * `positionSide`: the hedge side the order trades (the engine has checked it is given exactly
   * for a hedge-mode market).
   */
  marginCheck(
    symbol: string,
    side: 'buy' | 'sell',
    amount: number,
    price: number,
    fee: number,
    positionSide?: HedgeSide,
  ): string | null {
    const m = this.markets.get(symbol);
    if (m === undefined || !(price > 0)) return null;
    const leg = this.legOf(m, positionSide);
    if (leg === undefined) return null;
    const size = leg.position.size;
    const qty = side === 'buy' ? amount : -amount;
    // A hedge side is never reversed: what closes it only reduces it (clipped at the fill).
    if (leg.side !== undefined && (leg.side === 'long') !== qty > 0) return null;
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
    for (const o of this.legs) {
      const op = o.position;
      if (o.m.marginMode !== 'cross' || op.size === 0) continue;
      const mark = Number.isNaN(o.m.mark_) ? op.lastPrice : o.m.mark_;
      crossUpnl += unrealizedPnl(op.size, entry(op), mark, o.m.inst.contractSize);
      // A reversing order closes this position first: only what stays of it holds margin.
      const held = o === leg ? Math.abs(size) - (amount - opening) : op.size;
      crossIm += initialMargin(positionNotional(held, mark, o.m.inst.contractSize), o.m.leverage);
    }
    // An isolated position being reversed releases its isolated wallet and its PnL at the price.
    const released =
      m.marginMode === 'isolated' && amount > opening
        ? leg.isolatedWallet + unrealizedPnl(size, entry(leg.position), price, c)
        : 0;
    const avail = availableBalance(this.crossWallet() + released, crossUpnl, crossIm, 0);
    if (need > avail)
      return `insufficient margin: opening ${opening} ${m.inst.base}${leg.side !== undefined ? ` ${leg.side}` : ''} at ${price} and ${m.leverage}x needs ${need} ${m.inst.quote} (initial margin and fee), ${avail} available`;
    return null;
  }

  /**
   * Before a fill of `qty` (signed) at `price` is applied to the Account: an isolated position's
   * wallet releases the share being closed and takes `opening notional / leverage` from the cross
   * wallet (what the simulator does, docs/futures.md). Cross positions need nothing here.
   */
  beforeFill(symbol: string, qty: number, price: number, positionSide?: HedgeSide): void {
    const m = this.market(symbol);
    if (m === undefined || m.marginMode !== 'isolated') return;
    const l = this.legOf(m, positionSide);
    if (l === undefined) return;
    const before = l.position.size;
    const closing = reducingQty(before, qty);
    // Flat (as the account books it, binary noise of partial fills included): what is left of the
    // isolated wallet returns to the cross wallet (it is in the wallet).
    if (closing > 0 && closesExactly(Math.abs(before), Math.abs(qty))) {
      l.isolatedWallet = 0;
      return;
    }
    const released = before === 0 ? 0 : (l.isolatedWallet * closing) / Math.abs(before);
    const opening = Math.abs(qty) - closing;
    l.isolatedWallet =
      l.isolatedWallet - released + initialMargin(positionNotional(opening, price, m.inst.contractSize), m.leverage);
  }

  /** The first bar of a market: funding before its open was paid before the run began. */
  private begin(m: Market, t: number): void {
    if (m.started) return;
    m.started = true;
    m.firstTime = t;
    if (m.funding !== null) m.fundingCursor = firstAtOrAfter(m.funding, t);
  }

  /**
   * A perpetual's bar as it opens, before the venue fills anything on it: funding stamped at the
   * open (within FUNDING_AT_OPEN_MS of it; Binance stamps a few ms after the hour), or in a gap of
   * the bars before it, is charged on what is held then. The exchange charges the positions held
   * at the funding instant, and an order decided on the bar before reaches it after that instant:
   * a position closed at the open of a funding bar still pays that funding, as it does live.
   */
  onOpen(symbol: string, bar: Bar, closeTime: number): void {
    const m = this.market(symbol);
    if (m === undefined || m.funding === null || this.venue === 'exchange') return;
    const t = bar.time;
    this.begin(m, t);
    const f = m.funding;
    const due = Math.min(t + FUNDING_AT_OPEN_MS, closeTime);
    const i = m.fundingCursor;
    if (i >= f.length || (f.time[i] as number) >= due) return;
    // The mark at the open: the mark bar's open when there is one at this time.
    const j = this.markAt(m, t);
    this.chargeDue(m, f, due, t, j >= 0 ? ((m.mark as BarSeries).open[j] as number) : bar.open);
  }

  /**
   * The mark bar this book reads for `symbol`'s bar opening at `t` (its funding at the open, its
   * liquidation test and its mark), copied into `out`; null when the market has no mark bars or
   * none opens at `t` (the traded price is the mark there). For the bar just handled: the
   * market's cursor only moves forward. A paper bot records it, so that a replay marks as it did.
   */
  markBarAt(symbol: string, t: number, out: Bar): Bar | null {
    const m = this.market(symbol);
    if (m === undefined) return null;
    const j = this.markAt(m, t);
    return j < 0 ? null : readBar(m.mark as BarSeries, j, out);
  }

  /** Index of the mark bar opening at `t` (moving the market's cursor up to it), or -1 when none. */
  private markAt(m: Market, t: number): number {
    const mk = m.mark;
    if (mk === undefined) return -1;
    let j = m.markCursor;
    while (j < mk.length && (mk.time[j] as number) < t) j++;
    m.markCursor = j;
    return j < mk.length && (mk.time[j] as number) === t ? j : -1;
  }

  /**
   * Charges every funding of `f` from the market's cursor on, stamped before `until`, at the mark
   * `open`, on what each leg holds now; one stamped before the bar's open `t` fell in a gap of
   * the bars and is counted.
   */
  private chargeDue(m: Market, f: FundingRateSeries, until: number, t: number, open: number): void {
    const legs = m.legs;
    let i = m.fundingCursor;
    while (i < f.length && (f.time[i] as number) < until) {
      const ft = f.time[i] as number;
      if (ft < t) this.lateFunding++;
      for (let k = 0; k < legs.length; k++) this.charge(legs[k] as Leg, ft, f.rate[i] as number, open);
      i++;
    }
    m.fundingCursor = i;
  }

  /**
   * One closed bar of a perpetual, after the venue matched it: funding due later in it (after its
   * open, see onOpen), the mark, then the liquidation test on the bar's adverse extreme. Returns
   * the liquidation, or null.
   */
  onBar(symbol: string, bar: Bar, closeTime: number): LiquidationRecord | null {
    const m = this.market(symbol);
    if (m === undefined) return null;
    const t = bar.time;
    this.begin(m, t);
    m.lastTime = closeTime;
    let open = bar.open;
    let low = bar.low;
    let high = bar.high;
    let close = bar.close;
    const mk = m.mark;
    if (mk !== undefined) {
      const j = this.markAt(m, t);
      if (j >= 0) {
        open = mk.open[j] as number;
        low = mk.low[j] as number;
        high = mk.high[j] as number;
        close = mk.close[j] as number;
      } else this.missingMark++;
    }
    const f = this.venue === 'exchange' ? null : m.funding;
    const legs = m.legs;
    // Funding after the bar's open (onOpen charged those at it): on what is held after its fills.
    if (f !== null) this.chargeDue(m, f, closeTime, t, open);
    m.mark_ = close;
    for (let k = 0; k < legs.length; k++) {
      const l = legs[k] as Leg;
      l.position.lastPrice = close;
    }
    // Live, the exchange liquidates (and reports it): the book never closes a position itself.
    if (this.venue === 'exchange') return null;
    if (!m.hedge) {
      const l = legs[0] as Leg;
      const size = l.position.size;
      if (size === 0) return null;
      const extreme = size > 0 ? low : high;
      if (!this.liquidatableAt(l, extreme)) return null;
      return this.liquidate(l, extreme, closeTime);
    }
    // Hedge: an isolated side is tested at its own adverse extreme; cross sides share one
    // margin balance, tested at the low and at the high (the two sides are worst at either).
    let first: LiquidationRecord | null = null;
    for (let k = 0; k < legs.length; k++) {
      const l = legs[k] as Leg;
      if (l.position.size === 0) continue;
      if (m.marginMode === 'isolated') {
        const extreme = l.side === 'long' ? low : high;
        if (!this.liquidatableAt(l, extreme)) continue;
        // Each isolated side on its own: liquidate it even when the other side already was.
        const r = this.liquidate(l, extreme, closeTime);
        first ??= r;
        continue;
      }
      if (this.liquidatableAt(l, low)) return first ?? this.liquidate(l, low, closeTime);
      if (this.liquidatableAt(l, high)) return first ?? this.liquidate(l, high, closeTime);
      // Both cross sides hold one balance: one test covers them.
      break;
    }
    return first;
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
      if (!m.started || this.venue === 'exchange') continue;
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
        isolatedWallet: this.isolatedWallet(m.inst.symbol),
        ...(m.mark !== undefined ? { mark: m.markSource } : {}),
        ...(m.hedge
          ? {
              positionMode: 'hedge' as const,
              sides: m.legs.map((l) => ({
                positionSide: l.side as HedgeSide,
                size: l.position.size,
                entryPrice: l.position.size === 0 ? Number.NaN : l.position.avgPrice,
                unrealizedPnl: legPnl(l, m.mark_),
                isolatedWallet: l.isolatedWallet,
                liquidationPrice: this.lp(l),
              })),
            }
          : {}),
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

  private legOf(m: Market, side: HedgeSide | undefined): Leg | undefined {
    if (!m.hedge) return side === undefined ? (m.legs[0] as Leg) : undefined;
    return side === 'long' ? m.legs[0] : side === 'short' ? m.legs[1] : undefined;
  }

  private leg(symbol: string, side: HedgeSide | undefined): Leg | undefined {
    const m = this.markets.get(symbol);
    return m === undefined ? undefined : this.legOf(m, side);
  }

  private charge(l: Leg, time: number, rate: number, mark: number): void {
    const p = l.position;
    if (p.size === 0) return;
    const m = l.m;
    const pay = fundingPayment(p.size, mark, rate, m.inst.contractSize);
    if (pay === 0) return;
    const rec: FundingRecord = { symbol: m.inst.symbol, time, rate, markPrice: mark, size: p.size, payment: pay };
    this.bookFunding(l, l.side === undefined ? rec : { ...rec, positionSide: l.side });
  }

  /**
   * Books a funding payment, simulated (`charge`) or the exchange's (`exchangeFunding`): to the
   * wallet and, while the leg holds an isolated position, to its isolated wallet; records it.
   */
  private bookFunding(l: Leg, rec: FundingRecord): FundingRecord {
    const m = l.m;
    if (m.marginMode === 'isolated' && l.position.size !== 0) l.isolatedWallet += rec.payment;
    this.account.adjust(m.inst.settle, rec.payment);
    if (this.account.cash < 0) this.negativeWallet++;
    this.funding.push(rec);
    return rec;
  }

  /**
   * Margin balance at or below maintenance with the market's mark at `price` (others at theirs):
   * an isolated position alone, or the whole cross account (both sides of a cross hedge at `price`).
   */
  private liquidatableAt(l: Leg, price: number): boolean {
    const m = l.m;
    if (m.marginMode === 'isolated')
      return isLiquidatable(l.isolatedWallet + legPnl(l, price), legMaintenance(l, price));
    let balance = this.crossWallet() + legPnl(l, price);
    let maint = legMaintenance(l, price);
    for (let k = 0; k < this.legs.length; k++) {
      const o = this.legs[k] as Leg;
      if (o === l || o.m.marginMode !== 'cross' || o.position.size === 0) continue;
      // The other side of this hedge at the same price; other markets at their marks.
      const at = o.m === m ? price : o.m.mark_;
      balance += legPnl(o, at);
      maint += legMaintenance(o, at);
    }
    return isLiquidatable(balance, maint);
  }

  private lp(l: Leg): number {
    const m = l.m;
    const p = l.position;
    if (p.size === 0) return 0;
    const x = this.x;
    x.bothSize = 0;
    x.bothEntry = 0;
    x.longSize = 0;
    x.longEntry = 0;
    x.shortSize = 0;
    x.shortEntry = 0;
    x.otherMaintenance = 0;
    x.otherUnrealizedPnl = 0;
    if (m.marginMode === 'isolated') {
      x.walletBalance = l.isolatedWallet;
      setTerms(x, l);
    } else {
      x.walletBalance = this.crossWallet();
      for (const o of this.legs) {
        if (o.m.marginMode !== 'cross' || o.position.size === 0) continue;
        if (o.m === m) setTerms(x, o);
        else {
          x.otherMaintenance += maintenanceMargin(positionNotional(o.position.size, o.m.mark_), o.m.brackets);
          x.otherUnrealizedPnl += unrealizedPnl(o.position.size, entry(o.position), o.m.mark_);
        }
      }
    }
    return liquidationPrice(x, m.brackets);
  }

  /**
   * Closes the position whole at its liquidation price on the tick (the mark crossed it on the
   * way; when the bar gaps past it the close is still there: the insurance fund takes the rest),
   * then charges the clearance fee out of the margin left. Cross margin closes every cross
   * position: this market's (both sides of a hedge) at its liquidation price, the others at their
   * marks.
   */
  private liquidate(l: Leg, extreme: number, closeTime: number): LiquidationRecord {
    const m = l.m;
    const lpRaw = this.lp(l);
    const lp = lpRaw > 0 ? lpRaw : extreme;
    const price = roundToStep(lp, m.inst.tickSize, 'nearest');
    const victims: { l: Leg; price: number; lp: number }[] = [{ l, price, lp }];
    let left = m.marginMode === 'isolated' ? l.isolatedWallet : this.crossWallet();
    if (m.marginMode === 'cross')
      for (const o of this.legs)
        if (o !== l && o.m.marginMode === 'cross' && o.position.size !== 0)
          victims.push(o.m === m ? { l: o, price, lp } : { l: o, price: o.m.mark_, lp: o.m.mark_ });
    for (const v of victims) {
      const p = v.l.position;
      left += Math.abs(p.size) * (v.price - entry(p)) * Math.sign(p.size) * v.l.m.inst.contractSize;
    }
    let first: LiquidationRecord | undefined;
    for (const v of victims) {
      const vm = v.l.m;
      const p = v.l.position;
      const size = p.size;
      const entryPrice = entry(p);
      const qty = Math.abs(size);
      const fee = liquidationClearanceFee(positionNotional(qty, v.price, vm.inst.contractSize), vm.clearanceRate, left);
      left -= fee;
      const realizedPnl = this.closeWhole(v.l, v.price, fee);
      for (const o of vm.legs) o.position.lastPrice = v.price;
      const rec: LiquidationRecord = {
        symbol: vm.inst.symbol,
        time: closeTime,
        marginMode: vm.marginMode,
        size,
        entryPrice,
        liquidationPrice: v.lp,
        price: v.price,
        realizedPnl,
        clearanceFee: fee,
        ...(v.l.side !== undefined ? { positionSide: v.l.side } : {}),
      };
      this.liquidations.push(rec);
      first ??= rec;
    }
    return first as LiquidationRecord;
  }

  /**
   * Books a liquidation, simulated (`liquidate`) or the exchange's (`exchangeLiquidation`): the
   * leg's position closes whole at `price`, the clearance fee leaves the wallet, the mark is the
   * close. Returns the PnL the close realized.
   */
  private closeWhole(l: Leg, price: number, fee: number): number {
    const m = l.m;
    const p = l.position;
    const size = p.size;
    const realizedBefore = p.realizedPnl;
    if (size !== 0) {
      this.beforeFill(m.inst.symbol, -size, price, l.side);
      this.account.applyFill(
        m.inst,
        size > 0 ? 'sell' : 'buy',
        price,
        Math.abs(size),
        0,
        m.inst.settle,
        undefined,
        l.side,
      );
    }
    this.account.adjust(m.inst.settle, -fee);
    m.mark_ = price;
    if (this.account.cash < 0) this.negativeWallet++;
    return p.realizedPnl - realizedBefore;
  }
}

function entry(p: Position): number {
  return p.size === 0 ? 0 : p.avgPrice;
}

function legPnl(l: Leg, mark: number): number {
  const p = l.position;
  return p.size === 0 ? 0 : unrealizedPnl(p.size, p.avgPrice, mark, l.m.inst.contractSize);
}

function legMaintenance(l: Leg, mark: number): number {
  return maintenanceMargin(positionNotional(l.position.size, mark, l.m.inst.contractSize), l.m.brackets);
}

/** A position's terms in Binance's formula: BOTH in one-way mode, LONG or SHORT in hedge mode. */
function setTerms(x: ReturnType<typeof liquidationInputs>, l: Leg): void {
  const p = l.position;
  if (l.side === undefined) {
    x.bothSize = p.size;
    x.bothEntry = entry(p);
  } else if (l.side === 'long') {
    x.longSize = p.size;
    x.longEntry = entry(p);
  } else {
    x.shortSize = -p.size;
    x.shortEntry = entry(p);
  }
}

/** The state key of a position's isolated wallet: the symbol, with the side in hedge mode. */
function legKey(l: Leg): string {
  return l.side === undefined ? l.m.inst.symbol : `${l.m.inst.symbol} ${l.side}`;
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
