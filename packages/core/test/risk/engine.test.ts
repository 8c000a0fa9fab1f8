import { describe, expect, it } from 'vitest';
import {
  flat,
  RISK_SCENARIOS,
  type RiskScenario,
  runScenario,
  scenarioConfig,
  scenarioInstruments,
  scenarioSeries,
  scenarioStrategy,
} from '../../../../test-support/risk-scenarios.ts';
import {
  Account,
  checkLimits,
  defineInstrument,
  Engine,
  type EngineEvent,
  parseRiskConfig,
  percentFee,
  type RiskConfig,
  type RiskSnapshot,
  SeriesCursor,
  SimulatedVenue,
  sizeEntry,
} from '../../src/index.ts';

function config(input: Parameters<typeof parseRiskConfig>[0]): RiskConfig {
  const p = parseRiskConfig(input);
  if (!p.ok) throw new Error(p.error.message);
  return p.config;
}

/** Runs bars [from, to) of a scenario through an engine (a bot's process between restarts). */
function segment(
  s: RiskScenario,
  account: Account,
  from: number,
  to: number,
  restore?: RiskSnapshot,
  resumeAt?: number,
): { engine: Engine; events: EngineEvent[] } {
  const instruments = scenarioInstruments(s);
  const venue = new SimulatedVenue(instruments, account, { fees: percentFee(0) });
  const events: EngineEvent[] = [];
  // The scripted strategy acts by the bar's index from its time: the same bars in a later process.
  const engine = new Engine({
    instruments,
    account,
    venue,
    strategy: scenarioStrategy(s.actions),
    params: {},
    feeds: [{ symbol: instruments[0]!.symbol, timeframe: '1m' }],
    risk: scenarioConfig(s),
    onEvent: (e) => events.push(e),
  });
  if (restore) engine.risk?.restore(restore);
  engine.start();
  const series = scenarioSeries(s, 0);
  const c = new SeriesCursor(series);
  for (let i = from; i < to; i++) {
    c.i = i;
    engine.onBar(0, c);
    if (i === resumeAt) engine.resumeTrading();
  }
  return { engine, events };
}

