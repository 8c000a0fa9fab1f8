import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type EngineEvent, percentFee, type RiskEvent, sliceSeries } from '@keel/core';
import { openStore, type Store } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import {
  observe,
  RISK_SCENARIOS,
  type RiskScenario,
  scenarioConfig,
  scenarioInstruments,
  scenarioSeries,
  scenarioStrategy,
} from '../../../test-support/risk-scenarios.ts';
import { type BarSource, Bot, type BotConfig, BotSettingsChangedError, botParity, replaySource } from '../src/index.ts';

// Oracle: the scenario table (test-support/risk-scenarios.ts), computed by hand and held equal to
// the backtest by packages/core/test/risk/scenarios.test.ts.

const dir = mkdtempSync(path.join(tmpdir(), 'keel-botrisk-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const scenario = (name: string): RiskScenario => {
  const s = RISK_SCENARIOS.find((x) => x.name.startsWith(name));
  if (!s) throw new Error(`no scenario ${name}`);
  return s;
};

interface Logged {
  level: string;
  msg: string;
  data?: Record<string, unknown>;
}

function botFor(s: RiskScenario, store: Store, botId: string, logged: Logged[], extra: Partial<BotConfig> = {}): Bot {
  return new Bot({
    botId,
    mode: 'paper',
    strategy: scenarioStrategy(s.actions),
    params: {},
    feeds: s.markets.map((m) => ({ symbol: m.symbol, timeframe: s.timeframe })),
    instruments: scenarioInstruments(s),
    store,
    log: (level, msg, data) => logged.push({ level, msg, ...(data ? { data } : {}) }),
    paperCash: s.cash ?? 10_000,
    simulated: { fees: percentFee(s.fee ?? 0), ...(s.allowShortSpot ? { allowShortSpot: true } : {}) },
    risk: scenarioConfig(s),
    lockTtlMs: 150,
    stopPollMs: 10,
    ...extra,
  });
}

/** The scenario's single market, bars 0..n-1. */
function bars(s: RiskScenario, n: number): BarSource {
  return replaySource(
    { symbol: s.markets[0]!.symbol, timeframe: s.timeframe },
    sliceSeries(scenarioSeries(s, 0), 0, n),
  );
}

describe('paper bot: the backtest risk engine, stored', () => {
  it('denials log one line each with the rule and numbers, halts are logged, both counted in the session report (oracle: the scenario table)', async () => {
    const s = scenario('max-drawdown:freeze');
    const store = await openStore({ url: `sqlite:${path.join(dir, 'freeze.db')}` });
    const logged: Logged[] = [];
    const bot = botFor(s, store, 'rfreeze', logged);
    await bot.start();
    await bot.run(bars(s, s.markets[0]!.rows.length));
    const report = await bot.stop('test');
    const engine = bot.botEngine.engine;
    const got = observe(s, engine.risk?.events ?? [], engine.fills);
    expect(got.denied.map(({ bar, rule }) => ({ bar, rule }))).toEqual(
      s.expect.denied.map(({ bar, rule }) => ({ bar, rule })),
    );
    expect(got.halts).toEqual(s.expect.halts);
    expect(got.fills.map((f) => [f.bar, f.side, f.price, f.amount])).toEqual(
      s.expect.fills.map((f) => [f.bar, f.side, f.price, f.amount]),
    );
    const denials = logged.filter((l) => l.data?.event === 'order.denied');
    expect(denials).toHaveLength(1);
    expect(denials[0]!.msg).toMatch(
      /^DENIED {2}buy 1 A\/USDT market ~87 .*reason: entries halted by max-drawdown since 2024-01-01T00:04:00Z until resumed: max-drawdown: equity 9400 is 10\.47619 % below the peak 10500, limit 10 %$/,
    );
    expect(denials[0]!.data).toMatchObject({ rule: 'max-drawdown', limit: 0.1 });
    expect(denials[0]?.data?.actual as number).toBeCloseTo(1 - 9400 / 10500, 12);
    const halts = logged.filter((l) => l.data?.event === 'risk.halt');
    expect(halts.map((l) => l.msg)).toEqual([
      expect.stringMatching(/^HALT {5}max-drawdown halts trading until resumed/),
    ]);
    expect(halts[0]!.level).toBe('warn');
    expect(report.risk).toMatchObject({
      denied: { 'max-drawdown': 1 },
      deniedTotal: 1,
      deniedSinceStart: { 'max-drawdown': 1 },
      halts: { 'max-drawdown': 1 },
    });
    expect(report.risk!.inForce.map((h) => h.rule)).toEqual(['max-drawdown']);
    await store.close();
  });

  it('a halt survives a graceful stop and a crash; a restart with other risk settings is refused; only a resume request lifts it', async () => {
    // max-drawdown=10% (flatten, until resumed): bought 50 at bar 1 (100), the halt comes at
    // bar 3's close (9,400 vs the peak 10,500) and its flatten is sent; the stop after bar 3
    // cancels it (paper orders end with the session). Restarted, the stored halt still holds: the
    // position is flattened again at bar 4's close (fills at bar 5's open, 87) and bar 4's buy is
    // denied (max-drawdown). A crash after bar 5; restarted, still halted; a resume request
    // after bar 5 lifts it: bar 6's buy fills at bar 7's open (87).
    const s = scenario('max-drawdown flattens');
    const url = `sqlite:${path.join(dir, 'restart.db')}`;
    const events: RiskEvent[] = [];
    const fills: EngineEvent[] = [];
    const logged: Logged[] = [];
    const onEvent = (e: EngineEvent) => {
      if (e.type === 'order.filled') fills.push(e);
    };
    const session = async (n: number, end: (b: Bot) => Promise<void>, extra: Partial<BotConfig> = {}) => {
      const store = await openStore({ url });
      const bot = botFor(s, store, 'rstart', logged, { onEvent, ...extra });
      await bot.start();
      await bot.run(bars(s, n));
      await bot.settled();
      events.push(...(bot.botEngine.engine.risk?.events ?? []));
      await end(bot);
      await store.close();
      // A crashed holder's lock is taken over once its time-to-live has passed.
      await new Promise((r) => setTimeout(r, 200));
      return bot;
    };
    await session(4, async (b) => void (await b.stop('SIGTERM')));
    expect(
      (await openStore({ url }).then(async (st) => [await st.risk.load('rstart'), await st.close()]))[0],
    ).toMatchObject({ halts: [{ rule: 'max-drawdown', until: null }], denied: {} });

    // Other risk settings: refused, naming both.
    const other = await openStore({ url });
    const refused = new Bot({
      ...botFor(s, other, 'rstart', []).cfg,
      risk: scenarioConfig({ ...s, settings: { risk: ['max-drawdown=20%'] } }),
    });
    await expect(refused.start()).rejects.toThrow(BotSettingsChangedError);
    await expect(refused.start()).rejects.toThrow(
      /risk --risk max-drawdown=0\.1:flatten:resume -> --risk max-drawdown=0\.2:flatten:resume/,
    );
    await other.close();

    await session(6, async (b) => b.abandon()); // kill -9: no shutdown, no final save
    const third = await session(6, async (b) => b.abandon());
    // Third session: nothing new happened (bars 0..5 were handled before); still halted.
    expect(logged.some((l) => /still halted after the restart: max-drawdown on account/.test(l.msg))).toBe(true);
    const store = await openStore({ url });
    await store.risk.requestResume('rstart', 'tester@host');
    await store.close();
    await session(8, async (b) => void (await b.stop('test')));
    expect(third).toBeDefined();

    const got = observe(
      s,
      events,
      fills.map((e) => (e as Extract<EngineEvent, { type: 'order.filled' }>).fill),
    );
    expect(got.halts).toEqual([{ bar: 3, rule: 'max-drawdown', action: 'flatten', scope: 'account' }]);
    expect(got.denied.map(({ bar, rule }) => ({ bar, rule }))).toEqual([{ bar: 4, rule: 'max-drawdown' }]);
    expect(got.resumes).toEqual([{ bar: 5, rule: 'max-drawdown', by: 'user' }]);
    expect(got.fills.map((f) => [f.bar, f.side, f.price, f.amount, f.tag])).toEqual([
      [1, 'buy', 100, 50, undefined],
      [5, 'sell', 87, 50, 'risk-flatten'],
      [7, 'buy', 87, 1, undefined],
    ]);
    expect(
      logged.some((l) =>
        /risk: resumed by tester@host: 1 halt\(s\) and lock\(s\) ended \(max-drawdown on account\)/.test(l.msg),
      ),
    ).toBe(true);
    const after = await openStore({ url });
    const row = await after.risk.load('rstart');
    expect(row?.resume).toBeUndefined();
    expect(row?.halts).toEqual([]);
    expect(row?.denied).toEqual({ 'max-drawdown': 1 });

    // keel bots parity replays the four sessions with the bot's risk settings, its risk state
    // carried across them and the resume where it took effect: the same risk log, and one
    // difference, named: the flatten the stop after bar 3 cancelled, which one continuous run
    // fills at bar 4's open.
    const parity = await botParity(after, 'rstart', {
      strategies: () => scenarioStrategy(s.actions),
      model: { fees: percentFee(s.fee ?? 0) },
    });
    expect(parity.result.differences).toMatchObject([
      { kind: 'unfilled', side: 'sell', bot: { status: 'cancelled', tag: 'risk-flatten' }, backtest: { avgPrice: 87 } },
    ]);
    expect(parity.result.orders.matched).toBe(parity.result.orders.bot);
    expect(parity.backtest.risk).toEqual(scenarioConfig(s));
    const model = observe(s, parity.backtest.riskEvents, parity.backtest.fills);
    expect({ ...model, fills: [] }).toEqual({ ...got, fills: [] });
    await after.close();
  });
});
