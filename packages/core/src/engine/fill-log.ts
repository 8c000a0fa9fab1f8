import type { Fill, HedgeSide, Liquidity, OrderSide } from '../model/orders.ts';
import { objectArray } from '../util/arrays.ts';
import type { ClientOrderId } from '../util/brand.ts';
import { F64Column } from '../util/columns.ts';

/**
 * Every fill of a run, stored in columns: recording a fill allocates no object (the hot path of
 * an order-heavy backtest), and Fill objects are built only when someone reads them.
 */
export class FillLog {
  private readonly time = new F64Column();
  private readonly price = new F64Column();
  private readonly amount = new F64Column();
  private readonly fee = new F64Column();
  private readonly flags = new F64Column(); // bit 0: sell, bit 1: maker, bit 2: hedge long, bit 3: hedge short
  // Symbol, fee asset and tag repeat: stored as codes into `strings` (0 = no tag), not as arrays
  // of references the GC has to trace.
  private readonly symbol = new F64Column();
  private readonly feeAsset = new F64Column();
  private readonly tag = new F64Column();
  private readonly strings: (string | undefined)[] = [undefined];
  private readonly codes = new Map<string, number>();
  private readonly orderId = objectArray<ClientOrderId>();
  private readonly tradeId = objectArray<string>();
  /** Fill index -> the value of a fee paid outside the market (BNB), where it had one: rare, so not a column. */
  private readonly feeValues = new Map<number, number>();
  private cache: Fill[] | undefined;

  private code(s: string | undefined): number {
    if (s === undefined) return 0;
    let c = this.codes.get(s);
    if (c === undefined) {
      c = this.strings.length;
      this.strings.push(s);
      this.codes.set(s, c);
    }
    return c;
  }

  get length(): number {
    return this.orderId.length;
  }

  push(
    orderId: ClientOrderId,
    tradeId: string,
    symbol: string,
    side: OrderSide,
    price: number,
    amount: number,
    fee: number,
    feeAsset: string,
    liquidity: Liquidity,
    time: number,
    tag: string | undefined,
    positionSide?: HedgeSide,
    feeValue = Number.NaN,
  ): void {
    if (!Number.isNaN(feeValue)) this.feeValues.set(this.length, feeValue);
    this.time.push(time);
    this.price.push(price);
    this.amount.push(amount);
    this.fee.push(fee);
    this.flags.push(
      (side === 'sell' ? 1 : 0) |
        (liquidity === 'maker' ? 2 : 0) |
        (positionSide === 'long' ? 4 : positionSide === 'short' ? 8 : 0),
    );
    this.orderId.push(orderId);
    this.tradeId.push(tradeId);
    this.symbol.push(this.code(symbol));
    this.feeAsset.push(this.code(feeAsset));
    this.tag.push(this.code(tag));
    this.cache = undefined;
  }

  get(i: number): Fill {
    const flags = this.flags.get(i);
    const f: Fill = {
      orderId: this.orderId[i] as ClientOrderId,
      tradeId: this.tradeId[i] as string,
      symbol: this.strings[this.symbol.get(i)] as string,
      side: flags & 1 ? 'sell' : 'buy',
      price: this.price.get(i),
      amount: this.amount.get(i),
      fee: this.fee.get(i),
      feeAsset: this.strings[this.feeAsset.get(i)] as string,
      liquidity: flags & 2 ? 'maker' : 'taker',
      time: this.time.get(i),
    };
    const tag = this.strings[this.tag.get(i)];
    if (tag !== undefined) (f as { tag?: string }).tag = tag;
    if (flags & 12) (f as { positionSide?: HedgeSide }).positionSide = flags & 4 ? 'long' : 'short';
    const v = this.feeValues.get(i);
    if (v !== undefined) (f as { feeValue?: number }).feeValue = v;
    return f;
  }

  /** Forgets every fill (a bounded engine keeps only its recent ones: EngineOptions.keepFinished). */
  clear(): void {
    for (const c of [this.time, this.price, this.amount, this.fee, this.flags, this.symbol, this.feeAsset, this.tag])
      c.length = 0;
    this.orderId.length = 0;
    this.tradeId.length = 0;
    this.strings.length = 1;
    this.codes.clear();
    this.feeValues.clear();
    this.cache = undefined;
  }

  /** All fills as objects (built once, cached until the next fill). */
  toArray(): readonly Fill[] {
    if (this.cache === undefined) {
      const out: Fill[] = new Array(this.length);
      for (let i = 0; i < out.length; i++) out[i] = this.get(i);
      this.cache = out;
    }
    return this.cache;
  }
}
