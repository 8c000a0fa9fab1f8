// The venue contract: one table of order scenarios (market, limit, stop, OCO, IOC/FOK, partial fill,
// cancel, reject), each run by the same strategy code through the two adapters of the Venue port: the
// simulated venue (a paper bot on a replay of the bars) and the live venue over the exchange
// simulator (a live bot, the real ccxt client, loopback). Both must end with the same fills and
// the same order states. Oracle: each scenario's hand-computed fills and states (written below from
// its bars), which both adapters must equal.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  type ClientOrderId,
  defineInstrument,
  defineStrategy,
  type Engine,
  percentFee,
  type StrategyContext,
  volumeShareSlippage,
} from '@keel/core';
import type { SimBar } from '@keel/exchange-sim';
import { openStore } from '@keel/store';
import { afterAll, describe, expect, it } from 'vitest';
import { Bot, replaySource } from '../src/index.ts';
import { noParams } from './fixtures/strategies.ts';
import { FEED, MIN, paperBotConfig, startLiveBot, T0, toSeries, until } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-venue-contract-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The simulator's BTC/USDT filters (`keel exchange-sim`), for the paper side too. */
const INSTRUMENT = defineInstrument({ symbol: FEED.symbol, tickSize: 0.01, stepSize: 0.00001 });
/** The simulator's volume participation (its default): at most this share of a bar's volume fills. */
const PARTICIPATION = 0.1;

type Ctx = StrategyContext<unknown>;

interface Scenario {
  readonly name: string;
  /** [open, high, low, close] per bar; volume 50 unless `volume` says otherwise. */
  readonly bars: readonly (readonly [number, number, number, number])[];
  readonly volume?: number;
  /** What the strategy does on the n-th bar it handles (1-based); `ids` holds the ids by tag. */
  readonly script: Readonly<Record<number, (ctx: Ctx, ids: Map<string, ClientOrderId>) => void>>;
  /** `tag side amount@price bar n` per fill, in order (bars counted from 0). */
  readonly fills: readonly string[];
  /** Per tag: `status filled`. */
  readonly states: Readonly<Record<string, string>>;
}

