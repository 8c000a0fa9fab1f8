import { closesExactly, FLAT_TOLERANCE, type Instrument, isDust } from '../model/instrument.ts';
import type { FillHook, HedgeSide } from '../model/orders.ts';
import { objectArray } from '../util/arrays.ts';
import { F64Column } from '../util/columns.ts';

/** A round trip: from flat to flat (a reversal closes one trade and opens the next). */
export interface Trade {
  readonly symbol: string;
  readonly direction: 'long' | 'short';
  readonly entryTime: number;
  readonly exitTime: number;
  /** Running average entry price, computed as backtrader's Trade.price. */
  readonly entryPrice: number;
  /** Volume-weighted exit price. */
  readonly exitPrice: number;
  /** Largest absolute size held during the trade. */
  readonly size: number;
  readonly pnlGross: number;
  readonly fees: number;
  readonly pnlNet: number;
  readonly returnPct: number;
  readonly entryOrderId: string;
  readonly exitOrderId: string;
}

export interface OpenTrade {
  readonly symbol: string;
  readonly direction: 'long' | 'short';
  readonly entryTime: number;
  readonly entryPrice: number;
  readonly size: number;
  readonly fees: number;
}

interface Building {
  /** False once the round trip closed: the object is kept and reused for the symbol's next trade. */
  active: boolean;
  symbol: string;
  /** A hedge-mode side: its round trips are apart from the other side's. */
  positionSide: HedgeSide | undefined;
  dir: 1 | -1;
  entryTime: number;
  size: number;
  maxSize: number;
  price: number;
  exitValue: number;
  exitAmount: number;
  exitFills: number;
  lastExitPrice: number;
  pnl: number;
  fees: number;
  entryOrderId: string;
  exitOrderId: string;
}

/** A round trip as it closes (what the risk engine's protections read). */
export interface ClosedTradeEvent {
  readonly symbol: string;
  readonly exitTime: number;
  readonly exitOrderId: string;
  readonly pnlNet: number;
  /** Net PnL over the entry notional (largest size x average entry price), as a fraction. */
  readonly ret: number;
}

/** An open round trip's state as plain JSON (TradeTracker.openState / restoreOpen). */
export interface OpenTradeState {
  readonly symbol: string;
  /** A hedge-mode side (absent in one-way mode). */
  readonly positionSide?: HedgeSide;
  readonly dir: 1 | -1;
  readonly entryTime: number;
  readonly size: number;
  readonly maxSize: number;
  readonly price: number;
  readonly exitValue: number;
  readonly exitAmount: number;
  readonly exitFills: number;
  readonly lastExitPrice: number | null;
  readonly pnl: number;
  readonly fees: number;
  readonly entryOrderId: string;
  readonly exitOrderId: string;
}

/** Win/loss totals of closed trades, summed in trade order (what the metrics need of them). */
export interface TradeSummary {
  readonly count: number;
  readonly wins: number;
  readonly grossWin: number;
  readonly grossLoss: number;
  readonly net: number;
}

/** Totals of closed trades' net PnL, oldest first (the same sums whether from objects or columns). */
export function summarizeTrades(count: number, pnlNet: (i: number) => number): TradeSummary {
  let wins = 0;
  let grossWin = 0;
  let grossLoss = 0;
  let net = 0;
  for (let i = 0; i < count; i++) {
    const p = pnlNet(i);
    net += p;
    if (p > 0) {
      wins++;
      grossWin += p;
    } else grossLoss -= p;
  }
  return { count, wins, grossWin, grossLoss, net };
}

/** Builds round trips from fills, with backtrader's arithmetic for the running price and PnL. */
export class TradeTracker {
  /** One entry per symbol ever traded; `active` tells whether a trade is open. */
  private readonly open = new Map<string, Building>();
  // Closed trades in columns: recording one allocates nothing; objects are built when read.
  private readonly cols = {
    entryTime: new F64Column(),
    exitTime: new F64Column(),
    entryPrice: new F64Column(),
    exitPrice: new F64Column(),
    size: new F64Column(),
    pnlGross: new F64Column(),
    fees: new F64Column(),
    dir: new F64Column(),
  };
  private readonly symbols = objectArray<string>();
  private readonly entryOrderIds = objectArray<string>();
  private readonly exitOrderIds = objectArray<string>();
  private cache: Trade[] | undefined;

