import type { EngineEvent } from '../engine/events.ts';
import { ATR, StdDev } from '../indicators/volatility.ts';
import { type ClosedTradeEvent, type OpenTradeState, TradeTracker } from '../metrics/trades.ts';
import type { Bar } from '../model/bar.ts';
import { type Instrument, roundAmount } from '../model/instrument.ts';
import { isInFlight, isTerminal, type OrderRequest, type OrderState } from '../model/orders.ts';
import { isoUtc } from '../model/timeframe.ts';
import type { Account } from '../portfolio/account.ts';
import type { OrderInput } from '../strategy/api.ts';
import type { ClientOrderId } from '../util/brand.ts';
import { PROTECTION_RULES, type RiskConfig, type RiskRuleSpec } from './config.ts';
import type { RiskDenial, RiskEvent, RiskHalt } from './events.ts';
import { ExitManager, type ExitTrade } from './exits.ts';
import { checkLimits, type LimitView, type SymbolExposure } from './limits.ts';
import { Protections, type ProtectionsSnapshot } from './protections.ts';
import { sizeEntry, type TradeStats } from './sizing.ts';
import { num } from './text.ts';

const YEAR_MS = 365 * 86_400_000;

/** What the risk engine needs from the engine it guards. */
export interface RiskHost {
  readonly account: Account;
  now(): number;
  /** Portfolio value in the account currency at the last prices. */
  equity(): number;
  /** The last close of a market's execution feed (NaN before its first bar). */
  lastPrice(symbol: string): number;
  instrument(symbol: string): Instrument;
  /** Working orders in submission order (the engine's own list: read it, do not keep it). */
  openOrders(): readonly OrderState[];
  order(id: string): OrderState | undefined;
  /** Places an order of the risk engine's own (an exit or a flatten): it skips the pre-trade check. */
  submit(input: OrderInput, ocoGroup: string | undefined, replaces?: string): ClientOrderId;
  cancel(id: string, reason: string): void;
  /** Tells the engine's observers about a halt or a resume (the risk log keeps them regardless). */
  emit(e: Extract<EngineEvent, { type: 'risk.halt' | 'risk.resume' }>): void;
}

/** The risk engine's whole state as plain JSON: what a bot stores so a halt survives a restart. */
export interface RiskSnapshot {
  readonly format: 'keel.risk-state';
  readonly version: 1;
  readonly protections: ProtectionsSnapshot;
  /** Times of the orders sent within the longest order-rate window. */
  readonly sent: readonly number[];
  readonly tradeStats: TradeStats;
  readonly openTrades: readonly OpenTradeState[];
  readonly exits: { readonly groupSeq: number; readonly trades: readonly ExitTrade[] } | null;
  /** Market orders of the risk engine closing a position (flatten, time exit), by symbol. */
  readonly closing: Readonly<Record<string, string>>;
}

interface MarketStats {
  readonly atr: ATR;
  readonly vol: StdDev;
  prevClose: number;
  bars: number;
  returns: number;
  barMs: number;
}

const STOP_TYPES = new Set(['stop-market', 'stop-limit', 'trailing-stop']);

/**
 * The risk engine (docs/risk.md): every order the strategy sends passes `preTrade`, which tells an
 * exit (never blocked) from an entry, sizes an entry with the sizing model and checks it against
 * the halts, the locks and the limits; fills book round trips for the protections and attach the
 * run-level exits; each execution bar's close checks the equity protections and moves the exits.
 * One instance per engine; deterministic; its state is `snapshot()`, plain JSON.
 */
