import {
  type Account,
  type Engine,
  type ExchangeCloseRecord,
  type FuturesBook,
  type FuturesMarketSettings,
  fundingPayment,
  humanNumber,
  type Instrument,
} from '@keel/core';
import type { Store } from '@keel/store';
import type { Logger } from '../bot-log.ts';
import {
  type ExchangeFuturesAccount,
  type ExchangeFuturesPosition,
  type ExchangeOrder,
  forcedCloseKind,
  type LiveFutures,
} from './port.ts';
import type { RecoveryAction } from './recover.ts';

export interface LiveFuturesOptions {
  readonly futures: LiveFutures;
  readonly store: Store;
  readonly botId: string;
  /** The bot's perpetual markets. */
  readonly instruments: readonly Instrument[];
  readonly settings: (symbol: string) => FuturesMarketSettings;
  readonly account: Account;
  /** The engine's futures book (venue `exchange`) and the engine that emits its events. */
  readonly book: FuturesBook;
  readonly engine: Engine;
  readonly log: Logger;
  /** Whether the store had a wallet balance for the bot (false on its first start: nothing to compare). */
  readonly storedCash: boolean;
  /**
   * Reads whether a market of the bot's still trades (the bot's `MarketStatusWatch`, which says a
   * closed one once): asked after a settlement close was applied (the bot asks at start and after
   * a refused or exchange-cancelled order itself).
   */
  readonly checkTrading: (symbol: string) => Promise<void>;
}

/** Funding looked up again this far back on every poll (a payment the exchange lists late is still found). */
const FUNDING_LOOKBACK_MS = 3_600_000;

/**
 * A live perpetual bot trades one-way positions: an account in hedge mode is refused, before
 * anything of the start touches the exchange or the store (reconciliation would adopt or cancel
 * orders, and record fills, of a bot that then does not run). Throws, naming what to do.
 */
export async function refuseHedgeAccount(futures: LiveFutures, symbols: readonly string[]): Promise<void> {
  refuseHedge(await futures.account(symbols));
}

function refuseHedge(acct: ExchangeFuturesAccount): void {
  if (acct.positionMode === 'hedge')
    throw new Error(
      'the exchange account is in hedge position mode (dualSidePosition): Keel trades one-way positions, one signed position per symbol; switch the account to one-way mode (Binance: Preferences, Position Mode; no position may be open) and start again',
    );
}

/**
 * On a one-way account a symbol has one net position, shared by every bot and person trading it
 * there: a bot whose own position (what its fills hold, stored) is not the exchange's would trade
 * another's position (a buy shrinks a foreign short) and have its reduce-only exits, sized to its
 * own position, refused. Such a start is refused, naming each position and what to do. Sizes
 * within half the market's step are the same position.
 */
function refuseForeignPositions(
  instruments: readonly Instrument[],
  acct: ExchangeFuturesAccount,
  own: (symbol: string) => number,
): void {
  const problems: string[] = [];
  for (const inst of instruments) {
    const mine = own(inst.symbol);
    const ex = positionOf(acct, inst.symbol).size;
    if (Math.abs(ex - mine) <= Math.max(inst.stepSize / 2, 1e-9 * Math.max(1, Math.abs(ex)))) continue;
    const n = (x: number) => humanNumber(Math.abs(x), 10, inst.stepSize);
    const side = (x: number) => (x === 0 ? 'flat' : `${x > 0 ? 'long' : 'short'} ${n(x)}`);
    const what =
      mine === 0
        ? "it is not this bot's (another bot's, or opened by hand): close it on the exchange, or run this bot on another account (a sub-account) or symbol"
        : Math.sign(ex) === Math.sign(mine) && Math.abs(ex) > Math.abs(mine)
          ? `${n(ex - mine)} of it is not this bot's: reduce the exchange's position to this bot's ${n(mine)}, or run this bot on another account (a sub-account)`
          : "this bot's position was closed or changed outside it (by hand, another bot, or a forced close the exchange no longer lists): bring the exchange's position back to this bot's, or close it and start a new bot (another --bot-id: this one's books hold a position the exchange does not)";
    problems.push(`${inst.symbol}: the exchange's position is ${side(ex)}, this bot's own is ${side(mine)}: ${what}`);
  }
  if (problems.length > 0)
    throw new Error(
      `${problems.join('; ')}. On a one-way account the position of a symbol is one, shared by everything that trades it: this bot would trade a position that is not its own (and its reduce-only exits would be refused), so it does not start (nor set the symbol's leverage and margin mode)`,
    );
}

