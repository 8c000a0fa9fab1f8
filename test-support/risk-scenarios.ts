/**
 * Risk scenarios as data: one per rule, protection, sizing model and exit, each with hand-made
 * bars, the strategy's actions by bar, the settings in the CLI's own grammar, and what must
 * happen (denials, halts, resumes, fills) by bar, computed by hand in the comments. The backtest
 * suite runs them through the engine; the paper suite runs the same table through the simulator
 * and must observe the same things at the same bars.
 */
import {
  Account,
  type AnyStrategy,
  type BarSeries,
  barSeries,
  defineInstrument,
  defineStrategy,
  Engine,
  type EngineEvent,
  type Fill,
  type Instrument,
  type InstrumentSpec,
  parseRiskConfig,
  percentFee,
  type RiskConfig,
  type RiskEvent,
  type RiskInput,
  SeriesCursor,
  SimulatedVenue,
  type StrategyContext,
} from '@keel/core';
import { expect } from 'vitest';

export const SCENARIO_T0 = Date.UTC(2024, 0, 1);

/** What the scripted strategy does at a primary bar (in its onBar), by the bar's index. */
export type ScenarioAction =
  | { readonly op: 'buy' | 'sell'; readonly amount: number; readonly symbol?: string }
  | { readonly op: 'target'; readonly fraction: number; readonly symbol?: string }
  | { readonly op: 'close'; readonly symbol?: string }
  | { readonly op: 'limit'; readonly side: 'buy' | 'sell'; readonly amount: number; readonly price: number }
  | { readonly op: 'cancel-all' };

/** A bar as [open, high, low, close]. */
export type Row = readonly [number, number, number, number];

export interface ScenarioMarket {
  readonly symbol: string;
  readonly rows: readonly Row[];
  readonly instrument?: Omit<InstrumentSpec, 'symbol'>;
}

export interface RiskScenario {
  readonly name: string;
  /** The settings, as `keel backtest|paper` takes them. */
  readonly settings: RiskInput;
  readonly markets: readonly ScenarioMarket[];
  readonly timeframe: '1m' | '1h';
  readonly cash?: number;
  readonly fee?: number;
  readonly allowShortSpot?: boolean;
  readonly actions: Readonly<Record<number, readonly ScenarioAction[]>>;
  /** `resumeTrading()` after these bars (the user's explicit action). */
  readonly resumeAfter?: readonly number[];
  readonly expect: ScenarioObservation;
}

/** What a run did, by bar index (the bar whose close the event carries). */
export interface ScenarioObservation {
  readonly denied: readonly { readonly bar: number; readonly rule: string; readonly actual?: number }[];
  readonly halts: readonly {
    readonly bar: number;
    readonly rule: string;
    readonly action: string;
    readonly scope: string;
  }[];
  readonly resumes: readonly { readonly bar: number; readonly rule: string; readonly by: string }[];
  readonly fills: readonly {
    readonly bar: number;
    readonly symbol?: string;
    readonly side: 'buy' | 'sell';
    readonly price: number;
    readonly amount: number;
    readonly tag?: string;
  }[];
}

const anyParams = { safeParse: (x: unknown) => ({ success: true as const, data: x }) };

/** The scripted strategy of a scenario: at primary bar i it does `actions[i]`. */
export function scenarioStrategy(actions: RiskScenario['actions']): AnyStrategy {
  return defineStrategy({
    name: 'risk-scenario',
    params: anyParams,
    warmup: 'none',
    onStart: () => ({}),
    // The bar's index from its time, not a count: a bot restarted mid-scenario (bars it handled
    // before only warm it up) acts at the same bars as a run that never stopped.
    onBar(ctx: StrategyContext, _s: unknown, bar: { time: number }, key: { timeframe: string }) {
      const i = Math.round((bar.time - SCENARIO_T0) / TF_MS[key.timeframe as keyof typeof TF_MS]);
      for (const a of actions[i] ?? []) act(ctx, a);
    },
  });
}

function act(ctx: StrategyContext, a: ScenarioAction): void {
  switch (a.op) {
    case 'buy':
    case 'sell':
      ctx[a.op](a.amount, a.symbol === undefined ? undefined : { symbol: a.symbol });
      return;
    case 'target':
      ctx.orderTargetPercent(a.fraction, a.symbol === undefined ? undefined : { symbol: a.symbol });
      return;
    case 'close':
      ctx.close(a.symbol === undefined ? undefined : { symbol: a.symbol });
      return;
    case 'limit':
      ctx.submit({ type: 'limit', side: a.side, amount: a.amount, price: a.price });
      return;
    case 'cancel-all':
      ctx.cancelAll();
      return;
  }
}

export function scenarioConfig(s: RiskScenario): RiskConfig {
  const p = parseRiskConfig(s.settings);
  if (!p.ok) throw new Error(`${s.name}: ${p.error.message}`);
  return p.config;
}

export function scenarioInstruments(s: RiskScenario): Instrument[] {
  return s.markets.map((m) => defineInstrument({ ...(m.instrument ?? {}), symbol: m.symbol }));
}

