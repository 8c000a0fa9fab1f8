import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ClientOrderId, newOrderState, type OrderRequest, type OrderState } from '@keel/core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  intentLogFile,
  openStore,
  readIntentLog,
  type Store,
  StoreConflictError,
  type WriteAhead,
} from '../src/index.ts';

// The write-ahead intent log of a SQLite store: what a crash between "logged" and "row written"
// leaves, and how a restart gets it back. Oracle: the order states that were written ahead.
const dir = mkdtempSync(path.join(tmpdir(), 'keel-intents-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const order = (i: number): OrderState =>
  newOrderState(
    {
      id: ClientOrderId(`kb-${i.toString(36)}-0`),
      symbol: 'BTC/USDT',
      side: i % 2 === 0 ? 'buy' : 'sell',
      type: 'limit',
      price: 40_000 + i / 3,
      amount: 0.001 * (i + 1),
      timeInForce: 'GTC',
    } as OrderRequest,
    1_700_000_000_000 + i,
    40_000 + i,
  );

async function freshStore(name: string, synchronous: 'FULL' | 'NORMAL' = 'NORMAL') {
  const file = path.join(dir, `${name}.db`);
  const s = await openStore({ url: `sqlite:${file}`, synchronous });
  await s.bots.create({ id: 'b', strategy: 's', params: {}, mode: 'live', exchange: 'x', symbols: ['BTC/USDT'] });
  return { s, file, log: intentLogFile(file, 'b') };
}

function logged(w: WriteAhead): Extract<WriteAhead, { kind: 'logged' }> {
  if (w.kind !== 'logged') throw new Error(`expected the intent log, got ${w.kind}`);
  return w;
}

describe('intent log: the write-ahead record of a SQLite file store', () => {
  for (const sync of ['NORMAL', 'FULL'] as const) {
    it(`${sync}: orders logged but never saved (a crash in between) come back on replay, once`, async () => {
      const { s, file, log } = await freshStore(`crash-${sync}`, sync);
      const orders = [0, 1, 2, 3].map(order);
      const ws = orders.map((o) => logged(s.writeOrderNow('b', o)));
      await ws[0]?.save(); // only the first row arrived before the "crash"
      expect(readIntentLog(log).records).toHaveLength(4); // the log is as durable as the rows
      await s.close();

      const again = await openStore({ url: `sqlite:${file}`, synchronous: sync });
      try {
        expect(await again.orders.get(orders[1]!.request.id)).toBeUndefined();
        const r = await again.replayIntents('b');
        expect(r).toEqual({ recovered: orders.slice(1).map((o) => o.request.id), torn: 0 });
        for (const o of orders) expect(await again.orders.get(o.request.id)).toEqual(o);
        expect(statSync(log).size).toBe(0);
        expect(await again.replayIntents('b')).toEqual({ recovered: [], torn: 0 });
      } finally {
        await again.close();
      }
    });
  }

  it('a row that moved on after the log line is not overwritten by the replay', async () => {
    const { s, file } = await freshStore('moved-on');
    const o = order(7);
    const w = logged(s.writeOrderNow('b', o));
    await w.save();
    await s.orders.upsert('b', { ...o, status: 'filled', filled: o.request.amount, avgPrice: 40_001 });
    await s.close();
    const again = await openStore({ url: `sqlite:${file}` });
    expect((await again.replayIntents('b')).recovered).toEqual([]);
    expect((await again.orders.get(o.request.id))?.status).toBe('filled');
    await again.close();
  });

  it('an incomplete last line (a write cut short) is skipped and counted; the rest is recovered', async () => {
    const { s, file, log } = await freshStore('torn');
    s.writeOrderNow('b', order(1));
    await s.close();
    appendFileSync(log, '{"v":1,"row":{"client_order_id":"kb-2-0","bot_');
    const again = await openStore({ url: `sqlite:${file}` });
    expect(await again.replayIntents('b')).toEqual({ recovered: [order(1).request.id], torn: 1 });
    await again.close();
  });

  it('an id the database holds for another bot stops the start with both named; nothing is written, the log is kept', async () => {
    const { s, file, log } = await freshStore('clash');
    await s.bots.create({ id: 'other', strategy: 's', params: {}, mode: 'live', exchange: 'x', symbols: [] });
    const o = order(3);
    await s.orders.upsert('other', o);
    s.writeOrderNow('b', order(1)); // a good record before the clash: not written either
    s.writeOrderNow('b', o); // logged; its row would be refused
    await s.close();
    const again = await openStore({ url: `sqlite:${file}` });
    try {
      const err = await again.replayIntents('b').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreConflictError);
      const c = err as StoreConflictError;
      expect(c.key).toEqual({ client_order_id: o.request.id });
      expect(c.stored.bot_id).toBe('other');
      expect(c.attempted.bot_id).toBe('b');
      expect(c.message).toContain(log);
      expect(c.message).toContain('record 2');
      expect(await again.orders.get(order(1).request.id)).toBeUndefined();
      expect(readIntentLog(log).records).toHaveLength(2); // the next start stops again
      await expect(again.replayIntents('b')).rejects.toThrow(StoreConflictError);
    } finally {
      await again.close();
    }
  });

  it('the log is emptied once every line has its row, and only then', async () => {
    const { s, log } = await freshStore('truncate');
    const size = () => statSync(log).size;
    const pending = Array.from({ length: 300 }, (_, i) => logged(s.writeOrderNow('b', order(i))));
    expect(size()).toBeGreaterThan(65_536);
    for (const w of pending.slice(0, -1)) await w.save();
    expect(size()).toBeGreaterThan(65_536); // one line still has no row
    await pending.at(-1)?.save();
    expect(size()).toBe(0);
    // Appends continue at the start of the emptied file.
    logged(s.writeOrderNow('b', order(1_000)));
    expect(readIntentLog(log).records).toHaveLength(1);
    expect(readFileSync(log, 'utf8').startsWith('{"v":1,')).toBe(true);
    await s.close(); // that line has no row: it stays
    expect(readIntentLog(log).records).toHaveLength(1);
  });

  it('a store closed with every line saved leaves an empty log', async () => {
    const { s, log } = await freshStore('close-empty');
    await logged(s.writeOrderNow('b', order(1))).save();
    expect(statSync(log).size).toBeGreaterThan(0);
    await s.close();
    expect(statSync(log).size).toBe(0);
  });

  it('a restart in the same process (same store) replays what the abandoned instance logged', async () => {
    const { s } = await freshStore('same-process');
    const first = logged(s.writeOrderNow('b', order(1)));
    expect(await s.replayIntents('b')).toEqual({ recovered: [order(1).request.id], torn: 0 });
    await first.save(); // the abandoned instance's queued write, late: the row is the same
    expect(await s.orders.get(order(1).request.id)).toEqual(order(1));
    expect(logged(s.writeOrderNow('b', order(2))).kind).toBe('logged'); // the new instance's own log
    await s.close();
  });

  it('a row saved while another transaction is open waits for it, and does not vanish with its rollback', async () => {
    const { s } = await freshStore('in-tx');
    const w = logged(s.writeOrderNow('b', order(5)));
    let saving: Promise<void> | undefined;
    await expect(
      s.transaction(async (tx) => {
        await tx.events.append('b', 'probe', {});
        saving = w.save(); // runs while the transaction is open
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    await saving;
    expect(await s.orders.get(order(5).request.id)).toEqual(order(5));
    expect(await s.events.list('b')).toEqual([]); // the transaction's own write is gone
    await s.close();
  });

  it('in memory there is no log: the row is written at once', async () => {
    const s: Store = await openStore({ url: 'sqlite::memory:' });
    await s.bots.create({ id: 'b', strategy: 's', params: {}, mode: 'live', exchange: 'x', symbols: [] });
    expect(s.writeOrderNow('b', order(1)).kind).toBe('row');
    expect(await s.orders.get(order(1).request.id)).toEqual(order(1));
    expect(await s.replayIntents('b')).toEqual({ recovered: [], torn: 0 });
    await s.close();
  });
});
