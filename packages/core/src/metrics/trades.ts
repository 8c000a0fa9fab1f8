import type { Fill } from '../model/orders.ts';
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
  symbol: string;
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

/** Builds round trips from fills, with backtrader's arithmetic for the running price and PnL. */
export class TradeTracker {
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
  private readonly refs: { symbol: string; entryOrderId: string; exitOrderId: string }[] = [];
  private cache: Trade[] | undefined;

  /** Closed trades, oldest first (built on demand, cached until the next close). */
  get closed(): readonly Trade[] {
    if (this.cache === undefined) {
      const c = this.cols;
      const out: Trade[] = new Array(this.refs.length);
      for (let i = 0; i < out.length; i++) {
        const r = this.refs[i] as { symbol: string; entryOrderId: string; exitOrderId: string };
        const pnlGross = c.pnlGross.get(i);
        const fees = c.fees.get(i);
        const size = c.size.get(i);
        const entryPrice = c.entryPrice.get(i);
        out[i] = {
          symbol: r.symbol,
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
          entryOrderId: r.entryOrderId,
          exitOrderId: r.exitOrderId,
        };
      }
      this.cache = out;
    }
    return this.cache;
  }

  get closedCount(): number {
    return this.refs.length;
  }

  /** `feeInQuote` is the fill's fee valued in the quote currency. */
  onFill(f: Fill, feeInQuote: number): void {
    this.add(f.symbol, f.side, f.price, f.amount, feeInQuote, f.time, f.orderId);
  }

  add(
    symbol: string,
    side: 'buy' | 'sell',
    price: number,
    amount: number,
    feeInQuote: number,
    time: number,
    orderId: string,
  ): void {
    const signed = side === 'buy' ? amount : -amount;
    let b = this.open.get(symbol);
    let rest = signed;
    let fee = feeInQuote;
    if (b && Math.sign(rest) !== b.dir) {
      const closeAbs = Math.min(Math.abs(rest), b.size);
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
      rest = rest + b.dir * closeAbs;
      fee -= closeFee;
      if (b.size <= b.maxSize * 1e-12) {
        const c = this.cols;
        c.entryTime.push(b.entryTime);
        c.exitTime.push(time);
        c.entryPrice.push(b.price);
        c.exitPrice.push(b.exitFills === 1 ? b.lastExitPrice : b.exitValue / b.exitAmount);
        c.size.push(b.maxSize);
        c.pnlGross.push(b.pnl);
        c.fees.push(b.fees);
        c.dir.push(b.dir);
        this.refs.push({ symbol: b.symbol, entryOrderId: b.entryOrderId, exitOrderId: b.exitOrderId });
        this.cache = undefined;
        this.open.delete(symbol);
        b = undefined;
      }
    }
    if (rest === 0) return;
    const abs = Math.abs(rest);
    if (!b) {
      b = {
        symbol,
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
      this.open.set(symbol, b);
    }
    // backtrader Trade.update: price = (size*price + s*p) / (size + s)
    b.price = (b.size * b.price + abs * price) / (b.size + abs);
    b.size += abs;
    b.maxSize = Math.max(b.maxSize, b.size);
    b.fees = b.fees + fee;
  }

  openTrades(): OpenTrade[] {
    return [...this.open.values()].map((b) => ({
      symbol: b.symbol,
      direction: b.dir > 0 ? 'long' : 'short',
      entryTime: b.entryTime,
      entryPrice: b.price,
      size: b.size,
      fees: b.fees,
    }));
  }
}