export const TF_MS = { '1m': 60_000, '1h': 3_600_000 } as const;

/** Bar index of a time stamped with a bar's close. */
export function barOf(s: RiskScenario, closeTime: number): number {
  return Math.round((closeTime - SCENARIO_T0) / TF_MS[s.timeframe]) - 1;
}

/** Asserts a run's observation: denials, halts, resumes and fills by bar; numbers to 1e-9. */
export function expectObservation(got: ScenarioObservation, want: ScenarioObservation): void {
  const strip = (o: ScenarioObservation) => ({
    denied: o.denied.map(({ bar, rule }) => ({ bar, rule })),
    halts: o.halts,
    resumes: o.resumes,
    fills: o.fills.map(({ price: _p, amount: _a, ...rest }) => rest),
  });
  expect(strip(got)).toEqual(strip(want));
  want.denied.forEach((d, i) => {
    if (d.actual !== undefined) expect(got.denied[i]?.actual, `denial ${i} actual`).toBeCloseTo(d.actual, 9);
  });
  want.fills.forEach((f, i) => {
    expect(got.fills[i]?.price, `fill ${i} price`).toBeCloseTo(f.price, 9);
    expect(got.fills[i]?.amount, `fill ${i} amount`).toBeCloseTo(f.amount, 9);
  });
}

/** The events and fills of a run, by bar, in the shape of `expect`. */
export function observe(
  s: RiskScenario,
  riskEvents: readonly RiskEvent[],
  fills: readonly Fill[],
): ScenarioObservation {
  return {
    denied: riskEvents.flatMap((e) =>
      e.type === 'denied' ? [{ bar: barOf(s, e.time), rule: e.rule, actual: e.actual }] : [],
    ),
    halts: riskEvents.flatMap((e) =>
      e.type === 'halt' ? [{ bar: barOf(s, e.time), rule: e.rule, action: e.action, scope: e.scope }] : [],
    ),
    resumes: riskEvents.flatMap((e) =>
      e.type === 'resume' ? [{ bar: barOf(s, e.time), rule: e.rule, by: e.by }] : [],
    ),
    fills: fills.map((f) => ({
      bar: barOf(s, f.time),
      ...(s.markets.length > 1 ? { symbol: f.symbol } : {}),
      side: f.side,
      price: f.price,
      amount: f.amount,
      ...(f.tag !== undefined ? { tag: f.tag } : {}),
    })),
  };
}

/**
 * Runs a scenario through the engine and the simulated venue as a backtest does (bars of every
 * market in order, the primary first at each instant), with `resumeTrading()` where the scenario
 * says. Returns the engine (its fills, orders and risk log) and every engine event.
 */
export function runScenario(s: RiskScenario): { engine: Engine; events: EngineEvent[]; account: Account } {
  const instruments = scenarioInstruments(s);
  const account = new Account('USDT', s.cash ?? 10_000);
  const venue = new SimulatedVenue(instruments, account, {
    fees: percentFee(s.fee ?? 0),
    ...(s.allowShortSpot ? { allowShortSpot: true } : {}),
  });
  const events: EngineEvent[] = [];
  const engine = new Engine({
    instruments,
    account,
    venue,
    strategy: scenarioStrategy(s.actions),
    params: {},
    feeds: s.markets.map((m) => ({ symbol: m.symbol, timeframe: s.timeframe })),
    risk: scenarioConfig(s),
    onEvent: (e) => events.push(e),
  });
  engine.start();
  const series = s.markets.map((_, k) => scenarioSeries(s, k));
  const cursors = series.map((x) => new SeriesCursor(x));
  const n = s.markets[0]?.rows.length ?? 0;
  const resume = new Set(s.resumeAfter ?? []);
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < series.length; f++) {
      const c = cursors[f] as SeriesCursor;
      c.i = i;
      engine.onBar(f, c);
    }
    if (resume.has(i)) engine.resumeTrading();
  }
  engine.stop();
  return { engine, events, account };
}

/** The bars of a scenario's market `k` (stamped with their open time from SCENARIO_T0). */
export function scenarioSeries(s: RiskScenario, k: number): BarSeries {
  const rows = (s.markets[k] as ScenarioMarket).rows;
  const ms = TF_MS[s.timeframe];
  return barSeries({
    time: rows.map((_, i) => SCENARIO_T0 + i * ms),
    open: rows.map((r) => r[0]),
    high: rows.map((r) => r[1]),
    low: rows.map((r) => r[2]),
    close: rows.map((r) => r[3]),
    volume: rows.map(() => 1_000_000),
  });
}

/** `n` flat bars at `p`, with some bars replaced: `flat(10, 100, { 3: [100, 101, 97, 98] })`. */
export function flat(n: number, p: number, overrides: Readonly<Record<number, Row>> = {}): Row[] {
  return Array.from({ length: n }, (_, i) => overrides[i] ?? ([p, p, p, p] as const));
}

const A = 'A/USDT';
const B = 'B/USDT';
const C = 'C/USDT';

