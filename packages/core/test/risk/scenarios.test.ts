import { describe, expect, it } from 'vitest';
import {
  expectObservation,
  observe,
  RISK_SCENARIOS,
  type RiskScenario,
  runScenario,
  type ScenarioObservation,
  scenarioConfig,
  scenarioInstruments,
  scenarioSeries,
  scenarioStrategy,
} from '../../../../test-support/risk-scenarios.ts';
import { runBacktest } from '../../src/index.ts';

// Oracle: each scenario's expectations are computed by hand in test-support/risk-scenarios.ts from
// the documented conventions (docs/conventions.md, docs/risk.md).

/** The same scenario through runBacktest (no external resume): the same observation. */
function viaBacktest(s: RiskScenario): ScenarioObservation {
  const instruments = scenarioInstruments(s);
  const r = runBacktest({
    strategy: scenarioStrategy(s.actions),
    data: s.markets.map((m, k) => ({
      symbol: m.symbol,
      timeframe: s.timeframe,
      series: scenarioSeries(s, k),
      instrument: instruments[k] as (typeof instruments)[number],
    })),
    cash: s.cash ?? 10_000,
    fee: s.fee ?? 0,
    ...(s.allowShortSpot ? { allowShortSpot: true } : {}),
    risk: scenarioConfig(s),
  });
  return observe(s, r.riskEvents, r.fills);
}

describe('risk scenarios (one per rule, protection, sizing model and exit)', () => {
  for (const s of RISK_SCENARIOS) {
    it(s.name, () => {
      const { engine } = runScenario(s);
      expectObservation(observe(s, engine.risk?.events ?? [], engine.fills), s.expect);
      if (s.resumeAfter === undefined) expectObservation(viaBacktest(s), s.expect);
    });
  }

  it('a moved stop names the stop it replaces (a live venue sends it once that cancel is confirmed)', () => {
    const s = RISK_SCENARIOS.find((x) => x.name.startsWith('break-even moves the stop'));
    if (s === undefined) throw new Error('the break-even scenario is missing');
    const stops = runScenario(s).engine.history.filter((o) => o.request.tag === 'stop-loss');
    expect(stops.length).toBeGreaterThanOrEqual(2);
    expect(stops[0]?.reason).toBe('stop-loss re-placed');
    expect(stops[1]?.request.replaces).toBe(stops[0]?.request.id);
    expect(stops[0]?.request.replaces).toBeUndefined();
  });

  it('every rule of the parser has a scenario', () => {
    const covered = new Set(
      RISK_SCENARIOS.flatMap((s) =>
        (Array.isArray(s.settings.risk) ? s.settings.risk : []).map((x) => x.split('=')[0]),
      ),
    );
    for (const rule of [
      'max-position',
      'max-position-size',
      'max-notional',
      'max-gross',
      'max-net',
      'max-leverage',
      'max-open-orders',
      'max-open-trades',
      'order-rate',
      'cash-reserve',
      'min-cash',
      'symbols',
      'sides',
      'daily-loss',
      'max-drawdown',
      'stoploss-guard',
      'cooldown',
      'low-profit',
      'max-losses',
    ])
      expect(covered.has(rule), rule).toBe(true);
  });
});
