import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/index.ts';
import { storeContract } from './store-contract.ts';

// SQLite: a file in a fresh temp dir (WAL needs a real file; :memory: is covered below).
const dir = mkdtempSync(path.join(tmpdir(), 'keel-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
storeContract('sqlite (file, WAL)', () => ({ url: `sqlite:${path.join(dir, 'keel.db')}` }));

// PostgreSQL: a fresh schema per run, dropped afterwards.
const PG_URL = process.env.KEEL_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const REQUIRE = process.env.KEEL_REQUIRE_SERVICES === '1';
const schema = `keel_test_${process.pid}_${Date.now().toString(36)}`;

async function pgReachable(): Promise<string | null> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2_000 });
  try {
    await c.connect();
    await c.query('select 1');
    return null;
  } catch (e) {
    return (e as Error).message || String(e);
  } finally {
    await c.end().catch(() => {});
  }
}

const pgError = await pgReachable();
if (pgError === null) {
  afterAll(async () => {
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`drop schema if exists ${schema} cascade`);
    await c.end();
  });
  storeContract('postgres (fresh schema)', () => ({ url: PG_URL, schema }));
} else if (REQUIRE) {
  describe('store contract: postgres', () => {
    it('needs a reachable PostgreSQL (KEEL_REQUIRE_SERVICES=1)', () => {
      expect.fail(`PostgreSQL at ${PG_URL} is not reachable: ${pgError}`);
    });
  });
} else {
  console.warn(
    `[skip] store contract: postgres: ${PG_URL} is not reachable (${pgError}); set KEEL_REQUIRE_SERVICES=1 to fail instead`,
  );
  describe.skip('store contract: postgres (not reachable)', () => {
    it('skipped', () => {});
  });
}

describe('openStore', () => {
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
});
