import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ClientOrderId, newOrderState, type OrderRequest } from '@keel/core';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { onPostgres } from '../../../test-support/postgres.ts';
import { MIGRATIONS, openStore } from '../src/index.ts';
import { storeContract } from './store-contract.ts';

// SQLite: a file in a fresh temp dir (WAL needs a real file; :memory: is covered below).
const dir = mkdtempSync(path.join(tmpdir(), 'keel-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
storeContract('sqlite (file, WAL)', () => ({ url: `sqlite:${path.join(dir, 'keel.db')}` }));

// PostgreSQL: a fresh schema per run, dropped afterwards.
await onPostgres('store contract', storeContract);

await onPostgres(
  'two stores in one PostgreSQL database',
  (name, target) => {
    describe(`openStore: ${name}`, () => {
      it('migrates a fresh schema while another schema of the database already holds a store', async () => {
        const t = target();
        const first = await openStore({ url: t.url, ...(t.schema !== undefined ? { schema: t.schema } : {}) });
        await first.close();
        const second = `${t.schema}_b`;
        try {
          const s = await openStore({ url: t.url, schema: second });
          await s.bots.create({ id: 'b', strategy: 's', params: {}, mode: 'paper', exchange: 'x', symbols: [] });
          expect((await s.bots.list()).map((b) => b.id)).toEqual(['b']);
          await s.close();
          const again = await openStore({ url: t.url, schema: second }); // and reopens it
          expect((await again.bots.list()).map((b) => b.id)).toEqual(['b']);
          await again.close();
        } finally {
          const c = new pg.Client({ connectionString: t.url });
          await c.connect();
          await c.query(`drop schema if exists ${second} cascade`);
          await c.end();
        }
      });
    });
  },
  'keel_two_stores',
);

describe('openStore', () => {
  it('migration 0006 (hedge sides) keeps the positions a store held before it, as one-way positions', async () => {
    const { sql } = await import('kysely');
    const url = `sqlite:${path.join(dir, 'upgrade.db')}`;
    const s = await openStore({ url });
    await s.bots.create({ id: 'u', strategy: 's', params: {}, mode: 'paper', exchange: 'x', symbols: [] });
    await s.positions.save('u', { symbol: 'BTC/USDT', size: 0.5, avgPrice: 30_000, realizedPnl: 12 });
    // Back to the schema before it (its down, and those of the migrations after it), as a store
    // written by the version before it.
    for (const name of [
      '0010_bot_exchange_url',
      '0009_fill_fee_value',
      '0008_backtest_space',
      '0007_bot_futures',
      '0006_hedge_sides',
    ]) {
      await (MIGRATIONS[name] as { down: (db: unknown) => Promise<void> }).down(s.db);
      await sql`delete from kysely_migration where name = ${name}`.execute(s.db);
    }
    await s.close();
    const again = await openStore({ url });
    expect(await again.positions.load('u')).toEqual([
      { symbol: 'BTC/USDT', size: 0.5, avgPrice: 30_000, realizedPnl: 12 },
    ]);
    await again.positions.save('u', { symbol: 'BTC/USDT', size: 1, avgPrice: 30_000, realizedPnl: 12 });
    expect((await again.positions.load('u')).map((p) => p.size)).toEqual([1]);
    await again.close();
  });

  it('opens sqlite::memory: and rejects unknown urls with a helpful message', async () => {
    const s = await openStore({ url: 'sqlite::memory:' });
    expect(s.dialect).toBe('sqlite');
    await s.bots.create({ id: 'm', strategy: 's', params: {}, mode: 'paper', exchange: 'x', symbols: [] });
    expect((await s.bots.list()).length).toBe(1);
    await s.close();
    await expect(openStore({ url: 'mysql://x' })).rejects.toThrow(/Unsupported store url/);
  });

  it('uses WAL and the documented synchronous level on a file database', async () => {
    const { sql } = await import('kysely');
    const s = await openStore({ url: `sqlite:${path.join(dir, 'pragmas.db')}` });
    const jm = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(s.db);
    const sy = await sql<{ synchronous: number }>`pragma synchronous`.execute(s.db);
    expect(jm.rows[0]?.journal_mode).toBe('wal');
    expect(sy.rows[0]?.synchronous).toBe(2); // FULL
    await s.close();
  });

  it('a SQLite store that lacks a migration gets it on open (opening a current store skips the Migrator)', async () => {
    const { sql } = await import('kysely');
    const file = path.join(dir, 'older.db');
    const s = await openStore({ url: `sqlite:${file}` });
    await s.bots.create({ id: 'b', strategy: 's', params: {}, mode: 'paper', exchange: 'x', symbols: [] });
    // The store as a build before the last migration left it: that migration undone, not recorded.
    const last = Object.keys(MIGRATIONS).at(-1) as string;
    await MIGRATIONS[last]?.down?.(s.db);
    await sql`delete from kysely_migration where name = ${last}`.execute(s.db);
    await s.close();
    const migrations = async (t: Awaited<ReturnType<typeof openStore>>) =>
      (await sql<{ name: string }>`select name from kysely_migration order by name`.execute(t.db)).rows.map(
        (r) => r.name,
      );
    const again = await openStore({ url: `sqlite:${file}` });
    expect(await migrations(again), 'the missing migration ran').toEqual(Object.keys(MIGRATIONS).sort());
    expect(
      (await again.bots.list()).map((b) => b.id),
      'the data is kept',
    ).toEqual(['b']);
    await again.close();
    const current = await openStore({ url: `sqlite:${file}` });
    expect((await current.bots.list()).map((b) => b.id)).toEqual(['b']);
    await current.close();
  });

  it('once orders are written ahead, WAL checkpoints run in a worker thread, not in the writing commit', async () => {
    const { sql } = await import('kysely');
    const file = path.join(dir, 'checkpoints.db');
    const s = await openStore({ url: `sqlite:${file}`, synchronous: 'NORMAL' });
    await s.bots.create({ id: 'b', strategy: 's', params: {}, mode: 'live', exchange: 'x', symbols: ['BTC/USDT'] });
    const autocheckpoint = async () =>
      (await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(s.db)).rows[0]?.wal_autocheckpoint;
    expect(await autocheckpoint()).toBe(1000); // SQLite's own until the live path starts
    const before = statSync(file).size;
    // ~2,400 log pages: past the 1,000 at which the writing commit would checkpoint itself.
    for (let i = 0; i < 600; i++) {
      const o = newOrderState(
        { id: ClientOrderId(`wa-${i}`), symbol: 'BTC/USDT', side: 'buy', type: 'market', amount: 1 } as OrderRequest,
        i,
        100,
      );
      const w = s.writeOrderNow('b', o);
      if (w.kind !== 'logged') throw new Error(`expected logged, got ${w.kind}`);
      await w.save();
    }
    expect(await autocheckpoint()).toBe(0);
    expect(statSync(file).size).toBe(before); // every row is still only in the log
    // The worker copies the log into the database file (within its 1 s period) on its own.
    const deadline = Date.now() + 10_000;
    while (statSync(file).size === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(statSync(file).size).toBeGreaterThan(before + 100_000);
    expect((await s.orders.list('b')).length).toBe(600);
    await s.close(); // stops the worker and its connection
  });
});