export class RiskEngine {
  /**
   * Every denial, halt, resume and notice of the run, in order; with `keepEvents`, the last that
   * many at least (up to twice as many: a bot's are in its event journal).
   */
  readonly events: RiskEvent[] = [];
  private readonly rules: readonly RiskRuleSpec[];
  private readonly protections: Protections;
  private readonly exits: ExitManager | undefined;
  private readonly tracker: TradeTracker;
  private readonly stats = new Map<string, MarketStats>();
  private sent: number[] = [];
  private readonly rateWindowMs: number;
  private readonly hasLimits: boolean;
  private readonly maxLeverage: number;
  private tradeStats: TradeStats = { count: 0, wins: 0, winSum: 0, lossSum: 0 };
  private readonly closing = new Map<string, string>();
  /** The order being filled (the tracker's close callback reads whether it was a stop). */
  private filling: OrderState | undefined;
  /** The last order preTrade passed as an exit that is not reduce-only (it withdraws the run-level exits). */
  private exitId: string | undefined;

  constructor(
    readonly config: RiskConfig,
    private readonly host: RiskHost,
    instruments: readonly Instrument[],
    private readonly keepEvents = Number.POSITIVE_INFINITY,
  ) {
    this.rules = config.rules;
    this.protections = new Protections(config.rules);
    let rate = 0;
    let lev = 1;
    for (const r of config.rules) {
      if (r.rule === 'order-rate') rate = Math.max(rate, r.windowMs);
      if (r.rule === 'max-leverage') lev = r.limit;
    }
    this.rateWindowMs = rate;
    this.maxLeverage = lev;
    this.hasLimits = config.rules.some((r) => !PROTECTION_RULES.has(r.rule));
    // Only its open round trips and each close (onTradeClosed) are read: closed ones are not kept.
    this.tracker = new TradeTracker(instruments, (t) => this.onTradeClosed(t), 0);
    const atrPeriod = config.exits?.atrPeriod ?? 14;
    const lookback = config.sizing?.model === 'volatility' ? config.sizing.lookback : 2;
    for (const i of instruments)
      if (!this.stats.has(i.symbol))
        this.stats.set(i.symbol, {
          atr: new ATR(atrPeriod),
          vol: new StdDev(lookback),
          prevClose: Number.NaN,
          bars: 0,
          returns: 0,
          barMs: 0,
        });
    const x = config.exits;
    this.exits =
      x === undefined
        ? undefined
        : new ExitManager(x, {
            now: () => host.now(),
            position: (symbol) => {
              const p = host.account.find(symbol);
              return p === undefined ? { size: 0, avgPrice: Number.NaN } : p;
            },
            isDust: (symbol, size) => this.isDust(symbol, size),
            atr: (symbol) => this.stats.get(symbol)?.atr.value ?? Number.NaN,
            submit: (input, group, replaces) => host.submit(input, group, replaces),
            cancel: (id, reason) => host.cancel(id, reason),
            trailingLevel: (id) => host.order(id)?.stopLevel ?? Number.NaN,
            setTrailingLevel: (id, level) => {
              const o = host.order(id);
              if (o !== undefined) o.stopLevel = level;
            },
            notice: (rule, symbol, message) =>
              this.record({ type: 'notice', time: host.now(), rule, action: 'notice', scope: symbol, message }),
          });
  }

  /** Halts and locks in force now. */
  halts(): readonly RiskHalt[] {
    const now = this.host.now();
    return this.protections.active.filter((h) => h.until === null || now < h.until);
  }

  // ---- orders ---------------------------------------------------------------------------------

