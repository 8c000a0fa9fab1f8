import type { OrderInput } from '../strategy/api.ts';
import type { ClientOrderId } from '../util/brand.ts';
import type { ExitDistance, ExitSpec, RoiStep } from './config.ts';

/** The run-level exit orders of one position, by role (also their `tag`). */
export const EXIT_TAGS = ['stop-loss', 'take-profit', 'trailing-stop', 'roi'] as const;
export type ExitTag = (typeof EXIT_TAGS)[number];

/**
 * Tags of the orders that protect or close a position: the run's exits, the time exit, a
 * flattening halt's close, a bracket's exits. One of these refused leaves a position unprotected:
 * an error, not a warning.
 */
const PROTECTIVE_TAGS: ReadonlySet<string> = new Set<string>([...EXIT_TAGS, 'time-exit', 'risk-flatten']);

/** True when an order with this tag protects or closes a position (see PROTECTIVE_TAGS). */
export function isProtectiveTag(tag: string | undefined): boolean {
  return tag !== undefined && PROTECTIVE_TAGS.has(tag);
}

/** What the exit manager needs from the engine. */
export interface ExitHost {
  now(): number;
  /** Signed position size, and its average entry price. */
  position(symbol: string): { size: number; avgPrice: number };
  /** True when what is held is below what can be sold (a step or the minimum notional). */
  isDust(symbol: string, size: number): boolean;
  atr(symbol: string): number;
  /** `replaces`: the exit this one replaces, cancelled just before (a moved stop, a new ROI limit). */
  submit(input: OrderInput, ocoGroup: string | undefined, replaces?: string): ClientOrderId;
  cancel(id: string, reason: string): void;
  /** The trailing level an order holds (NaN before its first bar), to carry it to its replacement. */
  trailingLevel(id: string): number;
  setTrailingLevel(id: string, level: number): void;
  notice(rule: string, symbol: string, message: string): void;
}

/** One open position's exits (plain data: it is part of the risk snapshot). */
export interface ExitTrade {
  readonly symbol: string;
  dir: 1 | -1;
  /** When the position was opened (from flat): the start of its age for the ROI table and the time exit. */
  entryTime: number;
  /** Average entry price the levels were computed from. */
  entry: number;
  /** ATR at the entry fill, or null before the ATR is defined. */
  atr: number | null;
  stop: number | null;
  take: number | null;
  trailLevel: number | null;
  roiStage: number;
  breakEven: boolean;
  group: string;
  orders: { [K in ExitTag]?: string };
  /** Strategy orders working that would sell what the exits sell: the exits wait for them. */
  withdrawnBy: string[];
  /** The market order closing the position (time exit or flatten), while it works. */
  closing: string | null;
}

const nullToNaN = (x: number | null): number => (x === null ? Number.NaN : x);

function level(d: ExitDistance, entry: number, dir: 1 | -1, atr: number, loss: boolean): number {
  const s = loss ? -dir : dir; // which way from the entry the level lies
  switch (d.kind) {
    case 'percent':
      return entry * (1 + s * d.value);
    case 'atr':
      return entry + s * d.multiple * atr;
    case 'price':
      return d.price;
  }
}

function roiStage(roi: readonly RoiStep[] | undefined, age: number): number {
  if (roi === undefined) return -1;
  let k = -1;
  for (let i = 0; i < roi.length; i++) if ((roi[i] as RoiStep).ageMs <= age) k = i;
  return k;
}

/**
 * Run-level exits (docs/risk.md): when an entry fills, the position gets reduce-only exit orders
 * of the existing types (stop-market, limit, trailing stop) in one OCO group, so the venue fills
 * them on the same OHLC path as any order; the ROI table, the break-even move and the time exit
 * re-place or close at bar closes.
 */
export class ExitManager {
  private trades = new Map<string, ExitTrade>();
  private groupSeq = 0;
  /** Markets whose exits are placed again at their next close (see `dropMissing`). */
  private readonly reattach = new Set<string>();
  private readonly needsAtr: boolean;

  constructor(
    private readonly spec: ExitSpec,
    private readonly host: ExitHost,
  ) {
    this.needsAtr = spec.stopLoss?.kind === 'atr' || spec.takeProfit?.kind === 'atr' || spec.trailing?.kind === 'atr';
  }

  /** True when `id` is one of the exit manager's own orders (an exit or a closing order). */
  owns(id: string): boolean {
    for (const t of this.trades.values()) {
      if (t.closing === id) return true;
      for (const k of EXIT_TAGS) if (t.orders[k] === id) return true;
    }
    return false;
  }

  /** A strategy order that sells what the exits sell is working: the exits step aside until it ends. */
  withdraw(symbol: string, byOrder: string): void {
    const t = this.trades.get(symbol);
    if (t === undefined) return;
    t.withdrawnBy.push(byOrder);
    this.cancelAll(t, `exits withdrawn while ${byOrder} reduces the position`);
  }

