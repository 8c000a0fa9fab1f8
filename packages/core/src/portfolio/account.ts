import { closesExactly, type Instrument } from '../model/instrument.ts';
import type { HedgeSide, OrderSide } from '../model/orders.ts';

/**
 * A position in one instrument. Long is size > 0, short is size < 0.
 * Spot positions hold the base asset (their notional moves cash); perpetual positions hold
 * contracts whose notional does not move cash: only realised PnL and fees do (margin accounting).
 */
export interface Position {
  readonly instrument: Instrument;
  /** A hedge-mode perpetual's side (its long and its short are two positions); undefined otherwise. */
  readonly positionSide: HedgeSide | undefined;
  size: number;
  /** Average entry price of the open size (NaN when flat). */
  avgPrice: number;
  realizedPnl: number;
  lastPrice: number;
  /** Margin locked by a perpetual position (notional / leverage); 0 for spot. */
  margin: number;
  leverage: number;
  /** Fees paid on this market's fills, in the account currency (each valued at its fill). */
  fees: number;
}

/** Converts one unit of `asset` into the account currency (NaN when there is no price for it). */
export type Rate = (asset: string) => number;

/**
 * True for a fee paid outside its market: in neither the base nor the quote (or settle asset) of
 * the instrument, such as Binance's commission in BNB. It leaves the position and the market's cash
 * alone and is worth what its asset's price says (`Fill.feeValue`).
 */
export function isOutsideFee(inst: Instrument, feeAsset: string): boolean {
  return feeAsset !== inst.base && feeAsset !== inst.quote && feeAsset !== inst.settle;
}

/** One position in a portfolio summary: prices and PnL in the market's quote, fees in the account currency. */
export interface PositionSummary {
  readonly symbol: string;
  /** A hedge-mode side (absent in one-way mode and on spot). */
  readonly positionSide?: HedgeSide;
  readonly size: number;
  /** Average cost of the open size (NaN when flat). */
  readonly avgPrice: number;
  readonly lastPrice: number;
  readonly value: number;
  readonly unrealizedPnl: number;
  readonly realizedPnl: number;
  readonly fees: number;
}

/** The account's books at one moment (see Account.summary). */
export interface PortfolioSummary {
  readonly currency: string;
  readonly cash: number;
  readonly equity: number;
  /** Realised PnL before fees, each realisation valued at its fill. */
  readonly realizedPnl: number;
  /** Open positions marked at their last price. */
  readonly unrealizedPnl: number;
  /** Fees valued at their fills (fees with no price for their asset are in `unvaluedFees`). */
  readonly feesPaid: number;
  /** Fees in the asset they were paid in. */
  readonly feesByAsset: Readonly<Record<string, number>>;
  /** Fees in an asset that had no price in the account currency when they were paid. */
  readonly unvaluedFees: Readonly<Record<string, number>>;
  readonly balances: Readonly<Record<string, number>>;
  readonly positions: readonly PositionSummary[];
}

/**
 * Cash and positions. The arithmetic for spot follows backtrader's BackBroker step by step
 * (cash -= size*price; on close, cash += size*entry + pnl), so that final values match the
 * reference engine bit for bit: see docs/conventions.md.
 */
export class Account {
  /** Balance of the account currency (the currency the portfolio is valued in). */
  cash = 0; // (initialised: a number field declared without a value would box every update)
  /** Other asset balances (quote currencies of cross pairs, fee assets). */
  readonly balances = new Map<string, number>();
  readonly positions: Position[] = [];
  private readonly bySymbol = new Map<string, Position>();
  /** Hedge-mode perpetuals: the long and the short position of a symbol, apart. */
  private readonly longs = new Map<string, Position>();
  private readonly shorts = new Map<string, Position>();
  /** Fees in the account currency, each valued at its fill (see `feeValue`). */
  feesPaid = 0;
  turnover = 0;
  /** Realised PnL in the account currency (before fees), each realisation valued at its fill. */
  realizedPnl = 0;
  /** Fees in the asset they were paid in. */
  readonly feesByAsset = new Map<string, number>();
  /** Fees that could not be valued: no price for their asset in the account currency at the fill. */
  readonly unvaluedFees = new Map<string, number>();

  constructor(
    readonly currency: string,
    initialCash: number,
  ) {
    if (!(initialCash >= 0 && Number.isFinite(initialCash)))
      throw new Error(`Invalid starting cash ${initialCash}: must be a finite number >= 0`);
    this.cash = initialCash;
  }