describe('risk engine', () => {
  const dd = RISK_SCENARIOS.find((s) => s.name.startsWith('max-drawdown flattens')) as RiskScenario;

  it('a halt survives a restart: the state is plain JSON, and only resumeTrading() ends it', () => {
    const account = new Account('USDT', 10_000);
    const first = segment(dd, account, 0, 6);
    expect(first.engine.risk?.halts().map((h) => h.rule)).toEqual(['max-drawdown']);
    // What a bot stores, through a JSON round trip (a file, a database row).
    const saved = JSON.parse(JSON.stringify(first.engine.risk?.snapshot())) as RiskSnapshot;
    expect(saved).toEqual(first.engine.risk?.snapshot());
    // The new process: the strategy's buy at bar 6 is denied by the stored halt.
    const second = segment(dd, account, 6, 8, saved);
    expect(second.engine.risk?.halts()).toHaveLength(1);
    expect(second.engine.risk?.events.map((e) => [e.type, e.rule])).toEqual([['denied', 'max-drawdown']]);
    expect(second.engine.fills).toEqual([]);
    // The same restart with the resume: the buy passes.
    const third = segment(dd, new Account('USDT', account.cash), 6, 8, saved, 6);
    expect(third.engine.risk?.halts()).toEqual([]);
    expect(third.engine.risk?.events.map((e) => [e.type, e.rule])).toEqual([
      ['denied', 'max-drawdown'],
      ['resume', 'max-drawdown'],
    ]);
    // A fresh engine without the stored state would have traded: the halt is the state.
    const forgetful = segment(dd, new Account('USDT', account.cash), 6, 8);
    expect(forgetful.engine.fills).toHaveLength(1);
  });

  it('tells its observers: order.denied carries the rule and the numbers; risk.halt and risk.resume', () => {
    const { events, engine } = runScenario(dd);
    const denied = events.find((e) => e.type === 'order.denied');
    expect(denied).toMatchObject({
      type: 'order.denied',
      denial: { rule: 'max-drawdown', limit: 0.1, actual: 1 - 9400 / 10500 },
      reason: expect.stringMatching(/^entries halted by max-drawdown since 2024-01-01T00:04:00Z until resumed/),
    });
    expect(
      events.filter((e) => e.type === 'risk.halt').map((e) => (e.type === 'risk.halt' ? e.halt.rule : '')),
    ).toEqual(['max-drawdown']);
    expect(events.filter((e) => e.type === 'risk.resume')).toMatchObject([
      { by: 'user', halt: { rule: 'max-drawdown' } },
    ]);
    // The halt cancelled the resting entry (a buy limit far below), and the flatten closed the rest.
    const limit = engine.history.find((o) => o.request.type === 'limit');
    expect(limit).toMatchObject({ status: 'cancelled', reason: 'risk halt: max-drawdown' });
  });

  it('run-level exits step aside while a strategy exit works: one sell, never two', () => {
    const s: RiskScenario = {
      name: 'close with a stop attached',
      settings: { exits: { 'stop-loss': '2%' } },
      // The strategy closes at bar 2; bar 3 opens at 97, through the stop (98): were the stop still
      // working, it would fill at the open too and the close would sell coins no longer held.
      markets: [{ symbol: 'A/USDT', rows: flat(5, 100, { 3: [97, 97, 97, 97] }) }],
      timeframe: '1m',
      actions: { 0: [{ op: 'buy', amount: 10 }], 2: [{ op: 'close' }] },
      expect: { denied: [], halts: [], resumes: [], fills: [] },
    };
    const { engine } = runScenario(s);
    expect(engine.fills.map((f) => `${f.side} ${f.amount}@${f.price}${f.tag ? ` ${f.tag}` : ''}`)).toEqual([
      'buy 10@100',
      'sell 10@97',
    ]);
    const stop = engine.history.find((o) => o.request.tag === 'stop-loss');
    expect(stop).toMatchObject({
      status: 'cancelled',
      reason: expect.stringMatching(/exits withdrawn while o\d+ reduces/),
    });
    expect(engine.openOrders()).toEqual([]);
  });

  it('a strategy exit that ends without filling brings the exits back', () => {
    const s: RiskScenario = {
      name: 'a limit exit cancelled',
      settings: { exits: { 'stop-loss': '2%' } },
      // The limit sell at 150 (bar 2) withdraws the stop; cancelled at bar 3, the stop returns and
      // fills at 98 on bar 4's dip.
      markets: [{ symbol: 'A/USDT', rows: flat(6, 100, { 4: [99, 99, 97, 97] }) }],
      timeframe: '1m',
      actions: {
        0: [{ op: 'buy', amount: 10 }],
        2: [{ op: 'limit', side: 'sell', amount: 10, price: 150 }],
        3: [{ op: 'cancel-all' }],
      },
      expect: { denied: [], halts: [], resumes: [], fills: [] },
    };
    const { engine } = runScenario(s);
    expect(engine.fills.map((f) => `${f.side} ${f.amount}@${f.price}${f.tag ? ` ${f.tag}` : ''}`)).toEqual([
      'buy 10@100',
      'sell 10@98 stop-loss',
    ]);
    const stops = engine.history.filter((o) => o.request.tag === 'stop-loss').map((o) => o.status);
    expect(stops).toEqual(['cancelled', 'filled']);
  });

  it('a limit price the market cannot value denies (NaN never passes)', () => {
    const d = checkLimits(
      [{ rule: 'max-gross', limit: 1e9 }],
      { symbol: 'A/USDT', side: 'buy', amount: 1, price: 100, contractSize: 1, spendsCash: true },
      {
        equity: 10_000,
        freeCash: 10_000,
        exposures: [{ symbol: 'B/USDT', size: 1, price: Number.NaN, contractSize: 1 }],
        openOrders: 0,
        sentWithin: () => 0,
      },
    );
    expect(d?.rule).toBe('max-gross');
  });

  it('no settings, no risk engine: the engine runs as it always did', () => {
    const s = RISK_SCENARIOS[0] as RiskScenario;
    const instruments = scenarioInstruments(s);
    const e = new Engine({
      instruments,
      account: new Account('USDT', 1),
      venue: new SimulatedVenue(instruments, new Account('USDT', 1)),
      strategy: scenarioStrategy({}),
      params: {},
      feeds: [{ symbol: 'A/USDT', timeframe: '1m' }],
      risk: config({ risk: ['sides=both'] }),
    });
    expect(e.risk).toBeUndefined();
  });
});