/**
 * A live bot's perpetuals against the exchange (docs/futures.md, "Paper and live"):
 * - at start, the account's position mode must be one-way; funding payments and forced closes
 *   the bot has not applied (it was down) are applied; the exchange's position in each symbol must
 *   then be the bot's own (refuseForeignPositions); the leverage and margin mode the bot runs with
 *   are set on the exchange and read back; then its entry, wallet and isolated wallet are compared
 *   with the exchange's, each difference named (`reconcile.futures` event and a log line). The
 *   wallet is the exchange's from then on (as spot cash is);
 * - while it runs, the exchange's funding payments (income `FUNDING_FEE`) and forced closes
 *   (`autoclose-` liquidations, `adl_autoclose` ADL closes, `settlement_autoclose-` settlements of
 *   a delisted contract) are applied to its books through the engine, journaled as
 *   `futures.funding`, `futures.liquidation`, `futures.adl` and `futures.settlement`, each once (by
 *   the exchange's id): read at once when the user-data stream reports one (`onOrder`,
 *   `watchFunding`), and after each handled bar (`poll`) for what the stream missed;
 * - after a settlement close the contract's status is read (`checkTrading`: the bot's
 *   MarketStatusWatch, which also reads it at start and after a refused order).
 */
export class LiveFuturesSync {
  /** Payments and forced closes applied, by id: their symbol and time (forgotten once before every later read: forget). */
  private readonly applied = new Map<string, { readonly symbol: string; readonly time: number }>();
  /** Per symbol: the time of the last payment or forced close applied. */
  private readonly lastApplied = new Map<string, number>();
  /** Per symbol: the bot's first fill (no position before it: nothing of the exchange's is the bot's). */
  private readonly firstFill = new Map<string, number>();
  /** Per symbol, by trade id: the bot's fills and forced closes (time, signed amount), for its position at a funding time. */
  private readonly moves = new Map<string, Map<string, { time: number; qty: number }>>();
  /** Per symbol: the bot held a position at the last poll (a payment may be listed after it went flat). */
  private readonly heldAtPoll = new Map<string, boolean>();
  /** The last poll asked for: the one under way, or the one queued behind it. */
  private chain: Promise<void> = Promise.resolve();
  private polling = false;
  /** The poll queued behind the one under way (at most one: every later ask shares it). */
  private queued: Promise<void> | undefined;
  /** Set once `start` has applied what happened while the bot was down; stream events before it wait for it. */
  private started = false;
  private eventBeforeStart = false;
  private closed = false;
  private stopWatch: (() => Promise<void>) | undefined;

  constructor(private readonly o: LiveFuturesOptions) {}