  /** The position in a market; `side` names one side of a hedge-mode perpetual. */
  position(inst: Instrument, side?: HedgeSide): Position {
    const map = side === undefined ? this.bySymbol : side === 'long' ? this.longs : this.shorts;
    let p = map.get(inst.symbol);
    if (!p) {
      p = {
        instrument: inst,
        positionSide: side,
        size: 0,
        avgPrice: Number.NaN,
        realizedPnl: 0,
        lastPrice: Number.NaN,
        margin: 0,
        leverage: 1,
        fees: 0,
      };
      map.set(inst.symbol, p);
      this.positions.push(p);
    }
    return p;
  }

  find(symbol: string, side?: HedgeSide): Position | undefined {
    return (side === undefined ? this.bySymbol : side === 'long' ? this.longs : this.shorts).get(symbol);
  }

  balance(asset: string): number {
    return asset === this.currency ? this.cash : (this.balances.get(asset) ?? 0);
  }

  adjust(asset: string, delta: number): void {
    if (asset === this.currency) this.cash += delta;
    else this.balances.set(asset, (this.balances.get(asset) ?? 0) + delta);
  }

  /**
   * Applies one execution. `fee` is in `feeAsset`: the quote/settle asset comes out of that balance;
   * the base asset comes out of the position (you receive less of what you bought). `rate` values
   * assets other than the account currency (a fee in BNB, the quote of a cross pair) at the fill;
   * without it only the account currency and the market's own base are valued. `positionSide`:
   * the side of a hedge-mode perpetual the fill trades (it never takes a side through zero: the
   * venue clips what closes a side to what it holds).
   */
  applyFill(
    inst: Instrument,
    side: OrderSide,
    price: number,
    amount: number,
    fee: number,
    feeAsset: string,
    rate?: Rate,
    positionSide?: HedgeSide,
  ): void {
    const pos = this.position(inst, positionSide);
    const delta = side === 'buy' ? amount : -amount;
    const settle = inst.quote === this.currency ? this.currency : inst.settle;
    const perp = inst.kind === 'perpetual';
    const s = pos.size;
    // A spot buy's fee taken in the coins bought: fewer coins arrive, each at the fill price (the
    // fee itself is booked as a fee, valued at the fill), so the average cost stays the fill's.
    const feeCoins = fee !== 0 && side === 'buy' && feeAsset === inst.base && !perp ? fee : 0;
    let feeInSize = false;
    if (s === 0 || s > 0 === delta > 0) {
      // Opening or increasing.
      if (!perp) this.adjust(settle, -((delta * price) / 1.0) * inst.contractSize);
      const got = delta - feeCoins;
      pos.avgPrice = s === 0 ? price : (s * pos.avgPrice + got * price) / (s + got);
      pos.size = s + got;
      feeInSize = true;
    } else {
      // Reducing, closing, possibly reversing. A fill within binary noise of the size closes it
      // exactly: partial fills summed in another order than the entry's leave no phantom position.
      const exact = closesExactly(Math.abs(s), Math.abs(delta));
      const closeAbs = Math.min(Math.abs(delta), Math.abs(s));
      const closed = s > 0 ? closeAbs : -closeAbs;
      const e = pos.avgPrice;
      const realized = closed * (price - e) * 1.0 * inst.contractSize;
      this.realizedPnl += settle === this.currency ? realized : realized * this.unit(settle, rate);
      if (perp) this.adjust(settle, realized);
      else this.adjust(settle, ((closed * e) / 1.0) * inst.contractSize + realized);
      pos.realizedPnl += realized;
      const rest = exact ? 0 : delta + closed; // what remains of the order after closing (reversal)
      pos.size = exact ? 0 : s - closed;
      if (pos.size === 0) pos.avgPrice = Number.NaN;
      if (rest !== 0) {
        if (!perp) this.adjust(settle, -((rest * price) / 1.0) * inst.contractSize);
        pos.size = rest;
        pos.avgPrice = price;
      }
    }
    if (fee !== 0) {
      if (feeAsset === inst.base && !perp) {
        if (side === 'buy' && !feeInSize) pos.size -= fee;
        if (side === 'sell') this.adjust(inst.base, -fee);
      } else {
        this.adjust(feeAsset, -fee);
      }
      this.feesByAsset.set(feeAsset, (this.feesByAsset.get(feeAsset) ?? 0) + fee);
      const v = this.feeValue(inst, price, fee, feeAsset, rate);
      if (Number.isFinite(v)) {
        this.feesPaid += v;
        pos.fees += v;
      } else this.unvaluedFees.set(feeAsset, (this.unvaluedFees.get(feeAsset) ?? 0) + fee);
    }
    this.turnover += amount * price * inst.contractSize;
    pos.lastPrice = price;
    if (perp) pos.margin = (Math.abs(pos.size) * price * inst.contractSize) / pos.leverage;
  }