/**
 * The table. Prices are round numbers, fees 0 unless a scenario says, cash 10,000, so every number
 * below is checked by hand: a market order decided on bar i fills at bar i+1's open; an event on
 * bar i carries bar i's close time (docs/conventions.md, docs/risk.md).
 */
export const RISK_SCENARIOS: readonly RiskScenario[] = [
  {
    name: 'max-position denies an entry whose notional would exceed the fraction of equity',
    settings: { risk: ['max-position=0.5'] },
    markets: [{ symbol: A, rows: flat(5, 100) }],
    timeframe: '1m',
    // bar 0: target 90 % -> 90 units, 9,000 / 10,000 = 0.9 > 0.5: denied. Target 40 % -> 40 units.
    // bar 2 (40 held): buy 15 -> 55 x 100 / 10,000 = 0.55: denied.
    actions: {
      0: [{ op: 'target', fraction: 0.9 }],
      1: [{ op: 'target', fraction: 0.4 }],
      2: [{ op: 'buy', amount: 15 }],
    },
    expect: {
      denied: [
        { bar: 0, rule: 'max-position', actual: 0.9 },
        { bar: 2, rule: 'max-position', actual: 0.55 },
      ],
      halts: [],
      resumes: [],
      fills: [{ bar: 2, side: 'buy', price: 100, amount: 40 }],
    },
  },
  {
    name: 'max-position-size counts the working entries',
    settings: { risk: ['max-position-size=50'] },
    markets: [{ symbol: A, rows: flat(3, 100) }],
    timeframe: '1m',
    // bar 0: buy 60 > 50 denied; buy 30 passes; another 30 would make 60 with the first working.
    actions: {
      0: [
        { op: 'buy', amount: 60 },
        { op: 'buy', amount: 30 },
        { op: 'buy', amount: 30 },
      ],
    },
    expect: {
      denied: [
        { bar: 0, rule: 'max-position-size', actual: 60 },
        { bar: 0, rule: 'max-position-size', actual: 60 },
      ],
      halts: [],
      resumes: [],
      fills: [{ bar: 1, side: 'buy', price: 100, amount: 30 }],
    },
  },
  {
    name: 'max-notional caps one symbol in the account currency',
    settings: { risk: ['max-notional=5000'] },
    markets: [{ symbol: A, rows: flat(3, 100) }],
    timeframe: '1m',
    actions: {
      0: [
        { op: 'buy', amount: 51 },
        { op: 'buy', amount: 50 },
      ],
    },
    expect: {
      denied: [{ bar: 0, rule: 'max-notional', actual: 5100 }],
      halts: [],
      resumes: [],
      fills: [{ bar: 1, side: 'buy', price: 100, amount: 50 }],
    },
  },
  {
    name: 'max-gross sums |notional| over markets (a short counts)',
    settings: { risk: ['max-gross=7000'] },
    markets: [
      { symbol: A, rows: flat(4, 100) },
      { symbol: B, rows: flat(4, 100) },
    ],
    timeframe: '1m',
    allowShortSpot: true,
    // At bar 1 (both markets have a price): long A 40 (4,000); short B 40 would make 8,000 >
    // 7,000; short B 30 makes 7,000.
    actions: {
      1: [
        { op: 'buy', amount: 40, symbol: A },
        { op: 'sell', amount: 40, symbol: B },
        { op: 'sell', amount: 30, symbol: B },
      ],
    },
    expect: {
      denied: [{ bar: 1, rule: 'max-gross', actual: 8000 }],
      halts: [],
      resumes: [],
      fills: [
        { bar: 2, symbol: A, side: 'buy', price: 100, amount: 40 },
        { bar: 2, symbol: B, side: 'sell', price: 100, amount: 30 },
      ],
    },
  },
  {
    name: 'max-net nets longs against shorts',
    settings: { risk: ['max-net=5000'] },
    markets: [
      { symbol: A, rows: flat(4, 100) },
      { symbol: B, rows: flat(4, 100) },
    ],
    timeframe: '1m',
    allowShortSpot: true,
    // long A 40 (net 4,000); long B 20 -> 6,000 > 5,000; short B 20 -> 2,000.
    actions: {
      1: [
        { op: 'buy', amount: 40, symbol: A },
        { op: 'buy', amount: 20, symbol: B },
        { op: 'sell', amount: 20, symbol: B },
      ],
    },
    expect: {
      denied: [{ bar: 1, rule: 'max-net', actual: 6000 }],
      halts: [],
      resumes: [],
      fills: [
        { bar: 2, symbol: A, side: 'buy', price: 100, amount: 40 },
        { bar: 2, symbol: B, side: 'sell', price: 100, amount: 20 },
      ],
    },
  },
  {
    name: 'max-leverage divides gross exposure by equity',
    settings: { risk: ['max-leverage=1'] },
    markets: [
      { symbol: A, rows: flat(4, 100) },
      { symbol: B, rows: flat(4, 100) },
    ],
    timeframe: '1m',
    // A 60 (0.6x); B 50 -> 11,000 / 10,000 = 1.1x; B 40 -> 1.0x.
    actions: {
      1: [
        { op: 'buy', amount: 60, symbol: A },
        { op: 'buy', amount: 50, symbol: B },
        { op: 'buy', amount: 40, symbol: B },
      ],
    },
    expect: {
      denied: [{ bar: 1, rule: 'max-leverage', actual: 1.1 }],
      halts: [],
      resumes: [],
      fills: [
        { bar: 2, symbol: A, side: 'buy', price: 100, amount: 60 },
        { bar: 2, symbol: B, side: 'buy', price: 100, amount: 40 },
      ],
    },
  },
  {
    name: 'max-open-orders counts working orders and the new one',
    settings: { risk: ['max-open-orders=2'] },
    markets: [{ symbol: A, rows: flat(3, 100) }],
    timeframe: '1m',
    actions: {
      0: [
        { op: 'limit', side: 'buy', amount: 1, price: 90 },
        { op: 'limit', side: 'buy', amount: 1, price: 80 },
        { op: 'limit', side: 'buy', amount: 1, price: 70 },
      ],
    },
    expect: { denied: [{ bar: 0, rule: 'max-open-orders', actual: 3 }], halts: [], resumes: [], fills: [] },
  },
  {
    name: 'max-open-trades counts markets held or entering, not orders',
    settings: { risk: ['max-open-trades=2'] },
    markets: [
      { symbol: A, rows: flat(6, 100) },
      { symbol: B, rows: flat(6, 100) },
      { symbol: C, rows: flat(6, 100) },
    ],
    timeframe: '1m',
    // Bar 0: A and B enter (working: 2 markets), C would be the third. Bar 1: A and B are held;
    // adding to A opens no new market. Bar 2: A closes (flat at bar 3's open). Bar 3: one market
    // (B) is open, C enters.
    actions: {
      0: [
        { op: 'buy', amount: 10, symbol: A },
        { op: 'buy', amount: 10, symbol: B },
        { op: 'buy', amount: 10, symbol: C },
      ],
      1: [
        { op: 'buy', amount: 5, symbol: A },
        { op: 'buy', amount: 10, symbol: C },
      ],
      2: [{ op: 'close', symbol: A }],
      3: [{ op: 'buy', amount: 10, symbol: C }],
    },
    expect: {
      denied: [
        { bar: 0, rule: 'max-open-trades', actual: 3 },
        { bar: 1, rule: 'max-open-trades', actual: 3 },
      ],
      halts: [],
      resumes: [],
      fills: [
        { bar: 1, symbol: A, side: 'buy', price: 100, amount: 10 },
        { bar: 1, symbol: B, side: 'buy', price: 100, amount: 10 },
        { bar: 2, symbol: A, side: 'buy', price: 100, amount: 5 },
        { bar: 3, symbol: A, side: 'sell', price: 100, amount: 15 },
        { bar: 4, symbol: C, side: 'buy', price: 100, amount: 10 },
      ],
    },
  },
  {
    name: 'order-rate counts the orders sent in the sliding window',
    settings: { risk: ['order-rate=2/5m'] },
    markets: [{ symbol: A, rows: flat(8, 100) }],
    timeframe: '1m',
    // Sent at the closes of bars 0 and 1 (00:01, 00:02). Bar 2 (00:03) and bar 4 (00:05): both in
    // (close - 5m, close], a third is denied. Bar 5 (00:06): only 00:02 is in (00:01, 00:06].
    actions: {
      0: [{ op: 'buy', amount: 1 }],
      1: [{ op: 'buy', amount: 1 }],
      2: [{ op: 'buy', amount: 1 }],
      4: [{ op: 'buy', amount: 1 }],
      5: [{ op: 'buy', amount: 1 }],
    },
    expect: {
      denied: [
        { bar: 2, rule: 'order-rate', actual: 3 },
        { bar: 4, rule: 'order-rate', actual: 3 },
      ],
      halts: [],
      resumes: [],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 1 },
        { bar: 2, side: 'buy', price: 100, amount: 1 },
        { bar: 6, side: 'buy', price: 100, amount: 1 },
      ],
    },
  },
  {
    name: 'cash-reserve keeps a fraction of equity in cash after a buy',
    settings: { risk: ['cash-reserve=20%'] },
    markets: [{ symbol: A, rows: flat(3, 100) }],
    timeframe: '1m',
    // 85 units leave 1,500 = 15 % of 10,000; 80 leave 2,000 = 20 %.
    actions: {
      0: [
        { op: 'buy', amount: 85 },
        { op: 'buy', amount: 80 },
      ],
    },
    expect: {
      denied: [{ bar: 0, rule: 'cash-reserve', actual: 0.15 }],
      halts: [],
      resumes: [],
      fills: [{ bar: 1, side: 'buy', price: 100, amount: 80 }],
    },
  },
  {
    name: 'min-cash keeps an amount of cash after a buy',
    settings: { risk: ['min-cash=3000'] },
    markets: [{ symbol: A, rows: flat(3, 100) }],
    timeframe: '1m',
    actions: {
      0: [
        { op: 'buy', amount: 71 },
        { op: 'buy', amount: 70 },
      ],
    },
    expect: {
      denied: [{ bar: 0, rule: 'min-cash', actual: 2900 }],
      halts: [],
      resumes: [],
      fills: [{ bar: 1, side: 'buy', price: 100, amount: 70 }],
    },
  },
  {
    name: 'symbols allows entries on the listed markets only',
    settings: { risk: ['symbols=A/USDT'] },
    markets: [
      { symbol: A, rows: flat(4, 100) },
      { symbol: B, rows: flat(4, 100) },
    ],
    timeframe: '1m',
    actions: {
      1: [
        { op: 'buy', amount: 1, symbol: B },
        { op: 'buy', amount: 1, symbol: A },
      ],
    },
    expect: {
      denied: [{ bar: 1, rule: 'symbols', actual: 0 }],
      halts: [],
      resumes: [],
      fills: [{ bar: 2, symbol: A, side: 'buy', price: 100, amount: 1 }],
    },
  },
  {
    name: 'sides=long denies opening or reversing into a short, never an exit',
    settings: { risk: ['sides=long'] },
    markets: [{ symbol: A, rows: flat(6, 100) }],
    timeframe: '1m',
    allowShortSpot: true,
    // bar 0: a short entry is denied; the buy fills at bar 1. Bar 2: selling 20 of 10 would leave
    // -10: denied; selling 10 is an exit and passes.
    actions: {
      0: [
        { op: 'sell', amount: 10 },
        { op: 'buy', amount: 10 },
      ],
      2: [
        { op: 'sell', amount: 20 },
        { op: 'sell', amount: 10 },
      ],
    },
    expect: {
      denied: [
        { bar: 0, rule: 'sides', actual: -10 },
        { bar: 2, rule: 'sides', actual: -10 },
      ],
      halts: [],
      resumes: [],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 10 },
        { bar: 3, side: 'sell', price: 100, amount: 10 },
      ],
    },
  },
  {
    name: 'daily-loss:resume halts (freeze) at the close where the day loses the limit, until resumed',
    settings: { risk: ['daily-loss=5%:resume'] },
    // 1h bars. Bar 0 closes 01:00: the day starts at 10,000. Buy 50 fills at bar 1's open (100).
    // Bar 3 closes at 89.9: 10,000 - 50 x 10.1 = 9,495, a 5.05 % loss: halt. Bar 4's buy is
    // denied; the position stays (freeze). Resumed after bar 5: bar 6's buy passes.
    markets: [
      {
        symbol: A,
        rows: flat(8, 100, {
          3: [100, 100, 89.9, 89.9],
          4: [89.9, 89.9, 89.9, 89.9],
          5: [89.9, 89.9, 89.9, 89.9],
          6: [90, 90, 90, 90],
          7: [90, 90, 90, 90],
        }),
      },
    ],
    timeframe: '1h',
    actions: { 0: [{ op: 'buy', amount: 50 }], 4: [{ op: 'buy', amount: 1 }], 6: [{ op: 'buy', amount: 1 }] },
    resumeAfter: [5],
    expect: {
      denied: [{ bar: 4, rule: 'daily-loss', actual: 0.0505 }],
      halts: [{ bar: 3, rule: 'daily-loss', action: 'freeze', scope: 'account' }],
      resumes: [{ bar: 5, rule: 'daily-loss', by: 'user' }],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 50 },
        { bar: 7, side: 'buy', price: 90, amount: 1 },
      ],
    },
  },
  {
    name: 'daily-loss (by default) ends at the next 00:00 UTC by itself',
    settings: { risk: ['daily-loss=5%'] },
    // As above; the halt lasts until 2024-01-02 00:00, the close of bar 23: it ends there, and
    // bar 23's buy passes (fills at bar 24's open).
    markets: [
      {
        symbol: A,
        rows: flat(26, 90, {
          0: [100, 100, 100, 100],
          1: [100, 100, 100, 100],
          2: [100, 100, 100, 100],
          3: [100, 100, 89.9, 89.9],
        }),
      },
    ],
    timeframe: '1h',
    actions: { 0: [{ op: 'buy', amount: 50 }], 22: [{ op: 'buy', amount: 1 }], 23: [{ op: 'buy', amount: 1 }] },
    expect: {
      denied: [{ bar: 22, rule: 'daily-loss', actual: 0.0505 }],
      halts: [{ bar: 3, rule: 'daily-loss', action: 'freeze', scope: 'account' }],
      resumes: [{ bar: 23, rule: 'daily-loss', by: 'expiry' }],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 50 },
        { bar: 24, side: 'buy', price: 90, amount: 1 },
      ],
    },
  },
  {
    name: 'max-drawdown flattens at the next open, cancels working entries, denies entries until resumed',
    settings: { risk: ['max-drawdown=10%'] },
    // Buy 50 fills at bar 1 (100). Bar 2 closes 110: equity 10,500, the peak. Bar 3 closes 88:
    // 10,000 - 50 x 12 = 9,400, 1 - 9,400/10,500 = 10.476 % >= 10 %: halt, flatten. The resting
    // buy limit at 50 is cancelled; the flatten sells 50 at bar 4's open (87). Bar 4's buy is
    // denied. Resumed after bar 5: bar 6's buy fills at bar 7 (87).
    markets: [
      {
        symbol: A,
        rows: flat(8, 87, {
          0: [100, 100, 100, 100],
          1: [100, 100, 100, 100],
          2: [100, 110, 100, 110],
          3: [110, 110, 88, 88],
        }),
      },
    ],
    timeframe: '1m',
    actions: {
      0: [{ op: 'buy', amount: 50 }],
      1: [{ op: 'limit', side: 'buy', amount: 1, price: 50 }],
      4: [{ op: 'buy', amount: 1 }],
      6: [{ op: 'buy', amount: 1 }],
    },
    resumeAfter: [5],
    expect: {
      denied: [{ bar: 4, rule: 'max-drawdown', actual: 1 - 9400 / 10500 }],
      halts: [{ bar: 3, rule: 'max-drawdown', action: 'flatten', scope: 'account' }],
      resumes: [{ bar: 5, rule: 'max-drawdown', by: 'user' }],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 50 },
        { bar: 4, side: 'sell', price: 87, amount: 50, tag: 'risk-flatten' },
        { bar: 7, side: 'buy', price: 87, amount: 1 },
      ],
    },
  },
  {
    name: 'max-drawdown:freeze keeps the position and lets the strategy exit',
    settings: { risk: ['max-drawdown=10%:freeze'] },
    markets: [
      {
        symbol: A,
        rows: flat(7, 87, {
          0: [100, 100, 100, 100],
          1: [100, 100, 100, 100],
          2: [100, 110, 100, 110],
          3: [110, 110, 88, 88],
        }),
      },
    ],
    timeframe: '1m',
    // The halt at bar 3 keeps the 50; bar 4's buy is denied, its close passes and fills at bar 5.
    actions: { 0: [{ op: 'buy', amount: 50 }], 4: [{ op: 'buy', amount: 1 }, { op: 'close' }] },
    expect: {
      denied: [{ bar: 4, rule: 'max-drawdown', actual: 1 - 9400 / 10500 }],
      halts: [{ bar: 3, rule: 'max-drawdown', action: 'freeze', scope: 'account' }],
      resumes: [],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 50 },
        { bar: 5, side: 'sell', price: 87, amount: 50 },
      ],
    },
  },
  {
    name: 'stoploss-guard locks entries after N losing stop-outs within the window',
    settings: { risk: ['stoploss-guard=2/1h:2h'], exits: { 'stop-loss': '1%' } },
    // Entry fills at bar 1 (100), stop at 99; bar 2 dips to 98.5: stop-out at 99. Entry fills at
    // bar 4, stop-out at bar 5. Two within 1h: locked from bar 5's close (00:06) for 2h, to 02:06,
    // the close of bar 125. Bar 6's buy is denied; bar 125's passes (fills at bar 126).
    markets: [{ symbol: A, rows: flat(128, 100, { 2: [100, 100, 98.5, 100], 5: [100, 100, 98, 100] }) }],
    timeframe: '1m',
    actions: {
      0: [{ op: 'buy', amount: 10 }],
      3: [{ op: 'buy', amount: 10 }],
      6: [{ op: 'buy', amount: 10 }],
      125: [{ op: 'buy', amount: 10 }],
    },
    expect: {
      denied: [{ bar: 6, rule: 'stoploss-guard', actual: 2 }],
      halts: [{ bar: 5, rule: 'stoploss-guard', action: 'freeze', scope: 'account' }],
      resumes: [{ bar: 125, rule: 'stoploss-guard', by: 'expiry' }],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 10 },
        { bar: 2, side: 'sell', price: 99, amount: 10, tag: 'stop-loss' },
        { bar: 4, side: 'buy', price: 100, amount: 10 },
        { bar: 5, side: 'sell', price: 99, amount: 10, tag: 'stop-loss' },
        { bar: 126, side: 'buy', price: 100, amount: 10 },
      ],
    },
  },
  {
    name: 'cooldown locks the symbol after a losing trade',
    settings: { risk: ['cooldown=30m'] },
    // Buy fills at bar 1 (100), the close at bar 3 (95): a loss, exit at 00:04. Locked to 00:34,
    // the close of bar 33: bar 32's buy is denied, bar 33's passes.
    markets: [
      { symbol: A, rows: flat(36, 95, { 0: [100, 100, 100, 100], 1: [100, 100, 100, 100], 2: [100, 100, 100, 100] }) },
    ],
    timeframe: '1m',
    actions: {
      0: [{ op: 'buy', amount: 10 }],
      2: [{ op: 'close' }],
      32: [{ op: 'buy', amount: 1 }],
      33: [{ op: 'buy', amount: 1 }],
    },
    expect: {
      denied: [{ bar: 32, rule: 'cooldown', actual: -50 }],
      halts: [{ bar: 3, rule: 'cooldown', action: 'freeze', scope: A }],
      resumes: [{ bar: 33, rule: 'cooldown', by: 'expiry' }],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 10 },
        { bar: 3, side: 'sell', price: 95, amount: 10 },
        { bar: 34, side: 'buy', price: 95, amount: 1 },
      ],
    },
  },
  {
    name: 'low-profit locks a symbol whose trades in the window sum below the minimum',
    settings: { risk: ['low-profit=2/1h:1h'] },
    // Trade 1: 100 -> 101 (+1 %), exit at bar 3. Trade 2: 101 -> 98.97 (-2.01 %), exit at bar 6
    // (00:07). Sum -1.01 % < 0 with 2 trades: locked to 01:07 (bar 66's close). Bar 7 denied.
    markets: [
      {
        symbol: A,
        rows: flat(68, 98.97, {
          0: [100, 100, 100, 100],
          1: [100, 100, 100, 100],
          2: [101, 101, 101, 101],
          3: [101, 101, 101, 101],
          4: [101, 101, 101, 101],
          5: [101, 101, 101, 101],
        }),
      },
    ],
    timeframe: '1m',
    actions: {
      0: [{ op: 'buy', amount: 10 }],
      2: [{ op: 'close' }],
      3: [{ op: 'buy', amount: 10 }],
      5: [{ op: 'close' }],
      7: [{ op: 'buy', amount: 1 }],
      66: [{ op: 'buy', amount: 1 }],
    },
    expect: {
      denied: [{ bar: 7, rule: 'low-profit', actual: 0.01 + (98.97 - 101) / 101 }],
      halts: [{ bar: 6, rule: 'low-profit', action: 'freeze', scope: A }],
      resumes: [{ bar: 66, rule: 'low-profit', by: 'expiry' }],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 10 },
        { bar: 3, side: 'sell', price: 101, amount: 10 },
        { bar: 4, side: 'buy', price: 101, amount: 10 },
        { bar: 6, side: 'sell', price: 98.97, amount: 10 },
        { bar: 67, side: 'buy', price: 98.97, amount: 1 },
      ],
    },
  },
  {
    name: 'max-losses halts after N losing trades in a row',
    settings: { risk: ['max-losses=2'] },
    // Two round trips 100 -> 99: the second exit (bar 6) halts; bar 7's buy is denied.
    markets: [
      {
        symbol: A,
        rows: flat(9, 99, {
          0: [100, 100, 100, 100],
          1: [100, 100, 100, 100],
          2: [100, 100, 100, 100],
          4: [100, 100, 100, 100],
          5: [100, 100, 100, 100],
        }),
      },
    ],
    timeframe: '1m',
    actions: {
      0: [{ op: 'buy', amount: 10 }],
      2: [{ op: 'close' }],
      3: [{ op: 'buy', amount: 10 }],
      5: [{ op: 'close' }],
      7: [{ op: 'buy', amount: 1 }],
    },
    expect: {
      denied: [{ bar: 7, rule: 'max-losses', actual: 2 }],
      halts: [{ bar: 6, rule: 'max-losses', action: 'freeze', scope: 'account' }],
      resumes: [],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 10 },
        { bar: 3, side: 'sell', price: 99, amount: 10 },
        { bar: 4, side: 'buy', price: 100, amount: 10 },
        { bar: 6, side: 'sell', price: 99, amount: 10 },
      ],
    },
  },
  {
    name: 'sizing notional replaces the amount of orderTargetPercent',
    settings: { sizing: ['notional=1000'] },
    markets: [{ symbol: A, rows: flat(3, 100) }],
    timeframe: '1m',
    actions: { 0: [{ op: 'target', fraction: 0.95 }] },
    expect: { denied: [], halts: [], resumes: [], fills: [{ bar: 1, side: 'buy', price: 100, amount: 10 }] },
  },
  {
    name: 'sizing risk: 1 % of equity over a 2 % stop',
    settings: { sizing: ['risk=0.01'], exits: { 'stop-loss': '2%' } },
    // 100 at risk over a stop 2 away: 50 units; the stop at 98 fills on bar 3's dip.
    markets: [{ symbol: A, rows: flat(5, 100, { 3: [100, 100, 97, 99] }) }],
    timeframe: '1m',
    actions: { 0: [{ op: 'buy', amount: 1 }] },
    expect: {
      denied: [],
      halts: [],
      resumes: [],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 50 },
        { bar: 3, side: 'sell', price: 98, amount: 50, tag: 'stop-loss' },
      ],
    },
  },
  {
    name: 'sizing that rounds below the market minimum denies the entry and says why',
    settings: { sizing: ['notional=5'] },
    markets: [{ symbol: A, rows: flat(3, 100), instrument: { stepSize: 0.001, minNotional: 10 } }],
    timeframe: '1m',
    actions: { 0: [{ op: 'target', fraction: 0.5 }] },
    expect: { denied: [{ bar: 0, rule: 'sizing', actual: 5 }], halts: [], resumes: [], fills: [] },
  },
  {
    name: 'take-profit fills at its limit as maker; the stop-loss of the same OCO group is cancelled',
    settings: { exits: { 'stop-loss': '2%', 'take-profit': '5%' } },
    markets: [{ symbol: A, rows: flat(5, 100, { 2: [100, 106, 99, 104] }) }],
    timeframe: '1m',
    actions: { 0: [{ op: 'buy', amount: 10 }] },
    expect: {
      denied: [],
      halts: [],
      resumes: [],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 10 },
        { bar: 2, side: 'sell', price: 105, amount: 10, tag: 'take-profit' },
      ],
    },
  },
  {
    name: 'a stop-loss gapped through fills at the open',
    settings: { exits: { 'stop-loss': '2%' } },
    markets: [{ symbol: A, rows: flat(5, 100, { 3: [96, 97, 95, 96] }) }],
    timeframe: '1m',
    actions: { 0: [{ op: 'buy', amount: 10 }] },
    expect: {
      denied: [],
      halts: [],
      resumes: [],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 10 },
        { bar: 3, side: 'sell', price: 96, amount: 10, tag: 'stop-loss' },
      ],
    },
  },
  {
    name: 'an ATR stop sits k x ATR(n) below the entry',
    settings: { exits: { 'stop-loss': '2atr', 'atr-period': 3 } },
    // Bars 0-3: high - low = 2 around 100, so ATR(3) = 2 from bar 3 on. Buy at bar 3 fills at bar 4
    // (100) with ATR 2: stop at 96; bar 6 dips to 95: filled at 96.
    markets: [
      {
        symbol: A,
        rows: flat(8, 100, {
          0: [100, 101, 99, 100],
          1: [100, 101, 99, 100],
          2: [100, 101, 99, 100],
          3: [100, 101, 99, 100],
          4: [100, 101, 99, 100],
          6: [100, 100, 95, 97],
        }),
      },
    ],
    timeframe: '1m',
    actions: { 3: [{ op: 'buy', amount: 10 }] },
    expect: {
      denied: [],
      halts: [],
      resumes: [],
      fills: [
        { bar: 4, side: 'buy', price: 100, amount: 10 },
        { bar: 6, side: 'sell', price: 96, amount: 10, tag: 'stop-loss' },
      ],
    },
  },
  {
    name: 'a trailing stop follows the best price along the bar path',
    settings: { exits: { trailing: '2%' } },
    // Filled at bar 1's open (100); the trailing stop is anchored at the last close the engine knew
    // when it was placed (bar 0's, 100): 98. Bar 2 rises to
    // 110 (stop 107.8) and closes there; bar 3 falls through 107.8: filled at 107.8.
    markets: [{ symbol: A, rows: flat(5, 100, { 2: [100, 110, 100, 110], 3: [110, 110, 105, 105] }) }],
    timeframe: '1m',
    actions: { 0: [{ op: 'buy', amount: 10 }] },
    expect: {
      denied: [],
      halts: [],
      resumes: [],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 10 },
        { bar: 3, side: 'sell', price: 107.8, amount: 10, tag: 'trailing-stop' },
      ],
    },
  },
  {
    name: 'break-even moves the stop to the entry once the close gains the trigger',
    settings: { exits: { 'stop-loss': '5%', 'break-even': '1%' } },
    // Entry 100, stop 95. Bar 2 closes 101.5 >= 101: the stop moves to 100 (from bar 3). Bar 3
    // falls to 99: filled at 100.
    markets: [{ symbol: A, rows: flat(5, 100, { 2: [100, 102, 100, 101.5], 3: [101.5, 101.5, 99, 99] }) }],
    timeframe: '1m',
    actions: { 0: [{ op: 'buy', amount: 10 }] },
    expect: {
      denied: [],
      halts: [],
      resumes: [],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 10 },
        { bar: 3, side: 'sell', price: 100, amount: 10, tag: 'stop-loss' },
      ],
    },
  },
  {
    name: 'time-exit closes at market once the trade is old enough',
    settings: { exits: { 'time-exit': '5m' } },
    // Entry filled at bar 1 (00:02). At bar 6's close (00:07) the age is 5m: closed at bar 7's open.
    markets: [{ symbol: A, rows: flat(9, 100, { 7: [102, 102, 102, 102] }) }],
    timeframe: '1m',
    actions: { 0: [{ op: 'buy', amount: 10 }] },
    expect: {
      denied: [],
      halts: [],
      resumes: [],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 10 },
        { bar: 7, side: 'sell', price: 102, amount: 10, tag: 'time-exit' },
      ],
    },
  },
  {
    name: 'the ROI table lowers the exit as the trade ages',
    settings: { exits: { roi: '0=0.05,3=0.01' } },
    // Entry 100 at bar 1 (00:02): exit limit at 105. At bar 4's close (00:05) the age is 3m: the
    // limit moves to 101; bar 5 reaches 101.5: filled at 101. Bar 3 reached 104 (< 105): no fill.
    markets: [{ symbol: A, rows: flat(7, 100, { 3: [100, 104, 100, 100], 5: [100, 101.5, 100, 101] }) }],
    timeframe: '1m',
    actions: { 0: [{ op: 'buy', amount: 10 }] },
    expect: {
      denied: [],
      halts: [],
      resumes: [],
      fills: [
        { bar: 1, side: 'buy', price: 100, amount: 10 },
        { bar: 5, side: 'sell', price: 101, amount: 10, tag: 'roi' },
      ],
    },
  },
];