  /**
   * Before the first bar: what happened while the bot was down, the positions, the exchange's
   * settings, then the comparison. Throws (the start fails, naming why) when the account is in
   * hedge mode, a position on the exchange is not the bot's own, or the exchange refuses the
   * leverage or margin mode.
   */
  async start(): Promise<RecoveryAction[]> {
    const { futures, store, botId, instruments, log } = this.o;
    const symbols = instruments.map((i) => i.symbol);
    const events = await store.events.list(botId);
    for (const e of events) {
      if (
        e.type !== 'futures.funding' &&
        e.type !== 'futures.liquidation' &&
        e.type !== 'futures.adl' &&
        e.type !== 'futures.settlement'
      )
        continue;
      const p = e.payload as { id?: string; time?: number; symbol?: string };
      if (p.id !== undefined)
        this.applied.set(p.id, {
          symbol: p.symbol ?? '',
          time: typeof p.time === 'number' ? p.time : Number.POSITIVE_INFINITY,
        });
      if (p.symbol !== undefined && typeof p.time === 'number')
        this.lastApplied.set(p.symbol, Math.max(this.lastApplied.get(p.symbol) ?? 0, p.time));
    }
    for (const f of await store.fills.since(botId, 0))
      this.onFill(f.symbol, f.tradeId, f.time, f.side === 'buy' ? f.amount : -f.amount);
    for (const e of events)
      if (e.type === 'futures.liquidation') {
        const l = e.payload as { symbol: string; time: number; size: number; id?: string };
        this.onFill(l.symbol, `liquidation ${l.id ?? e.seq}`, l.time, -l.size);
      } else if (e.type === 'futures.adl' || e.type === 'futures.settlement') {
        const a = e.payload as ExchangeCloseRecord;
        this.onFill(
          a.symbol,
          `${e.type === 'futures.adl' ? 'adl' : 'settlement'} ${a.id}`,
          a.time,
          a.size > 0 ? -a.closed : a.closed,
        );
      }

    const actions: RecoveryAction[] = [];
    let acct = await futures.account(symbols);
    refuseHedge(acct);
    // What the exchange charged and closed while the bot was down (a liquidation leaves the
    // exchange flat): applied before the positions are compared and before anything is set.
    await this.pollNow(actions);
    if (actions.length > 0) acct = await futures.account(symbols);
    // Before the leverage or margin mode is set: on a one-way account they are the symbol's, and
    // would move the position of whoever else holds it.
    refuseForeignPositions(instruments, acct, (symbol) => this.o.account.find(symbol)?.size ?? 0);
    const lastSet = lastSettings(events);
    for (const inst of instruments) {
      const want = this.o.settings(inst.symbol);
      const pos = positionOf(acct, inst.symbol);
      const before = lastSet.get(inst.symbol);
      if (before !== undefined && before.leverage !== pos.leverage)
        actions.push({
          kind: 'leverage-difference',
          detail: `${inst.symbol}: this bot set ${before.leverage}x, the exchange has ${pos.leverage}x (changed outside the bot)`,
        });
      if (before !== undefined && before.marginMode !== pos.marginMode)
        actions.push({
          kind: 'margin-mode-difference',
          detail: `${inst.symbol}: this bot set ${before.marginMode} margin, the exchange has ${pos.marginMode} (changed outside the bot)`,
        });
      if (pos.marginMode !== want.marginMode) {
        if (pos.size !== 0)
          throw new Error(
            `${inst.symbol}: the exchange holds a position of ${pos.size} in ${pos.marginMode} margin; its margin mode cannot change to ${want.marginMode} while it is open: start with --margin ${pos.marginMode}, or close the position first`,
          );
        await this.refusedAs(`margin mode ${want.marginMode}`, inst.symbol, () =>
          futures.setMarginMode(inst.symbol, want.marginMode),
        );
        actions.push({
          kind: 'margin-mode-set',
          detail: `${inst.symbol}: ${pos.marginMode} -> ${want.marginMode} margin`,
        });
      }
      if (pos.leverage !== want.leverage) {
        await this.refusedAs(`leverage ${want.leverage}x`, inst.symbol, () =>
          futures.setLeverage(inst.symbol, want.leverage),
        );
        actions.push({
          kind: 'leverage-set',
          detail: `${inst.symbol}: ${pos.leverage}x -> ${want.leverage}x${pos.size !== 0 ? ` with a position of ${pos.size} open (its margin and liquidation price move with it)` : ''}`,
        });
      }
    }
    acct = await futures.account(symbols);
    for (const inst of instruments) {
      const want = this.o.settings(inst.symbol);
      const pos = positionOf(acct, inst.symbol);
      if (pos.leverage !== want.leverage || pos.marginMode !== want.marginMode)
        throw new Error(
          `${inst.symbol}: the exchange reports ${pos.leverage}x ${pos.marginMode} after this bot set ${want.leverage}x ${want.marginMode}`,
        );
      await store.events.append(botId, 'futures.settings', {
        symbol: inst.symbol,
        leverage: want.leverage,
        marginMode: want.marginMode,
      });
    }

    for (const inst of instruments) actions.push(...this.compare(inst, positionOf(acct, inst.symbol)));
    const settle = instruments[0]?.settle ?? this.o.account.currency;
    const wallet = acct.wallet[settle] ?? 0;
    const cash = this.o.account.cash;
    if (this.o.storedCash && Math.abs(wallet - cash) > 1e-8 * Math.max(1, Math.abs(cash)))
      actions.push({
        kind: 'wallet-difference',
        detail: `${settle}: this bot's books ${cash}, the exchange's wallet ${wallet} (${wallet - cash > 0 ? '+' : ''}${humanNumber(wallet - cash)}); the exchange's is taken`,
      });
    // The exchange is the truth for the wallet, as for spot cash; differences are named above.
    this.o.account.cash = wallet;
    await store.events.append(botId, 'reconcile.futures', { actions });
    for (const a of actions) log(level(a), `reconcile: ${a.kind}: ${a.detail}`);
    this.started = true;
    this.stopWatch = futures.watchFunding?.({
      onFunding: () => this.onStreamEvent(),
      onError: (e) =>
        log('warn', `user-data stream (funding): ${e.message}; reconnecting (funding is still read after each bar)`),
    });
    if (this.eventBeforeStart) void this.poll();
    return actions;
  }