  /**
   * A strategy order before it is sent: the request to send (resized by the sizing model when it
   * is an entry) or why it is denied. Exits pass unchanged (see `isExit`).
   */
  preTrade(req: OrderRequest, inst: Instrument, ref: number): OrderRequest | RiskDenial {
    this.exitId = undefined;
    const symbol = req.symbol;
    const pos = this.host.account.find(symbol)?.size ?? 0;
    const dir = req.side === 'buy' ? 1 : -1;
    if (this.isExit(req, pos, dir)) {
      if (!req.reduceOnly) this.exitId = req.id;
      return req;
    }
    const now = this.host.now();
    const h = this.protections.blocking(symbol, now);
    if (h !== undefined)
      return {
        rule: h.rule,
        limit: h.limit,
        actual: h.actual,
        message: `${h.scope === 'account' ? 'entries halted' : `entries on ${symbol} locked`} by ${h.rule} since ${isoUtc(h.since)}${h.until === null ? ' until resumed' : ` until ${isoUtc(h.until)}`}: ${h.message}`,
      };
    let amount = req.amount;
    const spec = this.config.sizing;
    const adding = pos === 0 || pos > 0 === dir > 0;
    if (spec !== undefined && adding) {
      const st = this.stats.get(symbol);
      const equity = this.host.equity();
      const sized = sizeEntry(spec, {
        equity,
        price: ref,
        side: req.side,
        instrument: inst,
        atr: st?.atr.value ?? Number.NaN,
        atrPeriod: this.config.exits?.atrPeriod ?? 14,
        atrBars: st?.bars ?? 0,
        volatility: st?.vol.ready && st.barMs > 0 ? st.vol.value * Math.sqrt(YEAR_MS / st.barMs) : Number.NaN,
        volatilityBars: st?.returns ?? 0,
        stopLoss: this.config.exits?.stopLoss,
        trades: this.tradeStats,
        maxLeverage: this.maxLeverage,
        freeCash: req.side === 'buy' && inst.kind === 'spot' ? this.freeCash(inst.quote) : Number.POSITIVE_INFINITY,
      });
      if ('zero' in sized) return sized.zero;
      // The model sizes the whole position: an order adding to one (or to working entries) only
      // brings it up to the model's size.
      const have = Math.abs(pos) + this.workingEntries(symbol, req.side);
      amount = sized.amount - have;
      if (!(amount > 0))
        return {
          rule: 'sizing',
          limit: sized.amount,
          actual: have,
          message: `sizing: the position (with working entries) is ${num(have)}, already at the model's size ${num(sized.amount)}`,
        };
      if (have > 0) {
        const rounded = roundAmount(inst, amount);
        if (!(rounded > 0))
          return {
            rule: 'sizing',
            limit: sized.amount,
            actual: have,
            message: `sizing: adding ${num(amount)} to reach the model's size ${num(sized.amount)} rounds to 0 at the step ${inst.stepSize}`,
          };
        amount = rounded;
      }
    }
    if (this.hasLimits) {
      const d = checkLimits(
        this.rules,
        {
          symbol,
          side: req.side,
          amount,
          price: ref,
          contractSize: inst.contractSize,
          spendsCash: req.side === 'buy' && inst.kind === 'spot',
        },
        this.view(symbol, ref, now),
      );
      if (d !== null) return d;
    }
    return amount === req.amount ? req : { ...req, amount };
  }

  /**
   * An exit is an order that only reduces a position: reduce-only, or on the side opposite the
   * position the strategy sees (fills plus orders in flight) for no more than that position less
   * the resting non-reduce-only orders working on the same side (so a second full close sent while
   * the first is in flight is an entry: it would open the other way).
   */
  private isExit(req: OrderRequest, held: number, dir: number): boolean {
    if (req.reduceOnly === true) return true;
    // The position the strategy sees (`ctx.position().size`): what the fills hold plus what the
    // orders in flight will add or remove. Resting orders of the same side that would also reduce
    // it (not reduce-only, not in flight) are taken off what this one may still close.
    // Summed as the engine's position view sums them (buys − sells, then added to what is held),
    // so the two agree to the last bit on what the strategy was shown.
    let buys = 0;
    let sells = 0;
    let pending = 0;
    for (const o of this.host.openOrders()) {
      const r = o.request;
      if (r.symbol !== req.symbol || !o.active) continue;
      const left = r.amount - o.filled;
      if (isInFlight(o)) {
        if (r.side === 'buy') buys += left;
        else sells += left;
      } else if (r.side === req.side && r.reduceOnly !== true) pending += left;
    }
    const pos = held + (buys - sells);
    if (pos === 0 || pos > 0 === dir > 0) return false;
    return req.amount <= (Math.abs(pos) - pending) * (1 + 1e-12);
  }