  /**
   * A fee in the account currency: the base asset at the fill price (then its quote converted), the
   * quote or any other asset at `rate`; NaN when an asset has no price.
   */
  feeValue(inst: Instrument, price: number, fee: number, feeAsset: string, rate?: Rate): number {
    if (feeAsset === this.currency) return fee;
    if (feeAsset === inst.base) {
      const inQuote = fee * price;
      return inst.quote === this.currency ? inQuote : inQuote * this.unit(inst.quote, rate);
    }
    return fee * this.unit(feeAsset, rate);
  }

  /** One unit of `asset` in the account currency, or NaN. */
  private unit(asset: string, rate: Rate | undefined): number {
    if (asset === this.currency) return 1;
    const r = rate === undefined ? Number.NaN : rate(asset);
    return r > 0 ? r : Number.NaN;
  }

  /** Unrealised PnL of the open positions at their last price, in the account currency. */
  unrealizedPnl(rate?: Rate): number {
    let u = 0;
    for (const p of this.positions) {
      if (p.size === 0) continue;
      const x = p.size * (p.lastPrice - p.avgPrice) * p.instrument.contractSize;
      u += p.instrument.quote === this.currency ? x : this.convert(x, p.instrument.quote, rate);
    }
    return u;
  }

  /** The books now: cash, equity, realised and unrealised PnL, fees by asset, positions. */
  summary(rate?: Rate): PortfolioSummary {
    const record = (m: ReadonlyMap<string, number>) => {
      const o: Record<string, number> = {};
      for (const k of [...m.keys()].sort()) o[k] = m.get(k) as number;
      return o;
    };
    return {
      currency: this.currency,
      cash: this.cash,
      equity: this.equity(rate),
      realizedPnl: this.realizedPnl,
      unrealizedPnl: this.unrealizedPnl(rate),
      feesPaid: this.feesPaid,
      feesByAsset: record(this.feesByAsset),
      unvaluedFees: record(this.unvaluedFees),
      balances: record(this.balances),
      positions: this.positions.map((p) => ({
        symbol: p.instrument.symbol,
        ...(p.positionSide !== undefined ? { positionSide: p.positionSide } : {}),
        size: p.size,
        avgPrice: p.avgPrice,
        lastPrice: p.lastPrice,
        value: this.positionValue(p),
        unrealizedPnl: p.size === 0 ? 0 : p.size * (p.lastPrice - p.avgPrice) * p.instrument.contractSize,
        realizedPnl: p.realizedPnl,
        fees: p.fees,
      })),
    };
  }

  /** Value of one position in its settle currency, with backtrader's exact expression. */
  positionValue(p: Position): number {
    if (p.size === 0) return 0;
    const c = p.lastPrice;
    if (p.instrument.kind === 'perpetual') return p.size * (c - p.avgPrice) * p.instrument.contractSize;
    const dv = p.size * c * p.instrument.contractSize;
    const du = p.size * (c - p.avgPrice) * 1.0 * p.instrument.contractSize;
    return 0.0 + (dv - du) / 1.0 + du;
  }

  /** Total value in the account currency. Cross-currency balances are valued by `rate`. */
  equity(rate?: (asset: string) => number): number {
    // The common case (one market quoted in the account currency, no other balances) in a few
    // lines, so that the call the backtest makes on every bar is inlined (same arithmetic).
    const ps = this.positions;
    if (ps.length === 1 && this.balances.size === 0) {
      const p = ps[0] as Position;
      if (p.size === 0) return this.cash;
      if (p.instrument.quote === this.currency) return this.cash + this.positionValue(p);
    }
    return this.equityOf(rate);
  }

  private equityOf(rate?: (asset: string) => number): number {
    let v = this.cash;
    const ps = this.positions;
    if (ps.length === 1) {
      const p = ps[0] as Position;
      if (p.size !== 0) v = this.cash + this.convert(this.positionValue(p), p.instrument.quote, rate);
    } else {
      let sum = 0.0;
      for (let i = 0; i < ps.length; i++) {
        const p = ps[i] as Position;
        if (p.size !== 0) sum += this.convert(this.positionValue(p), p.instrument.quote, rate);
      }
      v = this.cash + sum;
    }
    if (this.balances.size > 0) {
      for (const [asset, amount] of this.balances) if (amount !== 0) v += this.convert(amount, asset, rate);
    }
    return v;
  }

  private convert(amount: number, asset: string, rate?: (asset: string) => number): number {
    if (asset === this.currency) return amount;
    if (!rate)
      throw new Error(`Cannot value ${asset} in ${this.currency}: no ${asset}/${this.currency} market to price it`);
    return amount * rate(asset);
  }

  /** Gross exposure (sum of |notional|) in the account currency, for exposure metrics. */
  grossExposure(): number {
    let g = 0;
    for (const p of this.positions) if (p.size !== 0) g += Math.abs(p.size * p.lastPrice * p.instrument.contractSize);
    return g;
  }
}