describe('sizing models (by hand)', () => {
  const inst = defineInstrument({ symbol: 'BTC/USDT', stepSize: 0.001, minNotional: 5 });
  const base = {
    equity: 10_000,
    price: 100,
    side: 'buy' as const,
    instrument: inst,
    atr: 2,
    atrPeriod: 14,
    atrBars: 30,
    volatility: 0.5,
    volatilityBars: 30,
    stopLoss: { kind: 'percent' as const, value: 0.02 },
    trades: { count: 0, wins: 0, winSum: 0, lossSum: 0 },
    maxLeverage: 1,
    freeCash: Number.POSITIVE_INFINITY,
  };
  it('fixed quantity and notional round down to the step', () => {
    expect(sizeEntry({ model: 'quantity', quantity: 0.12345 }, base)).toEqual({ amount: 0.123 });
    expect(sizeEntry({ model: 'notional', notional: 1234.5678 }, base)).toEqual({ amount: 12.345 });
  });
  it('risk per trade: the fraction of equity over the stop distance, capped at the leverage', () => {
    // 1 % of 10,000 = 100 over a stop 2 away (2 % of 100): 50.
    expect(sizeEntry({ model: 'risk', fraction: 0.01 }, base)).toEqual({ amount: 50 });
    // An ATR stop: 1.5 x ATR 2 = 3 away: 33.333 (step 0.001).
    expect(sizeEntry({ model: 'risk', fraction: 0.01 }, { ...base, stopLoss: { kind: 'atr', multiple: 1.5 } })).toEqual(
      {
        amount: 33.333,
      },
    );
    // 5 % over a 0.1 % stop would be 5,000 units: capped at 1x equity, 100.
    expect(
      sizeEntry({ model: 'risk', fraction: 0.05 }, { ...base, stopLoss: { kind: 'percent', value: 0.001 } }),
    ).toEqual({
      amount: 100,
    });
    // A spot buy is also capped at 99 % of the free cash (the fee is paid from the rest): 8,000 -> 79.2.
    expect(
      sizeEntry(
        { model: 'risk', fraction: 0.05 },
        { ...base, freeCash: 8000, stopLoss: { kind: 'percent', value: 0.001 } },
      ),
    ).toEqual({ amount: 79.2 });
    const z = sizeEntry(
      { model: 'risk', fraction: 0.01 },
      { ...base, atr: Number.NaN, atrBars: 9, stopLoss: { kind: 'atr', multiple: 2 } },
    );
    expect(z).toMatchObject({ zero: { rule: 'sizing', limit: 15, actual: 9, message: /ATR\(14\): 9 of 15 bars/ } });
  });
  it('volatility targeting: equity x target / realised volatility', () => {
    // 10,000 x 25 % / 50 % = 5,000 notional: 50 units.
    expect(sizeEntry({ model: 'volatility', target: 0.25, lookback: 30 }, base)).toEqual({ amount: 50 });
    expect(
      sizeEntry(
        { model: 'volatility', target: 0.25, lookback: 30 },
        { ...base, volatility: Number.NaN, volatilityBars: 12 },
      ),
    ).toMatchObject({
      zero: { limit: 30, actual: 12 },
    });
  });
  it('capped Kelly from the closed trades; the fallback until enough have closed; no edge says so', () => {
    // W = 0.6, average win 2 %, average loss 1 %: Kelly = 0.6 - 0.4 / 2 = 0.4; half Kelly 0.2: 20 units.
    const trades = { count: 20, wins: 12, winSum: 0.24, lossSum: 0.08 };
    expect(
      sizeEntry({ model: 'kelly', multiplier: 0.5, cap: 0.25, minTrades: 20, fallback: 0.05 }, { ...base, trades }),
    ).toEqual({
      amount: 20,
    });
    expect(
      sizeEntry({ model: 'kelly', multiplier: 1, cap: 0.25, minTrades: 20, fallback: 0.05 }, { ...base, trades }),
    ).toEqual({
      amount: 25,
    });
    expect(
      sizeEntry(
        { model: 'kelly', multiplier: 0.5, cap: 0.25, minTrades: 20, fallback: 0.05 },
        { ...base, trades: { ...trades, count: 5 } },
      ),
    ).toEqual({ amount: 5 });
    const bad = { count: 20, wins: 6, winSum: 0.06, lossSum: 0.14 };
    expect(
      sizeEntry(
        { model: 'kelly', multiplier: 0.5, cap: 0.25, minTrades: 20, fallback: 0.05 },
        { ...base, trades: bad },
      ),
    ).toMatchObject({
      zero: { rule: 'sizing', message: /no edge: the Kelly fraction is -0\.4/ },
    });
  });
  it('below the market minimum is zero with the filter named', () => {
    expect(sizeEntry({ model: 'notional', notional: 4 }, base)).toMatchObject({
      zero: { rule: 'sizing', limit: 5, actual: 4, message: /notional 4 is below the minimum 5/ },
    });
    expect(sizeEntry({ model: 'quantity', quantity: 0.0004 }, base)).toMatchObject({
      zero: { message: /rounds to 0 at the step 0\.001/ },
    });
  });
});