  /** Remaining amount of the working entries (not reduce-only) of a symbol on a side. */
  private workingEntries(symbol: string, side: 'buy' | 'sell'): number {
    let sum = 0;
    for (const o of this.host.openOrders()) {
      const r = o.request;
      if (r.symbol === symbol && r.side === side && r.reduceOnly !== true && o.active) sum += r.amount - o.filled;
    }
    return sum;
  }

  /** Cash in `quote` less what the working spot buys in it will spend. */
  private freeCash(quote: string): number {
    let cash = this.host.account.balance(quote);
    for (const o of this.host.openOrders()) {
      const r = o.request;
      if (r.side !== 'buy' || r.reduceOnly === true || !o.active) continue;
      const inst = this.host.instrument(r.symbol);
      if (inst.kind !== 'spot' || inst.quote !== quote) continue;
      const p = r.type === 'limit' || r.type === 'stop-limit' ? r.price : o.decisionPrice;
      cash -= (r.amount - o.filled) * (Number.isFinite(p) ? p : this.host.lastPrice(r.symbol)) * inst.contractSize;
    }
    return cash;
  }

  private view(symbol: string, ref: number, now: number): LimitView {
    const acc = this.host.account;
    const bySymbol = new Map<string, { size: number; inst: Instrument }>();
    for (const p of acc.positions) bySymbol.set(p.instrument.symbol, { size: p.size, inst: p.instrument });
    let freeCash = acc.cash;
    for (const o of this.host.openOrders()) {
      const r = o.request;
      if (r.reduceOnly === true || !o.active) continue;
      let e = bySymbol.get(r.symbol);
      if (e === undefined) {
        e = { size: 0, inst: this.host.instrument(r.symbol) };
        bySymbol.set(r.symbol, e);
      }
      const dir = r.side === 'buy' ? 1 : -1;
      // Only what would add exposure counts: a working exit cannot make a limit worse.
      const held = acc.find(r.symbol)?.size ?? 0;
      if (held !== 0 && held > 0 !== dir > 0) continue;
      const rest = r.amount - o.filled;
      e.size += dir * rest;
      if (r.side === 'buy' && e.inst.kind === 'spot') {
        const p = r.type === 'limit' || r.type === 'stop-limit' ? r.price : o.decisionPrice;
        freeCash -= rest * (Number.isFinite(p) ? p : this.host.lastPrice(r.symbol)) * e.inst.contractSize;
      }
    }
    const exposures: SymbolExposure[] = [];
    for (const [s, e] of bySymbol)
      exposures.push({
        symbol: s,
        size: e.size,
        price: s === symbol ? ref : this.host.lastPrice(s),
        contractSize: e.inst.contractSize,
      });
    let open = 0;
    for (const _ of this.host.openOrders()) open++;
    const sent = this.sent;
    return {
      equity: this.host.equity(),
      freeCash,
      exposures,
      openOrders: open,
      sentWithin(windowMs) {
        let k = 0;
        for (let i = sent.length - 1; i >= 0 && (sent[i] as number) > now - windowMs; i--) k++;
        return k;
      },
    };
  }

  /** A denial the engine made from `preTrade`'s answer, into the risk log. */
  recordDenial(o: OrderState, d: RiskDenial): void {
    const r = o.request;
    this.record({
      type: 'denied',
      time: this.host.now(),
      rule: d.rule,
      action: 'deny',
      symbol: r.symbol,
      orderId: r.id,
      side: r.side,
      amount: r.amount,
      limit: d.limit,
      actual: d.actual,
      message: d.message,
    });
  }

  /** An order sent (a strategy's that passed, or the risk engine's own). */
  onSubmitted(o: OrderState): void {
    if (this.rateWindowMs > 0) {
      const now = this.host.now();
      this.sent.push(now);
      // Only the longest window is ever asked about; older times go.
      if (this.sent.length > 64 && (this.sent[0] as number) <= now - this.rateWindowMs)
        this.sent = this.sent.filter((t) => t > now - this.rateWindowMs);
    }
    if (this.exitId !== undefined && o.request.id === this.exitId) {
      this.exitId = undefined;
      this.exits?.withdraw(o.request.symbol, o.request.id);
    }
  }

