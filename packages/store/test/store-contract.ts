import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientOrderId, type Fill, newOrderState, type OrderRequest, type OrderState, VenueOrderId } from '@keel/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoreTarget } from '../../../test-support/postgres.ts';
import { openStore, type Store, StoreConflictError, type StoredBalance } from '../src/index.ts';

export class ManualClock {
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
}

const HERE = path.dirname(fileURLToPath(import.meta.url));

function limit(id: string, extra: Partial<OrderRequest> = {}): OrderRequest {
  return {
    id: ClientOrderId(id),
    symbol: 'BTC/USDT',
    side: 'buy',
    type: 'limit',
    price: 100.1,
    amount: 0.5,
    timeInForce: 'GTC',
    ...extra,
  } as OrderRequest;
}

function fill(orderId: string, tradeId: string, amount: number, price = 100.1, time = 1_000): Fill {
  return {
    orderId: ClientOrderId(orderId),
    tradeId,
    symbol: 'BTC/USDT',
    side: 'buy',
    price,
    amount,
    fee: 0.0001,
    feeAsset: 'BNB',
    liquidity: 'maker',
    time,
  };
}

/** The error `p` rejects with (undefined when it resolves). */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

/**
 * The store contract: every backend (SQLite file, PostgreSQL schema) must pass all of it with the
 * same code. `target()` is called once per suite and gives a fresh, empty database.
 */
