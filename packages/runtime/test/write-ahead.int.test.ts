// The write-ahead rule of the live path, observed from outside the bot: at the instant an order
// request leaves, the order is already on disk where a restarted process finds it (on SQLite: a
// line of the bot's intent log, replayed into the database at start; elsewhere: its row).
// Real ccxt client against the exchange simulator on loopback.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineStrategy } from '@keel/core';
import { intentLogFile, openStore, readIntentLog, type Store } from '@keel/store';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { noParams } from './fixtures/strategies.ts';
import { KEY, startLiveBot, until } from './live-harness.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'keel-wal-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const T0 = Date.UTC(2024, 0, 1);
const MIN = 60_000;

/** Buys when flat, sells when long: one order per bar. */
const flip = defineStrategy({
  name: 'flip',
  params: noParams,
  warmup: 'none',
  onStart: () => ({}),
  onBar(ctx) {
    if (ctx.position().size === 0) ctx.buy(0.01);
    else ctx.close();
  },
});

async function runFlipBot(store: Store, dbFile: string, n: number) {
  const bars = Array.from({ length: n + 2 }, (_, i) => {
    const o = 40_000 + 50 * Math.sin(i);
    return { time: T0 + i * MIN, open: o, high: o + 20, low: o - 20, close: o + 3, volume: 100 };
  });
  const reader = new Database(dbFile, { readonly: true });
  const lookup = reader.prepare('select status from orders where client_order_id = ?');
  const logFile = intentLogFile(dbFile, 'lt');
  /** Where the order was at its send: 'log' (the intent log file), its row's status, or undefined. */
  const seenAtSend: Array<string | undefined> = [];
  const sentIds: string[] = [];
  const run = await startLiveBot({
    bars,
    strategy: flip,
    store,
    onSend: (id) => {
      sentIds.push(id);
      const logged = readIntentLog<{ row: { client_order_id: string } }>(logFile).records.some(
        (r) => r.row.client_order_id === id,
      );
      seenAtSend.push(logged ? 'log' : (lookup.get(id) as { status: string } | undefined)?.status);
    },
  });
  try {
    for (let k = 1; k <= n; k++) {
      await run.step();
      await until(() => seenAtSend.length >= k, 10_000, `order ${k} to be sent`);
    }
  } finally {
    await run.close();
    reader.close();
  }
  return { seenAtSend, sentIds, exchangeIds: run.sim.getOrders(KEY.apiKey).map((o) => o.clientOrderId) };
}

describe('write-ahead: an order is durable before its request leaves (real ccxt, loopback)', () => {
  it('SQLite: at every send the order is already in the intent log file; its row follows', async () => {
    const file = path.join(dir, 'wa.db');
    const store = await openStore({ url: `sqlite:${file}`, synchronous: 'NORMAL' });
    try {
      const { seenAtSend, sentIds, exchangeIds } = await runFlipBot(store, file, 12);
      expect(seenAtSend).toEqual(Array(12).fill('log'));
      // ... and every row arrived (the log is what a restart would replay had it not).
      for (const id of sentIds) expect(await store.orders.get(id)).toBeDefined();
      // Each request left once; the exchange knows no order we did not send first (a sell the
      // exchange refuses, e.g. for the base-asset fee dust, is not in its order list).
      expect(new Set(sentIds).size).toBe(12);
      expect(new Set(exchangeIds).size).toBe(exchangeIds.length);
      expect(exchangeIds.every((id) => sentIds.includes(id))).toBe(true);
      expect(exchangeIds.length).toBeGreaterThan(0);
    } finally {
      await store.close();
    }
  });

  it('the queued path (PostgreSQL has no synchronous driver): the send waits for the row', async () => {
    const file = path.join(dir, 'wa-queued.db');
    const store = await openStore({ url: `sqlite:${file}`, synchronous: 'NORMAL' });
    try {
      const queued: Store = { ...store, writeOrderNow: () => ({ kind: 'declined' }) };
      const { seenAtSend, sentIds } = await runFlipBot(queued, file, 6);
      expect(seenAtSend).toEqual(Array(6).fill('submitted'));
      expect(new Set(sentIds).size).toBe(6);
    } finally {
      await store.close();
    }
  });
});
