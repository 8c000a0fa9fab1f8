import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ClientOrderId, newOrderState, type OrderRequest, type OrderState, VenueOrderId } from '@keel/core';
import type { ExchangeSim, SimBar } from '@keel/exchange-sim';
import { openStore, type Store } from '@keel/store';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectExchange, type ExchangeConnection, placedOrder, reconcile, signalOrderId } from '../src/index.ts';
import { FEED, fastConnect, KEY, MIN, startSim, T0 } from './live-harness.ts';

// Recovery after downtime against the exchange simulator (real ccxt client, loopback): what
// happened while the bot was down, as the exchange's own records say. Oracle: the simulator's
// orders, fills and balances.

const dir = mkdtempSync(path.join(tmpdir(), 'keel-reconcile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const BOT = 'rc';
const bars: SimBar[] = Array.from({ length: 10 }, (_, i) => {
  const o = 40_000 + 10 * i;
  return { time: T0 + i * MIN, open: o, high: o + 20, low: o - 20, close: o + 5, volume: 50 };
});
const buy = (n: number, price: number): OrderRequest => ({
  id: ClientOrderId(signalOrderId(BOT, T0, n)),
  symbol: FEED.symbol,
  side: 'buy',
  type: 'limit',
  price,
  amount: 0.05,
  timeInForce: 'GTC',
});

describe('reconcile: what changed on the exchange while the bot was down', () => {
  let sim: ExchangeSim;
  let store: Store;
  let conn: ExchangeConnection;
  beforeEach(async () => {
    sim = await startSim({ bars, balances: { USDT: 100_000, BTC: 10 } });
    store = await openStore({ url: `sqlite:${path.join(dir, `${Math.random().toString(36).slice(2)}.db`)}` });
    await store.bots.create({
      id: BOT,
      strategy: 'test',
      params: {},
      mode: 'live',
      exchange: 'binance',
      symbols: [FEED.symbol],
    });
    conn = await connectExchange(fastConnect(sim.httpUrl, KEY, BOT, () => {}));
  });
  afterEach(async () => {
    await conn.close();
    await store.close();
    await sim.close();
  });

  /** The order as the bot had stored it when it went down: accepted (with its venue id) or still submitted. */
  const stored = async (req: OrderRequest, venueOrderId?: string): Promise<OrderState> => {
    const s = newOrderState(req, sim.now(), req.type === 'limit' ? req.price : Number.NaN);
    s.status = venueOrderId ? 'accepted' : 'submitted';
    if (venueOrderId) s.venueOrderId = VenueOrderId(venueOrderId);
    await store.orders.upsert(BOT, s);
    return s;
  };
  const run = async () =>
    reconcile({
      store,
      botId: BOT,
      exchange: conn.live,
      instruments: [await conn.instrument(FEED.symbol)],
      unknownOrders: 'adopt',
      now: () => sim.now(),
      // What the bot's own fills hold is not what this test is about (own-coins.int.test.ts is).
      position: () => 0,
      onRecoveredFill: () => undefined,
    });

  it('fills while down, a cancel by hand, an order that never arrived, an order of ours the store lost, cash taken out (the difference named, the recovered fills not in it); a second run changes nothing', async () => {
    const filled = buy(1, 39_000);
    const cancelled = buy(2, 39_100);
    const neverSent = buy(3, 39_200);
    const lostRecord = buy(4, 39_300);
    await stored(filled, placedOrder(await conn.live.placeOrder(filled)).venueOrderId);
    sim.faults.fillOpenOrdersWhileDisconnected(KEY.apiKey);
    await stored(cancelled, placedOrder(await conn.live.placeOrder(cancelled)).venueOrderId);
    await stored(neverSent);
    await conn.live.cancelOrder(cancelled.id, FEED.symbol); // by hand, while the bot was down
    placedOrder(await conn.live.placeOrder(lostRecord)); // this bot's id, but its row was lost
    // The last run stored 250 USDT more than the account had: taken out by hand while it was down.
    await store.balances.save(BOT, [
      { asset: 'BTC', free: 10, used: 0, total: 10 },
      { asset: 'USDT', free: 100_250, used: 0, total: 100_250 },
    ]);

    const first = await run();
    const simOrders = sim.getOrders(KEY.apiKey);
    const simFills = simOrders.find((o) => o.clientOrderId === filled.id)?.fills ?? [];
    expect(simFills.length).toBeGreaterThan(0);
    const kinds = first.actions.map((a) => a.kind);
    expect(kinds.filter((k) => k === 'fill-recovered')).toHaveLength(simFills.length);
    expect(first.actions).toEqual(
      expect.arrayContaining([
        { kind: 'order-closed-while-down', detail: `${filled.id}: filled` },
        { kind: 'order-cancelled-while-down', detail: `${cancelled.id}: cancelled` },
        expect.objectContaining({ kind: 'order-never-reached-exchange', detail: neverSent.id }),
        expect.objectContaining({ kind: 'unknown-order-adopted' }),
      ]),
    );
    expect(first.actions.find((a) => a.kind === 'unknown-order-adopted')?.detail).toContain(lostRecord.id);
    // The store now says what the exchange says.
    const byId = new Map((await store.orders.list(BOT)).map((o) => [o.request.id as string, o]));
    expect(byId.get(filled.id)).toMatchObject({ status: 'filled', filled: 0.05 });
    expect(byId.get(cancelled.id)?.status).toBe('cancelled');
    expect(byId.get(neverSent.id)?.status).toBe('cancelled');
    expect(byId.get(lostRecord.id)).toMatchObject({ status: 'accepted', request: { tag: 'adopted' } });
    expect(first.openOrders.map((o) => o.request.id)).toEqual([lostRecord.id]);
    const fills = await store.fills.forOrder(BOT, filled.id);
    expect(fills.map((f) => [f.tradeId, f.amount, f.price]).sort()).toEqual(
      simFills.map((f) => [String(f.tradeId), f.qty, f.price]).sort(),
    );
    // Balances: the exchange's, and each difference named.
    const simBal = sim.getBalances(KEY.apiKey) as Record<string, { free: number; locked: number }>;
    const total = (a: string) => (simBal[a]?.free ?? 0) + (simBal[a]?.locked ?? 0);
    expect(first.balances.BTC?.total).toBeCloseTo(total('BTC'), 10);
    expect(first.balances.USDT?.total).toBeCloseTo(total('USDT'), 8);
    // Cash differences are named; coins are the bot's own fills, never the account's balance: the
    // BTC the account holds beyond them is named as not this bot's.
    // The difference is the 250 alone: the buy recovered above moved the stored cash too.
    expect(first.actions.filter((a) => a.kind === 'balance-difference').map((a) => a.detail)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^USDT: stored 100250 \\(\\S+ with the ${simFills.length} fill\\(s\\) recovered above\\), exchange \\S+ \\(-250\\)$`,
        ),
      ),
    ]);
    expect(first.actions.find((a) => a.kind === 'coins-not-this-bots')?.detail).toMatch(/^BTC: the account holds /);

    // Idempotent: the second run recovers no fill and closes no order; the store is unchanged.
    const ordersBefore = await store.orders.list(BOT);
    const second = await run();
    // (Balance notes are repeated on every run: they describe the account, not a change.)
    const balanceNotes = new Set(['balance-difference', 'coins-not-this-bots', 'position-not-in-account', 'dust']);
    expect(second.actions.map((a) => a.kind).filter((k) => !balanceNotes.has(k))).toEqual(['order-still-open']);
    expect(await store.orders.list(BOT)).toEqual(ordersBefore);
    expect(await store.fills.forOrder(BOT, filled.id)).toEqual(fills);
  });

  it('an OCO list one of whose legs filled while the bot was down: the leg the exchange expired ends cancelled, as the venues report it', async () => {
    const leg = (n: number, o: Partial<OrderRequest>): OrderRequest =>
      ({
        id: ClientOrderId(signalOrderId(BOT, T0, n)),
        symbol: FEED.symbol,
        side: 'sell',
        amount: 0.05,
        timeInForce: 'GTC',
        ocoGroup: 'oco1',
        ...o,
      }) as OrderRequest;
    const tp = leg(5, { type: 'limit', price: 41_000 });
    const sl = leg(6, { type: 'stop-market', stopPrice: 39_000 });
    const placed = await conn.live.placeOco!(tp, sl);
    expect(placed?.kind).toBe('placed');
    const [tpOrder, slOrder] = placed?.kind === 'placed' ? placed.orders : [];
    await stored(tp, tpOrder!.venueOrderId);
    await stored(sl, slOrder!.venueOrderId);
    sim.faults.fillOpenOrdersWhileDisconnected(KEY.apiKey);
    // The simulator's records say which leg filled and that the list expired the other.
    const onExchange = sim.getOrders(KEY.apiKey);
    const filledLeg = onExchange.find((o) => o.status === 'FILLED')!;
    const expiredLeg = onExchange.find((o) => o.status === 'EXPIRED')!;
    expect([filledLeg.clientOrderId, expiredLeg.clientOrderId].sort()).toEqual([tp.id, sl.id].sort());
    await run();
    const byId = new Map((await store.orders.list(BOT)).map((o) => [o.request.id as string, o]));
    expect(byId.get(filledLeg.clientOrderId)).toMatchObject({ status: 'filled', filled: 0.05 });
    expect(byId.get(expiredLeg.clientOrderId)).toMatchObject({
      status: 'cancelled',
      reason: 'OCO: the other leg of its list filled while the bot was down',
    });
  });
});
