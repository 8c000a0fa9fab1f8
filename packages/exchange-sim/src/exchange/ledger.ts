/**
 * Accounts and their balances: free and locked amounts per asset, locks taken by open orders,
 * fills settled with Binance's commission rule, and each account's own trade history. Every
 * amount is rounded to 8 decimals as Binance keeps it.
 */
import { binanceError, type SimError } from '../errors.ts';
import { roundAssetAmount } from '../num.ts';
import type { SimAccountOptions, SimBalance } from '../types.ts';
import type { AccountTrade, OrderLock } from './model.ts';

interface Account {
  apiKey: string;
  secret: string;
  balances: Map<string, SimBalance>;
  trades: AccountTrade[];
  /** Binance's "use BNB to pay fees" (spotBNBBurn). */
  payFeesWithBnb: boolean;
}

/** One side of a fill as it moves an account's funds. */
export interface Settlement {
  /** What the order gives (quote for a buy, base for a sell) and how much of it. */
  paidAsset: string;
  paid: number;
  /** The part of `paid` that comes out of the order's lock; the rest comes from free. */
  fromLock: number;
  /** What the order gets, before the commission that is taken from it. */
  receivedAsset: string;
  received: number;
  /** Taken from the free balance of `commissionAsset`: the asset received, or BNB (see matching). */
  commission: number;
  commissionAsset: string;
}

export function insufficientBalance(): SimError {
  return binanceError(-2010, 'Account has insufficient balance for requested action.');
}

export class Ledger {
  private readonly accounts = new Map<string, Account>();

  add(a: SimAccountOptions): void {
    if (this.accounts.has(a.apiKey)) throw new Error(`account with apiKey ${a.apiKey} already exists`);
    const balances = new Map<string, SimBalance>();
    for (const [asset, free] of Object.entries(a.balances)) balances.set(asset, { free, locked: 0 });
    this.accounts.set(a.apiKey, {
      apiKey: a.apiKey,
      secret: a.secret,
      balances,
      trades: [],
      payFeesWithBnb: a.payFeesWithBnb === true,
    });
  }

  paysFeesWithBnb(apiKey: string): boolean {
    return this.account(apiKey).payFeesWithBnb;
  }

  setPayFeesWithBnb(apiKey: string, on: boolean): void {
    this.account(apiKey).payFeesWithBnb = on;
  }

  /** Every account that pays its fees in BNB (their api keys). */
  bnbPayers(): string[] {
    return [...this.accounts.values()].filter((a) => a.payFeesWithBnb).map((a) => a.apiKey);
  }

  has(apiKey: string): boolean {
    return this.accounts.has(apiKey);
  }

  secretOf(apiKey: string): string | undefined {
    return this.accounts.get(apiKey)?.secret;
  }

  /** Free and locked balances of every asset the account has held (copies). */
  balances(apiKey: string): Record<string, SimBalance> {
    const out: Record<string, SimBalance> = {};
    for (const [asset, b] of this.account(apiKey).balances) out[asset] = { free: b.free, locked: b.locked };
    return out;
  }

  free(apiKey: string, asset: string): number {
    return this.balance(this.account(apiKey), asset).free;
  }

  /** Moves `amount` from free to locked, or rejects the order when free is short. */
  lock(apiKey: string, asset: string, amount: number): OrderLock {
    const b = this.balance(this.account(apiKey), asset);
    if (b.free + 1e-12 < amount) throw insufficientBalance();
    b.free = roundAssetAmount(b.free - amount);
    b.locked = roundAssetAmount(b.locked + amount);
    return { asset, left: amount };
  }

  /** Gives back what is left of a lock (the order is done). */
  release(apiKey: string, lock: OrderLock): void {
    if (lock.left <= 0) return;
    const b = this.balance(this.account(apiKey), lock.asset);
    b.locked = roundAssetAmount(b.locked - lock.left);
    b.free = roundAssetAmount(b.free + lock.left);
    lock.left = 0;
  }

  /** Books one fill's movement of funds; `lock` is the order's, reduced by `s.fromLock`. */
  settle(apiKey: string, lock: OrderLock, s: Settlement): void {
    const acc = this.account(apiKey);
    const paid = this.balance(acc, s.paidAsset);
    const received = this.balance(acc, s.receivedAsset);
    paid.locked = roundAssetAmount(paid.locked - s.fromLock);
    lock.left = roundAssetAmount(lock.left - s.fromLock);
    paid.free = roundAssetAmount(paid.free + s.fromLock - s.paid);
    received.free = roundAssetAmount(received.free + s.received);
    const fee = this.balance(acc, s.commissionAsset);
    fee.free = roundAssetAmount(fee.free - s.commission);
  }

  recordTrade(apiKey: string, trade: AccountTrade): void {
    this.account(apiKey).trades.push(trade);
  }

  trades(apiKey: string, symbolId: string): AccountTrade[] {
    return this.account(apiKey).trades.filter((t) => t.symbol === symbolId);
  }

  private account(apiKey: string): Account {
    const acc = this.accounts.get(apiKey);
    if (!acc) throw new Error(`no account with apiKey ${apiKey}`);
    return acc;
  }

  private balance(acc: Account, asset: string): SimBalance {
    let b = acc.balances.get(asset);
    if (!b) {
      b = { free: 0, locked: 0 };
      acc.balances.set(asset, b);
    }
    return b;
  }
}