  /** Closed trades, oldest first (built on demand, cached until the next close). */
  get closed(): readonly Trade[] {
    if (this.cache === undefined) {
      const c = this.cols;
      const out: Trade[] = new Array(this.symbols.length);
      for (let i = 0; i < out.length; i++) {
        const pnlGross = c.pnlGross.get(i);
        const fees = c.fees.get(i);
        const size = c.size.get(i);
        const entryPrice = c.entryPrice.get(i);
        out[i] = {
          symbol: this.symbols[i] as string,
          direction: c.dir.get(i) > 0 ? 'long' : 'short',
          entryTime: c.entryTime.get(i),
          exitTime: c.exitTime.get(i),
          entryPrice,
          exitPrice: c.exitPrice.get(i),
          size,
          pnlGross,
          fees,
          pnlNet: pnlGross - fees,
          returnPct: ((pnlGross - fees) / (size * entryPrice)) * 100,
          entryOrderId: this.entryOrderIds[i] as string,
          exitOrderId: this.exitOrderIds[i] as string,
        };
      }
      this.cache = out;
    }
    return this.cache;
  }

  get closedCount(): number {
    return this.symbols.length + this.dropped;
  }

  /** Totals of the closed trades, from the columns (no Trade objects built). */
  summary(): TradeSummary {
    const c = this.cols;
    return summarizeTrades(this.symbols.length, (i) => c.pnlGross.get(i) - c.fees.get(i));
  }

  /** The instruments fills are booked against, by symbol (fees in the base asset, step sizes). */
  private readonly instruments = new Map<string, Instrument>();

  /** Closed round trips counted but no longer kept (see keepClosed). */
  private dropped = 0;

  /**
   * `onClose` is told of every round trip as it closes. `keepClosed`: how many of the last closed
   * round trips `closed` keeps at least (up to twice as many), for a bot that runs for months,
   * whose fills are in its store; 0 only counts them (`closedCount`). Default: all.
   */
  constructor(
    instruments: readonly Instrument[] = [],
    private readonly onClose?: (t: ClosedTradeEvent) => void,
    private readonly keepClosed = Number.POSITIVE_INFINITY,
  ) {
    for (const i of instruments) if (!this.instruments.has(i.symbol)) this.instruments.set(i.symbol, i);
  }

  /** The open round trips as plain JSON, to carry them over a restart (`restoreOpen`). */
  openState(): OpenTradeState[] {
    const out: OpenTradeState[] = [];
    for (const b of this.open.values()) {
      if (!b.active) continue;
      out.push({
        symbol: b.symbol,
        ...(b.positionSide !== undefined ? { positionSide: b.positionSide } : {}),
        dir: b.dir,
        entryTime: b.entryTime,
        size: b.size,
        maxSize: b.maxSize,
        price: b.price,
        exitValue: b.exitValue,
        exitAmount: b.exitAmount,
        exitFills: b.exitFills,
        lastExitPrice: Number.isFinite(b.lastExitPrice) ? b.lastExitPrice : null,
        pnl: b.pnl,
        fees: b.fees,
        entryOrderId: b.entryOrderId,
        exitOrderId: b.exitOrderId,
      });
    }
    return out;
  }

  /** Puts back open round trips saved by `openState` (before any fill of their symbols). */
  restoreOpen(states: readonly OpenTradeState[]): void {
    for (const s of states)
      this.open.set(tradeKey(s.symbol, s.positionSide), {
        ...s,
        positionSide: s.positionSide,
        active: true,
        lastExitPrice: s.lastExitPrice ?? Number.NaN,
      });
  }

  /**
   * A fill as the account books it: the engine's `onFill` hook (no object built). A fee paid in
   * the base asset of a spot buy (Binance charges the asset received) leaves `amount - fee`
   * coins: the trade holds that many, so the exit that sells them closes it; the fee counts
   * once, valued in the quote. What an exit leaves that cannot be traded (dust, `isDust`: below
   * the step, the minimum amount or notional) closes the trade, as the strategy sees the position
   * flat; when later exits sell that dust along with a new trade's coins, the extra is not a
   * short. A symbol without an instrument is booked as given.
   */
  readonly fill: FillHook = (symbol, side, price, amount, fee, feeAsset, time, orderId, positionSide) => {
    const inst = this.instruments.get(symbol);
    if (inst === undefined) return this.add(symbol, side, price, amount, fee, time, orderId, undefined, positionSide);
    const inBase = feeAsset === inst.base;
    const held = inBase && side === 'buy' && inst.kind !== 'perpetual' ? amount - fee : amount;
    this.add(symbol, side, price, held, inBase ? fee * price : fee, time, orderId, inst, positionSide);
  };

  /** Keeps the round trip `b`, closed at `time`, in the columns. */
  private record(b: Building, time: number): void {
    const c = this.cols;
    c.entryTime.push(b.entryTime);
    c.exitTime.push(time);
    c.entryPrice.push(b.price);
    c.exitPrice.push(b.exitFills === 1 ? b.lastExitPrice : b.exitValue / b.exitAmount);
    c.size.push(b.maxSize);
    c.pnlGross.push(b.pnl);
    c.fees.push(b.fees);
    c.dir.push(b.dir);
    this.symbols.push(b.symbol);
    this.entryOrderIds.push(b.entryOrderId);
    this.exitOrderIds.push(b.exitOrderId);
    this.cache = undefined;
    if (this.symbols.length >= 2 * this.keepClosed) this.forgetOldest(this.symbols.length - this.keepClosed);
  }

