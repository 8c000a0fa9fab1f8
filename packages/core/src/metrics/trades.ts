import type { Fill } from '../model/orders.ts';

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
  readonly closed: Trade[] = [];
  private readonly open = new Map<string, Building>();

  /** `feeInQuote` is the fill's fee valued in the quote currency. */
  onFill(f: Fill, feeInQuote: number): void {
    const signed = f.side === 'buy' ? f.amount : -f.amount;
    let b = this.open.get(f.symbol);
    let rest = signed;
    let fee = feeInQuote;
    if (b && Math.sign(rest) !== b.dir) {
      const closeAbs = Math.min(Math.abs(rest), b.size);
      const share = closeAbs / Math.abs(rest);
      const closeFee = fee * share;
      b.pnl = b.pnl + b.dir * closeAbs * (f.price - b.price) * 1.0;
      b.fees += closeFee;
      b.exitValue += closeAbs * f.price;
      b.exitAmount += closeAbs;
      b.exitFills++;
      b.lastExitPrice = f.price;
      b.size -= closeAbs;
      b.exitOrderId = f.orderId;
      rest = rest + b.dir * closeAbs;
      fee -= closeFee;
      if (b.size <= b.maxSize * 1e-12) {
        this.closed.push({
          symbol: b.symbol,
          direction: b.dir > 0 ? 'long' : 'short',
          entryTime: b.entryTime,
          exitTime: f.time,
          entryPrice: b.price,
          exitPrice: b.exitFills === 1 ? b.lastExitPrice : b.exitValue / b.exitAmount,
          size: b.maxSize,
          pnlGross: b.pnl,
          fees: b.fees,
          pnlNet: b.pnl - b.fees,
          returnPct: (b.pnl - b.fees) / (b.maxSize * b.price) * 100,
          entryOrderId: b.entryOrderId,
          exitOrderId: b.exitOrderId,
        });
        this.open.delete(f.symbol);
        b = undefined;
      }
    }
    if (rest === 0) return;
    const abs = Math.abs(rest);
    if (!b) {
      b = {
        symbol: f.symbol,
        dir: rest > 0 ? 1 : -1,
        entryTime: f.time,
        size: 0,
        maxSize: 0,
        price: 0.0,
        exitValue: 0,
        exitAmount: 0,
        exitFills: 0,
        lastExitPrice: Number.NaN,
        pnl: 0.0,
        fees: 0.0,
        entryOrderId: f.orderId,
        exitOrderId: '',
      };
      this.open.set(f.symbol, b);
    }
    // backtrader Trade.update: price = (size*price + s*p) / (size + s)
    b.price = (b.size * b.price + abs * f.price) / (b.size + abs);
    b.size += abs;
    b.maxSize = Math.max(b.maxSize, b.size);
    b.fees = b.fees + fee;
  }

  openTrades(): OpenTrade[] {
    return [...this.open.values()].map((b) => ({ symbol: b.symbol, direction: b.dir > 0 ? 'long' : 'short', entryTime: b.entryTime, entryPrice: b.price, size: b.size, fees: b.fees }));
  }
}