  /** The position is being closed by the risk engine (a flatten): no exits come back. */
  closing(symbol: string, byOrder: string): void {
    const t = this.trades.get(symbol);
    if (t === undefined) return;
    t.closing = byOrder;
    this.cancelAll(t, `exits cancelled: ${byOrder} closes the position`);
  }

  /** After a fill on `symbol` (the account already holds it). */
  onFill(symbol: string, side: 'buy' | 'sell'): void {
    const p = this.host.position(symbol);
    let t = this.trades.get(symbol);
    if (p.size === 0 || this.host.isDust(symbol, p.size)) {
      if (t !== undefined) {
        this.cancelAll(t, 'position closed');
        this.trades.delete(symbol);
      }
      return;
    }
    const dir: 1 | -1 = p.size > 0 ? 1 : -1;
    if (t !== undefined && t.dir !== dir) {
      this.cancelAll(t, 'position reversed');
      t = undefined;
    }
    if (t === undefined) {
      t = {
        symbol,
        dir,
        entryTime: this.host.now(),
        entry: p.avgPrice,
        atr: null,
        stop: null,
        take: null,
        trailLevel: null,
        roiStage: -1,
        breakEven: false,
        group: '',
        orders: {},
        withdrawnBy: [],
        closing: null,
      };
      this.trades.set(symbol, t);
      this.levels(t, p.avgPrice);
    } else if ((side === 'buy') === dir > 0) {
      // Added to: the levels move to the new average entry (the trailing stop keeps its level).
      this.levels(t, p.avgPrice);
    }
    this.attach(t);
  }

  /** A finished order (filled, cancelled, rejected, expired or denied). */
  onOrderDone(symbol: string, id: string): void {
    const t = this.trades.get(symbol);
    if (t === undefined) return;
    for (const k of EXIT_TAGS) if (t.orders[k] === id) delete t.orders[k];
    const w = t.withdrawnBy.indexOf(id);
    let back = false;
    if (w >= 0) {
      t.withdrawnBy.splice(w, 1);
      back = t.withdrawnBy.length === 0;
    }
    if (t.closing === id) {
      // The closing order ended with something still held (rejected, or partly filled): the
      // exits protect what is left, and a time exit tries again at the next close.
      t.closing = null;
      back = true;
    }
    if (back) this.attach(t);
  }

  /** At a bar's close on `symbol`: ATR exits waiting for the ATR, the ROI table, break-even, the time exit. */
  onBar(symbol: string, close: number): void {
    const t = this.trades.get(symbol);
    if (t === undefined || t.closing !== null) return;
    if (this.reattach.delete(symbol)) this.attach(t);
    const now = this.host.now();
    const age = now - t.entryTime;
    const spec = this.spec;
    if (spec.timeExitMs !== undefined && age >= spec.timeExitMs) {
      const p = this.host.position(symbol);
      this.cancelAll(t, 'time exit');
      t.closing = this.host.submit(
        {
          type: 'market',
          symbol,
          side: t.dir > 0 ? 'sell' : 'buy',
          amount: Math.abs(p.size),
          reduceOnly: true,
          tag: 'time-exit',
        },
        undefined,
      );
      return;
    }
    if (this.needsAtr && t.atr === null && Number.isFinite(this.host.atr(symbol))) {
      this.levels(t, t.entry);
      this.attach(t);
    }
    const stage = roiStage(spec.roi, age);
    if (stage !== t.roiStage) {
      t.roiStage = stage;
      this.replace(t, 'roi');
    }
    const be = spec.breakEven;
    if (be !== undefined && !t.breakEven && (t.dir * (close - t.entry)) / t.entry >= be.trigger) {
      t.breakEven = true;
      const lvl = t.entry * (1 + t.dir * be.offset);
      if (t.stop === null || t.dir * (lvl - t.stop) > 0) {
        t.stop = lvl;
        this.replace(t, 'stop-loss');
      }
    }
  }

  private levels(t: ExitTrade, entry: number): void {
    const spec = this.spec;
    const atr = this.host.atr(t.symbol);
    t.entry = entry;
    t.atr = Number.isFinite(atr) ? atr : null;
    const a = nullToNaN(t.atr);
    const lv = (d: ExitDistance | undefined, loss: boolean): number | null => {
      if (d === undefined) return null;
      if (d.kind === 'atr' && t.atr === null) return null;
      return level(d, entry, t.dir, a, loss);
    };
    t.stop = lv(spec.stopLoss, true);
    t.take = lv(spec.takeProfit, false);
    t.breakEven = false;
    t.roiStage = roiStage(spec.roi, this.host.now() - t.entryTime);
    if (this.needsAtr && t.atr === null)
      this.host.notice(
        'exits',
        t.symbol,
        `ATR(${spec.atrPeriod}) is not defined yet: the ATR-based exits of ${t.symbol} are placed at the first bar close where it is`,
      );
  }