  /** Lets the `n` oldest closed round trips go (counted in `closedCount`, no longer in `closed`). */
  private forgetOldest(n: number): void {
    for (const c of Object.values(this.cols)) {
      c.data.copyWithin(0, n, c.length);
      c.length -= n;
    }
    for (const a of [this.symbols, this.entryOrderIds, this.exitOrderIds]) a.splice(0, n);
    this.dropped += n;
  }

  /** `inst`: what is dust in this market (none without one). */
  private add(
    symbol: string,
    side: 'buy' | 'sell',
    price: number,
    amount: number,
    feeInQuote: number,
    time: number,
    orderId: string,
    inst: Instrument | undefined,
    positionSide: HedgeSide | undefined,
  ): void {
    const signed = side === 'buy' ? amount : -amount;
    const key = tradeKey(symbol, positionSide);
    let b = this.open.get(key);
    const known = b;
    if (b !== undefined && !b.active) b = undefined;
    let rest = signed;
    let fee = feeInQuote;
    if (b && Math.sign(rest) !== b.dir) {
      const closeAbs = Math.min(Math.abs(rest), b.size);
      // As the account books it: a fill within binary noise of the size closes it and opens nothing.
      const exact = closesExactly(b.size, Math.abs(rest));
      const share = closeAbs / Math.abs(rest);
      const closeFee = fee * share;
      b.pnl = b.pnl + b.dir * closeAbs * (price - b.price) * 1.0;
      b.fees += closeFee;
      b.exitValue += closeAbs * price;
      b.exitAmount += closeAbs;
      b.exitFills++;
      b.lastExitPrice = price;
      b.size -= closeAbs;
      b.exitOrderId = orderId;
      rest = exact ? 0 : rest + b.dir * closeAbs;
      fee -= closeFee;
      if (exact || b.size <= b.maxSize * FLAT_TOLERANCE || (inst !== undefined && isDust(inst, b.size, price))) {
        if (this.keepClosed > 0) this.record(b, time);
        else this.dropped++;
        b.active = false;
        if (this.onClose !== undefined) {
          const pnlNet = b.pnl - b.fees;
          this.onClose({
            symbol: b.symbol,
            exitTime: time,
            exitOrderId: b.exitOrderId,
            pnlNet,
            ret: pnlNet / (b.maxSize * b.price),
          });
        }
        b = undefined;
      }
    }
    if (rest === 0) return;
    // Dust a closed trade left behind, sold with this exit: it opens no trade of its own.
    if (known !== undefined && b === undefined && rest < 0 && inst?.kind === 'spot' && isDust(inst, rest, price))
      return;
    const abs = Math.abs(rest);
    if (!b) {
      if (known === undefined) {
        b = {
          active: true,
          symbol,
          positionSide,
          dir: rest > 0 ? 1 : -1,
          entryTime: time,
          size: 0,
          maxSize: 0,
          price: 0.0,
          exitValue: 0,
          exitAmount: 0,
          exitFills: 0,
          lastExitPrice: Number.NaN,
          pnl: 0.0,
          fees: 0.0,
          entryOrderId: orderId,
          exitOrderId: '',
        };
        this.open.set(key, b);
      } else {
        // The symbol's last trade closed: start the next one in the same object.
        b = known;
        b.active = true;
        b.dir = rest > 0 ? 1 : -1;
        b.entryTime = time;
        b.size = 0;
        b.maxSize = 0;
        b.price = 0.0;
        b.exitValue = 0;
        b.exitAmount = 0;
        b.exitFills = 0;
        b.lastExitPrice = Number.NaN;
        b.pnl = 0.0;
        b.fees = 0.0;
        b.entryOrderId = orderId;
        b.exitOrderId = '';
        // Keep the map in opening order (openTrades lists trades as they were opened).
        if (this.open.size > 1) {
          this.open.delete(key);
          this.open.set(key, b);
        }
      }
    }
    // backtrader Trade.update: price = (size*price + s*p) / (size + s)
    b.price = (b.size * b.price + abs * price) / (b.size + abs);
    b.size += abs;
    b.maxSize = Math.max(b.maxSize, b.size);
    b.fees = b.fees + fee;
  }

  openTrades(): OpenTrade[] {
    return [...this.open.values()]
      .filter((b) => b.active)
      .map((b) => ({
        symbol: b.symbol,
        direction: b.dir > 0 ? 'long' : 'short',
        entryTime: b.entryTime,
        entryPrice: b.price,
        size: b.size,
        fees: b.fees,
      }));
  }
}

/** The open-trade key: the symbol, with the side of a hedge-mode market (its sides trade apart). */
function tradeKey(symbol: string, positionSide: HedgeSide | undefined): string {
  return positionSide === undefined ? symbol : `${symbol} ${positionSide}`;
}
