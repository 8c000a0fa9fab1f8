import type { Logger } from '../bot-log.ts';

/**
 * The value in the quote of a fee paid outside the fill's market (BNB), at the prices the bot
 * reads (FeePrices); NaN when it has none or the fee is the market's own.
 */
export type FeeValue = (symbol: string, fee: number, feeAsset: string) => number;

/** A fill's `feeValue` field: present only for a fee that has a value (none for a zero fee or an unvalued one). */
export function feeValueField(
  value: FeeValue | undefined,
  symbol: string,
  fee: number,
  feeAsset: string,
): { feeValue?: number } {
  const v = fee === 0 ? Number.NaN : (value?.(symbol, fee, feeAsset) ?? Number.NaN);
  return Number.isFinite(v) ? { feeValue: v } : {};
}

/**
 * The prices, in a live bot's quote currency, of the assets its exchange charges fees in besides
 * its markets' own: Binance's BNB for an account that pays its fees with BNB. They are read from
 * the exchange (`<asset>/<quote>`'s last price) when the bot starts and once per bar before the
 * strategy runs, never in the middle of booking a fill: a fill in BNB is valued at the price of
 * the last read (on a bar of the market that filled it, the price at the bar's close, which is
 * when the orders of that bar leave). Same bars and same exchange, same values.
 *
 * An asset is watched from the start when the exchange says the account pays fees in it
 * (`LiveExchange.feeDiscountAsset`), or from the first fill charged in it: that first fill then has
 * no value (reported as not valued), the next read gives one. A failed read keeps the last price
 * and says so; an asset never read has none (NaN).
 */
export class FeePrices {
  private readonly assets = new Set<string>();
  private readonly prices = new Map<string, number>();
  private readonly failing = new Set<string>();
  /** Per asset: the fees booked in it that had a value, and that value. */
  private readonly booked = new Map<string, { amount: number; value: number }>();

  constructor(
    private readonly quote: string,
    private readonly read: (symbol: string) => Promise<number>,
    private readonly log: Logger,
  ) {}

  /** Starts reading `asset`'s price (a no-op for the quote itself and for an asset watched already). */
  watch(asset: string): boolean {
    if (asset === this.quote || this.assets.has(asset)) return false;
    this.assets.add(asset);
    return true;
  }

  get watched(): readonly string[] {
    return [...this.assets];
  }

  /** Reads the price of every watched asset. */
  async refresh(): Promise<void> {
    for (const asset of this.assets) {
      const symbol = `${asset}/${this.quote}`;
      try {
        const p = await this.read(symbol);
        if (!(p > 0)) throw new Error(`the exchange gave ${p} as its last price`);
        this.prices.set(asset, p);
        if (this.failing.delete(asset)) this.log('info', `fee prices: ${symbol} read again (${p})`);
      } catch (e) {
        if (this.failing.has(asset)) continue;
        this.failing.add(asset);
        const last = this.prices.get(asset);
        this.log(
          'warn',
          `fee prices: could not read ${symbol} (${(e as Error).message}): fees paid in ${asset} are valued at ${last === undefined ? "nothing until a read succeeds (named as not valued; the bot's equity leaves them out meanwhile)" : `the last price read, ${last}`}`,
        );
      }
    }
  }

  /** One unit of `asset` in the quote, from the last read; NaN when never read. */
  readonly price = (asset: string): number => this.prices.get(asset) ?? Number.NaN;

  /** A fee of `amount` in `asset` the bot's books took, worth `value` in the quote (NaN: not valued). */
  book(asset: string, amount: number, value: number | undefined): void {
    if (value === undefined || !Number.isFinite(value)) return;
    const b = this.booked.get(asset) ?? { amount: 0, value: 0 };
    b.amount += amount;
    b.value += value;
    this.booked.set(asset, b);
  }

  /**
   * One unit of `asset` at what the fees paid in it were worth when the bot booked them (their
   * value over their amount); the last read before any was booked. The books' debt in BNB is
   * valued at this, so that the bot's equity falls by what each fee was worth when it was paid, as
   * a fee paid in the quote would make it fall, and not with the price of BNB afterwards (the
   * account's BNB is the user's, and so is its price risk). With no price at all (never read, no
   * fee valued) it is 0: the equity a strategy sizes by leaves that debt out rather than becoming
   * NaN (which would stop every sizing); the fees themselves stay named as not valued, and the
   * failed read is logged.
   */
  readonly bookedPrice = (asset: string): number => {
    const b = this.booked.get(asset);
    if (b !== undefined && b.amount > 0) return b.value / b.amount;
    const p = this.price(asset);
    return Number.isNaN(p) ? 0 : p;
  };
}