const flat = (p: number): [number, number, number, number] => [p, p + 20, p - 20, p];
const tagged = (ctx: Ctx, ids: Map<string, ClientOrderId>, tag: string, id: ClientOrderId) => {
  ids.set(tag, id);
  return ctx;
};

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'market: buy, then sell half, each at the next bar’s open',
    bars: [
      flat(40_000),
      flat(40_000),
      [40_010, 40_030, 39_990, 40_020],
      flat(40_020),
      [40_050, 40_070, 40_030, 40_050],
      flat(40_050),
      flat(40_050),
    ],
    script: {
      2: (ctx, ids) => tagged(ctx, ids, 'buy', ctx.buy(0.01, { tag: 'buy' })),
      4: (ctx, ids) => tagged(ctx, ids, 'sell', ctx.sell(0.005, { tag: 'sell' })),
    },
    fills: ['buy buy 0.01@40010 bar 2', 'sell sell 0.005@40050 bar 4'],
    states: { buy: 'filled 0.01', sell: 'filled 0.005' },
  },
  {
    name: 'limit: rests below the market, fills at its price when the low reaches it',
    bars: [flat(40_000), flat(40_000), flat(40_000), [40_000, 40_010, 39_880, 39_950], flat(39_950), flat(39_950)],
    script: {
      2: (ctx, ids) =>
        tagged(ctx, ids, 'bid', ctx.submit({ type: 'limit', side: 'buy', amount: 0.01, price: 39_900, tag: 'bid' })),
    },
    fills: ['bid buy 0.01@39900 bar 3'],
    states: { bid: 'filled 0.01' },
  },
  {
    name: 'stop: a stop-market buy triggers when the high reaches it, fills at its stop price',
    bars: [flat(40_000), flat(40_000), flat(40_000), [40_000, 40_150, 39_990, 40_120], flat(40_120), flat(40_120)],
    script: {
      2: (ctx, ids) =>
        tagged(
          ctx,
          ids,
          'stop',
          ctx.submit({ type: 'stop-market', side: 'buy', amount: 0.01, stopPrice: 40_100, tag: 'stop' }),
        ),
    },
    fills: ['stop buy 0.01@40100 bar 3'],
    states: { stop: 'filled 0.01' },
  },
  {
    name: 'OCO: a take-profit and a stop-loss as one pair; the take-profit fills, the stop ends unfilled',
    bars: [
      flat(40_000),
      flat(40_000),
      flat(40_000),
      flat(40_000),
      [40_000, 40_250, 39_990, 40_200],
      flat(40_200),
      flat(40_200),
    ],
    script: {
      2: (ctx, ids) => tagged(ctx, ids, 'entry', ctx.buy(0.01, { tag: 'entry' })),
      3: (ctx, ids) => {
        const [tp, sl] = ctx.oco(
          { type: 'limit', side: 'sell', amount: 0.005, price: 40_200, tag: 'tp' },
          { type: 'stop-market', side: 'sell', amount: 0.005, stopPrice: 39_800, tag: 'sl' },
        );
        ids.set('tp', tp);
        ids.set('sl', sl);
      },
    },
    fills: ['entry buy 0.01@40000 bar 2', 'tp sell 0.005@40200 bar 4'],
    states: { entry: 'filled 0.01', tp: 'filled 0.005', sl: 'cancelled 0' },
  },
  {
    name: 'partial fill: a bid larger than the bars’ volume share fills over three bars',
    volume: 0.1,
    bars: [
      flat(40_000),
      flat(40_000),
      [40_000, 40_010, 39_850, 39_950],
      [39_950, 39_960, 39_850, 39_950],
      [39_950, 39_960, 39_850, 39_950],
      flat(39_950),
      flat(39_950),
    ],
    script: {
      2: (ctx, ids) =>
        tagged(ctx, ids, 'bid', ctx.submit({ type: 'limit', side: 'buy', amount: 0.025, price: 39_900, tag: 'bid' })),
    },
    fills: ['bid buy 0.01@39900 bar 2', 'bid buy 0.01@39900 bar 3', 'bid buy 0.005@39900 bar 4'],
    states: { bid: 'filled 0.025' },
  },
  {
    // Bar 2 closes down, 40000 -> 40010 -> 39880 -> 39950: it reaches 39950 after its open, which
    // is not "at once" (a GTC bid there would fill).
    name: 'IOC/FOK limit: executes at arrival (the open) or expires there, though the bar reaches its price later',
    bars: [flat(40_000), flat(40_000), [40_000, 40_010, 39_880, 39_950], flat(39_950), flat(39_950)],
    script: {
      2: (ctx, ids) => {
        const bid = (tag: string, price: number, timeInForce: 'IOC' | 'FOK') =>
          ids.set(tag, ctx.submit({ type: 'limit', side: 'buy', amount: 0.01, price, timeInForce, tag }));
        bid('ioc-above', 40_050, 'IOC');
        bid('ioc-below', 39_950, 'IOC');
        bid('fok-below', 39_950, 'FOK');
      },
    },
    fills: ['ioc-above buy 0.01@40000 bar 2'],
    states: { 'ioc-above': 'filled 0.01', 'ioc-below': 'expired 0', 'fok-below': 'expired 0' },
  },
  {
    // Bar 2 (high 40020) does not reach the stops; bar 3 closes down, 40000 -> 40150 -> 39900 ->
    // 39950: both trigger at 40100 on the way up, where 40120 is marketable and 40050 is not (the
    // fall reaches 40050 afterwards, too late for an IOC).
    name: 'IOC stop-limit: waits for its trigger, executes there or expires there',
    bars: [flat(40_000), flat(40_000), flat(40_000), [40_000, 40_150, 39_900, 39_950], flat(39_950), flat(39_950)],
    script: {
      2: (ctx, ids) => {
        const stop = (tag: string, price: number) =>
          ids.set(
            tag,
            ctx.submit({
              type: 'stop-limit',
              side: 'buy',
              amount: 0.01,
              stopPrice: 40_100,
              price,
              timeInForce: 'IOC',
              tag,
            }),
          );
        stop('marketable', 40_120);
        stop('below', 40_050);
      },
    },
    fills: ['marketable buy 0.01@40100 bar 3'],
    states: { marketable: 'filled 0.01', below: 'expired 0' },
  },
  {
    name: 'cancel: a resting bid cancelled two bars later never fills',
    bars: [flat(40_000), flat(40_000), flat(40_000), flat(40_000), flat(40_000), flat(40_000)],
    script: {
      2: (ctx, ids) =>
        tagged(ctx, ids, 'bid', ctx.submit({ type: 'limit', side: 'buy', amount: 0.01, price: 39_000, tag: 'bid' })),
      4: (ctx, ids) => ctx.cancel(ids.get('bid')!),
    },
    fills: [],
    states: { bid: 'cancelled 0' },
  },
  {
    name: 'reject: a bid the account cannot pay for is refused, nothing fills',
    bars: [flat(40_000), flat(40_000), flat(40_000), [40_000, 40_010, 38_900, 39_000], flat(39_000)],
    script: {
      2: (ctx, ids) =>
        tagged(ctx, ids, 'big', ctx.submit({ type: 'limit', side: 'buy', amount: 1, price: 39_000, tag: 'big' })),
    },
    fills: [],
    states: { big: 'rejected 0' },
  },
];

