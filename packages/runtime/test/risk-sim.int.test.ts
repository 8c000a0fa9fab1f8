import { type EngineEvent, percentFee } from '@keel/core';
import { systemTimer } from '@keel/exchange';
import { type ExchangeSim, type SimBar, startExchangeSim } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { describe, expect, it } from 'vitest';
import {
  expectObservation,
  observe,
  RISK_SCENARIOS,
  type RiskScenario,
  runScenario,
  SCENARIO_T0,
  scenarioConfig,
  scenarioInstruments,
  scenarioSeries,
  scenarioStrategy,
  TF_MS,
} from '../../../test-support/risk-scenarios.ts';
import { Bot, connectExchange, mergeSources } from '../src/index.ts';
import { simBars, until } from './live-harness.ts';

// Every risk scenario (one per rule, protection, sizing model and exit) run as a paper bot on the
// simulator's candles (the real ccxt client over loopback, WebSocket klines), with the user's
// resume sent as `keel bots resume` does (a request through the store). Oracle: the same scenario
// run by the engine as a backtest (runScenario; packages/core/test/risk/scenarios.test.ts holds it
// equal to runBacktest and to the hand-computed table): the same denials, halts, resumes and
// fills at the same bars, to the bit.

/** Bars of every market, with one bar more: a kline is closed (and delivered) when the next one opens. */
function marketsOf(s: RiskScenario) {
  return s.markets.map((m, k) => {
    const bars = simBars(scenarioSeries(s, k));
    const last = bars.at(-1) as SimBar;
    const pad = { ...last, time: last.time + TF_MS[s.timeframe], open: last.close, high: last.close, low: last.close };
    return { symbol: m.symbol, bars: [...bars, pad] };
  });
}

async function paperOnSim(s: RiskScenario, k: number) {
  const sim: ExchangeSim = await startExchangeSim({ markets: marketsOf(s), startTime: SCENARIO_T0 });
  const store = await openStore({ url: 'sqlite::memory:' });
  const botId = `rs${k}`;
  const feeds = s.markets.map((m) => ({ symbol: m.symbol, timeframe: s.timeframe }));
  const conn = await connectExchange({
    exchange: 'binance',
    url: sim.httpUrl,
    botId,
    symbols: feeds.map((f) => f.symbol),
    log: () => {},
    warmupBars: 0,
    ccxtOptions: { options: { recvWindow: 59_000 } },
  });
  const events: EngineEvent[] = [];
  const bot = new Bot({
    botId,
    mode: 'paper',
    strategy: scenarioStrategy(s.actions),
    params: {},
    feeds,
    instruments: scenarioInstruments(s),
    store,
    log: () => {},
    paperCash: s.cash ?? 10_000,
    simulated: { fees: percentFee(s.fee ?? 0), ...(s.allowShortSpot ? { allowShortSpot: true } : {}) },
    risk: scenarioConfig(s),
    stopPollMs: 5,
    onEvent: (e) => events.push(e),
  });
  await bot.start();
  // The bars in the backtest's order, (close time, feed index), as `keel paper --symbol A,B` merges them.
  const source = mergeSources(
    feeds,
    feeds.map((f) => conn.candles(f)),
    { lateAfterMs: 5_000, timer: systemTimer },
  );
  const running = bot.run(source);
  try {
    for (const f of feeds)
      await sim.waitForSubscription(`${f.symbol.replace('/', '').toLowerCase()}@kline_${f.timeframe}`, 10_000);
    const n = s.markets[0]!.rows.length;
    const resumes = () => events.filter((e) => e.type === 'risk.resume' && e.by === 'user').length;
    for (let i = 0; i < n; i++) {
      sim.step();
      await until(() => bot.barsHandled >= (i + 1) * feeds.length, 10_000, `bar ${i} to be handled`);
      if (s.resumeAfter?.includes(i)) {
        const before = resumes();
        await store.risk.requestResume(botId, 'scenario');
        await until(() => resumes() > before, 10_000, `the resume after bar ${i}`);
      }
    }
  } finally {
    await source.close();
    await running;
    await bot.stop('test');
    await conn.close();
    await sim.close();
  }
  const report = bot.report();
  const risk = bot.botEngine.engine.risk;
  const obs = observe(s, risk?.events ?? [], bot.botEngine.engine.fills);
  await store.close();
  return { obs, report };
}

describe.concurrent('risk scenarios as paper bots on the simulator = the backtest of the same bars', () => {
  RISK_SCENARIOS.forEach((s, k) => {
    it(s.name, async () => {
      const { obs, report } = await paperOnSim(s, k);
      const bt = runScenario(s);
      const want = observe(s, bt.engine.risk?.events ?? [], bt.engine.fills);
      expect(obs).toEqual(want);
      expectObservation(obs, s.expect);
      expect(report.risk?.deniedTotal).toBe(s.expect.denied.length);
    }, 60_000);
  });
});