  onFill(o: OrderState, price: number, amount: number, fee: number, feeAsset: string, time: number): void {
    const r = o.request;
    this.filling = o;
    this.tracker.fill(r.symbol, r.side, price, amount, fee, feeAsset, time, r.id);
    this.filling = undefined;
    this.exits?.onFill(r.symbol, r.side);
  }

  onOrderDone(o: OrderState): void {
    const r = o.request;
    if (this.closing.get(r.symbol) === r.id) this.closing.delete(r.symbol);
    this.exits?.onOrderDone(r.symbol, r.id);
  }

  private onTradeClosed(t: ClosedTradeEvent): void {
    const s = this.tradeStats;
    s.count++;
    if (t.ret > 0) {
      s.wins++;
      s.winSum += t.ret;
    } else s.lossSum -= t.ret;
    const o = this.filling;
    const stopOut = o !== undefined && STOP_TYPES.has(o.request.type);
    for (const h of this.protections.onTradeClosed({
      symbol: t.symbol,
      time: t.exitTime,
      pnlNet: t.pnlNet,
      ret: t.ret,
      stopOut,
    }))
      this.halt(h);
  }

  // ---- bars -----------------------------------------------------------------------------------

  /** A bar of a market's execution feed, for the ATR and the volatility only (a restart's warm-up). */
  warmBar(symbol: string, bar: Bar, barMs: number): void {
    const st = this.stats.get(symbol);
    if (st === undefined) return;
    st.atr.update(bar);
    st.bars++;
    if (barMs > 0) st.barMs = barMs;
    if (st.prevClose > 0 && bar.close > 0) {
      st.vol.push(Math.log(bar.close / st.prevClose));
      st.returns++;
    }
    st.prevClose = bar.close;
  }

  /**
   * At the close of a market's execution bar (positions marked, the strategy not yet called):
   * locks that ran out end, the equity protections are checked, the exits move, and a position a
   * flattening halt holds is closed if nothing closes it yet.
   */
  onBar(symbol: string, bar: Bar, barMs: number): void {
    this.warmBar(symbol, bar, barMs);
    const now = this.host.now();
    const equity = this.host.equity();
    for (const h of this.protections.expire(now, equity)) this.resumed(h, 'expiry');
    for (const h of this.protections.onEquity(now, equity)) this.halt(h);
    this.exits?.onBar(symbol, bar.close);
    for (const h of this.protections.active)
      if (h.action === 'flatten' && (h.until === null || now < h.until)) this.closePositions(h.scope);
  }

  // ---- halts ----------------------------------------------------------------------------------

  private halt(h: RiskHalt): void {
    this.record({ type: 'halt', time: this.host.now(), ...h });
    this.host.emit({ type: 'risk.halt', time: this.host.now(), halt: h });
    // Working entries are cancelled (they would add exposure during the halt); a flatten also
    // cancels the rest and closes the positions at market.
    for (const o of [...this.host.openOrders()]) {
      const r = o.request;
      if (h.scope !== 'account' && r.symbol !== h.scope) continue;
      if (this.exits?.owns(r.id) || this.closing.get(r.symbol) === r.id) continue;
      const pos = this.host.account.find(r.symbol)?.size ?? 0;
      const entry = r.reduceOnly !== true && (pos === 0 || pos > 0 === (r.side === 'buy'));
      if (entry || h.action === 'flatten') this.host.cancel(r.id, `risk halt: ${h.rule}`);
    }
    if (h.action === 'flatten') this.closePositions(h.scope);
  }