  /**
   * An order update from the user-data stream (the execution tracker's): a forced close of one of
   * the bot's markets (Binance: a LIQUIDATION order, client id `autoclose-...`, an ADL close,
   * `adl_autoclose`, or a settlement close, `settlement_autoclose-...`) is read from the exchange's
   * history and applied at once, not after the next bar.
   */
  onOrder(o: ExchangeOrder): void {
    if (forcedCloseKind(o.clientOrderId, o.type) === undefined) return;
    if (!this.o.instruments.some((i) => i.symbol === o.symbol)) return;
    this.onStreamEvent();
  }

  /** Stops listening to the stream's funding events (the poll under way, if any, finishes). */
  async close(): Promise<void> {
    this.closed = true;
    const stop = this.stopWatch;
    this.stopWatch = undefined;
    await stop?.();
    await this.chain;
  }

  private onStreamEvent(): void {
    // Stopping: the engine is being stopped; the next start reads what this event was about.
    if (this.closed) return;
    // Before `start` has read the histories, it will find this event's record itself.
    if (!this.started) this.eventBeforeStart = true;
    else void this.poll();
  }

  /**
   * Applies the funding payments and forced closes the exchange has listed since the last poll
   * (after each bar, and at once on a stream event). One poll at a time, and at most one queued
   * behind it: a stream event and a bar close together make one more poll, not two. The promise
   * resolves after a poll that began after the call (the one queued, or a new one). A failed read
   * is logged and tried again on the next poll.
   */
  poll(): Promise<void> {
    if (this.queued !== undefined) return this.queued;
    if (!this.polling) return this.startPoll();
    // The poll under way may have read the histories before what this call is about was listed.
    const next = this.chain.then(() => {
      this.queued = undefined;
      return this.startPoll();
    });
    this.queued = next;
    this.chain = next;
    return next;
  }

  private startPoll(): Promise<void> {
    this.polling = true;
    const run = this.pollNow()
      .catch((e: unknown) =>
        this.o.log(
          'warn',
          `could not read funding and liquidations from the exchange: ${(e as Error).message}; read again after the next bar`,
        ),
      )
      .finally(() => {
        this.polling = false;
      });
    this.chain = run;
    return run;
  }

