import { type BarSeries, ExactRollingSum } from '@keel/core';

/**
 * The floor: the same signals and the same fills (next open, 0.1 % fee, 95 % target) in one
 * hand-written loop with no engine, no events and no metrics. The window sums are the exact ones
 * the indicators use (backtrader's values): with plain running sums the rounding drift changes
 * dozens of crossings over 1M bars, and a loop that trades differently is not the same signals.
 * The bench prints whether the trade counts agree.
 */
export function bareLoop(strategy: string, s: BarSeries): { trades: number; finalValue: number } {
  const n = s.length;
  const { open, close } = s;
  let cash = 10_000;
  let size = 0;
  let pending = 0; // +1 buy at next open, -1 sell at next open
  let pendingSize = 0;
  let trades = 0;
  const fee = 0.001;
  // indicator state
  const s10 = new ExactRollingSum();
  const s30 = new ExactRollingSum();
  let prevD = Number.NaN;
  let up = 0;
  let dn = 0;
  const s20 = new ExactRollingSum();
  const q20 = new ExactRollingSum();
  for (let i = 0; i < n; i++) {
    const o = open[i] as number;
    const c = close[i] as number;
    if (pending === 1) {
      const cost = pendingSize * o;
      if (cash - cost - cost * fee >= 0) {
        cash -= cost + cost * fee;
        size = pendingSize;
      }
    } else if (pending === -1) {
      cash += size * o - size * o * fee;
      size = 0;
      trades++;
    }
    pending = 0;
    let buy = false;
    let sell = false;
    if (strategy === 'sma-cross') {
      s10.add(c);
      if (i >= 10) s10.add(-(close[i - 10] as number));
      s30.add(c);
      if (i >= 30) s30.add(-(close[i - 30] as number));
      if (i >= 29) {
        const a = s10.value / 10;
        const b = s30.value / 30;
        const d = a - b;
        buy = prevD < 0 && a > b;
        sell = prevD > 0 && a < b;
        if (d !== 0 || Number.isNaN(prevD)) prevD = d;
      }
    } else if (strategy === 'rsi-reversion') {
      if (i > 0) {
        const ch = c - (close[i - 1] as number);
        const u = Math.max(ch, 0);
        const dd = ch < 0 ? -ch : 0;
        if (i <= 14) {
          up += u / 14;
          dn += dd / 14;
        } else {
          up = up * (13 / 14) + u / 14;
          dn = dn * (13 / 14) + dd / 14;
        }
        if (i >= 14) {
          const rsi = 100 - 100 / (1 + up / dn);
          buy = rsi < 30;
          sell = rsi > 70;
        }
      }
    } else {
      if (i >= 20) {
        const old = close[i - 20] as number;
        s20.add(-old);
        q20.add(-(old * old));
      }
      s20.add(c);
      q20.add(c * c);
      if (i >= 19) {
        const m = s20.value / 20;
        const sd = Math.sqrt(Math.abs(q20.value / 20 - m * m));
        buy = c < m - 2 * sd;
        sell = c > m;
      }
    }
    if (size === 0 && buy) {
      pending = 1;
      pendingSize = (0.95 * cash) / c;
    } else if (size > 0 && sell) pending = -1;
  }
  return { trades, finalValue: cash + size * (close[n - 1] as number) };
}