function simBarsOf(s: Scenario): SimBar[] {
  return s.bars.map(([open, high, low, close], i) => ({
    time: T0 + i * MIN,
    open,
    high,
    low,
    close,
    volume: s.volume ?? 50,
  }));
}

function strategyOf(s: Scenario) {
  return defineStrategy({
    name: 'venue-contract',
    params: noParams,
    warmup: 'none',
    onStart: () => ({ n: 0, ids: new Map<string, ClientOrderId>() }),
    onBar(ctx, st) {
      s.script[++st.n]?.(ctx, st.ids);
    },
  });
}

/**
 * What a venue did, as the scenario table writes it. A fill is placed in its bar by `barOf`: the
 * simulated venue stamps a fill with the close of the bar it filled in (docs/conventions.md), the
 * exchange with its trade's time within that bar.
 */
function outcome(engine: Engine, barOf: (time: number) => number): { fills: string[]; states: Record<string, string> } {
  const tagOf = new Map(engine.history.map((o) => [o.request.id as string, o.request.tag ?? '?']));
  return {
    fills: engine.fills.map((f) => `${tagOf.get(f.orderId)} ${f.side} ${f.amount}@${f.price} bar ${barOf(f.time)}`),
    states: Object.fromEntries(engine.history.map((o) => [o.request.tag ?? '?', `${o.status} ${o.filled}`])),
  };
}

/** The simulated venue: a paper bot on a replay of the bars the live bot handles (all but the forming last). */
async function viaSimulatedVenue(s: Scenario, i: number) {
  const store = await openStore({ url: `sqlite:${path.join(dir, `paper-${i}.db`)}`, synchronous: 'NORMAL' });
  const bot = new Bot(
    paperBotConfig(store, `pc${i}`, strategyOf(s), {
      instruments: [INSTRUMENT],
      simulated: {
        fees: percentFee(0.001, { asset: 'received' }),
        slippage: volumeShareSlippage(PARTICIPATION, 0),
      },
    }),
  );
  try {
    await bot.start();
    const bars = simBarsOf(s);
    await bot.run(replaySource(FEED, toSeries(bars.slice(0, -1))));
    return outcome(bot.botEngine.engine, (t) => (t - T0) / MIN - 1);
  } finally {
    await bot.stop();
    await store.close();
  }
}

/** The live venue over the exchange simulator, stepped bar by bar until the last bar has opened. */
async function viaLiveVenue(s: Scenario, i: number, settledLike: { fills: number; open: number }) {
  const store = await openStore({ url: `sqlite:${path.join(dir, `live-${i}.db`)}`, synchronous: 'NORMAL' });
  const bars = simBarsOf(s);
  const run = await startLiveBot({
    bars,
    strategy: strategyOf(s),
    store,
    botId: `lc${i}`,
    balances: { USDT: 10_000 },
    // No spread: a market order fills at the open itself, as the simulated venue's does.
    sim: { liquidity: { spreadTicks: 0, participation: PARTICIPATION } },
  });
  try {
    for (let k = 1; k < bars.length; k++) await run.step();
    const engine = run.bot.botEngine.engine;
    await until(
      () => engine.fills.length >= settledLike.fills && engine.openOrders().length <= settledLike.open,
      10_000,
      'the live venue to report what the simulated venue did',
    ).catch(() => undefined); // the comparison below says what differs
    return outcome(engine, (t) => Math.floor((t - T0) / MIN));
  } finally {
    await run.close();
    await store.close();
  }
}

describe('venue contract: the simulated venue and the live venue over the exchange simulator', () => {
  for (const [i, s] of SCENARIOS.entries()) {
    it(s.name, async () => {
      const paper = await viaSimulatedVenue(s, i);
      expect(paper, 'simulated venue').toEqual({ fills: s.fills, states: s.states });
      const open = Object.values(s.states).filter((x) => /^(submitted|accepted|partially)/.test(x)).length;
      const live = await viaLiveVenue(s, i, { fills: s.fills.length, open });
      expect(live, 'live venue over the exchange simulator').toEqual(paper);
    }, 30_000);
  }
});