  /**
   * A fill of the bot's (`qty` signed): from its first one on, the exchange's funding and
   * liquidations are looked up; its position at a funding time is the position less what moved it since.
   */
  onFill(symbol: string, tradeId: string, time: number, qty: number): void {
    if (time < (this.firstFill.get(symbol) ?? Number.POSITIVE_INFINITY)) this.firstFill.set(symbol, time);
    let m = this.moves.get(symbol);
    if (m === undefined) this.moves.set(symbol, (m = new Map()));
    m.set(tradeId, { time, qty });
  }

  /**
   * The bot's position at `t`: what it holds now less its fills at or after `t` (an order decided
   * on the bar that closes at a funding time fills after the funding was charged).
   */
  private sizeAt(symbol: string, t: number): number {
    let size = this.o.account.find(symbol)?.size ?? 0;
    for (const x of this.moves.get(symbol)?.values() ?? []) if (x.time >= t) size -= x.qty;
    return Math.abs(size) < 1e-12 ? 0 : size;
  }

  /**
   * Forgets what no later read of `symbol` can need: every read asks for what happened from
   * `since` on, and `since` only moves forward (the last applied time less the lookback), so the
   * fills before it never count in a position at a funding time (sizeAt), and the payments and
   * forced closes before it are never listed again. Memory and each poll's work then follow the
   * last hour's fills, not every fill since the bot started.
   */
  private forget(symbol: string, since: number): void {
    const m = this.moves.get(symbol);
    if (m !== undefined) for (const [id, x] of m) if (x.time < since) m.delete(id);
    for (const [id, x] of this.applied) if (x.symbol === symbol && x.time < since) this.applied.delete(id);
  }

  /** Resolves when the poll under way (if any) is done. */
  idle(): Promise<void> {
    return this.chain;
  }

