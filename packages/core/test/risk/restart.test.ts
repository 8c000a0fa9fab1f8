import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  Account,
  defineInstrument,
  defineStrategy,
  Engine,
  type Fill,
  type OrderState,
  parseRiskConfig,
  percentFee,
  type RiskConfig,
  type RiskEvent,
  type RiskSnapshot,
  SeriesCursor,
  SimulatedVenue,
  type StrategyContext,
} from '../../src/index.ts';
import { type Op, opArb, pathArb, T0 } from './arbitraries.ts';

// Invariant (no oracle but the uninterrupted run): a run stopped at any bar close and continued by
// a new engine, from the risk engine's snapshot (through JSON), the account and the working orders
// (what a live bot stores and restores), makes the same fills and the same risk log as the run
// that never stopped. Halts, locks, the peak, the day's start, stop-outs, the order-rate window
// and the run-level exits all cross the restart.

const inst = defineInstrument({ symbol: 'BTC/USDT' });

const SETTINGS = [
  { risk: ['max-drawdown=3%'], exits: { 'stop-loss': '1%', 'take-profit': '2%' } },
  { risk: ['daily-loss=2%:resume', 'cooldown=5m'], exits: { trailing: '1%' } },
  { risk: ['stoploss-guard=2/30m:20m', 'max-losses=3'], exits: { 'stop-loss': '0.5%' } },
  { risk: ['order-rate=3/5m', 'max-open-orders=2', 'max-position=0.6'], exits: { roi: '0=0.02,5=0.01,10=0' } },
  { risk: ['max-drawdown=2%:freeze:10m'], sizing: ['percent=0.5'], exits: { 'time-exit': '7m', 'break-even': '0.5%' } },
] as const;

function config(k: number): RiskConfig {
  const p = parseRiskConfig(SETTINGS[k] as never);
  if (!p.ok) throw new Error(p.error.message);
  return p.config;
}

/** Ops by the bar's index (from its time): a restarted strategy acts at the same bars. */
function strategy(ops: readonly (readonly Op[])[]) {
  return defineStrategy({
    name: 'random-by-bar',
    params: { safeParse: (x: unknown) => ({ success: true as const, data: x }) },
    warmup: 'none',
    onStart: () => ({}),
    onBar(ctx: StrategyContext, _s: unknown, bar: { time: number }) {
      const eq = ctx.portfolio.equity;
      const px = ctx.lastBar()?.close ?? Number.NaN;
      for (const op of ops[Math.round((bar.time - T0) / 60_000)] ?? []) {
        if (op.k === 'buy' || op.k === 'sell') ctx[op.k]((op.f * eq) / px);
        else if (op.k === 'target') ctx.orderTargetPercent(op.f);
        else if (op.k === 'close') ctx.close();
        else if (op.k === 'limit')
          ctx.submit({ type: 'limit', side: 'buy', amount: (op.f * eq) / px, price: px * (1 + op.off / 1000) });
      }
    },
  });
}

interface Leg {
  engine: Engine;
  account: Account;
  venue: SimulatedVenue;
}

function leg(ops: readonly (readonly Op[])[], risk: RiskConfig, account: Account): Leg {
  const venue = new SimulatedVenue([inst], account, { fees: percentFee(0.001) });
  const engine = new Engine({
    instruments: [inst],
    account,
    venue,
    strategy: strategy(ops),
    params: {},
    feeds: [{ symbol: inst.symbol, timeframe: '1m' }],
    risk,
    // Ids from the bar and a sequence: unique across the two engines of a restarted run.
    idFactory: (seq, time) => `${time}-${seq}`,
  });
  return { engine, account, venue };
}

function bars(l: Leg, cur: SeriesCursor, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    cur.i = i;
    l.engine.onBar(0, cur);
  }
}

const fillShape = (f: Fill) => `${f.time} ${f.side} ${f.price} ${f.amount} ${f.fee} ${f.tag ?? ''}`;
const riskShape = (e: RiskEvent) =>
  `${e.time} ${e.type} ${e.rule} ${e.action} ${e.type === 'denied' ? `${e.symbol} ${e.limit} ${e.actual}` : e.scope}`;

describe('risk state across a restart', () => {
  it('stopped at any bar and restored from the snapshot (through JSON), the account and the working orders: the same fills and risk log as the uninterrupted run', () => {
    fc.assert(
      fc.property(
        pathArb,
        fc.array(fc.array(opArb, { maxLength: 3 }), { minLength: 5, maxLength: 60 }),
        fc.integer({ min: 0, max: SETTINGS.length - 1 }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (series, ops, k, at) => {
          const risk = config(k);
          const whole = leg(ops, risk, new Account('USDT', 10_000));
          whole.engine.start();
          bars(whole, new SeriesCursor(series), 0, series.length);

          const cut = 1 + Math.floor(at * (series.length - 1));
          const first = leg(ops, risk, new Account('USDT', 10_000));
          first.engine.start();
          bars(first, new SeriesCursor(series), 0, cut);
          const saved = JSON.parse(JSON.stringify(first.engine.risk?.snapshot())) as RiskSnapshot;
          // As the venue gets them again: submitted (it accepts them on arrival, as at the first).
          const working = first.engine.openOrders().map((o) => ({ ...o, status: 'submitted' }) as OrderState);

          // The second engine: the account as stored, the working orders restored (and resting
          // at its venue again), the risk state restored, the bars before the cut as warm-up.
          const acc = new Account('USDT', first.account.cash);
          for (const [a, v] of first.account.balances) acc.adjust(a, v);
          for (const p of first.account.positions) {
            const q = acc.position(p.instrument);
            q.size = p.size;
            q.avgPrice = p.avgPrice;
            q.realizedPnl = p.realizedPnl;
            q.lastPrice = p.lastPrice;
          }
          const second = leg(ops, risk, acc);
          for (const o of working) {
            second.engine.restoreOrder(o);
            second.venue.submit(o, o.createdAt);
          }
          second.engine.risk?.restore(saved);
          second.engine.start();
          const cur = new SeriesCursor(series);
          for (let i = 0; i < cut; i++) {
            cur.i = i;
            second.engine.warmUp(0, cur);
          }
          // Another bar object than the warm-up's, as a bot gets: the engine must not read the
          // next bar through the object it kept (the trailing exit's anchor, the fee's rate).
          bars(second, new SeriesCursor(series), cut, series.length);

          const restarted = [...first.engine.fills, ...second.engine.fills].map(fillShape);
          expect(restarted).toEqual(whole.engine.fills.map(fillShape));
          const log = [...(first.engine.risk?.events ?? []), ...(second.engine.risk?.events ?? [])].map(riskShape);
          expect(log).toEqual((whole.engine.risk?.events ?? []).map(riskShape));
          expect(second.account.cash).toBeCloseTo(whole.account.cash, 6);
        },
      ),
      { numRuns: 150 },
    );
  });
});
