/**
 * The funding events of every contract, in time order, with a cursor that the exchange advances
 * with the replay clock: each event is applied once, at its own time.
 */
import { type FundingRateSeries, fundingIndexAfter } from '@keel/core';

export interface FundingEvent {
  symbol: string;
  time: number;
  rate: number;
  intervalHours: number;
}

export class FundingSchedule {
  private readonly cursors = new Map<string, number>();

  constructor(
    private readonly series: ReadonlyMap<string, FundingRateSeries>,
    startTime: number,
  ) {
    // Events at or before the start are history: they were paid before the replay began.
    for (const [symbol, s] of series) this.cursors.set(symbol, fundingIndexAfter(s, startTime));
  }

  /** Time of the next event of any contract (+Infinity when none is left). */
  nextTime(): number {
    let t = Number.POSITIVE_INFINITY;
    for (const [symbol, s] of this.series) {
      const i = this.cursors.get(symbol) ?? s.length;
      if (i < s.length) t = Math.min(t, s.time[i] as number);
    }
    return t;
  }

  /** Takes the events due at or before t, oldest first (the cursor moves past them). */
  takeDue(t: number): FundingEvent[] {
    const out: FundingEvent[] = [];
    for (const [symbol, s] of this.series) {
      let i = this.cursors.get(symbol) ?? s.length;
      while (i < s.length && (s.time[i] as number) <= t) {
        out.push({
          symbol,
          time: s.time[i] as number,
          rate: s.rate[i] as number,
          intervalHours: s.intervalHours[i] as number,
        });
        i++;
      }
      this.cursors.set(symbol, i);
    }
    return out.sort((a, b) => a.time - b.time || a.symbol.localeCompare(b.symbol));
  }

  /** The contract's next event (what premiumIndex reports as the coming funding), if any. */
  next(symbol: string): FundingEvent | undefined {
    const s = this.series.get(symbol);
    const i = this.cursors.get(symbol);
    if (!s || i === undefined || i >= s.length) return undefined;
    return {
      symbol,
      time: s.time[i] as number,
      rate: s.rate[i] as number,
      intervalHours: s.intervalHours[i] as number,
    };
  }

  /** Past events of a contract at or before `now` within [start, end], as /fapi/v1/fundingRate lists them. */
  history(symbol: string, now: number, start: number, end: number): FundingEvent[] {
    const s = this.series.get(symbol);
    if (!s) return [];
    const out: FundingEvent[] = [];
    for (let i = 0; i < s.length; i++) {
      const t = s.time[i] as number;
      if (t > now || t > end) break;
      if (t < start) continue;
      out.push({ symbol, time: t, rate: s.rate[i] as number, intervalHours: s.intervalHours[i] as number });
    }
    return out;
  }
}
