import type { Logger } from '../bot-log.ts';

/** The one status in which an exchange takes new orders in a market (Binance's exchangeInfo `status`). */
export const TRADING = 'TRADING';

export interface MarketStatusOptions {
  /** The market's status as the exchange lists it now (`LiveExchange.marketStatus`). */
  readonly read: (symbol: string) => Promise<string>;
  /**
   * A market that no longer trades (spot: BREAK, HALT, ... when a pair is halted or delisted;
   * USDⓈ-M: SETTLING, CLOSE, PENDING_TRADING; `NOT LISTED`): called once per market.
   */
  readonly onClosed: (symbol: string, status: string) => void;
  readonly log: Logger;
}

/**
 * "Is this market trading", the one home of it for a live bot, spot and perpetuals alike: reads
 * the market's status from the exchange when asked (at start, after the exchange refused an order,
 * after it cancelled one, after a settlement close) and says a market that is not TRADING once.
 * Reads of one market do not overlap; a read that fails is logged, and the next occasion reads
 * again.
 */
export class MarketStatusWatch {
  private readonly closed = new Set<string>();
  private readonly reading = new Set<string>();

  constructor(private readonly o: MarketStatusOptions) {}

  /** Whether `symbol` was found not trading. */
  isClosed(symbol: string): boolean {
    return this.closed.has(symbol);
  }

  /** Reads `symbol`'s status; not TRADING: `onClosed`, once per market. */
  async check(symbol: string): Promise<void> {
    if (this.closed.has(symbol) || this.reading.has(symbol)) return;
    this.reading.add(symbol);
    try {
      const status = await this.o.read(symbol);
      if (status !== TRADING && !this.closed.has(symbol)) {
        this.closed.add(symbol);
        this.o.onClosed(symbol, status);
      }
    } catch (e) {
      this.o.log('warn', `could not read the status of ${symbol} on the exchange: ${(e as Error).message}`);
    } finally {
      this.reading.delete(symbol);
    }
  }
}