describe('portfolio accounting', () => {
  it('fees in any asset are valued at the mark of their market; without one they are kept apart, not guessed', () => {
    const btc = defineInstrument({ symbol: 'BTC/USDT' });
    const a = new Account('USDT', 10_000);
    // A buy paying its fee in BNB (Binance with BNB), valued at BNB/USDT = 300.
    a.applyFill(btc, 'buy', 100, 1, 0.001, 'BNB', (asset) => (asset === 'BNB' ? 300 : Number.NaN));
    expect(a.feesPaid).toBeCloseTo(0.3, 12);
    expect(a.balance('BNB')).toBe(-0.001);
    // Another with no BNB price: the fee is recorded, in BNB, as not valued.
    a.applyFill(btc, 'buy', 100, 1, 0.002, 'BNB');
    expect(a.feesPaid).toBeCloseTo(0.3, 12);
    const bnb = (asset: string) => (asset === 'BNB' ? 300 : Number.NaN);
    const s = a.summary(bnb);
    expect(s.feesByAsset).toEqual({ BNB: 0.003 });
    expect(s.unvaluedFees).toEqual({ BNB: 0.002 });
    // Average cost and unrealised PnL at the mark; realised PnL when sold.
    a.position(btc).lastPrice = 110;
    expect(a.summary(bnb).positions[0]).toMatchObject({ size: 2, avgPrice: 100, unrealizedPnl: 20 });
    a.applyFill(btc, 'sell', 120, 2, 0.24, 'USDT');
    expect(a.realizedPnl).toBe(40);
    expect(a.feesPaid).toBeCloseTo(0.54, 12);
    // Equity in the reporting currency values the BNB balance at its mark.
    expect(a.equity(bnb)).toBeCloseTo(10_000 + 40 - 0.24 - 0.003 * 300, 9);
  });
});