export function storeContract(name: string, target: () => StoreTarget): void {
  describe(`store contract: ${name}`, () => {
    const clock = new ManualClock(1_700_000_000_000);
    let store: Store;
    let t: StoreTarget;
    const open = () => openStore({ url: t.url, clock, ...(t.schema !== undefined ? { schema: t.schema } : {}) });

    beforeAll(async () => {
      t = target();
      store = await open();
      await store.bots.create({
        id: 'b1',
        strategy: 'sma-cross',
        params: { fast: 10, slow: 30 },
        mode: 'paper',
        exchange: 'binance',
        symbols: ['BTC/USDT'],
      });
      await store.bots.create({
        id: 'b2',
        strategy: 'rsi',
        params: {},
        mode: 'live',
        exchange: 'binance',
        symbols: ['ETH/USDT'],
      });
    });
    afterAll(async () => {
      await store?.close();
    });

    it('migrates idempotently: reopening an existing store keeps its data', async () => {
      const again = await open();
      expect((await again.bots.get('b1'))?.params).toEqual({ fast: 10, slow: 30 });
      await again.close();
    });

    it('bots: create, get, list, setStatus', async () => {
      const b = await store.bots.get('b1');
      expect(b).toMatchObject({
        id: 'b1',
        mode: 'paper',
        symbols: ['BTC/USDT'],
        status: 'stopped',
        createdAt: clock.t,
      });
      clock.t += 5;
      await store.bots.setStatus('b1', 'running');
      expect((await store.bots.get('b1'))?.status).toBe('running');
      expect((await store.bots.list()).map((x) => x.id)).toEqual(['b1', 'b2']);
      await expect(store.bots.setStatus('nope', 'running')).rejects.toThrow(/Unknown bot/);
      await expect(
        store.bots.create({ id: 'bad', strategy: 's', params: {}, mode: 'dry' as 'paper', exchange: 'x', symbols: [] }),
      ).rejects.toThrow();
    });

    it('bots: creating an existing bot again returns it when the definition is the same, else is a StoreConflictError', async () => {
      const same = await store.bots.create({
        id: 'b1',
        strategy: 'sma-cross',
        params: { fast: 10, slow: 30 },
        mode: 'paper',
        exchange: 'binance',
        symbols: ['BTC/USDT'],
      });
      expect(same).toEqual(await store.bots.get('b1'));
      const err = await rejection(
        store.bots.create({
          id: 'b1',
          strategy: 'sma-cross',
          params: { fast: 5, slow: 30 },
          mode: 'paper',
          exchange: 'binance',
          symbols: ['BTC/USDT'],
        }),
      );
      expect(err).toBeInstanceOf(StoreConflictError);
      expect((err as StoreConflictError).fields).toEqual(['params']);
      expect((err as StoreConflictError).message).toMatch(/bot "b1" already exists.*"fast":10.*"fast":5/);
      expect((await store.bots.get('b1'))?.params).toEqual({ fast: 10, slow: 30 });
    });

    it('orders: upsert round-trips an OrderState exactly (NaN, optional fields, doubles)', async () => {
      const o = newOrderState(limit('c-1', { price: 0.1 + 0.2 }), clock.t, 100.123456789);
      await store.orders.upsert('b1', o);
      expect(await store.orders.get('c-1')).toEqual(o);
      o.status = 'accepted';
      o.venueOrderId = VenueOrderId('v-77');
      o.filled = 0.1 + 0.2; // not representable in decimal: must come back bit-identical
      o.avgPrice = 1 / 3;
      o.fee = 1e-12;
      o.updatedAt = clock.t + 10;
      await store.orders.upsert('b1', o);
      const back = await store.orders.get('c-1');
      expect(back).toEqual(o);
      expect(Object.is(back?.filled, 0.1 + 0.2)).toBe(true);
      expect(await store.orders.byVenueId('b1', 'v-77')).toEqual(o);
    });

    it('orders: open() lists non-terminal orders oldest first; an id cannot move between bots', async () => {
      const a = newOrderState(limit('c-2'), clock.t + 1, 1);
      a.status = 'submitted';
      const b = newOrderState(limit('c-3'), clock.t + 2, 1);
      b.status = 'cancelled';
      b.reason = 'user';
      const c = newOrderState(
        {
          id: ClientOrderId('c-4'),
          symbol: 'BTC/USDT',
          side: 'sell',
          type: 'trailing-stop',
          trail: { kind: 'percent', value: 2 },
          amount: 1,
          timeInForce: 'GTC',
        },
        clock.t + 3,
        1,
      );
      c.status = 'pending-cancel';
      for (const x of [c, b, a]) await store.orders.upsert('b1', x);
      expect((await store.orders.open('b1')).map((x) => x.request.id)).toEqual(['c-1', 'c-2', 'c-4']);
      expect((await store.orders.list('b1', { status: ['cancelled'] }))[0]).toEqual(b);
      expect(await store.orders.open('b2')).toEqual([]);
      await expect(store.orders.upsert('b2', a)).rejects.toThrow(/another bot/);
      const err = await rejection(store.orders.upsert('b2', a));
      expect(err).toBeInstanceOf(StoreConflictError);
      expect(err).toMatchObject({
        key: { client_order_id: 'c-2' },
        stored: { bot_id: 'b1' },
        attempted: { bot_id: 'b2' },
      });
    });

    it('writeOrderNow: durable before it returns (SQLite file: the intent log, the row by save()); PostgreSQL declines', async () => {
      const o = newOrderState(limit('c-now', { price: 0.1 + 0.2 }), clock.t + 5, 42.5);
      const w = store.writeOrderNow('b1', o);
      if (store.dialect !== 'sqlite') {
        expect(w.kind).toBe('declined');
        expect(await store.orders.get('c-now')).toBeUndefined();
        return;
      }
      if (w.kind !== 'logged') throw new Error(`expected the intent log on a SQLite file, got ${w.kind}`);
      expect(await store.orders.get('c-now')).toBeUndefined(); // only in the log so far
      await w.save();
      expect(await store.orders.get('c-now')).toEqual(o); // same row as orders.upsert writes
      // The id belongs to b1: b2's record is logged, and its row refused.
      const other = store.writeOrderNow('b2', o);
      if (other.kind !== 'logged') throw new Error('expected logged');
      await expect(other.save()).rejects.toThrow(/another bot/);
      // Inside an open transaction the row would join it (and vanish with a rollback): declined.
      let inside: string | undefined;
      await store.transaction(async (tx) => {
        await tx.events.append('b1', 'probe', {});
        inside = store.writeOrderNow('b1', newOrderState(limit('c-now-2'), clock.t, 1)).kind;
      });
      expect(inside).toBe('declined');
      expect(await store.orders.get('c-now-2')).toBeUndefined();
    });

    it('fills: the same trade id recorded twice is a no-op and reports false', async () => {
      expect(await store.fills.record('b1', fill('c-1', 't-1', 0.2, 100, 1_000))).toBe(true);
      expect(await store.fills.record('b1', fill('c-1', 't-1', 0.2, 100, 1_000))).toBe(false);
      expect(await store.fills.record('b1', { ...fill('c-1', 't-2', 0.3, 101, 2_000), tag: 'entry' })).toBe(true);
      // Trade ids are per bot: another bot may see the same venue trade id.
      expect(await store.fills.record('b2', fill('x-1', 't-1', 1))).toBe(true);
      const fs = await store.fills.forOrder('b1', 'c-1');
      expect(fs.map((f) => f.tradeId)).toEqual(['t-1', 't-2']);
      expect(fs[1]).toEqual({ ...fill('c-1', 't-2', 0.3, 101, 2_000), tag: 'entry' });
      expect((await store.fills.since('b1', 1_500)).map((f) => f.tradeId)).toEqual(['t-2']);
      expect(await store.fills.lastTime('b1')).toBe(2_000);
      expect(await store.fills.lastTime('nobody')).toBeUndefined();
    });

    it('fills: a hedge-mode fill keeps its side', async () => {
      const f = { ...fill('c-h', 't-h', 1, 7, 3_000), positionSide: 'short' as const };
      expect(await store.fills.record('b2', f)).toBe(true);
      expect(await store.fills.forOrder('b2', 'c-h')).toEqual([f]);
      // The same execution on the other side is another execution.
      await expect(store.fills.record('b2', { ...f, positionSide: 'long' })).rejects.toThrow('already recorded');
    });

    it('applyFill: fill, order, position and event land together, and only once', async () => {
      const o = newOrderState(limit('c-9'), clock.t, 100);
      o.status = 'accepted';
      await store.orders.upsert('b1', o);
      const f = fill('c-9', 't-9', 0.5);
      const after: OrderState = { ...o, status: 'filled', filled: 0.5, avgPrice: 100.1, fee: 0.0001 };
      const pos = { symbol: 'BTC/USDT', size: 0.5, avgPrice: 100.1, realizedPnl: 0 };
      const eventsBefore = (await store.events.list('b1')).length;
      expect(await store.applyFill('b1', f, { order: after, position: pos })).toBe(true);
      // A replay with a different (wrong) order state must not touch anything.
      expect(await store.applyFill('b1', f, { order: { ...after, filled: 99 }, position: { ...pos, size: 99 } })).toBe(
        false,
      );
      expect((await store.orders.get('c-9'))?.filled).toBe(0.5);
      expect(await store.positions.get('b1', 'BTC/USDT')).toEqual(pos);
      const ev = await store.events.list('b1');
      expect(ev.length).toBe(eventsBefore + 1);
      expect(ev.at(-1)).toMatchObject({ type: 'fill', payload: { tradeId: 't-9' } });
    });

    it('fills: a trade id recorded again with other values is a StoreConflictError naming both rows; nothing is written', async () => {
      const base = { ...fill('c-1', 't-c', 0.2, 100, 3_000), tag: 'entry' };
      expect(await store.fills.record('b1', base)).toBe(true);
      const variants: [string, Fill][] = [
        ['order', { ...base, orderId: ClientOrderId('c-2') }],
        ['price', { ...base, price: 100.5 }],
        ['amount', { ...base, amount: 0.25 }],
        ['fee', { ...base, fee: 0.0002 }],
        ['feeAsset', { ...base, feeAsset: 'BTC' }],
        ['time', { ...base, time: 3_001 }],
        ['side', { ...base, side: 'sell' }],
        ['tag', { ...base, tag: undefined }],
      ];
      for (const [field, f] of variants) {
        const err = await rejection(store.fills.record('b1', f));
        expect(err, field).toBeInstanceOf(StoreConflictError);
        const c = err as StoreConflictError;
        expect(c.fields, field).toEqual([field]);
        expect(c.key).toEqual({ bot_id: 'b1', trade_id: 't-c' });
        expect(c.stored).toMatchObject({ order: 'c-1', price: 100, amount: 0.2, time: 3_000 });
        expect(c.message).toMatch(/fill t-c of bot "b1" is already recorded/);
      }
      // The same execution again (recovery fetching it after a crash) is still a no-op.
      expect(await store.fills.record('b1', { ...base })).toBe(false);
      expect((await store.fills.forOrder('b1', 'c-1')).filter((f) => f.tradeId === 't-c')).toEqual([base]);
      expect(await store.fills.forOrder('b1', 'c-2')).toEqual([]);
    });

    it('applyFill: a trade id already recorded for another execution stops with StoreConflictError; no order, position, balance or event is written', async () => {
      await store.bots.create({
        id: 'b3',
        strategy: 's',
        params: {},
        mode: 'paper',
        exchange: 'x',
        symbols: ['BTC/USDT'],
      });
      const snapshot = async () => ({
        orders: await store.orders.list('b3'),
        fills: await store.fills.since('b3', 0),
        positions: await store.positions.load('b3'),
        balances: await store.balances.load('b3'),
        events: await store.events.list('b3'),
      });
      const first = { ...newOrderState(limit('r1-o1'), clock.t, 100), status: 'accepted' as const };
      await store.orders.upsert('b3', first);
      const f1 = fill('r1-o1', 'T1', 0.5, 100, 5_000);
      expect(
        await store.applyFill('b3', f1, {
          order: { ...first, status: 'filled', filled: 0.5, avgPrice: 100, fee: 0.0001 },
          position: { symbol: 'BTC/USDT', size: 0.5, avgPrice: 100, realizedPnl: 0 },
          balances: [
            { asset: 'BTC', free: 0.5, used: 0, total: 0.5 },
            { asset: 'USDT', free: 950, used: 0, total: 950 },
          ],
        }),
      ).toBe(true);
      // The next run of a venue that numbers its trades from T1 again: another execution, same id.
      const second = { ...newOrderState(limit('r2-o1'), clock.t + 1, 101), status: 'accepted' as const };
      await store.orders.upsert('b3', second);
      const before = await snapshot();
      const f2 = fill('r2-o1', 'T1', 0.5, 101, 9_000);
      const err = await rejection(
        store.applyFill('b3', f2, {
          order: { ...second, status: 'filled', filled: 0.5, avgPrice: 101, fee: 0.0001 },
          position: { symbol: 'BTC/USDT', size: 1, avgPrice: 100.5, realizedPnl: 0 },
          balances: [
            { asset: 'BTC', free: 1, used: 0, total: 1 },
            { asset: 'USDT', free: 899.5, used: 0, total: 899.5 },
          ],
        }),
      );
      expect(err).toBeInstanceOf(StoreConflictError);
      expect((err as StoreConflictError).fields).toEqual(['order', 'price', 'time']);
      expect((err as StoreConflictError).message).toMatch(/r1-o1.*r2-o1/);
      expect(await snapshot()).toEqual(before);
    });

    it('applyFill: the position and the balances of a fill are written in its transaction, so they never disagree', async () => {
      await store.bots.create({
        id: 'pb',
        strategy: 's',
        params: {},
        mode: 'paper',
        exchange: 'x',
        symbols: ['BTC/USDT'],
      });
      const agree = async () => {
        const pos = await store.positions.get('pb', 'BTC/USDT');
        const btc = (await store.balances.load('pb')).find((b) => b.asset === 'BTC');
        return { position: pos?.size, balance: btc?.total };
      };
      const buy = { ...newOrderState(limit('pb-1'), clock.t, 100), status: 'accepted' as const };
      await store.orders.upsert('pb', buy);
      const balances = (btc: number, usdt: number): StoredBalance[] => [
        { asset: 'BTC', free: btc, used: 0, total: btc },
        { asset: 'USDT', free: usdt, used: 0, total: usdt },
      ];
      const f1 = fill('pb-1', 'pb-t1', 0.5, 100, 1_000);
      await store.applyFill('pb', f1, {
        order: { ...buy, status: 'filled', filled: 0.5, avgPrice: 100 },
        position: { symbol: 'BTC/USDT', size: 0.5, avgPrice: 100, realizedPnl: 0 },
        balances: balances(0.5, 950),
      });
      expect(await agree()).toEqual({ position: 0.5, balance: 0.5 });

      // A write that fails inside the fill's transaction (here: a balance snapshot listing an
      // asset twice) takes the fill, the order, the position and the event with it.
      const sell = { ...newOrderState(limit('pb-2', { side: 'sell' }), clock.t, 100), status: 'accepted' as const };
      await store.orders.upsert('pb', sell);
      const events = (await store.events.list('pb')).length;
      const f2 = { ...fill('pb-2', 'pb-t2', 0.2, 110, 2_000), side: 'sell' as const };
      await expect(
        store.applyFill('pb', f2, {
          order: { ...sell, status: 'partially-filled', filled: 0.2, avgPrice: 110 },
          position: { symbol: 'BTC/USDT', size: 0.3, avgPrice: 100, realizedPnl: 2 },
          balances: [...balances(0.3, 972), { asset: 'USDT', free: 0, used: 0, total: 0 }],
        }),
      ).rejects.toThrow(/Invalid balances of bot "pb": USDT is listed twice/);
      expect(await agree()).toEqual({ position: 0.5, balance: 0.5 });
      expect(await store.fills.forOrder('pb', 'pb-2')).toEqual([]);
      expect((await store.orders.get('pb-2'))?.filled).toBe(0);
      expect((await store.events.list('pb')).length).toBe(events);

      // The same fill again writes nothing, not even the balances it carries.
      expect(
        await store.applyFill('pb', f1, {
          order: { ...buy, status: 'filled', filled: 0.5, avgPrice: 100 },
          position: { symbol: 'BTC/USDT', size: 1, avgPrice: 100, realizedPnl: 0 },
          balances: balances(1, 900),
        }),
      ).toBe(false);
      expect(await agree()).toEqual({ position: 0.5, balance: 0.5 });

      await store.applyFill('pb', f2, {
        order: { ...sell, status: 'partially-filled', filled: 0.2, avgPrice: 110 },
        position: { symbol: 'BTC/USDT', size: 0.3, avgPrice: 100, realizedPnl: 2 },
        balances: balances(0.3, 972),
      });
      expect(await agree()).toEqual({ position: 0.3, balance: 0.3 });
    });

    it('positions, balances and fills refuse numbers that are not finite, with the field named, on every engine', async () => {
      await expect(
        store.positions.save('b2', { symbol: 'ETH/USDT', size: Number.NaN, avgPrice: 1, realizedPnl: 0 }),
      ).rejects.toThrow(/position ETH\/USDT of bot "b2": size must be a finite number, got NaN/);
      await expect(
        store.balances.save('b2', [{ asset: 'ETH', free: Number.POSITIVE_INFINITY, used: 0, total: 1 }]),
      ).rejects.toThrow(/balance ETH of bot "b2": free must be a finite number/);
      await expect(
        store.balances.save('b2', [
          { asset: 'ETH', free: 1, used: 0, total: 1 },
          { asset: 'ETH', free: 2, used: 0, total: 2 },
        ]),
      ).rejects.toThrow(/ETH is listed twice/);
      await expect(store.fills.record('b2', fill('x-9', 't-nan', 1, Number.NaN))).rejects.toThrow(
        /fill t-nan of bot "b2": price must be a finite number/,
      );
      expect(await store.fills.forOrder('b2', 'x-9')).toEqual([]);
    });

    it('transaction: an error rolls every write back', async () => {
      const o = newOrderState(limit('c-rb'), clock.t, 1);
      await expect(
        store.transaction(async (tx) => {
          await tx.orders.upsert('b1', o);
          await tx.fills.record('b1', fill('c-rb', 't-rb', 1));
          await tx.events.append('b1', 'x', {});
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(await store.orders.get('c-rb')).toBeUndefined();
      expect(await store.fills.forOrder('b1', 'c-rb')).toEqual([]);
    });

    it('positions and balances: save/load, flat position keeps NaN avg price, balances are a snapshot', async () => {
      await store.positions.save('b2', { symbol: 'ETH/USDT', size: 0, avgPrice: Number.NaN, realizedPnl: -1.25 });
      expect(await store.positions.load('b2')).toEqual([
        { symbol: 'ETH/USDT', size: 0, avgPrice: Number.NaN, realizedPnl: -1.25 },
      ]);
      await store.balances.save('b2', [
        { asset: 'USDT', free: 900.5, used: 99.5, total: 1000 },
        { asset: 'ETH', free: 1, used: 0, total: 1 },
      ]);
      await store.balances.save('b2', [{ asset: 'USDT', free: 1000, used: 0, total: 1000 }]);
      expect(await store.balances.load('b2')).toEqual([{ asset: 'USDT', free: 1000, used: 0, total: 1000 }]);
    });

    it('a hedge-mode market keeps its long and its short position apart from each other and from a one-way position', async () => {
      const sym = 'LINK/USDT:USDT';
      await store.positions.save('b2', { symbol: sym, positionSide: 'long', size: 100, avgPrice: 7, realizedPnl: 0 });
      await store.positions.save('b2', {
        symbol: sym,
        positionSide: 'short',
        size: -40,
        avgPrice: 7.2,
        realizedPnl: 1,
      });
      await store.positions.save('b2', {
        symbol: sym,
        positionSide: 'short',
        size: -30,
        avgPrice: 7.2,
        realizedPnl: 2,
      });
      expect(await store.positions.get('b2', sym, 'long')).toEqual({
        symbol: sym,
        positionSide: 'long',
        size: 100,
        avgPrice: 7,
        realizedPnl: 0,
      });
      expect(await store.positions.get('b2', sym)).toBeUndefined();
      expect((await store.positions.load('b2')).filter((p) => p.symbol === sym)).toEqual([
        { symbol: sym, positionSide: 'long', size: 100, avgPrice: 7, realizedPnl: 0 },
        { symbol: sym, positionSide: 'short', size: -30, avgPrice: 7.2, realizedPnl: 2 },
      ]);
    });

    it('strategy state: versions increase; compare-and-set refuses a stale writer', async () => {
      expect(await store.state.load('b1')).toBeUndefined();
      expect(await store.state.save('b1', { ema: 1.5, n: [1, 2] })).toBe(1);
      expect(await store.state.save('b1', { ema: 2 }, 1)).toBe(2);
      expect(await store.state.save('b1', { ema: 3 }, 1)).toBeNull();
      expect(await store.state.load('b1')).toEqual({ state: { ema: 2 }, version: 2 });
      expect(await store.state.save('b2', { x: 1 }, 5)).toBeNull();
    });

    it('events: append-only journal with per-bot gapless sequence numbers', async () => {
      const before = (await store.events.list('b2')).length;
      const seqs = [];
      for (let i = 0; i < 5; i++) seqs.push(await store.events.append('b2', 'tick', { i }));
      expect(seqs).toEqual([1, 2, 3, 4, 5].map((x) => x + before));
      const tail = await store.events.list('b2', { afterSeq: before + 2, limit: 2 });
      expect(tail.map((e) => e.payload)).toEqual([{ i: 2 }, { i: 3 }]);
    });

    it('strategy state: saves without an expected version always land, also from concurrent writers', async () => {
      await store.bots.create({ id: 'st', strategy: 's', params: {}, mode: 'paper', exchange: 'x', symbols: [] });
      // Two pools on PostgreSQL (see the lock race below for SQLite).
      const other = store.dialect === 'postgres' ? await open() : store;
      try {
        const versions = await Promise.all(
          Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? store : other).state.save('st', { i })),
        );
        expect(versions.filter((v) => v === null)).toEqual([]);
        expect([...versions].sort((a, b) => (a ?? 0) - (b ?? 0))).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
        expect((await store.state.load('st'))?.version).toBe(12);
      } finally {
        if (other !== store) await other.close();
      }
    });

    it('events and sessions: concurrent writers get gapless sequence numbers and none fails', async () => {
      const other = store.dialect === 'postgres' ? await open() : store;
      try {
        const before = (await store.events.list('st')).length;
        const seqs = await Promise.all(
          Array.from({ length: 16 }, (_, i) => (i % 2 === 0 ? store : other).events.append('st', 'race', { i })),
        );
        expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => before + i + 1));
        const sessions = await Promise.all(
          Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? store : other).sessions.start('st')),
        );
        expect([...sessions].sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      } finally {
        if (other !== store) await other.close();
      }
    });

    it('sessions: start and end with a report', async () => {
      const s1 = await store.sessions.start('b1');
      clock.t += 1000;
      await store.sessions.end('b1', s1, { trades: 3 });
      const s2 = await store.sessions.start('b1');
      expect(s2).toBe(s1 + 1);
      const list = await store.sessions.list('b1');
      expect(list[0]).toEqual({ seq: s1, startedAt: clock.t - 1000, endedAt: clock.t, report: { trades: 3 } });
      expect(list[1]?.endedAt).toBeNull();
      await expect(store.sessions.end('b1', 99, {})).rejects.toThrow(/Unknown session/);
    });

    it('locks: one holder; heartbeat keeps it; stale takeover after the TTL; release', async () => {
      const a = await store.locks.acquire('b2', 'proc-a', 10_000);
      expect(a).toMatchObject({ acquired: true, owner: 'proc-a', tookOver: false });
      expect((await store.locks.acquire('b2', 'proc-b', 10_000)).acquired).toBe(false);
      expect((await store.locks.acquire('b2', 'proc-a', 10_000)).acquired).toBe(true); // re-entrant
      clock.t += 9_000;
      expect(await store.locks.heartbeat('b2', 'proc-a')).toBe(true);
      clock.t += 9_000; // 18 s after acquire but only 9 s after the heartbeat: still held
      expect((await store.locks.acquire('b2', 'proc-b', 10_000)).acquired).toBe(false);
      clock.t += 1_000; // heartbeat + TTL reached: stale
      const b = await store.locks.acquire('b2', 'proc-b', 10_000);
      expect(b).toMatchObject({ acquired: true, owner: 'proc-b', tookOver: true });
      expect(await store.locks.heartbeat('b2', 'proc-a')).toBe(false);
      expect(await store.locks.release('b2', 'proc-a')).toBe(false);
      expect(await store.locks.release('b2', 'proc-b')).toBe(true);
      expect(await store.locks.holder('b2')).toBeUndefined();
      expect((await store.locks.acquire('b2', 'proc-a', 10_000)).acquired).toBe(true);
      await store.locks.release('b2', 'proc-a');
    });

    it('locks: a holder known to be dead is taken over at once, by compare-and-set on its name', async () => {
      await store.locks.acquire('b2', 'host:111:dead', 60_000);
      // Fresh heartbeat, so not stale; naming a different holder does not take it.
      expect(
        (await store.locks.acquire('b2', 'host:222:new', 60_000, { takeOverFrom: 'host:333:other' })).acquired,
      ).toBe(false);
      const r = await store.locks.acquire('b2', 'host:222:new', 60_000, { takeOverFrom: 'host:111:dead' });
      expect(r).toMatchObject({ acquired: true, owner: 'host:222:new', tookOver: true });
      // The dead holder's name is no key to a lock that has changed hands since.
      expect(
        (await store.locks.acquire('b2', 'host:444:late', 60_000, { takeOverFrom: 'host:111:dead' })).acquired,
      ).toBe(false);
      await store.locks.release('b2', 'host:222:new');
    });

    it('locks: concurrent acquirers of a free lock, exactly one wins', async () => {
      await store.bots.create({ id: 'race', strategy: 's', params: {}, mode: 'paper', exchange: 'x', symbols: [] });
      // Two pools on PostgreSQL; on SQLite one connection per process (better-sqlite3 is
      // synchronous, so a second in-process connection would block the thread that must commit).
      // The cross-process case for SQLite is the crash test below.
      const other = store.dialect === 'postgres' ? await open() : store;
      try {
        const results = await Promise.all(
          Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? store : other).locks.acquire('race', `p${i}`, 60_000)),
        );
        expect(results.filter((r) => r.acquired).length).toBe(1);
      } finally {
        if (other !== store) await other.close();
      }
    });

    it('crash: a writer killed with SIGKILL leaves a consistent store and a lock that can be taken over after its TTL', async () => {
      await store.bots.create({
        id: 'crash',
        strategy: 's',
        params: {},
        mode: 'paper',
        exchange: 'x',
        symbols: ['BTC/USDT'],
      });
      // node --import tsx: one process, so SIGKILL hits the writer itself (the tsx CLI would fork).
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          path.join(HERE, 'fixtures', 'crash-writer.ts'),
          t.url,
          t.schema ?? '-',
          'crash',
          'writer-1',
        ],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, sig) => resolve(sig)));
      await new Promise<void>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          const m = out.match(/fills (\d+)\n[^\n]*$/);
          if (m && Number(m[1]) >= 60) resolve();
        });
        child.on('exit', () => reject(new Error(`writer exited before the kill: ${stderr}`)));
      });
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');

      const after = await open();
      try {
        const orders = await after.orders.list('crash');
        const fills = await after.fills.since('crash', 0);
        expect(fills.length).toBeGreaterThanOrEqual(60);
        let size = 0;
        for (const o of orders) {
          const mine = fills.filter((f) => f.orderId === o.request.id);
          expect(mine.length, `order ${o.request.id}: filled ${o.filled} vs fills`).toBe(o.filled);
          expect(o.status).toBe(o.filled === 3 ? 'filled' : o.filled === 0 ? 'accepted' : 'partially-filled');
        }
        for (const f of fills) {
          expect(
            orders.some((o) => o.request.id === f.orderId),
            `fill ${f.tradeId} has no order`,
          ).toBe(true);
          size += f.side === 'buy' ? f.amount : -f.amount;
        }
        expect((await after.positions.get('crash', 'BTC/USDT'))?.size).toBe(size);
        // The balances were written with the position, in the fill's transaction: they agree.
        const balances = await after.balances.load('crash');
        expect(balances.find((b) => b.asset === 'BTC')?.total).toBe(size);
        let cash = 1_000_000;
        for (const f of fills) cash -= (f.side === 'buy' ? 1 : -1) * f.price + f.fee;
        expect(balances.find((b) => b.asset === 'USDT')?.total).toBeCloseTo(cash, 6);
        const events = await after.events.list('crash');
        expect(events.filter((e) => e.type === 'fill').length).toBe(fills.length);
        expect(events.filter((e) => e.type === 'order.accepted').length).toBe(orders.length);
        expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
        if (after.dialect === 'sqlite') {
          const r = await (await import('kysely')).sql<{ integrity_check: string }>`pragma integrity_check`.execute(
            after.db,
          );
          expect(r.rows[0]?.integrity_check).toBe('ok');
        }

        const holder = await after.locks.holder('crash');
        expect(holder?.owner).toBe('writer-1');
        clock.t = Date.now();
        expect((await after.locks.acquire('crash', 'writer-2', 60_000)).acquired, 'lock must hold until the TTL').toBe(
          false,
        );
        clock.t = (holder?.heartbeatAt ?? 0) + (holder?.ttlMs ?? 0);
        expect(await after.locks.acquire('crash', 'writer-2', 60_000)).toMatchObject({
          acquired: true,
          tookOver: true,
        });
      } finally {
        await after.close();
      }
    });
  });
}