  private async pollNow(recovered?: RecoveryAction[]): Promise<void> {
    const { futures, engine, book, log } = this.o;
    for (const inst of this.o.instruments) {
      const symbol = inst.symbol;
      const first = this.firstFill.get(symbol);
      const held = (this.o.account.find(symbol)?.size ?? 0) !== 0;
      const wasHeld = this.heldAtPoll.get(symbol) ?? true;
      this.heldAtPoll.set(symbol, held);
      // Funding and liquidation come with a position; before the bot's first fill none is its own.
      if (first === undefined) continue;
      const since = Math.max(first, (this.lastApplied.get(symbol) ?? 0) - FUNDING_LOOKBACK_MS);
      this.forget(symbol, since);
      if (!held && !wasHeld && recovered === undefined) continue;
      const incomes = (await futures.fundingIncome(symbol, since)).filter((x) => !this.applied.has(x.id));
      const closes = (await futures.forcedCloses(symbol, since, (id) => this.applied.has(id))).filter(
        (x) => !this.applied.has(x.id),
      );
      if (incomes.length === 0 && closes.length === 0) continue;
      const rates = incomes.length > 0 ? await futures.fundingRates(symbol, (incomes[0]?.time ?? since) - 60_000) : [];
      type Item =
        | { readonly t: number; readonly k: 0; readonly x: (typeof incomes)[number] }
        | { readonly t: number; readonly k: 1; readonly x: (typeof closes)[number] };
      const items: Item[] = [
        ...incomes.map((x) => ({ t: x.time, k: 0 as const, x })),
        ...closes.map((x) => ({ t: x.time, k: 1 as const, x })),
      ].sort((a, b) => a.t - b.t || a.k - b.k);
      for (const it of items) {
        this.applied.set(it.x.id, { symbol, time: it.t });
        this.lastApplied.set(symbol, Math.max(this.lastApplied.get(symbol) ?? 0, it.t));
        if (it.k === 0) {
          const x = it.x;
          if (x.asset !== inst.settle)
            book.warn(
              `${symbol}: funding ${x.id} of ${x.amount} ${x.asset} is not in ${inst.settle}; applied as ${inst.settle}`,
            );
          // The rate row of this payment: the contract's funding time, within a minute of the payment.
          let r: (typeof rates)[number] | undefined;
          for (const row of rates)
            if (
              Math.abs(row.time - x.time) <= 60_000 &&
              (r === undefined || Math.abs(row.time - x.time) < Math.abs(r.time - x.time))
            )
              r = row;
          if (r === undefined)
            book.warn(
              `${symbol}: funding ${x.id} at ${new Date(x.time).toISOString()} (${x.amount}): the exchange's rate history has no row for it; rate and mark not known (the payment is applied)`,
            );
          const size = this.sizeAt(symbol, x.time);
          // On the bot's own position the exchange charges exactly this; more or less means the
          // exchange's position in the symbol was not only the bot's (the payment is still applied:
          // it is the wallet's).
          if (r !== undefined) {
            const own = fundingPayment(size, r.markPrice, r.rate, inst.contractSize);
            if (Math.abs(own - x.amount) > 1e-8 + 1e-9 * Math.abs(x.amount))
              book.warn(
                `${symbol}: funding ${x.id} at ${new Date(x.time).toISOString()}: the exchange charged ${x.amount}, this bot's own position of ${size} pays ${own} at the rate ${r.rate} and mark ${r.markPrice}: the rest is on a position that is not this bot's`,
              );
          }
          engine.applyExchangeFutures({
            type: 'funding',
            symbol,
            funding: {
              id: x.id,
              time: x.time,
              rate: r?.rate ?? Number.NaN,
              markPrice: r?.markPrice ?? Number.NaN,
              size,
              payment: x.amount,
            },
          });
          const what = `${x.amount < 0 ? 'paid' : 'received'} ${Math.abs(x.amount)} ${x.asset} on ${symbol} at ${new Date(x.time).toISOString()}${r ? ` (rate ${r.rate}, mark ${r.markPrice})` : ''}`;
          log('info', `funding ${what}`);
          recovered?.push({ kind: 'funding-recovered', detail: `${what}, while the bot was down (${x.id})` });
        } else if (it.x.kind === 'adl' || it.x.kind === 'settlement') {
          const x = it.x;
          const kind: 'adl' | 'settlement' = it.x.kind;
          const name = kind === 'adl' ? 'ADL close' : 'settlement close';
          let fee = x.fee;
          if (!Number.isFinite(fee)) {
            book.warn(
              `${symbol}: ${name} ${x.id}: its trades (their commission) could not be read; 0 applied, the wallet is reconciled at the next start`,
            );
            fee = 0;
          }
          const held = this.o.account.find(symbol)?.size ?? 0;
          const closed = Math.min(x.amount, Math.abs(held));
          this.onFill(symbol, `${kind} ${x.id}`, x.time, held > 0 ? -closed : closed);
          engine.applyExchangeFutures({
            type: kind,
            symbol,
            close: { id: x.id, time: x.time, price: x.price, amount: x.amount, fee },
          });
          const left = this.o.account.find(symbol)?.size ?? 0;
          const what = `the exchange ${kind === 'adl' ? 'closed' : 'settled'} ${x.amount} of ${Math.abs(held)} ${symbol} at ${x.price} (${held >= 0 ? 'long' : 'short'}; order ${x.id}, ${x.clientOrderId}, fee ${fee}), ${left === 0 ? 'flat now' : `${Math.abs(left)} left`}${kind === 'settlement' ? ': the contract was delisted' : ''}`;
          // At start the recovery action says it (a `reconcile: adl-recovered: ...` line).
          if (recovered === undefined) log('warn', `${kind === 'adl' ? 'ADL' : 'SETTLED'}: ${what}`);
          else
            recovered.push({
              kind: kind === 'adl' ? 'adl-recovered' : 'settlement-recovered',
              detail: `${what}, while the bot was down`,
            });
          // A settled contract no longer trades; the start checks every market itself.
          if (kind === 'settlement' && recovered === undefined) void this.o.checkTrading(symbol);
        } else {
          const x = it.x;
          let fee = x.fee;
          if (!Number.isFinite(fee)) {
            book.warn(
              `${symbol}: liquidation ${x.id}: its trades (the clearance fee) could not be read; 0 applied, the wallet is reconciled at the next start`,
            );
            fee = 0;
          }
          this.onFill(symbol, `liquidation ${x.id}`, x.time, -(this.o.account.find(symbol)?.size ?? 0));
          engine.applyExchangeFutures({
            type: 'liquidation',
            symbol,
            liquidation: {
              id: x.id,
              time: x.time,
              price: x.price,
              liquidationPrice: x.orderPrice,
              amount: x.amount,
              clearanceFee: fee,
            },
          });
          recovered?.push({
            kind: 'liquidation-recovered',
            detail: `${symbol}: the exchange liquidated ${x.amount} at ${x.price} (${x.clientOrderId}, clearance fee ${fee}) while the bot was down`,
          });
        }
      }
      this.heldAtPoll.set(symbol, (this.o.account.find(symbol)?.size ?? 0) !== 0);
    }
  }