  private closePositions(scope: string): void {
    for (const p of this.host.account.positions) {
      const symbol = p.instrument.symbol;
      if ((scope !== 'account' && symbol !== scope) || p.size === 0 || this.isDust(symbol, p.size)) continue;
      if (this.closing.has(symbol)) continue;
      const id = this.host.submit(
        {
          type: 'market',
          symbol,
          side: p.size > 0 ? 'sell' : 'buy',
          amount: Math.abs(p.size),
          reduceOnly: true,
          tag: 'risk-flatten',
        },
        undefined,
      );
      // The order may already be over (denied by the exchange filters): only a working one is waited for.
      const o = this.host.order(id);
      if (o !== undefined && (o.status === 'submitted' || o.status === 'accepted')) {
        this.closing.set(symbol, id);
        this.exits?.closing(symbol, id);
      }
    }
  }

  private resumed(h: RiskHalt, by: 'user' | 'expiry'): void {
    this.record({
      type: 'resume',
      time: this.host.now(),
      rule: h.rule,
      action: 'resume',
      scope: h.scope,
      by,
      message:
        by === 'user'
          ? `${h.rule} halt ended by resumeTrading()`
          : `${h.rule} ${h.scope === 'account' ? 'halt' : `lock on ${h.scope}`} ran out`,
    });
    this.host.emit({ type: 'risk.resume', time: this.host.now(), halt: h, by });
  }

  /**
   * The explicit resume (`keel bots resume`, the API): every halt and lock ends, and every
   * protection starts afresh from now (the drawdown from the equity now, the day's loss from now,
   * the loss streak from zero).
   */
  resume(): void {
    for (const h of this.protections.resume(this.host.now(), this.host.equity())) this.resumed(h, 'user');
  }

  /** True when the engine has the order and it is still working (after a restore it may not). */
  private isOpen(id: string): boolean {
    const o = this.host.order(id);
    return o?.active === true && !isTerminal(o.status);
  }

  /** True when what is held cannot be sold: under the step, or under the minimum notional. */
  private isDust(symbol: string, size: number): boolean {
    const inst = this.host.instrument(symbol);
    const a = Math.abs(size);
    if (a === 0) return true;
    if (inst.stepSize > 0 && a < inst.stepSize * (1 - 1e-9)) return true;
    const px = this.host.lastPrice(symbol);
    return inst.minNotional > 0 && Number.isFinite(px) && a * px * inst.contractSize < inst.minNotional;
  }

  // ---- state ----------------------------------------------------------------------------------

  private record(e: RiskEvent): void {
    this.events.push(e);
    if (this.events.length >= 2 * this.keepEvents) this.events.splice(0, this.events.length - this.keepEvents);
  }

  snapshot(): RiskSnapshot {
    const closing: Record<string, string> = {};
    for (const k of [...this.closing.keys()].sort()) closing[k] = this.closing.get(k) as string;
    return {
      format: 'keel.risk-state',
      version: 1,
      protections: this.protections.snapshot(),
      sent: [...this.sent],
      tradeStats: { ...this.tradeStats },
      openTrades: this.tracker.openState(),
      exits: this.exits?.snapshot() ?? null,
      closing,
    };
  }

  /**
   * Puts back a saved state (after a restart, before the first bar; the open orders it names are
   * restored in the engine by the runtime). Indicators are not state: a restart's warm-up rebuilds them.
   */
  restore(s: RiskSnapshot): void {
    if (s.format !== 'keel.risk-state' || s.version !== 1)
      throw new Error(`Not a risk state this version can restore: format ${s.format}, version ${s.version}`);
    this.protections.restore(s.protections);
    this.sent = [...s.sent];
    this.tradeStats = { ...s.tradeStats };
    this.tracker.restoreOpen(s.openTrades);
    if (this.exits !== undefined && s.exits !== null) {
      this.exits.restore(s.exits);
      this.exits.dropMissing((id) => this.isOpen(id));
    }
    this.closing.clear();
    for (const [k, v] of Object.entries(s.closing)) {
      // A closing order the engine no longer has: a flattening halt closes the position again at the next close.
      if (this.isOpen(v)) this.closing.set(k, v);
    }
  }
}