  private price(t: ExitTag, tr: ExitTrade): number | null {
    switch (t) {
      case 'stop-loss':
        return tr.stop;
      case 'take-profit':
        return tr.take;
      case 'roi': {
        const step = tr.roiStage >= 0 ? this.spec.roi?.[tr.roiStage] : undefined;
        return step === undefined ? null : tr.entry * (1 + tr.dir * step.profit);
      }
      case 'trailing-stop':
        return null;
    }
  }

  /** (Re)places every exit of the trade for the whole position. */
  private attach(t: ExitTrade): void {
    this.cancelAll(t, 'exits re-placed');
    if (t.withdrawnBy.length > 0 || t.closing !== null) return;
    t.group = `x${++this.groupSeq}`;
    for (const k of EXIT_TAGS) this.place(t, k);
  }

  private replace(t: ExitTrade, k: ExitTag): void {
    if (t.withdrawnBy.length > 0 || t.closing !== null) return;
    const id = t.orders[k];
    if (id !== undefined) {
      delete t.orders[k];
      this.host.cancel(id, `${k} re-placed`);
    }
    if (t.group === '') t.group = `x${++this.groupSeq}`;
    this.place(t, k, id);
  }

  private place(t: ExitTrade, k: ExitTag, replaces?: string): void {
    const input = this.exitOrder(t, k);
    if (input === null) return;
    const id = this.host.submit(input, t.group, replaces);
    t.orders[k] = id;
    if (k === 'trailing-stop' && t.trailLevel !== null) this.host.setTrailingLevel(id, t.trailLevel);
  }

  /** The exit of role `k` the trade has for what is held now, or null when it has none. */
  private exitOrder(t: ExitTrade, k: ExitTag): OrderInput | null {
    const p = this.host.position(t.symbol);
    const amount = Math.abs(p.size);
    if (!(amount > 0) || this.host.isDust(t.symbol, p.size)) return null;
    const side = t.dir > 0 ? 'sell' : 'buy';
    const base = { symbol: t.symbol, side, amount, reduceOnly: true, tag: k } as const;
    if (k === 'trailing-stop') {
      const tr = this.spec.trailing;
      if (tr === undefined) return null;
      if (tr.kind === 'atr' && t.atr === null) return null;
      return {
        ...base,
        type: 'trailing-stop',
        trail:
          tr.kind === 'percent'
            ? { kind: 'percent', value: tr.value * 100 }
            : { kind: 'amount', value: tr.multiple * (t.atr as number) },
      };
    }
    const price = this.price(k, t);
    if (price === null || !(price > 0)) return null;
    return k === 'stop-loss' ? { ...base, type: 'stop-market', stopPrice: price } : { ...base, type: 'limit', price };
  }

  private cancelAll(t: ExitTrade, reason: string): void {
    for (const k of EXIT_TAGS) {
      const id = t.orders[k];
      if (id === undefined) continue;
      if (k === 'trailing-stop') {
        const lvl = this.host.trailingLevel(id);
        if (Number.isFinite(lvl)) t.trailLevel = lvl;
      }
      delete t.orders[k];
      this.host.cancel(id, reason);
    }
  }

  /**
   * After a restore: exits the position should have and the engine does not have working (a
   * paper session may start with an empty venue; a live order may have ended while the bot was
   * down; `--on-shutdown cancel` cancelled them all) are placed again, for what is held then, at
   * the market's next close: never before a bar, whose time their ids carry.
   */
  dropMissing(isOpen: (id: string) => boolean): void {
    for (const t of this.trades.values()) {
      let missing = false;
      for (const k of EXIT_TAGS) {
        const id = t.orders[k];
        if (id !== undefined && !isOpen(id)) {
          delete t.orders[k];
          missing = true;
        }
      }
      const working = t.withdrawnBy.filter(isOpen);
      if (working.length !== t.withdrawnBy.length) {
        t.withdrawnBy = working;
        missing = true;
      }
      if (t.closing !== null && !isOpen(t.closing)) {
        t.closing = null;
        missing = true;
      }
      // Exits that stepped aside for an order still working come back when it ends (onOrderDone).
      if (t.withdrawnBy.length === 0 && t.closing === null)
        for (const k of EXIT_TAGS) if (t.orders[k] === undefined && this.exitOrder(t, k) !== null) missing = true;
      if (missing) this.reattach.add(t.symbol);
    }
  }

  /** The open positions' exit state as plain JSON. */
  snapshot(): { readonly groupSeq: number; readonly trades: readonly ExitTrade[] } {
    return {
      groupSeq: this.groupSeq,
      trades: [...this.trades.values()].map((t) => structuredCopy(t)),
    };
  }

  restore(s: { readonly groupSeq: number; readonly trades: readonly ExitTrade[] }): void {
    this.groupSeq = s.groupSeq;
    this.trades = new Map(s.trades.map((t) => [t.symbol, structuredCopy(t)]));
    this.reattach.clear();
  }
}

function structuredCopy(t: ExitTrade): ExitTrade {
  return { ...t, orders: { ...t.orders }, withdrawnBy: [...t.withdrawnBy] };
}