  /** The bot's position, entry and isolated wallet against the exchange's. */
  private compare(inst: Instrument, ex: ExchangeFuturesPosition): RecoveryAction[] {
    const out: RecoveryAction[] = [];
    const symbol = inst.symbol;
    const p = this.o.account.find(symbol);
    const size = p?.size ?? 0;
    const entry = size === 0 || p === undefined ? 0 : p.avgPrice;
    const near = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
    if (!near(size, ex.size))
      out.push({
        kind: 'position-difference',
        // The start refused a position not the bot's (refuseForeignPositions): this one moved while it started.
        detail: `${symbol}: this bot's own fills hold ${humanNumber(size)}, the exchange's position is ${humanNumber(ex.size)}, changed while the bot started (something else trades the symbol on this account); its exits are reduce-only and sized to its own position`,
      });
    else if (size !== 0 && !near(entry, ex.entryPrice))
      out.push({
        kind: 'position-difference',
        detail: `${symbol}: entry price ${humanNumber(entry)} in this bot's books, ${ex.entryPrice} on the exchange (size ${humanNumber(size)} on both)`,
      });
    if (this.o.book.marginMode(symbol) === 'isolated') {
      const mine = this.o.book.isolatedWallet(symbol);
      if (!near(mine, ex.isolatedWallet) && (size !== 0 || ex.isolatedWallet !== 0))
        out.push({
          kind: 'isolated-wallet-difference',
          detail: `${symbol}: isolated wallet ${humanNumber(mine)} in this bot's books, ${ex.isolatedWallet} on the exchange; the exchange's is taken`,
        });
      this.o.book.setIsolatedWallet(symbol, ex.isolatedWallet);
    }
    return out;
  }

  /** Runs a settings change; the exchange's refusal ends the start with its reason. */
  private async refusedAs(what: string, symbol: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      throw new Error(`${symbol}: the exchange refused ${what}: ${(e as Error).message}`, { cause: e });
    }
  }
}

/** What the bot last set on the exchange, per symbol (its `futures.settings` events). */
function lastSettings(
  events: readonly { readonly type: string; readonly payload: unknown }[],
): Map<string, { leverage: number; marginMode: string }> {
  const out = new Map<string, { leverage: number; marginMode: string }>();
  for (const e of events) {
    if (e.type !== 'futures.settings') continue;
    const p = e.payload as { symbol: string; leverage: number; marginMode: string };
    out.set(p.symbol, { leverage: p.leverage, marginMode: p.marginMode });
  }
  return out;
}

function positionOf(acct: ExchangeFuturesAccount, symbol: string): ExchangeFuturesPosition {
  const p = acct.positions.find((x) => x.symbol === symbol);
  if (p === undefined)
    throw new Error(`${symbol}: the exchange lists no position row for it (is it a USDⓈ-M perpetual?)`);
  return p;
}

function level(a: RecoveryAction): 'info' | 'warn' {
  return a.kind.endsWith('-difference') ||
    a.kind === 'liquidation-recovered' ||
    a.kind === 'adl-recovered' ||
    a.kind === 'settlement-recovered'
    ? 'warn'
    : 'info';
}
